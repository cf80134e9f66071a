//! What the freshness check of a table on files costs a query: planning a query an MV over a
//! Parquet directory answers, with the directory watched and its listing kept while no file
//! changes (`watch`, the default), listed for every query (`always`) and with a listing
//! reused for a second (`'1000 ms'`), against the number of files (100, 1,000, 10,000). The
//! difference to the reused listing is the check.
//!
//! `cargo bench --bench files` (release build; figures go to BENCHMARKS.md).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use datafusion::prelude::SessionContext;
use mvrewrite::MvSession;

const QUERY: &str = "SELECT kind, sum(v) FROM events GROUP BY kind";

/// A directory of `files` copies of one small Parquet file, made once and kept.
fn directory(runtime: &tokio::runtime::Runtime, files: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvrewrite-bench-files-{files}"));
    if std::fs::read_dir(&dir).is_ok_and(|d| d.count() == files) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let first = dir.join("part-0.parquet");
    runtime.block_on(async {
        let sql = format!(
            "COPY (SELECT 'k' || CAST(value % 3 AS VARCHAR) AS kind, value AS v FROM generate_series(1, 100)) TO '{}' STORED AS PARQUET",
            first.display()
        );
        let ctx = SessionContext::new();
        ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    });
    for i in 1..files {
        std::fs::copy(&first, dir.join(format!("part-{i}.parquet"))).unwrap();
    }
    dir
}

fn session(runtime: &tokio::runtime::Runtime, dir: &Path, listing: &str) -> MvSession {
    runtime.block_on(async {
        let session = MvSession::new();
        for sql in [
            format!(
                "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
                dir.display()
            ),
            "CREATE MATERIALIZED VIEW by_kind AS SELECT kind, sum(v) AS s FROM events GROUP BY kind"
                .to_string(),
            format!("SET mvrewrite.file_listing = '{listing}'"),
        ] {
            session.sql(&sql).await.unwrap().collect().await.unwrap();
        }
        session
    })
}

fn freshness_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("file_freshness");
    group.sample_size(20);
    for files in [100, 1_000, 10_000] {
        let dir = directory(&runtime, files);
        for listing in ["watch", "always", "1000 ms"] {
            let session = session(&runtime, &dir, listing);
            let id = BenchmarkId::new(format!("plan, listing {listing}"), files);
            group.bench_with_input(id, &files, |b, _| {
                b.iter(|| {
                    runtime.block_on(async {
                        let df = session.sql(QUERY).await.unwrap();
                        black_box(df.into_optimized_plan().unwrap())
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, freshness_check);
criterion_main!(benches);
