//! End to end through a DataFusion session: SQL in, results compared with the original query,
//! the plan and report checked.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::cast::as_string_array;
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{col, lit};
use mvrewrite::{CandidateStatus, MvError, ReasonCode};

const AGG_SALES: &str = "CREATE MATERIALIZED VIEW agg_sales AS SELECT country, sex, sum(quantity), avg(price), sum(price) AS sp, count(price) AS cp FROM sales GROUP BY country, sex";

fn rejection(pair: &common::Pair, mv: &str) -> (ReasonCode, String) {
    match pair.session.last_report().unwrap().status_of(mv) {
        Some(CandidateStatus::Rejected(r)) | Some(CandidateStatus::Ineligible(r)) => {
            (r.code, r.reason.clone())
        }
        other => panic!("{mv} not rejected: {other:?}"),
    }
}

#[tokio::test]
async fn carbondata_examples_answered_and_refused() {
    let pair = common::sales_and_events();
    pair.session.sql(AGG_SALES).await.unwrap();
    for q in [
        "SELECT country, sex, sum(quantity), avg(price) FROM sales GROUP BY country, sex",
        "SELECT sex, sum(quantity) FROM sales GROUP BY sex",
        "SELECT avg(price), country FROM sales GROUP BY country",
    ] {
        assert_eq!(
            common::assert_same(&pair, q).await,
            vec!["agg_sales"],
            "{q}"
        );
    }
    let refused = [
        (
            "SELECT user_id, country, sex, sum(quantity), avg(price) FROM sales GROUP BY user_id, country, sex",
            ReasonCode::GroupByNotKept,
            "user_id",
        ),
        (
            "SELECT sex, avg(quantity) FROM sales GROUP BY sex",
            ReasonCode::AvgNeedsSumAndCount,
            "avg(CAST(sales.quantity AS DOUBLE))",
        ),
        (
            "SELECT country, max(price) FROM sales GROUP BY country",
            ReasonCode::AggregateMissing,
            "max(sales.price)",
        ),
    ];
    for (q, code, mentions) in refused {
        assert!(common::assert_same(&pair, q).await.is_empty(), "{q}");
        let (got, reason) = rejection(&pair, "agg_sales");
        assert_eq!(got, code, "{q}: {reason}");
        assert!(reason.contains(mentions), "{q}: {reason}");
    }
}

#[tokio::test]
async fn explain_shows_the_mv_in_logical_and_physical_plans() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW event_summary AS SELECT event_type, count(*) AS events, sum(value) AS total_value, max(ts) AS last_seen FROM events GROUP BY event_type")
        .await
        .unwrap();
    let explain = pair
        .session
        .sql("EXPLAIN SELECT count(*) FROM events")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = pretty_format_batches(&explain).unwrap().to_string();
    let logical = text.lines().filter(|l| l.contains("logical_plan")).count();
    assert!(logical > 0, "{text}");
    assert!(text.contains("TableScan: event_summary"), "{text}");
    assert!(
        text.contains("MemoryExec") || text.contains("DataSourceExec"),
        "{text}"
    );
    let physical = text.split("physical_plan").nth(1).unwrap_or_default();
    assert!(
        physical.contains("event_summary"),
        "physical plan does not read the MV: {text}"
    );
    assert!(
        !physical.contains("event_type"),
        "physical plan still reads events: {text}"
    );
    assert_eq!(
        common::assert_same(&pair, "SELECT count(*) FROM events").await,
        vec!["event_summary"]
    );
    assert_eq!(
        common::assert_same(&pair, "SELECT max(ts) FROM events").await,
        vec!["event_summary"]
    );
}

#[tokio::test]
async fn dataframe_queries_are_rewritten() {
    let pair = common::sales_and_events();
    pair.session.sql(AGG_SALES).await.unwrap();
    pair.session.clear_report();
    let df = pair
        .session
        .context()
        .table("sales")
        .await
        .unwrap()
        .aggregate(vec![col("sex")], vec![sum(col("quantity")), count(lit(1))])
        .unwrap();
    let plan = df.clone().into_optimized_plan().unwrap();
    // count(1) is not kept by agg_sales, so this one must stay on sales...
    assert!(!plan.display_indent().to_string().contains("agg_sales"));
    let df = pair
        .session
        .context()
        .table("sales")
        .await
        .unwrap()
        .aggregate(vec![col("sex")], vec![sum(col("quantity"))])
        .unwrap();
    // ...and this one is answered from it.
    let plan = df.clone().into_optimized_plan().unwrap();
    assert!(
        plan.display_indent().to_string().contains("agg_sales"),
        "{}",
        plan.display_indent()
    );
    let expected = pair
        .plain
        .table("sales")
        .await
        .unwrap()
        .aggregate(vec![col("sex")], vec![sum(col("quantity"))])
        .unwrap()
        .collect()
        .await
        .unwrap();
    common::compare(&expected, &df.collect().await.unwrap()).unwrap();
}

#[tokio::test]
async fn count_rollup_without_group_by_is_zero_on_empty_input() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW none_such AS SELECT sex, count(*) AS n, sum(quantity) AS q FROM sales WHERE country = 'atlantis' GROUP BY sex")
        .await
        .unwrap();
    let q = "SELECT count(*) AS n, sum(quantity) AS q FROM sales WHERE country = 'atlantis'";
    assert_eq!(common::assert_same(&pair, q).await, vec!["none_such"]);
    let rows = pair.session.sql(q).await.unwrap().collect().await.unwrap();
    let text = pretty_format_batches(&rows).unwrap().to_string();
    assert!(text.contains("| 0 |"), "count must be 0: {text}");
}

