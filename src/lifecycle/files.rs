//! The session's side of tables on files (`crate::catalog::files`): which registered tables are
//! DataFusion listing tables or Delta tables, listing them (reading their version) before an MV
//! is computed from them, reading the files another writer added for an incremental refresh,
//! and registering a Delta table through the API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use datafusion::logical_expr::LogicalPlan;

use crate::catalog::files::{FileTable, observe};
use crate::error::Result;

use super::MvSession;

impl MvSession {
    /// Follows the tables on files among `tables` and records what other writers changed in
    /// them since they were last listed: called before an MV is computed from them, so that
    /// the versions it records are those of the files it reads.
    pub(super) async fn observe_files(&self, tables: &BTreeSet<String>) -> Result<()> {
        for table in tables {
            // An MV kept in the store is a listing table too, but its files change only by
            // its refreshes, which its readers already see as writes.
            if self.read_catalog()?.contains(table) {
                continue;
            }
            let Ok(provider) = self.ctx.table_provider(table.as_str()).await else {
                continue;
            };
            // Followed already over these files: nothing to copy (a session state is big,
            // and this runs for every input of every refresh).
            if self
                .read_catalog()?
                .file_table(table)
                .is_some_and(|f| f.reads(provider.as_ref()))
            {
                continue;
            }
            // The state without the rule: the same runtime (object stores) and options, and
            // no reference from the catalog back to the rule that holds it.
            if let Some(followed) = FileTable::of(&provider, || Arc::new(self.plain.clone())) {
                self.write_catalog()?.follow_files(table, followed);
            }
        }
        observe(&self.catalog, tables, SystemTime::now(), true);
        Ok(())
    }

    /// `plan` with its scans of the Delta tables in `seen` reading the version seen (the one the
    /// versions an MV records go with) rather than the latest when the scan runs: a version
    /// committed in between is then a write the MV is stale for, never rows it holds unknown.
    pub(super) async fn at_versions(
        &self,
        plan: LogicalPlan,
        seen: &BTreeMap<String, u64>,
    ) -> Result<LogicalPlan> {
        #[cfg(feature = "delta")]
        {
            use crate::catalog::delta::DeltaSource;
            use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
            use datafusion::datasource::{provider_as_source, source_as_provider};
            use std::any::Any;

            let mut found: Vec<(String, DeltaSource, u64)> = Vec::new();
            plan.apply_with_subqueries(|node| {
                if let LogicalPlan::TableScan(scan) = node
                    && let Some(version) = seen.get(scan.table_name.table())
                    && let Ok(provider) = source_as_provider(&scan.source)
                    && let Some(delta) =
                        (provider.as_ref() as &dyn Any).downcast_ref::<DeltaSource>()
                {
                    found.push((scan.table_name.table().to_string(), delta.clone(), *version));
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            let mut pinned = BTreeMap::new();
            for (table, delta, version) in found {
                if let std::collections::btree_map::Entry::Vacant(entry) = pinned.entry(table) {
                    entry.insert(provider_as_source(Arc::new(delta.at(version).await?)));
                }
            }
            if pinned.is_empty() {
                return Ok(plan);
            }
            let plan = plan.transform_up_with_subqueries(|node| match node {
                LogicalPlan::TableScan(mut scan) => match pinned.get(scan.table_name.table()) {
                    Some(source) => {
                        scan.source = Arc::clone(source);
                        Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                    }
                    None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
                },
                other => Ok(Transformed::no(other)),
            })?;
            Ok(plan.data)
        }
        #[cfg(not(feature = "delta"))]
        {
            let _ = seen;
            Ok(plan)
        }
    }

    /// The rows of `files`, files another writer added to the table on files `table`, as a plan
    /// that reads them, or why they cannot be read alone.
    pub(super) async fn rows_of_files(
        &self,
        table: &str,
        files: &[String],
    ) -> Result<std::result::Result<LogicalPlan, String>> {
        let followed = self.read_catalog()?.file_table(table).cloned();
        Ok(match followed {
            Some(followed) => followed.read(files).await,
            None => Err(format!("{table} is not a table on files")),
        })
    }
}

#[cfg(feature = "delta")]
impl MvSession {
    /// Registers the Delta table at `location` (a path or URL) as `name`, at its latest version
    /// (scans read the latest when they run) or pinned at `version` (time travel). Queries over
    /// it are rewritten like any other's; an MV over it records the version it was computed
    /// from. Registering the same table at another version is no write in itself: the MVs
    /// computed from another version are stale from the next query on, by the versions. A
    /// table of that name over anything else is replaced, a write.
    pub async fn register_delta(
        &self,
        name: &str,
        location: &str,
        version: Option<u64>,
    ) -> Result<()> {
        use crate::catalog::delta::DeltaSource;
        use datafusion::common::TableReference;

        let source = DeltaSource::open(location, version).await?;
        let _maintenance = self.maintenance.lock().await;
        let table = TableReference::bare(name);
        if self.read_catalog()?.contains(name) {
            return Err(crate::error::MvError::NameTaken {
                name: name.to_string(),
            });
        }
        let same_log = match self.ctx.table_provider(table.clone()).await {
            Ok(old) => Some(
                (old.as_ref() as &dyn std::any::Any)
                    .downcast_ref::<DeltaSource>()
                    .is_some_and(|d| d.location() == source.location()),
            ),
            Err(_) => None,
        };
        let source: Arc<dyn datafusion::datasource::TableProvider> = Arc::new(source);
        self.ctx.deregister_table(table.clone())?;
        self.ctx.register_table(table, Arc::clone(&source))?;
        // Followed from now on through the new registration, which the planning of the next
        // query reads the version of (the same log keeps its state: the versions compare).
        let followed = self.read_catalog()?.file_table(name).is_some();
        if followed
            && let Some(file_table) = FileTable::of(&source, || Arc::new(self.plain.clone()))
        {
            self.write_catalog()?.follow_files(name, file_table);
        }
        if same_log == Some(false) {
            self.written(
                name,
                crate::catalog::freshness::Change::Rewrite("replaced".into()),
            )
            .await?;
        }
        Ok(())
    }
}
