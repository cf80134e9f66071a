//! Planning overhead on TPC-H: the 22 queries planned (SQL to optimized plan) in a plain
//! DataFusion context and in an `MvSession` holding 100 MVs over the TPC-H tables. Each
//! iteration plans every query once, so the rule's memo of the last plan it missed never
//! applies. `cargo bench --bench tpch_planning`; figures go to BENCHMARKS.md. After the two
//! criterion benchmarks, an interleaved run prints the overhead measured round by round.
//!
//! The queries (`benches/tpch/q*.sql`) are the text Apache DataFusion's benchmarks used before
//! its SQLBench-H variants (TPC-H validation parameters; Apache-2.0). q15 defines a view and is
//! left out. The tables are empty: planning does not read data.

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::prelude::SessionContext;
use mvrewrite::MvSession;

const TABLES: &str = "
CREATE TABLE part (p_partkey BIGINT NOT NULL, p_name VARCHAR, p_mfgr VARCHAR, p_brand VARCHAR, p_type VARCHAR, p_size INT, p_container VARCHAR, p_retailprice DECIMAL(15,2), p_comment VARCHAR);
CREATE TABLE supplier (s_suppkey BIGINT NOT NULL, s_name VARCHAR, s_address VARCHAR, s_nationkey BIGINT, s_phone VARCHAR, s_acctbal DECIMAL(15,2), s_comment VARCHAR);
CREATE TABLE partsupp (ps_partkey BIGINT NOT NULL, ps_suppkey BIGINT NOT NULL, ps_availqty INT, ps_supplycost DECIMAL(15,2), ps_comment VARCHAR);
CREATE TABLE customer (c_custkey BIGINT NOT NULL, c_name VARCHAR, c_address VARCHAR, c_nationkey BIGINT, c_phone VARCHAR, c_acctbal DECIMAL(15,2), c_mktsegment VARCHAR, c_comment VARCHAR);
CREATE TABLE orders (o_orderkey BIGINT NOT NULL, o_custkey BIGINT, o_orderstatus VARCHAR, o_totalprice DECIMAL(15,2), o_orderdate DATE, o_orderpriority VARCHAR, o_clerk VARCHAR, o_shippriority INT, o_comment VARCHAR);
CREATE TABLE lineitem (l_orderkey BIGINT NOT NULL, l_partkey BIGINT, l_suppkey BIGINT, l_linenumber INT, l_quantity DECIMAL(15,2), l_extendedprice DECIMAL(15,2), l_discount DECIMAL(15,2), l_tax DECIMAL(15,2), l_returnflag VARCHAR, l_linestatus VARCHAR, l_shipdate DATE, l_commitdate DATE, l_receiptdate DATE, l_shipinstruct VARCHAR, l_shipmode VARCHAR, l_comment VARCHAR);
CREATE TABLE nation (n_nationkey BIGINT NOT NULL, n_name VARCHAR, n_regionkey BIGINT, n_comment VARCHAR);
CREATE TABLE region (r_regionkey BIGINT NOT NULL, r_name VARCHAR, r_comment VARCHAR)";

/// 100 MVs a user might define: rollups of lineitem, orders and their join, by subsets of
/// their usual dimensions, from a varying start date.
fn mv_definitions() -> Vec<String> {
    let lineitem_keys = [
        "l_returnflag",
        "l_linestatus",
        "l_shipmode",
        "date_trunc('month', l_shipdate)",
    ];
    let order_keys = [
        "o_orderpriority",
        "o_orderstatus",
        "date_trunc('month', o_orderdate)",
    ];
    let subset = |keys: &[&str], bits: usize| -> String {
        let picked: Vec<&str> = keys
            .iter()
            .enumerate()
            .filter(|(b, _)| (bits >> b) & 1 == 1)
            .map(|(_, k)| *k)
            .collect();
        if picked.is_empty() {
            keys[0].to_string()
        } else {
            picked.join(", ")
        }
    };
    (0..100)
        .map(|i| {
            let year = 1992 + i % 7;
            match i % 3 {
                0 => {
                    let k = subset(&lineitem_keys, 1 + i % 15);
                    format!("CREATE MATERIALIZED VIEW mv{i} AS SELECT {k}, sum(l_quantity) AS qty, sum(l_extendedprice) AS price, sum(l_extendedprice * (1 - l_discount)) AS revenue, count(*) AS n FROM lineitem WHERE l_shipdate >= DATE '{year}-01-01' GROUP BY {k}")
                }
                1 => {
                    let k = subset(&order_keys, 1 + i % 7);
                    format!("CREATE MATERIALIZED VIEW mv{i} AS SELECT {k}, sum(o_totalprice) AS total, count(*) AS n FROM orders WHERE o_orderdate >= DATE '{year}-01-01' GROUP BY {k}")
                }
                _ => {
                    format!("CREATE MATERIALIZED VIEW mv{i} AS SELECT o_orderpriority, l_shipmode, sum(l_extendedprice) AS price, count(*) AS n FROM orders JOIN lineitem ON o_orderkey = l_orderkey WHERE l_receiptdate >= DATE '{year}-01-01' GROUP BY o_orderpriority, l_shipmode")
                }
            }
        })
        .collect()
}

