//! End-to-end speedup on TPC-H at scale factor 1 (lineitem: 6,001,215 rows; orders: 1,500,000)
//! and 10 million generated events: for each query, the original on the base tables, the same
//! SQL rewritten by mvrewrite, and the answer written by hand against the MV.
//!
//! `cargo bench --bench tpch_speedup` (figures go to BENCHMARKS.md). The data is generated
//! once with the `tpchgen` crates and `mvrewrite::testkit::datagen` and cached as Parquet in
//! `$MVREWRITE_BENCH_DATA` (default `~/.cache/mvrewrite-bench`), then loaded into memory, so
//! that every query reads the same in-memory tables. `TPCH_SF` changes the scale factor.
//! Before timing, each rewritten query is checked to read its MV and to return the original's
//! rows. Each variant is timed twice: end to end (SQL text to rows, planning included) and
//! executing its physical plan alone (built once), so that the rewritten plan's quality and the
//! cost of planning it show apart.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::SessionContext;
use mvrewrite::MvSession;
use mvrewrite::testkit::datagen;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tpchgen::generators::{LineItemGenerator, OrderGenerator};
use tpchgen_arrow::{LineItemArrow, OrderArrow};

#[path = "support/tpch_rollups.rs"]
mod tpch_rollups;

/// Beside the MVs of `tpch_rollups`: hourly event counts by type.
const EVENTS_MV: &str = "CREATE MATERIALIZED VIEW hourly_events AS SELECT date_trunc('hour', ts) AS hour, event_type, count(*) AS n, sum(value) AS total FROM events GROUP BY 1, 2";

/// Beside the queries of `tpch_rollups`: daily events by type, from the hourly MV.
const EVENTS_QUERY: (&str, &str, &str, &str) = (
    "daily_events_by_type",
    "hourly_events",
    "SELECT date_trunc('day', ts) AS day, event_type, count(*) AS n FROM events GROUP BY date_trunc('day', ts), event_type",
    "SELECT date_trunc('day', hour) AS day, event_type, sum(n) AS n FROM hourly_events GROUP BY date_trunc('day', hour), event_type",
);

fn data_dir() -> PathBuf {
    std::env::var_os("MVREWRITE_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
            PathBuf::from(home).join(".cache/mvrewrite-bench")
        })
}

/// The table cached at `path`, or generated, written there (whole or not at all), and returned.
fn cached(path: PathBuf, generate: impl FnOnce() -> Vec<RecordBatch>) -> Vec<RecordBatch> {
    if let Ok(file) = File::open(&path) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(8192).build())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return reader.map(|b| b.unwrap()).collect();
    }
    eprintln!("tpch_speedup: generating {} (once)", path.display());
    let batches = generate();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let partial = path.with_extension("partial");
    let mut writer =
        ArrowWriter::try_new(File::create(&partial).unwrap(), batches[0].schema(), None).unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    std::fs::rename(&partial, &path).unwrap();
    batches
}

