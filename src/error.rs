//! Typed errors. Rewriting itself never fails a query: these come from registration and from
//! the standalone API's inputs.

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum MvError {
    #[error("SQL parse error: {0}")]
    Parse(String),
    #[error("unknown table '{0}'")]
    UnknownTable(String),
    #[error("unknown column '{0}'")]
    UnknownColumn(String),
    #[error("materialized view '{0}' already exists")]
    DuplicateMv(String),
    #[error("materialized view '{0}' does not exist")]
    UnknownMv(String),
    #[error("'{name}' is already a table; a materialized view needs a name of its own")]
    NameTaken { name: String },
    #[error("expected {expected}, got: {got}")]
    UnexpectedStatement { expected: &'static str, got: String },
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("materialized view '{name}' is read by {}; drop them first or use DROP MATERIALIZED VIEW {name} CASCADE", dependents.join(", "))]
    HasDependents {
        name: String,
        dependents: Vec<String>,
    },
    #[error("materialized view '{0}' would read itself through other materialized views")]
    Cycle(String),
    /// A write succeeded (do not repeat it), but refreshing an on-commit MV after it failed:
    /// that MV is stale until a refresh succeeds.
    #[error(
        "the write to {table} was made, but refreshing its on-commit MVs failed (they stay stale): {error}"
    )]
    RefreshAfterWrite { table: String, error: Box<MvError> },
    /// Reading or writing the data directory failed; what was stored before is intact.
    #[error("storage: {0}")]
    Storage(String),
    /// A command-line input that cannot be used (unreadable file, unknown option value).
    #[error("{0}")]
    Input(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    DataFusion(DataFusionError),
}

impl From<datafusion::arrow::error::ArrowError> for MvError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        MvError::DataFusion(e.into())
    }
}

impl From<DataFusionError> for MvError {
    /// Lifts DataFusion's planning errors about missing tables and columns into typed variants.
    fn from(e: DataFusionError) -> Self {
        use datafusion::common::SchemaError;
        match e.find_root() {
            DataFusionError::SchemaError(err, _) => match err.as_ref() {
                SchemaError::FieldNotFound { field, .. } => {
                    MvError::UnknownColumn(field.to_string())
                }
                _ => MvError::DataFusion(e),
            },
            DataFusionError::SQL(p, _) => MvError::Parse(p.to_string()),
            DataFusionError::Plan(msg) if msg.starts_with("table") && msg.contains("not found") => {
                let name = msg.split('\'').nth(1).unwrap_or(msg).to_string();
                MvError::UnknownTable(name)
            }
            _ => MvError::DataFusion(e),
        }
    }
}

pub type Result<T, E = MvError> = std::result::Result<T, E>;
