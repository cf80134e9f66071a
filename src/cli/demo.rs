//! The README's first command: generate an `events` table, write it as day-partitioned Parquet
//! files, register them as a listing table, register MVs, run queries with and without
//! rewriting, and show what was used and how long each took. Then another writer adds a day of
//! events: the MVs are stale until a refresh, which reads only the new file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;

use crate::error::{MvError, Result};
use crate::lifecycle::MvSession;
use crate::testkit::datagen;

/// The MVs the demo registers: the Moose example's summaries.
pub const DEMO_MVS: &[&str] = &[
    "CREATE MATERIALIZED VIEW event_summary AS SELECT event_type, count(*) AS events, sum(value) AS total_value, max(ts) AS last_seen FROM events GROUP BY event_type",
    "CREATE MATERIALIZED VIEW user_stats AS SELECT user_id, event_type, count(*) AS events, sum(value) AS total_value, count(value) AS valued_events FROM events GROUP BY user_id, event_type",
    // Moose's hourly stats: an average, stored with its sum and count, so that it rolls up.
    "CREATE MATERIALIZED VIEW hourly_stats AS SELECT toStartOfHour(ts) AS hour, event_type, count(*) AS events, avg(value) AS avg_value FROM events GROUP BY toStartOfHour(ts), event_type",
];

/// The queries it runs: users keep writing them against `events`.
pub const DEMO_QUERIES: &[&str] = &[
    "SELECT count(*) FROM events",
    "SELECT max(ts) AS latest FROM events",
    "SELECT event_type, sum(value) AS total, count(*) AS n FROM events GROUP BY event_type ORDER BY event_type",
    "SELECT user_id, count(*) AS n, sum(value) AS total FROM events GROUP BY user_id ORDER BY n DESC, user_id LIMIT 5",
    "SELECT date_trunc('day', ts) AS day, avg(value) AS avg_value FROM events GROUP BY date_trunc('day', ts) ORDER BY day LIMIT 3",
    "SELECT event_type, count(DISTINCT user_id) AS users FROM events GROUP BY event_type ORDER BY event_type",
];

/// The query run again after another writer adds a day of events.
const AFTER_WRITE_QUERY: &str = "SELECT event_type, sum(value) AS total, count(*) AS n FROM events GROUP BY event_type ORDER BY event_type";

/// The day another writer adds: the one after the generated 90 days.
const NEW_DAY: &str = "2024-04-01";

/// Where the demo writes its files when not told: a directory of its own under the system's
/// temporary directory, emptied first.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("mvrewrite-demo")
}

/// Rows an MV holds.
fn stored_rows(session: &MvSession, mv: &str) -> u64 {
    session
        .catalog()
        .read()
        .ok()
        .and_then(|c| c.get(mv).and_then(|m| m.row_count))
        .unwrap_or(0)
}

/// Plans and runs `sql` three times; the result and the best time (planning included).
async fn timed(ctx: &SessionContext, sql: &str) -> Result<(Vec<RecordBatch>, Duration)> {
    let mut best = Duration::MAX;
    let mut batches = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        batches = ctx.sql(sql).await?.collect().await?;
        best = best.min(start.elapsed());
    }
    Ok((batches, best))
}

/// Runs the demo over `rows` generated events written under `dir` (emptied first), writing
/// the story to `out` and progress to stderr.
pub async fn run(rows: usize, dir: &Path, out: &mut impl Write) -> Result<()> {
    let start = Instant::now();
    let batches = generate_events(rows)?;
    writeln!(out, "generated {rows} events in {:.2?}", start.elapsed()).map_err(io)?;

    let table_dir = dir.join("events");
    let start = Instant::now();
    let files = write_partitioned(batches, &table_dir).await?;
    writeln!(
        out,
        "wrote them as {files} day-partitioned Parquet files under {} in {:.2?}",
        table_dir.display(),
        start.elapsed()
    )
    .map_err(io)?;

    let session = events_session(rows, &table_dir).await?;
    let plain = session.without_rewrites();

    materialize_demo_mvs(&session, out).await?;
    writeln!(out).map_err(io)?;

    for sql in DEMO_QUERIES {
        compare_query(&session, &plain, sql, rows, out).await?;
    }
    another_writer_adds_a_day(&session, &plain, rows, &table_dir, out).await
}

/// A failure to write the story, as the demo's error.
fn io(e: std::io::Error) -> MvError {
    MvError::Internal(e.to_string())
}

/// The `events` table's rows, with progress on stderr.
fn generate_events(rows: usize) -> Result<Vec<RecordBatch>> {
    let batches = datagen::events(rows, 1 << 16, 42, |done| {
        if done % (1 << 20) < (1 << 16) || done == rows {
            eprint!(
                "\rgenerating events: {:>5.1}M / {:.1}M rows",
                done as f64 / 1e6,
                rows as f64 / 1e6
            );
        }
    })
    .map_err(|e| MvError::Internal(e.to_string()))?;
    eprintln!();
    Ok(batches)
}

