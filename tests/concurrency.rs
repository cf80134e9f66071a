//! The same query gets the same rewrite however many queries are planned at once: whether a
//! plan reads an MV depends only on the plan and the catalog. Plans are made from far more
//! threads than the machine has cores, each query with its own constant so that no cache of
//! an earlier plan can answer for it.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::LogicalPlan;
use mvrewrite::MvSession;

/// Planners running at once: more threads than any machine this runs on has cores.
const PLANNERS: usize = 64;

const MVS: [&str; 2] = ["by_k", "by_g"];

/// A session over `events` (and `other`, which no MV reads) with the two MVs.
async fn session() -> MvSession {
    let session = MvSession::new();
    for sql in [
        "CREATE TABLE events (k VARCHAR, g BIGINT, v BIGINT) AS
           SELECT 'k' || CAST(value % 7 AS VARCHAR), value % 5, value FROM generate_series(1, 500)",
        "CREATE TABLE other (x BIGINT) AS SELECT value FROM generate_series(1, 50)",
        "CREATE MATERIALIZED VIEW by_k AS SELECT k, sum(v) AS s, count(*) AS n FROM events GROUP BY k",
        "CREATE MATERIALIZED VIEW by_g AS SELECT g, v, count(*) AS n FROM events GROUP BY g, v",
    ] {
        session.sql(sql).await.unwrap().collect().await.unwrap();
    }
    session
}

/// The MVs an optimized plan reads.
fn mvs_read(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut read = BTreeSet::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && MVS.contains(&scan.table_name.table())
        {
            read.insert(scan.table_name.table().to_string());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .unwrap();
    read
}

async fn plan_reads(session: &MvSession, sql: &str) -> BTreeSet<String> {
    let df = session.sql(sql).await.unwrap();
    mvs_read(&df.into_optimized_plan().unwrap())
}

/// Runs `each(planner, round)` for every planner and round on a runtime with [`PLANNERS`]
/// worker threads, all planners at once.
fn from_many_threads<F, Fut, T>(rounds: usize, each: F) -> Vec<T>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(PLANNERS)
        .enable_all()
        .build()
        .unwrap();
    let each = Arc::new(each);
    runtime.block_on(async {
        let tasks: Vec<_> = (0..PLANNERS)
            .map(|planner| {
                let each = Arc::clone(&each);
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(rounds);
                    for round in 0..rounds {
                        out.push(each(planner, round).await);
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    })
}

#[test]
fn every_plan_reads_the_mv_whatever_else_is_planned() {
    let setup = tokio::runtime::Runtime::new().unwrap();
    let session = Arc::new(setup.block_on(session()));
    let rounds = 40;
    let planned = {
        let session = Arc::clone(&session);
        from_many_threads(rounds, move |planner, round| {
            let session = Arc::clone(&session);
            async move {
                let sql = format!(
                    "SELECT k, sum(v) FROM events WHERE k <> 'c{planner}_{round}' GROUP BY k"
                );
                plan_reads(&session, &sql).await
            }
        })
    };
    assert_eq!(planned.len(), PLANNERS * rounds);
    let missed = planned.iter().filter(|read| !read.contains("by_k")).count();
    assert_eq!(
        missed,
        0,
        "{missed} of {} plans made at once did not read by_k",
        planned.len()
    );
}

/// A query of the mix for planner `planner` in round `round`: some answered by one MV or the
/// other, some by none (columns no MV keeps, a table no MV reads).
fn mixed_query(planner: usize, round: usize) -> String {
    let c = planner * 1000 + round;
    match (planner + round) % 5 {
        0 => format!("SELECT k, sum(v) FROM events WHERE k <> 'c{c}' GROUP BY k"),
        1 => format!(
            "SELECT g, count(*) FROM events WHERE v > {} GROUP BY g",
            c % 400
        ),
        2 => format!("SELECT k, max(g) FROM events WHERE v <> {c} GROUP BY k"),
        3 => format!("SELECT x FROM other WHERE x > {}", c % 40),
        _ => format!(
            "SELECT k, count(*) FROM events WHERE k IN ('k1', 'k{}') GROUP BY k",
            c % 7
        ),
    }
}

#[test]
fn a_mix_of_queries_planned_at_once_is_planned_as_alone() {
    let setup = tokio::runtime::Runtime::new().unwrap();
    let session = Arc::new(setup.block_on(session()));
    let rounds = 30;
    // Alone: one plan at a time.
    let alone: Vec<BTreeSet<String>> = setup.block_on(async {
        let mut alone = Vec::new();
        for planner in 0..PLANNERS {
            for round in 0..rounds {
                alone.push(plan_reads(&session, &mixed_query(planner, round)).await);
            }
        }
        alone
    });
    let rewritten = alone.iter().filter(|read| !read.is_empty()).count();
    assert!(
        rewritten > alone.len() / 4 && rewritten < alone.len() * 3 / 4,
        "the mix should hold queries some MV answers and queries none does: {rewritten} of {}",
        alone.len()
    );
    assert!(alone.iter().any(|read| read.contains("by_g")));
    // At once: every planner its queries, in the same order; results come back by planner.
    let at_once = {
        let session = Arc::clone(&session);
        from_many_threads(rounds, move |planner, round| {
            let session = Arc::clone(&session);
            async move { plan_reads(&session, &mixed_query(planner, round)).await }
        })
    };
    let differ: Vec<String> = alone
        .iter()
        .zip(&at_once)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| {
            let query = mixed_query(i / rounds, i % rounds);
            format!("{query}: alone {a:?}, at once {b:?}")
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} plans differ when planned at once:\n{}",
        differ.len(),
        alone.len(),
        differ.join("\n")
    );
}
