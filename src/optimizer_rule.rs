//! The DataFusion `OptimizerRule`: add it to any `SessionState` and queries are answered from
//! the MVs in its catalog.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{ApplyOrder, Optimizer, OptimizerConfig, OptimizerRule};

use crate::catalog::Catalog;
use crate::engine::Engine;
use crate::report::Report;

/// Rewrites plans to read materialized views. Append it after DataFusion's own rules
/// (`SessionStateBuilder::with_optimizer_rule`): it expects simplified, pushed-down plans, and
/// DataFusion's later passes then push filters and projections into the MV scan.
pub struct MvRewriteRule {
    catalog: Arc<RwLock<Catalog>>,
    engine: Arc<Engine>,
    /// DataFusion's own rules, run to their fixpoint before rewriting: the rule may see a plan
    /// in the optimizer's first pass, but MV definitions were normalized to the fixpoint, and
    /// both must be in the same shape to match (and a query that folds to nothing needs no MV).
    normalizer: Optimizer,
    /// The last plan nothing was found for, with the catalog version: DataFusion calls the rule
    /// once per optimizer pass, and an unchanged plan needs no second attempt.
    last_miss: Mutex<Option<(u64, LogicalPlan, Report)>>,
    last_report: Mutex<Option<Report>>,
    /// The MVs the last rewrite put into a plan, with its query's start time: DataFusion calls
    /// the rule again in later passes over the same query, on a plan that already reads them,
    /// and they must stay reported as used (but not in the next query that reads them by name).
    introduced: Mutex<(Option<i64>, HashSet<String>)>,
}

impl std::fmt::Debug for MvRewriteRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MvRewriteRule").finish_non_exhaustive()
    }
}

impl MvRewriteRule {
    pub fn new(catalog: Arc<RwLock<Catalog>>, engine: Arc<Engine>) -> Self {
        MvRewriteRule {
            catalog,
            engine,
            normalizer: Optimizer::new(),
            last_miss: Mutex::new(None),
            last_report: Mutex::new(None),
            introduced: Mutex::new((None, HashSet::new())),
        }
    }

    /// Forgets the last report (so the next one belongs to the next query).
    pub fn clear_report(&self) {
        if let Ok(mut last) = self.last_report.lock() {
            *last = None;
        }
    }

    /// Keeps `report` as the last one if some MV was considered.
    fn remember(&self, report: Report) {
        if !report.candidates.is_empty()
            && let Ok(mut last) = self.last_report.lock()
        {
            *last = Some(report);
        }
    }

    /// The MVs the last rewrite of the same query put into `plan`.
    fn introduced_in(&self, query: Option<i64>, plan: &LogicalPlan) -> Vec<String> {
        let Ok(guard) = self.introduced.lock() else {
            return vec![];
        };
        let (started, introduced) = &*guard;
        if query.is_none() || *started != query {
            return vec![];
        }
        let mut found = Vec::new();
        let _ = plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && introduced.contains(scan.table_name.table())
            {
                found.push(scan.table_name.table().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    }

    /// The report of the last plan in which some MV was considered.
    pub fn last_report(&self) -> Option<Report> {
        self.last_report.lock().ok().and_then(|r| r.clone())
    }
}

impl OptimizerRule for MvRewriteRule {
    fn name(&self) -> &str {
        "mvrewrite"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let Ok(catalog) = self.catalog.read() else {
            return Ok(Transformed::no(plan));
        };
        if !catalog.has_mvs_over(&crate::region::base_tables(&plan)) {
            return Ok(Transformed::no(plan));
        }
        let version = catalog.version();
        let cached = self.last_miss.lock().ok().and_then(|last| {
            last.as_ref()
                .filter(|(v, p, _)| *v == version && *p == plan)
                .map(|(_, _, report)| report.clone())
        });
        let query = config
            .query_execution_start_time()
            .and_then(|t| t.timestamp_nanos_opt());
        let carried = self.introduced_in(query, &plan);
        if let Some(mut report) = cached {
            carried.iter().for_each(|mv| report.mark_used(mv));
            self.remember(report);
            return Ok(Transformed::no(plan));
        }
        let Ok(normalized) = self.normalizer.optimize(plan.clone(), config, |_, _| {}) else {
            return Ok(Transformed::no(plan));
        };
        let mut outcome = self.engine.rewrite(&normalized, &catalog);
        carried.iter().for_each(|mv| outcome.report.mark_used(mv));
        self.remember(outcome.report.clone());
        if outcome.rewritten {
            if let Ok(mut introduced) = self.introduced.lock() {
                *introduced = (query, outcome.report.used_mvs().into_iter().collect());
            }
            // A join back to other tables comes out as a filter over a cross join: DataFusion
            // turns it into a hash join and pushes projections into the MV scan, even when
            // this is its last pass.
            let plan = self
                .normalizer
                .optimize(outcome.plan.clone(), config, |_, _| {})
                .unwrap_or(outcome.plan);
            return Ok(Transformed::yes(plan));
        }
        if let Ok(mut last) = self.last_miss.lock() {
            *last = Some((version, plan.clone(), outcome.report));
        }
        Ok(Transformed::no(plan))
    }
}
