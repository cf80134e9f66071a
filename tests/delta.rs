//! Delta Lake tables (the `delta` feature): tables written by delta-rs itself (append,
//! overwrite, DELETE, UPDATE, MERGE, OPTIMIZE), MVs over them registered through SQL and the
//! API. After each operation the MV is stale or not exactly as the log says, every answer
//! equals the same query run by a plain DataFusion context reading the table through delta-rs's
//! own provider, and a refresh (incremental after an append) leaves rows equal to a full one.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaTable, ensure_table_uri};
use mvrewrite::testkit::compare::compare;
use mvrewrite::{MvError, MvSession, RefreshMode};

const QUERY: &str = "SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind";
const BY_KIND: &str = "CREATE MATERIALIZED VIEW by_kind AS SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind";

fn fresh_dir(test: &str) -> PathBuf {
    common::fresh_dir("delta", test)
}

/// `n` events from `first` on: ids, three kinds, two days, values.
fn events(first: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n).collect();
    let kinds: Vec<&str> = ids
        .iter()
        .map(|i| ["a", "b", "c"][(i % 3) as usize])
        .collect();
    let days: Vec<&str> = ids
        .iter()
        .map(|i| ["2024-03-01", "2024-03-02"][(i / 7 % 2) as usize])
        .collect();
    let values: Vec<i64> = ids.iter().map(|i| i * 7 % 11).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, true),
        Field::new("day", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(kinds)),
            Arc::new(StringArray::from(days)),
            Arc::new(Int64Array::from(values)),
        ],
    )
    .unwrap()
}

/// The Delta table at `dir`, as another writer (delta-rs) opens it.
async fn writer(dir: &Path) -> DeltaTable {
    let url = ensure_table_uri(dir.to_str().unwrap()).unwrap();
    DeltaTable::try_from_url(url).await.unwrap()
}

/// Writes `batch` to the Delta table at `dir` (creating it), partitioned by `day` if asked.
async fn write(dir: &Path, batch: RecordBatch, mode: SaveMode, by_day: bool) -> u64 {
    let mut write = writer(dir).await.write(vec![batch]).with_save_mode(mode);
    if by_day {
        write = write.with_partition_columns(["day"]);
    }
    write.await.unwrap().version().unwrap()
}

/// `CREATE EXTERNAL TABLE events STORED AS DELTA LOCATION '<dir>'`.
fn create_events(dir: &Path) -> String {
    format!(
        "CREATE EXTERNAL TABLE events STORED AS DELTA LOCATION '{}'",
        dir.display()
    )
}

async fn run(session: &MvSession, sql: &str) -> Vec<RecordBatch> {
    session.sql(sql).await.unwrap().collect().await.unwrap()
}

