//! The `mvrewrite` command-line tool: argument parsing only; the commands are in
//! `mvrewrite::cli` (and `mvrewrite::cli::demo`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mvrewrite::cli::{self, Inputs, explain, shell};
use mvrewrite::{MvError, MvSession};

/// Answer SQL queries from materialized views: rewrite a query onto the MVs that can answer
/// it, explain why an MV was or was not used, or try it all in a SQL shell.
#[derive(Parser)]
#[command(name = "mvrewrite", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate events as day-partitioned Parquet files, register MVs, run queries with and
    /// without rewriting, then add a day of events as another writer would and refresh.
    #[command(after_help = "Example:\n  mvrewrite demo --rows 1000000 --dir /tmp/demo")]
    Demo {
        /// Rows of generated events.
        #[arg(long, default_value_t = 5_000_000)]
        rows: usize,
        /// Where to write the events' files (its `events/` subdirectory is replaced); a
        /// directory under the system's temporary directory by default.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the query rewritten onto the MVs (as SQL in a dialect) and the report.
    #[command(
        after_help = "Example:\n  mvrewrite rewrite --schema schema.sql --mvs mvs.sql \\\n    \"SELECT country, sum(price) FROM sales GROUP BY country\" --format json"
    )]
    Rewrite {
        #[command(flatten)]
        inputs: InputArgs,
        /// SQL dialect of the output: generic, postgres, mysql, sqlite, duckdb, bigquery, snowflake,
        /// clickhouse, spark.
        #[arg(long, default_value = "generic")]
        dialect: String,
        /// text (SQL, then the report as comments) or json (one object; schema in the README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show the original and rewritten plans side by side, and why each MV was (not) used.
    #[command(
        after_help = "Example:\n  mvrewrite explain --schema schema.sql --mvs mvs.sql query.sql"
    )]
    Explain {
        #[command(flatten)]
        inputs: InputArgs,
    },
    /// An SQL shell on a rewriting session: CREATE TABLE, CREATE MATERIALIZED VIEW, REFRESH
    /// MATERIALIZED VIEW, INSERT, queries and EXPLAIN. Reads statements from stdin or --file
    /// when not on a terminal.
    #[command(
        after_help = "Example:\n  echo \"CREATE TABLE t (a INT) AS VALUES (1), (2); SELECT sum(a) FROM t;\" | mvrewrite shell\n  mvrewrite shell --data ./data --store ./mvs"
    )]
    Shell {
        /// A directory of tables: each Parquet, CSV or JSON file a table named after it, each
        /// subdirectory a table over its files (Hive-style partitions read as columns), or a
        /// Delta table when it holds a _delta_log/ (with the `delta` feature).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Run the statements of this file, then exit.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Keep MVs (definitions, rows as Parquet, freshness) in this directory, and restore
        /// those kept there, after the --data tables are loaded.
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct InputArgs {
    /// A file of CREATE TABLE statements (and ALTER TABLE .. ADD PRIMARY/FOREIGN KEY).
    #[arg(long)]
    schema: Option<PathBuf>,
    /// A file of CREATE MATERIALIZED VIEW statements.
    #[arg(long)]
    mvs: Option<PathBuf>,
    /// The query, or a file holding it.
    query: String,
}

impl From<InputArgs> for Inputs {
    fn from(a: InputArgs) -> Self {
        Inputs {
            schema: a.schema,
            mvs: a.mvs,
            query: a.query,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let result = match args.command {
        Command::Demo { rows, dir } => runtime
            .block_on(mvrewrite::cli::demo::run(
                rows,
                &dir.unwrap_or_else(mvrewrite::cli::demo::default_dir),
                &mut std::io::stdout(),
            ))
            .map(|()| ExitCode::SUCCESS),
        Command::Rewrite {
            inputs,
            dialect,
            format,
        } => Inputs::from(inputs).rewrite().and_then(|result| {
            let sql = cli::to_sql(&result, &dialect)?;
            match format {
                Format::Text => print!("{}", cli::to_text(&result, &sql)),
                Format::Json => println!("{}", cli::to_json(&result, &sql)),
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::Explain { inputs } => Inputs::from(inputs).rewrite().map(|result| {
            print!("{}", explain::explain(&result));
            ExitCode::SUCCESS
        }),
        Command::Shell { data, file, store } => runtime.block_on(run_shell(data, file, store)),
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(&e.to_string()),
    }
}

async fn run_shell(
    data: Option<PathBuf>,
    file: Option<PathBuf>,
    store: Option<PathBuf>,
) -> Result<ExitCode, MvError> {
    let session = match &store {
        Some(dir) => MvSession::with_data_dir(dir)?,
        None => MvSession::new(),
    };
    session.on_progress(shell::progress_on_stderr());
    if let Some(dir) = data {
        let tables = shell::load_data(&session, &dir).await?;
        eprintln!("tables from {}: {}", dir.display(), tables.join(", "));
    }
    let restored = session.restore().await?;
    if !restored.restored.is_empty() {
        eprintln!(
            "materialized views restored: {}",
            restored.restored.join(", ")
        );
    }
    for (name, e) in &restored.failed {
        eprintln!(
            "materialized view {name} not restored yet (kept until what it reads is created): {}",
            shell::one_line(&e.to_string())
        );
    }
    let mut stdout = std::io::stdout();
    let errors = match file {
        Some(path) => {
            let script = std::fs::read_to_string(&path)
                .map_err(|e| MvError::Input(format!("cannot read {}: {e}", path.display())))?;
            shell::run_script(&session, &script, &mut stdout).await
        }
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            shell::interactive(&session).await?;
            0
        }
        None => shell::from_stdin(&session, &mut stdout).await,
    };
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One line on stderr, exit code 1.
fn fail(message: &str) -> ExitCode {
    eprintln!("error: {}", shell::one_line(message));
    ExitCode::FAILURE
}