/// Daily distinct users per event type answer daily distinct users of one event type: each
/// of the query's groups is one of the MV's, so `count(DISTINCT ..)` (which never re-aggregates)
/// is read as it is. DataFusion plans it as two aggregates, the MV and the query alike.
#[tokio::test]
async fn distinct_counts_of_one_pinned_group_are_read_from_the_mv() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW daily_users AS SELECT date_trunc('day', ts) AS day, event_type, count(DISTINCT user_id) AS users FROM events GROUP BY 1, 2")
        .await
        .unwrap();
    common::assert_answered_by(
        &pair,
        "daily_users",
        &[
            "SELECT date_trunc('day', ts), count(DISTINCT user_id) FROM events WHERE event_type = 'click' GROUP BY 1",
            "SELECT date_trunc('day', ts) AS d, count(DISTINCT user_id) AS u FROM events WHERE event_type = 'click' GROUP BY 1 HAVING count(DISTINCT user_id) > 2 ORDER BY d",
            // Over the MV's rows, one per (day, event type): the distinct days are its days.
            "SELECT event_type, count(DISTINCT date_trunc('day', ts)) FROM events GROUP BY event_type",
            // No GROUP BY, every key pinned: the one row the MV may hold, or 0 when it holds none.
            "SELECT count(DISTINCT user_id) FROM events WHERE event_type = 'click' AND date_trunc('day', ts) = TIMESTAMP '2024-01-03 00:00:00'",
            "SELECT count(DISTINCT user_id) AS none FROM events WHERE event_type = 'no such type' AND date_trunc('day', ts) = TIMESTAMP '2024-01-03 00:00:00'",
        ],
    )
    .await;
    // A DOUBLE key: 0.0 and -0.0 (and NaNs) must count as the original counts them (its
    // DISTINCT is then kept, not read as a count of the MV's rows).
    pair.session
        .sql("CREATE TABLE signed (g INT, x DOUBLE) AS VALUES (1, 0.0), (1, -0.0), (1, 'NaN'), (1, '-NaN'), (1, 2.0), (2, -0.0), (2, NULL)")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pair.session
        .sql(
            "CREATE MATERIALIZED VIEW by_x AS SELECT g, x, count(*) AS n FROM signed GROUP BY g, x",
        )
        .await
        .unwrap();
    let used =
        common::assert_same(&pair, "SELECT g, count(DISTINCT x) FROM signed GROUP BY g").await;
    assert_eq!(used, ["by_x"]);
    for refused in [
        "SELECT date_trunc('day', ts), count(DISTINCT user_id) FROM events WHERE event_type IN ('click', 'view') GROUP BY 1",
        "SELECT date_trunc('month', ts), count(DISTINCT user_id) FROM events WHERE event_type = 'click' GROUP BY 1",
        // No GROUP BY, the day not pinned: several of the MV's rows.
        "SELECT count(DISTINCT user_id) FROM events WHERE event_type = 'click'",
    ] {
        assert!(
            common::assert_same(&pair, refused).await.is_empty(),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn output_types_and_nullability_are_the_originals() {
    let pair = common::sales_and_events();
    pair.session.sql(AGG_SALES).await.unwrap();
    let q = "SELECT sex, count(price) AS c, sum(quantity) AS s, avg(price) AS a FROM sales GROUP BY sex";
    pair.session.sql("CREATE MATERIALIZED VIEW counts AS SELECT country, sex, count(price) AS c, sum(quantity) AS s, sum(price) AS sp FROM sales GROUP BY country, sex").await.unwrap();
    assert_eq!(common::assert_same(&pair, q).await.len(), 1);
    let schema = pair.session.sql(q).await.unwrap().schema().clone();
    assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    assert!(!schema.field(1).is_nullable(), "count is never NULL");
    assert_eq!(schema.field(3).data_type(), &DataType::Float64);
}

#[tokio::test]
async fn cheapest_mv_wins_and_the_other_is_reported() {
    let pair = common::sales_and_events();
    pair.session.sql("CREATE MATERIALIZED VIEW fine AS SELECT user_id, sex, sum(quantity) AS q FROM sales GROUP BY user_id, sex").await.unwrap();
    pair.session.sql("CREATE MATERIALIZED VIEW coarse AS SELECT sex, sum(quantity) AS q FROM sales GROUP BY sex").await.unwrap();
    let used =
        common::assert_same(&pair, "SELECT sex, sum(quantity) FROM sales GROUP BY sex").await;
    assert_eq!(used, vec!["coarse"]);
    let report = pair.session.last_report().unwrap();
    assert_eq!(
        report.status_of("fine"),
        Some(&CandidateStatus::MoreExpensive)
    );
    assert!(!report.saturation.is_empty());
}

#[tokio::test]
async fn an_mv_as_large_as_its_table_wins_the_tie() {
    let pair = common::sales_and_events();
    // One row per input row and every column: read for the two columns the query needs, it
    // costs what the table does, and the tie goes to the MV (src/egraph/cost.rs).
    pair.session
        .sql("CREATE MATERIALIZED VIEW copy AS SELECT * FROM sales")
        .await
        .unwrap();
    let used = common::assert_same(&pair, "SELECT country, quantity FROM sales").await;
    assert_eq!(used, vec!["copy"]);
}

/// The Geneva case: an MV stores an expensive UDF column; the query computing the same UDF
/// reads the column and the function is never called again.
#[tokio::test]
async fn stored_udf_column_is_not_recomputed() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let pair = common::sales_and_events();
    let embed: ScalarUDF = create_udf(
        "embed",
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            CALLS.fetch_add(1, Ordering::SeqCst);
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let strings = as_string_array(&arrays[0])?;
            let out: Int64Array = strings
                .iter()
                .map(|s| s.map(|s| s.len() as i64 * 31))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
        }),
    );
    pair.session.context().register_udf(embed.clone());
    pair.plain.register_udf(embed);
    pair.session
        .sql("CREATE MATERIALIZED VIEW embedded AS SELECT user_id, embed(country) AS e FROM sales")
        .await
        .unwrap();
    let q = "SELECT user_id, embed(country) AS v FROM sales WHERE user_id < 10";
    let expected = pair.plain.sql(q).await.unwrap().collect().await.unwrap();
    CALLS.store(0, Ordering::SeqCst);
    let actual = pair.session.sql(q).await.unwrap().collect().await.unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst), 0, "embed() was called again");
    common::compare(&expected, &actual).unwrap();
    assert_eq!(
        pair.session.last_report().unwrap().used_mvs(),
        vec!["embedded"]
    );
}

#[tokio::test]
async fn ineligible_definitions_are_registered_with_the_reason() {
    let pair = common::sales_and_events();
    let cases = [
        (
            "recent",
            "SELECT sex, count(*) AS n FROM sales WHERE now() > TIMESTAMP '2000-01-01' GROUP BY sex",
            "now()",
        ),
        (
            "sampled",
            "SELECT sex, random() AS r FROM sales",
            "random()",
        ),
        (
            "limited",
            "SELECT sex, quantity FROM sales LIMIT 10",
            "LIMIT",
        ),
        (
            "windowed",
            "SELECT sex, sum(quantity) OVER (PARTITION BY sex) AS w FROM sales",
            "window",
        ),
    ];
    for (name, sql, mention) in cases {
        pair.session
            .sql(&format!("CREATE MATERIALIZED VIEW {name} AS {sql}"))
            .await
            .unwrap();
        let catalog = pair.session.catalog();
        let catalog = catalog.read().unwrap();
        let reason = catalog.get(name).unwrap().eligibility.clone().unwrap_err();
        assert_eq!(reason.code, ReasonCode::Ineligible);
        assert!(reason.reason.contains(mention), "{name}: {}", reason.reason);
    }
    let used = common::assert_same(
        &pair,
        "SELECT sex, count(*) AS n FROM sales WHERE now() > TIMESTAMP '2000-01-01' GROUP BY sex",
    )
    .await;
    assert!(used.is_empty());
    let (code, _) = rejection(&pair, "recent");
    assert_eq!(code, ReasonCode::Ineligible);
}

