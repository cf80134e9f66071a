//! A bounded load test of `mvrewrite serve` on loopback: `CLIENTS` Flight SQL clients (at
//! least 32) each run `QUERIES` queries while another client inserts and refreshes the MV,
//! `ROUNDS` times. Every answer is checked against the original query's answer at one of the
//! states the table went through (computed on a plain DataFusion context): 0 wrong, or the
//! run fails; the server must still answer, from the refreshed MV, at the end. Prints p50/p99
//! latency (`GetFlightInfo` + `DoGet`) and throughput for BENCHMARKS.md. A bench binary: the
//! figures are rates across clients, not one call's latency.
//!
//! `cargo test --features serve --bench serve_load` (dev profile, the figures recorded) or
//! `cargo bench --features serve --bench serve_load`. `SERVE_CLIENTS`, `SERVE_QUERIES`,
//! `SERVE_ROUNDS` change the defaults (32, 25, 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use mvrewrite::MvSession;
use mvrewrite::serve::{Access, Role, serve};
use tonic::transport::{Channel, Endpoint};

const TOKEN: &str = "load-test";
const TABLE: &str = "CREATE TABLE t AS
    SELECT 'k' || CAST(value % 20 AS VARCHAR) AS k, value AS v FROM generate_series(1, 200000)";
const MV: &str =
    "CREATE MATERIALIZED VIEW by_k AS SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k";
const QUERY: &str = "SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k ORDER BY k";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn insert(round: usize) -> String {
    format!(
        "INSERT INTO t VALUES ('k{}', {}), ('new', 1)",
        round % 20,
        1_000_000 + round
    )
}

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| array_value_to_string(c, r).unwrap())
                    .collect(),
            );
        }
    }
    out
}

async fn answer(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.unwrap();
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = client.do_get(endpoint.ticket.unwrap()).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    batches
}

/// The original query's answer after each round of writes.
async fn states(rounds: usize) -> Vec<Vec<Vec<String>>> {
    let ctx = SessionContext::new();
    ctx.sql(TABLE).await.unwrap().collect().await.unwrap();
    let mut out = vec![rows(
        &ctx.sql(QUERY).await.unwrap().collect().await.unwrap(),
    )];
    for round in 0..rounds {
        ctx.sql(&insert(round))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        out.push(rows(
            &ctx.sql(QUERY).await.unwrap().collect().await.unwrap(),
        ));
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let clients = setting("SERVE_CLIENTS", 32);
    let queries = setting("SERVE_QUERIES", 25);
    let rounds = setting("SERVE_ROUNDS", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let expected = Arc::new(states(rounds).await);
        let session = MvSession::new();
        for sql in [TABLE, MV] {
            session.sql(sql).await.unwrap().collect().await.unwrap();
        }
        let access = Access::new().with_token(TOKEN, Role::ReadWrite);
        let server = serve(Arc::new(session), "127.0.0.1:0".parse().unwrap(), access)
            .await
            .unwrap();
        let url = format!("http://{}", server.local_addr());
        let connect = |url: String| async move {
            let channel = Endpoint::from_shared(url).unwrap().connect().await.unwrap();
            let mut c = FlightSqlServiceClient::new(channel);
            c.set_token(TOKEN.to_string());
            c
        };
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let mut c = connect(url.clone()).await;
            let expected = Arc::clone(&expected);
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut wrong = 0usize;
                for _ in 0..queries {
                    let t = Instant::now();
                    let got = rows(&answer(&mut c, QUERY).await);
                    latencies.push(t.elapsed());
                    if !expected.contains(&got) {
                        wrong += 1;
                    }
                }
                (latencies, wrong)
            }));
        }
        let mut writer = connect(url.clone()).await;
        let mut refreshed = 0;
        for round in 0..rounds {
            writer.execute_update(insert(round), None).await.unwrap();
            answer(&mut writer, "REFRESH MATERIALIZED VIEW by_k").await;
            refreshed += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut latencies = Vec::new();
        let mut wrong = 0;
        for task in tasks {
            let (l, w) = task.await.unwrap();
            latencies.extend(l);
            wrong += w;
        }
        let elapsed = start.elapsed();
        latencies.sort();
        // Still serving, and the last state answered from the refreshed MV.
        let last = rows(&answer(&mut writer, QUERY).await);
        assert_eq!(&last, expected.last().unwrap(), "the last answer");
        let plan = rows(&answer(&mut writer, &format!("EXPLAIN {QUERY}")).await);
        assert!(format!("{plan:?}").contains("TableScan: by_k"), "{plan:?}");
        println!(
            "serve_load: {clients} clients x {queries} queries, {refreshed} inserts + refreshes: \
             {} answers, {wrong} wrong; p50 {:.1} ms, p99 {:.1} ms, {:.0} queries/s",
            latencies.len(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.len() as f64 / elapsed.as_secs_f64(),
        );
        assert_eq!(wrong, 0, "wrong answers");
        server.shutdown().await.unwrap();
    });
}
