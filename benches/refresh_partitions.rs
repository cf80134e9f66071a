//! Refresh of only the changed partitions against a full refresh: a day-partitioned Parquet
//! table of `REFRESH_ROWS` rows (default 10 million) in 100 partitions of one file each, an
//! aggregate MV by day; another writer rewrites the file of one partition (1% of the rows),
//! and `REFRESH` recomputes that partition alone. The full refresh is the MV computed again
//! over every file (`CREATE OR REPLACE`). A bench binary: each refresh changes the table, so
//! runs are not repeatable iterations; medians of a few.
//!
//! `cargo bench --bench refresh_partitions` (release build).

use std::path::{Path, PathBuf};
use std::time::Instant;

use mvrewrite::{MvSession, RefreshMode};

#[path = "support/refresh.rs"]
mod support;
use support::{median, rows, write_file};

const PARTITIONS: u64 = 100;
const MV: &str = "CREATE OR REPLACE MATERIALIZED VIEW by_day AS
    SELECT day, kind, sum(v) AS total, count(*) AS n, max(v) AS top FROM events GROUP BY day, kind";

/// The file of partition `i`.
fn file_of(dir: &Path, i: u64) -> PathBuf {
    dir.join(format!("day=2024-{:02}-{:02}", 1 + i / 28, 1 + i % 28))
        .join(format!("part-{i}.parquet"))
}

/// The table's files, written once and kept between runs.
async fn table(rows: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvrewrite-bench-refresh-partitions-{rows}"));
    let complete = (0..PARTITIONS).all(|i| file_of(&dir, i).exists());
    if !complete {
        let _ = std::fs::remove_dir_all(&dir);
        for i in 0..PARTITIONS {
            eprint!("\rwriting {rows} rows: file {} of {PARTITIONS}", i + 1);
            std::fs::create_dir_all(file_of(&dir, i).parent().unwrap()).unwrap();
            write_file(
                &file_of(&dir, i),
                i * (rows / PARTITIONS),
                rows / PARTITIONS,
            )
            .await;
        }
        eprintln!();
    }
    dir
}

#[tokio::main]
async fn main() {
    let Some(rows) = rows() else {
        return;
    };
    let dir = table(rows).await;
    let session = MvSession::new();
    let create = format!(
        "CREATE EXTERNAL TABLE events (kind VARCHAR, v BIGINT, day DATE)
         STORED AS PARQUET PARTITIONED BY (day) LOCATION '{}/'",
        dir.display()
    );
    session.sql(&create).await.unwrap().collect().await.unwrap();
    let mut full = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        session.sql(MV).await.unwrap();
        full.push(start.elapsed());
    }
    let mut by_partition = Vec::new();
    let per_file = rows / PARTITIONS;
    for i in 0..5 {
        // The same rows again, as another writer rewriting the file would leave them.
        write_file(&file_of(&dir, i * 7), i * 7 * per_file, per_file).await;
        let start = Instant::now();
        let done = session.refresh_materialized_view("by_day").await.unwrap();
        by_partition.push(start.elapsed());
        let last = done.last().unwrap();
        assert_eq!(last.mode, RefreshMode::Partitions, "{last:?}");
    }
    let (full, by_partition) = (median(full), median(by_partition));
    println!(
        "| table rows | rows rewritten (one file) | full refresh | refresh of changed partitions | full / partitions |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {rows} | {per_file} | {:.1} ms | {:.1} ms | {:.1}x |",
        full.as_secs_f64() * 1e3,
        by_partition.as_secs_f64() * 1e3,
        full.as_secs_f64() / by_partition.as_secs_f64()
    );
}