#[tokio::test]
async fn create_and_drop_statement_forms() {
    let pair = common::sales_and_events();
    let s = &pair.session;
    s.sql("CREATE MATERIALIZED VIEW m AS SELECT sex, count(*) AS n FROM sales GROUP BY sex")
        .await
        .unwrap();
    assert!(matches!(
        s.sql("CREATE MATERIALIZED VIEW m AS SELECT sex FROM sales").await,
        Err(MvError::DuplicateMv(n)) if n == "m"
    ));
    s.sql("CREATE MATERIALIZED VIEW IF NOT EXISTS m AS SELECT sex FROM sales")
        .await
        .unwrap();
    s.sql("CREATE OR REPLACE MATERIALIZED VIEW m AS SELECT country, count(*) AS n FROM sales GROUP BY country").await.unwrap();
    assert_eq!(
        common::assert_same(
            &pair,
            "SELECT country, count(*) FROM sales GROUP BY country"
        )
        .await,
        vec!["m"]
    );
    let rows = s
        .sql("SELECT * FROM m")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(rows[0].schema().field(0).name(), "country");
    s.sql("DROP MATERIALIZED VIEW m").await.unwrap();
    assert!(matches!(
        s.sql("DROP MATERIALIZED VIEW m").await,
        Err(MvError::UnknownMv(_))
    ));
    s.sql("DROP MATERIALIZED VIEW IF EXISTS m").await.unwrap();
    assert!(
        common::assert_same(
            &pair,
            "SELECT country, count(*) FROM sales GROUP BY country"
        )
        .await
        .is_empty()
    );
    assert!(
        s.sql("SELECT * FROM m").await.is_err(),
        "dropped MV table still registered"
    );
    assert!(matches!(
        s.sql("CREATE MATERIALIZED VIEW sales AS SELECT sex FROM sales")
            .await,
        Err(MvError::NameTaken { .. })
    ));
}

#[tokio::test]
async fn bad_input_gets_typed_errors() {
    let pair = common::sales_and_events();
    let s = &pair.session;
    let e = s
        .sql("CREATE MATERIALIZED VIEW x AS SELECT sex FROM nowhere")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, MvError::UnknownTable(t) if t.contains("nowhere")),
        "{e:?}"
    );
    let e = s
        .sql("CREATE MATERIALIZED VIEW x AS SELECT shoe_size FROM sales")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, MvError::UnknownColumn(c) if c.contains("shoe_size")),
        "{e:?}"
    );
    let e = s
        .sql("CREATE MATERIALIZED VIEW x AS SELEC sex FROM sales")
        .await
        .unwrap_err();
    assert!(
        matches!(e, MvError::Parse(_) | MvError::DataFusion(_)),
        "{e:?}"
    );
    assert!(s.sql("SELEC nonsense").await.is_err());
    assert!(!pair.session.catalog().read().unwrap().contains("x"));
}

#[tokio::test]
async fn mv_from_a_logical_plan() {
    let pair = common::sales_and_events();
    let plan = pair
        .session
        .context()
        .table("sales")
        .await
        .unwrap()
        .aggregate(vec![col("country")], vec![sum(col("quantity")).alias("q")])
        .unwrap()
        .into_unoptimized_plan();
    pair.session
        .create_materialized_view_from_plan("from_plan", plan)
        .await
        .unwrap();
    assert_eq!(
        common::assert_same(&pair, "SELECT sum(quantity) FROM sales").await,
        vec!["from_plan"]
    );
    // A DataFrame aliases the average in the aggregate itself: stored with its sum and count.
    let plan = pair
        .session
        .context()
        .table("sales")
        .await
        .unwrap()
        .aggregate(
            vec![col("country"), col("sex")],
            vec![avg(col("price")).alias("p")],
        )
        .unwrap()
        .into_unoptimized_plan();
    pair.session
        .create_materialized_view_from_plan("means_from_plan", plan)
        .await
        .unwrap();
    common::assert_answered_by(
        &pair,
        "means_from_plan",
        &["SELECT country, avg(price) FROM sales GROUP BY country"],
    )
    .await;
}

#[tokio::test]
async fn a_write_makes_the_mv_stale_until_it_is_recreated() {
    let pair = common::sales_and_events();
    let mv = "CREATE OR REPLACE MATERIALIZED VIEW by_sex AS SELECT sex, sum(quantity) AS q FROM sales GROUP BY sex";
    pair.session.sql(mv).await.unwrap();
    let q = "SELECT sex, sum(quantity) FROM sales GROUP BY sex";
    assert_eq!(common::assert_same(&pair, q).await, vec!["by_sex"]);
    pair.session
        .sql("INSERT INTO sales VALUES (1, 'china', 'f', 1000, 1.0)")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    // The plain context shares the table, so it sees the new row too.
    assert!(common::assert_same(&pair, q).await.is_empty());
    let (code, reason) = rejection(&pair, "by_sex");
    assert_eq!(code, ReasonCode::Stale);
    assert!(reason.contains("sales"), "{reason}");
    pair.session.sql(mv).await.unwrap();
    assert_eq!(common::assert_same(&pair, q).await, vec!["by_sex"]);
}

#[tokio::test]
async fn a_new_mv_answers_a_query_that_was_just_missed() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW by_sex AS SELECT sex, sum(quantity) AS q FROM sales GROUP BY sex")
        .await
        .unwrap();
    let q = "SELECT country, sum(quantity) FROM sales GROUP BY country";
    assert!(common::assert_same(&pair, q).await.is_empty());
    let (code, _) = rejection(&pair, "by_sex");
    assert_eq!(code, ReasonCode::GroupByNotKept);
    pair.session
        .sql("CREATE MATERIALIZED VIEW by_country AS SELECT country, sum(quantity) AS q FROM sales GROUP BY country")
        .await
        .unwrap();
    assert_eq!(common::assert_same(&pair, q).await, vec!["by_country"]);
}