fn queries() -> Vec<(usize, String)> {
    (1..=22)
        .filter(|q| *q != 15)
        .map(|q| {
            let path = format!("{}/benches/tpch/q{q}.sql", env!("CARGO_MANIFEST_DIR"));
            (
                q,
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
            )
        })
        .collect()
}

fn planning(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let session = MvSession::new();
    let plain = SessionContext::new();
    runtime.block_on(async {
        for ddl in TABLES.split(';') {
            session.sql(ddl).await.unwrap().collect().await.unwrap();
            plain.sql(ddl).await.unwrap().collect().await.unwrap();
        }
        for mv in mv_definitions() {
            session.sql(&mv).await.unwrap();
        }
    });
    let queries = queries();
    let plan_all = |ctx: &SessionContext| {
        runtime.block_on(async {
            for (_, q) in &queries {
                let plan = ctx.sql(q).await.unwrap().into_optimized_plan().unwrap();
                std::hint::black_box(plan);
            }
        })
    };
    // Which queries an MV answers (reported with the figures).
    let answered: Vec<usize> = queries
        .iter()
        .filter(|(_, q)| {
            session.clear_report();
            runtime.block_on(async {
                session
                    .context()
                    .sql(q)
                    .await
                    .unwrap()
                    .into_optimized_plan()
                    .unwrap()
            });
            session
                .last_report()
                .is_some_and(|r| !r.used_mvs().is_empty())
        })
        .map(|(n, _)| *n)
        .collect();
    eprintln!("tpch_planning: queries answered by an MV: {answered:?}");
    let mut group = c.benchmark_group("tpch_21_queries_planning");
    // Planning takes 1–2 ms a query and two cores are noisy: more samples over a longer time.
    group
        .sample_size(40)
        .measurement_time(std::time::Duration::from_secs(10));
    group.bench_function("plain", |b| b.iter(|| plan_all(&plain)));
    group.bench_function("with_100_mvs", |b| b.iter(|| plan_all(session.context())));
    group.finish();
    interleaved(&plain, &session, plan_all);
}

/// The overhead measured a second way, robust to the machine's drift over the minutes the
/// two benchmarks above run apart: rounds that plan all queries in each context back to back,
/// in an order that rotates, and the median of each round's ratio.
fn interleaved(plain: &SessionContext, session: &MvSession, plan_all: impl Fn(&SessionContext)) {
    const ROUNDS: usize = 200;
    let without_rule = session.without_rewrites();
    let contexts = [plain, &without_rule, session.context()];
    let rounds: Vec<[f64; 3]> = (0..ROUNDS)
        .map(|round| {
            let mut time = [0.0; 3];
            for k in 0..3 {
                let which = (round + k) % 3;
                let start = std::time::Instant::now();
                plan_all(contexts[which]);
                time[which] = start.elapsed().as_secs_f64() * 1e3;
            }
            time
        })
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let time = |k: usize| median(rounds.iter().map(|r| r[k]).collect());
    let added = |k: usize| median(rounds.iter().map(|r| r[k] / r[0] - 1.0).collect()) * 100.0;
    eprintln!(
        "tpch_planning: interleaved, median of {ROUNDS} rounds: plain {:.2} ms, session without \
         the rule {:.2} ms ({:+.1}%), with the rule and 100 MVs {:.2} ms ({:+.1}%)",
        time(0),
        time(1),
        added(1),
        time(2),
        added(2),
    );
}

criterion_group!(benches, planning);
criterion_main!(benches);
