//! MVs kept in a store: directories of final Parquet rows any DataFusion process reads, each
//! refresh published as a new generation by the catalog, garbage collected, a process killed
//! mid-refresh, a damaged store. Real files everywhere; rows compared with the definitions run
//! by a plain DataFusion context.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use mvrewrite::testkit::compare::compare;
use mvrewrite::{CandidateStatus, MvError, MvSession, ReasonCode, RefreshMode};

use common::write_file;

/// A new, empty directory for one test.
fn fresh_dir(test: &str) -> PathBuf {
    common::fresh_dir("store", test)
}

const BY_KIND: &str = "SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind";
const EVEN: &str = "SELECT kind, v, v * 2 AS w FROM events WHERE v % 2 = 0";

fn create_events(files: &Path) -> String {
    format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        files.display()
    )
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

async fn run(session: &MvSession, sql: &str) -> Vec<RecordBatch> {
    session.sql(sql).await.unwrap().collect().await.unwrap()
}

/// What a process without mvrewrite reads at `location`, compared with `definition` run over
/// the files in `files`.
async fn plain_read_equals(location: &Path, files: &Path, definition: &str) -> usize {
    let plain = SessionContext::new();
    plain
        .sql(&format!(
            "CREATE EXTERNAL TABLE mv STORED AS PARQUET LOCATION '{}/'",
            location.display()
        ))
        .await
        .unwrap();
    plain.sql(&create_events(files)).await.unwrap();
    let stored = rows(&plain, "SELECT * FROM mv").await;
    compare(&rows(&plain, definition).await, &stored).unwrap();
    stored.iter().map(|b| b.num_rows()).sum()
}

/// A test's directory with `events` (rows `1..=rows`, one Parquet file) and a store where a
/// session that has ended kept `by_kind` and the MVs of `more` (name, definition): the
/// directory, the table's files and the store.
async fn kept(test: &str, rows: i64, more: &[(&str, &str)]) -> (PathBuf, PathBuf, PathBuf) {
    let dir = fresh_dir(test);
    let (files, store) = (dir.join("events"), dir.join("store"));
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, rows).await;
    let session = MvSession::with_data_dir(&store).await.unwrap();
    run(&session, &create_events(&files)).await;
    create_mvs(&session, &[("by_kind", BY_KIND)]).await;
    create_mvs(&session, more).await;
    (dir, files, store)
}

/// Creates each MV of `mvs` (name, definition) in `session`.
async fn create_mvs(session: &MvSession, mvs: &[(&str, &str)]) {
    for (mv, definition) in mvs {
        let sql = format!("CREATE MATERIALIZED VIEW {mv} AS {definition}");
        run(session, &sql).await;
    }
}

