//! The `mvrewrite` command-line tool: argument parsing only; the commands are in
//! `mvrewrite::cli` (and `mvrewrite::cli::demo`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mvrewrite::MvError;
use mvrewrite::cli::{self, Inputs, explain, shell};

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
        /// text (SQL, then the report as comments) or json (one object; schema in docs/cli.md).
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
        /// Run queries and MV computations on the Ballista cluster of this scheduler
        /// (df://host:port; `mvrewrite scheduler`); needs --store, on a path every executor
        /// reaches.
        #[cfg(feature = "ballista")]
        #[arg(long, requires = "store")]
        scheduler: Option<String>,
    },
    /// A Ballista scheduler that rewrites the plans clients send with the MVs of --store
    /// (which `mvrewrite shell --scheduler` creates and refreshes), over the tables of --data.
    #[cfg(feature = "ballista")]
    #[command(
        after_help = "Example:\n  mvrewrite scheduler --data ./data --store ./mvs --bind 127.0.0.1:50050"
    )]
    Scheduler {
        /// A directory of tables, as for `shell` (the clients' tables, at the same paths).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The store the clients keep MVs in (followed: read, never written).
        #[arg(long)]
        store: PathBuf,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
    },
    /// A Ballista executor with mvrewrite's functions (CarbonData and ClickHouse time
    /// buckets), serving the scheduler at --scheduler-host:--scheduler-port.
    #[cfg(feature = "ballista")]
    #[command(
        after_help = "Example:\n  mvrewrite executor --port 50051 --grpc-port 50052\n  mvrewrite executor --port 50053 --grpc-port 50054"
    )]
    Executor {
        /// The scheduler's host.
        #[arg(long, default_value = "127.0.0.1")]
        scheduler_host: String,
        /// The scheduler's port.
        #[arg(long, default_value_t = 50050)]
        scheduler_port: u16,
        /// The host to bind, which the scheduler and other executors reach it at.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// The port of its Flight service (shuffle data).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// The port of its gRPC service.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Task slots (cores used).
        #[arg(long, default_value_t = 2)]
        slots: usize,
        /// Where shuffle files go (a temporary directory by default).
        #[arg(long)]
        work_dir: Option<String>,
    },
    /// Serve a rewriting session over Arrow Flight SQL (JDBC, ADBC, Python): the tables of
    /// --data, the MVs kept in --store, every statement the shell takes. Every request needs
    /// a token (or a user's handshake); read-only tokens and users may only query.
    #[cfg(feature = "serve")]
    #[command(
        after_help = "Example:\n  MVREWRITE_TOKEN=s3cret mvrewrite serve --data ./data --store ./mvs --listen 127.0.0.1:50051"
    )]
    Serve {
        /// A directory of tables, as for `shell`.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Keep MVs in this directory and restore those kept there, as for `shell`.
        #[arg(long)]
        store: Option<PathBuf>,
        /// The address to listen on (port 0: any free port, printed on stdout).
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        /// A bearer token that may do everything (prefer the environment: flags show in `ps`).
        #[arg(long, env = "MVREWRITE_TOKEN", hide_env_values = true)]
        token: Vec<String>,
        /// A bearer token that may only query.
        #[arg(long, env = "MVREWRITE_READ_ONLY_TOKEN", hide_env_values = true)]
        read_only_token: Vec<String>,
        /// NAME:PASSWORD of a user that may do everything (a handshake hands out a token);
        /// in the environment, users separated by commas.
        #[arg(
            long,
            env = "MVREWRITE_USERS",
            hide_env_values = true,
            value_delimiter = ','
        )]
        user: Vec<String>,
        /// NAME:PASSWORD of a user that may only query.
        #[arg(
            long,
            env = "MVREWRITE_READ_ONLY_USERS",
            hide_env_values = true,
            value_delimiter = ','
        )]
        read_only_user: Vec<String>,
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
        #[cfg(not(feature = "ballista"))]
        Command::Shell { data, file, store } => {
            runtime.block_on(run_shell(data, file, store, None))
        }
        #[cfg(feature = "ballista")]
        Command::Shell {
            data,
            file,
            store,
            scheduler,
        } => runtime.block_on(run_shell(data, file, store, scheduler)),
        #[cfg(feature = "ballista")]
        Command::Scheduler { data, store, bind } => runtime
            .block_on(cli::cluster::run_scheduler(data, store, bind))
            .map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "ballista")]
        Command::Executor {
            scheduler_host,
            scheduler_port,
            bind_host,
            port,
            grpc_port,
            slots,
            work_dir,
        } => runtime
            .block_on(cli::cluster::run_executor(
                mvrewrite::cluster::executor::ExecutorOptions {
                    scheduler: (scheduler_host, scheduler_port),
                    bind: (bind_host, port),
                    grpc_port,
                    slots,
                    work_dir,
                },
            ))
            .map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "serve")]
        Command::Serve {
            data,
            store,
            listen,
            token,
            read_only_token,
            user,
            read_only_user,
        } => {
            let credentials = cli::serve::Credentials {
                tokens: token,
                read_only_tokens: read_only_token,
                users: user,
                read_only_users: read_only_user,
            };
            runtime
                .block_on(async {
                    let session =
                        cli::open_session(data.as_deref(), store.as_deref(), None).await?;
                    cli::serve::run(session, listen, &credentials).await
                })
                .map(|()| ExitCode::SUCCESS)
        }
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
    scheduler: Option<String>,
) -> Result<ExitCode, MvError> {
    let session =
        cli::open_session(data.as_deref(), store.as_deref(), scheduler.as_deref()).await?;
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
