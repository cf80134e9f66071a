//! Creating, refreshing and dropping MVs in the session.
//!
//! A refresh is incremental when exactly one input only gained rows since the last one and the
//! definition takes appended rows (`crate::lifecycle::incremental`); otherwise the MV is recomputed in
//! full. Either way the new rows are computed (and, with a store, written as a new
//! generation) before anything is replaced: a refresh that fails leaves the previous rows in
//! place and the MV stale, with the failure as the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::catalog::view::ViewTable;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

use super::MvSession;
use crate::catalog::average_states::with_average_states;
use crate::catalog::definition::{
    StoredNames, normalize_definition, plan_stored_definition, plan_stored_sql,
};
use crate::catalog::freshness::{Change, Stale};
use crate::catalog::{Computed, MaterializedView, stored_schema};
use crate::error::{MvError, Result};
use crate::frontend::sql::CreateMv;
use crate::lifecycle::dependencies::Dependencies;
use crate::lifecycle::incremental::{self, Shape};
use crate::lifecycle::storage::Stored;

/// How a refresh was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshMode {
    /// Recomputed from its definition.
    Full,
    /// Only the new rows of one input were computed and added.
    Incremental,
    /// Only the partitions of one partitioned table whose files changed were recomputed
    /// (`crate::lifecycle::partitions`); [`Refreshed::partitions`] lists them.
    Partitions,
    /// Nothing it reads had changed.
    UpToDate,
}

impl fmt::Display for RefreshMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefreshMode::Full => "full",
            RefreshMode::Incremental => "incremental",
            RefreshMode::Partitions => "partitions",
            RefreshMode::UpToDate => "up_to_date",
        })
    }
}

/// What a refresh did to one MV, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    /// The MV refreshed.
    pub mv: String,
    /// Full or incremental.
    pub mode: RefreshMode,
    /// Why that mode (what changed since the last refresh).
    pub reason: String,
    /// Rows stored after it.
    pub rows: u64,
    /// The values of the partition column recomputed, for [`RefreshMode::Partitions`].
    pub partitions: Vec<String>,
}

/// The rows one input gained since an MV's last refresh, the version they bring it to, and
/// how the MV takes them.
struct NewRows {
    table: String,
    /// Rows appended through the session.
    rows: Vec<RecordBatch>,
    /// Files another writer added (how many, and a plan reading them).
    files: Option<(usize, LogicalPlan)>,
    version: u64,
    /// The Delta versions of the other inputs, read with `version`.
    seen: BTreeMap<String, u64>,
    shape: Shape,
}

/// What the catalog holds about an MV that a refresh starts from.
struct RefreshRecord {
    sql: Option<String>,
    plan: LogicalPlan,
    computed: Option<Computed>,
    stale: Option<Stale>,
}

/// An MV's new contents, ready to replace the old.
pub(super) struct Install {
    pub(super) name: String,
    pub(super) sql: Option<String>,
    pub(super) definition: LogicalPlan,
    pub(super) stored: Stored,
    pub(super) computed_from: BTreeMap<String, u64>,
    pub(super) computed_at: SystemTime,
    /// What its readers see changed (`None` when restoring).
    pub(super) change: Option<Change>,
    /// Whether to save the catalog now (a restore saves once, at the end).
    pub(super) save: bool,
}

impl MvSession {
    /// Executes the definition, stores the result and registers the MV.
    pub async fn create_materialized_view(&self, create: &CreateMv) -> Result<()> {
        let _maintenance = self.maintenance.lock().await;
        let exists = self.mv_exists(&create.name)?;
        if exists && create.if_not_exists {
            return Ok(());
        }
        if exists && !create.or_replace {
            return Err(MvError::DuplicateMv(create.name.clone()));
        }
        if !exists
            && self
                .ctx
                .table_exist(TableReference::bare(create.name.as_str()))?
        {
            return Err(MvError::NameTaken {
                name: create.name.clone(),
            });
        }
        let plan = plan_stored_definition(
            &self.ctx.state(),
            &self.plain,
            &create.query,
            StoredNames::Created(&create.columns),
        )
        .await?;
        let inputs = crate::plan::region::base_tables(&plan);
        if Dependencies::of(&*self.read_catalog()?, Some((&create.name, &inputs))).has_cycle() {
            return Err(MvError::Cycle(create.name.clone()));
        }
        self.recompute(&create.name, Some(create.query.clone()), plan)
            .await?;
        {
            let mut catalog = self.write_catalog()?;
            catalog.set_on_commit(&create.name, create.on_commit);
            catalog.set_mv_staleness(&create.name, create.staleness);
        }
        self.save().await
    }

