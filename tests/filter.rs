//! Filter subsumption, end to end: random predicate pairs checked against brute force on an
//! exhaustive table, and the `datafusion-materialized-views` crate's filter cases.

mod common;

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use mvrewrite::MvSession;
use mvrewrite::testkit::datagen::Rng;

const INTS: [Option<i32>; 6] = [None, Some(0), Some(1), Some(2), Some(3), Some(4)];
const STRINGS: [Option<&str>; 5] = [None, Some(""), Some("a"), Some("ab"), Some("b")];
const FLOATS: [Option<f64>; 5] = [None, Some(-0.0), Some(0.0), Some(1.5), Some(f64::NAN)];
const BOOLS: [Option<bool>; 3] = [None, Some(false), Some(true)];
/// 2024-02-28, 2024-02-29, 2024-03-01.
const DAYS: [Option<i32>; 4] = [None, Some(19781), Some(19782), Some(19783)];

/// Every combination of the small domains above: a predicate that holds on every row of this
/// table holds on every row of any table over these values.
fn exhaustive_table() -> RecordBatch {
    let mut cols: (Vec<i64>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>) = Default::default();
    for a in INTS {
        for b in INTS {
            for s in STRINGS {
                for f in FLOATS {
                    for p in BOOLS {
                        for d in DAYS {
                            cols.0.push(cols.0.len() as i64);
                            cols.1.push(a);
                            cols.2.push(b);
                            cols.3.push(s);
                            cols.4.push(f);
                            cols.5.push(p);
                            cols.6.push(d);
                        }
                    }
                }
            }
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("f", DataType::Float64, true),
        Field::new("p", DataType::Boolean, true),
        Field::new("d", DataType::Date32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(cols.0)),
        Arc::new(Int32Array::from(cols.1)),
        Arc::new(Int32Array::from(cols.2)),
        Arc::new(StringArray::from(cols.3)),
        Arc::new(Float64Array::from(cols.4)),
        Arc::new(BooleanArray::from(cols.5)),
        Arc::new(Date32Array::from(cols.6)),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn one<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len() as u64) as usize]
}

/// One predicate form over the table's columns, with literals in and around the domains.
fn atom(rng: &mut Rng) -> String {
    const OPS: [&str; 6] = ["=", "<>", "<", "<=", ">", ">="];
    let int = |rng: &mut Rng| (rng.below(7) as i32 - 1).to_string();
    match rng.below(13) {
        0 | 1 => format!("{} {} {}", one(rng, &["a", "b"]), one(rng, &OPS), int(rng)),
        2 => {
            let (lo, hi) = (int(rng), int(rng));
            let not = if rng.chance(0.3) { "NOT " } else { "" };
            format!("a {not}BETWEEN {lo} AND {hi}")
        }
        3 => {
            let mut items: Vec<String> = (0..1 + rng.below(3)).map(|_| int(rng)).collect();
            if rng.chance(0.2) {
                items.push("NULL".into());
            }
            let not = if rng.chance(0.3) { "NOT " } else { "" };
            format!("b {not}IN ({})", items.join(", "))
        }
        4 => {
            let col = one(rng, &["a", "b", "s", "f", "p", "d"]);
            let not = if rng.chance(0.5) { "NOT " } else { "" };
            format!("{col} IS {not}NULL")
        }
        5 => "a = b".to_string(),
        6 => {
            let lit = one(rng, &["''", "'a'", "'ab'", "'aa'", "'b'", "'c'"]);
            format!("s {} {lit}", one(rng, &OPS))
        }
        7 => format!(
            "s LIKE {}",
            one(rng, &["'a%'", "'ab%'", "'%b'", "'a_'", "'ab'"])
        ),
        8 => {
            let lit = one(
                rng,
                &["-0.0", "0.0", "1.5", "-1.0", "CAST('NaN' AS DOUBLE)"],
            );
            format!("f {} {lit}", one(rng, &OPS))
        }
        9 => one(
            rng,
            &[
                "p",
                "NOT p",
                "p IS TRUE",
                "p IS NOT TRUE",
                "p IS FALSE",
                "p IS NOT FALSE",
                "p = false",
            ],
        )
        .to_string(),
        10 => {
            let day = one(rng, &["'2024-02-28'", "'2024-02-29'", "'2024-03-01'"]);
            format!("d {} DATE {day}", one(rng, &OPS))
        }
        11 => one(
            rng,
            &["character_length(s) > 1", "a + b > 3", "abs(a - b) < 2"],
        )
        .to_string(),
        _ => format!("NOT ({})", atom(rng)),
    }
}

