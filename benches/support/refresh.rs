//! What the refresh bench binaries share: the rows another writer writes, and medians.

use std::path::Path;
use std::time::Duration;

use datafusion::prelude::SessionContext;

/// Rows `first..first + rows` written as one Parquet file by a plain DataFusion context.
pub async fn write_file(path: &Path, first: u64, rows: u64) {
    let sql = format!(
        "COPY (SELECT 'k' || CAST(value % 97 AS VARCHAR) AS kind, value AS v
               FROM generate_series({first}, {})) TO '{}' STORED AS PARQUET",
        first + rows - 1,
        path.display()
    );
    let ctx = SessionContext::new();
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
}

pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The table's rows (`REFRESH_ROWS`, 10 million by default), or `None` when `cargo test
/// --benches` runs the binary once as a check: it stays quick there.
pub fn rows() -> Option<u64> {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return None;
    }
    Some(
        std::env::var("REFRESH_ROWS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000_000),
    )
}
