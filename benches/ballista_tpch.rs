//! TPC-H rollups (`support/tpch_rollups.rs`) over Parquet files, with and without their MVs,
//! in one process and on a Ballista cluster started in this process (a scheduler and two
//! executors on loopback ports): SQL text to collected rows, planning (and the rewrite on the
//! client and the scheduler) included. The median of `MVREWRITE_BENCH_RUNS` runs (default 5)
//! after one warm-up; figures go to BENCHMARKS.md.
//!
//! `cargo bench --features ballista --bench ballista_tpch` (release), or the test build of it
//! run by hand (dev profile). `TPCH_SF` is the scale factor (default 1); lineitem and orders
//! are generated once with the `tpchgen` crates, four Parquet files each, into
//! `$MVREWRITE_BENCH_DATA` (default `~/.cache/mvrewrite-bench`). Before timing, each query on
//! the cluster is checked to read its MV and to return the original's rows. Run without
//! `--bench` (as `cargo test --all-targets` does), it checks one query at scale factor 0.01.

#[path = "support/tpch_rollups.rs"]
mod tpch_rollups;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use mvrewrite::MvSession;
use mvrewrite::testkit::compare::compare;
use parquet::arrow::ArrowWriter;
use tpchgen::generators::{LineItemGenerator, OrderGenerator};
use tpchgen_arrow::{LineItemArrow, OrderArrow};

const FILES: i32 = 4;

fn data_dir() -> PathBuf {
    std::env::var_os("MVREWRITE_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
            PathBuf::from(home).join(".cache/mvrewrite-bench")
        })
}

/// Writes `batches` as the Parquet file `path`, whole or not at all.
fn write(path: &Path, batches: impl Iterator<Item = RecordBatch>) {
    let partial = path.with_extension("partial");
    let mut batches = batches.peekable();
    let schema = batches.peek().unwrap().schema();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&partial).unwrap(), schema, None).unwrap();
    for b in batches {
        writer.write(&b).unwrap();
    }
    writer.close().unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// The directories of lineitem and orders at scale factor `sf`, generated if missing.
fn tables(sf: f64) -> Vec<(&'static str, PathBuf)> {
    let root = data_dir().join(format!("tpch-sf{sf}-files"));
    let lineitem = root.join("lineitem");
    let orders = root.join("orders");
    for dir in [&lineitem, &orders] {
        std::fs::create_dir_all(dir).unwrap();
    }
    for part in 1..=FILES {
        let file = format!("part-{part}.parquet");
        if !lineitem.join(&file).exists() {
            eprintln!("ballista_tpch: generating lineitem {part}/{FILES} at SF {sf} (once)");
            let batches = LineItemArrow::new(LineItemGenerator::new(sf, part, FILES))
                .with_batch_size(8192)
                .map(|b| b.unwrap());
            write(&lineitem.join(&file), batches);
        }
        if !orders.join(&file).exists() {
            let batches = OrderArrow::new(OrderGenerator::new(sf, part, FILES))
                .with_batch_size(8192)
                .map(|b| b.unwrap());
            write(&orders.join(&file), batches);
        }
    }
    vec![("lineitem", lineitem), ("orders", orders)]
}

async fn register(session: &MvSession, tables: &[(&str, PathBuf)]) {
    for (name, dir) in tables {
        let create = format!(
            "CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{}/'",
            dir.display()
        );
        session.sql(&create).await.unwrap();
    }
}

async fn run(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

/// The median time of `sql` in `ctx` over `runs` runs, after one.
async fn median(ctx: &SessionContext, sql: &str, runs: usize) -> Duration {
    run(ctx, sql).await;
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(run(ctx, sql).await);
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// A session over the tables, in this process or on a new in-process cluster of two
/// executors, with its MVs in a fresh store.
async fn session(tables: &[(&str, PathBuf)], on_cluster: bool, store: &Path) -> MvSession {
    let _ = std::fs::remove_dir_all(store);
    let session = MvSession::with_data_dir(store).await.unwrap();
    let session = if on_cluster {
        mvrewrite::cluster::standalone(session, 2, 2)
            .await
            .unwrap()
            .0
    } else {
        session
    };
    register(&session, tables).await;
    session
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs it without.
    let test = !std::env::args().any(|a| a == "--bench");
    let sf: f64 = if test {
        0.01
    } else {
        std::env::var("TPCH_SF")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1.0)
    };
    let runs: usize = std::env::var("MVREWRITE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if test { 1 } else { 5 });
    let tables = tables(sf);
    let queries = if test {
        &tpch_rollups::QUERIES[..1]
    } else {
        &tpch_rollups::QUERIES[..]
    };
    println!(
        "| query (SF {sf}) | one process, original | one process, MV | Ballista 2 executors, original | Ballista 2 executors, MV |"
    );
    println!("|---|---|---|---|---|");
    let mut figures: Vec<Vec<String>> = queries.iter().map(|q| vec![q.0.to_string()]).collect();
    for on_cluster in [false, true] {
        let store = std::env::temp_dir().join(format!(
            "mvrewrite-ballista-bench-{}-{on_cluster}",
            std::process::id()
        ));
        let session = session(&tables, on_cluster, &store).await;
        // Without MVs: nothing to rewrite to, on the client or on the scheduler.
        let mut originals = Vec::new();
        for (_, _, original, _) in queries {
            originals.push(median(session.context(), original, runs).await);
        }
        for mv in tpch_rollups::MVS {
            session.sql(mv).await.unwrap();
        }
        let plain = SessionContext::new();
        for (name, dir) in &tables {
            plain
                .register_parquet(*name, dir.to_str().unwrap(), Default::default())
                .await
                .unwrap();
        }
        for (i, (name, mv, original, _)) in queries.iter().enumerate() {
            session.clear_report();
            let answer = run(session.context(), original).await;
            let used = session
                .last_report()
                .map(|r| r.used_mvs())
                .unwrap_or_default();
            assert_eq!(used, [*mv], "{name}: expected {mv} to answer");
            compare(&run(&plain, original).await, &answer)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let rewritten = median(session.context(), original, runs).await;
            figures[i].push(seconds(originals[i]));
            figures[i].push(seconds(rewritten));
        }
        drop(session);
        let _ = std::fs::remove_dir_all(&store);
    }
    for row in figures {
        println!("| {} |", row.join(" | "));
    }
}
