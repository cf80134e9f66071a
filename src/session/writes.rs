//! Writes to base tables through the session: each one moves the table's version on
//! (`crate::freshness`), so the MVs computed from an older one are stale, and refreshes the
//! on-commit MVs that read it. An `INSERT` (or [`MvSession::append`]) keeps the rows it added,
//! which incremental refresh reads.

use std::sync::Arc;

use datafusion::arrow::array::UInt64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, LogicalPlanBuilder, WriteOp};

use super::MvSession;
use crate::error::{MvError, Result};
use crate::freshness::Change;

impl MvSession {
    /// Registers in-memory data as a base table and records its row count for costing.
    /// Replacing a table is a write: MVs over it are stale (on-commit ones are refreshed).
    pub async fn register_batches(&self, name: &str, batches: Vec<RecordBatch>) -> Result<()> {
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| MvError::Internal(format!("no data for table {name}")))?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let table = MemTable::try_new(schema, vec![batches])?;
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, Arc::new(table))?;
        self.write_catalog()?.set_table_rows(name, rows);
        self.written(name, Change::Rewrite("replaced".into())).await
    }

    /// Appends rows to a base table (what `INSERT INTO table ...` does through
    /// [`MvSession::sql`]) and returns how many. MVs over it become stale; their next refresh
    /// can compute from these rows alone.
    pub async fn append(&self, table: &str, batches: Vec<RecordBatch>) -> Result<u64> {
        if self.read_catalog()?.contains(table) {
            return Err(MvError::Input(format!(
                "{table} is a materialized view: it changes only by REFRESH"
            )));
        }
        let target = self.ctx.table_provider(table).await?;
        let schema = target.schema();
        // The table's own schema (names, nullability), which the writes log keeps.
        let rows = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let count: u64 = rows.iter().map(|b| b.num_rows() as u64).sum();
        let source = MemTable::try_new(Arc::clone(&schema), vec![rows.clone()])?;
        let new_rows =
            LogicalPlanBuilder::scan("__mvr_appended", provider_as_source(Arc::new(source)), None)?
                .build()?;
        let insert = LogicalPlanBuilder::insert_into(
            new_rows,
            table,
            provider_as_source(target),
            InsertOp::Append,
        )?
        .build()?;
        self.ctx
            .execute_logical_plan(insert)
            .await?
            .collect()
            .await?;
        {
            let mut catalog = self.write_catalog()?;
            // Row counts are statistics for costing: kept up to date where they are known.
            if let Some(before) = catalog.table_rows(table) {
                catalog.set_table_rows(table, before + count);
            }
        }
        self.written(table, Change::Append(rows)).await?;
        Ok(count)
    }

    /// Runs a planned statement: an `INSERT INTO` is an append; other writes (`UPDATE`,
    /// `DELETE`, `INSERT OVERWRITE`, `CREATE OR REPLACE TABLE`, `DROP TABLE`) change their table
    /// as a whole. Writes made on `context()` directly are not seen: see the README.
    pub(super) async fn run_plan(&self, plan: LogicalPlan) -> Result<DataFrame> {
        let table = match &plan {
            LogicalPlan::Dml(dml) if dml.op == WriteOp::Insert(InsertOp::Append) => {
                let rows = self
                    .ctx
                    .execute_logical_plan(dml.input.as_ref().clone())
                    .await?
                    .collect()
                    .await?;
                let count = self.append(dml.table_name.table(), rows).await?;
                return Ok(self.ctx.read_batch(count_batch(count)?)?);
            }
            LogicalPlan::Dml(dml) => {
                let what = match dml.op {
                    WriteOp::Delete => "deleted from",
                    WriteOp::Update => "updated",
                    _ => "overwritten",
                };
                Some((dml.table_name.table().to_string(), what))
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(c)) if c.or_replace => {
                Some((c.name.table().to_string(), "replaced"))
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(d)) => {
                Some((d.name.table().to_string(), "dropped"))
            }
            _ => None,
        };
        let Some((table, what)) = table else {
            return Ok(self.ctx.execute_logical_plan(plan).await?);
        };
        if self.read_catalog()?.contains(&table) {
            return Err(MvError::Input(format!(
                "{table} is a materialized view: it changes only by REFRESH"
            )));
        }
        // The version moves before the write runs: should it fail midway, MVs over the table
        // are stale rather than wrong.
        self.write_catalog()?
            .record_write(&table, Change::Rewrite(what.into()));
        self.save()?;
        // A write runs now, so that the MVs refreshed on commit see it.
        let done = self.ctx.execute_logical_plan(plan).await?.collect().await?;
        self.refresh_on_commit(&table).await?;
        Ok(self.ctx.read_batches(done)?)
    }

    /// Records a write to `table` and refreshes the on-commit MVs that read it.
    async fn written(&self, table: &str, change: Change) -> Result<()> {
        self.write_catalog()?.record_write(table, change);
        self.save()?;
        self.refresh_on_commit(table).await
    }
}

/// What DataFusion's `INSERT` returns: the number of rows written.
fn count_batch(count: u64) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(UInt64Array::from(vec![count]))],
    )?)
}
