//! mvrewrite on an Apache DataFusion Ballista cluster started in the test's process (a
//! scheduler and two executors on loopback ports), over partitioned Parquet files: the
//! CarbonData and Moose scenarios and the pack cases with aggregates, joins and time buckets
//! give the rows a local plain DataFusion gives for the original queries; EXPLAIN shows the
//! MV scan in the distributed plan; a stale MV is not used; the scheduler rewrites plans of
//! clients without the rule; a refresh runs on the cluster, incremental equal to full.
#![cfg(feature = "ballista")]

mod common;

use std::path::Path;

use ballista::prelude::SessionContextExt;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use mvrewrite::testkit::compare::compare;
use mvrewrite::{MvError, MvSession, Staleness};

/// A session keeping its MVs in `dir/mvs`, on a new in-process cluster of two executors; the
/// scheduler's URL.
async fn on_cluster(dir: &Path) -> (MvSession, String) {
    let session = MvSession::with_data_dir(dir.join("mvs")).await.unwrap();
    mvrewrite::cluster::standalone(session, 2, 2).await.unwrap()
}

/// A plain local DataFusion context with mvrewrite's time functions and Spark aggregates, the string types
/// Ballista sets (`Utf8`, not `Utf8View`, which its Flight frames do not carry) and no cache
/// of directory listings (DataFusion's default keeps one forever, and would not see the files
/// the tests add): the reference.
fn reference() -> SessionContext {
    let config = datafusion::prelude::SessionConfig::new()
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false);
    let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
    let runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(caches)
        .build_arc()
        .unwrap();
    let plain = SessionContext::new_with_config_rt(config, runtime);
    mvrewrite::register_time_functions(&plain);
    mvrewrite::register_spark_aggregates(&plain);
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

/// Runs `sql` in the cluster session and in the reference.
async fn both(session: &MvSession, plain: &SessionContext, sql: &str) {
    session.sql(sql).await.unwrap().collect().await.unwrap();
    plain.sql(sql).await.unwrap().collect().await.unwrap();
}

/// The `plan` column of `EXPLAIN sql` run on the cluster, as text.
async fn explain(session: &MvSession, sql: &str) -> String {
    let rows = session
        .context()
        .sql(&format!("EXPLAIN {sql}"))
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql} collect: {e}"));
    pretty_format_batches(&rows).unwrap().to_string()
}

/// The part of `explain`'s text after its `distributed_plan` row: the stages the executors run.
fn distributed(explained: &str) -> &str {
    let at = explained
        .find("distributed_plan")
        .unwrap_or_else(|| panic!("no distributed plan in\n{explained}"));
    &explained[at..]
}

/// A store location as plans print a file under it: an object-store path, without scheme
/// or leading slash.
fn as_printed(location: &str) -> &str {
    location.trim_start_matches("file://").trim_matches('/')
}

/// Whether the plan `explained` runs reads the files at `location`: the executors read them,
/// or the scheduler answered from their statistics alone (DataFusion's aggregate statistics
/// rule: no file read at all) where the client planned to read them.
fn reads(explained: &str, location: &str) -> bool {
    let executed = distributed(explained);
    executed.contains(as_printed(location))
        || (!executed.contains("file_groups") && explained.contains(as_printed(location)))
}

/// Whether the executors read `mv`'s current generation for `sql`.
async fn executors_read(session: &MvSession, mv: &str, sql: &str) -> bool {
    let location = session.mv_location(mv).unwrap().unwrap();
    reads(&explain(session, sql).await, &location)
}

/// Asserts that `query` is answered from `mv` alone, with the original's rows, and that the
/// executors read its current generation.
async fn assert_answered_from(session: &MvSession, plain: &SessionContext, mv: &str, query: &str) {
    assert_eq!(
        common::assert_same_in(session, plain, query).await,
        [mv],
        "{query}"
    );
    assert!(executors_read(session, mv, query).await, "{query}");
}

