//! Incremental versus full refresh after appending 1% new rows to a 10M-row `events` table.
//!
//! `cargo bench --bench refresh` (release build; figures go to BENCHMARKS.md). The table is
//! generated in memory once (about 10 s); `REFRESH_ROWS` sets its size.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mvrewrite::MvSession;
use mvrewrite::datagen;
use mvrewrite::session::RefreshMode;

const MV: &str = "CREATE MATERIALIZED VIEW hourly AS SELECT event_type, date_trunc('hour', ts) AS hour, count(*) AS n, sum(value) AS total, min(value) AS low, max(value) AS high FROM events GROUP BY 1, 2";

fn rows() -> usize {
    std::env::var("REFRESH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

fn refresh(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let rows = rows();
    let appended = rows / 100;
    let session = MvSession::new();
    runtime.block_on(async {
        let events = datagen::events(rows, 65_536, 11, |_| {}).unwrap();
        session.register_batches("events", events).await.unwrap();
        session.sql(MV).await.unwrap();
    });
    let mut seed = 100;
    let mut append = |session: &MvSession| {
        seed += 1;
        let batch = datagen::events(appended, 65_536, seed, |_| {}).unwrap();
        runtime.block_on(session.append("events", batch)).unwrap();
    };
    let mut group = c.benchmark_group("refresh_after_1pct_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(format!("incremental/{rows}"), |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                append(&session);
                let started = Instant::now();
                let done = runtime
                    .block_on(session.refresh_materialized_view("hourly"))
                    .unwrap();
                spent += started.elapsed();
                assert_eq!(done[0].mode, RefreshMode::Incremental, "{done:?}");
            }
            spent
        })
    });
    group.bench_function(format!("full/{rows}"), |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                append(&session);
                let started = Instant::now();
                // CREATE OR REPLACE recomputes from the definition: a full refresh.
                runtime
                    .block_on(async {
                        session
                            .sql(&MV.replace("CREATE", "CREATE OR REPLACE"))
                            .await
                    })
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
