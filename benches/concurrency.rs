//! Planning throughput (plans per second) with 1, 2 and 64 planners at once, with the rule
//! (an `MvSession`: half the queries answered by its MV, half by none) and without it (the
//! same context with DataFusion's rules only). A bench binary rather than criterion: the
//! figure is a rate across threads, not the latency of one call.
//!
//! `cargo bench --bench concurrency` (release build; figures go to BENCHMARKS.md).
//! `PLAN_SECONDS` sets how long each configuration plans (default 3).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use mvrewrite::MvSession;

/// The query planner `p` plans in round `r`: a different constant every time, so that no
/// cache answers; even rounds the MV answers, odd rounds none does.
fn query(p: usize, r: usize) -> String {
    let c = p * 1_000_000 + r;
    if r.is_multiple_of(2) {
        format!("SELECT k, sum(v) FROM events WHERE k <> 'c{c}' GROUP BY k")
    } else {
        format!("SELECT k, max(g) FROM events WHERE v <> {c} GROUP BY k")
    }
}

/// Plans per second over `seconds`, with `planners` tasks planning at once on as many
/// worker threads.
fn throughput(ctx: &SessionContext, planners: usize, seconds: f64) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(planners)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let planned = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..planners)
        .map(|p| {
            let (ctx, stop, planned) = (ctx.clone(), Arc::clone(&stop), Arc::clone(&planned));
            runtime.spawn(async move {
                let mut r = 0;
                while !stop.load(Ordering::Relaxed) {
                    let df = ctx.sql(&query(p, r)).await.unwrap();
                    std::hint::black_box(df.into_optimized_plan().unwrap());
                    planned.fetch_add(1, Ordering::Relaxed);
                    r += 1;
                }
            })
        })
        .collect();
    // The planners never yield for long: the clock is the main thread's, not the runtime's.
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    planned.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo test --benches` runs bench binaries once as a check: stay quick there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let seconds: f64 = std::env::var("PLAN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let session = runtime.block_on(async {
        let session = MvSession::new();
        for sql in [
            "CREATE TABLE events (k VARCHAR, g BIGINT, v BIGINT) AS
               SELECT 'k' || CAST(value % 7 AS VARCHAR), value % 5, value FROM generate_series(1, 10000)",
            "CREATE MATERIALIZED VIEW by_k AS SELECT k, sum(v) AS s, count(*) AS n FROM events GROUP BY k",
        ] {
            session.sql(sql).await.unwrap().collect().await.unwrap();
        }
        session
    });
    let with_rule = session.context().clone();
    let without = session.without_rewrites();
    println!("| planners | with the rule (plans/s) | without (plans/s) | with / without |");
    println!("|---:|---:|---:|---:|");
    for planners in [1, 2, 64] {
        let on = throughput(&with_rule, planners, seconds);
        let off = throughput(&without, planners, seconds);
        println!("| {planners} | {on:.0} | {off:.0} | {:.2} |", on / off);
    }
}
