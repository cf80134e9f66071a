//! Computing an MV's rows into where they live (`crate::lifecycle::storage`): in memory, or, for
//! an MV kept in the store, a new generation of Parquet files (`crate::lifecycle::store`)
//! published when the catalog names it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};

use super::MvSession;
use crate::error::{MvError, Result};
use crate::lifecycle::incremental::Shape;
use crate::lifecycle::progress::{ProgressSink, Watch};
use crate::lifecycle::storage::{MAX_FRAGMENTS, Rows, Stored};
use crate::lifecycle::store::{DataDir, GenerationWriter};

impl MvSession {
    /// The store, when `persisted` (the MV has SQL to be restored from) and the session has one.
    fn store_for(&self, persisted: bool) -> Option<&DataDir> {
        self.data_dir.as_ref().filter(|_| persisted)
    }

    /// A new generation of `name` in `dir`, numbered from the session's counter.
    async fn new_generation(&self, dir: &DataDir, name: &str) -> Result<GenerationWriter> {
        if !dir.is_locked() {
            return Err(MvError::Storage(format!(
                "{name}: this session follows the store at {} and does not write it",
                dir.location()
            )));
        }
        let number = self.next_generation.load(Ordering::SeqCst);
        let writer = dir.new_generation(name, number).await?;
        self.next_generation
            .fetch_max(writer.number() + 1, Ordering::SeqCst);
        Ok(writer)
    }

    /// Runs `plan` (never rewritten) into the MV's rows: in memory, or streamed into a new
    /// generation in the store as they are computed.
    pub(super) async fn materialize(
        &self,
        name: &str,
        persisted: bool,
        plan: LogicalPlan,
        schema: &SchemaRef,
    ) -> Result<Rows> {
        let Some(dir) = self.store_for(persisted) else {
            if self.is_distributed() {
                return Err(MvError::NoStoreOnCluster(name.to_string()));
            }
            let task = format!("computing {name}");
            return Ok(Rows::Memory(vec![self.execute(&task, plan, schema).await?]));
        };
        let mut writer = self.new_generation(dir, name).await?;
        let (rows, watch) = self.stream(&format!("computing {name}"), plan).await?;
        writer.write(schema, rows).await?;
        watch.finish();
        Ok(Rows::Files {
            location: writer.location(),
            generation: writer.finish()?,
        })
    }

    /// `stored` with the rows of an incremental refresh added (`added`, the definition over
    /// the new rows, taken as `shape` says), and a note when that compacted it. In memory, a
    /// fragment (regrouped into one past [`MAX_FRAGMENTS`]); in the store, a new generation
    /// of final rows: for an MV computed row by row the previous generation's files (linked)
    /// and `added`, rewritten as one file past [`MAX_FRAGMENTS`] files; for an aggregate the
    /// previous rows and `added` regrouped.
    pub(super) async fn add_rows(
        &self,
        name: &str,
        mut stored: Stored,
        added: Vec<RecordBatch>,
        shape: &Shape,
    ) -> Result<(Stored, Option<String>)> {
        let previous = match &stored.rows {
            Rows::Memory(_) => return self.add_fragment(name, stored, added).await,
            Rows::Files { generation, .. } => generation.clone(),
        };
        let Some(store) = self.store_for(true) else {
            return Err(MvError::Internal(format!(
                "{name} is kept in a store the session does not have"
            )));
        };
        let mut writer = self.new_generation(store, name).await?;
        let schema = Arc::clone(&stored.schema);
        let mut note = None;
        match shape {
            Shape::Rows if previous.files.len() < MAX_FRAGMENTS => {
                writer.share(&previous).await?;
                writer.write_batches(&schema, &added).await?;
            }
            Shape::Rows => {
                let both = self.previous_and_added(&stored, added)?;
                let (rows, watch) = self.stream(&format!("compacting {name}"), both).await?;
                writer.write(&schema, rows).await?;
                watch.finish();
                note = Some(format!("{} files compacted into one", MAX_FRAGMENTS + 1));
            }
            Shape::Aggregate(regroup) => {
                let both = self.previous_and_added(&stored, added)?;
                let merged = regroup.plan(both, &schema)?;
                let task = format!("merging new rows into {name}");
                let (rows, watch) = self.stream(&task, merged).await?;
                writer.write(&schema, rows).await?;
                watch.finish();
            }
        }
        stored.rows = Rows::Files {
            location: writer.location(),
            generation: writer.finish()?,
        };
        Ok((stored, note))
    }

