//! The MV statements mvrewrite adds to SQL, parsed with DataFusion's sqlparser.

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AlterTable, AlterTableOperation, CeilFloorKind, CreateTableOptions, DateTimeField, Expr, Ident,
    IndexColumn, ObjectType, SqlOption, Statement, TableConstraint, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::constraints::{DeclaredKey, ForeignKey};
use crate::catalog::files::FileListing;
use crate::catalog::freshness::Staleness;
use crate::error::{MvError, Result};

/// `sql` with the dialect spellings DataFusion does not plan replaced by ones it does:
/// Calcite's `FLOOR(ts TO HOUR)` becomes `date_trunc('hour', ts)`. The text is returned as is
/// when it has none (or does not parse: DataFusion then reports the error).
pub fn standard_sql(sql: &str) -> Cow<'_, str> {
    if !sql.to_ascii_lowercase().contains("floor") {
        return Cow::Borrowed(sql);
    }
    let Ok(mut statements) = Parser::parse_sql(&GenericDialect {}, sql) else {
        return Cow::Borrowed(sql);
    };
    let mut changed = false;
    for statement in &mut statements {
        let _ = visit_expressions_mut(statement, |e: &mut Expr| {
            if let Some(replacement) = floor_to_date_trunc(e) {
                *e = replacement;
                changed = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    if !changed {
        return Cow::Borrowed(sql);
    }
    let text: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
    Cow::Owned(text.join(";\n"))
}

/// `FLOOR(x TO unit)` as `date_trunc('unit', x)`, for the units `date_trunc` has.
fn floor_to_date_trunc(e: &Expr) -> Option<Expr> {
    let Expr::Floor {
        expr,
        field: CeilFloorKind::DateTimeField(field),
    } = e
    else {
        return None;
    };
    let unit = match field {
        DateTimeField::Year => "year",
        DateTimeField::Quarter => "quarter",
        DateTimeField::Month => "month",
        DateTimeField::Week(None) => "week",
        DateTimeField::Day => "day",
        DateTimeField::Hour => "hour",
        DateTimeField::Minute => "minute",
        DateTimeField::Second => "second",
        DateTimeField::Millisecond | DateTimeField::Milliseconds => "millisecond",
        DateTimeField::Microsecond | DateTimeField::Microseconds => "microsecond",
        _ => return None,
    };
    Parser::new(&GenericDialect {})
        .try_with_sql(&format!("date_trunc('{unit}', {expr})"))
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// `CREATE MATERIALIZED VIEW` / `DROP MATERIALIZED VIEW`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MvStatement {
    Create(CreateMv),
    Drop {
        names: Vec<String>,
        if_exists: bool,
        /// `CASCADE`: the MVs that read them are dropped too (otherwise that is an error).
        cascade: bool,
    },
    /// `REFRESH MATERIALIZED VIEW name`: recompute it from its definition.
    Refresh {
        name: String,
    },
    /// `SET mvrewrite.staleness = 'enforced' | 'stale_tolerated' | '<n> seconds'`: the
    /// session's staleness for MVs without their own.
    SetStaleness(Staleness),
    /// `SET mvrewrite.file_listing = 'watch' | 'always' | '<n> ms'`: when a listing of a table
    /// on files may stand for a query being planned.
    SetFileListing(FileListing),
    /// `ALTER TABLE t ADD PRIMARY KEY (..) | UNIQUE (..) | FOREIGN KEY (..) REFERENCES r (..)`:
    /// keys the rewriter may rely on (see [`crate::catalog::constraints`]).
    AddKeys(Vec<DeclaredKey>),
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
    /// `WITH (refresh = 'on_commit')`: refreshed after each write to its inputs through the
    /// session; otherwise (`'manual'`, the default) stale until `REFRESH`.
    pub on_commit: bool,
    /// `WITH (staleness = 'enforced' | 'stale_tolerated' | '<n> seconds')`: how stale it may
    /// be and still answer; without it, the session's setting.
    pub staleness: Option<Staleness>,
}

/// Reads `WITH (refresh = 'on_commit' | 'manual', staleness = ...)` into `create`; any other
/// option is an error.
fn read_options(options: &CreateTableOptions, create: &mut CreateMv) -> Result<()> {
    let options = match options {
        CreateTableOptions::None => return Ok(()),
        CreateTableOptions::With(o) => o,
        other => {
            return Err(MvError::UnexpectedStatement {
                expected: "WITH (refresh = .., staleness = ..)",
                got: other.to_string(),
            });
        }
    };
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(MvError::UnexpectedStatement {
                expected: "the MV options refresh and staleness",
                got: option.to_string(),
            });
        };
        let value = value.to_string().trim_matches('\'').to_ascii_lowercase();
        match key.value.to_ascii_lowercase().as_str() {
            "refresh" => {
                create.on_commit = match value.as_str() {
                    "on_commit" => true,
                    "manual" => false,
                    _ => {
                        return Err(MvError::UnexpectedStatement {
                            expected: "refresh = 'on_commit' or 'manual'",
                            got: format!("'{value}'"),
                        });
                    }
                };
            }
            "staleness" => {
                create.staleness =
                    Some(value.parse().map_err(|why| MvError::UnexpectedStatement {
                        expected: "staleness = 'enforced', 'stale_tolerated' or '<n> seconds'",
                        got: why,
                    })?);
            }
            _ => {
                return Err(MvError::UnexpectedStatement {
                    expected: "the MV options refresh and staleness",
                    got: option.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The MV statement `sql` is, `None` for a statement DataFusion takes: one sqlparser reads
/// that is not about MVs, and any it cannot read (DataFusion's own `CREATE EXTERNAL TABLE ...
/// PARTITIONED BY`, or a mistake, for DataFusion to report). An MV statement mvrewrite reads but
/// cannot take is an error.
pub fn mv_statement(sql: &str) -> Result<Option<MvStatement>> {
    match parse_mv_statement(sql) {
        Err(e @ MvError::UnexpectedStatement { .. }) if parses_as_one_statement(sql) => Err(e),
        Err(_) => Ok(None),
        parsed => parsed,
    }
}

/// Whether sqlparser reads `sql` as exactly one statement.
fn parses_as_one_statement(sql: &str) -> bool {
    Parser::parse_sql(&GenericDialect {}, sql).is_ok_and(|s| s.len() == 1)
}

/// Parses `sql` and returns the MV statement it is, or `None` for any other single statement.
pub fn parse_mv_statement(sql: &str) -> Result<Option<MvStatement>> {
    // sqlparser has no REFRESH MATERIALIZED VIEW (Postgres' spelling): read it here.
    let words: Vec<&str> = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    if let ["refresh" | "REFRESH" | "Refresh", m, v, name] = words.as_slice()
        && m.eq_ignore_ascii_case("materialized")
        && v.eq_ignore_ascii_case("view")
    {
        return Ok(Some(MvStatement::Refresh {
            name: normalize_name(name),
        }));
    }
    // Nor a setting of mvrewrite's own (DataFusion refuses unknown ones).
    if let Some(value) = setting(&words, "mvrewrite.staleness") {
        return value
            .parse()
            .map(|s| Some(MvStatement::SetStaleness(s)))
            .map_err(|why| MvError::UnexpectedStatement {
                expected: "SET mvrewrite.staleness = 'enforced' | 'stale_tolerated' | '<n> seconds'",
                got: why,
            });
    }
    if let Some(value) = setting(&words, "mvrewrite.file_listing") {
        return value
            .trim_matches('\'')
            .parse()
            .map(|l| Some(MvStatement::SetFileListing(l)))
            .map_err(|why| MvError::UnexpectedStatement {
                expected: "SET mvrewrite.file_listing = 'watch' | 'always' | '<n> ms'",
                got: why,
            });
    }
    let statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| MvError::Parse(e.to_string()))?;
    let [statement] = statements.as_slice() else {
        return Err(MvError::UnexpectedStatement {
            expected: "one SQL statement",
            got: format!("{} statements", statements.len()),
        });
    };
    Ok(match statement {
        Statement::CreateView(view) if view.materialized => {
            let mut create = CreateMv {
                name: normalize_name(&view.name.to_string()),
                columns: view.columns.iter().map(|c| c.name.value.clone()).collect(),
                query: view.query.to_string(),
                or_replace: view.or_replace,
                if_not_exists: view.if_not_exists,
                on_commit: false,
                staleness: None,
            };
            read_options(&view.options, &mut create)?;
            Some(MvStatement::Create(create))
        }
        Statement::Drop {
            object_type: ObjectType::MaterializedView,
            if_exists,
            names,
            cascade,
            ..
        } => Some(MvStatement::Drop {
            names: names
                .iter()
                .map(|n| normalize_name(&n.to_string()))
                .collect(),
            if_exists: *if_exists,
            cascade: *cascade,
        }),
        Statement::AlterTable(alter) => declared_keys(alter).map(MvStatement::AddKeys),
        _ => None,
    })
}

/// The value of `SET name = value` (or `SET name TO value`), when `words` set `name`.
fn setting(words: &[&str], name: &str) -> Option<String> {
    let ["set" | "SET" | "Set", setting, rest @ ..] = words else {
        return None;
    };
    let inline = setting.to_ascii_lowercase().strip_prefix(name)?.to_string();
    let value = format!("{inline} {}", rest.join(" "));
    let value = value.trim().trim_start_matches('=').trim();
    let value = value
        .strip_prefix("to ")
        .or_else(|| value.strip_prefix("TO "))
        .unwrap_or(value);
    Some(value.to_string())
}

/// The keys an `ALTER TABLE` adds, if it does nothing else (anything else is DataFusion's).
fn declared_keys(alter: &AlterTable) -> Option<Vec<DeclaredKey>> {
    let table = normalize_name(&alter.name.to_string());
    let ident = |i: &Ident| normalize_name(&i.to_string());
    let indexed = |cols: &[IndexColumn]| -> Option<Vec<String>> {
        cols.iter()
            .map(|c| match &c.column.expr {
                Expr::Identifier(i) => Some(ident(i)),
                _ => None,
            })
            .collect()
    };
    alter
        .operations
        .iter()
        .map(|op| match op {
            AlterTableOperation::AddConstraint { constraint, .. } => match constraint {
                TableConstraint::PrimaryKey(k) => Some(DeclaredKey::Unique {
                    table: table.clone(),
                    columns: indexed(&k.columns)?,
                }),
                TableConstraint::Unique(k) => Some(DeclaredKey::Unique {
                    table: table.clone(),
                    columns: indexed(&k.columns)?,
                }),
                TableConstraint::ForeignKey(k) => Some(DeclaredKey::Foreign(ForeignKey {
                    table: table.clone(),
                    columns: k.columns.iter().map(ident).collect(),
                    references: normalize_name(&k.foreign_table.to_string()),
                    referenced: k.referred_columns.iter().map(ident).collect(),
                })),
                _ => None,
            },
            _ => None,
        })
        .collect()
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
