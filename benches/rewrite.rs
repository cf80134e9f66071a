//! Rewrite latency as registered MVs grow (with the e-graph's size and why saturation
//! stopped), and query time original vs rewritten.
//!
//! `cargo bench --bench rewrite` (release build; figures go to BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use mvrewrite::Explain;
use mvrewrite::testkit::datagen;
use mvrewrite::{MvSession, Rewriter};

const TABLES: usize = 10;
const GROUP_COLUMNS: [&str; 4] = [
    "event_type",
    "user_id",
    "date_trunc('hour', ts)",
    "date_trunc('day', ts)",
];

/// The `variant`-th MV over `table`: a GROUP BY on a subset of `GROUP_COLUMNS` (the bits of
/// `variant + 1`) under a filter that changes every 15 variants.
fn mv_definition(name: &str, variant: usize, table: &str) -> String {
    let keys: Vec<&str> = GROUP_COLUMNS
        .iter()
        .enumerate()
        .filter(|(b, _)| ((variant + 1) >> b) & 1 == 1)
        .map(|(_, c)| *c)
        .collect();
    let keys = if keys.is_empty() {
        vec![GROUP_COLUMNS[0]]
    } else {
        keys
    };
    format!(
        "CREATE MATERIALIZED VIEW {name} AS SELECT {k}, count(*) AS n, sum(value) AS total FROM {table} WHERE value > {t} GROUP BY {k}",
        k = keys.join(", "),
        t = variant / 15
    )
}

/// A catalog of `n` MVs spread over `TABLES` copies of the events table (events0 is the one
/// queried), each a different grouping of the same measures.
fn rewriter(n: usize) -> Rewriter {
    let mut rw = Rewriter::new();
    for t in 0..TABLES {
        rw.execute(&format!(
            "CREATE TABLE events{t} (event_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, user_id BIGINT NOT NULL, event_type VARCHAR NOT NULL, value DOUBLE)"
        ))
        .unwrap();
        rw.set_table_rows(&format!("events{t}"), 10_000_000);
    }
    for i in 0..n {
        let table = format!("events{}", i % TABLES);
        rw.execute(&mv_definition(&format!("mv{i}"), i / TABLES, &table))
            .unwrap();
    }
    rw
}

fn rewrite_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("rewrite_latency");
    for n in [1, 10, 100, 1000, 10_000] {
        let rw = rewriter(n);
        let answered = rw
            .rewrite_sql(
                "SELECT event_type, sum(value) FROM events0 WHERE value > 0 GROUP BY event_type",
            )
            .unwrap();
        assert!(answered.rewritten, "n = {n}");
        let unanswered = rw
            .rewrite_sql("SELECT user_id, max(value) FROM events0 GROUP BY user_id")
            .unwrap();
        assert!(!unanswered.rewritten);
        let engine = mvrewrite::Engine::default();
        for (name, plan) in [
            ("answered", &answered.original),
            ("unanswered", &unanswered.original),
        ] {
            let report = engine.rewrite(plan, rw.catalog()).report;
            let sizes: Vec<String> = report
                .saturation
                .iter()
                .map(|s| {
                    format!(
                        "{} nodes in {} classes after {} iterations ({})",
                        s.nodes, s.classes, s.iterations, s.stop_reason
                    )
                })
                .collect();
            eprintln!(
                "rewrite_latency/{name}/{n}: e-graph {}",
                if sizes.is_empty() {
                    "never built: no MV passed the index and the screen".to_string()
                } else {
                    sizes.join("; ")
                }
            );
            group.bench_with_input(BenchmarkId::new(name, n), plan, |b, plan| {
                b.iter(|| black_box(engine.rewrite(plan, rw.catalog())))
            });
        }
        // As the optimizer rule rewrites: explaining only the MV it uses.
        group.bench_with_input(
            BenchmarkId::new("answered_used_only", n),
            &answered.original,
            |b, plan| {
                b.iter(|| {
                    black_box(engine.rewrite_explaining(plan, rw.catalog(), Explain::UsedOnly))
                })
            },
        );
    }
    group.finish();
}

/// An `MvSession` and a plain context over the same generated `events` table, whose recorded
/// size (for costing) is `costed_rows`.
fn events_contexts(rows: usize, costed_rows: usize) -> (MvSession, SessionContext) {
    let batches = datagen::events(rows, 1 << 16, 42, |_| {}).unwrap();
    let table = Arc::new(MemTable::try_new(datagen::events_schema(), vec![batches]).unwrap());
    let session = MvSession::new();
    session
        .context()
        .register_table("events", table.clone())
        .unwrap();
    let catalog = session.catalog();
    catalog
        .write()
        .unwrap()
        .set_table_rows("events", costed_rows as u64);
    let plain = SessionContext::new();
    plain.register_table("events", table).unwrap();
    (session, plain)
}

