//! Pathological inputs (issue 6's hardening list): how long a rewrite takes for a 40-table
//! join, a 2,000-element IN list, an expression nested 500 deep and 10,000 MVs on one table.
//! `tests/hardening.rs` checks the answers on data; this measures `Rewriter::rewrite` (DataFusion's
//! optimizer plus mvrewrite) and `Engine::rewrite` alone. `cargo bench --bench hardening`; figures go to BENCHMARKS.md.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::LogicalPlan;
use mvrewrite::Rewriter;

const EVENTS: &str = "CREATE TABLE events (event_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, user_id BIGINT NOT NULL, event_type VARCHAR NOT NULL, value DOUBLE)";

fn forty_table_join() -> (Rewriter, String) {
    let mut rw = Rewriter::new();
    for t in 0..40 {
        rw.execute(&format!("CREATE TABLE t{t} (id BIGINT NOT NULL, v BIGINT)"))
            .unwrap();
        rw.set_table_rows(&format!("t{t}"), 1_000_000);
    }
    rw.execute("CREATE MATERIALIZED VIEW pair AS SELECT t0.id, t0.v AS v0, t1.v AS v1 FROM t0 JOIN t1 ON t0.id = t1.id")
        .unwrap();
    let joins: String = (1..40)
        .map(|i| format!(" JOIN t{i} ON t{}.id = t{i}.id", i - 1))
        .collect();
    (
        rw,
        format!("SELECT t0.id, t0.v, t1.v, t39.v FROM t0{joins}"),
    )
}

fn in_list() -> (Rewriter, String) {
    let mut rw = Rewriter::new();
    rw.execute(EVENTS).unwrap();
    rw.set_table_rows("events", 10_000_000);
    rw.execute("CREATE MATERIALIZED VIEW per_user AS SELECT user_id, event_type, count(*) AS n, sum(value) AS total FROM events WHERE user_id < 5000 GROUP BY user_id, event_type")
        .unwrap();
    let list: Vec<String> = (0..2000).map(|i| (i * 2).to_string()).collect();
    let sql = format!(
        "SELECT event_type, count(*), sum(value) FROM events WHERE user_id IN ({}) GROUP BY event_type",
        list.join(", ")
    );
    (rw, sql)
}

fn deep_expression() -> (Rewriter, LogicalPlan) {
    let mut rw = Rewriter::new();
    rw.execute("CREATE TABLE t0 (id BIGINT NOT NULL, v BIGINT)")
        .unwrap();
    rw.execute("CREATE MATERIALIZED VIEW rows_of_t0 AS SELECT id, v FROM t0 WHERE id > 2")
        .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
    ]));
    let source = provider_as_source(Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap()));
    let plan = mvrewrite::testkit::datagen::deeply_nested_plan("t0", source, 500).unwrap();
    (rw, plan)
}

fn ten_thousand_mvs() -> (Rewriter, String) {
    let mut rw = Rewriter::new();
    rw.execute(EVENTS).unwrap();
    rw.set_table_rows("events", 10_000_000);
    for i in 0..10_000 {
        rw.execute(&format!(
            "CREATE MATERIALIZED VIEW mv{i} AS SELECT event_type, user_id % {m} AS bucket, count(*) AS n, sum(value) AS total FROM events WHERE value > {i} GROUP BY 1, 2",
            m = 2 + i % 7
        ))
        .unwrap();
    }
    (
        rw,
        "SELECT event_type, user_id % 5, sum(value) FROM events WHERE value > 1235 GROUP BY 1, 2"
            .to_string(),
    )
}

/// The whole call (DataFusion's optimizer, then mvrewrite) and mvrewrite's engine alone on the
/// optimized plan.
fn measure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rw: &Rewriter,
    plan: &LogicalPlan,
) {
    let optimized = rw.rewrite(plan).unwrap().original;
    let engine = mvrewrite::Engine::default();
    group.bench_function(format!("{name}/rewrite"), |b| {
        b.iter(|| rw.rewrite(plan).unwrap())
    });
    group.bench_function(format!("{name}/engine"), |b| {
        b.iter(|| engine.rewrite(&optimized, rw.catalog()))
    });
}

fn hardening(c: &mut Criterion) {
    let mut group = c.benchmark_group("hardening");
    group.sample_size(20);
    for (name, (rw, sql)) in [
        ("join_40_tables", forty_table_join()),
        ("in_list_2000", in_list()),
        ("mvs_10000_on_one_table", ten_thousand_mvs()),
    ] {
        let plan = rw.rewrite_sql(&sql).unwrap().original;
        measure(&mut group, name, &rw, &plan);
    }
    let (rw, plan) = deep_expression();
    measure(&mut group, "expression_500_deep", &rw, &plan);
    group.finish();
}

criterion_group!(benches, hardening);
criterion_main!(benches);
