//! Statement dispatch: every statement a client sends runs through [`MvSession::sql`] (so MV
//! statements work and queries are rewritten). A statement is a query, planned again and
//! streamed when the client fetches it, or a change (a write, DDL, an MV statement, `SET`),
//! which runs at once, once, and which a read-only client may not send.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use datafusion::scalar::ScalarValue;
use tonic::Status;

use crate::error::MvError;
use crate::frontend::sql::{mv_statement, standard_sql};
use crate::lifecycle::MvSession;
use crate::serve::auth::Role;

/// What a statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reads only: runs when fetched, as many times as fetched.
    Query,
    /// Writes, creates, refreshes, drops or sets something: runs once, when sent.
    Change,
}

/// DataFusion's plan of `sql` (planning runs nothing), or `None` for an MV statement, which
/// only the session reads.
async fn plan(session: &MvSession, sql: &str) -> Result<Option<LogicalPlan>, Status> {
    let sql = standard_sql(sql);
    if mv_statement(&sql).map_err(to_status)?.is_some() {
        return Ok(None);
    }
    let plan = session.logical_plan(&sql).await.map_err(to_status)?;
    Ok(Some(plan))
}

/// The kind of `sql`, found by planning it.
pub(crate) async fn kind(session: &MvSession, sql: &str) -> Result<Kind, Status> {
    Ok(match plan(session, sql).await? {
        Some(plan) if !changes_something(&plan) => Kind::Query,
        _ => Kind::Change,
    })
}

/// A plan holding DML, DDL, `COPY` or a statement (`SET`, transactions, `PREPARE`) anywhere,
/// subqueries and `EXPLAIN ANALYZE` included.
fn changes_something(plan: &LogicalPlan) -> bool {
    let mut found = false;
    // The closure never fails.
    let _ = plan.apply_with_subqueries(|node| {
        found = matches!(
            node,
            LogicalPlan::Dml(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Copy(_)
                | LogicalPlan::Statement(_)
        );
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Refuses a change to a read-only client.
pub(crate) fn allow(role: Role, kind: Kind) -> Result<(), Status> {
    match (role, kind) {
        (Role::ReadOnly, Kind::Change) => Err(Status::permission_denied(
            "read-only: this client may query, but not write, create, refresh, drop or set",
        )),
        _ => Ok(()),
    }
}

/// Runs `sql` through the session with `params` bound: a query's rows are not computed until
/// the data frame is executed.
pub(crate) async fn run(
    session: &MvSession,
    sql: &str,
    params: Option<ParamValues>,
) -> Result<DataFrame, Status> {
    session
        .sql_with_params(sql, params)
        .await
        .map_err(to_status)
}

/// Runs a change and collects what it returns (a count, a refresh's rows: small).
pub(crate) async fn run_change(
    session: &MvSession,
    sql: &str,
    params: Option<ParamValues>,
) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
    let frame = run(session, sql, params).await?;
    let schema = schema_of(&frame);
    let batches = frame.collect().await.map_err(|e| to_status(e.into()))?;
    Ok((schema, batches))
}

/// The rows a change reports as its count: DataFusion's `count` column when it returns one,
/// otherwise the rows it returned.
pub(crate) fn changed_rows(batches: &[RecordBatch]) -> i64 {
    let count = batches.first().and_then(|b| {
        let column = b.column_by_name("count")?;
        match ScalarValue::try_from_array(column, 0).ok()? {
            ScalarValue::UInt64(Some(n)) => i64::try_from(n).ok(),
            ScalarValue::Int64(Some(n)) => Some(n),
            _ => None,
        }
    });
    count.unwrap_or_else(|| {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        i64::try_from(rows).unwrap_or(i64::MAX)
    })
}

/// The schema a data frame's rows are announced and sent with: the logical one, which the
/// `FlightInfo` promised (a physical batch may differ in nullability only).
pub(crate) fn schema_of(frame: &DataFrame) -> SchemaRef {
    Arc::new(frame.schema().as_arrow().clone())
}

/// The parameters a statement takes (`$1`, `$2`, .. in order), as a schema: what a prepared
/// statement tells its client to bind.
pub(crate) async fn parameter_schema(session: &MvSession, sql: &str) -> Result<Schema, Status> {
    let Some(plan) = plan(session, sql).await? else {
        return Ok(Schema::empty());
    };
    let types = plan
        .get_parameter_types()
        .map_err(|e| to_status(e.into()))?;
    let mut names: Vec<_> = types.into_iter().collect();
    // `$10` after `$9`.
    names.sort_by_key(|(name, _)| {
        name.trim_start_matches('$')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let fields = names
        .into_iter()
        .map(|(name, data_type)| Field::new(name, data_type.unwrap_or(DataType::Null), true));
    Ok(Schema::new(fields.collect::<Vec<_>>()))
}

/// A client's parameter rows, each as the values of `$1`, `$2`, .. in column order, cast to
/// the types the statement expects (a Python or Java integer arrives as a 64-bit one).
pub(crate) async fn parameter_rows(
    session: &MvSession,
    sql: &str,
    batches: &[RecordBatch],
) -> Result<Vec<ParamValues>, Status> {
    let expected = parameter_schema(session, sql).await?;
    let mut rows = Vec::new();
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, column)| match expected.fields().get(i) {
                Some(field)
                    if field.data_type() != &DataType::Null
                        && field.data_type() != column.data_type() =>
                {
                    cast(column, field.data_type())
                        .map_err(|e| Status::invalid_argument(format!("parameter ${}: {e}", i + 1)))
                }
                _ => Ok(Arc::clone(column)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let values = columns
                .iter()
                .map(|c| ScalarValue::try_from_array(c, row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Status::invalid_argument(format!("parameters: {e}")))?;
            rows.push(ParamValues::from(values));
        }
    }
    Ok(rows)
}

/// The Flight status for an error: the client's mistakes as invalid arguments, the rest as
/// internal errors, each with its message.
pub(crate) fn to_status(e: MvError) -> Status {
    let message = e.to_string();
    match e {
        MvError::Internal(_) | MvError::Storage(_) => Status::internal(message),
        MvError::DataFusion(ref d) if is_resources(d) => Status::resource_exhausted(message),
        _ => Status::invalid_argument(message),
    }
}

fn is_resources(e: &datafusion::error::DataFusionError) -> bool {
    matches!(
        e.find_root(),
        datafusion::error::DataFusionError::ResourcesExhausted(_)
    )
}