/// Writes `batches` under `table_dir` (emptied first) as one Parquet file per day, in Hive
/// style (`day=2024-01-01/...`), with DataFusion's own partitioned writer; how many files.
async fn write_partitioned(batches: Vec<RecordBatch>, table_dir: &Path) -> Result<usize> {
    if table_dir.exists() {
        std::fs::remove_dir_all(table_dir)
            .map_err(|e| MvError::Storage(format!("cannot empty {}: {e}", table_dir.display())))?;
    }
    let writer = SessionContext::new();
    let generated = MemTable::try_new(datagen::events_schema(), vec![batches])?;
    writer.register_table("generated", Arc::new(generated))?;
    // Sorted by day, so that each batch goes to one or two days' files: DataFusion's
    // partitioned writer splits every batch by partition, and unsorted rows reach each of the
    // 90 files in slivers (measured 2-3x slower).
    let copy = format!(
        "COPY (SELECT *, CAST(CAST(ts AS DATE) AS VARCHAR) AS day FROM generated ORDER BY day)
         TO '{}/' STORED AS PARQUET PARTITIONED BY (day)",
        table_dir.display()
    );
    writer.sql(&copy).await?.collect().await?;
    Ok(std::fs::read_dir(table_dir)
        .map_err(|e| MvError::Storage(format!("cannot list {}: {e}", table_dir.display())))?
        .count())
}

/// A session reading `table_dir` as `events` (a listing table, its days a column), its row
/// count known for costing.
async fn events_session(rows: usize, table_dir: &Path) -> Result<MvSession> {
    let session = MvSession::new();
    let create = format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET PARTITIONED BY (day) LOCATION '{}/'",
        table_dir.display()
    );
    session.sql(&create).await?.collect().await?;
    session
        .catalog()
        .write()
        .map_err(|_| MvError::Internal("catalog lock poisoned".into()))?
        .set_table_rows("events", rows as u64);
    Ok(session)
}

/// Creates [`DEMO_MVS`], telling how many rows each holds and how long it took.
async fn materialize_demo_mvs(session: &MvSession, out: &mut impl Write) -> Result<()> {
    for mv in DEMO_MVS {
        let start = Instant::now();
        session.sql(mv).await?;
        let name = mv.split_whitespace().nth(3).unwrap_or("?");
        let mv_rows = stored_rows(session, name);
        writeln!(
            out,
            "materialized {name}: {mv_rows} rows in {:.2?}",
            start.elapsed()
        )
        .map_err(io)?;
    }
    Ok(())
}

/// Another writer (a plain DataFusion context) adds a day of events as a new Parquet file:
/// the query is answered from the files until a refresh, which reads only that file.
async fn another_writer_adds_a_day(
    session: &MvSession,
    plain: &SessionContext,
    rows: usize,
    table_dir: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let new_rows = (rows / 90).max(1);
    let writer = SessionContext::new();
    let copy = format!(
        "COPY (SELECT value AS event_id, to_timestamp('{NEW_DAY}T12:00:00') AS ts,
                      value % 100 AS user_id, 'click' AS event_type, CAST(value AS DOUBLE) AS value
               FROM generate_series(1, {new_rows}))
         TO '{}/day={NEW_DAY}/part-0.parquet' STORED AS PARQUET",
        table_dir.display()
    );
    writer.sql(&copy).await?.collect().await?;
    writeln!(
        out,
        "another writer added {new_rows} events of {NEW_DAY} as a new Parquet file\n"
    )
    .map_err(io)?;
    compare_query(session, plain, AFTER_WRITE_QUERY, rows + new_rows, out).await?;
    for mv in DEMO_MVS {
        let name = mv.split_whitespace().nth(3).unwrap_or("?");
        let start = Instant::now();
        for done in session.refresh_materialized_view(name).await? {
            writeln!(
                out,
                "refreshed {}: {} ({}) in {:.2?}",
                done.mv,
                done.mode,
                done.reason,
                start.elapsed()
            )
            .map_err(io)?;
        }
    }
    writeln!(out).map_err(io)?;
    compare_query(session, plain, AFTER_WRITE_QUERY, rows + new_rows, out).await
}

/// Runs `sql` without and with rewriting, and tells what answered it, how fast, and the rows.
async fn compare_query(
    session: &MvSession,
    plain: &SessionContext,
    sql: &str,
    rows: usize,
    out: &mut impl Write,
) -> Result<()> {
    let (original, t_original) = timed(plain, sql).await?;
    session.clear_report();
    let (rewritten, t_rewritten) = timed(session.context(), sql).await?;
    let used = session
        .last_report()
        .map(|r| r.used_mvs())
        .unwrap_or_default();
    let same = crate::testkit::compare::compare(&original, &rewritten).is_ok();
    writeln!(out, "{sql}").map_err(io)?;
    match used.first() {
        Some(mv) => {
            let mv_rows = stored_rows(session, mv);
            let speedup = t_original.as_secs_f64() / t_rewritten.as_secs_f64().max(1e-9);
            // One decimal below 10x, so that a slowdown does not print as "0x" or "1x".
            let digits = if speedup < 10.0 { 1 } else { 0 };
            writeln!(
                out,
                "  answered from {mv}: reads {mv_rows} rows instead of {rows}; {:.2?} -> {:.2?} ({speedup:.digits$}x); same result: {}",
                t_original,
                t_rewritten,
                if same { "yes" } else { "NO" }
            )
            .map_err(io)?;
        }
        None => {
            let why = session
                .last_report()
                .map(|r| r.to_string().lines().next().unwrap_or("").to_string())
                .unwrap_or_default();
            writeln!(
                out,
                "  not rewritten ({why}); {t_original:.2?} / {t_rewritten:.2?}; same result: {}",
                if same { "yes" } else { "NO" }
            )
            .map_err(io)?;
        }
    }
    writeln!(out, "{}", pretty_format_batches(&rewritten)?).map_err(io)?;
    Ok(())
}