fn tables() -> Vec<(&'static str, Vec<RecordBatch>)> {
    let sf: f64 = std::env::var("TPCH_SF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let dir = data_dir().join(format!("tpch-sf{sf}"));
    let lineitem = cached(dir.join("lineitem.parquet"), || {
        LineItemArrow::new(LineItemGenerator::new(sf, 1, 1))
            .with_batch_size(8192)
            .collect::<Result<_, _>>()
            .unwrap()
    });
    let orders = cached(dir.join("orders.parquet"), || {
        OrderArrow::new(OrderGenerator::new(sf, 1, 1))
            .with_batch_size(8192)
            .collect::<Result<_, _>>()
            .unwrap()
    });
    let events = cached(data_dir().join("events-10m.parquet"), || {
        datagen::events(10_000_000, 8192, 42, |_| {}).unwrap()
    });
    vec![
        ("lineitem", lineitem),
        ("orders", orders),
        ("events", events),
    ]
}

/// The rows of `sql` in `ctx`, sorted as text (floats to 6 significant digits).
async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        let columns: Vec<_> = b
            .columns()
            .iter()
            .map(|c| {
                datafusion::arrow::util::display::ArrayFormatter::try_new(
                    c.as_ref(),
                    &Default::default(),
                )
                .unwrap()
            })
            .collect();
        for i in 0..b.num_rows() {
            let cells: Vec<String> = columns
                .iter()
                .map(|f| {
                    let text = f.value(i).to_string();
                    match text.parse::<f64>() {
                        Ok(x) if text.contains('.') => format!("{x:.6e}"),
                        _ => text,
                    }
                })
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

fn speedup(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let session = MvSession::new();
    runtime.block_on(async {
        for (name, batches) in tables() {
            session.register_batches(name, batches).await.unwrap();
        }
        for mv in tpch_rollups::MVS.into_iter().chain([EVENTS_MV]) {
            session.sql(mv).await.unwrap();
        }
    });
    let plain = session.without_rewrites();
    for (name, mv, original, by_hand) in tpch_rollups::QUERIES.into_iter().chain([EVENTS_QUERY]) {
        runtime.block_on(async {
            session.clear_report();
            let plan = session.context().sql(original).await.unwrap();
            let plan = plan.into_optimized_plan().unwrap();
            let report = session.last_report().unwrap_or_default();
            assert_eq!(
                report.used_mvs(),
                [mv],
                "{name}: expected {mv} to answer\n{}\n{report}",
                plan.display_indent()
            );
            let expected = rows(&plain, original).await;
            assert_eq!(
                expected,
                rows(session.context(), original).await,
                "{name}: rewritten"
            );
            assert_eq!(expected, rows(&plain, by_hand).await, "{name}: by hand");
        });
    }
    let mut group = c.benchmark_group("tpch_sf1_speedup");
    group.sample_size(10);
    for (name, _, original, by_hand) in tpch_rollups::QUERIES.into_iter().chain([EVENTS_QUERY]) {
        // End to end: SQL text to collected rows, planning (and the rewrite) included.
        let run = |ctx: &SessionContext, sql: &str| {
            runtime.block_on(async {
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                std::hint::black_box(batches);
            })
        };
        group.bench_function(format!("{name}/original"), |b| {
            b.iter(|| run(&plain, original))
        });
        group.bench_function(format!("{name}/rewritten"), |b| {
            b.iter(|| run(session.context(), original))
        });
        group.bench_function(format!("{name}/by_hand"), |b| {
            b.iter(|| run(&plain, by_hand))
        });
        // Execution alone: the physical plan, built once, run again each iteration. Tells the
        // quality of the rewritten plan apart from the cost of planning it.
        let physical = |ctx: &SessionContext, sql: &str| {
            runtime.block_on(async { ctx.sql(sql).await.unwrap().create_physical_plan().await })
        };
        let (rewritten, written) = (
            physical(session.context(), original).unwrap(),
            physical(&plain, by_hand).unwrap(),
        );
        let shape = |p: &Arc<dyn ExecutionPlan>| displayable(p.as_ref()).indent(false).to_string();
        eprintln!(
            "tpch_speedup: {name}: the rewritten and the hand-written physical plans {}",
            if shape(&rewritten) == shape(&written) {
                "are the same"
            } else {
                "differ"
            }
        );
        for (variant, ctx, plan) in [
            ("original", &plain, physical(&plain, original).unwrap()),
            ("rewritten", session.context(), rewritten),
            ("by_hand", &plain, written),
        ] {
            // Operators such as repartitioning run once: a fresh copy each time.
            let execute = || {
                runtime.block_on(async {
                    let plan = reset_plan_states(Arc::clone(&plan)).unwrap();
                    collect(plan, ctx.task_ctx()).await.unwrap()
                })
            };
            let row_count = |b: Vec<RecordBatch>| b.iter().map(|b| b.num_rows()).sum::<usize>();
            assert_eq!(
                row_count(execute()),
                row_count(execute()),
                "{name}/{variant}: a plan run twice returns as many rows"
            );
            group.bench_function(format!("{name}/{variant}_execution"), |b| {
                b.iter(|| std::hint::black_box(execute()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, speedup);
criterion_main!(benches);
