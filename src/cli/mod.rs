//! The command-line tool's commands, as functions the binary (`src/bin/mvrewrite.rs`) calls
//! and the tests drive: `rewrite` and `explain` over a schema file, an MV file and a query
//! (no data needed: [`Rewriter`] plans against schemas), and `shell` over a live session; `demo` the README's first command.
//!
//! May use every stage (the top of the tree). Used by the binary only.

#[cfg(feature = "ballista")]
pub mod cluster;
pub mod demo;
pub mod explain;
#[cfg(feature = "serve")]
pub mod serve;
pub mod shell;

use std::path::{Path, PathBuf};

use datafusion::sql::sqlparser::dialect as parse;
use datafusion::sql::unparser::dialect as unparse;

use crate::error::{MvError, Result};
use crate::frontend::rewrite::{RewriteResult, Rewriter};
use crate::frontend::unparse::plan_sql;
use crate::lifecycle::MvSession;

/// The session `shell` and `serve` run: MVs kept in `store` (if given), its plans run on the
/// Ballista cluster of `scheduler` (if given), the tables of `data` registered, then the kept
/// MVs restored; progress and what was restored said on stderr.
pub async fn open_session(
    data: Option<&Path>,
    store: Option<&Path>,
    scheduler: Option<&str>,
) -> Result<MvSession> {
    let session = match store {
        Some(dir) => MvSession::with_data_dir(dir).await?,
        None => MvSession::new(),
    };
    let session = on_scheduler(session, scheduler).await?;
    session.on_progress(shell::progress_on_stderr());
    if let Some(dir) = data {
        let tables = shell::load_data(&session, dir).await?;
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
    Ok(session)
}

/// `session` with its plans run on the cluster of `scheduler`, if given.
#[cfg(feature = "ballista")]
async fn on_scheduler(session: MvSession, scheduler: Option<&str>) -> Result<MvSession> {
    match scheduler {
        Some(url) => crate::cluster::remote(session, url).await,
        None => Ok(session),
    }
}

/// `session`: a scheduler cannot be given without the `ballista` feature.
#[cfg(not(feature = "ballista"))]
async fn on_scheduler(session: MvSession, scheduler: Option<&str>) -> Result<MvSession> {
    match scheduler {
        Some(_) => Err(MvError::Input(
            "--scheduler needs mvrewrite built with the `ballista` feature".into(),
        )),
        None => Ok(session),
    }
}

/// What `rewrite` and `explain` read.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `CREATE TABLE` statements (and `ALTER TABLE .. ADD .. KEY`).
    pub schema: Option<PathBuf>,
    /// `CREATE MATERIALIZED VIEW` statements.
    pub mvs: Option<PathBuf>,
    /// The query, or the path of a file holding it.
    pub query: String,
}

impl Inputs {
    /// Plans the schema and MVs, then rewrites the query.
    pub fn rewrite(&self) -> Result<RewriteResult> {
        let mut rewriter = Rewriter::new();
        for file in [&self.schema, &self.mvs].into_iter().flatten() {
            let text = read(file)?;
            rewriter.execute(&text).map_err(|e| in_file(file, e))?;
        }
        let query = if Path::new(&self.query).is_file() {
            read(Path::new(&self.query))?
        } else {
            self.query.clone()
        };
        rewriter.rewrite_sql(query.trim().trim_end_matches(';'))
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| MvError::Input(format!("cannot read {}: {e}", path.display())))
}

/// Names the file an error comes from.
fn in_file(file: &Path, e: MvError) -> MvError {
    MvError::Input(format!("{}: {e}", file.display()))
}

/// The SQL dialects output can be written in: DataFusion's unparser dialects, each with the
/// sqlparser dialect that reads it back.
pub const DIALECTS: [&str; 7] = [
    "generic",
    "postgres",
    "mysql",
    "sqlite",
    "duckdb",
    "bigquery",
    "snowflake",
];

/// The rewritten plan as SQL in `dialect` (one of [`DIALECTS`]).
pub fn to_sql(result: &RewriteResult, dialect: &str) -> Result<String> {
    if result.sql.is_none() {
        return Err(MvError::Input(
            "DataFusion's unparser cannot write this plan as SQL; `mvrewrite explain` shows it"
                .to_string(),
        ));
    }
    let plan = &result.plan;
    let sql = match dialect {
        "generic" => plan_sql(plan, &unparse::DefaultDialect {}),
        "postgres" => plan_sql(plan, &unparse::PostgreSqlDialect {}),
        "mysql" => plan_sql(plan, &unparse::MySqlDialect {}),
        "sqlite" => plan_sql(plan, &unparse::SqliteDialect {}),
        "duckdb" => plan_sql(plan, &unparse::DuckDBDialect::new()),
        "bigquery" => plan_sql(plan, &unparse::BigQueryDialect {}),
        "snowflake" => plan_sql(plan, &unparse::SnowflakeDialect::new()),
        "clickhouse" | "spark" => {
            let backticks = unparse::CustomDialectBuilder::new()
                .with_identifier_quote_style('`')
                .build();
            plan_sql(plan, &backticks)
        }
        other => {
            return Err(MvError::Input(format!(
                "unknown dialect '{other}' (one of: {})",
                DIALECTS.join(", ")
            )));
        }
    };
    Ok(sql?.to_string())
}

/// The sqlparser dialect that reads [`to_sql`]'s output for `dialect`.
pub fn parser_dialect(dialect: &str) -> Option<Box<dyn parse::Dialect>> {
    Some(match dialect {
        "generic" => Box::new(parse::GenericDialect {}),
        "postgres" => Box::new(parse::PostgreSqlDialect {}),
        "mysql" => Box::new(parse::MySqlDialect {}),
        "sqlite" => Box::new(parse::SQLiteDialect {}),
        "duckdb" => Box::new(parse::DuckDbDialect {}),
        "bigquery" => Box::new(parse::BigQueryDialect {}),
        "snowflake" => Box::new(parse::SnowflakeDialect {}),
        "clickhouse" => Box::new(parse::ClickHouseDialect {}),
        "spark" => Box::new(parse::SparkSqlDialect {}),
        _ => return None,
    })
}

/// `rewrite`'s JSON: the report's JSON ([`crate::Report::to_json`]) with `rewritten` and `sql`.
pub fn to_json(result: &RewriteResult, sql: &str) -> serde_json::Value {
    let mut out = result.report.to_json();
    out["rewritten"] = result.rewritten.into();
    out["sql"] = sql.into();
    out
}

/// `rewrite`'s text: the SQL, then the report.
pub fn to_text(result: &RewriteResult, sql: &str) -> String {
    let verdict = if result.rewritten {
        format!("-- rewritten to read {}", result.used_mvs.join(", "))
    } else {
        "-- not rewritten".to_string()
    };
    let report: String = result
        .report
        .to_string()
        .lines()
        .map(|l| format!("-- {l}\n"))
        .collect();
    format!("{sql};\n{verdict}\n{report}")
}