/// Dropped and replaced MVs leave the index that rules MVs out before any rewriting: a slot
/// reused by a new MV answers for the new one only.
#[tokio::test]
async fn dropped_and_replaced_mvs_leave_the_index() {
    let pair = common::sales_and_events();
    let by_sex = "SELECT sex, sum(quantity) AS q FROM sales GROUP BY sex";
    let by_country = "SELECT country, sum(quantity) AS q FROM sales GROUP BY country";
    let s = &pair.session;
    s.sql(&format!("CREATE MATERIALIZED VIEW a AS {by_sex}"))
        .await
        .unwrap();
    assert_eq!(common::assert_same(&pair, by_sex).await, ["a"]);
    s.sql("DROP MATERIALIZED VIEW a").await.unwrap();
    s.sql(&format!("CREATE MATERIALIZED VIEW b AS {by_country}"))
        .await
        .unwrap();
    assert!(common::assert_same(&pair, by_sex).await.is_empty());
    assert_eq!(common::assert_same(&pair, by_country).await, ["b"]);
    s.sql(&format!(
        "CREATE OR REPLACE MATERIALIZED VIEW b AS {by_sex}"
    ))
    .await
    .unwrap();
    assert!(common::assert_same(&pair, by_country).await.is_empty());
    assert_eq!(common::assert_same(&pair, by_sex).await, ["b"]);
}

/// Two MVs alike in all but name, registered in reverse order of their names: the rule, which
/// rewrites without explaining, picks the one the report (which explains every MV) picks, and
/// the standalone rewriter too.
#[tokio::test]
async fn twin_mvs_are_chosen_alike_whatever_their_registration_order() {
    let pair = common::sales_and_events();
    let definition = "SELECT country, sex, sum(quantity) AS q FROM sales GROUP BY country, sex";
    for name in ["zz_twin", "mm_twin", "aa_twin"] {
        pair.session
            .sql(&format!("CREATE MATERIALIZED VIEW {name} AS {definition}"))
            .await
            .unwrap();
    }
    let query = "SELECT sex, sum(quantity) FROM sales GROUP BY sex";
    let used = common::assert_same(&pair, query).await;
    assert_eq!(used.len(), 1, "{used:?}");
    let catalog = pair.session.catalog();
    let plan = common::original_plan(&pair, query).await;
    let outcome = mvrewrite::Engine::default().rewrite(&plan, &catalog.read().unwrap());
    assert_eq!(outcome.report.used_mvs(), used);
}

/// A plan reading a table twice is screened scan by scan: an MV that keeps every column of one
/// of the scans may answer the region around that scan, and is tried; an MV lacking a column
/// of each scan can answer no part of the plan, which is then left alone without looking at
/// its regions, and the report says which column the MV lacks.
#[tokio::test]
async fn a_table_read_twice_is_screened_scan_by_scan() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW per_country AS SELECT country, sum(quantity) AS q FROM sales GROUP BY country")
        .await
        .unwrap();
    // The outer scan reads sex and price, which per_country lacks; the inner one reads only
    // what it keeps.
    let answered = "SELECT s.sex, s.price, t.q FROM sales s JOIN (SELECT country, sum(quantity) AS q FROM sales GROUP BY country) t ON s.country = t.country";
    assert_eq!(common::assert_same(&pair, answered).await, ["per_country"]);
    // Both scans read price.
    let unanswered = "SELECT s.sex, t.p FROM sales s JOIN (SELECT country, max(price) AS p FROM sales GROUP BY country) t ON s.country = t.country WHERE s.price > 10";
    assert!(common::assert_same(&pair, unanswered).await.is_empty());
    let plan = common::original_plan(&pair, unanswered).await;
    let catalog = pair.session.catalog();
    let catalog = catalog.read().unwrap();
    let engine = mvrewrite::Engine::default();
    assert!(engine.none_can_answer(&plan, &catalog));
    let report = engine.rewrite(&plan, &catalog).report;
    assert!(report.saturation.is_empty(), "no e-graph built: {report}");
    let [candidate] = report.candidates.as_slice() else {
        panic!("{report}");
    };
    assert!(
        matches!(&candidate.status, mvrewrite::CandidateStatus::Rejected(r)
            if r.code == mvrewrite::ReasonCode::ColumnMissing && r.reason.contains("sales.price")),
        "{report}"
    );
}

/// A one-table query whose aggregates no aggregate MV over its table can compute (by the
/// rollup table, or from group keys) is left alone without building an e-graph; an MV that
/// computes them by any route is still used: the same function, what the function rolls up
/// from (avg from sum and count), or a duplicate-insensitive aggregate of a group key.
#[tokio::test]
async fn aggregates_no_mv_computes_are_screened_out() {
    let pair = common::sales_and_events();
    for ddl in [
        "CREATE MATERIALIZED VIEW sums AS SELECT country, sex, sum(price) AS s, count(*) AS n FROM sales GROUP BY country, sex",
        "CREATE MATERIALIZED VIEW price_counts AS SELECT country, price, count(*) AS n FROM sales GROUP BY country, price",
        "CREATE MATERIALIZED VIEW price_totals AS SELECT country, sum(price) AS s, count(price) AS c FROM sales GROUP BY country",
    ] {
        pair.session.sql(ddl).await.unwrap();
    }
    let answered = [
        (
            "SELECT country, sum(price) FROM sales GROUP BY country",
            "price_totals",
        ),
        (
            "SELECT country, max(price) FROM sales GROUP BY country",
            "price_counts",
        ),
        (
            "SELECT country, avg(price) FROM sales GROUP BY country",
            "price_totals",
        ),
    ];
    for (query, mv) in answered {
        assert_eq!(common::assert_same(&pair, query).await, [mv], "{query}");
    }
    let catalog = pair.session.catalog();
    let engine = mvrewrite::Engine::default();
    // None keeps a stddev; of the MVs keeping sex, none keeps a min of price or groups by it.
    for query in [
        "SELECT country, stddev(price) FROM sales GROUP BY country",
        "SELECT country, min(price) FROM sales WHERE sex = 'F' GROUP BY country",
    ] {
        assert!(
            common::assert_same(&pair, query).await.is_empty(),
            "{query}"
        );
        let plan = common::original_plan(&pair, query).await;
        let catalog = catalog.read().unwrap();
        assert!(engine.none_can_answer(&plan, &catalog), "{query}");
        // The report, written without building an e-graph, names the missing aggregate.
        let report = engine.rewrite(&plan, &catalog).report;
        assert!(report.saturation.is_empty(), "{query}: {report}");
        assert!(
            report.candidates.iter().any(|c| matches!(&c.status,
                mvrewrite::CandidateStatus::Rejected(r) if r.code == mvrewrite::ReasonCode::AggregateMissing)),
            "{query}: {report}"
        );
    }
}

