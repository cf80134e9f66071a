//! Where an MV's rows live in the session, and the table provider queries read them through:
//! without a store, in memory as fragments (the full computation, then one per incremental
//! refresh); with one, the generation of Parquet files the store's catalog names
//! (`crate::lifecycle::store`), read through a DataFusion listing table, as other engines and
//! Ballista executors read it.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, Session, TableProvider, view::ViewTable};
use datafusion::common::Result as DfResult;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::error::{MvError, Result};
use crate::lifecycle::incremental::Regroup;
use crate::lifecycle::store::Generation;

/// An aggregate MV with more fragments than this is compacted (regrouped into one) at its
/// next incremental refresh, so that reading it stays close to reading one fragment.
pub const MAX_FRAGMENTS: usize = 8;

/// Where an MV's rows are.
#[derive(Clone, Debug)]
pub enum Rows {
    /// In the session's memory: each refresh's rows, oldest first. An aggregate MV's
    /// fragments are partial aggregates, regrouped when read.
    Memory(Vec<Vec<RecordBatch>>),
    /// A generation published in the store, at `location`: final rows.
    Files {
        location: String,
        generation: Generation,
    },
}

/// An MV's stored rows.
#[derive(Clone, Debug)]
pub struct Stored {
    pub schema: SchemaRef,
    pub rows: Rows,
    /// How an aggregate MV's partial aggregates merge into one row per group (`None`: it is
    /// not an aggregate that merges).
    pub regroup: Option<Regroup>,
    /// The plan the rows were computed from: an incremental refresh may only add rows of the
    /// same plan (a view it reads may have been replaced since).
    pub computed_by: datafusion::logical_expr::LogicalPlan,
}

impl Stored {
    pub fn rows(&self) -> u64 {
        match &self.rows {
            Rows::Memory(fragments) => fragments
                .iter()
                .flatten()
                .map(|b| b.num_rows() as u64)
                .sum(),
            Rows::Files { generation, .. } => generation.rows(),
        }
    }

    /// Whether a group may be stored more than once (aggregate fragments not yet merged).
    pub fn needs_regroup(&self) -> bool {
        matches!(&self.rows, Rows::Memory(f) if self.regroup.is_some() && f.len() > 1)
    }

    /// The generation the MV is at, when it is in the store.
    pub fn generation(&self) -> Option<&Generation> {
        match &self.rows {
            Rows::Files { generation, .. } => Some(generation),
            Rows::Memory(_) => None,
        }
    }

    /// The provider queries read the MV through: its generation's files, its rows in memory,
    /// or the view regrouping them.
    pub fn provider(&self) -> Result<Arc<dyn TableProvider>> {
        let fragments = match &self.rows {
            Rows::Files { location, .. } => return files_provider(location, &self.schema),
            Rows::Memory(fragments) => fragments,
        };
        let batches: Vec<RecordBatch> = fragments.iter().flatten().cloned().collect();
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

/// A DataFusion listing table over the Parquet files at `location` (a directory or an object
/// store prefix), with the MV's schema: the same table any DataFusion process gets from
/// `CREATE EXTERNAL TABLE .. LOCATION '<location>'`, and one datafusion-proto ships to
/// Ballista executors as it is.
fn files_provider(location: &str, schema: &SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let url = ListingTableUrl::parse(location)?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(Arc::clone(schema));
    ListingTable::try_new(config)
        .map(|t| Arc::new(t) as _)
        .map_err(MvError::from)
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
