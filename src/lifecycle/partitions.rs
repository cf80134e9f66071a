//! Refreshing only the partitions that changed (`crate::catalog::partitions`): when files were
//! added, removed or rewritten in some partitions of one Hive-partitioned table whose
//! partition column the MV keeps, the MV's rows of the other partitions are kept, and its
//! definition is computed over the changed partitions alone (DataFusion prunes the others from
//! the scan by the filter on the partition column) and stored beside them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::ident;

use super::MvSession;
use super::refresh::{Install, RefreshMode, Refreshed};
use crate::catalog::freshness::Change;
use crate::catalog::partitions::Cut;
use crate::error::Result;
use crate::lifecycle::storage::Stored;

impl MvSession {
    /// Recomputes the partitions of `name` whose files changed, keeping its other rows.
    /// `Ok(Err(why))` when the change is not one it can take: then nothing was changed.
    pub(super) async fn refresh_partitions(
        &self,
        name: &str,
        sql: Option<String>,
        definition: &LogicalPlan,
        mut stored: Stored,
        from: &BTreeMap<String, u64>,
    ) -> Result<std::result::Result<Refreshed, String>> {
        // The cut, the version it brings the table to and the Delta versions read, together.
        let (cut, version, seen) = {
            let catalog = self.read_catalog()?;
            let inputs = crate::plan::region::base_tables(definition);
            match catalog.cuts(name).as_deref() {
                Some([cut]) => (
                    cut.clone(),
                    catalog.versions().current(&cut.table),
                    catalog.seen_versions(&inputs),
                ),
                _ => return Ok(Err("no single partitioned table changed".into())),
            }
        };
        // Only files outside the partitions changed: nothing to recompute.
        let over_changed = match over_partitions(definition, &cut) {
            Ok(plan) => Some(plan).filter(|_| !cut.changed.is_empty()),
            Err(why) => return Ok(Err(why)),
        };
        let Some(kept_by) = stored.schema.fields().get(cut.output).map(|f| f.name()) else {
            return Ok(Err("it does not store the partition column".into()));
        };
        let kept = self
            .ctx
            .read_table(stored.provider()?)?
            .filter(cut.unchanged(ident(kept_by)))?
            .logical_plan()
            .clone();
        // The kept and the recomputed rows are of other groups: stored together, with no
        // regrouping needed between them.
        let rows = match over_changed {
            Some(plan) => {
                let plan = self.at_versions(plan, &seen).await?;
                LogicalPlanBuilder::from(kept).union(plan)?.build()?
            }
            None => kept,
        };
        stored.rows = self
            .materialize(name, sql.is_some(), rows, &stored.schema)
            .await?;
        let mut from = from.clone();
        from.insert(cut.table.clone(), version);
        let stored_rows = self
            .install(Install {
                name: name.to_string(),
                sql,
                definition: definition.clone(),
                stored,
                computed_from: from,
                computed_at: SystemTime::now(),
                change: Some(Change::Rewrite("recomputed in some partitions".into())),
                save: true,
            })
            .await?;
        Ok(Ok(Refreshed {
            mv: name.to_string(),
            mode: RefreshMode::Partitions,
            reason: format!(
                "only files of some partitions changed ({}): those recomputed, the others' rows kept",
                cut.describe()
            ),
            rows: stored_rows,
            partitions: cut.values(),
        }))
    }
}

/// `definition` with its one scan of the cut's table reading only the changed partitions.
fn over_partitions(
    definition: &LogicalPlan,
    cut: &Cut,
) -> std::result::Result<LogicalPlan, String> {
    let mut scans = 0;
    let _ = definition.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(s) = node
            && s.table_name.table() == cut.table
        {
            scans += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if scans != 1 {
        return Err(format!("it reads {} {scans} times", cut.table));
    }
    let filtered = definition.clone().transform_up(|node| match node {
        LogicalPlan::TableScan(scan) if scan.table_name.table() == cut.table => {
            let changed = cut.changed_rows(cut.on_scan(&scan.table_name));
            let plan = LogicalPlanBuilder::from(LogicalPlan::TableScan(scan))
                .filter(changed)?
                .build()?;
            Ok(Transformed::new(plan, true, TreeNodeRecursion::Jump))
        }
        other => Ok(Transformed::no(other)),
    });
    filtered.map(|t| t.data).map_err(|e| e.to_string())
}
