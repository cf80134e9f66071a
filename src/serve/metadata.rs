//! The metadata calls JDBC and ADBC clients make on connect and in their catalog browsers:
//! catalogs, schemas, tables with their Arrow schemas (MVs among them, as `MATERIALIZED
//! VIEW`), table types and the server's `SqlInfo`. Built with arrow-flight's builders, which
//! apply the clients' filter patterns.

use std::sync::Arc;

use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables, SqlInfo,
    SqlSupportedTransaction,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::TableType;
use tonic::Status;

use crate::lifecycle::MvSession;

/// The table type the tables' list gives MVs.
pub(crate) const MATERIALIZED_VIEW: &str = "MATERIALIZED VIEW";
const TABLE_TYPES: [&str; 4] = ["TABLE", "VIEW", MATERIALIZED_VIEW, "LOCAL TEMPORARY"];

fn arrow_status(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// `GetCatalogs`.
pub(crate) fn catalogs(
    session: &MvSession,
    query: CommandGetCatalogs,
) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    for name in session.context().catalog_names() {
        builder.append(name);
    }
    builder.build().map_err(arrow_status)
}

/// `GetDbSchemas`.
pub(crate) fn schemas(
    session: &MvSession,
    query: CommandGetDbSchemas,
) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    let ctx = session.context();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            builder.append(&catalog_name, schema_name);
        }
    }
    builder.build().map_err(arrow_status)
}

/// `GetTables`: every table of every schema, an MV as a `MATERIALIZED VIEW`.
pub(crate) async fn tables(
    session: &MvSession,
    query: CommandGetTables,
) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    let ctx = session.context();
    let state = ctx.state();
    let defaults = &state.config().options().catalog;
    let mvs = session.catalog();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let in_default =
                catalog_name == defaults.default_catalog && schema_name == defaults.default_schema;
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let Ok(Some(table)) = schema.table(&name).await else {
                    continue;
                };
                let is_mv = in_default
                    && mvs
                        .read()
                        .map_err(|_| Status::internal("MV catalog lock poisoned"))?
                        .contains(&name);
                let table_type = match (is_mv, table.table_type()) {
                    (true, _) => MATERIALIZED_VIEW,
                    (false, TableType::Base) => "TABLE",
                    (false, TableType::View) => "VIEW",
                    (false, TableType::Temporary) => "LOCAL TEMPORARY",
                };
                builder
                    .append(
                        &catalog_name,
                        &schema_name,
                        &name,
                        table_type,
                        &table.schema(),
                    )
                    .map_err(arrow_status)?;
            }
        }
    }
    builder.build().map_err(arrow_status)
}

/// `GetTableTypes`.
pub(crate) fn table_types(query: CommandGetTableTypes) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    for t in TABLE_TYPES {
        builder.append(t);
    }
    builder.build().map_err(arrow_status)
}

/// What `GetSqlInfo` answers: the server's name and versions, SQL without Substrait or
/// transactions.
pub(crate) fn sql_info() -> Result<Arc<SqlInfoData>, Status> {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "mvrewrite");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    info.append(SqlInfo::FlightSqlServerReadOnly, false);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    info.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    info.append(SqlInfo::FlightSqlServerCancel, false);
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.build().map(Arc::new).map_err(arrow_status)
}