    /// Registers an MV from a logical plan (for example a DataFrame's), materializing it. It
    /// has no SQL, so it is not kept in a store (it stays in memory).
    pub async fn create_materialized_view_from_plan(
        &self,
        name: &str,
        plan: LogicalPlan,
    ) -> Result<()> {
        let _maintenance = self.maintenance.lock().await;
        if self.mv_exists(name)? {
            return Err(MvError::DuplicateMv(name.to_string()));
        }
        if self.ctx.table_exist(TableReference::bare(name))? {
            return Err(MvError::NameTaken {
                name: name.to_string(),
            });
        }
        let plan = normalize_definition(&self.plain, with_average_states(plan))?;
        self.recompute(name, None, plan).await?;
        Ok(())
    }

    /// `REFRESH MATERIALIZED VIEW name`: brings `name` up to date, refreshing first the stale
    /// MVs it reads (in dependency order). Returns what was done to each.
    pub async fn refresh_materialized_view(&self, name: &str) -> Result<Vec<Refreshed>> {
        let _maintenance = self.maintenance.lock().await;
        self.observe_files_under(name).await?;
        let order: Vec<String> = {
            let catalog = self.read_catalog()?;
            if !catalog.contains(name) {
                return Err(MvError::UnknownMv(name.to_string()));
            }
            Dependencies::of(&catalog, None)
                .inputs_of(name)
                .into_iter()
                .filter(|m| catalog.contains(m) && catalog.stale(m).is_some())
                .chain([name.to_string()])
                .collect()
        };
        let mut done = Vec::with_capacity(order.len());
        for mv in order {
            done.push(self.refresh_one(&mv).await?);
        }
        Ok(done)
    }

    /// Lists the tables on files `name` reads, directly or through the MVs it reads, so
    /// that an MV it reads whose files moved is seen stale and refreshed first.
    async fn observe_files_under(&self, name: &str) -> Result<()> {
        let tables: BTreeSet<String> = {
            let catalog = self.read_catalog()?;
            Dependencies::of(&catalog, None)
                .inputs_of(name)
                .iter()
                .chain([&name.to_string()])
                .filter_map(|m| catalog.get(m))
                .flat_map(|mv| mv.base_tables.iter().cloned())
                .collect()
        };
        self.observe_files(&tables).await
    }

    /// Refreshes the on-commit MVs that read `table`, directly or through other MVs, each
    /// after those it reads.
    pub(super) async fn refresh_on_commit(&self, table: &str) -> Result<()> {
        if !self.ctx.table_exist(TableReference::bare(table))? {
            return Ok(());
        }
        let order: Vec<String> = {
            let catalog = self.read_catalog()?;
            Dependencies::of(&catalog, None)
                .readers_of(table)
                .into_iter()
                .filter(|m| catalog.is_on_commit(m))
                .collect()
        };
        for mv in order {
            self.refresh_one(&mv).await?;
        }
        Ok(())
    }

    /// Refreshes one MV from what it reads now; a failure marks it stale.
    async fn refresh_one(&self, name: &str) -> Result<Refreshed> {
        let result = self.try_refresh(name).await;
        if let Err(e) = &result {
            self.write_catalog()?.refresh_failed(name, &e.to_string());
        }
        result
    }

