//! Hive-partitioned tables on files (`day=2024-03-01/part-0.parquet`): another writer (a plain
//! DataFusion context, or a file removed) adds, removes or rewrites files in some partitions.
//! Every answer is compared with the same query run without rewriting, on the files as they
//! are.

mod common;

use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;
use mvrewrite::testkit::compare::compare;
use mvrewrite::{MvSession, RefreshMode, Refreshed};

const BY_DAY: &str =
    "SELECT day, kind, sum(v) AS total, count(*) AS n FROM events GROUP BY day, kind";
const BY_KIND: &str = "SELECT kind, sum(v) AS total, count(*) AS n FROM events GROUP BY kind";

/// A new, empty directory for one test.
fn fresh_dir(test: &str) -> PathBuf {
    common::fresh_dir("partitions", test)
}

/// Another writer: a plain DataFusion context writes rows `first..=last` as one Parquet file in
/// the partition directory `day=<day>/` (created if new). The file holds `kind` and `v`; `day`
/// is in its directory's name.
async fn write_file(dir: &Path, day: &str, file: &str, first: i64, last: i64) {
    let partition = dir.join(format!("day={day}"));
    std::fs::create_dir_all(&partition).unwrap();
    let sql = format!(
        "COPY (SELECT 'k' || CAST(value % 3 AS VARCHAR) AS kind, value AS v
               FROM generate_series({first}, {last}))
         TO '{}' STORED AS PARQUET",
        partition.join(file).display()
    );
    let other = SessionContext::new();
    other.sql(&sql).await.unwrap().collect().await.unwrap();
}

/// A session over the day-partitioned Parquet files in `dir`, with `mv` defined as `definition`.
async fn session_over(dir: &Path, mv: &str, definition: &str) -> MvSession {
    session_with(dir, mv, definition, MvSession::new()).await
}

/// `session` over the day-partitioned Parquet files in `dir`, with `mv` defined as `definition`.
async fn session_with(dir: &Path, mv: &str, definition: &str, session: MvSession) -> MvSession {
    let create = format!(
        "CREATE EXTERNAL TABLE events (kind VARCHAR, v BIGINT, day DATE)
         STORED AS PARQUET PARTITIONED BY (day) LOCATION '{}/'",
        dir.display()
    );
    run(&session, &create).await;
    session
        .sql(&format!("CREATE MATERIALIZED VIEW {mv} AS {definition}"))
        .await
        .unwrap();
    session
}

/// Runs a statement to the end.
async fn run(session: &MvSession, sql: &str) {
    session.sql(sql).await.unwrap().collect().await.unwrap();
}

/// Runs `query` through the session and without rewriting, asserts both agree, and returns
/// the MVs used with the report's lines on parts.
async fn answered(session: &MvSession, query: &str) -> (Vec<String>, Vec<String>) {
    session.clear_report();
    let rewritten = session.sql(query).await.unwrap().collect().await.unwrap();
    let report = session.last_report();
    let original = session
        .without_rewrites()
        .sql(query)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    compare(&original, &rewritten).unwrap_or_else(|e| panic!("{query}: {e}"));
    report.map_or_else(Default::default, |r| (r.used_mvs(), r.parts.clone()))
}

/// Refreshes `mv` and returns what was done to it.
async fn refresh(session: &MvSession, mv: &str) -> Refreshed {
    let done = session.refresh_materialized_view(mv).await.unwrap();
    done.last().expect("refreshed").clone()
}

