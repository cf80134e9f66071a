//! Writes to base tables through the session: each one moves the table's version on
//! (`crate::catalog::freshness`), so the MVs computed from an older one are stale, and refreshes the
//! on-commit MVs that read it. An `INSERT` (or [`MvSession::append`]) keeps the rows it added,
//! which incremental refresh reads. Writes and refreshes hold the session's maintenance lock,
//! so that no refresh records a version its rows do not match.

use std::sync::Arc;

use datafusion::arrow::array::UInt64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, LogicalPlanBuilder, Statement, WriteOp};

use super::MvSession;
use crate::catalog::freshness::Change;
use crate::error::{MvError, Result};

impl MvSession {
    /// Registers in-memory data as a base table and records its row count for costing.
    /// Replacing a table is a write: MVs over it are stale (on-commit ones are refreshed).
    pub async fn register_batches(&self, name: &str, batches: Vec<RecordBatch>) -> Result<()> {
        let _maintenance = self.maintenance.lock().await;
        let table = TableReference::from(name);
        self.refuse_mv(table.table())?;
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| MvError::Internal(format!("no data for table {name}")))?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let provider = MemTable::try_new(schema, vec![batches])?;
        self.ctx.deregister_table(table.clone())?;
        self.ctx.register_table(table.clone(), Arc::new(provider))?;
        {
            let mut catalog = self.write_catalog()?;
            catalog.set_table_rows(table.table(), rows);
            catalog.forget_keys(table.table());
        }
        self.written(table.table(), Change::Rewrite("replaced".into()))
            .await
    }

    /// Appends rows to a base table (what `INSERT INTO table ...` does through
    /// [`MvSession::sql`]) and returns how many. MVs over it become stale; their next refresh
    /// can compute from these rows alone.
    pub async fn append(&self, table: &str, batches: Vec<RecordBatch>) -> Result<u64> {
        let _maintenance = self.maintenance.lock().await;
        self.append_rows(TableReference::from(table), batches).await
    }

    async fn append_rows(&self, table: TableReference, batches: Vec<RecordBatch>) -> Result<u64> {
        self.refuse_mv(table.table())?;
        let target = self.ctx.table_provider(table.clone()).await?;
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
            table.clone(),
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
            if let Some(before) = catalog.table_rows(table.table()) {
                catalog.set_table_rows(table.table(), before + count);
            }
        }
        self.written(table.table(), Change::Append(rows)).await?;
        Ok(count)
    }

    /// Runs a planned statement: an `INSERT INTO` is an append; every other write anywhere in
    /// the plan (`UPDATE`, `DELETE`, `INSERT OVERWRITE`, `CREATE OR REPLACE` of a table or
    /// view, `DROP TABLE`/`VIEW`, such statements under `EXPLAIN ANALYZE`) changes its table as
    /// a whole. Writes made on `context()` directly are not seen: see the README.
    pub(super) async fn run_plan(&self, plan: LogicalPlan) -> Result<DataFrame> {
        if let LogicalPlan::Dml(dml) = &plan
            && dml.op == WriteOp::Insert(InsertOp::Append)
        {
            let _maintenance = self.maintenance.lock().await;
            let rows = self
                .ctx
                .execute_logical_plan(dml.input.as_ref().clone())
                .await?
                .collect()
                .await?;
            let count = self.append_rows(dml.table_name.clone(), rows).await?;
            return Ok(self.answer_context().read_batch(count_batch(count)?)?);
        }
        let written = writes_of(&plan)?;
        if written.is_empty() {
            return Ok(self.ctx.execute_logical_plan(plan).await?);
        }
        let _maintenance = self.maintenance.lock().await;
        for (table, _) in &written {
            self.refuse_mv(table)?;
        }
        // Versions move before the write runs: should it fail midway, MVs over the table are
        // stale rather than wrong.
        {
            let mut catalog = self.write_catalog()?;
            for (table, what) in &written {
                catalog.record_write(table, Change::Rewrite((*what).into()));
                if ends_the_table(what) {
                    catalog.forget_keys(table);
                }
            }
        }
        self.save().await?;
        // A write runs now, so that the MVs refreshed on commit see it.
        let done = self.ctx.execute_logical_plan(plan).await?.collect().await?;
        for (table, _) in &written {
            self.refresh_after_write(table).await?;
        }
        Ok(self.answer_context().read_batches(done)?)
    }

    /// An error when `table` is an MV: its rows change only by refresh.
    fn refuse_mv(&self, table: &str) -> Result<()> {
        if self.read_catalog()?.contains(table) {
            return Err(MvError::Input(format!(
                "{table} is a materialized view: it changes only by REFRESH (or DROP MATERIALIZED VIEW)"
            )));
        }
        Ok(())
    }

    /// Records a write to `table` and refreshes the on-commit MVs that read it.
    pub(super) async fn written(&self, table: &str, change: Change) -> Result<()> {
        self.write_catalog()?.record_write(table, change);
        self.save().await?;
        self.refresh_after_write(table).await
    }

    /// Refreshes the on-commit MVs over `table`; a failure says the write itself was made.
    async fn refresh_after_write(&self, table: &str) -> Result<()> {
        self.refresh_on_commit(table)
            .await
            .map_err(|e| MvError::RefreshAfterWrite {
                table: table.to_string(),
                error: Box::new(e),
            })
    }
}

/// Whether a write of this kind (`writes_of`) ends the table, so that a new one may take its
/// name: the keys declared on the old one go with it.
fn ends_the_table(what: &str) -> bool {
    matches!(what, "replaced" | "dropped")
}

/// The tables `plan` writes and how, wherever the write sits (`EXPLAIN ANALYZE` runs its
/// statement). `EXECUTE` of a prepared statement is refused: what it writes is not known here.
fn writes_of(plan: &LogicalPlan) -> Result<Vec<(String, &'static str)>> {
    let mut written = Vec::new();
    let mut refused = false;
    let _ = plan.apply(|node| {
        let write = match node {
            LogicalPlan::Dml(dml) => Some((
                dml.table_name.table(),
                match dml.op {
                    WriteOp::Delete => "deleted from",
                    WriteOp::Update => "updated",
                    WriteOp::Insert(InsertOp::Append) => "inserted into",
                    _ => "overwritten",
                },
            )),
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(c)) if c.or_replace => {
                Some((c.name.table(), "replaced"))
            }
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(c)) if c.or_replace => {
                Some((c.name.table(), "replaced"))
            }
            LogicalPlan::Ddl(DdlStatement::CreateView(v)) if v.or_replace => {
                Some((v.name.table(), "replaced"))
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(d)) => Some((d.name.table(), "dropped")),
            LogicalPlan::Ddl(DdlStatement::DropView(d)) => Some((d.name.table(), "dropped")),
            LogicalPlan::Statement(Statement::Execute(_)) => {
                refused = true;
                None
            }
            _ => None,
        };
        if let Some((table, what)) = write {
            written.push((table.to_string(), what));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if refused {
        return Err(MvError::Input(
            "EXECUTE of a prepared statement is not supported by MvSession: what it writes would not be seen; run the statement itself".into(),
        ));
    }
    Ok(written)
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
