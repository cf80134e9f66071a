//! What the engine learns about an MV once per query rather than once per region. A query
//! joining many tables has many regions (each join, then each input of a join no MV answers),
//! and most MVs fail the same cheap checks in every one of them.

use std::collections::{BTreeSet, HashMap};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;

use crate::catalog::{Catalog, MaterializedView};
use crate::engine::column_missing;
use crate::report::{CandidateStatus, ReasonCode, Rejection};
use crate::{lossless, region};

pub struct Screen<'a> {
    catalog: &'a Catalog,
    /// The tables the whole plan reads exactly once, with the columns of that one scan: every
    /// region reading such a table reads exactly these columns of it.
    read_once: HashMap<String, BTreeSet<String>>,
    /// Every table the plan reads.
    read: BTreeSet<String>,
    /// [`region::group_columns`] of the whole plan.
    group_columns: BTreeSet<String>,
    /// What is known of each MV, by its address: every MV passed in is one of `catalog`'s,
    /// which the screen borrows, so an address stands for one MV while the screen lives (and
    /// hashing it allocates nothing, unlike a name).
    known: HashMap<usize, Known>,
}

#[derive(Default)]
struct Known {
    stale: Option<Option<String>>,
    /// No region of the plan can use it.
    hopeless: Option<bool>,
    /// The first column of a table read once that it does not keep, by table.
    missing: Vec<(String, Option<String>)>,
}

impl<'a> Screen<'a> {
    pub fn new(plan: &LogicalPlan, catalog: &'a Catalog) -> Self {
        let mut scans: HashMap<String, (usize, BTreeSet<String>)> = HashMap::new();
        let _ = plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let entry = scans
                    .entry(scan.table_name.table().to_string())
                    .or_default();
                entry.0 += 1;
                entry.1.extend(region::scan_columns(scan));
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Screen {
            catalog,
            read: scans.keys().cloned().collect(),
            group_columns: region::group_columns(plan),
            read_once: scans
                .into_iter()
                .filter(|(_, (n, _))| *n == 1)
                .map(|(t, (_, columns))| (t, columns))
                .collect(),
            known: HashMap::new(),
        }
    }

    fn known(&mut self, mv: &MaterializedView) -> &mut Known {
        self.known
            .entry(std::ptr::from_ref(mv) as usize)
            .or_default()
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
    /// is stale, or (no foreign key being declared, so that it answers only regions reading
    /// all of its tables) reads a table the plan does not read, or a table the plan reads
    /// once without keeping every column the plan reads of it.
    pub fn hopeless(&mut self, mv: &MaterializedView) -> bool {
        if let Some(known) = self.known(mv).hopeless {
            return known;
        }
        let hopeless = mv.eligibility.is_err()
            || mv.is_union
            || self.stale_rejection(mv).is_some()
            || (!self.catalog.constraints().has_foreign_keys()
                && mv.base_tables.iter().any(|t| match self.read_once.get(t) {
                    Some(columns) => !columns.is_subset(&mv.base_columns),
                    None => !self.read.contains(t),
                }));
        self.known(mv).hopeless = Some(hopeless);
        hopeless
    }

    /// When no MV over the plan's tables can answer any of its regions (and none is a UNION,
    /// which answers unions), each one's reason, as the regions would report it.
    pub fn all_hopeless(&mut self) -> Option<Vec<(String, CandidateStatus)>> {
        let mut rejected = Vec::new();
        for mv in self.catalog.reading_any(&self.read) {
            if mv.is_union || !self.hopeless(&mv) {
                return None;
            }
            let status = if let Err(r) = &mv.eligibility {
                CandidateStatus::Ineligible(r.clone())
            } else if let Some(why) = self.stale_rejection(&mv) {
                CandidateStatus::Rejected(Rejection::new(ReasonCode::Stale, why))
            } else if !mv.base_tables.is_subset(&self.read) {
                let constraints = self.catalog.constraints();
                let r = lossless::missing_key(constraints, &self.read, &mv.base_tables, &mv.name);
                CandidateStatus::Rejected(r?)
            } else {
                let missing = self.missing_column(&mv, &mv.base_tables, &BTreeSet::new())?;
                CandidateStatus::Rejected(column_missing(&missing, &self.group_columns, &mv.name))
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