fn query_time(c: &mut Criterion) {
    let rows = 1_000_000;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (session, plain) = events_contexts(rows, rows);
    runtime.block_on(async {
        for mv in mvrewrite::cli::demo::DEMO_MVS {
            session.sql(mv).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("query_time_1M_events");
    group.sample_size(10);
    let queries = [
        (
            "sum_by_type",
            "SELECT event_type, sum(value) AS total, count(*) AS n FROM events GROUP BY event_type",
        ),
        (
            "per_user",
            "SELECT user_id, count(*) AS n, sum(value) AS total FROM events GROUP BY user_id",
        ),
        (
            "hourly_avg",
            "SELECT date_trunc('hour', ts) AS hour, avg(value) FROM events GROUP BY date_trunc('hour', ts)",
        ),
    ];
    for (name, sql) in queries {
        for (mode, ctx) in [("original", &plain), ("rewritten", session.context())] {
            group.bench_function(BenchmarkId::new(name, mode), |b| {
                b.iter(|| {
                    runtime.block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() })
                })
            });
        }
    }
    group.finish();
}

/// A query answered in parts: an MV holding the closed months (before March) of events joined
/// to their users answers those rows, the tables the rest; against the original over all rows.
/// (Over one table alone a split is not made: measured no faster, BENCHMARKS.md.)
fn query_time_in_parts(c: &mut Criterion) {
    let rows = 1_000_000;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (session, plain) = events_contexts(rows, rows);
    let users = datagen::users(10_000, 13).unwrap();
    let users = Arc::new(MemTable::try_new(users.schema(), vec![vec![users]]).unwrap());
    session
        .context()
        .register_table("users", users.clone())
        .unwrap();
    plain.register_table("users", users).unwrap();
    let sql = "SELECT u.country, sum(e.value) AS total, count(*) AS n FROM events e JOIN users u ON e.user_id = u.user_id GROUP BY u.country";
    runtime.block_on(async {
        session
            .sql("CREATE MATERIALIZED VIEW closed_by_country AS SELECT u.country, sum(e.value) AS total, count(*) AS n FROM events e JOIN users u ON e.user_id = u.user_id WHERE e.ts < TIMESTAMP '2024-03-01 00:00:00' GROUP BY u.country")
            .await
            .unwrap();
        session.sql(sql).await.unwrap().collect().await.unwrap();
    });
    let report = session.last_report().unwrap();
    assert_eq!(report.parts.len(), 1, "not answered in parts: {report}");
    let mut group = c.benchmark_group("query_time_in_parts_1M_events");
    group.sample_size(10);
    for (mode, ctx) in [("original", &plain), ("in_parts", session.context())] {
        group.bench_function(BenchmarkId::new("by_country_joined", mode), |b| {
            b.iter(|| {
                runtime.block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() })
            })
        });
    }
    group.finish();
}

/// Planning time (SQL to optimized plan) in a plain DataFusion context and in an `MvSession`
/// holding 100 MVs over the queried table: the whole cost of the rule, normalization included.
fn planning_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A small table, costed as a big one: planning does not depend on the data.
    let (session, plain) = events_contexts(1000, 10_000_000);
    runtime.block_on(async {
        for i in 0..100 {
            let sql = mv_definition(&format!("mv{i}"), i, "events");
            session.sql(&sql).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("planning_100_mvs");
    // Each iteration plans a new constant, so no plan is seen twice (the rule skips a plan it
    // already missed).
    let queries = [
        (
            "answered",
            "SELECT event_type, sum(value) + {i} FROM events WHERE value > 0 GROUP BY event_type",
        ),
        (
            "unanswered",
            "SELECT user_id, max(value) + {i} FROM events GROUP BY user_id",
        ),
    ];
    for (name, sql) in queries {
        for (mode, ctx) in [("without_rule", &plain), ("with_rule", session.context())] {
            let mut i = 0u64;
            group.bench_function(BenchmarkId::new(name, mode), |b| {
                b.iter(|| {
                    i += 1;
                    let sql = sql.replace("{i}", &i.to_string());
                    runtime.block_on(async {
                        ctx.sql(&sql).await.unwrap().into_optimized_plan().unwrap()
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    rewrite_latency,
    query_time,
    query_time_in_parts,
    planning_overhead
);
criterion_main!(benches);
