//! One scenario per reason code: a session with real data where an MV is not used (or not
//! chosen) for exactly that reason, as the report and the CLI's JSON name it. The scenario
//! table is an exhaustive `match`: a new code does not compile without its scenario.

use mvrewrite::{MvSession, ReasonCode};

const TABLES: &str = "
CREATE TABLE t (a INT, b INT, c INT, ts TIMESTAMP) AS VALUES
  (1, 10, 100, TIMESTAMP '2024-01-01 10:00:00'), (1, 20, 200, TIMESTAMP '2024-01-02 11:00:00'),
  (2, 30, 300, TIMESTAMP '2024-02-01 12:00:00'), (3, 40, NULL, TIMESTAMP '2024-03-05 13:00:00');
CREATE TABLE d (a INT, name VARCHAR) AS VALUES (1, 'one'), (2, 'two'), (3, 'three');
";

/// The statements after the tables, and the query; the MV is always `m`.
fn scenario(code: ReasonCode) -> (&'static str, &'static str) {
    match code {
        ReasonCode::Ineligible => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, random() AS r FROM t",
            "SELECT a FROM t",
        ),
        ReasonCode::DifferentTables => (
            "CREATE MATERIALIZED VIEW m AS SELECT t.a, d.name, sum(t.b) AS s FROM t JOIN d ON t.a = d.a GROUP BY t.a, d.name",
            "SELECT a, sum(b) FROM t GROUP BY a",
        ),
        ReasonCode::ColumnMissing => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, b FROM t WHERE b > 5",
            "SELECT a, c FROM t WHERE b > 5",
        ),
        ReasonCode::GroupByNotKept => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, sum(b) AS s FROM t GROUP BY a",
            "SELECT c, sum(b) FROM t GROUP BY c",
        ),
        ReasonCode::AggregateMissing => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, c, sum(b) AS s FROM t GROUP BY a, c",
            "SELECT a, max(b) FROM t GROUP BY a",
        ),
        ReasonCode::AvgNeedsSumAndCount => (
            // A count of another column. (An MV's own averages are stored with their sums
            // and counts.)
            "CREATE MATERIALIZED VIEW m AS SELECT a, c, sum(b) AS s, count(c) AS n FROM t GROUP BY a, c",
            "SELECT a, avg(b) FROM t GROUP BY a",
        ),
        ReasonCode::DistinctNotOnKey => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, c, sum(b) AS s FROM t GROUP BY a, c",
            "SELECT a, count(DISTINCT b), count(DISTINCT c) FROM t GROUP BY a",
        ),
        ReasonCode::MvAggregatesQueryDoesNot => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, b, count(*) AS n FROM t GROUP BY a, b",
            "SELECT a, b FROM t",
        ),
        ReasonCode::BucketNotNested => (
            "CREATE MATERIALIZED VIEW m AS SELECT date_trunc('month', ts) AS mo, sum(b) AS s FROM t GROUP BY 1",
            "SELECT date_trunc('day', ts) AS dy, sum(b) FROM t GROUP BY 1",
        ),
        ReasonCode::TimeRangeNotAligned => (
            "CREATE MATERIALIZED VIEW m AS SELECT date_trunc('day', ts) AS dy, sum(b) AS s FROM t GROUP BY 1",
            "SELECT sum(b) FROM t WHERE ts >= '2024-01-01 12:00:00'",
        ),
        ReasonCode::JoinNotMatched => (
            "CREATE MATERIALIZED VIEW m AS SELECT t.a, t.b, d.name FROM t LEFT JOIN d ON t.a = d.a",
            "SELECT t.a, t.b, d.name FROM t LEFT JOIN d ON t.a = d.a AND d.name <> 'two'",
        ),
        ReasonCode::UnionNotMatched => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, b FROM t WHERE b > 25 UNION ALL SELECT a, b FROM t WHERE b < 15",
            "SELECT a, b FROM t WHERE b > 25 UNION ALL SELECT a, b FROM t WHERE b < 20",
        ),
        ReasonCode::FilterNotImplied => (
            // Not `b > 5`, which the MV answers in parts (its rows, and b in 6..10 from t).
            "CREATE MATERIALIZED VIEW m AS SELECT a, b FROM t WHERE b > 10",
            "SELECT a, b FROM t WHERE b < 50",
        ),
        ReasonCode::FilterNotOnGroupKeys => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, sum(b) AS s, max(c) AS hi FROM t GROUP BY a",
            "SELECT a, sum(b) FROM t WHERE c > 150 GROUP BY a",
        ),
        ReasonCode::UnsupportedQuery => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, sum(b) AS s FROM t GROUP BY a",
            "SELECT d.name, sum(t.b * length(d.name)) FROM t JOIN d ON t.a = d.a GROUP BY d.name",
        ),
        ReasonCode::CandidateLimit => (
            // 64 smaller MVs that pass the column index come first; `m` holds every row.
            Box::leak(
                (0..64)
                    .map(|i| {
                        format!(
                            "CREATE MATERIALIZED VIEW m{i} AS SELECT a, sum(b) AS s FROM t WHERE b > {i} GROUP BY a;\n"
                        )
                    })
                    .chain(["CREATE MATERIALIZED VIEW m AS SELECT a, b, c, ts FROM t".to_string()])
                    .collect::<String>()
                    .into_boxed_str(),
            ),
            "SELECT a, b FROM t WHERE b > 100",
        ),
        ReasonCode::Stale => (
            "CREATE MATERIALIZED VIEW m AS SELECT a, sum(b) AS s FROM t GROUP BY a;
             INSERT INTO t VALUES (4, 50, 500, TIMESTAMP '2024-04-01 00:00:00')",
            "SELECT a, sum(b) FROM t GROUP BY a",
        ),
        ReasonCode::MoreExpensive => (
            // As many rows as t, and grouped again before the join it is joined back through:
            // joining t first costs less (an MV as large as its table merely wins a tie).
            "CREATE MATERIALIZED VIEW m AS SELECT a, b, c, ts, count(*) AS n FROM t GROUP BY a, b, c, ts",
            "SELECT d.name, count(*) FROM t JOIN d ON t.a = d.a GROUP BY d.name",
        ),
    }
}