/// With more MVs than enter one e-graph, the rule (which explains only the MV it uses, and so
/// stops checking MVs once enough have passed) and the explaining rewrite choose the same MV:
/// the one most like the query, here last by name, and the answer is the original's.
#[tokio::test]
async fn more_candidates_than_the_egraph_takes_are_chosen_alike_explained_or_not() {
    let pair = common::sales_and_events();
    // 75 MVs keeping too few rows, 5 keeping more than the query's, and one keeping its rows.
    let filters = (0..75)
        .map(|i| (format!("m{i}"), 13 + i))
        .chain((0..5).map(|i| (format!("a{i}"), i)))
        .chain([("zz_exact".to_string(), 12)]);
    for (name, above) in filters {
        let ddl = format!(
            "CREATE MATERIALIZED VIEW {name} AS SELECT country, quantity, count(*) AS n, sum(price) AS s FROM sales WHERE quantity > {above} GROUP BY country, quantity"
        );
        pair.session.sql(&ddl).await.unwrap();
    }
    let query = "SELECT country, sum(price) FROM sales WHERE quantity > 12 GROUP BY country";
    let used = common::assert_same(&pair, query).await;
    assert_eq!(used, ["zz_exact"], "{query}");

    let plan = common::original_plan(&pair, query).await;
    let catalog = pair.session.catalog();
    let catalog = catalog.read().unwrap();
    let report = mvrewrite::Engine::default().rewrite(&plan, &catalog).report;
    assert_eq!(report.used_mvs(), used, "{report}");
    assert_eq!(report.candidates.len(), 81, "{report}");
    let left_out = report
        .candidates
        .iter()
        .filter(|c| matches!(&c.status,
            mvrewrite::CandidateStatus::Rejected(r) if r.code == mvrewrite::ReasonCode::CandidateLimit))
        .count();
    assert_eq!(left_out, 81 - 64, "{report}");
}

/// The average of a DECIMAL is rebuilt from an MV's sum and count to the digit, as `avg`
/// truncates it (negative amounts, NULLs, groups of NULLs), rolled up or read directly.
#[tokio::test]
async fn decimal_averages_are_rebuilt_from_sum_and_count() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW order_sums AS SELECT status, day, sum(amount) AS total, count(amount) AS n FROM orders GROUP BY status, day")
        .await
        .unwrap();
    // Amounts are never negative: shifted ones often are (`avg` truncates toward zero).
    pair.session
        .sql("CREATE MATERIALIZED VIEW shifted_sums AS SELECT status, day, sum(amount - 20) AS total, count(amount - 20) AS n FROM orders GROUP BY status, day")
        .await
        .unwrap();
    for (query, mv) in [
        (
            "SELECT status, avg(amount) FROM orders GROUP BY status",
            "order_sums",
        ),
        (
            "SELECT avg(amount), sum(amount) FROM orders WHERE day >= DATE '2018-01-01'",
            "order_sums",
        ),
        (
            "SELECT status, day, avg(amount) FROM orders GROUP BY status, day",
            "order_sums",
        ),
        (
            "SELECT day, avg(amount) FROM orders WHERE status IS NULL GROUP BY day",
            "order_sums",
        ),
        (
            "SELECT status, avg(amount - 20) FROM orders GROUP BY status",
            "shifted_sums",
        ),
        (
            "SELECT day, avg(amount - 20) FROM orders GROUP BY day",
            "shifted_sums",
        ),
        // No row: NULL, as avg gives over nothing.
        (
            "SELECT avg(amount) FROM orders WHERE status = 'no such status'",
            "order_sums",
        ),
    ] {
        assert_eq!(common::assert_same(&pair, query).await, [mv], "{query}");
    }
    // A DECIMAL(10, 2) average is a DECIMAL(14, 6) (more digits than the amounts have).
    let batches = pair
        .session
        .context()
        .sql("SELECT avg(amount) AS a FROM orders")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        batches[0].schema().field(0).data_type(),
        &datafusion::arrow::datatypes::DataType::Decimal128(14, 6)
    );
}

/// `count(x)` is `count(*)` where `x` is never NULL: an average of a NOT NULL column is
/// rebuilt from its sum and the MV's `count(*)`; never for a nullable column, nor for a NOT
/// NULL column an outer join extends with NULLs.
#[tokio::test]
async fn averages_of_not_null_columns_use_count_star() {
    let pair = common::sales_and_events();
    let rows: Vec<String> = (0..300)
        .map(|i| {
            let price = (i * 7919 % 2001) as f64 / 4.0 - 200.0;
            format!(
                "({}, {price}, {}, {})",
                i % 40,
                i % 3,
                (i * 13 % 17) as f64 / 8.0
            )
        })
        .collect();
    for statement in [
        "CREATE TABLE prices (item INT NOT NULL, price DECIMAL(10, 2) NOT NULL, shop INT NOT NULL, weight DOUBLE NOT NULL, note VARCHAR)".to_string(),
        format!("INSERT INTO prices (item, price, shop, weight) VALUES {}", rows.join(", ")),
        "CREATE MATERIALIZED VIEW by_item AS SELECT item, shop, count(*) AS n, sum(price) AS total, sum(weight) AS w FROM prices GROUP BY item, shop".into(),
        "CREATE MATERIALIZED VIEW site_weights AS SELECT v.site_id, count(*) AS n, sum(p.weight) AS w FROM visits v LEFT JOIN prices p ON v.site_id = p.item GROUP BY v.site_id".into(),
        "CREATE MATERIALIZED VIEW daily AS SELECT event_type, date_trunc('day', ts) AS day, count(*) AS n, sum(value) AS total FROM events GROUP BY 1, 2".into(),
    ] {
        pair.session.sql(&statement).await.unwrap();
    }
    common::assert_answered_by(
        &pair,
        "by_item",
        &[
            "SELECT item, avg(price) FROM prices GROUP BY item",
            "SELECT shop, avg(weight), avg(price) FROM prices WHERE shop > 0 GROUP BY shop",
            "SELECT avg(weight) FROM prices",
            // No row: NULL, as avg gives over nothing.
            "SELECT avg(price), avg(weight) FROM prices WHERE shop > 5",
        ],
    )
    .await;
    common::assert_not_rewritten(
        &pair,
        &[
            // A visit at a site without items has a NULL weight.
            "SELECT v.site_id, avg(p.weight) FROM visits v LEFT JOIN prices p ON v.site_id = p.item GROUP BY v.site_id",
            // value is nullable: its count is not the rows'.
            "SELECT event_type, avg(value) FROM events GROUP BY event_type",
        ],
    )
    .await;
}

