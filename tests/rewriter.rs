//! The standalone `rewrite` call: schemas and MV definitions in, plan, SQL and report out,
//! nothing executed.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use mvrewrite::{CandidateStatus, MvError, ReasonCode, Rewriter};

fn rewriter() -> Rewriter {
    let mut rw = Rewriter::new();
    rw.execute(
        "CREATE TABLE events (event_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, user_id BIGINT NOT NULL, event_type VARCHAR NOT NULL, value DOUBLE);
         CREATE MATERIALIZED VIEW user_stats AS SELECT user_id, event_type, count(*) AS events, sum(value) AS total FROM events GROUP BY user_id, event_type;
         CREATE MATERIALIZED VIEW event_summary AS SELECT event_type, count(*) AS events, sum(value) AS total, max(ts) AS last_seen FROM events GROUP BY event_type",
    )
    .unwrap();
    rw.set_table_rows("events", 10_000_000);
    rw
}

#[test]
fn rewrite_sql_returns_plan_sql_and_report() {
    let rw = rewriter();
    let r = rw
        .rewrite_sql("SELECT user_id, sum(value) AS total FROM events GROUP BY user_id")
        .unwrap();
    assert!(r.rewritten);
    assert_eq!(r.used_mvs, vec!["user_stats"]);
    let sql = r.sql.clone().unwrap();
    assert!(sql.contains("user_stats"), "{sql}");
    // The SQL is real SQL: it parses again.
    Parser::parse_sql(&GenericDialect {}, &sql).unwrap();
    assert!(
        r.plan
            .display_indent()
            .to_string()
            .contains("TableScan: user_stats")
    );
    assert!(
        r.original
            .display_indent()
            .to_string()
            .contains("TableScan: events")
    );
    assert_eq!(r.plan.schema().as_arrow(), r.original.schema().as_arrow());
    // event_summary cannot group by user: it says so.
    match r.report.status_of("event_summary") {
        Some(CandidateStatus::Rejected(rej)) => {
            assert_eq!(rej.code, ReasonCode::GroupByNotKept);
            assert!(rej.reason.contains("user_id"), "{}", rej.reason);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_coarsest_mv_answers_a_global_count() {
    let rw = rewriter();
    let r = rw.rewrite_sql("SELECT count(*) FROM events").unwrap();
    assert_eq!(r.used_mvs, vec!["event_summary"]);
    assert_eq!(
        r.report.status_of("user_stats"),
        Some(&CandidateStatus::MoreExpensive)
    );
}

#[test]
fn rewrite_a_logical_plan_and_register_from_arrow_schema_and_plan() {
    let mut rw = Rewriter::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, true),
    ]));
    rw.register_table("t", schema).unwrap();
    rw.set_table_rows("t", 1_000_000);
    let r = rw
        .rewrite_sql("SELECT k, sum(v) AS s, count(v) AS c FROM t GROUP BY k")
        .unwrap();
    assert!(!r.rewritten);
    rw.register_materialized_view("t_by_k", r.original.clone())
        .unwrap();
    let query = rw.rewrite_sql("SELECT sum(v) FROM t").unwrap().original;
    let r = rw.rewrite(&query).unwrap();
    assert_eq!(r.used_mvs, vec!["t_by_k"]);
}

#[test]
fn queries_no_mv_answers_keep_their_plan() {
    let rw = rewriter();
    let r = rw
        .rewrite_sql("SELECT event_type, count(DISTINCT user_id) FROM events WHERE value > 3 GROUP BY event_type")
        .unwrap();
    assert!(!r.rewritten);
    assert_eq!(r.plan, r.original);
    assert!(r.used_mvs.is_empty());
    let code = |mv: &str| match r.report.status_of(mv) {
        Some(CandidateStatus::Rejected(rej)) => rej.code,
        other => panic!("{mv}: {other:?}"),
    };
    // user_stats keeps user_id but not value; event_summary keeps neither (the user ids the
    // query counts, first).
    assert_eq!(
        code("user_stats"),
        ReasonCode::FilterNotOnGroupKeys,
        "{}",
        r.report
    );
    assert_eq!(
        code("event_summary"),
        ReasonCode::ColumnMissing,
        "{}",
        r.report
    );
}