    /// The MV's rows as `stored` holds them, then `added`.
    fn previous_and_added(&self, stored: &Stored, added: Vec<RecordBatch>) -> Result<LogicalPlan> {
        let new = MemTable::try_new(Arc::clone(&stored.schema), vec![added])?;
        let previous = provider_as_source(stored.provider()?);
        let added =
            LogicalPlanBuilder::scan("__mvr_added", provider_as_source(Arc::new(new)), None)?;
        Ok(LogicalPlanBuilder::scan("__mvr_previous", previous, None)?
            .union(added.build()?)?
            .build()?)
    }

    /// `plan`'s rows as they are computed (never rewritten), and the watch reporting its
    /// progress as `task`, to finish once they are all read.
    async fn stream(
        &self,
        task: &str,
        plan: LogicalPlan,
    ) -> Result<(SendableRecordBatchStream, Watch)> {
        let (physical, task_ctx, watch) = self.watched(task, plan).await?;
        Ok((execute_stream(physical, task_ctx)?, watch))
    }

    /// Where progress goes, if anywhere.
    pub(super) fn progress_sink(&self) -> Option<ProgressSink> {
        self.progress.lock().ok().and_then(|p| p.clone())
    }

    /// `plan` (never rewritten: an MV computed from other MVs, stale ones where tolerated or
    /// itself, would be recorded as fresh with stale rows) ready to run, and a watch that
    /// reports its progress as `task` to the session's sink.
    pub(super) async fn watched(
        &self,
        task: &str,
        plan: LogicalPlan,
    ) -> Result<(Arc<dyn ExecutionPlan>, Arc<TaskContext>, Watch)> {
        let df = self
            .maintenance_context(&plan)
            .execute_logical_plan(plan)
            .await?;
        let task_ctx = Arc::new(df.task_ctx());
        let physical = df.create_physical_plan().await?;
        let watch = Watch::start(&physical, task, self.progress_sink());
        Ok((physical, task_ctx, watch))
    }

    /// `added` as a new fragment in memory; an aggregate MV's fragments regrouped into one
    /// once there are more than [`MAX_FRAGMENTS`], so that reading it stays close to reading
    /// one.
    async fn add_fragment(
        &self,
        name: &str,
        mut stored: Stored,
        added: Vec<RecordBatch>,
    ) -> Result<(Stored, Option<String>)> {
        if let Rows::Memory(fragments) = &mut stored.rows {
            fragments.push(added);
        }
        if !(stored.needs_regroup()
            && matches!(&stored.rows, Rows::Memory(f) if f.len() > MAX_FRAGMENTS))
        {
            return Ok((stored, None));
        }
        let regrouped = self
            .ctx
            .read_table(stored.provider()?)?
            .logical_plan()
            .clone();
        let merged = self
            .execute(&format!("compacting {name}"), regrouped, &stored.schema)
            .await?;
        stored.rows = Rows::Memory(vec![merged]);
        let note = format!("{} fragments compacted into one", MAX_FRAGMENTS + 1);
        Ok((stored, Some(note)))
    }

    /// After the catalog named `stored`'s generation of `name`: `<mv>/current` points at it,
    /// and the MV's generations older than the one it `replaced` go (no version uses them).
    /// The replaced one stays until the next refresh, so that queries reading it finish.
    pub(super) async fn published(&self, name: &str, stored: &Stored, replaced: Option<&Stored>) {
        if let (Some(dir), Some(generation)) = (&self.data_dir, stored.generation()) {
            dir.point_current(name, generation.number);
            let previous = replaced.and_then(Stored::generation).map(|g| g.number);
            let keep = [Some(generation.number), previous];
            dir.remove_old_generations(name, &keep).await;
        }
    }
}