/// DataFusion averages an integer as a DOUBLE: `avg(x)` is `avg(CAST(x AS DOUBLE))`, rebuilt
/// from the MV's `count(x)` (or `count(*)` where `x` is NOT NULL) and, for an integer of at
/// most 32 bits, its `sum(x)` (64 bits, exact); a BIGINT only from the sum of its DOUBLEs,
/// never from its own sum, which may overflow where the DOUBLEs' does not.
#[tokio::test]
async fn averages_of_integers_are_rebuilt_from_sum_and_count() {
    let pair = common::sales_and_events();
    for statement in [
        "CREATE MATERIALIZED VIEW quantities AS SELECT country, sex, sum(quantity) AS q, count(quantity) AS n, sum(user_id) AS u, count(*) AS c FROM sales GROUP BY country, sex",
        "CREATE TABLE items (item INT NOT NULL, shop SMALLINT NOT NULL, stock INT)",
        "INSERT INTO items VALUES (1, 1, 10), (2, 1, NULL), (3, 2, -7), (4, 2, 2147483647), (5, 3, -2147483648), (6, 3, 5)",
        "CREATE MATERIALIZED VIEW by_shop AS SELECT shop, count(*) AS n, sum(item) AS items, sum(shop) AS shops, sum(stock) AS stock FROM items GROUP BY shop",
        "CREATE MATERIALIZED VIEW user_doubles AS SELECT country, sum(CAST(user_id AS DOUBLE)) AS u, count(user_id) AS n FROM sales GROUP BY country",
        // Prices cut to integers: their sum is not the prices'.
        "CREATE MATERIALIZED VIEW cut_prices AS SELECT country, sum(CAST(price AS BIGINT)) AS p, count(price) AS n FROM sales GROUP BY country",
    ] {
        pair.session.sql(statement).await.unwrap();
    }
    for (query, mv) in [
        (
            "SELECT country, avg(quantity) FROM sales GROUP BY country",
            "quantities",
        ),
        (
            "SELECT country, sex, avg(quantity), sum(quantity) FROM sales GROUP BY country, sex",
            "quantities",
        ),
        ("SELECT avg(quantity) FROM sales", "quantities"),
        // No non-NULL quantity: NULL, as avg gives.
        (
            "SELECT avg(quantity) FROM sales WHERE country = 'nowhere'",
            "quantities",
        ),
        // A BIGINT from the sum of its DOUBLEs.
        (
            "SELECT country, avg(user_id) FROM sales GROUP BY country",
            "user_doubles",
        ),
        // NOT NULL: `count(*)` counts them.
        ("SELECT avg(item), avg(shop) FROM items", "by_shop"),
        ("SELECT shop, avg(item) FROM items GROUP BY shop", "by_shop"),
    ] {
        assert_eq!(common::assert_same(&pair, query).await, [mv], "{query}");
    }
    common::assert_not_rewritten(
        &pair,
        &[
            // A BIGINT from its own sum: refused.
            "SELECT sex, avg(user_id) FROM sales GROUP BY sex",
            // stock is nullable and the MV keeps no count of it.
            "SELECT avg(stock) FROM items",
            "SELECT country, avg(price) FROM sales GROUP BY country",
        ],
    )
    .await;
}

/// An MV's averages are stored with their sum and count (as CarbonData and ClickHouse's
/// `avgState` keep them), so an MV that shows only averages answers coarser averages, sums
/// and counts.
#[tokio::test]
async fn averages_are_stored_with_their_sum_and_count() {
    let pair = common::sales_and_events();
    for statement in [
        "CREATE MATERIALIZED VIEW means AS SELECT country, sex, avg(quantity) AS q, avg(user_id) AS u, avg(price) AS p FROM sales GROUP BY country, sex",
        "CREATE MATERIALIZED VIEW hourly AS SELECT toStartOfHour(ts) AS hour, event_type, avg(value) AS v FROM events GROUP BY 1, 2",
        "CREATE MATERIALIZED VIEW daily_amounts AS SELECT status, day, avg(amount) AS a FROM orders GROUP BY status, day",
        "CREATE MATERIALIZED VIEW ordered AS SELECT sex, country, avg(price) AS p FROM sales GROUP BY sex, country HAVING count(*) > 1 ORDER BY sex",
        // A state computed for the HAVING only is output too.
        "CREATE MATERIALIZED VIEW kept AS SELECT sex, country, avg(quantity) AS q FROM sales GROUP BY sex, country HAVING sum(quantity) > 0",
        // A REAL is averaged as DOUBLEs: its states are theirs.
        "CREATE TABLE gauges (g INT, x REAL) AS VALUES (1, 1.5), (1, NULL), (2, 0.1), (2, 0.2), (3, NULL)",
        "CREATE MATERIALIZED VIEW gauge_means AS SELECT g, avg(x) AS m FROM gauges GROUP BY g",
        // Its own sum and count: nothing added.
        "CREATE MATERIALIZED VIEW own AS SELECT sex, avg(quantity) AS q, sum(quantity), count(quantity) AS n FROM sales GROUP BY sex",
    ] {
        pair.session.sql(statement).await.unwrap();
    }
    // What `SELECT *` shows.
    let columns = async |mv: &str| -> Vec<String> {
        let frame = pair
            .session
            .sql(&format!("SELECT * FROM {mv}"))
            .await
            .unwrap();
        frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    };
    assert_eq!(
        columns("means").await,
        [
            "country",
            "sex",
            "q",
            "u",
            "p",
            "sum(sales.quantity)",
            "count(sales.quantity)",
            "sum(CAST(sales.user_id AS Float64))",
            "count(sales.user_id)",
            "sum(sales.price)",
            "count(sales.price)",
        ]
    );
    assert_eq!(
        columns("own").await,
        ["sex", "q", "sum(sales.quantity)", "n"]
    );
    common::assert_answered_by(
        &pair,
        "means",
        &[
            "SELECT country, avg(quantity), avg(user_id), avg(price) FROM sales GROUP BY country",
            "SELECT avg(quantity), sum(quantity), count(price), sum(price) FROM sales",
            // No group: NULL averages and sums, zero counts.
            "SELECT avg(quantity), avg(price), count(quantity) FROM sales WHERE country = 'nowhere'",
        ],
    )
    .await;
    common::assert_answered_by(
        &pair,
        "hourly",
        &["SELECT date_trunc('day', ts) AS day, avg(value), count(value) FROM events GROUP BY 1"],
    )
    .await;
    common::assert_answered_by(
        &pair,
        "daily_amounts",
        &["SELECT status, avg(amount), sum(amount) FROM orders GROUP BY status"],
    )
    .await;
    assert_eq!(
        columns("ordered").await,
        [
            "sex",
            "country",
            "p",
            "sum(sales.price)",
            "count(sales.price)"
        ]
    );
    assert_eq!(
        columns("kept").await,
        [
            "sex",
            "country",
            "q",
            "sum(sales.quantity)",
            "count(sales.quantity)"
        ]
    );
    // `kept` lacks the groups its HAVING drops: never read for a coarser grouping, whatever
    // its states (results compared with the original's, whichever MV answers).
    for query in [
        "SELECT sex, avg(quantity), sum(quantity) FROM sales GROUP BY sex",
        "SELECT avg(quantity) FROM sales WHERE country = 'nowhere'",
    ] {
        let used = common::assert_same(&pair, query).await;
        assert!(!used.contains(&"kept".to_string()), "{query}: {used:?}");
    }
    common::assert_answered_by(
        &pair,
        "gauge_means",
        &[
            "SELECT avg(x) FROM gauges",
            "SELECT avg(x) FROM gauges WHERE g > 1",
        ],
    )
    .await;
    // The averaged column changes type: the states are renamed, and the refresh recomputes.
    for statement in [
        "CREATE OR REPLACE TABLE gauges (g INT, x BIGINT) AS VALUES (1, 9223372036854775807), (1, 9223372036854775807), (2, -3)",
        "REFRESH MATERIALIZED VIEW gauge_means",
    ] {
        pair.session.sql(statement).await.unwrap();
    }
    assert_eq!(
        columns("gauge_means").await,
        [
            "g",
            "m",
            "sum(CAST(gauges.x AS Float64))",
            "count(gauges.x)"
        ]
    );
    common::assert_answered_by(&pair, "gauge_means", &["SELECT avg(x) FROM gauges"]).await;
    common::assert_not_rewritten(
        &pair,
        &[
            // A BIGINT's average is stored as the sum of its DOUBLEs: not its own sum.
            "SELECT sum(user_id) FROM sales",
        ],
    )
    .await;
}

