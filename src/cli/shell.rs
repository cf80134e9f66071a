//! `mvrewrite shell`: SQL on the crate's session. Interactive (line editing and history) on a
//! terminal, otherwise it runs the statements it reads. Each query prints its rows, the MV
//! that answered it (or why none did) and the time it took.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::logical_expr::LogicalPlan;

use crate::error::{MvError, Result};
use crate::frontend::rewrite::split_statements;
use crate::frontend::sql::{MvStatement, parse_mv_statement, standard_sql};
use crate::lifecycle::MvSession;
use crate::lifecycle::progress::{Progress, ProgressSink};

/// Rows printed per result; the count says how many there were.
const SHOWN_ROWS: usize = 40;

/// Registers the tables in `dir`: each Parquet, CSV or JSON file as a table named after the
/// file, and each subdirectory as a table over the files in it (named after the directory, in
/// the format of the first file found; Hive-style `key=value` directories become partition
/// columns), or as a Delta table when it holds a `_delta_log/`. They are external tables, so MVs
/// over them see other writers' files (a Delta table's new versions).
pub async fn load_data(session: &MvSession, dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| MvError::Input(format!("cannot read {}: {e}", dir.display())))?;
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut names = Vec::new();
    for path in paths {
        let (name, format, location) = if path.join("_delta_log").is_dir() {
            // A Delta table: its log says which of its files are the table (built without
            // the `delta` feature, DataFusion says it has no factory for DELTA).
            let name = path.file_name().and_then(|s| s.to_str());
            (name, "DELTA", path.display().to_string())
        } else if path.is_dir() {
            let Some(format) = first_format(&path) else {
                continue;
            };
            let name = path.file_name().and_then(|s| s.to_str());
            (name, format, format!("{}/", path.display()))
        } else {
            let Some(format) = format_of(&path) else {
                continue;
            };
            let name = path.file_stem().and_then(|s| s.to_str());
            (name, format, path.display().to_string())
        };
        let Some(name) = name else {
            continue;
        };
        let options = if format == "CSV" {
            " OPTIONS ('format.has_header' 'true')"
        } else {
            ""
        };
        let location = location.replace('\'', "''");
        let sql = format!(
            "CREATE EXTERNAL TABLE \"{name}\" STORED AS {format} LOCATION '{location}'{options}"
        );
        // On the context: the shell restores the kept MVs after loading, and says which.
        session.context().sql(&sql).await?.collect().await?;
        names.push(name.to_string());
    }
    Ok(names)
}

/// The format DataFusion reads a file in, by its extension.
fn format_of(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "parquet" => Some("PARQUET"),
        "csv" => Some("CSV"),
        "json" | "ndjson" => Some("JSON"),
        _ => None,
    }
}

/// The format of the first file found under `dir` (depth first, in name order).
fn first_format(dir: &Path) -> Option<&'static str> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.iter().find_map(|p| {
        if p.is_dir() {
            first_format(p)
        } else {
            format_of(p)
        }
    })
}

/// Runs one statement and describes what happened.
pub async fn run_statement(session: &MvSession, sql: &str) -> Result<String> {
    let started = Instant::now();
    session.clear_report();
    let df = session.sql(sql).await?;
    let is_query = !matches!(
        df.logical_plan(),
        LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) | LogicalPlan::EmptyRelation(_)
    );
    let batches = df.collect().await?;
    let elapsed = started.elapsed();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut out = String::new();
    if batches.iter().any(|b| b.num_columns() > 0) {
        let mut shown = Vec::new();
        let mut left = SHOWN_ROWS;
        for b in &batches {
            let n = b.num_rows().min(left);
            shown.push(b.slice(0, n));
            left -= n;
        }
        out.push_str(&pretty_format_batches(&shown)?.to_string());
        out.push('\n');
        let more = if rows > SHOWN_ROWS {
            format!(" ({SHOWN_ROWS} shown)")
        } else {
            String::new()
        };
        out.push_str(&format!("{rows} rows{more}\n"));
    }
    if let Some(report) = session.last_report().filter(|_| is_query) {
        let used = report.used_mvs();
        if used.is_empty() {
            out.push_str("answered from the base tables\n");
            for line in report
                .to_string()
                .lines()
                .filter(|l| !l.starts_with("e-graph"))
            {
                out.push_str(&format!("  {line}\n"));
            }
        } else {
            out.push_str(&format!("answered by {}\n", used.join(", ")));
            // Which rows came from the tables (parts, partitions changed since an MV was
            // computed), and stale MVs that answered.
            for line in report.parts.iter().map(|p| format!("in parts: {p}")) {
                out.push_str(&format!("  {line}\n"));
            }
            for line in report.notes.iter().map(|n| format!("note: {n}")) {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    if let Some(stored) = stored_at(session, sql)? {
        out.push_str(&stored);
    }
    out.push_str(&format!("time: {:.3} s\n", elapsed.as_secs_f64()));
    Ok(out)
}

/// Where an MV created or refreshed by `sql` is kept, when the session has a store: the
/// generation directory another engine reads it at.
fn stored_at(session: &MvSession, sql: &str) -> Result<Option<String>> {
    let name = match parse_mv_statement(&standard_sql(sql)) {
        Ok(Some(MvStatement::Create(create))) => create.name,
        Ok(Some(MvStatement::Refresh { name })) => name,
        _ => return Ok(None),
    };
    Ok(session
        .mv_location(&name)?
        .map(|at| format!("{name} stored at {at}\n")))
}

/// Runs every statement of `script`, printing results and errors; the number of errors.
pub async fn run_script(session: &MvSession, script: &str, out: &mut impl Write) -> usize {
    let statements = match split_statements(script) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return 1;
        }
    };
    let mut errors = 0;
    for statement in statements {
        match run_statement(session, &statement).await {
            Ok(text) => {
                let _ = write!(out, "{text}");
            }
            Err(e) => {
                errors += 1;
                let _ = writeln!(out, "error: {}", one_line(&e.to_string()));
            }
        }
    }
    errors
}

/// The interactive loop: a statement ends with `;`; `\q` or end of input quits.
pub async fn interactive(session: &MvSession) -> Result<()> {
    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| MvError::Input(format!("cannot start line editing: {e}")))?;
    let history = std::env::var_os("HOME").map(|h| Path::new(&h).join(".mvrewrite_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() {
            "mvrewrite> "
        } else {
            "      ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(_) => break,
        };
        if pending.is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
            break;
        }
        pending.push_str(&line);
        pending.push('\n');
        if !line.trim_end().ends_with(';') {
            continue;
        }
        let _ = editor.add_history_entry(pending.trim());
        let mut stdout = std::io::stdout();
        run_script(session, &pending, &mut stdout).await;
        pending.clear();
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

/// Reads a whole script from stdin (when it is not a terminal) and runs it.
pub async fn from_stdin(session: &MvSession, out: &mut impl Write) -> usize {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return 0;
    }
    let script: String = stdin
        .lock()
        .lines()
        .map_while(std::result::Result::ok)
        .map(|l| l + "\n")
        .collect();
    run_script(session, &script, out).await
}

/// Errors on one line: DataFusion's multi-line contexts joined.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Progress of long refreshes on stderr, one line rewritten in place, as the demo's data
/// generation shows it: nothing for one shorter than a second.
pub fn progress_on_stderr() -> ProgressSink {
    ProgressSink {
        every: Duration::from_secs(1),
        report: Arc::new(|progress: &Progress| {
            if progress.done {
                eprintln!("\r{progress}");
            } else {
                eprint!("\r{progress}");
            }
        }),
    }
}
