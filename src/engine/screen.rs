//! What the engine learns about an MV once per query rather than once per region. A query
//! joining many tables has many regions (each join, then each input of a join no MV answers),
//! and most MVs fail the same cheap checks in every one of them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use fixedbitset::FixedBitSet;

use super::candidates::column_missing;
use crate::catalog::{Catalog, MaterializedView};
use crate::forms::lossless;
use crate::plan::dimensions::AggregateCall;
use crate::plan::{dimensions, region};
use crate::report::{CandidateStatus, ReasonCode, Rejection};
use crate::rules::rollup::RollupTable;

pub struct Screen<'a> {
    catalog: &'a Catalog,
    /// How aggregates roll up: which MV aggregates can answer a query's.
    rollups: &'a RollupTable,
    /// The tables the whole plan reads exactly once, with the columns of that one scan: every
    /// region reading such a table reads exactly these columns of it.
    read_once: HashMap<String, BTreeSet<String>>,
    /// Every table the plan reads.
    read: BTreeSet<String>,
    plan: &'a LogicalPlan,
    /// The MVs that may answer part of the plan ([`Catalog::may_answer`]) with their slots;
    /// every other MV over its tables is hopeless.
    may_answer: Vec<(usize, &'a Arc<MaterializedView>)>,
    /// Their addresses, once asked for.
    may_answer_at: Option<HashSet<usize>>,
    /// What is known of each MV, by its [`address`].
    known: HashMap<usize, Known>,
}

#[derive(Default)]
struct Known {
    stale: Option<Option<String>>,
    /// The first column of a table read once that it does not keep, by table.
    missing: Vec<(String, Option<String>)>,
}