/// The rule writes its report when it is read. Read after the catalog changed, the report
/// describes the catalog as it is then, and its notes say so and name what the plan reads.
#[tokio::test]
async fn a_report_read_after_the_catalog_changed_says_so() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW by_sex AS SELECT sex, sum(quantity) AS q FROM sales GROUP BY sex")
        .await
        .unwrap();
    let q = "SELECT sex, sum(quantity) FROM sales GROUP BY sex";
    assert_eq!(common::assert_same(&pair, q).await, vec!["by_sex"]);
    let report = pair.session.last_report().unwrap();
    assert!(report.notes.is_empty(), "{report}");
    pair.session
        .sql("DROP MATERIALIZED VIEW by_sex")
        .await
        .unwrap();
    pair.session
        .sql("CREATE MATERIALIZED VIEW by_country AS SELECT country, sum(quantity) AS q FROM sales GROUP BY country")
        .await
        .unwrap();
    let report = pair.session.last_report().unwrap();
    assert!(report.used_mvs().is_empty());
    assert_eq!(
        report.notes,
        [
            "the catalog changed after the query was planned; this report describes it as it is now (the plan reads by_sex)"
        ]
    );
    assert!(matches!(
        report.status_of("by_country"),
        Some(CandidateStatus::Rejected(_))
    ));
}

/// A nested MV (over another MV) answers queries over the base tables, through its parent's
/// definition; replacing the parent makes it stale.
#[tokio::test]
async fn replacing_an_mv_makes_mvs_over_it_stale() {
    let pair = common::sales_and_events();
    let s = &pair.session;
    s.sql("CREATE MATERIALIZED VIEW base_mv AS SELECT country, sex, quantity FROM sales WHERE quantity > 5")
        .await
        .unwrap();
    s.sql("CREATE MATERIALIZED VIEW over_mv AS SELECT country, sum(quantity) AS q FROM base_mv GROUP BY country")
        .await
        .unwrap();
    let q = "SELECT country, sum(quantity) FROM sales WHERE 5 < quantity GROUP BY country";
    assert_eq!(common::assert_same(&pair, q).await, vec!["over_mv"]);
    // A filter the query's contradicts: base_mv cannot answer any of its rows.
    s.sql("CREATE OR REPLACE MATERIALIZED VIEW base_mv AS SELECT country, sex, quantity FROM sales WHERE quantity < 3")
        .await
        .unwrap();
    assert!(common::assert_same(&pair, q).await.is_empty());
    let (code, reason) = rejection(&pair, "over_mv");
    assert_eq!(code, ReasonCode::Stale);
    assert!(
        reason.contains("base_mv was written after over_mv was computed"),
        "{reason}"
    );
}

/// `refresh = 'on_commit'` MVs are recomputed after each write through the session and keep
/// answering; manual ones are stale until REFRESH.
#[tokio::test]
async fn on_commit_mvs_follow_writes_and_manual_ones_wait_for_refresh() {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int32Type, Int64Type};
    let session = mvrewrite::MvSession::new();
    for sql in [
        "CREATE TABLE t (a INT, b INT) AS VALUES (1, 10), (2, 20)",
        "CREATE MATERIALIZED VIEW live WITH (refresh = 'on_commit') AS SELECT a, sum(b) AS s FROM t GROUP BY a",
        "CREATE MATERIALIZED VIEW manual AS SELECT a, count(*) AS n FROM t GROUP BY a",
        "INSERT INTO t VALUES (1, 5), (3, 7)",
    ] {
        session.sql(sql).await.unwrap().collect().await.unwrap();
    }
    let query = |sql: &'static str| {
        let session = &session;
        async move {
            session.clear_report();
            let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
            let pairs: Vec<(i32, i64)> = batches
                .iter()
                .flat_map(|b| {
                    let a = b.column(0).as_primitive::<Int32Type>().clone();
                    let v = b.column(1).as_primitive::<Int64Type>().clone();
                    (0..b.num_rows()).map(move |i| (a.value(i), v.value(i)))
                })
                .collect();
            (pairs, session.last_report().unwrap())
        }
    };
    let (sums, report) = query("SELECT a, sum(b) FROM t GROUP BY a ORDER BY a").await;
    assert_eq!(report.used_mvs(), ["live"], "{report}");
    assert_eq!(sums, [(1, 15), (2, 20), (3, 7)]);
    let (counts, report) = query("SELECT a, count(*) FROM t GROUP BY a ORDER BY a").await;
    assert!(report.used_mvs().is_empty(), "{report}");
    assert!(
        report.to_string().contains("manual: rejected [stale]"),
        "{report}"
    );
    assert_eq!(counts, [(1, 2), (2, 1), (3, 1)]);
    session
        .sql("REFRESH MATERIALIZED VIEW manual")
        .await
        .unwrap();
    let (counts, report) = query("SELECT a, count(*) FROM t GROUP BY a ORDER BY a").await;
    assert_eq!(report.used_mvs(), ["manual"], "{report}");
    assert_eq!(counts, [(1, 2), (2, 1), (3, 1)]);
    let err = session
        .sql("CREATE MATERIALIZED VIEW bad WITH (refresh = 'hourly') AS SELECT a FROM t")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'on_commit' or 'manual'"), "{err}");
}

