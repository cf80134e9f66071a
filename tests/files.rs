//! Tables on files: a Parquet directory registered with `CREATE EXTERNAL TABLE`, MVs over it,
//! and another writer (a plain DataFusion context, or a file removed) changing its files. Every
//! answer is compared with the same query run without rewriting, on the files as they are.

mod common;

use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;
use mvrewrite::testkit::compare::compare;
use mvrewrite::testkit::datagen::Rng;
use mvrewrite::{CandidateStatus, FileListing, MvSession, ReasonCode, RefreshMode};

use common::write_file;

/// A new, empty directory for one test.
fn fresh_dir(test: &str) -> PathBuf {
    common::fresh_dir("files", test)
}

const QUERY: &str = "SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind";
const TOP: &str =
    "CREATE MATERIALIZED VIEW top AS SELECT kind, max(v) AS m FROM events GROUP BY kind";

/// A session over the Parquet files in `dir`, with `by_kind` over them.
async fn session_over(dir: &Path) -> MvSession {
    session_with(&create_events(dir), MvSession::new()).await
}

/// `CREATE EXTERNAL TABLE events` over the Parquet files in `dir`.
fn create_events(dir: &Path) -> String {
    format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        dir.display()
    )
}

/// `session` where `create` makes `events`, with `by_kind` over it.
async fn session_with(create: &str, session: MvSession) -> MvSession {
    session.sql(create).await.unwrap().collect().await.unwrap();
    session
        .sql("CREATE MATERIALIZED VIEW by_kind AS SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind")
        .await
        .unwrap();
    session
}