impl<'a> Screen<'a> {
    pub fn new(plan: &'a LogicalPlan, catalog: &'a Catalog, rollups: &'a RollupTable) -> Self {
        let mut scans: HashMap<String, Vec<BTreeSet<String>>> = HashMap::new();
        let _ = plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                scans
                    .entry(scan.table_name.table().to_string())
                    .or_default()
                    .push(region::scan_columns(scan).collect());
            }
            Ok(TreeNodeRecursion::Continue)
        });
        let read: BTreeSet<String> = scans.keys().cloned().collect();
        let may_answer = catalog.may_answer(&read, &scans);
        let read_once = scans
            .into_iter()
            .filter(|(_, scans)| scans.len() == 1)
            .filter_map(|(t, mut scans)| Some((t, scans.pop()?)))
            .collect();
        Screen {
            catalog,
            rollups,
            may_answer,
            may_answer_at: None,
            read,
            plan,
            read_once,
            known: HashMap::new(),
        }
    }

    fn known(&mut self, mv: &MaterializedView) -> &mut Known {
        self.known.entry(address(mv)).or_default()
    }

    /// [`Catalog::stale_rejection`], asked once per query.
    pub fn stale_rejection(&mut self, mv: &MaterializedView) -> Option<String> {
        let catalog = self.catalog;
        self.known(mv)
            .stale
            .get_or_insert_with(|| catalog.stale_rejection(&mv.name))
            .clone()
    }

    /// Whether no region of the plan can use `mv`, whatever its tables: it can never answer,
    /// is a UNION, is stale, or (no foreign key being declared, so that it answers only
    /// regions reading all of its tables) reads a table the plan does not read, or a table of
    /// whose every scan in the plan it lacks a column ([`Catalog::may_answer`]).
    pub fn hopeless(&mut self, mv: &MaterializedView) -> bool {
        let may_answer = &self.may_answer;
        let at = self
            .may_answer_at
            .get_or_insert_with(|| may_answer.iter().map(|(_, mv)| address(mv)).collect());
        mv.is_union || !at.contains(&address(mv)) || self.stale_rejection(mv).is_some()
    }

    /// The MVs reading one of `tables` that may answer a region reading them, with these
    /// `columns` and `needed` dimensions ([`Catalog::cannot_answer_region`]), by name.
    pub fn hopeful(
        &mut self,
        tables: &BTreeSet<String>,
        columns: &BTreeSet<String>,
        needed: &BTreeSet<String>,
    ) -> Vec<Arc<MaterializedView>> {
        let cannot = self.catalog.cannot_answer_region(tables, columns, needed);
        let mut hopeful = Vec::new();
        for i in 0..self.may_answer.len() {
            let (slot, mv) = self.may_answer[i];
            let reads_one = tables.iter().any(|t| mv.base_tables.contains(t));
            if !cannot.contains(slot) && reads_one && !self.hopeless(mv) {
                hopeful.push(Arc::clone(mv));
            }
        }
        // In the order the explaining path meets them (`Catalog::reading_any`): MVs alike in
        // cost then win the same way whether or not the engine explains.
        hopeful.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        hopeful
    }

    /// Whether no MV can answer any part of the plan (none is a UNION, which answers unions).
    pub fn none_can_answer(&mut self) -> bool {
        let lacking = self.lacking_dimensions();
        let calls = self.aggregate_calls();
        (0..self.may_answer.len()).all(|i| {
            let (slot, mv) = self.may_answer[i];
            lacking.as_ref().is_some_and(|l| l.contains(slot))
                || self.lacks_aggregate(mv, &calls)
                || (!mv.is_union && self.stale_rejection(mv).is_some())
        })
    }

    /// For a plan reading one table once, the aggregates of its aggregate over that scan
    /// ([`dimensions::aggregate_calls`]); otherwise none.
    fn aggregate_calls(&self) -> Vec<AggregateCall> {
        if self.read.len() != 1 || self.read_once.len() != 1 {
            return Vec::new();
        }
        dimensions::aggregate_calls(self.plan)
    }

    /// Whether `mv`, an aggregate over the plan's one table, cannot compute one of the
    /// aggregates (`calls`) of the plan's aggregate over its scan: every region an aggregate
    /// MV may answer contains that aggregate.
    fn lacks_aggregate(&self, mv: &MaterializedView, calls: &[AggregateCall]) -> bool {
        self.lacked_aggregate(mv, calls).is_some()
    }

    /// The position of the first of `calls` that `mv` cannot compute
    /// ([`Self::lacks_aggregate`]).
    fn lacked_aggregate(&self, mv: &MaterializedView, calls: &[AggregateCall]) -> Option<usize> {
        let kept = mv
            .aggregates
            .as_ref()
            .filter(|_| mv.base_tables == self.read)?;
        calls
            .iter()
            .position(|call| !self.rollups.may_provide(call, kept))
    }

    /// For a plan reading one table once, the aggregate MVs lacking a dimension it filters or
    /// groups on ([`crate::plan::dimensions`]): its aggregate's regions all need those dimensions,
    /// and an aggregate MV answers no region without an aggregate.
    fn lacking_dimensions(&self) -> Option<FixedBitSet> {
        if self.read.len() != 1 || self.read_once.len() != 1 {
            return None;
        }
        let needed = dimensions::needed_by_query(self.plan);
        let lacking = self
            .catalog
            .cannot_answer_region(&self.read, &BTreeSet::new(), &needed);
        Some(lacking)
    }

    /// When no MV can answer any part of the plan, each MV over its tables with its reason,
    /// as the regions would report it.
    pub fn all_hopeless(&mut self) -> Option<Vec<(String, CandidateStatus)>> {
        if !self.none_can_answer() {
            return None;
        }
        let group_columns = region::group_columns(self.plan);
        // For the tables the plan reads several times: an MV lacking a column of each of
        // their scans lacks one of these.
        let plan_columns = region::base_columns(self.plan);
        let calls = self.aggregate_calls();
        // Each aggregate written as SQL once, however many MVs lack it.
        let mut written: Vec<Option<String>> = vec![None; calls.len()];
        let mut rejected = Vec::new();
        for mv in self.catalog.reading_any(&self.read) {
            let status = if let Err(r) = &mv.eligibility {
                CandidateStatus::Ineligible(r.clone())
            } else if let Some(why) = self.stale_rejection(&mv) {
                CandidateStatus::Rejected(Rejection::new(ReasonCode::Stale, why))
            } else if !mv.base_tables.is_subset(&self.read) {
                let constraints = self.catalog.constraints();
                let r = lossless::missing_key(constraints, &self.read, &mv.base_tables, &mv.name);
                CandidateStatus::Rejected(r?)
            } else if let Some(missing) = self.missing_column(&mv, &mv.base_tables, &plan_columns) {
                CandidateStatus::Rejected(column_missing(&missing, &group_columns, &mv.name))
            } else {
                let i = self.lacked_aggregate(&mv, &calls)?;
                let sql =
                    written[i].get_or_insert_with(|| crate::egraph::lang::sql_text(&calls[i].expr));
                CandidateStatus::Rejected(aggregate_missing(&calls[i], sql, &mv.name))
            };
            rejected.push((mv.name.clone(), status));
        }
        Some(rejected)
    }

    /// The first of `region_columns` (the columns of a region reading `tables`) of a table
    /// `mv` reads that `mv` does not keep: an MV over some of the query's tables answers for
    /// the columns of those.
    pub fn missing_column(
        &mut self,
        mv: &MaterializedView,
        tables: &BTreeSet<String>,
        region_columns: &BTreeSet<String>,
    ) -> Option<String> {
        let shared: Vec<&String> = tables.intersection(&mv.base_tables).collect();
        if !shared.iter().all(|t| self.read_once.contains_key(*t)) {
            return region_columns
                .difference(&mv.base_columns)
                .find(|c| {
                    c.split_once('.')
                        .is_some_and(|(t, _)| mv.base_tables.contains(t))
                })
                .cloned();
        }
        let mut first: Option<String> = None;
        for t in shared {
            let known = self.known(mv).missing.iter().find(|(k, _)| k == t);
            let missing = match known {
                Some((_, m)) => m.clone(),
                None => {
                    let m = self.read_once[t]
                        .difference(&mv.base_columns)
                        .next()
                        .cloned();
                    self.known(mv).missing.push((t.clone(), m.clone()));
                    m
                }
            };
            if let Some(m) = missing
                && first.as_ref().is_none_or(|f| m < *f)
            {
                first = Some(m);
            }
        }
        first
    }
}

/// Why an MV cannot compute the query's aggregate `call` (written `aggregate`;
/// [`RollupTable::may_provide`]), in the words the rollup rule uses.
fn aggregate_missing(call: &AggregateCall, aggregate: &str, mv: &str) -> Rejection {
    if call.distinct {
        let reason = format!("{aggregate} needs its argument as a group key of {mv}");
        return Rejection::new(ReasonCode::DistinctNotOnKey, reason);
    }
    Rejection::new(
        ReasonCode::AggregateMissing,
        format!("{mv} does not keep {aggregate}"),
    )
}

/// An MV's address: every MV the screen sees is one of its catalog's, which the screen
/// borrows, so an address stands for one MV while the screen lives (and hashing it allocates
/// nothing, unlike a name).
fn address(mv: &MaterializedView) -> usize {
    std::ptr::from_ref(mv) as usize
}