    /// Brings one MV up to date: nothing to do, only the new rows of one input, or in full.
    async fn try_refresh(&self, name: &str) -> Result<Refreshed> {
        let inputs = self
            .read_catalog()?
            .get(name)
            .map(|mv| mv.base_tables.clone())
            .unwrap_or_default();
        self.observe_files(&inputs).await?;
        let RefreshRecord {
            sql,
            plan,
            computed,
            stale,
        } = self.refresh_record(name)?;
        let definition = self.replan(name, &sql, plan).await?;
        let (computed, stale, stored) = match (computed, stale, self.stored_rows(name)?) {
            (Some(_), None, Some(stored)) => {
                return Ok(Refreshed {
                    mv: name.to_string(),
                    mode: RefreshMode::UpToDate,
                    reason: "nothing it reads changed since it was computed".into(),
                    rows: stored.rows(),
                    partitions: vec![],
                });
            }
            (Some(computed), Some(stale), Some(stored)) => (computed, stale, stored),
            _ => {
                let rows = self.recompute(name, sql, definition).await?;
                return Ok(Refreshed {
                    mv: name.to_string(),
                    mode: RefreshMode::Full,
                    reason: "no record of what it was computed from".into(),
                    rows,
                    partitions: vec![],
                });
            }
        };
        let changed = self.changed_inputs(&computed)?;
        let why_full = match changed.as_slice() {
            _ if stored.computed_by != definition => {
                "its definition plans differently now (a view or function it reads changed)"
                    .to_string()
            }
            [] => format!("{name} is {stale}"),
            [(table, since)] => {
                let one = (table.as_str(), *since);
                let done =
                    self.refresh_one_input(name, &sql, &definition, stored, &computed.from, one);
                match done.await? {
                    Ok(done) => return Ok(done),
                    Err(why) => why,
                }
            }
            many => {
                let names: Vec<&str> = many.iter().map(|(t, _)| t.as_str()).collect();
                format!("{} changed", names.join(" and "))
            }
        };
        let rows = self.recompute(name, sql, definition).await?;
        Ok(Refreshed {
            mv: name.to_string(),
            mode: RefreshMode::Full,
            reason: why_full,
            rows,
            partitions: vec![],
        })
    }

    /// One input of `name` changed since `from`: only its new rows, else only its partitions
    /// that changed, are computed; `Ok(Err(why))` when neither can be (why not incrementally).
    async fn refresh_one_input(
        &self,
        name: &str,
        sql: &Option<String>,
        definition: &LogicalPlan,
        stored: Stored,
        from: &BTreeMap<String, u64>,
        (table, since): (&str, u64),
    ) -> Result<std::result::Result<Refreshed, String>> {
        let why = match self.new_rows(table, since, definition).await? {
            Ok(new_rows) => {
                let added = self.add_new_rows(
                    name,
                    sql.clone(),
                    definition,
                    stored.clone(),
                    from,
                    new_rows,
                );
                match added.await? {
                    Ok(done) => return Ok(Ok(done)),
                    Err(why) => why,
                }
            }
            Err(why) => why,
        };
        let by_partition = self.refresh_partitions(name, sql.clone(), definition, stored, from);
        Ok(by_partition.await?.map_err(|_| why))
    }

    /// Reads what a refresh needs about `name` (SQL, plan, inputs' versions, staleness) at once.
    fn refresh_record(&self, name: &str) -> Result<RefreshRecord> {
        let catalog = self.read_catalog()?;
        let mv = catalog
            .get(name)
            .ok_or_else(|| MvError::UnknownMv(name.to_string()))?;
        Ok(RefreshRecord {
            sql: mv.sql.clone(),
            plan: mv.plan.clone(),
            computed: catalog.computed(name).cloned(),
            stale: catalog.stale(name),
        })
    }