/// Runs [`QUERY`] through the session and without rewriting; asserts both agree, and returns
/// the MVs used and the total of `v`.
async fn answered(session: &MvSession) -> (Vec<String>, i64) {
    session.clear_report();
    let rewritten = session.sql(QUERY).await.unwrap().collect().await.unwrap();
    let used = session
        .last_report()
        .map(|r| r.used_mvs())
        .unwrap_or_default();
    let original = session
        .without_rewrites()
        .sql(QUERY)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    compare(&original, &rewritten).unwrap();
    let total = session
        .without_rewrites()
        .sql("SELECT sum(v) FROM events")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let total = total[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .map_or(0, |a| a.value(0));
    (used, total)
}

/// Runs a statement to the end.
async fn run(session: &MvSession, sql: &str) {
    session.sql(sql).await.unwrap().collect().await.unwrap();
}

/// Refreshes `by_kind`, asserts it answers again with `v` summing to `total`, and returns how
/// it was refreshed.
async fn refreshed(session: &MvSession, total: i64) -> RefreshMode {
    let done = session.refresh_materialized_view("by_kind").await.unwrap();
    let mode = done.last().expect("by_kind refreshed").mode;
    assert_eq!(
        answered(session).await,
        (vec!["by_kind".to_string()], total)
    );
    mode
}

/// Why `by_kind` was not used, from the last report.
fn rejection(session: &MvSession) -> (ReasonCode, String) {
    let report = session.last_report().expect("a report");
    match &report.candidates[0].status {
        CandidateStatus::Rejected(r) => (r.code, r.reason.clone()),
        other => panic!("by_kind was not rejected: {other:?}"),
    }
}

#[tokio::test]
async fn a_file_another_writer_adds_makes_the_mv_stale_and_refresh_reads_only_it() {
    let dir = fresh_dir("added");
    write_file(&dir, "part-0.parquet", 1, 1000).await;
    let session = session_over(&dir).await;
    assert_eq!(
        answered(&session).await,
        (vec!["by_kind".to_string()], 500_500)
    );

    write_file(&dir, "part-1.parquet", 1001, 1500).await;
    // The table reads the new file; the MV, computed before it, does not answer.
    let (used, total) = answered(&session).await;
    assert_eq!((used.len(), total), (0, 1_125_750));
    let (code, reason) = rejection(&session);
    assert_eq!(code, ReasonCode::Stale);
    assert!(
        reason.contains("events: 1 file added since by_kind was computed"),
        "{reason}"
    );

    // Planned on the session's context directly, the rule lists the files itself.
    let plan = session
        .context()
        .sql(QUERY)
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap();
    assert!(!format!("{plan}").contains("by_kind"), "{plan}");

    let refreshed = session.refresh_materialized_view("by_kind").await.unwrap();
    let last = refreshed.last().unwrap();
    assert_eq!(last.mode, RefreshMode::Incremental, "{last:?}");
    assert!(
        last.reason
            .contains("by 1 new file (500 rows of them read)"),
        "{last:?}"
    );
    assert_eq!(
        answered(&session).await,
        (vec!["by_kind".to_string()], 1_125_750)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_file_removed_makes_the_mv_stale_and_refresh_recomputes_it() {
    let dir = fresh_dir("removed");
    write_file(&dir, "part-0.parquet", 1, 1000).await;
    write_file(&dir, "part-1.parquet", 1001, 2000).await;
    let session = session_over(&dir).await;
    assert_eq!(answered(&session).await.0, vec!["by_kind"]);

    std::fs::remove_file(dir.join("part-1.parquet")).unwrap();
    let (used, total) = answered(&session).await;
    assert_eq!((used.len(), total), (0, 500_500));
    let (code, reason) = rejection(&session);
    assert_eq!(code, ReasonCode::Stale);
    assert!(reason.contains("events: 1 file removed"), "{reason}");

    assert_eq!(refreshed(&session, 500_500).await, RefreshMode::Full);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_corrupt_file_gives_an_error_and_the_mv_never_answers_from_it() {
    let dir = fresh_dir("corrupt");
    write_file(&dir, "part-0.parquet", 1, 1000).await;
    let session = session_over(&dir).await;
    assert_eq!(answered(&session).await.0, vec!["by_kind"]);

    std::fs::write(dir.join("part-1.parquet"), b"not parquet at all").unwrap();
    // The MV is stale; the table cannot be read: a typed error, not a panic, not old rows.
    let read = match session.sql(QUERY).await {
        Ok(df) => df.collect().await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(read.is_err(), "a corrupt file was read: {read:?}");
    let report = session.last_report().expect("a report");
    assert!(report.used_mvs().is_empty(), "{report}");
    // A refresh fails and keeps the previous rows, stale.
    assert!(session.refresh_materialized_view("by_kind").await.is_err());
    std::fs::remove_file(dir.join("part-1.parquet")).unwrap();
    // With the file gone, the files are those the MV was computed from: no refresh needed.
    refreshed(&session, 500_500).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Seeded random appends and removals of files by another writer, and refreshes: whatever the
/// sequence, every answer equals the original's, and after a refresh the MV answers.
#[tokio::test]
async fn random_file_changes_and_refreshes_keep_every_answer_right() {
    random_file_changes(false).await;
}

/// The same with `by_kind` kept in a store: each refresh a new generation of final rows; with
/// `top` beside it, refreshed at other times, and restarts between steps, so that an MV comes
/// back computed before files the previous process saw added.
#[tokio::test]
async fn random_file_changes_and_refreshes_of_an_mv_in_a_store() {
    random_file_changes(true).await;
}

async fn random_file_changes(in_store: bool) {
    let seed: u64 = std::env::var("FILES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(28);
    let mut rng = Rng::new(seed);
    let root = fresh_dir("random");
    let dir = root.join("events");
    std::fs::create_dir_all(&dir).unwrap();
    write_file(&dir, "part-0.parquet", 1, 300).await;
    let store = root.join("store");
    let mut session = match in_store {
        true => MvSession::with_data_dir(&store).await.unwrap(),
        false => MvSession::new(),
    };
    session = session_with(&create_events(&dir), session).await;
    if in_store {
        session.sql(TOP).await.unwrap();
    }
    let mut files = vec!["part-0.parquet".to_string()];
    let mut next = 301;
    let (mut incremental, mut full) = (0, 0);
    for step in 0..14 {
        match rng.below(3) {
            0 | 1 => {
                let n = 1 + rng.below(200) as i64;
                let file = format!("part-{}.parquet", step + 1);
                write_file(&dir, &file, next, next + n - 1).await;
                next += n;
                files.push(file);
            }
            _ if files.len() > 1 => {
                let file = files.remove(rng.below(files.len() as u64) as usize);
                std::fs::remove_file(dir.join(file)).unwrap();
            }
            _ => {}
        }
        if in_store && rng.below(4) == 0 {
            drop(session);
            session = MvSession::with_data_dir(&store).await.unwrap();
            run(&session, &create_events(&dir)).await;
        }
        answered(&session).await;
        if in_store && rng.below(2) == 0 {
            session.refresh_materialized_view("top").await.unwrap();
        }
        if rng.below(2) == 0 {
            for done in session.refresh_materialized_view("by_kind").await.unwrap() {
                match done.mode {
                    RefreshMode::Incremental => incremental += 1,
                    RefreshMode::Full => full += 1,
                    _ => {}
                }
            }
            assert_eq!(answered(&session).await.0, vec!["by_kind"], "seed {seed}");
        }
    }
    eprintln!(
        "files (store: {in_store}): seed {seed}, {incremental} incremental and {full} full refreshes"
    );
    if in_store {
        // Refreshed, the MV's rows as another engine reads them are its definition's.
        session.refresh_materialized_view("by_kind").await.unwrap();
        common::another_engine_reads(&session, "by_kind", QUERY).await;
        session.refresh_materialized_view("top").await.unwrap();
        let top = TOP.split_once(" AS ").unwrap().1;
        common::another_engine_reads(&session, "top", top).await;
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// MVs kept in a data directory come back in the next process as soon as the table they read
/// is created by SQL, and a file another writer added while no process ran makes them stale.
#[tokio::test]
async fn an_mv_kept_across_a_restart_sees_files_added_while_no_process_ran() {
    let dir = fresh_dir("restart");
    let files = dir.join("events");
    let store = dir.join("store");
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 1000).await;
    let create_table = format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        files.display()
    );
    {
        let first = MvSession::with_data_dir(&store).await.unwrap();
        run(&first, &create_table).await;
        first
            .sql("CREATE MATERIALIZED VIEW by_kind AS SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind")
            .await
            .unwrap();
        assert_eq!(answered(&first).await.0, vec!["by_kind"]);
    }
    // The next process: the table defined by SQL brings the MV back, fresh.
    let second = MvSession::with_data_dir(&store).await.unwrap();
    run(&second, &create_table).await;
    assert_eq!(
        answered(&second).await,
        (vec!["by_kind".to_string()], 500_500)
    );
    drop(second);

    // A file added while no process runs: the MV comes back stale, and says why.
    write_file(&files, "part-1.parquet", 1001, 1100).await;
    let third = MvSession::with_data_dir(&store).await.unwrap();
    run(&third, &create_table).await;
    let (used, total) = answered(&third).await;
    assert_eq!((used.len(), total), (0, 605_550));
    let (code, reason) = rejection(&third);
    assert_eq!(code, ReasonCode::Stale);
    assert!(reason.contains("events: 1 file added"), "{reason}");
    refreshed(&third, 605_550).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file added in one process, seen there while the MV that reads it waits (another MV is
/// refreshed, so the store saves the table's newer listing), and another added before the next
/// process: that process refreshes the MV from both new files alone, since the store keeps
/// the writes of files the MV was computed before.
#[tokio::test]
async fn files_added_before_and_during_a_restart_are_both_read_alone_by_the_next_refresh() {
    let dir = fresh_dir("restart-log");
    let files = dir.join("events");
    let store = dir.join("store");
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 1000).await;
    let create_table = create_events(&files);
    {
        let first = MvSession::with_data_dir(&store).await.unwrap();
        let first = session_with(&create_table, first).await;
        first.sql(TOP).await.unwrap();
        write_file(&files, "part-1.parquet", 1001, 1100).await;
        let done = first.refresh_materialized_view("top").await.unwrap();
        assert_eq!(done.last().unwrap().mode, RefreshMode::Incremental);
    }
    write_file(&files, "part-2.parquet", 1101, 1300).await;
    let second = MvSession::with_data_dir(&store).await.unwrap();
    run(&second, &create_table).await;
    let (used, total) = answered(&second).await;
    assert_eq!((used.len(), total), (0, 845_650));
    let (code, reason) = rejection(&second);
    assert_eq!(code, ReasonCode::Stale);
    assert!(reason.contains("events: 2 files added"), "{reason}");
    let done = second.refresh_materialized_view("by_kind").await.unwrap();
    let last = done.last().unwrap();
    assert_eq!(last.mode, RefreshMode::Incremental, "{last:?}");
    assert!(
        last.reason
            .contains("by 2 new files (300 rows of them read)"),
        "{last:?}"
    );
    assert_eq!(
        answered(&second).await,
        (vec!["by_kind".to_string()], 845_650)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same through the API: the next process registers the table on the context
/// (`register_parquet`), not by SQL; the next statement through the session brings the MV
/// back, stale when a file was added while no process ran, and a refresh reads only that file.
#[tokio::test]
async fn an_mv_kept_across_a_restart_comes_back_when_its_table_is_registered_on_the_context() {
    let dir = fresh_dir("restart-api");
    let files = dir.join("events");
    let store = dir.join("store");
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 1000).await;
    let location = format!("{}/", files.display());
    {
        let first = MvSession::with_data_dir(&store).await.unwrap();
        first
            .context()
            .register_parquet("events", &location, Default::default())
            .await
            .unwrap();
        first
            .sql("CREATE MATERIALIZED VIEW by_kind AS SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind")
            .await
            .unwrap();
        assert_eq!(answered(&first).await.0, vec!["by_kind"]);
    }
    write_file(&files, "part-1.parquet", 1001, 1100).await;
    let second = MvSession::with_data_dir(&store).await.unwrap();
    assert!(!second.catalog().read().unwrap().contains("by_kind"));
    second
        .context()
        .register_parquet("events", &location, Default::default())
        .await
        .unwrap();
    let (used, total) = answered(&second).await;
    assert!(second.catalog().read().unwrap().contains("by_kind"));
    assert_eq!((used.len(), total), (0, 605_550));
    let (code, reason) = rejection(&second);
    assert_eq!(code, ReasonCode::Stale);
    assert!(reason.contains("events: 1 file added"), "{reason}");
    assert_eq!(refreshed(&second, 605_550).await, RefreshMode::Incremental);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A location that does not exist is refused with DataFusion's error (no files to read a
/// schema from), and a table whose directory is removed after an MV was computed from it
/// makes the MV stale.
#[tokio::test]
async fn a_missing_location_is_an_error_and_a_removed_directory_a_stale_mv() {
    let session = MvSession::new();
    let missing = fresh_dir("missing").join("not-there");
    let create = format!(
        "CREATE EXTERNAL TABLE nowhere STORED AS PARQUET LOCATION '{}/'",
        missing.display()
    );
    let created = match session.sql(&create).await {
        Ok(df) => df.collect().await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let refused = created.expect_err("a table over a location with no files");
    assert!(refused.contains("No files found"), "{refused}");

    let dir = fresh_dir("gone");
    write_file(&dir, "part-0.parquet", 1, 1000).await;
    let session = session_over(&dir).await;
    assert_eq!(answered(&session).await.0, vec!["by_kind"]);
    std::fs::remove_dir_all(&dir).unwrap();
    session.clear_report();
    let _ = match session.sql(QUERY).await {
        Ok(df) => df.collect().await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let report = session.last_report().expect("a report");
    assert!(report.used_mvs().is_empty(), "{report}");
    let (code, reason) = rejection(&session);
    assert_eq!(code, ReasonCode::Stale);
    assert!(
        reason.contains("events: 1 file removed") || reason.contains("not listed"),
        "{reason}"
    );
}

/// A refresh that runs longer than the progress interval reports the rows its scans read as
/// it goes, then once when done: every row of the table, for a full computation, and no more
/// before.
#[tokio::test]
async fn a_long_refresh_reports_its_progress() {
    use std::sync::{Arc, Mutex};
    let dir = fresh_dir("progress");
    for i in 0..4 {
        write_file(
            &dir,
            &format!("part-{i}.parquet"),
            i * 250_000 + 1,
            (i + 1) * 250_000,
        )
        .await;
    }
    let session = session_over(&dir).await;
    let reports: Arc<Mutex<Vec<mvrewrite::Progress>>> = Arc::default();
    let seen = Arc::clone(&reports);
    session.on_progress(mvrewrite::ProgressSink {
        every: std::time::Duration::from_millis(1),
        report: Arc::new(move |p| seen.lock().unwrap().push(p.clone())),
    });
    write_file(&dir, "part-x.parquet", 1_000_001, 1_000_010).await;
    std::fs::remove_file(dir.join("part-0.parquet")).unwrap();
    refreshed(&session, 1_000_010 * 1_000_011 / 2 - 250_000 * 250_001 / 2).await;
    let reports = reports.lock().unwrap();
    // The last report is made when the computation ends (it took more than a millisecond);
    // those while it runs depend on the machine's load.
    let last = reports.last().expect("a report once done");
    assert_eq!(last.task, "computing by_kind");
    assert!(last.done, "{reports:?}");
    assert_eq!(last.rows_read, Some(750_010), "{reports:?}");
    assert!(
        reports.iter().all(|p| p.rows_read <= Some(750_010)),
        "{reports:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A new file whose schema differs from the table's (`v` holds text): the MV is stale and never
/// answers, a refresh fails with DataFusion's error and keeps the previous rows, and once the
/// file is replaced by a good one the refresh succeeds.
#[tokio::test]
async fn a_new_file_with_another_schema_is_an_error_never_old_rows() {
    let dir = fresh_dir("schema");
    write_file(&dir, "part-0.parquet", 1, 1000).await;
    let session = session_over(&dir).await;
    assert_eq!(answered(&session).await.0, vec!["by_kind"]);

    let other = SessionContext::new();
    let bad = format!(
        "COPY (SELECT 'k1' AS kind, 'not a number' AS v) TO '{}' STORED AS PARQUET",
        dir.join("part-1.parquet").display()
    );
    other.sql(&bad).await.unwrap().collect().await.unwrap();
    session.clear_report();
    let read = match session.sql(QUERY).await {
        Ok(df) => df.collect().await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(read.is_err(), "text read as numbers: {read:?}");
    let (code, reason) = rejection(&session);
    assert_eq!(code, ReasonCode::Stale);
    assert!(reason.contains("events: 1 file added"), "{reason}");
    let failed = session.refresh_materialized_view("by_kind").await;
    assert!(failed.is_err(), "{failed:?}");

    std::fs::remove_file(dir.join("part-1.parquet")).unwrap();
    write_file(&dir, "part-1.parquet", 1001, 1010).await;
    refreshed(&session, 510_555).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A table on an object store other than the local file system (an in-memory one, registered
/// with the session's runtime as S3 or GCS would be): an object another writer puts makes the
/// MV stale, and the refresh reads only it.
#[tokio::test]
async fn a_table_on_an_object_store_sees_objects_another_writer_puts() {
    use common::put_parquet as put;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::object_store::memory::InMemory;

    let store = std::sync::Arc::new(InMemory::new());
    put(&store, "events/part-0.parquet", 1, 1000).await;
    let session = MvSession::new();
    let url = ObjectStoreUrl::parse("memory://bucket").unwrap();
    session
        .context()
        .register_object_store(url.as_ref(), store.clone());
    run(
        &session,
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION 'memory://bucket/events/'",
    )
    .await;
    session
        .sql("CREATE MATERIALIZED VIEW by_kind AS SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind")
        .await
        .unwrap();
    assert_eq!(answered(&session).await, (vec!["by_kind".into()], 500_500));

    put(&store, "events/part-1.parquet", 1001, 1100).await;
    assert_eq!(answered(&session).await, (vec![], 605_550));
    let (code, reason) = rejection(&session);
    assert_eq!(code, ReasonCode::Stale);
    assert!(reason.contains("events: 1 file added"), "{reason}");
    assert_eq!(refreshed(&session, 605_550).await, RefreshMode::Incremental);
}

/// How many listings of tables on files `session` made so far.
fn listings(session: &MvSession) -> u64 {
    session.catalog().read().unwrap().listings_made()
}

/// By default the table's directory is watched: queries over files nobody changed reuse the
/// listing (none is made), and a file another writer adds right before a query is seen by it.
/// With `always`, every query lists.
#[tokio::test]
async fn by_default_unchanged_files_are_not_listed_again_and_a_new_one_is_seen_at_once() {
    let dir = fresh_dir("watch");
    write_file(&dir, "part-0.parquet", 1, 1000).await;
    let session = session_over(&dir).await;
    let default = session.catalog().read().unwrap().file_listing();
    assert_eq!(
        (default, default.to_string()),
        (FileListing::Watch, "watch".into())
    );
    answered(&session).await;
    let before = listings(&session);
    for _ in 0..20 {
        let (used, total) = answered(&session).await;
        assert_eq!((used, total), (vec!["by_kind".to_string()], 500_500));
    }
    assert_eq!(
        listings(&session),
        before,
        "unchanged files were listed again"
    );

    for round in 0..3i64 {
        let first = 1001 + round * 100;
        write_file(&dir, &format!("new-{round}.parquet"), first, first + 99).await;
        let (used, _) = answered(&session).await;
        assert!(
            used.is_empty(),
            "the MV answered over a file added before the query"
        );
        assert_eq!(
            refreshed(&session, 500_500 + (1001..first + 100).sum::<i64>()).await,
            RefreshMode::Incremental
        );
    }

    run(&session, "SET mvrewrite.file_listing = 'always'").await;
    let before = listings(&session);
    for _ in 0..5 {
        answered(&session).await;
    }
    assert!(
        listings(&session) >= before + 5,
        "'always' reused a listing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// CSV rows `k<i % 3>,<value>` with values of four digits, so that another set of values
/// rewrites the file in place with the same size.
fn csv_rows(values: impl Iterator<Item = i64>) -> String {
    let mut text = String::from("kind,v\n");
    for (i, v) in values.enumerate() {
        text.push_str(&format!("k{},{v:04}\n", i % 3));
    }
    text
}

/// Another writer rewrites a file in place with bytes of the same size, right before a query:
/// that query is answered from the table. Then again, restoring the file's modification time
/// (as `cp -p` or `rsync -t` do), so that a listing shows nothing moved: the watch still knows.
#[tokio::test]
async fn a_file_rewritten_in_place_with_the_same_size_is_seen_by_the_next_query() {
    let dir = fresh_dir("in-place");
    let file = dir.join("part-0.csv");
    std::fs::write(&file, csv_rows(1000..1100)).unwrap();
    let create = format!(
        "CREATE EXTERNAL TABLE events STORED AS CSV LOCATION '{}/' OPTIONS ('format.has_header' 'true')",
        dir.display()
    );
    let session = session_with(&create, MvSession::new()).await;
    let total = (1000..1100).sum::<i64>();
    assert_eq!(
        answered(&session).await,
        (vec!["by_kind".to_string()], total)
    );

    let rewrite = |values: std::ops::Range<i64>, keep_time: bool| {
        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        let bytes = csv_rows(values);
        assert_eq!(bytes.len() as u64, std::fs::metadata(&file).unwrap().len());
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        std::io::Write::write_all(&mut f, bytes.as_bytes()).unwrap();
        if keep_time {
            f.set_modified(modified).unwrap();
        }
    };
    for (round, keep_time) in [(1, false), (2, true)] {
        let values = 1000 + round * 1000..1100 + round * 1000;
        let total = values.clone().sum::<i64>();
        rewrite(values, keep_time);
        let (used, sum) = answered(&session).await;
        assert_eq!((used.len(), sum), (0, total), "round {round}");
        let (code, reason) = rejection(&session);
        assert_eq!(code, ReasonCode::Stale);
        assert!(reason.contains("events: 1 file rewritten"), "{reason}");
        assert_eq!(refreshed(&session, total).await, RefreshMode::Full);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Hive-partitioned table: a new partition directory, then a file in it, each right before a
/// query. The new directory is watched from the listing after it appeared, so the file written
/// in it later is seen.
#[tokio::test]
async fn a_new_partition_directory_and_then_a_file_in_it_are_seen() {
    let dir = fresh_dir("partitions");
    std::fs::create_dir_all(dir.join("day=1")).unwrap();
    write_file(&dir.join("day=1"), "part-0.parquet", 1, 1000).await;
    let create = format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET PARTITIONED BY (day) LOCATION '{}/'",
        dir.display()
    );
    let session = session_with(&create, MvSession::new()).await;
    assert_eq!(
        answered(&session).await,
        (vec!["by_kind".to_string()], 500_500)
    );

    std::fs::create_dir_all(dir.join("day=2")).unwrap();
    // No file yet: the listing is made again, finds the same files, and the MV still answers.
    assert_eq!(
        answered(&session).await,
        (vec!["by_kind".to_string()], 500_500)
    );
    let before = listings(&session);
    write_file(&dir.join("day=2"), "part-0.parquet", 1001, 1100).await;
    let (used, total) = answered(&session).await;
    assert_eq!((used.len(), total), (0, 605_550));
    assert_eq!(listings(&session), before + 1);
    let (_, reason) = rejection(&session);
    assert!(reason.contains("events: 1 file added"), "{reason}");

    // A directory and a file in it at once.
    std::fs::create_dir_all(dir.join("day=3")).unwrap();
    write_file(&dir.join("day=3"), "part-0.parquet", 1101, 1200).await;
    let (used, total) = answered(&session).await;
    assert_eq!(
        (used.len(), total),
        (0, 605_550 + (1101..=1200).sum::<i64>())
    );
    refreshed(&session, 605_550 + (1101..=1200).sum::<i64>()).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A symbolic link in the table's directory could be written through its target, which no
/// watch of the directory sees: such a table is listed for every query, and the change is seen.
#[tokio::test]
async fn a_table_with_a_symbolic_link_is_listed_every_time_and_its_target_changes_are_seen() {
    let dir = fresh_dir("symlink");
    let (table, elsewhere) = (dir.join("table"), dir.join("elsewhere"));
    std::fs::create_dir_all(&table).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    write_file(&table, "part-0.parquet", 1, 1000).await;
    write_file(&elsewhere, "linked.parquet", 1001, 1100).await;
    std::os::unix::fs::symlink(
        elsewhere.join("linked.parquet"),
        table.join("part-1.parquet"),
    )
    .unwrap();
    let session = session_over(&table).await;
    assert_eq!(
        answered(&session).await,
        (vec!["by_kind".to_string()], 605_550)
    );
    let before = listings(&session);
    answered(&session).await;
    assert!(
        listings(&session) > before,
        "a table with a symbolic link was not listed"
    );

    std::fs::remove_file(elsewhere.join("linked.parquet")).unwrap();
    write_file(&elsewhere, "linked.parquet", 1001, 1050).await;
    let (used, total) = answered(&session).await;
    assert_eq!(
        (used.len(), total),
        (0, 500_500 + (1001..=1050).sum::<i64>())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file with another hard link can be written through a path outside the table's
/// directories, which no watch of them sees: such a table is listed for every query, and a
/// write in place through the other link is seen.
#[tokio::test]
async fn a_table_with_a_hard_linked_file_is_listed_every_time_and_writes_through_it_are_seen() {
    let dir = fresh_dir("hardlink");
    let (table, elsewhere) = (dir.join("table"), dir.join("elsewhere"));
    std::fs::create_dir_all(&table).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(table.join("part-0.csv"), csv_rows(1000..1100)).unwrap();
    std::fs::write(elsewhere.join("linked.csv"), csv_rows(2000..2100)).unwrap();
    std::fs::hard_link(elsewhere.join("linked.csv"), table.join("part-1.csv")).unwrap();
    let create = format!(
        "CREATE EXTERNAL TABLE events STORED AS CSV LOCATION '{}/' OPTIONS ('format.has_header' 'true')",
        table.display()
    );
    let session = session_with(&create, MvSession::new()).await;
    let total = (1000..1100).sum::<i64>() + (2000..2100).sum::<i64>();
    assert_eq!(
        answered(&session).await,
        (vec!["by_kind".to_string()], total)
    );
    let before = listings(&session);
    answered(&session).await;
    assert!(
        listings(&session) > before,
        "a table with a hard link was not listed"
    );

    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(elsewhere.join("linked.csv"))
        .unwrap();
    std::io::Write::write_all(&mut f, csv_rows(3000..3100).as_bytes()).unwrap();
    drop(f);
    let (used, sum) = answered(&session).await;
    let total = (1000..1100).sum::<i64>() + (3000..3100).sum::<i64>();
    assert_eq!((used.len(), sum), (0, total));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An incremental refresh says how many rows of the new files its scans read: fewer than they
/// hold when DataFusion prunes by the files' statistics (here: none of them can pass the
/// MV's filter), and the MV still equals its definition.
#[tokio::test]
async fn a_refresh_counts_the_rows_it_read_of_new_files() {
    let dir = fresh_dir("pruned");
    write_file(&dir, "part-0.parquet", 1, 2000).await;
    let session = MvSession::new();
    run(&session, &create_events(&dir)).await;
    let high = "SELECT kind, count(*) AS n FROM events WHERE v > 1500 GROUP BY kind";
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW high AS {high}"),
    )
    .await;
    write_file(&dir, "part-1.parquet", 2001, 2100).await;
    write_file(&dir, "part-2.parquet", 1, 100).await;
    let done = session.refresh_materialized_view("high").await.unwrap();
    assert_eq!(done[0].mode, RefreshMode::Incremental, "{done:?}");
    assert!(
        done[0]
            .reason
            .contains("by 2 new files (100 rows of them read)"),
        "{done:?}"
    );
    session.clear_report();
    let answer = session.sql(high).await.unwrap().collect().await.unwrap();
    assert_eq!(session.last_report().unwrap().used_mvs(), ["high"]);
    let original = session.without_rewrites().sql(high).await.unwrap();
    compare(&original.collect().await.unwrap(), &answer).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
