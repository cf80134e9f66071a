//! The walk down one plan: each union is offered to union MVs whole, each grouping-sets
//! aggregate as the plain aggregate under it, each maximal region to the e-graph, and a region
//! no MV answers whole in parts; below what was not answered, the walk goes on (a join's
//! inputs, an aggregate's inner aggregate). What is answered is not looked into again.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DataFusionResult;
use datafusion::logical_expr::LogicalPlan;

use crate::catalog::Catalog;
use crate::egraph::to_plan::conform;
use crate::forms::{intersect, parts, reaggregate, union};
use crate::plan::occurrences;
use crate::plan::region::{self, Determinism};
use crate::plan::union_shape::union_shape;
use crate::report::{Candidate, CandidateStatus, ReasonCode, Rejection, Report};

use super::screen::Screen;
use super::statuses::{Statuses, note};
use super::{Engine, Explain};

/// Why an MV that answered part of a region was not used after all.
const NOT_REBUILT: &str = "it answers the plain aggregate under the GROUPING SETS, but the sets could not be rebuilt over it";
const NOT_UNITED: &str =
    "it answers the rows its filter keeps, but they could not be united with the others";

/// What the walk down one plan has learned so far.
pub(super) struct PlanWalk<'a> {
    engine: &'a Engine,
    catalog: &'a Catalog,
    screen: Screen<'a>,
    explain: Explain,
    pub statuses: Statuses,
    pub report: Report,
    /// Tables (with how often each is read) of join regions already tried: their
    /// sub-regions reading the same are the same question.
    tried_joins: HashSet<std::collections::BTreeMap<String, usize>>,
    notes: Vec<String>,
    /// Tables read by answers not kept (grouping sets not rebuilt over a plain aggregate's
    /// answer, parts not united), with why: such an MV was not used after all, unless
    /// another region reads it.
    unkept: BTreeMap<String, &'static str>,
    /// A plan already reading an MV is not split again: its other part, read from the
    /// tables, is exactly the rows the MV does not hold.
    may_split: bool,
}