    /// The definition to refresh `name` from: `plan`, or its SQL planned again when it has some.
    async fn replan(
        &self,
        name: &str,
        sql: &Option<String>,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan> {
        // Re-planned from its SQL, so that replaced tables are read anew.
        Ok(match sql {
            Some(query) => {
                // The stored names: unique even where the plan's repeat (`SELECT *` over a join).
                let columns: Vec<String> = stored_schema(plan.schema())
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let planned =
                    plan_stored_sql(&self.ctx.state(), query, StoredNames::Stored(&columns))
                        .await?;
                self.normalized.normalize(&self.plain, name, planned)?
            }
            None => plan,
        })
    }

    /// Which inputs were written since the MV was `computed`, with the versions it read.
    fn changed_inputs(&self, computed: &Computed) -> Result<Vec<(String, u64)>> {
        let catalog = self.read_catalog()?;
        Ok(computed
            .from
            .iter()
            .filter(|(t, v)| catalog.versions().current(t) != **v)
            .map(|(t, v)| (t.clone(), *v))
            .collect())
    }

    /// The rows `table` gained since `since` and how `definition` takes them, or why it cannot.
    async fn new_rows(
        &self,
        table: &str,
        since: u64,
        definition: &LogicalPlan,
    ) -> Result<std::result::Result<NewRows, String>> {
        // The rows, the version they bring the table to and the Delta versions of the other
        // inputs, read together.
        let (appended, seen) = {
            let catalog = self.read_catalog()?;
            let versions = catalog.versions();
            let inputs = crate::plan::region::base_tables(definition);
            (
                versions
                    .appended_since(table, since)
                    .map(|appended| (appended, versions.current(table))),
                catalog.seen_versions(&inputs),
            )
        };
        let appended = match appended {
            // Files another writer added: read alone, as the definition runs over them.
            Ok((appended, version)) if !appended.files.is_empty() => {
                match self.rows_of_files(table, &appended.files).await? {
                    Ok(files) => Ok((appended.rows, Some((appended.files.len(), files)), version)),
                    Err(why) => Err(format!("{table}: {why}")),
                }
            }
            other => other.map(|(appended, version)| (appended.rows, None, version)),
        };
        Ok(appended.and_then(|(rows, files, version)| {
            incremental::shape(definition).map(|shape| NewRows {
                table: table.to_string(),
                rows,
                files,
                version,
                seen,
                shape,
            })
        }))
    }

    /// The incremental refresh: the definition over the new rows alone, appended as rows or
    /// as a fragment. `Ok(Err(why))` when the definition cannot read the new rows alone.
    async fn add_new_rows(
        &self,
        name: &str,
        sql: Option<String>,
        definition: &LogicalPlan,
        mut stored: Stored,
        from: &BTreeMap<String, u64>,
        new: NewRows,
    ) -> Result<std::result::Result<Refreshed, String>> {
        let NewRows {
            table,
            rows,
            files,
            version,
            seen,
            shape,
        } = new;
        let table = table.as_str();
        let schema = self
            .ctx
            .table_provider(TableReference::bare(table))
            .await?
            .schema();
        let appended: u64 = rows.iter().map(|b| b.num_rows() as u64).sum();
        let new_files = files.as_ref().map(|(n, _)| *n);
        let source = new_rows_source(schema, rows, files.map(|(_, plan)| plan))?;
        let over_new = match incremental::over_new_rows(definition, table, source) {
            Ok(plan) => plan,
            Err(why) => return Ok(Err(why)),
        };
        let over_new = self.at_versions(over_new, &seen).await?;
        let task = format!("computing {name} over new rows");
        let (added, read) = self
            .execute_reading(&task, over_new, &stored.schema)
            .await?;
        let mut from = from.clone();
        from.insert(table.to_string(), version);
        // How the fragments merge follows from the definition as planned now.
        let change = match &shape {
            Shape::Rows => {
                stored.regroup = None;
                Change::Append(added.clone())
            }
            Shape::Aggregate(regroup) => {
                stored.regroup = Some(regroup.clone());
                Change::Rewrite("refreshed incrementally".into())
            }
        };
        let (stored, note) = self.add_rows(name, stored, added, &shape).await?;
        let mut reason = format!(
            "only {table} changed, by {}",
            what_was_new(appended, new_files, read)
        );
        if let Some(note) = note {
            reason.push_str(&format!("; {note}"));
        }
        self.install(Install {
            name: name.to_string(),
            sql,
            definition: definition.clone(),
            stored,
            computed_from: from,
            computed_at: SystemTime::now(),
            change: Some(change),
            save: true,
        })
        .await
        .map(|rows| {
            Ok(Refreshed {
                mv: name.to_string(),
                mode: RefreshMode::Incremental,
                reason,
                rows,
                partitions: vec![],
            })
        })
    }

    /// Computes the MV from its definition and replaces what it held. Returns its rows.
    async fn recompute(
        &self,
        name: &str,
        sql: Option<String>,
        definition: LogicalPlan,
    ) -> Result<u64> {
        let inputs = crate::plan::region::base_tables(&definition);
        self.observe_files(&inputs).await?;
        if let Some(unreadable) = self.read_catalog()?.unreadable(&inputs) {
            return Err(unreadable);
        }
        // The versions recorded and the Delta versions read, together.
        let (computed_from, seen): (BTreeMap<String, u64>, _) = {
            let catalog = self.read_catalog()?;
            let from = inputs
                .iter()
                .map(|t| (t.clone(), catalog.versions().current(t)))
                .collect();
            (from, catalog.seen_versions(&inputs))
        };
        let schema = stored_schema(definition.schema());
        let reading = self.at_versions(definition.clone(), &seen).await?;
        let rows = self
            .materialize(name, sql.is_some(), reading, &schema)
            .await?;
        let regroup = match incremental::shape(&definition) {
            Ok(Shape::Aggregate(r)) => Some(r),
            _ => None,
        };
        self.install(Install {
            name: name.to_string(),
            sql,
            definition: definition.clone(),
            stored: Stored {
                schema,
                rows,
                regroup,
                computed_by: definition.clone(),
            },
            computed_from,
            computed_at: SystemTime::now(),
            change: Some(Change::Rewrite("recomputed".into())),
            save: true,
        })
        .await
    }

    /// Runs `plan` (never rewritten) and returns its rows with `schema` (the MV's stored
    /// column names). Its progress goes to the session's sink, as `task`.
    pub(super) async fn execute(
        &self,
        task: &str,
        plan: LogicalPlan,
        schema: &datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<Vec<RecordBatch>> {
        Ok(self.execute_reading(task, plan, schema).await?.0)
    }

    /// [`MvSession::execute`], with the rows its scans of files read.
    async fn execute_reading(
        &self,
        task: &str,
        plan: LogicalPlan,
        schema: &datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<(Vec<RecordBatch>, Option<u64>)> {
        let (physical, task_ctx, watch) = self.watched(task, plan).await?;
        let batches = datafusion::physical_plan::collect(physical, task_ctx).await?;
        let read = watch.finish();
        let batches = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(Arc::clone(schema), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((batches, read))
    }

    /// Replaces the MV's contents and registration with `new`, records what it was computed
    /// from, and saves the catalog. Returns its rows.
    pub(super) async fn install(&self, new: Install) -> Result<u64> {
        let inputs: BTreeSet<String> = crate::plan::region::base_tables(&new.definition);
        let plan = self.expand_nested(&new.definition)?;
        let rows = new.stored.rows();
        let provider = new.stored.provider()?;
        let mv = MaterializedView::new(
            &new.name,
            new.sql,
            plan,
            provider_as_source(Arc::clone(&provider)),
            Some(rows),
        )
        .with_inputs(inputs);
        {
            let _naming = self.naming.write().await;
            let mut catalog = self.write_catalog()?;
            let replace = catalog.contains(&new.name);
            // Checked before anything is registered: an MV in the catalog without its table
            // would be neither queryable nor ever stale.
            if !replace
                && self
                    .ctx
                    .table_exist(TableReference::bare(new.name.as_str()))?
            {
                return Err(MvError::NameTaken { name: new.name });
            }
            if replace {
                self.ctx
                    .deregister_table(TableReference::bare(new.name.as_str()))?;
            }
            catalog.register(mv, replace)?;
            self.ctx
                .register_table(TableReference::bare(new.name.as_str()), provider)?;
            catalog.set_computed(&new.name, new.computed_from, new.computed_at);
            if let Some(change) = new.change {
                catalog.record_write(&new.name, change);
            }
        }
        let replaced = self
            .lock_stored()?
            .insert(new.name.clone(), new.stored.clone());
        if new.save {
            self.save().await?;
            self.published(&new.name, &new.stored, replaced.as_ref())
                .await;
        }
        Ok(rows)
    }

    /// `definition` over base tables only: each MV it reads replaced by that MV's own
    /// definition, so that the rewriter can answer queries over the base tables from it.
    fn expand_nested(&self, definition: &LogicalPlan) -> Result<LogicalPlan> {
        let catalog = self.read_catalog()?;
        let reads_an_mv = crate::plan::region::base_tables(definition)
            .iter()
            .any(|t| catalog.contains(t));
        if !reads_an_mv {
            return Ok(definition.clone());
        }
        let expanded = definition.clone().transform_up(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(parent) = catalog.get(scan.table_name.table()) else {
                return Ok(Transformed::no(node));
            };
            let stored = stored_schema(parent.plan.schema());
            let as_stored: Vec<Expr> = parent
                .plan
                .schema()
                .iter()
                .zip(stored.fields())
                .map(|((q, f), s)| Expr::Column(Column::new(q.cloned(), f.name())).alias(s.name()))
                .collect();
            let mut b = LogicalPlanBuilder::from(parent.plan.clone())
                .project(as_stored)?
                .alias(scan.table_name.clone())?;
            // Filters first: they may read columns the projection drops.
            if let Some(predicate) = conjunction(scan.filters.clone()) {
                b = b.filter(predicate)?;
            }
            if let Some(projection) = &scan.projection {
                let columns = projection.iter().map(|i| {
                    Expr::Column(Column::new(
                        Some(scan.table_name.clone()),
                        stored.field(*i).name(),
                    ))
                });
                b = b.project(columns)?;
            }
            Ok(Transformed::yes(b.build()?))
        })?;
        normalize_definition(&self.plain, expanded.data)
    }

    /// `DROP MATERIALIZED VIEW [IF EXISTS] name`: an error when other MVs read it. An MV saved
    /// in the store but not restored is dropped from there.
    pub async fn drop_materialized_view(&self, name: &str, if_exists: bool) -> Result<()> {
        let _maintenance = self.maintenance.lock().await;
        let readers: Vec<String> = {
            let catalog = self.read_catalog()?;
            Dependencies::of(&catalog, None)
                .direct_readers(name)
                .into_iter()
                .filter(|m| catalog.contains(m))
                .collect()
        };
        if !readers.is_empty() {
            return Err(MvError::HasDependents {
                name: name.to_string(),
                dependents: readers,
            });
        }
        self.drop_one(name, if_exists).await
    }

    /// `DROP MATERIALIZED VIEW [IF EXISTS] name CASCADE`: the MVs that read it, directly or
    /// not, are dropped first.
    pub async fn drop_materialized_view_cascade(&self, name: &str, if_exists: bool) -> Result<()> {
        let _maintenance = self.maintenance.lock().await;
        let readers = Dependencies::of(&*self.read_catalog()?, None).readers_of(name);
        for reader in readers.iter().rev() {
            self.drop_one(reader, true).await?;
        }
        self.drop_one(name, if_exists).await
    }

    async fn drop_one(&self, name: &str, if_exists: bool) -> Result<()> {
        let existed = self.write_catalog()?.drop_mv(name);
        if existed {
            self.ctx.deregister_table(TableReference::bare(name))?;
            self.lock_stored()?.remove(name);
            self.normalized.forget(name);
        } else if !self.forget_unrestored(name)? {
            return if if_exists {
                Ok(())
            } else {
                Err(MvError::UnknownMv(name.to_string()))
            };
        }
        self.save().await?;
        if let Some(dir) = &self.data_dir {
            dir.remove_mv(name).await;
        }
        Ok(())
    }

    /// The MV's stored rows, if the session holds them.
    fn stored_rows(&self, name: &str) -> Result<Option<Stored>> {
        Ok(self.lock_stored()?.get(name).cloned())
    }

    pub(super) fn lock_stored(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::HashMap<String, Stored>>> {
        self.stored
            .lock()
            .map_err(|_| MvError::Internal("MV storage lock poisoned".into()))
    }
}

/// What an incremental refresh reads as the table's new rows: those appended through the
/// session, and the files another writer added, read as the definition runs (one pass).
fn new_rows_source(
    schema: datafusion::arrow::datatypes::SchemaRef,
    rows: Vec<RecordBatch>,
    files: Option<LogicalPlan>,
) -> Result<Arc<dyn datafusion::logical_expr::TableSource>> {
    let in_memory = Arc::new(MemTable::try_new(Arc::clone(&schema), vec![rows])?);
    let Some(files) = files else {
        return Ok(provider_as_source(in_memory));
    };
    let both = LogicalPlanBuilder::scan("__mvr_appended", provider_as_source(in_memory), None)?
        .union(files)?
        .build()?;
    Ok(provider_as_source(Arc::new(ViewTable::new(both, None))))
}

/// What an incremental refresh read: `500 appended rows`, `2 new files (1000 rows of them
/// read)`. The rows of new files are those their scans read (DataFusion counts them; pruning
/// by statistics reads fewer, and an aggregate the statistics answer reads none); rows
/// appended through the session are not scanned from files, so they are counted apart.
fn what_was_new(appended: u64, new_files: Option<usize>, read: Option<u64>) -> String {
    let files = new_files.map(|n| {
        let noun = if n == 1 { "file" } else { "files" };
        format!("{n} new {noun} ({} rows of them read)", read.unwrap_or(0))
    });
    match (appended, files) {
        (_, None) => format!("{appended} appended rows"),
        (0, Some(files)) => files,
        (_, Some(files)) => format!("{appended} appended rows and {files}"),
    }
}