/// The MV's rows equal its definition recomputed (read through the session without
/// rewriting, so its stored rows and the table's are compared).
async fn equals_definition(session: &MvSession, mv: &str, definition: &str) {
    let plain = session.without_rewrites();
    let stored = plain
        .sql(&format!("SELECT * FROM {mv}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let recomputed = plain
        .sql(definition)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    compare(&recomputed, &stored).unwrap_or_else(|e| panic!("{mv}: {e}"));
}

/// Files another writer adds to a partitioned table, in a new partition and in an existing
/// one, are read alone with their partition values: the refresh is incremental and reads
/// exactly their rows.
#[tokio::test]
async fn new_files_in_partitions_are_read_alone_with_their_partition_values() {
    let dir = fresh_dir("added");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 1000).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 1001, 1500).await;
    let session = session_over(&dir, "by_day", BY_DAY).await;
    assert_eq!(answered(&session, BY_DAY).await.0, vec!["by_day"]);
    assert_eq!(answered(&session, BY_KIND).await.0, vec!["by_day"]);

    // A new partition, and a new file in an existing one.
    write_file(&dir, "2024-03-03", "part-0.parquet", 1501, 1800).await;
    write_file(&dir, "2024-03-01", "part-1.parquet", 1801, 1900).await;
    // The MV keeps `day`: the two changed partitions are read from the table.
    let (used, parts) = answered(&session, BY_DAY).await;
    assert_eq!(used, vec!["by_day"]);
    let parts = parts.join("\n");
    assert!(
        parts.contains("2024-03-01") && parts.contains("2024-03-03"),
        "{parts}"
    );

    let done = refresh(&session, "by_day").await;
    assert_eq!(done.mode, RefreshMode::Incremental, "{done:?}");
    assert!(done.reason.contains("(400 rows of them read)"), "{done:?}");
    equals_definition(&session, "by_day", BY_DAY).await;
    assert_eq!(answered(&session, BY_DAY).await.0, vec!["by_day"]);
    assert_eq!(answered(&session, BY_KIND).await.0, vec!["by_day"]);
    // The partition column is typed as declared: a filter on it as a date is answered.
    let one_day =
        "SELECT kind, sum(v) AS total FROM events WHERE day = DATE '2024-03-01' GROUP BY kind";
    assert_eq!(answered(&session, one_day).await.0, vec!["by_day"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An MV that does not keep the partition column takes new files incrementally too.
#[tokio::test]
async fn an_mv_without_the_partition_column_takes_new_partitions_incrementally() {
    let dir = fresh_dir("by-kind");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 1000).await;
    let session = session_over(&dir, "by_kind", BY_KIND).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 1001, 1250).await;
    assert!(answered(&session, BY_KIND).await.0.is_empty());
    let done = refresh(&session, "by_kind").await;
    assert_eq!(done.mode, RefreshMode::Incremental, "{done:?}");
    assert!(done.reason.contains("(250 rows of them read)"), "{done:?}");
    equals_definition(&session, "by_kind", BY_KIND).await;
    assert_eq!(answered(&session, BY_KIND).await.0, vec!["by_kind"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The notes of the last report.
fn notes(session: &MvSession) -> Vec<String> {
    session.last_report().map(|r| r.notes).unwrap_or_default()
}

/// After another writer changed some partitions, an MV keeping the partition column answers
/// for the others: alone for a query reading only unchanged partitions, in parts (the changed
/// partitions from the table) for one reading changed ones too, never for a changed one.
#[tokio::test]
async fn unchanged_partitions_are_answered_from_the_mv_and_changed_ones_from_the_table() {
    let dir = fresh_dir("partly");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 1000).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 1001, 1500).await;
    write_file(&dir, "2024-03-03", "part-0.parquet", 1501, 2000).await;
    let session = session_over(&dir, "by_day", BY_DAY).await;

    // One partition gains a file; another loses its file.
    write_file(&dir, "2024-03-02", "part-1.parquet", 2001, 2100).await;
    std::fs::remove_file(dir.join("day=2024-03-03/part-0.parquet")).unwrap();

    let unchanged = "SELECT kind, sum(v) AS total, count(*) AS n FROM events WHERE day = DATE '2024-03-01' GROUP BY kind";
    let (used, parts) = answered(&session, unchanged).await;
    assert_eq!((used, parts.len()), (vec!["by_day".to_string()], 0));
    let note = notes(&session).join("\n");
    assert!(
        note.contains("events.day = 2024-03-02, 2024-03-03")
            || note.contains("events.day = 2024-03-03, 2024-03-02"),
        "{note}"
    );

    let some_changed = "SELECT kind, sum(v) AS total, count(*) AS n FROM events WHERE day IN (DATE '2024-03-01', DATE '2024-03-02') GROUP BY kind";
    for query in [some_changed, BY_KIND, BY_DAY] {
        let (used, parts) = answered(&session, query).await;
        assert_eq!(used, vec!["by_day"], "{query}");
        let parts = parts.join("\n");
        assert!(
            parts.contains("2024-03-02") && parts.contains("read from events"),
            "{query}: {parts}"
        );
    }

    // The restriction is in the plan: the MV's rows filtered to the unchanged partitions.
    let explain = session.sql(&format!("EXPLAIN {BY_KIND}")).await.unwrap();
    let explain = explain.collect().await.unwrap();
    let plan = datafusion::arrow::util::pretty::pretty_format_batches(&explain)
        .unwrap()
        .to_string();
    assert!(
        plan.contains(
            "Filter: by_day.day != Date32(\"2024-03-02\") AND by_day.day != Date32(\"2024-03-03\")"
        ),
        "{plan}"
    );
    // A query reading only changed partitions is answered from the table.
    let changed =
        "SELECT kind, sum(v) AS total FROM events WHERE day = DATE '2024-03-02' GROUP BY kind";
    assert!(answered(&session, changed).await.0.is_empty());

    // Refreshed, the MV answers whole again.
    refresh(&session, "by_day").await;
    equals_definition(&session, "by_day", BY_DAY).await;
    assert_eq!(
        answered(&session, BY_KIND).await,
        (vec!["by_day".to_string()], vec![])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An MV that does not keep the partition column is stale whole when any partition changes:
/// its rows mix every partition's.
#[tokio::test]
async fn an_mv_without_the_partition_column_is_stale_whole() {
    let dir = fresh_dir("whole");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 1000).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 1001, 1500).await;
    let session = session_over(&dir, "by_kind", BY_KIND).await;
    std::fs::remove_file(dir.join("day=2024-03-02/part-0.parquet")).unwrap();
    let one_day = "SELECT kind, sum(v) AS total, count(*) AS n FROM events WHERE day = DATE '2024-03-01' GROUP BY kind";
    for query in [BY_KIND, one_day] {
        let (used, parts) = answered(&session, query).await;
        assert!(
            used.is_empty() && parts.is_empty(),
            "{query}: {used:?} {parts:?}"
        );
    }
    let report = session.last_report().expect("a report");
    let status = &report.candidates[0].status;
    assert!(
        matches!(status, mvrewrite::CandidateStatus::Rejected(r) if r.code == mvrewrite::ReasonCode::Stale),
        "{status:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Refreshes `mv`, asserts it then equals its definition, and returns how it was refreshed,
/// with the partitions it recomputed (sorted).
async fn refreshed(session: &MvSession, mv: &str, definition: &str) -> (RefreshMode, Vec<String>) {
    let done = refresh(session, mv).await;
    equals_definition(session, mv, definition).await;
    let mut partitions = done.partitions.clone();
    partitions.sort();
    (done.mode, partitions)
}

/// A file removed in one partition and one rewritten in another: REFRESH recomputes only
/// those two partitions; an MV without the partition column is recomputed in full.
#[tokio::test]
async fn removed_and_rewritten_files_refresh_only_their_partitions() {
    let dir = fresh_dir("refresh");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 1000).await;
    write_file(&dir, "2024-03-01", "part-1.parquet", 1001, 1200).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 1201, 1500).await;
    write_file(&dir, "2024-03-03", "part-0.parquet", 1501, 2000).await;
    let session = session_over(&dir, "by_day", BY_DAY).await;
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW by_kind AS {BY_KIND}"),
    )
    .await;

    std::fs::remove_file(dir.join("day=2024-03-01/part-1.parquet")).unwrap();
    write_file(&dir, "2024-03-02", "part-0.parquet", 1201, 1400).await;
    assert_eq!(
        refreshed(&session, "by_day", BY_DAY).await,
        (
            RefreshMode::Partitions,
            vec!["2024-03-01".to_string(), "2024-03-02".to_string()]
        )
    );
    let (mode, _) = refreshed(&session, "by_kind", BY_KIND).await;
    assert_eq!(mode, RefreshMode::Full);
    for (query, mv) in [(BY_DAY, "by_day"), (BY_KIND, "by_kind")] {
        let (used, parts) = answered(&session, query).await;
        assert_eq!((used, parts.len()), (vec![mv.to_string()], 0), "{query}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The partition column read through a table alias (`FROM events e`, `e.day`) is the
/// partition column still: unchanged days answer from the MV, and REFRESH recomputes only the
/// changed one.
#[tokio::test]
async fn a_partition_column_read_through_a_table_alias_is_followed() {
    const ALIASED: &str = "SELECT e.day, e.kind, sum(e.v) AS total, count(*) AS n FROM events e GROUP BY e.day, e.kind";
    let dir = fresh_dir("alias");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 1000).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 1001, 1500).await;
    let session = session_over(&dir, "by_day", ALIASED).await;
    std::fs::remove_file(dir.join("day=2024-03-02/part-0.parquet")).unwrap();
    write_file(&dir, "2024-03-02", "part-1.parquet", 1001, 1300).await;
    let unchanged =
        "SELECT kind, sum(v) AS total FROM events WHERE day = DATE '2024-03-01' GROUP BY kind";
    let (used, parts) = answered(&session, unchanged).await;
    assert_eq!((used, parts.len()), (vec!["by_day".to_string()], 0));
    assert!(
        notes(&session)
            .join("\n")
            .contains("events.day = 2024-03-02"),
        "{:?}",
        notes(&session)
    );
    assert_eq!(
        refreshed(&session, "by_day", ALIASED).await,
        (RefreshMode::Partitions, vec!["2024-03-02".to_string()])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Seeded random appends, removals and rewrites of files across partitions (days of two
/// months), and refreshes of MVs by day (mergeable, and a `count(DISTINCT ..)`) and by month:
/// every answer equals the original's, and after each refresh the MVs equal their definitions
/// recomputed and answer whole.
#[tokio::test]
async fn random_partition_changes_and_refreshes_keep_every_answer_right() {
    random_partition_changes(false).await;
}

/// The same with the MVs kept in a store: each refresh of some partitions publishes a new
/// generation, and another engine reading an MV's generation reads its definition's rows.
#[tokio::test]
async fn random_partition_changes_and_refreshes_of_mvs_in_a_store() {
    random_partition_changes(true).await;
}

async fn random_partition_changes(in_store: bool) {
    let seed: u64 = std::env::var("PARTITIONS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(28);
    let mut rng = mvrewrite::testkit::datagen::Rng::new(seed);
    let dir = fresh_dir("random");
    let days = ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"];
    let mut files: Vec<(&str, String)> = Vec::new();
    let mut next = 1;
    for day in &days[1..3] {
        write_file(&dir, day, "part-0.parquet", next, next + 299).await;
        files.push((day, "part-0.parquet".to_string()));
        next += 300;
    }
    let distinct =
        "SELECT day, count(DISTINCT kind) AS kinds, max(v) AS top FROM events GROUP BY day";
    let store = fresh_dir("random-store");
    let session = match in_store {
        true => MvSession::with_data_dir(&store).await.unwrap(),
        false => MvSession::new(),
    };
    let session = session_with(&dir, "by_day", BY_DAY, session).await;
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW kinds AS {distinct}"),
    )
    .await;
    let by_month = "SELECT date_trunc('month', day) AS month, sum(v) AS total, count(*) AS n FROM events GROUP BY date_trunc('month', day)";
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW by_month AS {by_month}"),
    )
    .await;
    let one_day =
        "SELECT kind, sum(v) AS total FROM events WHERE day = DATE '2024-03-01' GROUP BY kind";
    let mut modes: Vec<RefreshMode> = Vec::new();
    for step in 0..16 {
        let n = 1 + rng.below(150) as i64;
        match rng.below(4) {
            0 | 1 => {
                let day = days[rng.below(days.len() as u64) as usize];
                let file = format!("part-{}.parquet", step + 1);
                write_file(&dir, day, &file, next, next + n - 1).await;
                files.push((day, file));
            }
            2 if files.len() > 1 => {
                let (day, file) = files.remove(rng.below(files.len() as u64) as usize);
                std::fs::remove_file(dir.join(format!("day={day}")).join(file)).unwrap();
            }
            _ => {
                // Rewritten with another number of rows, so its size changes.
                let (day, file) = files[rng.below(files.len() as u64) as usize].clone();
                write_file(&dir, day, &file, next, next + n + 7).await;
            }
        }
        next += 200;
        for query in [BY_DAY, BY_KIND, one_day, distinct, by_month] {
            answered(&session, query).await;
        }
        if rng.below(2) == 0 {
            let mvs = [
                ("by_day", BY_DAY),
                ("kinds", distinct),
                ("by_month", by_month),
            ];
            for (mv, definition) in mvs {
                modes.push(refreshed(&session, mv, definition).await.0);
            }
            let (used, parts) = answered(&session, BY_DAY).await;
            assert!(
                used.contains(&"by_day".to_string()) && parts.is_empty(),
                "seed {seed}"
            );
        }
    }
    let count = |m: RefreshMode| modes.iter().filter(|x| **x == m).count();
    eprintln!(
        "partitions: seed {seed}, {} incremental, {} by partitions, {} full refreshes",
        count(RefreshMode::Incremental),
        count(RefreshMode::Partitions),
        count(RefreshMode::Full)
    );
    assert!(count(RefreshMode::Partitions) > 0, "seed {seed}: {modes:?}");
    assert_eq!(count(RefreshMode::Full), 0, "seed {seed}: {modes:?}");
    if in_store {
        // Refreshed, each MV's rows as another engine reads them are its definition's.
        for (mv, definition) in [
            ("by_day", BY_DAY),
            ("kinds", distinct),
            ("by_month", by_month),
        ] {
            session.refresh_materialized_view(mv).await.unwrap();
            common::another_engine_reads(&session, mv, definition).await;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&store).unwrap();
}

/// Across a restart, an MV partly fresh comes back partly fresh: the store keeps the changes
/// of files behind its staleness, so the next process knows which partitions they touched,
/// and adds those it sees itself.
#[tokio::test]
async fn partitions_changed_before_a_restart_are_known_after_it() {
    let dir = fresh_dir("restart");
    let files = dir.join("events");
    let store = dir.join("store");
    write_file(&files, "2024-03-01", "part-0.parquet", 1, 1000).await;
    write_file(&files, "2024-03-02", "part-0.parquet", 1001, 1500).await;
    let create_table = format!(
        "CREATE EXTERNAL TABLE events (kind VARCHAR, v BIGINT, day DATE)
         STORED AS PARQUET PARTITIONED BY (day) LOCATION '{}/'",
        files.display()
    );
    let day = |d: &str| {
        format!("SELECT kind, sum(v) AS total FROM events WHERE day = DATE '{d}' GROUP BY kind")
    };
    {
        let first = MvSession::with_data_dir(&store).await.unwrap();
        run(&first, &create_table).await;
        run(
            &first,
            &format!("CREATE MATERIALIZED VIEW by_day AS {BY_DAY}"),
        )
        .await;
        // Seen by this process, then saved with the catalog (another MV created).
        write_file(&files, "2024-03-02", "part-1.parquet", 1501, 1600).await;
        assert_eq!(answered(&first, &day("2024-03-01")).await.0, vec!["by_day"]);
        run(
            &first,
            &format!("CREATE MATERIALIZED VIEW by_kind AS {BY_KIND}"),
        )
        .await;
    }
    // The next process sees a change of its own in another partition.
    write_file(&files, "2024-03-03", "part-0.parquet", 1601, 1700).await;
    let second = MvSession::with_data_dir(&store).await.unwrap();
    run(&second, &create_table).await;
    assert_eq!(
        answered(&second, &day("2024-03-01")).await.0,
        vec!["by_day"]
    );
    for d in ["2024-03-02", "2024-03-03"] {
        let (used, _) = answered(&second, &day(d)).await;
        assert!(!used.contains(&"by_day".to_string()), "{d}: {used:?}");
    }
    // Files were only added, before and after the restart: the refresh reads them alone.
    assert_eq!(
        refreshed(&second, "by_day", BY_DAY).await,
        (RefreshMode::Incremental, vec![])
    );
    // Changes this process sees itself are per partition again.
    write_file(&files, "2024-03-03", "part-1.parquet", 1701, 1800).await;
    assert_eq!(
        answered(&second, &day("2024-03-01")).await.0,
        vec!["by_day"]
    );
    assert!(answered(&second, &day("2024-03-03")).await.0.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A table whose partition column DataFusion infers from the directories (no declared schema,
/// no `PARTITIONED BY`): new files are read with their partition values as inferred, and
/// partitions changed are read from the table.
#[tokio::test]
async fn inferred_partitions_are_followed_too() {
    let dir = fresh_dir("inferred");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 1000).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 1001, 1500).await;
    let session = MvSession::new();
    let create = format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        dir.display()
    );
    run(&session, &create).await;
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW by_day AS {BY_DAY}"),
    )
    .await;
    write_file(&dir, "2024-03-03", "part-0.parquet", 1501, 1800).await;
    let one_day = "SELECT kind, sum(v) AS total FROM events WHERE day = '2024-03-01' GROUP BY kind";
    for (query, in_parts) in [(BY_DAY, true), (BY_KIND, true), (one_day, false)] {
        let (used, parts) = answered(&session, query).await;
        assert_eq!(used, vec!["by_day"], "{query}");
        let from_table = parts.iter().any(|p| p.contains("NOT IN ('2024-03-03')"));
        assert_eq!(from_table, in_parts, "{query}: {parts:?}");
    }
    let done = refresh(&session, "by_day").await;
    assert_eq!(done.mode, RefreshMode::Incremental, "{done:?}");
    assert!(done.reason.contains("(300 rows of them read)"), "{done:?}");
    equals_definition(&session, "by_day", BY_DAY).await;
    std::fs::remove_file(dir.join("day=2024-03-01/part-0.parquet")).unwrap();
    for query in [BY_DAY, BY_KIND] {
        let (used, parts) = answered(&session, query).await;
        assert_eq!(used, vec!["by_day"], "{query}");
        assert!(
            parts.iter().any(|p| p.contains("NOT IN ('2024-03-01')")),
            "{parts:?}"
        );
    }
    assert!(answered(&session, one_day).await.0.is_empty());
    let done = refresh(&session, "by_day").await;
    assert_eq!(done.mode, RefreshMode::Partitions, "{done:?}");
    assert_eq!(done.partitions, vec!["2024-03-01"]);
    equals_definition(&session, "by_day", BY_DAY).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An MV that keeps a bucket of the partition column (`date_trunc('month', day)`) is fresh
/// per bucket: a change in one day makes its month read from the table, and REFRESH
/// recomputes that month only.
#[tokio::test]
async fn an_mv_keeping_a_bucket_of_the_partition_column_is_fresh_per_bucket() {
    let dir = fresh_dir("bucket");
    write_file(&dir, "2024-02-28", "part-0.parquet", 1, 400).await;
    write_file(&dir, "2024-03-01", "part-0.parquet", 401, 800).await;
    write_file(&dir, "2024-03-01", "part-1.parquet", 801, 900).await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 901, 1200).await;
    let by_month = "SELECT date_trunc('month', day) AS month, kind, sum(v) AS total, count(*) AS n FROM events GROUP BY date_trunc('month', day), kind";
    let session = session_over(&dir, "by_month", by_month).await;
    let monthly = "SELECT date_trunc('month', day) AS month, sum(v) AS total FROM events GROUP BY date_trunc('month', day)";
    assert_eq!(answered(&session, monthly).await.0, vec!["by_month"]);

    std::fs::remove_file(dir.join("day=2024-03-01/part-1.parquet")).unwrap();
    for query in [monthly, BY_KIND] {
        let (used, parts) = answered(&session, query).await;
        assert_eq!(used, vec!["by_month"], "{query}");
        assert!(
            parts.iter().any(|p| p.contains("read from events")),
            "{query}: {parts:?}"
        );
    }
    let note = notes(&session).join("\n");
    assert!(note.contains("of events = 2024-03-01T00:00:00"), "{note}");

    let (mode, partitions) = refreshed(&session, "by_month", by_month).await;
    assert_eq!(
        (mode, partitions.len()),
        (RefreshMode::Partitions, 1),
        "{partitions:?}"
    );
    assert!(partitions[0].starts_with("2024-03-01"), "{partitions:?}");
    assert_eq!(
        answered(&session, monthly).await,
        (vec!["by_month".to_string()], vec![])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Hive's directory for NULL partition values (`day=__HIVE_DEFAULT_PARTITION__`). Under a DATE
/// partition column DataFusion 55 cannot read the table at all (it casts the directory's text):
/// creating the MV is a clear error, as the query is without rewriting. Under a VARCHAR column
/// the directory's text is the value, for the table and the MV alike: the MV, its refresh from
/// new files and the answers in parts agree with the table.
#[tokio::test]
async fn the_hive_null_partition_is_read_as_the_table_reads_it() {
    let dir = fresh_dir("null-partition");
    write_file(&dir, "2024-03-01", "part-0.parquet", 1, 100).await;
    write_file(
        &dir,
        "__HIVE_DEFAULT_PARTITION__",
        "part-0.parquet",
        101,
        150,
    )
    .await;
    let dated = MvSession::new();
    let create = |day_type: &str| {
        format!(
            "CREATE EXTERNAL TABLE events (kind VARCHAR, v BIGINT, day {day_type})
             STORED AS PARQUET PARTITIONED BY (day) LOCATION '{}/'",
            dir.display()
        )
    };
    run(&dated, &create("DATE")).await;
    let per_day = "SELECT day, sum(v) FROM events GROUP BY day";
    let plain = dated
        .without_rewrites()
        .sql(per_day)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        plain.is_err(),
        "DataFusion reads the NULL partition as a DATE now"
    );
    let created = dated
        .sql(&format!("CREATE MATERIALIZED VIEW by_day AS {BY_DAY}"))
        .await;
    let Err(err) = created else {
        panic!("an MV over a table DataFusion cannot read")
    };
    assert!(
        err.to_string().contains("__HIVE_DEFAULT_PARTITION__"),
        "{err}"
    );

    let session = MvSession::new();
    run(&session, &create("VARCHAR")).await;
    run(
        &session,
        &format!("CREATE MATERIALIZED VIEW by_day AS {BY_DAY}"),
    )
    .await;
    equals_definition(&session, "by_day", BY_DAY).await;
    assert_eq!(answered(&session, per_day).await.0, ["by_day"]);
    // New files in the NULL partition and in a dated one.
    write_file(
        &dir,
        "__HIVE_DEFAULT_PARTITION__",
        "part-1.parquet",
        151,
        170,
    )
    .await;
    write_file(&dir, "2024-03-02", "part-0.parquet", 171, 200).await;
    answered(&session, per_day).await;
    let one_day = "SELECT day, sum(v) FROM events WHERE day = '2024-03-01' GROUP BY day";
    assert_eq!(answered(&session, one_day).await.0, ["by_day"]);
    let (mode, _) = refreshed(&session, "by_day", BY_DAY).await;
    assert_eq!(mode, RefreshMode::Incremental);
    assert_eq!(answered(&session, per_day).await.0, ["by_day"]);
    // A file removed from the NULL partition: only it is stale, and only it is recomputed.
    let null = dir.join("day=__HIVE_DEFAULT_PARTITION__");
    std::fs::remove_file(null.join("part-0.parquet")).unwrap();
    answered(&session, per_day).await;
    assert_eq!(answered(&session, one_day).await.0, ["by_day"]);
    let (mode, partitions) = refreshed(&session, "by_day", BY_DAY).await;
    assert_eq!(mode, RefreshMode::Partitions, "{partitions:?}");
    assert_eq!(answered(&session, per_day).await.0, ["by_day"]);
}
