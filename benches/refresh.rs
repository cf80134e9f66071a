//! Incremental versus full refresh after appending 1% new rows to a 10M-row `events` table.
//!
//! `cargo bench --bench refresh` (release build; figures go to BENCHMARKS.md). The table is
//! generated in memory once (`REFRESH_ROWS` sets its size); each measurement starts from a
//! session over it with the MV fresh, and every iteration appends 1% of the table's rows
//! (untimed) before refreshing (timed). Few iterations are run (flat sampling, short
//! measurement), so the table grows by at most about a fifth while measured.

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use datafusion::arrow::record_batch::RecordBatch;
use mvrewrite::MvSession;
use mvrewrite::RefreshMode;
use mvrewrite::testkit::datagen;

const MV: &str = "CREATE MATERIALIZED VIEW hourly AS SELECT event_type, date_trunc('hour', ts) AS hour, count(*) AS n, sum(value) AS total, min(value) AS low, max(value) AS high FROM events GROUP BY 1, 2";

fn rows() -> usize {
    std::env::var("REFRESH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// A session over `events` with the MV computed.
fn session(runtime: &tokio::runtime::Runtime, events: &[RecordBatch]) -> MvSession {
    let session = MvSession::new();
    runtime.block_on(async {
        session
            .register_batches("events", events.to_vec())
            .await
            .unwrap();
        session.sql(MV).await.unwrap();
    });
    session
}

fn refresh(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let rows = rows();
    let appended = rows / 100;
    let events = datagen::events(rows, 65_536, 11, |_| {}).unwrap();
    let mut seed = 100;
    let mut append = |session: &MvSession| {
        seed += 1;
        let batch = datagen::events(appended, 65_536, seed, |_| {}).unwrap();
        runtime.block_on(session.append("events", batch)).unwrap();
    };
    let mut group = c.benchmark_group("refresh_after_1pct_append");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_millis(10));
    let incremental = session(&runtime, &events);
    group.bench_function(format!("incremental/{rows}"), |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                append(&incremental);
                let started = Instant::now();
                let done = runtime
                    .block_on(incremental.refresh_materialized_view("hourly"))
                    .unwrap();
                spent += started.elapsed();
                assert_eq!(done[0].mode, RefreshMode::Incremental, "{done:?}");
            }
            spent
        })
    });
    drop(incremental);
    let full = session(&runtime, &events);
    group.bench_function(format!("full/{rows}"), |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                append(&full);
                let started = Instant::now();
                // CREATE OR REPLACE recomputes from the definition: a full refresh.
                runtime
                    .block_on(async { full.sql(&MV.replace("CREATE", "CREATE OR REPLACE")).await })
                    .unwrap();
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, refresh);
criterion_main!(benches);
