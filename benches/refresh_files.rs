//! Incremental refresh from new files against a full refresh: a Parquet table of
//! `REFRESH_ROWS` rows (default 10 million) in 100 files, an aggregate MV over it; another
//! writer adds 1% more rows as one new file, and `REFRESH` reads just that file. The full
//! refresh is the MV computed again over every file (`CREATE OR REPLACE`). A bench binary:
//! each refresh changes the table, so runs are not repeatable iterations; medians of a few.
//!
//! `cargo bench --bench refresh_files` (release build; figures go to BENCHMARKS.md).

use std::path::PathBuf;
use std::time::Instant;

use mvrewrite::{MvSession, RefreshMode};

#[path = "support/refresh.rs"]
mod support;
use support::{median, rows, write_file};

const FILES: u64 = 100;
const MV: &str = "CREATE OR REPLACE MATERIALIZED VIEW by_kind AS
    SELECT kind, sum(v) AS total, count(*) AS n, max(v) AS top FROM events GROUP BY kind";

/// The table's first `FILES` files, written once and kept between runs.
async fn table(rows: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvrewrite-bench-refresh-files-{rows}"));
    let per_file = rows / FILES;
    let complete = (0..FILES).all(|i| dir.join(format!("part-{i}.parquet")).exists());
    if !complete {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..FILES {
            eprint!("\rwriting {rows} rows: file {} of {FILES}", i + 1);
            write_file(
                &dir.join(format!("part-{i}.parquet")),
                i * per_file,
                per_file,
            )
            .await;
        }
        eprintln!();
    }
    // New files of earlier runs go: the table starts from its 100 files.
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("new-") {
            std::fs::remove_file(entry.path()).unwrap();
        }
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
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        dir.display()
    );
    session.sql(&create).await.unwrap().collect().await.unwrap();
    let mut full = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        session.sql(MV).await.unwrap();
        full.push(start.elapsed());
    }
    let mut incremental = Vec::new();
    let new_rows = rows / 100;
    for i in 0..5 {
        write_file(
            &dir.join(format!("new-{i}.parquet")),
            rows + i * new_rows,
            new_rows,
        )
        .await;
        let start = Instant::now();
        let done = session.refresh_materialized_view("by_kind").await.unwrap();
        incremental.push(start.elapsed());
        let last = done.last().unwrap();
        assert_eq!(last.mode, RefreshMode::Incremental, "{last:?}");
    }
    let (full, incremental) = (median(full), median(incremental));
    println!(
        "| table rows | new rows (one file) | full refresh | incremental refresh | full / incremental |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {rows} | {new_rows} | {:.1} ms | {:.1} ms | {:.1}x |",
        full.as_secs_f64() * 1e3,
        incremental.as_secs_f64() * 1e3,
        full.as_secs_f64() / incremental.as_secs_f64()
    );
}