/// The generation numbers present in `mv`'s directory.
fn generations(store: &Path, mv: &str) -> Vec<u64> {
    let mut found: Vec<u64> = std::fs::read_dir(store.join(mv))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The generation `catalog.json` names for `mv`.
async fn named(store: &Path, mv: &str) -> Option<u64> {
    let saved = mvrewrite::testkit::DataDir::open(store)
        .unwrap()
        .load()
        .await
        .unwrap()?;
    let mv = saved.mvs.into_iter().find(|m| m.name == mv)?;
    mv.generation.map(|g| g.number)
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

/// Every refresh publishes a generation of final rows that a plain DataFusion context reads
/// as a Parquet table, at the session's `mv_location` or through `<mv>/current`: an aggregate
/// MV refreshed incrementally merges its new rows into one row per group; an MV computed row
/// by row shares its previous files (hard links) and adds one. Older generations are gone.
#[tokio::test]
async fn another_engine_reads_each_published_generation() {
    let dir = fresh_dir("read");
    let (files, store) = (dir.join("events"), dir.join("store"));
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 1000).await;
    let session = MvSession::with_data_dir(&store).await.unwrap();
    run(&session, &create_events(&files)).await;
    create_mvs(&session, &[("by_kind", BY_KIND), ("even", EVEN)]).await;
    let by_kind = std::path::PathBuf::from(session.mv_location("by_kind").unwrap().unwrap());
    assert_eq!(plain_read_equals(&by_kind, &files, BY_KIND).await, 3);
    assert_eq!(
        plain_read_equals(&store.join("by_kind/current"), &files, BY_KIND).await,
        3
    );
    let even = std::path::PathBuf::from(session.mv_location("even").unwrap().unwrap());
    assert_eq!(plain_read_equals(&even, &files, EVEN).await, 500);
    let files_of = |generation: &Path| {
        let mut names: Vec<PathBuf> = std::fs::read_dir(generation)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    };
    let old = files_of(&even);
    assert_eq!(old.len(), 1, "{old:?}");
    #[cfg(unix)]
    let old_inode = inode(&old[0]);

    // Another writer adds a file: both refresh incrementally, each into a new generation.
    write_file(&files, "part-1.parquet", 1001, 1300).await;
    for mv in ["by_kind", "even"] {
        let done = session.refresh_materialized_view(mv).await.unwrap();
        assert_eq!(done[0].mode, RefreshMode::Incremental, "{done:?}");
    }
    let by_kind_2 = std::path::PathBuf::from(session.mv_location("by_kind").unwrap().unwrap());
    assert_ne!(by_kind, by_kind_2);
    // Final rows: one per group, in one file, not the partial aggregates of two refreshes.
    assert_eq!(plain_read_equals(&by_kind_2, &files, BY_KIND).await, 3);
    assert_eq!(std::fs::read_dir(&by_kind_2).unwrap().count(), 1);
    assert_eq!(
        plain_read_equals(&store.join("by_kind/current"), &files, BY_KIND).await,
        3
    );
    let even_2 = std::path::PathBuf::from(session.mv_location("even").unwrap().unwrap());
    assert_eq!(plain_read_equals(&even_2, &files, EVEN).await, 650);
    let new = files_of(&even_2);
    assert_eq!(new.len(), 2, "{new:?}");
    assert_eq!(new[0].file_name(), old[0].file_name());
    #[cfg(unix)]
    assert_eq!(
        inode(&new[0]),
        old_inode,
        "the previous file is linked, not rewritten"
    );
    // The generation replaced stays until the next refresh (queries reading it finish), and
    // goes then.
    assert!(by_kind.exists() && even.exists());
    write_file(&files, "part-2.parquet", 1301, 1400).await;
    session.refresh_materialized_view("by_kind").await.unwrap();
    let by_kind_3 = std::path::PathBuf::from(session.mv_location("by_kind").unwrap().unwrap());
    assert!(!by_kind.exists() && by_kind_2.exists() && by_kind_3.exists());
    assert_eq!(generations(&store, "by_kind").len(), 2);
    assert_eq!(
        std::fs::read_link(store.join("by_kind/current")).unwrap(),
        Path::new(by_kind_3.file_name().unwrap())
    );
    // And the session answers from the generation it published.
    session.clear_report();
    let answer = run(&session, BY_KIND).await;
    assert_eq!(session.last_report().unwrap().used_mvs(), ["by_kind"]);
    compare(&rows(&session.without_rewrites(), BY_KIND).await, &answer).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Garbage collection: generations the catalog does not name (an older one, one a refresh cut
/// short left) are removed at the next session start, the named one never; nothing that is
/// not a generation is touched; a dropped MV's directory goes.
#[tokio::test]
async fn generations_no_version_uses_are_removed_and_nothing_else() {
    let (dir, files, store) = kept("gc", 1000, &[("even", EVEN)]).await;
    let current = named(&store, "by_kind").await.unwrap();
    let mv_dir = store.join("by_kind");
    // What a crash leaves: an older generation not removed yet, an unfinished one (a
    // truncated file), and an MV created but never committed.
    for (number, bytes) in [(current - 1, &b"PAR1"[..]), (current + 7, b"PAR1 trunc")] {
        std::fs::create_dir_all(mv_dir.join(number.to_string())).unwrap();
        std::fs::write(mv_dir.join(format!("{number}/{number}.parquet")), bytes).unwrap();
    }
    std::fs::create_dir_all(store.join("never_committed/9")).unwrap();
    std::fs::write(store.join("never_committed/9/9.parquet"), b"x").unwrap();
    // Not generations: kept.
    std::fs::write(mv_dir.join("notes.txt"), b"mine").unwrap();
    std::fs::create_dir_all(store.join("mine/2024")).unwrap();
    std::fs::write(store.join("mine/2024/data.csv"), b"a\n1\n").unwrap();

    let session = MvSession::with_data_dir(&store).await.unwrap();
    assert_eq!(generations(&store, "by_kind"), [current]);
    assert!(!store.join("never_committed").exists());
    assert!(mv_dir.join("notes.txt").exists() && store.join("mine/2024/data.csv").exists());
    run(&session, &create_events(&files)).await;
    assert!(session.catalog().read().unwrap().contains("by_kind"));
    compare(
        &rows(&session.without_rewrites(), BY_KIND).await,
        &run(&session, "SELECT * FROM by_kind").await,
    )
    .unwrap();
    // Dropped: its generations go (what is not one stays).
    run(&session, "DROP MATERIALIZED VIEW even").await;
    assert!(!store.join("even").exists());
    assert_eq!(named(&store, "even").await, None);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A damaged `catalog.json` (cut short, or garbage) is a typed error naming the file, and
/// nothing in the store is removed; no MV answers.
#[tokio::test]
async fn a_damaged_catalog_is_an_error_naming_it() {
    let (dir, files, store) = kept("catalog", 100, &[]).await;
    let catalog = store.join("catalog.json");
    let whole = std::fs::read(&catalog).unwrap();
    let generation = named(&store, "by_kind").await.unwrap();
    for damaged in [
        &whole[..whole.len() / 2],
        b"\x00garbage\xff",
        b"{\"mvs\": 3}",
    ] {
        std::fs::write(&catalog, damaged).unwrap();
        match MvSession::with_data_dir(&store).await {
            Err(MvError::Storage(why)) => assert!(why.contains("catalog.json"), "{why}"),
            Err(other) => panic!("not a storage error: {other}"),
            Ok(_) => panic!("a damaged catalog was read"),
        }
        assert_eq!(generations(&store, "by_kind"), [generation]);
    }
    std::fs::write(&catalog, &whole).unwrap();
    let session = MvSession::with_data_dir(&store).await.unwrap();
    run(&session, &create_events(&files)).await;
    assert!(session.catalog().read().unwrap().contains("by_kind"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A generation file missing, cut short, overwritten or with one byte changed in its rows
/// (same size, footer intact: only its checksum tells) makes its MV not restored, with the
/// file named in the reason; the other MVs restore and answer.
#[tokio::test]
async fn a_damaged_generation_fails_its_mv_alone() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage, &str); 4] = [
        (
            "missing",
            |f| std::fs::remove_file(f).unwrap(),
            "cannot open",
        ),
        (
            "cut short",
            |f| {
                let bytes = std::fs::read(f).unwrap();
                std::fs::write(f, &bytes[..bytes.len() - 10]).unwrap()
            },
            "damaged file",
        ),
        (
            "overwritten",
            |f| {
                let len = std::fs::metadata(f).unwrap().len() as usize;
                std::fs::write(f, vec![b'x'; len]).unwrap()
            },
            "damaged file",
        ),
        (
            "a byte changed in its rows",
            |f| {
                let mut bytes = std::fs::read(f).unwrap();
                // Past the leading magic, well before the footer: inside the first page.
                bytes[40] ^= 0x01;
                std::fs::write(f, bytes).unwrap()
            },
            "checksum",
        ),
    ];
    for (what, damage, reason) in damages {
        let dir = fresh_dir("damaged");
        let (files, store) = (dir.join("events"), dir.join("store"));
        std::fs::create_dir_all(&files).unwrap();
        write_file(&files, "part-0.parquet", 1, 1000).await;
        let even_location = {
            let session = MvSession::with_data_dir(&store).await.unwrap();
            run(&session, &create_events(&files)).await;
            create_mvs(&session, &[("by_kind", BY_KIND), ("even", EVEN)]).await;
            std::path::PathBuf::from(session.mv_location("even").unwrap().unwrap())
        };
        let file = std::fs::read_dir(&even_location)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        damage(&file);
        let session = MvSession::with_data_dir(&store).await.unwrap();
        session
            .context()
            .register_parquet(
                "events",
                format!("{}/", files.display()),
                Default::default(),
            )
            .await
            .unwrap();
        let restored = session.restore().await.unwrap();
        assert_eq!(restored.restored, ["by_kind"], "{what}");
        let [(name, why)] = &restored.failed[..] else {
            panic!("{what}: {:?}", restored.failed)
        };
        let why = why.to_string();
        assert_eq!(name, "even");
        assert!(
            why.contains(reason) && why.contains(&file.display().to_string()),
            "{what}: {why}"
        );
        session.clear_report();
        let answer = run(&session, BY_KIND).await;
        assert_eq!(session.last_report().unwrap().used_mvs(), ["by_kind"]);
        compare(&rows(&session.without_rewrites(), BY_KIND).await, &answer).unwrap();
        session.clear_report();
        let answer = run(&session, EVEN).await;
        assert!(
            session
                .last_report()
                .is_none_or(|r| r.used_mvs().is_empty())
        );
        compare(&rows(&session.without_rewrites(), EVEN).await, &answer).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A second session on a store in use is refused; the first one's ending frees it.
#[tokio::test]
async fn one_session_writes_a_store_at_a_time() {
    let dir = fresh_dir("lock");
    let first = MvSession::with_data_dir(&dir).await.unwrap();
    match MvSession::with_data_dir(&dir).await {
        Err(MvError::Storage(why)) => assert!(why.contains(".lock"), "{why}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("two sessions write one store"),
    }
    drop(first);
    MvSession::with_data_dir(&dir).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Why `mv` did not answer the last query.
fn rejection(session: &MvSession, mv: &str) -> (ReasonCode, String) {
    let report = session.last_report().expect("a report");
    match report.status_of(mv) {
        Some(CandidateStatus::Rejected(r)) => (r.code, r.reason.clone()),
        other => panic!("{mv} was not rejected: {other:?}\n{report}"),
    }
}

/// A process killed in the middle of a refresh (the shell, SIGKILL while it writes the new
/// generation): the next session on the store restores the previous generation's rows, stale
/// (the table moved), never reads the unfinished generation, which its start removes.
#[test]
fn a_process_killed_mid_refresh_leaves_the_previous_rows_stale() {
    let dir = fresh_dir("killed");
    let (data, store) = (dir.join("data"), dir.join("store"));
    let files = data.join("events");
    std::fs::create_dir_all(&files).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(write_file(&files, "part-0.parquet", 1, 1000));
    let shell = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mvrewrite"))
            .args(["shell", "--data"])
            .arg(&data)
            .arg("--store")
            .arg(&store)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = shell();
    {
        use std::io::Write;
        let mut stdin = first.stdin.take().unwrap();
        writeln!(stdin, "CREATE MATERIALIZED VIEW even AS {EVEN};").unwrap();
    }
    assert!(first.wait().unwrap().success());
    let previous = runtime
        .block_on(named(&store, "even"))
        .expect("even published");
    let before = runtime.block_on(async {
        let plain = SessionContext::new();
        let location = store.join(format!("even/{previous}/"));
        plain
            .register_parquet("mv", location.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        rows(&plain, "SELECT * FROM mv").await
    });

    // The file replaced by a large one: a full refresh, long enough to be caught midway.
    std::fs::remove_file(files.join("part-0.parquet")).unwrap();
    runtime.block_on(write_file(&files, "part-1.parquet", 1, 6_000_000));
    let mut second = shell();
    {
        use std::io::Write;
        // The shell reads its script to the end of its input, then runs it.
        let mut stdin = second.stdin.take().unwrap();
        writeln!(stdin, "REFRESH MATERIALIZED VIEW even;").unwrap();
    }
    let started = Instant::now();
    let unfinished = loop {
        let writing = generations(&store, "even")
            .into_iter()
            .find(|g| *g != previous && store.join(format!("even/{g}/{g}.parquet")).exists());
        if let Some(g) = writing {
            break g;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no new generation"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    second.kill().unwrap();
    second.wait().unwrap();
    // Killed before its commit: the catalog names the previous generation.
    assert_eq!(
        runtime.block_on(named(&store, "even")),
        Some(previous),
        "the refresh finished"
    );
    assert!(store.join(format!("even/{unfinished}")).exists());

    runtime.block_on(async {
        let session = MvSession::with_data_dir(&store).await.unwrap();
        // Its start removed the unfinished generation: nothing can read it.
        assert_eq!(generations(&store, "even"), [previous]);
        run(&session, &create_events(&files)).await;
        assert!(session.catalog().read().unwrap().contains("even"));
        compare(&before, &run(&session, "SELECT * FROM even").await).unwrap();
        assert_eq!(
            std::path::PathBuf::from(session.mv_location("even").unwrap().unwrap()),
            store.join(format!("even/{previous}"))
        );
        session.clear_report();
        let q = "SELECT kind, v, v * 2 FROM events WHERE v % 2 = 0 AND v < 50";
        let answer = run(&session, q).await;
        compare(&rows(&session.without_rewrites(), q).await, &answer).unwrap();
        let (code, reason) = rejection(&session, "even");
        assert_eq!(code, ReasonCode::Stale);
        assert!(reason.contains("events"), "{reason}");
        let done = session.refresh_materialized_view("even").await.unwrap();
        assert_eq!(done[0].mode, RefreshMode::Full);
        assert_eq!(done[0].rows, 3_000_000);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An MV over an MV kept in the store reads it as the listing table it is, not as a table on
/// files another writer changes: refreshing the outer one refreshes the inner one first, and
/// both come back after a restart, fresh, with the same rows.
#[tokio::test]
async fn nested_mvs_in_a_store_refresh_and_restore_in_order() {
    let dir = fresh_dir("nested");
    let (files, store) = (dir.join("events"), dir.join("store"));
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 1000).await;
    let outer = "SELECT kind, total FROM by_kind WHERE n > 300";
    let over_events =
        "SELECT kind, sum(v) AS total FROM events GROUP BY kind HAVING count(*) > 300";
    {
        let session = MvSession::with_data_dir(&store).await.unwrap();
        run(&session, &create_events(&files)).await;
        run(
            &session,
            &format!("CREATE MATERIALIZED VIEW by_kind AS {BY_KIND}"),
        )
        .await;
        run(
            &session,
            &format!("CREATE MATERIALIZED VIEW big AS {outer}"),
        )
        .await;
        write_file(&files, "part-1.parquet", 1001, 1300).await;
        let done = session.refresh_materialized_view("big").await.unwrap();
        let modes: Vec<(&str, RefreshMode)> =
            done.iter().map(|d| (d.mv.as_str(), d.mode)).collect();
        assert_eq!(
            modes,
            [
                ("by_kind", RefreshMode::Incremental),
                ("big", RefreshMode::Full)
            ]
        );
        compare(
            &rows(&session.without_rewrites(), over_events).await,
            &run(&session, "SELECT * FROM big").await,
        )
        .unwrap();
    }
    let session = MvSession::with_data_dir(&store).await.unwrap();
    run(&session, &create_events(&files)).await;
    for mv in ["by_kind", "big"] {
        assert!(session.catalog().read().unwrap().contains(mv), "{mv}");
    }
    compare(
        &rows(&session.without_rewrites(), over_events).await,
        &run(&session, "SELECT * FROM big").await,
    )
    .unwrap();
    session.clear_report();
    let answer = run(&session, over_events).await;
    assert!(!session.last_report().unwrap().used_mvs().is_empty());
    compare(
        &rows(&session.without_rewrites(), over_events).await,
        &answer,
    )
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A store written by an earlier mvrewrite (fragments `<mv>/<n>.parquet`, no generations):
/// opened, its MV not restored with a reason that says so, its files left alone, and created
/// again as a generation beside them.
#[tokio::test]
async fn a_store_of_fragments_from_an_earlier_version_is_not_read_as_rows() {
    let dir = fresh_dir("earlier");
    let (files, store) = (dir.join("events"), dir.join("store"));
    std::fs::create_dir_all(store.join("by_kind")).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 100).await;
    write_file(&store.join("by_kind"), "1.parquet", 1, 10).await;
    let earlier = r#"{"versions": {"events": 0}, "file_listings": {}, "mvs": [{
        "name": "by_kind", "columns": ["kind", "total", "n"], "on_commit": false,
        "sql": "SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind",
        "staleness": null, "computed_from": {"events": 0}, "computed_at_ms": 0,
        "files": ["1.parquet"]}]}"#;
    std::fs::write(store.join("catalog.json"), earlier).unwrap();
    let session = MvSession::with_data_dir(&store).await.unwrap();
    session
        .context()
        .register_parquet("events", files.to_str().unwrap(), Default::default())
        .await
        .unwrap();
    let restored = session.restore().await.unwrap();
    let [(name, why)] = &restored.failed[..] else {
        panic!("{:?}", restored.failed)
    };
    assert_eq!(name, "by_kind");
    assert!(why.to_string().contains("earlier mvrewrite"), "{why}");
    assert!(store.join("by_kind/1.parquet").exists());
    run(
        &session,
        &format!("CREATE OR REPLACE MATERIALIZED VIEW by_kind AS {BY_KIND}"),
    )
    .await;
    let at = std::path::PathBuf::from(session.mv_location("by_kind").unwrap().unwrap());
    assert_eq!(plain_read_equals(&at, &files, BY_KIND).await, 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A refresh whose commit fails (`catalog.json` cannot be replaced): the refresh is an error
/// and the MV stale; the generation it wrote is not named, so the next process restores the
/// previous one (stale: its table moved) and removes the unnamed one.
#[tokio::test]
async fn a_refresh_whose_catalog_cannot_be_written_is_not_published() {
    let dir = fresh_dir("commit");
    let (files, store) = (dir.join("events"), dir.join("store"));
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 1000).await;
    let blocker = store.join("catalog.json.tmp");
    let (previous, before) = {
        let session = MvSession::with_data_dir(&store).await.unwrap();
        run(&session, &create_events(&files)).await;
        run(
            &session,
            &format!("CREATE MATERIALIZED VIEW by_kind AS {BY_KIND}"),
        )
        .await;
        let before = run(&session, "SELECT * FROM by_kind").await;
        write_file(&files, "part-1.parquet", 1001, 2000).await;
        std::fs::create_dir_all(&blocker).unwrap();
        let err = session
            .refresh_materialized_view("by_kind")
            .await
            .unwrap_err();
        assert!(matches!(err, MvError::Storage(_)), "{err}");
        session.clear_report();
        run(&session, BY_KIND).await;
        let (code, reason) = rejection(&session, "by_kind");
        assert_eq!(code, ReasonCode::Stale);
        assert!(reason.contains("refresh failed"), "{reason}");
        (named(&store, "by_kind").await.unwrap(), before)
    };
    assert!(generations(&store, "by_kind").len() > 1);
    std::fs::remove_dir(&blocker).unwrap();
    let session = MvSession::with_data_dir(&store).await.unwrap();
    assert_eq!(generations(&store, "by_kind"), [previous]);
    run(&session, &create_events(&files)).await;
    compare(&before, &run(&session, "SELECT * FROM by_kind").await).unwrap();
    session.clear_report();
    let answer = run(&session, BY_KIND).await;
    compare(&rows(&session.without_rewrites(), BY_KIND).await, &answer).unwrap();
    assert_eq!(rejection(&session, "by_kind").0, ReasonCode::Stale);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A restore reports its progress, MV by MV, to the session's sink: the last report says the
/// restore of the last of them is done.
#[tokio::test]
async fn a_restore_reports_its_progress() {
    use std::sync::{Arc, Mutex};
    let dir = fresh_dir("progress");
    let (files, store) = (dir.join("events"), dir.join("store"));
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files, "part-0.parquet", 1, 1000).await;
    {
        let first = MvSession::with_data_dir(&store).await.unwrap();
        run(&first, &create_events(&files)).await;
        for (i, definition) in [
            BY_KIND,
            "SELECT kind, max(v) AS top FROM events GROUP BY kind",
            "SELECT v FROM events WHERE v > 900",
        ]
        .iter()
        .enumerate()
        {
            run(
                &first,
                &format!("CREATE MATERIALIZED VIEW mv{i} AS {definition}"),
            )
            .await;
        }
    }
    let second = MvSession::with_data_dir(&store).await.unwrap();
    let reports: Arc<Mutex<Vec<mvrewrite::Progress>>> = Arc::default();
    let seen = Arc::clone(&reports);
    second.on_progress(mvrewrite::ProgressSink {
        every: std::time::Duration::from_millis(1),
        report: Arc::new(move |p| seen.lock().unwrap().push(p.clone())),
    });
    run(&second, &create_events(&files)).await;
    let reports = reports.lock().unwrap();
    // The last report is made once every MV is restored (which takes more than a
    // millisecond); those between depend on the machine's load.
    let last = reports.last().expect("a report once done");
    assert!(last.done && last.task.ends_with("(3 of 3)"), "{reports:?}");
    assert!(
        reports.iter().all(|p| p.task.starts_with("restoring mv")),
        "{reports:?}"
    );
    for mv in ["mv0", "mv1", "mv2"] {
        assert!(second.mv_location(mv).unwrap().is_some(), "{mv} restored");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A session on a store and a table both on an object store (an in-memory one, registered on
/// the session's runtime as S3 or GCS would be): what a local store does, with objects.
async fn on_objects(
    objects: &std::sync::Arc<datafusion::object_store::memory::InMemory>,
) -> mvrewrite::Result<MvSession> {
    let session = MvSession::new();
    let url = datafusion::execution::object_store::ObjectStoreUrl::parse("memory://").unwrap();
    session
        .context()
        .register_object_store(url.as_ref(), objects.clone());
    let session = session.with_store("memory:///mvs/").await?;
    run(
        &session,
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION 'memory:///data/events/'",
    )
    .await;
    Ok(session)
}

/// A plain DataFusion context reading `location` on `objects`: `definition`'s rows over the
/// table there.
async fn plain_reads_objects(
    objects: &std::sync::Arc<datafusion::object_store::memory::InMemory>,
    location: &str,
    definition: &str,
) -> usize {
    let plain = SessionContext::new();
    let url = datafusion::execution::object_store::ObjectStoreUrl::parse("memory://").unwrap();
    plain.register_object_store(url.as_ref(), objects.clone());
    for (table, at) in [("mv", location), ("events", "memory:///data/events/")] {
        let sql = format!("CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{at}'");
        plain.sql(&sql).await.unwrap();
    }
    let stored = rows(&plain, "SELECT * FROM mv").await;
    compare(&rows(&plain, definition).await, &stored).unwrap();
    stored.iter().map(|b| b.num_rows()).sum()
}

/// The objects under `prefix`.
async fn objects_under(
    objects: &datafusion::object_store::memory::InMemory,
    prefix: &str,
) -> Vec<String> {
    use datafusion::object_store::ObjectStore;
    use futures::TryStreamExt;
    let prefix = datafusion::object_store::path::Path::from(prefix);
    let listed: Vec<_> = objects.list(Some(&prefix)).try_collect().await.unwrap();
    let mut names: Vec<String> = listed.into_iter().map(|o| o.location.to_string()).collect();
    names.sort();
    names
}

/// A store on an object store: MVs are generations of Parquet objects other engines read,
/// refreshed incrementally when another writer puts an object, published by the catalog
/// object, the replaced generation removed a refresh later, the store locked while a session
/// writes it, and everything restored by the next session.
#[tokio::test]
async fn a_store_on_an_object_store_keeps_mvs_as_parquet_objects_across_sessions() {
    use common::put_parquet;
    let objects = std::sync::Arc::new(datafusion::object_store::memory::InMemory::new());
    put_parquet(objects.as_ref(), "data/events/part-0.parquet", 1, 1000).await;
    let session = on_objects(&objects).await.unwrap();
    create_mvs(&session, &[("by_kind", BY_KIND), ("even", EVEN)]).await;
    let q = "SELECT kind, sum(v) FROM events GROUP BY kind";
    let answer = run(&session, q).await;
    assert_eq!(common::used_mvs(&session).unwrap(), ["by_kind"]);
    compare(&rows(&session.without_rewrites(), q).await, &answer).unwrap();
    let first = session.mv_location("by_kind").unwrap().unwrap();
    assert!(first.starts_with("memory:///mvs/by_kind/"), "{first}");
    assert_eq!(plain_reads_objects(&objects, &first, BY_KIND).await, 3);
    let even = session.mv_location("even").unwrap().unwrap();
    assert_eq!(plain_reads_objects(&objects, &even, EVEN).await, 500);
    assert!(
        objects_under(&objects, "mvs")
            .await
            .contains(&"mvs/catalog.json".to_string())
    );

    // A second session is refused while this one writes the store.
    match MvSession::new().with_store("memory:///mvs/").await {
        Err(_) => {}
        Ok(_) => panic!("a store without its object store registered was opened"),
    }
    match on_objects(&objects).await {
        Err(MvError::Storage(why)) => assert!(why.contains("memory:///mvs/.lock"), "{why}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("two sessions write one store"),
    }

    // Another writer puts an object: stale, answered from the table, refreshed from it alone.
    put_parquet(objects.as_ref(), "data/events/part-1.parquet", 1001, 1300).await;
    let answer = run(&session, q).await;
    assert!(common::used_mvs(&session).unwrap().is_empty());
    compare(&rows(&session.without_rewrites(), q).await, &answer).unwrap();
    let done = session.refresh_materialized_view("by_kind").await.unwrap();
    assert_eq!(done[0].mode, RefreshMode::Incremental, "{}", done[0].reason);
    let done = session.refresh_materialized_view("even").await.unwrap();
    assert_eq!(done[0].mode, RefreshMode::Incremental, "{}", done[0].reason);
    let second = session.mv_location("by_kind").unwrap().unwrap();
    assert_ne!(first, second);
    assert_eq!(plain_reads_objects(&objects, &second, BY_KIND).await, 3);
    let even = session.mv_location("even").unwrap().unwrap();
    assert_eq!(plain_reads_objects(&objects, &even, EVEN).await, 650);
    // The replaced generation stays (queries may still read it) until the next refresh.
    let in_first = |listed: &[String]| {
        let prefix = first.trim_start_matches("memory:///");
        listed.iter().any(|o| o.starts_with(prefix))
    };
    assert!(in_first(&objects_under(&objects, "mvs/by_kind").await));
    put_parquet(objects.as_ref(), "data/events/part-2.parquet", 1301, 1400).await;
    session.refresh_materialized_view("by_kind").await.unwrap();
    assert!(!in_first(&objects_under(&objects, "mvs/by_kind").await));
    session.refresh_materialized_view("even").await.unwrap();
    let answer = run(&session, q).await;
    assert_eq!(common::used_mvs(&session).unwrap(), ["by_kind"]);
    compare(&rows(&session.without_rewrites(), q).await, &answer).unwrap();

    // The next session restores both; a write while none ran leaves `even` stale.
    drop(session);
    put_parquet(objects.as_ref(), "data/events/part-3.parquet", 1401, 1500).await;
    let session = on_objects(&objects).await.unwrap();
    let answer = run(&session, EVEN).await;
    assert!(common::used_mvs(&session).unwrap().is_empty());
    compare(&rows(&session.without_rewrites(), EVEN).await, &answer).unwrap();
    let (code, _) = rejection(&session, "even");
    assert_eq!(code, ReasonCode::Stale);
    let done = session.refresh_materialized_view("even").await.unwrap();
    assert_eq!(done[0].mode, RefreshMode::Incremental, "{}", done[0].reason);
    let answer = run(&session, EVEN).await;
    assert_eq!(common::used_mvs(&session).unwrap(), ["even"]);
    compare(&rows(&session.without_rewrites(), EVEN).await, &answer).unwrap();
    session.sql("DROP MATERIALIZED VIEW even").await.unwrap();
    assert!(objects_under(&objects, "mvs/even").await.is_empty());
}

/// An object-store store's lock left by a holder known to be gone (a process of this host
/// that no longer runs) is taken over; one held on another host is refused, saying what to
/// remove; an MV whose objects were damaged is not restored, and answers nothing.
#[tokio::test]
async fn an_object_store_lock_left_behind_and_damaged_objects() {
    use common::put_parquet;
    use datafusion::object_store::{ObjectStoreExt, path::Path as ObjectPath};
    let objects = std::sync::Arc::new(datafusion::object_store::memory::InMemory::new());
    put_parquet(objects.as_ref(), "data/events/part-0.parquet", 1, 1000).await;
    let lock = ObjectPath::from("mvs/.lock");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut ended = std::process::Command::new("true").spawn().unwrap();
    ended.wait().unwrap();
    let left = format!(r#"{{"host": "{}", "pid": {}}}"#, host.trim(), ended.id());
    objects.put(&lock, left.into_bytes().into()).await.unwrap();
    let session = on_objects(&objects).await.unwrap();
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW by_kind AS {BY_KIND}"),
    )
    .await;
    let location = session.mv_location("by_kind").unwrap().unwrap();
    drop(session);
    // The drop releases the lock in the background: wait for it.
    for _ in 0..100 {
        if objects.head(&lock).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        objects.head(&lock).await.is_err(),
        "the lock was not released"
    );

    let elsewhere = r#"{"host": "another-host", "pid": 1}"#;
    objects.put(&lock, elsewhere.into()).await.unwrap();
    match on_objects(&objects).await {
        Err(MvError::Storage(why)) => {
            assert!(
                why.contains("another-host") && why.contains("remove"),
                "{why}"
            )
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a lock held on another host was taken"),
    }
    objects.delete(&lock).await.unwrap();

    // The generation's file replaced by garbage: not restored, never answering.
    let file = format!("{}1.parquet", location.trim_start_matches("memory:///"));
    let file = ObjectPath::from(file);
    assert!(objects.head(&file).await.is_ok(), "{file}");
    objects
        .put(&file, b"not parquet".to_vec().into())
        .await
        .unwrap();
    let session = on_objects(&objects).await.unwrap();
    let restored = session.restore().await.unwrap();
    assert!(restored.restored.is_empty());
    let (mv, why) = &restored.failed[0];
    assert_eq!(mv, "by_kind");
    assert!(why.to_string().contains("damaged"), "{why}");
    let answer = run(&session, BY_KIND).await;
    assert!(common::used_mvs(&session).unwrap().is_empty());
    compare(&rows(&session.without_rewrites(), BY_KIND).await, &answer).unwrap();
}
