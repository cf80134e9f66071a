//! The MV statements mvrewrite adds to SQL, parsed with DataFusion's sqlparser.

use datafusion::sql::sqlparser::ast::{ObjectType, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{MvError, Result};

/// `CREATE MATERIALIZED VIEW` / `DROP MATERIALIZED VIEW`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MvStatement {
    Create(CreateMv),
    Drop { names: Vec<String>, if_exists: bool },
}

/// `CREATE [OR REPLACE] MATERIALIZED VIEW [IF NOT EXISTS] name [(columns)] AS query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateMv {
    pub name: String,
    /// Output column names given after the MV name, if any.
    pub columns: Vec<String>,
    /// The defining query, as SQL.
    pub query: String,
    pub or_replace: bool,
    pub if_not_exists: bool,
}

/// Parses `sql` and returns the MV statement it is, or `None` for any other single statement.
pub fn parse_mv_statement(sql: &str) -> Result<Option<MvStatement>> {
    let statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| MvError::Parse(e.to_string()))?;
    let [statement] = statements.as_slice() else {
        return Err(MvError::UnexpectedStatement {
            expected: "one SQL statement",
            got: format!("{} statements", statements.len()),
        });
    };
    Ok(match statement {
        Statement::CreateView(view) if view.materialized => Some(MvStatement::Create(CreateMv {
            name: normalize_name(&view.name.to_string()),
            columns: view.columns.iter().map(|c| c.name.value.clone()).collect(),
            query: view.query.to_string(),
            or_replace: view.or_replace,
            if_not_exists: view.if_not_exists,
        })),
        Statement::Drop {
            object_type: ObjectType::MaterializedView,
            if_exists,
            names,
            ..
        } => Some(MvStatement::Drop {
            names: names
                .iter()
                .map(|n| normalize_name(&n.to_string()))
                .collect(),
            if_exists: *if_exists,
        }),
        _ => None,
    })
}

/// Parses a `CREATE MATERIALIZED VIEW` statement.
pub fn parse_create_mv(sql: &str) -> Result<CreateMv> {
    match parse_mv_statement(sql)? {
        Some(MvStatement::Create(c)) => Ok(c),
        _ => Err(MvError::UnexpectedStatement {
            expected: "CREATE MATERIALIZED VIEW",
            got: sql.trim().chars().take(60).collect(),
        }),
    }
}

/// Identifiers fold to lower case unless quoted, as DataFusion does.
fn normalize_name(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.to_string(),
        None => name.to_lowercase(),
    }
}