/// CarbonData's `salary NOT LIKE '6%'` on a DOUBLE: Spark casts the operand to a string, plain
/// DataFusion refuses. The session runs it, and an MV with that filter answers it.
#[tokio::test]
async fn like_on_a_number_runs_as_in_spark() {
    let pair = common::sales_and_events();
    let plain = datafusion::prelude::SessionContext::new();
    plain
        .register_table(
            "sales",
            pair.session
                .context()
                .table_provider("sales")
                .await
                .unwrap(),
        )
        .unwrap();
    let q = "SELECT country, sum(quantity) FROM sales WHERE price NOT LIKE '1%' GROUP BY country";
    let refused = match plain.sql(q).await {
        Ok(df) => df.collect().await.err(),
        Err(e) => Some(e),
    };
    assert!(
        refused.is_some_and(|e| e.to_string().contains("LIKE")),
        "DataFusion now coerces LIKE on numbers: spark_like.rs can go"
    );
    pair.session
        .sql("CREATE MATERIALIZED VIEW not_ones AS SELECT country, sex, sum(quantity) FROM sales WHERE price NOT LIKE '1%' GROUP BY country, sex")
        .await
        .unwrap();
    assert_eq!(common::assert_same(&pair, q).await, vec!["not_ones"]);
    let kept = pair
        .session
        .sql("SELECT count(*) FROM sales WHERE price LIKE '1%'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let ones = kept[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert!(ones > 0, "the filter keeps some rows and drops others");
    // In a subquery too, found by the same walk: the session runs it, plain DataFusion does not.
    let nested = "SELECT count(*) FROM sales WHERE country IN (SELECT country FROM sales WHERE price LIKE '1%')";
    let in_subquery = pair.session.sql(nested).await.unwrap().collect().await;
    let refused = match plain.sql(nested).await {
        Ok(df) => df.collect().await.err(),
        Err(e) => Some(e),
    };
    assert!(
        refused.is_some(),
        "plain DataFusion runs a LIKE on a number"
    );
    // The same answer as the cast spelled out, which plain DataFusion runs.
    let spelled_out = "SELECT count(*) FROM sales WHERE country IN (SELECT country FROM sales WHERE CAST(price AS VARCHAR) LIKE '1%')";
    let expected = plain
        .sql(spelled_out)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    common::compare(&expected, &in_subquery.unwrap()).unwrap();
}

/// The rule rewrites in the first optimizer pass that leaves the plan as it was, or normalizes
/// the plan itself in the last pass: with any configured number of passes, the query is
/// answered from the MV, and a DataFrame optimized twice is rewritten both times.
#[tokio::test]
async fn rewritten_whatever_the_number_of_optimizer_passes() {
    let sales = mvrewrite::testkit::datagen::sales(3000, 7).unwrap();
    let query = "SELECT sex, sum(quantity) FROM sales WHERE country <> 'Tonga' GROUP BY sex";
    for passes in [1, 2, 3, 8] {
        let config = datafusion::prelude::SessionConfig::new()
            .set_usize("datafusion.optimizer.max_passes", passes);
        let session = mvrewrite::MvSession::with_config(config);
        let plain = session.without_rewrites();
        let table =
            datafusion::catalog::MemTable::try_new(sales.schema(), vec![vec![sales.clone()]]);
        session
            .context()
            .register_table("sales", Arc::new(table.unwrap()))
            .unwrap();
        session.sql(AGG_SALES).await.unwrap();
        let df = session.context().sql(query).await.unwrap();
        for _ in 0..2 {
            let plan = df.clone().into_optimized_plan().unwrap();
            assert!(
                plan.display_indent().to_string().contains("agg_sales"),
                "{passes} passes:\n{}",
                plan.display_indent()
            );
        }
        let used = common::assert_same_in(&session, &plain, query).await;
        assert_eq!(used, ["agg_sales"], "{passes} passes");
    }
}

/// Two queries optimized at once, their passes interleaved: each is rewritten in its own
/// second pass, where its plan comes back unchanged.
#[tokio::test]
async fn queries_optimized_at_once_are_each_rewritten() {
    use datafusion::common::tree_node::Transformed;
    use datafusion::optimizer::{OptimizerContext, OptimizerRule};
    let pair = common::sales_and_events();
    pair.session.sql(AGG_SALES).await.unwrap();
    let plan = |sql: &'static str| {
        let plain = pair.plain.clone();
        async move { plain.sql(sql).await.unwrap().into_optimized_plan().unwrap() }
    };
    let a = plan("SELECT sex, sum(quantity) FROM sales GROUP BY sex").await;
    let b = plan("SELECT country, sum(quantity) FROM sales GROUP BY country").await;
    let rule = mvrewrite::MvRewriteRule::new(pair.session.catalog(), Default::default());
    let at = |nanos| {
        OptimizerContext::new()
            .with_query_execution_start_time(chrono::DateTime::from_timestamp_nanos(nanos))
    };
    let (config_a, config_b) = (at(1), at(2));
    let pass = |p: &datafusion::logical_expr::LogicalPlan, config: &OptimizerContext| {
        rule.rewrite(p.clone(), config).unwrap()
    };
    let reads_mv = |t: &Transformed<datafusion::logical_expr::LogicalPlan>| {
        t.transformed && t.data.display_indent().to_string().contains("agg_sales")
    };
    assert!(!pass(&a, &config_a).transformed, "first pass of a waits");
    assert!(!pass(&b, &config_b).transformed, "first pass of b waits");
    for (original, config) in [(a, config_a), (b, config_b)] {
        let rewritten = pass(&original, &config);
        assert!(reads_mv(&rewritten), "unchanged in its second pass");
        let run = |p| async {
            pair.plain
                .execute_logical_plan(p)
                .await
                .unwrap()
                .collect()
                .await
        };
        let expected = run(original).await.unwrap();
        common::compare(&expected, &run(rewritten.data).await.unwrap()).unwrap();
    }
}

/// A stale MV the staleness setting allows still answers a query whole, but never as one of its
/// parts: its rows next to the table's current ones would mix two points in time.
#[tokio::test]
async fn a_stale_mv_is_never_one_part_of_a_query() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW big AS SELECT u.country, count(*) AS n FROM visits v JOIN users u ON v.user_id = u.user_id WHERE v.duration > 100 GROUP BY u.country")
        .await
        .unwrap();
    let q = "SELECT u.country, count(*) FROM visits v JOIN users u ON v.user_id = u.user_id WHERE v.duration > 20 GROUP BY u.country";
    assert_eq!(common::assert_same(&pair, q).await, vec!["big"]);
    let parts = |pair: &common::Pair| pair.session.last_report().map_or(0, |r| r.parts.len());
    assert_eq!(parts(&pair), 1);
    pair.session
        .set_staleness(mvrewrite::Staleness::Tolerated)
        .unwrap();
    pair.session
        .sql("INSERT INTO visits VALUES (99999, 1, NULL, 1000, 1)")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pair.session.clear_report();
    assert!(common::assert_same(&pair, q).await.is_empty());
    assert_eq!(parts(&pair), 0);
}