/// A conjunction of atoms and small disjunctions.
fn conjuncts(rng: &mut Rng) -> Vec<String> {
    (0..1 + rng.below(3))
        .map(|_| {
            if rng.chance(0.25) {
                format!("({} OR {})", atom(rng), atom(rng))
            } else {
                atom(rng)
            }
        })
        .collect()
}

/// An MV filter and a query filter that often, not always, implies it: some of the MV's
/// conjuncts plus new ones, or an unrelated filter.
fn pair(rng: &mut Rng) -> (String, String) {
    let mv = conjuncts(rng);
    let mut query: Vec<String> = if rng.chance(0.25) {
        conjuncts(rng)
    } else {
        mv.iter().filter(|_| rng.chance(0.75)).cloned().collect()
    };
    for _ in 0..rng.below(3) {
        query.push(atom(rng));
    }
    if query.is_empty() {
        query.push(atom(rng));
    }
    (mv.join(" AND "), query.join(" AND "))
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let col = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    col.value(0)
}

/// Every implication the rewriter claims (by answering the query from the MV) must hold on
/// every row of the exhaustive table, and the rewritten query must return the same rows.
#[tokio::test]
async fn claimed_implications_hold_on_every_row() {
    let cases: usize = common::env_or("FILTER_CASES", 400);
    let seed: u64 = common::env_or("DIFF_SEED", 2026);
    let table = exhaustive_table();
    let session = MvSession::new();
    let plain = SessionContext::new();
    let mem = Arc::new(MemTable::try_new(table.schema(), vec![vec![table.clone()]]).unwrap());
    session.context().register_table("t", mem.clone()).unwrap();
    plain.register_table("t", mem).unwrap();
    session
        .catalog()
        .write()
        .unwrap()
        .set_table_rows("t", table.num_rows() as u64);
    let pair_for = common::Pair { session, plain };
    let mut rng = Rng::new(seed);
    let (mut claimed, mut missed, mut refused) = (0, 0, 0);
    for i in 0..cases {
        let (mv_filter, query_filter) = pair(&mut rng);
        let mv = format!("CREATE MATERIALIZED VIEW m{i} AS SELECT * FROM t WHERE {mv_filter}");
        pair_for.session.sql(&mv).await.unwrap();
        let query = format!("SELECT * FROM t WHERE {query_filter}");
        let used = common::assert_same(&pair_for, &query).await;
        let violations = count(
            &pair_for.plain,
            &format!("SELECT count(*) FROM t WHERE ({query_filter}) AND NOT coalesce(({mv_filter}), false)"),
        )
        .await;
        // A query that only filters one table is never answered in parts: the other part
        // would read the whole table again (src/forms/parts.rs).
        let in_parts = pair_for
            .session
            .last_report()
            .is_some_and(|r| !r.parts.is_empty());
        assert!(!in_parts, "`{query}` answered in parts from `{mv}`");
        if used.is_empty() {
            if violations == 0 {
                missed += 1;
            } else {
                refused += 1;
            }
        } else {
            assert_eq!(
                violations, 0,
                "claimed that `{query_filter}` implies `{mv_filter}`, but {violations} rows say otherwise"
            );
            claimed += 1;
        }
        pair_for
            .session
            .sql(&format!("DROP MATERIALIZED VIEW m{i}"))
            .await
            .unwrap();
    }
    println!(
        "filter implication: {cases} pairs (seed {seed}), {claimed} implications claimed and \
         verified, {refused} correctly refused, {missed} true \
         implications not proved"
    );
    assert!(
        claimed * 4 >= cases,
        "the generator rarely produces implications: {claimed}/{cases}"
    );
    assert!(
        refused * 10 >= cases,
        "the generator rarely produces non-implications: {refused}/{cases}"
    );
}

