//! The DataFusion `OptimizerRule`: add it to any `SessionState` and queries are answered from
//! the MVs in its catalog.

use std::sync::{Arc, Mutex, RwLock};

use datafusion::common::Result;
use datafusion::common::tree_node::Transformed;
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
        if let Some(report) = cached {
            self.remember(report);
            return Ok(Transformed::no(plan));
        }
        let Ok(normalized) = self.normalizer.optimize(plan.clone(), config, |_, _| {}) else {
            return Ok(Transformed::no(plan));
        };
        let outcome = self.engine.rewrite(&normalized, &catalog);
        self.remember(outcome.report.clone());
        if outcome.rewritten {
            return Ok(Transformed::yes(outcome.plan));
        }
        if let Ok(mut last) = self.last_miss.lock() {
            *last = Some((version, plan.clone(), outcome.report));
        }
        Ok(Transformed::no(plan))
    }
}