#[tokio::test]
async fn every_reason_code_is_reported_where_it_applies() {
    for code in ReasonCode::ALL {
        let session = MvSession::new();
        for statement in mvrewrite::testkit::split_statements(TABLES).unwrap() {
            session
                .sql(&statement)
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
        }
        // Table statistics, as a user would record them: costs compare real sizes.
        for (table, rows) in [("t", 4), ("d", 3)] {
            session
                .catalog()
                .write()
                .unwrap()
                .set_table_rows(table, rows);
        }
        let (setup, query) = scenario(code);
        for statement in mvrewrite::testkit::split_statements(setup).unwrap() {
            session
                .sql(&statement)
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
        }
        session.clear_report();
        session.sql(query).await.unwrap().collect().await.unwrap();
        let report = session.last_report().expect("the query was considered");
        let json = report.to_json();
        let m = json["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["mv"] == "m")
            .unwrap_or_else(|| panic!("{code}: m is not in the report:\n{report}"))
            .clone();
        if code == ReasonCode::MoreExpensive {
            assert_eq!(m["status"], "more_expensive", "{code}:\n{report}");
        } else {
            assert_eq!(m["reason_code"], code.as_str(), "{code}:\n{report}");
            let status = match code {
                ReasonCode::Stale => "stale",
                ReasonCode::Ineligible => "ineligible",
                _ => "rejected",
            };
            assert_eq!(m["status"], status, "{code}:\n{report}");
        }
        assert!(!code.hint().is_empty());
    }
}