/// `datafusion-materialized-views`' filter cases, with NULLs in the data.
#[tokio::test]
async fn datafusion_materialized_views_cases() {
    let pair = common::sales_and_events();
    let setup = [
        "CREATE TABLE t1 (column1 VARCHAR, column2 INT) AS VALUES ('2021', 3), ('2022', 4), ('2023', 5), ('2024', 6), (NULL, 7), ('2020', NULL), ('2019', 5)",
        "CREATE TABLE bool_test (id INT, name VARCHAR, active BOOLEAN) AS VALUES (1, 'a', true), (2, 'b', false), (3, 'c', NULL), (4, 'd', false), (5, NULL, true)",
    ];
    // The plain context sees the session's tables.
    for sql in setup {
        pair.session
            .sql(sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
    }
    let answered = [
        (
            "CREATE MATERIALIZED VIEW t1_gt3 AS SELECT * FROM t1 WHERE column2 > 3",
            "SELECT column1, column2 FROM t1 WHERE column2 > 4",
            "t1_gt3",
        ),
        (
            "CREATE MATERIALIZED VIEW t1_all AS SELECT * FROM t1",
            "SELECT * FROM t1 WHERE column1 < '2022'",
            "t1_all",
        ),
        (
            "CREATE MATERIALIZED VIEW inactive AS SELECT * FROM bool_test WHERE active = false",
            "SELECT id, name FROM bool_test WHERE NOT active",
            "inactive",
        ),
    ];
    for (mv, query, name) in answered {
        pair.session.sql(mv).await.unwrap();
        assert_eq!(
            common::assert_same(&pair, query).await,
            vec![name],
            "{query}"
        );
    }
    for mv in ["t1_gt3", "t1_all", "inactive"] {
        pair.session
            .sql(&format!("DROP MATERIALIZED VIEW {mv}"))
            .await
            .unwrap();
    }
    // `active IS NOT TRUE` keeps the NULLs too: without the column to filter them out again, the
    // MV cannot answer `NOT active`; with it, only through the residual filter.
    pair.session
        .sql("CREATE MATERIALIZED VIEW not_true_ids AS SELECT id, name FROM bool_test WHERE active IS NOT TRUE")
        .await
        .unwrap();
    let query = "SELECT id, name FROM bool_test WHERE NOT active";
    assert!(common::assert_same(&pair, query).await.is_empty());
    pair.session
        .sql(
            "CREATE MATERIALIZED VIEW not_true AS SELECT * FROM bool_test WHERE active IS NOT TRUE",
        )
        .await
        .unwrap();
    assert_eq!(common::assert_same(&pair, query).await, vec!["not_true"]);
    let plan = pair
        .session
        .sql(query)
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap()
        .display_indent()
        .to_string();
    assert!(plan.contains("Filter: NOT not_true.active"), "{plan}");
}

/// Calcite's testUnionAll: one branch of a UNION ALL is answered from the MV, the other is not;
/// the MV stays reported as used through DataFusion's later optimizer passes.
#[tokio::test]
async fn one_union_branch_answered() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW low_qty AS SELECT * FROM orders WHERE qty < 50")
        .await
        .unwrap();
    let query = "SELECT order_id, qty FROM orders WHERE qty > 300 UNION ALL SELECT order_id, qty FROM orders WHERE qty < 20";
    assert_eq!(common::assert_same(&pair, query).await, vec!["low_qty"]);
}
