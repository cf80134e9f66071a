//! Where an MV's rows live in the session: its fragments (the full computation, then one per
//! incremental refresh), and the table provider queries read them through.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, Session, TableProvider, view::ViewTable};
use datafusion::common::Result as DfResult;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::error::Result;
use crate::lifecycle::incremental::Regroup;

/// An aggregate MV with more fragments than this is compacted (regrouped into one) at its
/// next incremental refresh, so that reading it stays close to reading one fragment.
pub const MAX_FRAGMENTS: usize = 8;

/// An MV's stored rows.
#[derive(Clone, Debug)]
pub struct Stored {
    pub schema: SchemaRef,
    /// Each refresh's rows, oldest first.
    pub fragments: Vec<Vec<RecordBatch>>,
    /// How an aggregate MV's fragments merge into one row per group (`None`: rows are final).
    pub regroup: Option<Regroup>,
    /// The data directory's files holding the fragments, when the session persists.
    pub files: Vec<String>,
    /// The plan the rows were computed from: an incremental refresh may only add rows of the
    /// same plan (a view it reads may have been replaced since).
    pub computed_by: datafusion::logical_expr::LogicalPlan,
}

impl Stored {
    pub fn rows(&self) -> u64 {
        self.fragments
            .iter()
            .flatten()
            .map(|b| b.num_rows() as u64)
            .sum()
    }

    /// Whether a group may be stored more than once (aggregate fragments not yet merged).
    pub fn needs_regroup(&self) -> bool {
        self.regroup.is_some() && self.fragments.len() > 1
    }

    /// The provider queries read the MV through: its rows, or the view regrouping them.
    pub fn provider(&self) -> Result<Arc<dyn TableProvider>> {
        let batches: Vec<RecordBatch> = self.fragments.iter().flatten().cloned().collect();
        let table = Arc::new(MemTable::try_new(Arc::clone(&self.schema), vec![batches])?);
        match &self.regroup {
            Some(regroup) if self.needs_regroup() => {
                let scan = LogicalPlanBuilder::scan(
                    "__mvr_fragments",
                    provider_as_source(table as _),
                    None,
                )?
                .build()?;
                let plan = regroup.plan(scan, &self.schema)?;
                Ok(Arc::new(Regrouped(ViewTable::new(plan, None))))
            }
            _ => Ok(table),
        }
    }
}

/// An aggregate MV's fragments read as one row per group. A table rather than a view, so that
/// DataFusion does not inline it into plans that read the MV: a definition over it must keep
/// reading it by name (it is what that MV is computed from).
#[derive(Debug)]
struct Regrouped(ViewTable);

#[async_trait]
impl TableProvider for Regrouped {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
}
