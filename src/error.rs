//! Typed errors. Rewriting itself never fails a query: these come from registration and from
//! the standalone API's inputs.

use datafusion::error::DataFusionError;

/// Everything mvrewrite's API can fail with. Each variant names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum MvError {
    /// SQL that does not parse.
    #[error("SQL parse error: {0}")]
    Parse(String),
    /// A table no statement or registration defined.
    #[error("unknown table '{0}'")]
    UnknownTable(String),
    /// A column the table does not have.
    #[error("unknown column '{0}'")]
    UnknownColumn(String),
    /// `CREATE MATERIALIZED VIEW` of a name already registered (without `OR REPLACE`).
    #[error("materialized view '{0}' already exists")]
    DuplicateMv(String),
    /// An MV name that is not registered.
    #[error("materialized view '{0}' does not exist")]
    UnknownMv(String),
    /// An MV named like an existing table.
    #[error("'{name}' is already a table; a materialized view needs a name of its own")]
    NameTaken {
        /// The name asked for.
        name: String,
    },
    /// A statement of another kind than the call expects.
    #[error("expected {expected}, got: {got}")]
    UnexpectedStatement {
        /// What the call takes.
        expected: &'static str,
        /// The statement given.
        got: String,
    },
    /// A declared key over unknown columns, or a foreign key that references no unique key.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// `DROP MATERIALIZED VIEW` of an MV other MVs read, without `CASCADE`.
    #[error("materialized view '{name}' is read by {}; drop them first or use DROP MATERIALIZED VIEW {name} CASCADE", dependents.join(", "))]
    HasDependents {
        /// The MV to drop.
        name: String,
        /// The MVs that read it.
        dependents: Vec<String>,
    },
    /// An MV definition that would read itself through other MVs.
    #[error("materialized view '{0}' would read itself through other materialized views")]
    Cycle(String),
    /// A write succeeded (do not repeat it), but refreshing an on-commit MV after it failed:
    /// that MV is stale until a refresh succeeds.
    #[error(
        "the write to {table} was made, but refreshing its on-commit MVs failed (they stay stale): {error}"
    )]
    RefreshAfterWrite {
        /// The table written.
        table: String,
        /// Why the refresh failed.
        error: Box<MvError>,
    },
    /// Reading or writing the store failed (the message names the file); what was stored
    /// before is intact.
    #[error("storage: {0}")]
    Storage(String),
    /// An MV of a session whose plans run on a cluster, without a store: executors read MVs
    /// as Parquet files in the store, never from this process's memory.
    #[error(
        "materialized view {0}: a session on a cluster keeps MVs in a store (open it with a store) or executors could not read them"
    )]
    NoStoreOnCluster(String),
    /// A Delta Lake table that cannot be read: no log at its location, a corrupt log, a
    /// version it does not hold (the message names the table).
    #[error("Delta table {0}")]
    Delta(String),
    /// A command-line input that cannot be used (unreadable file, unknown option value).
    #[error("{0}")]
    Input(String),
    /// A defect in mvrewrite; the state before the call is kept.
    #[error("internal error: {0}")]
    Internal(String),
    /// An error from DataFusion (planning or execution).
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

/// `Result` with [`MvError`].
pub type Result<T, E = MvError> = std::result::Result<T, E>;