/// `sql` run by a plain DataFusion context over the table at `dir` read by delta-rs's own
/// provider, at its latest version.
async fn plain(dir: &Path, sql: &str) -> Vec<RecordBatch> {
    let table = writer(dir).await;
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    let provider = table.table_provider().await.unwrap();
    ctx.register_table("events", provider).unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

/// Runs `sql` through the session, asserts its rows equal the plain context's, and returns
/// the MVs that answered.
async fn answered(session: &MvSession, dir: &Path, sql: &str) -> Vec<String> {
    session.clear_report();
    let rows = run(session, sql).await;
    compare(&plain(dir, sql).await, &rows).unwrap();
    session
        .last_report()
        .map(|r| r.used_mvs())
        .unwrap_or_default()
}

/// Why `mv` is stale, if it is.
fn stale(session: &MvSession, mv: &str) -> Option<String> {
    session.catalog().read().unwrap().stale(mv).map(|s| s.cause)
}

/// Refreshes `mv`; its mode, and asserts its rows equal its definition's over the table now
/// (what a full refresh stores).
async fn refresh(session: &MvSession, dir: &Path, mv: &str, definition: &str) -> RefreshMode {
    let done = session
        .refresh_materialized_view(mv)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let stored = run(session, &format!("SELECT * FROM {mv}")).await;
    compare(&plain(dir, definition).await, &stored).unwrap();
    assert_eq!(stale(session, mv), None);
    done.mode
}

#[tokio::test]
async fn each_operation_makes_the_mv_stale_as_the_log_says() {
    let dir = fresh_dir("operations");
    write(&dir, events(0, 30), SaveMode::Append, false).await;
    let session = MvSession::new();
    run(&session, &create_events(&dir)).await;
    run(&session, BY_KIND).await;
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);

    // Append: only new files, read alone by the refresh.
    let v = write(&dir, events(30, 20), SaveMode::Append, false).await;
    assert_eq!(answered(&session, &dir, QUERY).await, Vec::<String>::new());
    let why = stale(&session, "by_kind").unwrap();
    assert_eq!(
        why,
        format!(
            "events: version {} -> {v} (1 file added) since by_kind was computed",
            v - 1
        )
    );
    assert_eq!(
        refresh(&session, &dir, "by_kind", QUERY).await,
        RefreshMode::Incremental
    );
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);

    // OPTIMIZE compacts the two files into one and changes no row: the MV stays fresh.
    let (optimized, metrics) = writer(&dir).await.optimize().await.unwrap();
    assert!(metrics.num_files_removed >= 2, "{metrics:?}");
    assert_eq!(optimized.version(), Some(v + 1));
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);
    assert_eq!(stale(&session, "by_kind"), None);

    // DELETE, UPDATE, MERGE and an overwrite remove or rewrite files: stale by the versions,
    // refreshed in full.
    let (deleted, _) = writer(&dir)
        .await
        .delete()
        .with_predicate("v > 8")
        .await
        .unwrap();
    let deleted = deleted.version().unwrap();
    assert_eq!(answered(&session, &dir, QUERY).await, Vec::<String>::new());
    let why = stale(&session, "by_kind").unwrap();
    assert!(
        why.starts_with(&format!("events: version {} -> {deleted} (", deleted - 1)),
        "{why}"
    );
    assert!(why.contains("removed"), "{why}");
    assert_eq!(
        refresh(&session, &dir, "by_kind", QUERY).await,
        RefreshMode::Full
    );

    let (updated, _) = writer(&dir)
        .await
        .update()
        .with_predicate("kind = 'a'")
        .with_update("v", "v + 100")
        .await
        .unwrap();
    assert_eq!(answered(&session, &dir, QUERY).await, Vec::<String>::new());
    let why = stale(&session, "by_kind").unwrap();
    let updated = updated.version().unwrap();
    assert!(why.contains(&format!("-> {updated} (")), "{why}");
    assert_eq!(
        refresh(&session, &dir, "by_kind", QUERY).await,
        RefreshMode::Full
    );
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);

    let source = SessionContext::new().read_batch(events(25, 10)).unwrap();
    let (merged, _) = writer(&dir)
        .await
        .merge(source, "target.id = source.id")
        .with_source_alias("source")
        .with_target_alias("target")
        .when_matched_update(|u| u.update("v", "source.v * 2"))
        .unwrap()
        .when_not_matched_insert(|i| {
            i.set("id", "source.id")
                .set("kind", "source.kind")
                .set("day", "source.day")
                .set("v", "source.v")
        })
        .unwrap()
        .await
        .unwrap();
    assert_eq!(answered(&session, &dir, QUERY).await, Vec::<String>::new());
    let why = stale(&session, "by_kind").unwrap();
    assert!(
        why.contains(&format!("-> {} (", merged.version().unwrap())),
        "{why}"
    );
    assert_eq!(
        refresh(&session, &dir, "by_kind", QUERY).await,
        RefreshMode::Full
    );

    write(&dir, events(100, 12), SaveMode::Overwrite, false).await;
    assert_eq!(answered(&session, &dir, QUERY).await, Vec::<String>::new());
    assert!(stale(&session, "by_kind").is_some());
    assert_eq!(
        refresh(&session, &dir, "by_kind", QUERY).await,
        RefreshMode::Full
    );
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);
}

#[tokio::test]
async fn appends_refresh_incrementally_and_equal_a_full_refresh() {
    let dir = fresh_dir("appends");
    write(&dir, events(0, 40), SaveMode::Append, true).await;
    let session = MvSession::new();
    session
        .register_delta("events", dir.to_str().unwrap(), None)
        .await
        .unwrap();
    run(&session, BY_KIND).await;
    // A row MV beside the aggregate: its new rows are appended.
    let big = "SELECT id, kind, v FROM events WHERE v > 5";
    run(&session, &format!("CREATE MATERIALIZED VIEW big AS {big}")).await;
    for (round, n) in [(1, 9), (2, 1), (3, 25)] {
        // Two versions between refreshes: both appends read, nothing else.
        write(&dir, events(100 * round, n), SaveMode::Append, true).await;
        write(&dir, events(100 * round + 50, 3), SaveMode::Append, true).await;
        assert!(answered(&session, &dir, QUERY).await.is_empty());
        assert_eq!(
            refresh(&session, &dir, "by_kind", QUERY).await,
            RefreshMode::Incremental
        );
        assert_eq!(
            refresh(&session, &dir, "big", big).await,
            RefreshMode::Incremental
        );
        assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);
        let q = "SELECT kind, count(*) FROM events WHERE v > 5 GROUP BY kind";
        assert!(!answered(&session, &dir, q).await.is_empty());
    }
}