/// Asserts that `query` is answered from no MV, with the original's rows, and that the
/// executors do not read the (stale) generation at `location`. Returns the distributed plan.
async fn assert_not_read(
    session: &MvSession,
    plain: &SessionContext,
    query: &str,
    location: &str,
) -> String {
    let used = common::assert_same_in(session, plain, query).await;
    assert!(used.is_empty(), "{query} used {used:?}");
    let explained = explain(session, query).await;
    let executed = distributed(&explained).to_string();
    assert!(
        !executed.contains(as_printed(location)),
        "{query} read the stale MV:\n{explained}"
    );
    executed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn carbondata_scenario_on_the_cluster() {
    let dir = common::fresh_dir("ballista", "carbondata");
    let rows = "SELECT CASE value % 3 WHEN 0 THEN 'fr' WHEN 1 THEN 'de' ELSE 'it' END AS country,
                       'c' || CAST(value % 7 AS VARCHAR) AS city,
                       CAST(value % 5 AS INT) AS quantity, CAST(value AS DOUBLE) / 4 AS price
                FROM generate_series(1, 3000)";
    write(&dir.join("sales"), rows, Some("country")).await;
    let (session, _) = on_cluster(&dir).await;
    let plain = reference();
    let table = format!(
        "CREATE EXTERNAL TABLE sales (city VARCHAR, quantity INT, price DOUBLE, country VARCHAR)
         STORED AS PARQUET PARTITIONED BY (country) LOCATION '{}/'",
        dir.join("sales").display()
    );
    both(&session, &plain, &table).await;
    session
        .sql(
            "CREATE MATERIALIZED VIEW by_city AS
               SELECT country, city, sum(price) AS total, sum(quantity) AS q, count(*) AS n,
                      avg(price) AS mean
               FROM sales GROUP BY country, city",
        )
        .await
        .unwrap();
    let queries = [
        "SELECT country, sum(price), sum(quantity), count(*) FROM sales GROUP BY country",
        "SELECT country, avg(price) FROM sales WHERE country IN ('fr', 'it') GROUP BY country",
        "SELECT city, count(*) FROM sales GROUP BY city HAVING sum(quantity) > 100 ORDER BY city",
    ];
    for query in queries {
        assert_answered_from(&session, &plain, "by_city", query).await;
    }

    // Another writer adds a file to a partition: the MV is stale on the client and on the
    // scheduler (on a cluster an MV answers fresh as a whole or not at all), so the executors
    // read the table's files, the new one included, and the answer is the new one.
    let more = "SELECT 'nice' AS city, CAST(2 AS INT) AS quantity, CAST(4.0 AS DOUBLE) AS price";
    write(&dir.join("sales/country=fr/more.parquet"), more, None).await;
    let stale = session.mv_location("by_city").unwrap().unwrap();
    for query in queries {
        let executed = assert_not_read(&session, &plain, query, &stale).await;
        assert!(
            executed.contains("country=fr/more.parquet"),
            "{query} did not read the new file:\n{executed}"
        );
    }

    // Refreshed on the cluster (from the new file only), it answers again.
    let refreshed = session
        .sql("REFRESH MATERIALIZED VIEW by_city")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = pretty_format_batches(&refreshed).unwrap().to_string();
    assert!(text.contains("incremental"), "{text}");
    for query in queries {
        assert_answered_from(&session, &plain, "by_city", query).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moose_scenario_on_the_cluster() {
    let dir = common::fresh_dir("ballista", "moose");
    let rows = "SELECT to_timestamp(1700000000 + value * 1800) AS ts,
                       'k' || CAST(value % 3 AS VARCHAR) AS kind, value
                FROM generate_series(1, 4000)";
    write(&dir.join("events"), rows, Some("kind")).await;
    let (session, _) = on_cluster(&dir).await;
    let plain = reference();
    let table = format!(
        "CREATE EXTERNAL TABLE events (ts TIMESTAMP, value BIGINT, kind VARCHAR)
         STORED AS PARQUET PARTITIONED BY (kind) LOCATION '{}/'",
        dir.join("events").display()
    );
    both(&session, &plain, &table).await;
    session
        .sql(
            "CREATE MATERIALIZED VIEW hourly AS
               SELECT date_trunc('hour', ts) AS h, kind, sum(value) AS total, count(*) AS n,
                      max(value) AS top
               FROM events GROUP BY 1, 2",
        )
        .await
        .unwrap();
    // Rolled up along the time lattice, in three dialects' spellings.
    let queries = [
        "SELECT date_trunc('day', ts) AS d, kind, sum(value), count(*) FROM events GROUP BY 1, 2",
        "SELECT toStartOfDay(ts) AS d, max(value) FROM events GROUP BY 1",
        "SELECT timeseries(ts, 'day') AS d, sum(value) FROM events WHERE kind = 'k1' GROUP BY 1",
        "SELECT date_trunc('month', ts) AS m, count(*) FROM events
         WHERE ts >= TIMESTAMP '2023-11-20 00:00:00' AND ts < TIMESTAMP '2023-12-10 00:00:00'
         GROUP BY 1",
    ];
    for query in queries {
        assert_answered_from(&session, &plain, "hourly", query).await;
    }
    write(
        &dir.join("events/kind=k9/late.parquet"),
        "SELECT to_timestamp(1700000000) AS ts, CAST(5 AS BIGINT) AS value",
        None,
    )
    .await;
    // A new partition: the MV is stale, the executors read the table's files.
    let stale = session.mv_location("hourly").unwrap().unwrap();
    for query in queries {
        assert_not_read(&session, &plain, query, &stale).await;
    }
    session
        .sql("REFRESH MATERIALIZED VIEW hourly")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    for query in queries {
        assert_answered_from(&session, &plain, "hourly", query).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rows of `mv` as kept in the store, read by a plain local context.
async fn stored_rows(session: &MvSession, mv: &str) -> Vec<datafusion::arrow::array::RecordBatch> {
    let location = session.mv_location(mv).unwrap().unwrap();
    let plain = SessionContext::new();
    plain
        .register_parquet("mv", &location, Default::default())
        .await
        .unwrap();
    plain
        .sql("SELECT * FROM mv")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incremental_refresh_on_the_cluster_equals_a_full_one() {
    let dir = common::fresh_dir("ballista", "incremental");
    let events = dir.join("events");
    std::fs::create_dir_all(&events).unwrap();
    let rows = |first: i64, last: i64| {
        format!(
            "SELECT to_timestamp(1700000000 + value * 600) AS ts,
                    'k' || CAST(value % 4 AS VARCHAR) AS kind, value
             FROM generate_series({first}, {last})"
        )
    };
    write(&events.join("a.parquet"), &rows(1, 3000), None).await;
    write(&events.join("b.parquet"), &rows(3001, 5000), None).await;
    let (session, _) = on_cluster(&dir).await;
    let plain = reference();
    let table = format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        events.display()
    );
    both(&session, &plain, &table).await;
    let by_hour = "SELECT date_trunc('hour', ts) AS h, kind, sum(value) AS total, count(*) AS n,
                          min(value) AS low
                   FROM events GROUP BY 1, 2";
    let big = "SELECT ts, kind, value FROM events WHERE value % 10 = 0";
    session
        .sql(&format!("CREATE MATERIALIZED VIEW by_hour AS {by_hour}"))
        .await
        .unwrap();
    session
        .sql(&format!("CREATE MATERIALIZED VIEW tens AS {big}"))
        .await
        .unwrap();

    let queries = [
        (
            "by_hour",
            "SELECT kind, sum(value), count(*) FROM events GROUP BY kind",
        ),
        (
            "tens",
            "SELECT ts, value FROM events WHERE value % 10 = 0 AND kind = 'k2'",
        ),
    ];
    for (mv, query) in queries {
        assert_eq!(common::assert_same_in(&session, &plain, query).await, [mv]);
    }

    // New files only: each MV is stale, on the client and on the scheduler, until refreshed;
    // then computed over them on the cluster and merged (an aggregate) or added (rows) into a
    // new generation.
    write(&events.join("c.parquet"), &rows(5001, 6500), None).await;
    write(&events.join("d.parquet"), &rows(6501, 7000), None).await;
    for (mv, query) in queries {
        let location = session.mv_location(mv).unwrap().unwrap();
        assert_not_read(&session, &plain, query, &location).await;
    }
    for (mv, definition) in [("by_hour", by_hour), ("tens", big)] {
        let refreshed = session.refresh_materialized_view(mv).await.unwrap();
        assert_eq!(refreshed.len(), 1, "{refreshed:?}");
        assert_eq!(
            refreshed[0].mode,
            mvrewrite::RefreshMode::Incremental,
            "{refreshed:?}"
        );
        // The same definition computed whole, on the cluster, into the store; and locally.
        session
            .sql(&format!(
                "CREATE MATERIALIZED VIEW full_{mv} AS {definition}"
            ))
            .await
            .unwrap();
        let incremental = stored_rows(&session, mv).await;
        compare(
            &stored_rows(&session, &format!("full_{mv}")).await,
            &incremental,
        )
        .unwrap();
        let local = plain
            .sql(definition)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        compare(&local, &incremental).unwrap();
    }
    let query = "SELECT kind, sum(value), count(*) FROM events GROUP BY kind";
    let used = common::assert_same_in(&session, &plain, query).await;
    assert_eq!(used.len(), 1, "{used:?}");
    let _ = std::fs::remove_dir_all(&dir);
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

/// A client without mvrewrite (Ballista's own, over the same tables) sends a plan over the
/// base tables: the scheduler rewrites it to read the MV, and the executors read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduler_rewrites_plans_of_clients_without_the_rule() {
    let dir = common::fresh_dir("ballista", "scheduler");
    let rows = "SELECT 'k' || CAST(value % 5 AS VARCHAR) AS kind, value AS v
                FROM generate_series(1, 2000)";
    write(&dir.join("t"), rows, Some("kind")).await;
    let (session, url) = on_cluster(&dir).await;
    let table = format!(
        "CREATE EXTERNAL TABLE t (v BIGINT, kind VARCHAR) STORED AS PARQUET
         PARTITIONED BY (kind) LOCATION '{}/'",
        dir.join("t").display()
    );
    session.sql(&table).await.unwrap();
    session
        .sql("CREATE MATERIALIZED VIEW by_kind AS SELECT kind, sum(v) AS s, count(*) AS n FROM t GROUP BY kind")
        .await
        .unwrap();
    let location = session.mv_location("by_kind").unwrap().unwrap();

    let other = SessionContext::remote(&url).await.unwrap();
    other.sql(&table).await.unwrap().collect().await.unwrap();
    let query = "SELECT sum(v), count(*) FROM t";
    let explained = other
        .sql(&format!("EXPLAIN {query}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let explained = pretty_format_batches(&explained).unwrap().to_string();
    assert!(
        distributed(&explained).contains(as_printed(&location)),
        "{explained}"
    );
    let answer = other.sql(query).await.unwrap().collect().await.unwrap();
    let plain = reference();
    plain.sql(&table).await.unwrap().collect().await.unwrap();
    compare(
        &plain.sql(query).await.unwrap().collect().await.unwrap(),
        &answer,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The generated tables of the packs' cases written as Parquet, two files a table, under
/// `dir`; their names and row counts.
fn write_generated(dir: &Path) -> Vec<(&'static str, u64)> {
    let mut tables = Vec::new();
    for (name, batches) in common::generated_tables() {
        let table = dir.join(name);
        std::fs::create_dir_all(&table).unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        tables.push((name, rows as u64));
        let all =
            datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let half = all.num_rows() / 2;
        for (i, part) in [all.slice(0, half), all.slice(half, all.num_rows() - half)]
            .iter()
            .enumerate()
        {
            let file = std::fs::File::create(table.join(format!("part-{i}.parquet"))).unwrap();
            let mut writer =
                datafusion::parquet::arrow::ArrowWriter::try_new(file, part.schema(), None)
                    .unwrap();
            writer.write(part).unwrap();
            writer.close().unwrap();
        }
    }
    tables
}

/// The tables `write_generated` wrote registered as external tables in `session` and `plain`,
/// replacing any of the same name (the keys a case declared on them go with them), with
/// their row counts given to the catalog, as the in-memory packs do.
async fn register_generated(
    dir: &Path,
    tables: &[(&str, u64)],
    session: &MvSession,
    plain: &SessionContext,
) {
    for (name, rows) in tables {
        let drop = format!("DROP TABLE IF EXISTS {name}");
        both(session, plain, &drop).await;
        let create = format!(
            "CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{}/'",
            dir.join(name).display()
        );
        both(session, plain, &create).await;
        session
            .catalog()
            .write()
            .unwrap()
            .set_table_rows(*name, *rows);
    }
}

/// Every case of `pack` run on the cluster, its tables registered afresh: its MVs created
/// there, its query's rows equal to the reference's, the MV it expects used (none where its
/// in-process run answers in parts, which a cluster does not) and read by the executors, then
/// its MVs dropped. Queries listing values in row order (string_agg, array_agg) are left out.
async fn run_pack_on_cluster(pack: &str) {
    let dir = common::fresh_dir("ballista", pack);
    let (session, _) = on_cluster(&dir).await;
    let plain = reference();
    let tables = write_generated(&dir);
    let text = std::fs::read_to_string(format!("rules/{pack}.cases")).unwrap();
    let cases = common::cases(&text);
    assert!(!cases.is_empty(), "{pack}.cases has no cases");
    for case in cases {
        // string_agg and array_agg list values in the order rows reach them, which differs
        // between a cluster and one process: such a query has no single answer to compare.
        let query = case.query.to_lowercase();
        if query.contains("string_agg(") || query.contains("array_agg(") {
            continue;
        }
        register_generated(&dir, &tables, &session, &plain).await;
        for mv in &case.mvs {
            session.sql(mv).await.unwrap();
        }
        let used = common::assert_same_in(&session, &plain, &case.query).await;
        // A case its in-process run answers in parts (a UNION ALL of the MV's rows and the
        // table's others, as its snapshot records) is not answered on a cluster.
        let snapshot =
            std::fs::read_to_string(format!("snapshots/{pack}__{}.snap", case.name)).unwrap();
        let in_parts = snapshot.contains("the others are read from");
        let expected: Vec<String> = case.expect.iter().filter(|_| !in_parts).cloned().collect();
        let report = session
            .last_report()
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert_eq!(used, expected, "case {}: MVs used\n{report}", case.name);
        if let Some(mv) = expected.first() {
            let query = mvrewrite::testkit::standard_sql(&case.query);
            let location = session.mv_location(mv).unwrap().unwrap();
            let explained = explain(&session, &query).await;
            assert!(
                reads(&explained, &location),
                "case {}: the executors do not read {mv}:\n{explained}",
                case.name
            );
        }
        let names: Vec<String> = session
            .catalog()
            .read()
            .unwrap()
            .iter()
            .map(|mv| mv.name.clone())
            .collect();
        for name in names {
            session
                .sql(&format!("DROP MATERIALIZED VIEW IF EXISTS {name} CASCADE"))
                .await
                .unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aggregate_pack_on_the_cluster() {
    run_pack_on_cluster("aggregate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn join_pack_on_the_cluster() {
    run_pack_on_cluster("join").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeseries_pack_on_the_cluster() {
    run_pack_on_cluster("timeseries").await;
}

/// An MV is computed on the cluster from its tables, never from another MV: the plans of MV
/// computations ship with rewriting off, so the scheduler's rule leaves them as they are
/// (here it would read a stale MV the session tolerates, and record its rows as fresh).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_mv_is_computed_on_the_cluster_from_its_tables() {
    let dir = common::fresh_dir("ballista", "computed");
    let t = dir.join("t");
    std::fs::create_dir_all(&t).unwrap();
    let rows = |first: i64, last: i64| {
        format!("SELECT value % 7 AS k, value AS v FROM generate_series({first}, {last})")
    };
    write(&t.join("a.parquet"), &rows(1, 1000), None).await;
    let (session, _) = on_cluster(&dir).await;
    let plain = reference();
    let table = format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/'",
        t.display()
    );
    both(&session, &plain, &table).await;
    let definition = "SELECT k, sum(v) AS s, count(*) AS n FROM t GROUP BY k";
    session
        .sql(&format!("CREATE MATERIALIZED VIEW first AS {definition}"))
        .await
        .unwrap();
    session.set_staleness(Staleness::Tolerated).unwrap();
    write(&t.join("b.parquet"), &rows(1001, 1500), None).await;
    // Stale and tolerated, `first` answers queries, on the client and the scheduler.
    let query = "SELECT k, sum(v) FROM t GROUP BY k";
    let location = session.mv_location("first").unwrap().unwrap();
    assert!(executors_read(&session, "first", query).await, "{location}");
    session
        .sql(&format!("CREATE MATERIALIZED VIEW second AS {definition}"))
        .await
        .unwrap();
    let local = plain
        .sql(definition)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    compare(&local, &stored_rows(&session, "second").await).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
