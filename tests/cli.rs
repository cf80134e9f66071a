//! The built `mvrewrite` binary, run as users run it: rewrite (text, JSON, every dialect read
//! back by sqlparser), explain, the shell driven through stdin, help, and errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use datafusion::sql::sqlparser::parser::Parser;
use mvrewrite::cli::{DIALECTS, parser_dialect};

const SCHEMA: &str = "
CREATE TABLE sales (user_id BIGINT, country VARCHAR, sex VARCHAR, quantity INT, price DOUBLE);
CREATE TABLE events (event_id BIGINT, ts TIMESTAMP, user_id BIGINT, event_type VARCHAR, value DOUBLE);
";
const MVS: &str = "
CREATE MATERIALIZED VIEW by_country AS SELECT country, sex, sum(price) AS total, count(*) AS n FROM sales GROUP BY country, sex;
CREATE MATERIALIZED VIEW hourly AS SELECT date_trunc('hour', ts) AS h, event_type, count(*) AS n FROM events GROUP BY 1, 2;
";

/// A directory with `schema.sql` and `mvs.sql`, unique to the test.
fn inputs(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvrewrite-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schema.sql"), SCHEMA).unwrap();
    std::fs::write(dir.join("mvs.sql"), MVS).unwrap();
    dir
}

fn mvrewrite() -> Command {
    Command::cargo_bin("mvrewrite").unwrap()
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = mvrewrite().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn with_inputs(dir: &Path, command: &str) -> Vec<String> {
    vec![
        command.to_string(),
        "--schema".into(),
        dir.join("schema.sql").display().to_string(),
        "--mvs".into(),
        dir.join("mvs.sql").display().to_string(),
    ]
}

#[test]
fn rewrite_prints_sql_and_the_report() {
    let dir = inputs("text");
    let mut args = with_inputs(&dir, "rewrite");
    args.push("SELECT country, sum(price) FROM sales GROUP BY country".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = run(&args);
    assert!(ok, "{err}");
    assert!(out.contains("FROM by_country"), "{out}");
    assert!(out.contains("-- rewritten to read by_country"), "{out}");
}

#[test]
fn rewrite_json_names_mvs_and_reason_codes() {
    let dir = inputs("json");
    std::fs::write(
        dir.join("query.sql"),
        "SELECT user_id, sum(price) FROM sales GROUP BY user_id;",
    )
    .unwrap();
    let mut args = with_inputs(&dir, "rewrite");
    args.extend(["--format".into(), "json".into()]);
    args.push(dir.join("query.sql").display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = run(&args);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["rewritten"], false);
    assert_eq!(json["used_mvs"], serde_json::json!([]));
    let c = &json["candidates"][0];
    assert_eq!(c["mv"], "by_country");
    assert_eq!(c["status"], "rejected");
    assert_eq!(c["reason_code"], "group_by_not_kept");
    assert!(c["reason"].as_str().unwrap().contains("user_id"));
    assert!(json["sql"].as_str().unwrap().contains("user_id"));
    assert!(json["egraph"]["nodes"].is_number());

    let mut args = with_inputs(&dir, "rewrite");
    args.extend(["--format".into(), "json".into()]);
    args.push("SELECT date_trunc('day', ts) AS d, count(*) FROM events GROUP BY 1".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, _) = run(&args);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["rewritten"], true);
    assert_eq!(json["used_mvs"], serde_json::json!(["hourly"]));
    assert!(json["egraph"]["iterations"].as_u64().unwrap() > 0);
}

#[test]
fn every_dialect_reads_back() {
    let dir = inputs("dialects");
    let queries = [
        (
            "SELECT country, sum(price) AS total FROM sales WHERE country = 'fr' GROUP BY country",
            "by_country",
        ),
        (
            "SELECT date_trunc('day', ts) AS d, count(*) AS n FROM events \
             WHERE event_type = 'click' GROUP BY 1 HAVING count(*) > 2",
            "hourly",
        ),
    ];
    for (dialect, (query, mv)) in DIALECTS
        .iter()
        .flat_map(|d| queries.iter().map(move |q| (d, q)))
    {
        let mut args = with_inputs(&dir, "rewrite");
        args.extend([
            "--dialect".into(),
            dialect.to_string(),
            "--format".into(),
            "json".into(),
            query.to_string(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = run(&args);
        assert!(ok, "{dialect}: {err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["used_mvs"], serde_json::json!([mv]), "{dialect}");
        let sql = json["sql"].as_str().unwrap();
        let parser = parser_dialect(dialect).unwrap();
        Parser::parse_sql(parser.as_ref(), sql)
            .unwrap_or_else(|e| panic!("{dialect} does not read its output back: {e}\n{sql}"));
    }
}

#[test]
fn explain_shows_both_plans_and_what_to_change() {
    let dir = inputs("explain");
    let mut args = with_inputs(&dir, "explain");
    args.push("SELECT date_trunc('minute', ts) AS m, count(*) FROM events GROUP BY 1".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = run(&args);
    assert!(ok, "{err}");
    assert!(
        out.contains("original plan") && out.contains("rewritten plan"),
        "{out}"
    );
    assert!(
        out.contains("hourly: not used [bucket_not_nested]"),
        "{out}"
    );
    assert!(out.contains("to use it: bucket the MV at a grain"), "{out}");
}

#[test]
fn shell_runs_statements_from_stdin() {
    let script = "
CREATE TABLE t (a INT, b INT) AS VALUES (1, 10), (1, 20), (2, 30);
CREATE MATERIALIZED VIEW by_a AS SELECT a, sum(b) AS s FROM t GROUP BY a;
SELECT a, sum(b) FROM t GROUP BY a ORDER BY a;
INSERT INTO t VALUES (2, 5);
SELECT a, sum(b) FROM t GROUP BY a ORDER BY a;
REFRESH MATERIALIZED VIEW by_a;
SELECT a, sum(b) FROM t GROUP BY a ORDER BY a;
";
    let out = mvrewrite()
        .arg("shell")
        .write_stdin(script)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    let answers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("answered"))
        .collect();
    assert_eq!(
        answers,
        [
            "answered by by_a",
            "answered from the base tables",
            "answered by by_a"
        ],
        "{stdout}"
    );
    assert!(stdout.contains("[stale]"), "{stdout}");
    assert!(stdout.contains("| 2 | 35 "), "{stdout}");
    assert!(stdout.contains("time: "), "{stdout}");
}

#[test]
fn shell_reports_errors_and_fails() {
    let out = mvrewrite()
        .args(["shell"])
        .write_stdin("SELECT * FROM nowhere;\nSELECT 1;")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success());
    assert!(stdout.contains("error: unknown table"), "{stdout}");
    assert!(stdout.contains("1 rows"), "{stdout}");
}

#[test]
fn user_mistakes_are_one_line_and_a_failure() {
    let dir = inputs("errors");
    let cases: [(Vec<String>, &str); 4] = [
        (
            {
                let mut a = with_inputs(&dir, "rewrite");
                a.push("SELEC country FROM sales".into());
                a
            },
            "Line: 1, Column: 1",
        ),
        (
            {
                let mut a = with_inputs(&dir, "rewrite");
                a.push("SELECT * FROM nowhere".into());
                a
            },
            "unknown table",
        ),
        (
            {
                let mut a = with_inputs(&dir, "rewrite");
                a.extend(["--dialect".into(), "klingon".into(), "SELECT 1".into()]);
                a
            },
            "unknown dialect 'klingon'",
        ),
        (
            vec![
                "explain".into(),
                "--schema".into(),
                "/no/such/file.sql".into(),
                "SELECT 1".into(),
            ],
            "cannot read /no/such/file.sql",
        ),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = run(&args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(
            err.starts_with("error: ") && err.contains(message),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for command in ["demo", "rewrite", "explain", "shell"] {
        let (ok, out, _) = run(&[command, "--help"]);
        assert!(ok, "{command}");
        assert!(out.contains("Example:"), "{command}: {out}");
    }
    let (ok, out, _) = run(&["--help"]);
    assert!(
        ok && out.contains("rewrite") && out.contains("shell"),
        "{out}"
    );
}

#[test]
fn shell_loads_csv_files_as_tables() {
    let dir = inputs("csv");
    std::fs::write(dir.join("t.csv"), "a,b\n1,10\n1,20\n2,5\n").unwrap();
    let out = mvrewrite()
        .args(["shell", "--data", &dir.display().to_string()])
        .write_stdin(
            "CREATE MATERIALIZED VIEW s AS SELECT a, sum(b) AS s FROM t GROUP BY a;\n\
             SELECT a, sum(b) FROM t GROUP BY a ORDER BY a;",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains(": t"), "{stderr}");
    assert!(
        stdout.contains("answered by s") && stdout.contains("| 1 | 30 "),
        "{stdout}"
    );
}

/// MVs kept with `--store` are restored in the next shell run and answer there; one whose
/// table is missing is reported, kept, and restored in a later run.
#[test]
fn shell_keeps_mvs_across_runs_with_store() {
    let dir = inputs("store");
    let data = dir.join("data");
    let store = dir.join("mvs");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("t.csv"), "a,b\n1,10\n1,20\n2,5\n").unwrap();
    let shell_on = |data: &std::path::Path, script: &str| {
        let out = mvrewrite()
            .args([
                "shell",
                "--data",
                &data.display().to_string(),
                "--store",
                &store.display().to_string(),
            ])
            .write_stdin(script.to_string())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap()
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let shell = |script: &str| shell_on(&data, script);
    let first = shell(
        "CREATE MATERIALIZED VIEW s AS SELECT a, sum(b) AS s FROM t GROUP BY a;\n\
         CREATE MATERIALIZED VIEW n AS SELECT a, count(*) AS n FROM t GROUP BY a;\n\
         SET mvrewrite.staleness = 'enforced';\n\
         SELECT a, sum(b) FROM t GROUP BY a ORDER BY a;",
    );
    assert!(first.contains("answered by s"), "{first}");
    // Where another engine reads each MV: a generation directory of the store.
    let at = store.join("s").join("1");
    assert!(
        first.contains(&format!("s stored at {}", at.display())),
        "{first}"
    );
    assert!(at.join("1.parquet").exists());
    let second = shell(
        "SELECT a, sum(b) FROM t GROUP BY a ORDER BY a;\n\
         SELECT a, count(*) FROM t GROUP BY a ORDER BY a;",
    );
    assert!(
        second.contains("materialized views restored: n, s") || second.contains("restored: s, n"),
        "{second}"
    );
    assert!(
        second.contains("answered by s") && second.contains("answered by n"),
        "{second}"
    );
    // Without its table, an MV is not restored, and says why; it is kept for a later run.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let third = shell_on(&empty, "SELECT 1;");
    assert!(
        third
            .contains("materialized view s not restored yet (kept until what it reads is created)")
            && third.contains("unknown table 'datafusion.public.t'"),
        "{third}"
    );
    let fourth = shell("SELECT a, sum(b) FROM t GROUP BY a ORDER BY a;");
    assert!(fourth.contains("answered by s"), "{fourth}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--data` on a directory of Hive-partitioned Parquet files: a table with its partition
/// column; a file written into it later (here by the shell's own `COPY`, which the session
/// does not count as a write to the table) in a new partition makes the MV stale there: that
/// partition is read from the table, the others from the MV, and `REFRESH` brings it back.
#[test]
fn shell_reads_partitioned_parquet_and_sees_new_files() {
    let dir = inputs("parquet");
    let data = dir.join("data");
    let events = data.join("events");
    let _ = std::fs::remove_dir_all(&events);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let other = datafusion::prelude::SessionContext::new();
        for (day, first) in [("2024-03-01", 1), ("2024-03-02", 101)] {
            let sql = format!(
                "COPY (SELECT value AS v FROM generate_series({first}, {})) TO '{}' STORED AS PARQUET",
                first + 99,
                events.join(format!("day={day}")).join("part-0.parquet").display()
            );
            other.sql(&sql).await.unwrap().collect().await.unwrap();
        }
    });
    let new_file = events.join("day=2024-03-03").join("part-0.parquet");
    let script = format!(
        "CREATE MATERIALIZED VIEW per_day AS SELECT day, sum(v) AS s, count(*) AS n FROM events GROUP BY day;\n\
         SELECT day, sum(v) FROM events GROUP BY day ORDER BY day;\n\
         COPY (SELECT CAST(7 AS BIGINT) AS v) TO '{}' STORED AS PARQUET;\n\
         SELECT day, sum(v) FROM events GROUP BY day ORDER BY day;\n\
         REFRESH MATERIALIZED VIEW per_day;\n\
         SELECT day, sum(v) FROM events GROUP BY day ORDER BY day;",
        new_file.display()
    );
    let out = mvrewrite()
        .args(["shell", "--data", &data.display().to_string()])
        .write_stdin(script)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains(": events"), "{stderr}");
    let answers: Vec<&str> = stdout
        .split("time:")
        .filter(|part| part.contains("| day"))
        .collect();
    assert_eq!(answers.len(), 3, "{stdout}");
    assert!(answers[0].contains("answered by per_day"), "{}", answers[0]);
    assert!(
        answers[1].contains("answered by per_day")
            && answers[1].contains("in parts: per_day answers the rows where")
            && answers[1].contains("changed, so read from the tables where the query reads them: events.day = 2024-03-03")
            && answers[1].contains("| 2024-03-03 | 7 "),
        "{}",
        answers[1]
    );
    assert!(
        answers[2].contains("answered by per_day")
            && !answers[2].contains("in parts")
            && answers[2].contains("| 2024-03-03 | 7 "),
        "{}",
        answers[2]
    );
}

/// The README's first command on a small table: its events are written as day-partitioned
/// Parquet files, every query agrees with plain DataFusion, and a day added by another writer
/// makes the MVs stale until they are refreshed.
#[test]
fn demo_runs_on_partitioned_parquet_and_sees_another_writer() {
    let dir = inputs("demo");
    let (ok, out, err) = run(&[
        "demo",
        "--rows",
        "20000",
        "--dir",
        &dir.display().to_string(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("90 day-partitioned Parquet files"), "{out}");
    let days = std::fs::read_dir(dir.join("events")).unwrap().count();
    assert_eq!(days, 91, "90 generated days and the one added");
    assert!(!out.contains("same result: NO"), "{out}");
    assert_eq!(out.matches("same result: yes").count(), 8, "{out}");
    assert!(
        out.contains("events: 1 file added since event_summary was computed"),
        "{out}"
    );
    let after_refresh = out.split("refreshed hourly_stats").nth(1).unwrap_or("");
    assert!(
        after_refresh.contains("answered from event_summary"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `rewrite --schema` takes DataFusion's `CREATE EXTERNAL TABLE`: with its columns declared,
/// on a location this process cannot reach (no data is read), and Hive partitions.
#[test]
fn rewrite_reads_external_tables_from_the_schema_file() {
    let dir = inputs("external");
    std::fs::write(
        dir.join("external.sql"),
        "CREATE EXTERNAL TABLE events (kind VARCHAR, v BIGINT, day VARCHAR)
           STORED AS PARQUET PARTITIONED BY (day) LOCATION 's3://bucket/events/';",
    )
    .unwrap();
    std::fs::write(
        dir.join("per_day.sql"),
        "CREATE MATERIALIZED VIEW per_day AS SELECT day, kind, sum(v) AS s FROM events GROUP BY day, kind;",
    )
    .unwrap();
    let (ok, out, err) = run(&[
        "rewrite",
        "--schema",
        &dir.join("external.sql").display().to_string(),
        "--mvs",
        &dir.join("per_day.sql").display().to_string(),
        "SELECT day, sum(v) FROM events GROUP BY day",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("-- rewritten to read per_day"), "{out}");
    assert!(out.contains("FROM per_day GROUP BY"), "{out}");
}

/// `shell --store` over a Parquet table made with `CREATE EXTERNAL TABLE` in the script: the MV
/// comes back in the next run, fresh; a file another writer adds between two runs makes it
/// come back stale, answered from the files until refreshed.
#[test]
fn shell_store_sees_a_parquet_file_added_between_runs() {
    let dir = inputs("parquet-store");
    let events = dir.join("events");
    let store = dir.join("mvs");
    let _ = std::fs::remove_dir_all(&events);
    let _ = std::fs::remove_dir_all(&store);
    let write = |file: &str, first: i64| {
        let sql = format!(
            "COPY (SELECT value % 2 AS k, value AS v FROM generate_series({first}, {})) TO '{}' STORED AS PARQUET",
            first + 99,
            events.join(file).display()
        );
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let other = datafusion::prelude::SessionContext::new();
            other.sql(&sql).await.unwrap().collect().await.unwrap();
        });
    };
    write("part-0.parquet", 1);
    let create = format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/';\n",
        events.display()
    );
    let query = "SELECT k, sum(v) FROM events GROUP BY k ORDER BY k;\n";
    let shell = |script: String| {
        let out = mvrewrite()
            .args(["shell", "--store", &store.display().to_string()])
            .write_stdin(script)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap()
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let first = shell(format!(
        "{create}CREATE MATERIALIZED VIEW sums AS SELECT k, sum(v) AS s FROM events GROUP BY k;\n{query}"
    ));
    assert!(first.contains("answered by sums"), "{first}");
    let second = shell(format!("{create}{query}"));
    assert!(second.contains("answered by sums"), "{second}");
    assert!(second.contains("| 1 | 2500 "), "{second}");

    write("part-1.parquet", 101);
    let third = shell(format!(
        "{create}{query}REFRESH MATERIALIZED VIEW sums;\n{query}"
    ));
    // Each statement's output follows its time: the query, the refresh, the query again.
    let answers: Vec<&str> = third.split("time:").skip(1).collect();
    assert!(
        answers[0].contains("answered from the base tables")
            && answers[0].contains("events: 1 file added since sums was computed")
            && answers[0].contains("| 1 | 10000 "),
        "{third}"
    );
    assert!(
        answers[1].contains("incremental") && answers[2].contains("answered by sums"),
        "{third}"
    );
    assert!(answers[2].contains("| 1 | 10000 "), "{third}");
}