#[tokio::test]
async fn a_partition_the_log_changed_is_refreshed_alone() {
    let dir = fresh_dir("partitions");
    // Two files in each day, for OPTIMIZE to compact.
    write(&dir, events(0, 28), SaveMode::Append, true).await;
    write(&dir, events(28, 28), SaveMode::Append, true).await;
    let session = MvSession::new();
    run(&session, &create_events(&dir)).await;
    let by_day = "SELECT day, kind, sum(v) AS total, count(*) AS n FROM events GROUP BY day, kind";
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW by_day AS {by_day}"),
    )
    .await;
    let one_day = "SELECT kind, sum(v) FROM events WHERE day = '2024-03-01' GROUP BY kind";
    let other_day = "SELECT kind, sum(v) FROM events WHERE day = '2024-03-02' GROUP BY kind";
    assert_eq!(answered(&session, &dir, one_day).await, ["by_day"]);

    // A DELETE in one day: the other day is still answered from the MV.
    writer(&dir)
        .await
        .delete()
        .with_predicate("day = '2024-03-02' AND v < 3")
        .await
        .unwrap();
    assert_eq!(answered(&session, &dir, one_day).await, ["by_day"]);
    // The changed day is read from the table (the rows compared).
    answered(&session, &dir, other_day).await;
    let done = session
        .refresh_materialized_view("by_day")
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(done.mode, RefreshMode::Partitions);
    assert_eq!(done.partitions, ["2024-03-02"]);
    compare(
        &plain(&dir, by_day).await,
        &run(&session, "SELECT * FROM by_day").await,
    )
    .unwrap();

    // OPTIMIZE changes no row: nothing to recompute, in any partition.
    let (_, metrics) = writer(&dir).await.optimize().await.unwrap();
    assert!(metrics.num_files_removed > 0, "{metrics:?}");
    assert_eq!(stale(&session, "by_day"), None);
    assert_eq!(answered(&session, &dir, other_day).await, ["by_day"]);
}

#[tokio::test]
async fn a_table_changed_while_no_process_ran_comes_back_stale() {
    let dir = fresh_dir("restart");
    let store = fresh_dir("restart-store");
    let first = write(&dir, events(0, 30), SaveMode::Append, false).await;
    {
        let session = MvSession::with_data_dir(&store).await.unwrap();
        run(&session, &create_events(&dir)).await;
        run(&session, BY_KIND).await;
        assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);
    }
    let later = write(&dir, events(30, 5), SaveMode::Append, false).await;
    let session = MvSession::with_data_dir(&store).await.unwrap();
    run(&session, &create_events(&dir)).await;
    assert!(session.catalog().read().unwrap().contains("by_kind"));
    assert_eq!(answered(&session, &dir, QUERY).await, Vec::<String>::new());
    assert_eq!(
        stale(&session, "by_kind").unwrap(),
        format!("events: version {first} -> {later} (1 file added) since by_kind was computed")
    );
    assert_eq!(
        refresh(&session, &dir, "by_kind", QUERY).await,
        RefreshMode::Incremental
    );
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);

    // Nothing changed while it was down: fresh after the restart.
    drop(session);
    let session = MvSession::with_data_dir(&store).await.unwrap();
    run(&session, &create_events(&dir)).await;
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);
}