#[test]
fn errors_are_typed() {
    let mut rw = rewriter();
    assert!(matches!(
        rw.execute("CREATE MATERIALIZED VIEW e AS SELECT x FROM nope"),
        Err(MvError::UnknownTable(_))
    ));
    assert!(matches!(
        rw.execute("CREATE MATERIALIZED VIEW user_stats AS SELECT user_id FROM events"),
        Err(MvError::DuplicateMv(_))
    ));
    assert!(matches!(
        rw.execute("CREATE MATERIALIZED VIEW events AS SELECT user_id FROM events"),
        Err(MvError::NameTaken { .. })
    ));
    assert!(matches!(
        rw.execute("CREATE MATERIALIZED VIEW ("),
        Err(MvError::Parse(_))
    ));
    assert!(rw.rewrite_sql("SELECT nope FROM events").is_err());
    assert!(matches!(
        rw.execute("DROP MATERIALIZED VIEW nope"),
        Err(MvError::UnknownMv(_))
    ));
    rw.execute("DROP MATERIALIZED VIEW IF EXISTS nope; DROP MATERIALIZED VIEW user_stats")
        .unwrap();
    assert!(!rw.catalog().contains("user_stats"));
}

/// Hundreds of candidate MVs on one table: saturation stops at its limits, the report says so,
/// and the answer is still a correct plan.
#[test]
fn many_candidates_stay_bounded() {
    let mut rw = rewriter();
    for i in 0..300 {
        rw.execute(&format!(
            "CREATE MATERIALIZED VIEW m{i} AS SELECT user_id, event_type, sum(value) AS s, count(*) AS n FROM events WHERE user_id > {i} GROUP BY user_id, event_type"
        ))
        .unwrap();
    }
    let r = rw
        .rewrite_sql("SELECT event_type, count(*) FROM events GROUP BY event_type")
        .unwrap();
    assert_eq!(r.used_mvs, vec!["event_summary"]);
    assert_eq!(r.report.saturation.len(), 1);
    let stats = &r.report.saturation[0];
    assert!(stats.iterations <= 10 && stats.nodes <= 20_000, "{stats:?}");
    assert_eq!(r.report.candidates.len(), 302);
}

/// An MV joining an extra table twice is not read as lossless through one key: its second read
/// would be attached on the first one's (a review finding), and neither is a table of one name
/// in two schemas read as one.
#[test]
fn extra_tables_read_twice_and_same_names_in_two_schemas_are_not_matched() {
    let mut rw = Rewriter::new();
    rw.execute(
        "CREATE TABLE customers (id INT NOT NULL, name VARCHAR);
         CREATE TABLE orders (id INT, cust_id INT NOT NULL, amount INT);
         ALTER TABLE customers ADD PRIMARY KEY (id);
         ALTER TABLE orders ADD FOREIGN KEY (cust_id) REFERENCES customers (id);
         CREATE MATERIALIZED VIEW doubled AS SELECT o.id, o.amount, c.name, c2.name AS other FROM orders o JOIN customers c ON o.cust_id = c.id CROSS JOIN customers c2",
    )
    .unwrap();
    let result = rw.rewrite_sql("SELECT sum(amount) FROM orders").unwrap();
    assert!(!result.rewritten, "{}", result.report);
    let reason = result.report.to_string();
    assert!(reason.contains("customers more than once"), "{reason}");

    let mut rw = Rewriter::new();
    rw.execute(
        "CREATE SCHEMA s1; CREATE SCHEMA s2;
         CREATE TABLE s1.t (id INT, v INT); CREATE TABLE s2.t (id INT, v INT);
         CREATE MATERIALIZED VIEW same AS SELECT a.id, a.v, b.v AS w FROM s1.t a JOIN s1.t b ON a.id = b.id",
    )
    .unwrap();
    let result = rw
        .rewrite_sql("SELECT a.id, a.v, b.v FROM s1.t a JOIN s2.t b ON a.id = b.id")
        .unwrap();
    assert!(!result.rewritten, "{}", result.report);
}
