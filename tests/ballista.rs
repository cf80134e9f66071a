//! mvrewrite on an Apache DataFusion Ballista cluster started in the test's process (a
//! scheduler and two executors on loopback ports).
#![cfg(feature = "ballista")]

mod common;

use std::path::Path;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use mvrewrite::{MvError, MvSession};

/// A plain local DataFusion context with mvrewrite's time functions and the string types
/// Ballista sets (`Utf8`, not `Utf8View`, which its Flight frames do not carry): the reference.
fn reference() -> SessionContext {
    let config = datafusion::prelude::SessionConfig::new()
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false);
    let plain = SessionContext::new_with_config(config);
    mvrewrite::register_time_functions(&plain);
    plain
}

/// Another writer: `select`'s rows written as Parquet under `path` (partitioned by
/// `partition` when given) by a plain DataFusion context.
async fn write(path: &Path, select: &str, partition: Option<&str>) {
    let partitioned = partition
        .map(|p| format!(" PARTITIONED BY ({p})"))
        .unwrap_or_default();
    let sql = format!(
        "COPY ({select}) TO '{}' STORED AS PARQUET{partitioned}",
        path.display()
    );
    SessionContext::new()
        .sql(&sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_mv_on_the_cluster_needs_a_store() {
    let dir = common::fresh_dir("ballista", "no_store");
    write(
        &dir.join("t.parquet"),
        "SELECT value AS x FROM generate_series(1, 10)",
        None,
    )
    .await;
    let (session, _) = mvrewrite::cluster::standalone(MvSession::new(), 2, 1)
        .await
        .unwrap();
    session
        .sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'",
            dir.join("t.parquet").display()
        ))
        .await
        .unwrap();
    let created = session
        .sql("CREATE MATERIALIZED VIEW total AS SELECT sum(x) AS s FROM t")
        .await;
    assert!(
        matches!(&created, Err(MvError::NoStoreOnCluster(mv)) if mv == "total"),
        "{:?}",
        created.err()
    );
    // Nothing was registered: the name is free, the query is not rewritten.
    assert!(!session.context().table_exist("total").unwrap());
    let rows = session
        .sql("SELECT sum(x) FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        pretty_format_batches(&rows).unwrap().to_string(),
        pretty_format_batches(
            &reference()
                .sql("SELECT sum(value) AS \"sum(t.x)\" FROM generate_series(1, 10)")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
        )
        .unwrap()
        .to_string()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