impl<'a> PlanWalk<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        catalog: &'a Catalog,
        screen: Screen<'a>,
        explain: Explain,
        plan: &LogicalPlan,
    ) -> Self {
        let may_split = engine.limits.parts > 0
            && catalog.may_add_unions()
            && !region::base_tables(plan)
                .iter()
                .any(|t| catalog.contains(t));
        PlanWalk {
            engine,
            catalog,
            screen,
            explain,
            statuses: Statuses::new(),
            report: Report::default(),
            tried_joins: HashSet::new(),
            notes: Vec::new(),
            unkept: BTreeMap::new(),
            may_split,
        }
    }

    /// One node of the walk, top down: answered whole, or looked into, or passed over.
    pub(super) fn visit(
        &mut self,
        node: LogicalPlan,
    ) -> DataFusionResult<Transformed<LogicalPlan>> {
        let answered = |new| Ok(Transformed::new(new, true, TreeNodeRecursion::Jump));
        // A union MV answers a whole union; otherwise its branches are regions of their own.
        if let Some(shape) = union_shape(&node) {
            let statuses = &mut self.statuses;
            let new = union::answer_union(&node, &shape, self.catalog, &mut |mv, status| {
                note(statuses, mv, status)
            });
            return match new {
                Some(new) => answered(new),
                None => Ok(Transformed::no(node)),
            };
        }
        if let Some(new) = self.grouping_sets(&node) {
            return answered(new);
        }
        if region::not_a_region(&node, Determinism::AllowStable).is_some() {
            return Ok(Transformed::no(node));
        }
        // A join no MV answers whole may still have inputs that one answers, and an
        // aggregate over an aggregate its inner one.
        let joins = has_join(&node);
        if let Some(new) = self.answer(&node, joins) {
            return answered(new);
        }
        if let Some(new) = self.intersect_swapped(&node) {
            return answered(new);
        }
        if let Some(new) = self.in_parts(&node) {
            return answered(new);
        }
        let below = if joins || nests_aggregates(&node) {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Jump
        };
        Ok(Transformed::new(node, false, below))
    }

    /// `region` answered from the MVs, or `None`. `joins`: a region joining tables that need
    /// not be tried again below it (not for a grouping-sets split, whose join alone may still
    /// be answered).
    fn answer(&mut self, region: &LogicalPlan, joins: bool) -> Option<LogicalPlan> {
        if joins
            && !self
                .tried_joins
                .insert(occurrences::table_occurrences(region))
        {
            return None;
        }
        let (engine, catalog, explain) = (self.engine, self.catalog, self.explain);
        let (screen, statuses, report) = (&mut self.screen, &mut self.statuses, &mut self.report);
        // A bug in a rule must cost the rewrite, never the query: keep the region.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.rewrite_region(region, catalog, screen, (statuses, explain), report)
        }))
        .unwrap_or_else(|_| {
            self.report.unsupported = Some("internal error while rewriting; plan kept".into());
            None
        })
    }

    /// A distinct INTERSECT answered with its sides swapped (src/forms/intersect.rs), named
    /// back as the query's.
    fn intersect_swapped(&mut self, node: &LogicalPlan) -> Option<LogicalPlan> {
        let swapped = intersect::swapped(node)?;
        // The same tables as the region just tried: asked again, in the other order.
        let answered = self.answer(&swapped, false)?;
        conform(answered, node.schema()).ok()
    }

    /// Grouping sets over a plain aggregate an MV answers, re-aggregated per set.
    fn grouping_sets(&mut self, node: &LogicalPlan) -> Option<LogicalPlan> {
        match reaggregate::split_grouping_sets(node, &self.engine.rules.rollups) {
            Some(Ok(split))
                if region::not_a_region(&split.inner, Determinism::AllowStable).is_none() =>
            {
                let answered = self.answer(&split.inner, false)?;
                let read = region::base_tables(&answered);
                let new = split.over(answered);
                if new.is_none() {
                    self.unkept
                        .extend(read.into_iter().map(|t| (t, NOT_REBUILT)));
                }
                new
            }
            Some(Err(why)) => {
                self.notes.push(format!(
                    "the GROUPING SETS aggregate is not answered through a plain one: {why}"
                ));
                None
            }
            _ => None,
        }
    }

    /// The rows an MV's filter keeps from `node`, and the others from the tables.
    fn in_parts(&mut self, node: &LogicalPlan) -> Option<LogicalPlan> {
        if !self.may_split {
            return None;
        }
        let engine = self.engine;
        for condition in self.part_conditions() {
            let mut read = BTreeSet::new();
            let mut answer_part = |part: &LogicalPlan| {
                let answered = self.answer(part, false)?;
                read = region::base_tables(&answered);
                Some(answered)
            };
            let rollups = &engine.rules.rollups;
            let in_parts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                parts::answer_in_parts(node, &condition, rollups, &mut answer_part)
            }));
            match in_parts.ok().flatten() {
                Some(new) => {
                    self.report.parts.push(format!(
                        "{} answers the rows where {}; the others are read from {}",
                        condition.mv,
                        crate::egraph::lang::sql_text(&condition.predicate),
                        condition.table
                    ));
                    return Some(new);
                }
                None => self
                    .unkept
                    .extend(read.into_iter().map(|t| (t, NOT_UNITED))),
            }
        }
        None
    }

    /// Filters to answer a region in parts by (src/forms/parts.rs): those of the MVs its own filter
    /// does not imply, at most [`Limits::parts`].
    fn part_conditions(&self) -> Vec<parts::Condition> {
        self.statuses
            .iter()
            .filter(|(_, status)| {
                matches!(status, CandidateStatus::Rejected(r) if r.code == ReasonCode::FilterNotImplied)
            })
            // A stale MV's rows next to the table's current ones would mix two times (a row
            // updated out of its filter since would count twice); one restricted to its
            // unchanged partitions holds current rows only (src/catalog/partitions.rs).
            .filter(|(mv, _)| self.catalog.answers_current_rows(mv))
            .filter_map(|(mv, _)| self.catalog.answering(mv))
            .flat_map(|mv| parts::conditions(mv))
            .take(self.engine.limits.parts)
            .collect()
    }

    /// The report, once the walk has given `rewritten` (the plan it made, if it made one):
    /// every MV's status, and notes on the MVs used.
    pub(super) fn finish(mut self, rewritten: Option<&LogicalPlan>) -> Report {
        if let Some(plan) = rewritten {
            let read = region::base_tables(plan);
            for (mv, why) in self.unkept.iter().filter(|(mv, _)| !read.contains(*mv)) {
                if self.statuses.get(mv) == Some(&CandidateStatus::Used) {
                    let r = Rejection::new(ReasonCode::UnsupportedQuery, *why);
                    self.statuses
                        .insert(mv.clone(), CandidateStatus::Rejected(r));
                }
            }
        }
        let explain = self.explain;
        let mut report = self.report;
        report.candidates = self
            .statuses
            .into_iter()
            .filter(|(_, status)| explain == Explain::All || *status == CandidateStatus::Used)
            .map(|(mv, status)| Candidate { mv, status })
            .collect();
        report.notes = report
            .used_mvs()
            .iter()
            .filter_map(|mv| self.catalog.stale_note(mv))
            .chain(self.notes)
            .collect();
        report
    }
}

fn has_join(plan: &LogicalPlan) -> bool {
    plan.exists(|n| Ok(matches!(n, LogicalPlan::Join(_))))
        .unwrap_or(false)
}

/// Whether an aggregate of `plan` reads another aggregate's output.
fn nests_aggregates(plan: &LogicalPlan) -> bool {
    let aggregates = |n: &LogicalPlan| {
        n.exists(|n| Ok(matches!(n, LogicalPlan::Aggregate(_))))
            .unwrap_or(false)
    };
    plan.exists(|n| {
        Ok(matches!(n, LogicalPlan::Aggregate(_)) && n.inputs().into_iter().any(aggregates))
    })
    .unwrap_or(false)
}