#[tokio::test]
async fn time_travel_is_answered_only_by_an_mv_of_that_version() {
    let dir = fresh_dir("time-travel");
    let first = write(&dir, events(0, 30), SaveMode::Append, false).await;
    write(&dir, events(30, 12), SaveMode::Append, false).await;
    let session = MvSession::new();
    session
        .register_delta("events", dir.to_str().unwrap(), Some(first))
        .await
        .unwrap();
    run(&session, BY_KIND).await;
    let at_first = plain_at(&dir, first, QUERY).await;
    compare(&at_first, &run(&session, QUERY).await).unwrap();
    assert_eq!(used(&session), ["by_kind"]);

    // The same table at its latest version: the MV of the first is stale, by the versions.
    session
        .register_delta("events", dir.to_str().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(answered(&session, &dir, QUERY).await, Vec::<String>::new());
    let why = stale(&session, "by_kind").unwrap();
    assert!(
        why.contains(&format!("version {first} -> {}", first + 1)),
        "{why}"
    );
    refresh(&session, &dir, "by_kind", QUERY).await;
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);

    // Back to the first version through SQL: stale again until refreshed.
    run(&session, "DROP TABLE events").await;
    run(
        &session,
        &format!(
            "CREATE EXTERNAL TABLE events STORED AS DELTA LOCATION '{}' OPTIONS ('version' '{first}')",
            dir.display()
        ),
    )
    .await;
    compare(&at_first, &run(&session, QUERY).await).unwrap();
    assert!(used(&session).is_empty());
}

/// `sql` over the table at `dir` at `version`, through delta-rs's own provider.
async fn plain_at(dir: &Path, version: u64, sql: &str) -> Vec<RecordBatch> {
    let mut table = writer(dir).await;
    table.load_version(version).await.unwrap();
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("events", table.table_provider().await.unwrap())
        .unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

fn used(session: &MvSession) -> Vec<String> {
    session
        .last_report()
        .map(|r| r.used_mvs())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_missing_or_corrupt_log_is_a_clear_error_and_nothing_answers() {
    let empty = fresh_dir("no-log");
    let session = MvSession::new();
    let err = session
        .register_delta("events", empty.to_str().unwrap(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, MvError::Delta(_)), "{err}");
    let err = session.sql(&create_events(&empty)).await.unwrap_err();
    assert!(err.to_string().contains("Delta table"), "{err}");

    let dir = fresh_dir("corrupt");
    let last = write(&dir, events(0, 30), SaveMode::Append, false).await;
    run(&session, &create_events(&dir)).await;
    run(&session, BY_KIND).await;
    assert_eq!(answered(&session, &dir, QUERY).await, ["by_kind"]);
    // The next commit in the log is not JSON.
    std::fs::write(
        dir.join(format!("_delta_log/{:020}.json", last + 1)),
        "not a commit\n",
    )
    .unwrap();
    session.clear_report();
    let err = match session.sql(QUERY).await {
        Ok(df) => df.collect().await.unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("Delta table") && err.contains("log"), "{err}");
    assert!(used(&session).is_empty());
    let why = stale(&session, "by_kind").unwrap();
    assert!(why.contains("events"), "{why}");
    let err = session
        .refresh_materialized_view("by_kind")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Delta table"), "{err}");
    assert!(stale(&session, "by_kind").is_some());
}

/// The shell's `--data DIR`: a directory holding `_delta_log/` is a Delta table, read through
/// its log (a file the log removed stays on disk and is not read); another writer's append
/// between two runs leaves the kept MV stale until `REFRESH`, which is incremental.
#[tokio::test]
async fn shell_data_reads_a_delta_directory_through_its_log() {
    let data = fresh_dir("shell-data");
    let store = fresh_dir("shell-store");
    let dir = data.join("events");
    write(&dir, events(0, 30), SaveMode::Append, false).await;
    // Removed from the log, still on disk: a Parquet directory would count its rows twice.
    writer(&dir)
        .await
        .delete()
        .with_predicate("v > 8")
        .await
        .unwrap();
    let shell = |script: &str| {
        let out = assert_cmd::Command::cargo_bin("mvrewrite")
            .unwrap()
            .args(["shell", "--data"])
            .arg(&data)
            .arg("--store")
            .arg(&store)
            .write_stdin(script.to_string())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let count = "SELECT count(*) AS rows FROM events;";
    let first = shell(&format!("{BY_KIND};\n{QUERY};\n{count}"));
    assert!(first.contains("answered by by_kind"), "{first}");
    let rows: i64 = plain(&dir, "SELECT count(*) FROM events").await[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert!(
        rows < 30 && first.contains(&format!("| {rows} ")),
        "{first}"
    );

    write(&dir, events(30, 6), SaveMode::Append, false).await;
    let second = shell(&format!(
        "{QUERY};\nREFRESH MATERIALIZED VIEW by_kind;\n{QUERY};"
    ));
    assert!(second.contains("incremental"), "{second}");
    assert!(second.contains("answered by by_kind"), "{second}");
}
