//! The rewrite pipeline for one plan, in the order it runs:
//!
//! 1. [`screen`]: what is judged of each MV once for the whole plan; a plan no MV can answer
//!    stops here.
//! 2. [`walk`]: the plan walked top down; unions, grouping sets, regions and parts, each
//!    handed to the steps below.
//! 3. [`candidates`]: the MVs that enter one region's e-graph.
//! 4. [`build`]: the region and its candidates in one e-graph, with the query forms of
//!    `forms/`.
//! 5. [`extract`]: saturation under [`Limits`], the cheapest plan, each MV's status
//!    ([`diagnose`] writes why an MV no rule related to the query was not used).
//!
//! May use: `forms`, `catalog`, `rules`, `egraph`, `plan`, `timeseries`, `report`. Called by
//! the `frontend` (the optimizer rule and the rewrite call).

mod build;
mod candidates;
mod diagnose;
mod extract;
pub mod screen;
mod statuses;
mod walk;

use std::time::Duration;

use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::LogicalPlan;

use crate::catalog::Catalog;
use crate::plan::normal_form::regions_form;
use crate::report::{Candidate, Report};
use crate::rules::RuleSet;
use screen::Screen;
use statuses::Statuses;
use walk::PlanWalk;

/// Fixed bounds on saturation. Iteration and node limits make results deterministic; the time
/// limit is a safety net. When a limit stops saturation, extraction still returns a correct
/// plan (possibly the original), and the report names the limit.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Saturation iterations per region.
    pub iterations: usize,
    /// E-nodes per region's e-graph.
    pub nodes: usize,
    /// Wall time per region's saturation: a safety net only, since `iterations` and `nodes`
    /// already bound the work. Results must not depend on it, so it is set far above what a
    /// saturation takes alone: 64 plans saturating at once on 2 cores in a debug build took
    /// more than 500 ms of wall time each, and stopped before the rewrite was found.
    pub time: Duration,
    /// At most this many MVs enter one region's e-graph, the smallest first; the others are
    /// reported `candidate_limit`.
    pub candidates: usize,
    /// A region no MV answers whole is tried in two parts (src/forms/parts.rs), by at most this
    /// many MVs' filters; 0 never splits one.
    pub parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            iterations: 10,
            nodes: 10_000,
            time: Duration::from_secs(5),
            candidates: 64,
            parts: 2,
        }
    }
}

/// The result of rewriting a plan.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The rewritten plan, or the original when nothing was rewritten.
    pub plan: LogicalPlan,
    /// Whether `plan` differs from the original.
    pub rewritten: bool,
    /// Which MVs were used, and why the others were not.
    pub report: Report,
}

/// How much a rewrite's report says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Explain {
    /// Every MV over the plan's tables, with why it was or was not used.
    All,
    /// Only the MVs used: no reason is written for the others. The optimizer rule rewrites
    /// in this mode, and writes the whole report only when it is read.
    UsedOnly,
}

/// Rule packs plus limits: everything needed to rewrite plans against a catalog.
pub struct Engine {
    rules: RuleSet,
    limits: Limits,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(RuleSet::builtin(), Limits::default())
    }
}

impl Engine {
    /// An engine with these rule packs and limits.
    pub fn new(rules: RuleSet, limits: Limits) -> Self {
        Engine { rules, limits }
    }

    /// Rewrites every maximal region of `plan` that a cheaper MV can answer. Never fails: what
    /// cannot be rewritten is kept as it is, with the reason in the report.
    pub fn rewrite(&self, plan: &LogicalPlan, catalog: &Catalog) -> Outcome {
        self.rewrite_explaining(plan, catalog, Explain::All)
    }

    /// Whether no MV can answer any part of `plan`, judged from the tables and columns it
    /// reads and, for a plan over one table, the dimensions and aggregates it needs (no
    /// region is looked at): what planning a query no MV answers costs.
    pub fn none_can_answer(&self, plan: &LogicalPlan, catalog: &Catalog) -> bool {
        catalog.is_empty()
            || Screen::new(&regions_form(plan), catalog, &self.rules.rollups).none_can_answer()
    }

    /// [`Self::rewrite`], with a report that says as much as `explain` asks: the same plan
    /// whatever it asks.
    pub fn rewrite_explaining(
        &self,
        plan: &LogicalPlan,
        catalog: &Catalog,
        explain: Explain,
    ) -> Outcome {
        let unchanged = |report| Outcome {
            plan: plan.clone(),
            rewritten: false,
            report,
        };
        if catalog.is_empty() {
            return unchanged(Report::default());
        }
        let normalized = regions_form(plan);
        let mut screen = Screen::new(&normalized, catalog, &self.rules.rollups);
        // Most plans no MV can answer are known as such before looking at any region.
        let hopeless = match explain {
            Explain::All => screen.all_hopeless(),
            Explain::UsedOnly => screen.none_can_answer().then(Vec::new),
        };
        if let Some(rejected) = hopeless {
            let candidates = rejected
                .into_iter()
                .map(|(mv, status)| Candidate { mv, status })
                .collect();
            return unchanged(Report {
                candidates,
                ..Report::default()
            });
        }
        let mut walk = PlanWalk::new(self, catalog, screen, explain, plan);
        let result = normalized
            .as_ref()
            .clone()
            .transform_down(|node| walk.visit(node));
        let mut report = walk.finish(result.as_ref().ok().map(|t| &t.data));
        match result {
            Ok(t) if t.transformed => Outcome {
                rewritten: true,
                plan: t.data,
                report,
            },
            Ok(_) => unchanged(report),
            Err(e) => {
                report.unsupported = Some(e.to_string());
                unchanged(report)
            }
        }
    }

    /// One region answered from its candidate MVs, or `None`; every MV considered gets a
    /// status.
    fn rewrite_region(
        &self,
        region: &LogicalPlan,
        catalog: &Catalog,
        screen: &mut Screen,
        (statuses, explain): (&mut Statuses, Explain),
        report: &mut Report,
    ) -> Option<LogicalPlan> {
        let candidates = self.candidates(region, catalog, screen, statuses, explain)?;
        let graph = self.build_egraph(region, &candidates, catalog, statuses, report)?;
        let graph = self.saturate(graph, report);
        let answered = extract::extract(&graph, region, statuses, report)?;
        // An MV fresh only in some partitions is read through a filter to them, a
        // grouping-sets MV through one to its finest set.
        catalog.filter_answering_scans(region, answered)
    }
}
