//! The MVs that enter a region's e-graph: those reading its tables (the same tables first,
//! then more tables joined through declared keys, then fewer tables joined back), less those
//! a cheap check already rules out (ineligible, a union, stale, a column or dimension not
//! kept, occurrences that do not map), at most [`super::Limits::candidates`] of them, the most like
//! the query first.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::logical_expr::LogicalPlan;

use crate::catalog::{Catalog, MaterializedView};
use crate::forms::lossless;
use crate::plan::dimensions;
use crate::plan::occurrences::{self, Mapping};
use crate::plan::region;
use crate::report::{CandidateStatus, ReasonCode, Rejection};

use super::screen::Screen;
use super::statuses::{Statuses, note, rank};
use super::{Engine, Explain};

/// An MV that may answer the region, with the mappings of its table occurrences onto the
/// query's (one unless it reads a table several times: self-joins).
pub(super) type Candidate = (Arc<MaterializedView>, Vec<Mapping>);

impl Engine {
    /// The MVs to put in `region`'s e-graph, or `None` when there is none; every MV looked at
    /// and left out gets a status.
    pub(super) fn candidates(
        &self,
        region: &LogicalPlan,
        catalog: &Catalog,
        screen: &mut Screen,
        statuses: &mut Statuses,
        explain: Explain,
    ) -> Option<Vec<Candidate>> {
        let checks = Checks::new(region);
        let mut considered = checks.over_tables(catalog, screen, statuses, explain);
        if considered.is_empty() {
            return None;
        }
        // Bounded work whatever the catalog: the MVs most like the query enter the e-graph
        // (`limit_candidates`). With more MVs than may enter, ranking them before the checks
        // below lets those checks stop once enough have passed, unless every MV is explained.
        let limit = self.limits.candidates;
        let ranked = considered.len() > limit;
        if ranked {
            rank_by_likeness(&mut considered, region, |mv| mv);
        }
        let mut eligible = Vec::new();
        let mut variants = 0;
        for mv in considered {
            if ranked && variants > limit && explain == Explain::UsedOnly {
                break;
            }
            match checks.check(&mv, screen) {
                Ok(mappings) => {
                    variants += mappings.len();
                    eligible.push((mv, mappings));
                }
                Err(status) => note(statuses, &mv.name, status),
            }
        }
        if eligible.is_empty() {
            return None;
        }
        if variants > limit {
            if !ranked {
                rank_by_likeness(&mut eligible, region, |(mv, _)| mv);
            }
            limit_candidates(&mut eligible, limit, statuses);
        }
        Some(eligible)
    }
}

/// What the cheap checks need of the region, computed once for all its MVs.
struct Checks {
    tables: BTreeSet<String>,
    columns: BTreeSet<String>,
    needed: BTreeSet<String>,
    group_columns: BTreeSet<String>,
    occurrences: std::collections::BTreeMap<String, usize>,
}

impl Checks {
    fn new(region: &LogicalPlan) -> Self {
        Checks {
            tables: region::base_tables(region),
            columns: region::base_columns(region),
            needed: dimensions::needed_by_query(region),
            group_columns: region::group_columns(region),
            occurrences: occurrences::table_occurrences(region),
        }
    }

    /// The MVs over the region's tables, then those over more tables whose extra joins declared
    /// keys make lossless (src/forms/lossless.rs), then those over some of them, which answer
    /// their part joined back to the rest (src/forms/join_back.rs); each by name, less those
    /// already settled in this plan.
    fn over_tables(
        &self,
        catalog: &Catalog,
        screen: &mut Screen,
        statuses: &mut Statuses,
        explain: Explain,
    ) -> Vec<Arc<MaterializedView>> {
        let tables = &self.tables;
        let reading = match explain {
            Explain::All => catalog.reading_any(tables),
            Explain::UsedOnly => screen.hopeful(tables, &self.columns, &self.needed),
        };
        let (exact, others): (Vec<_>, Vec<_>) = reading
            .into_iter()
            .partition(|mv| mv.base_tables == *tables);
        let mut wider = Vec::new();
        for mv in others {
            if settled(screen, statuses, &mv) {
                continue;
            }
            if mv.base_tables.is_subset(tables) {
                wider.push(mv);
                continue;
            }
            match lossless::missing_key(catalog.constraints(), tables, &mv.base_tables, &mv.name) {
                None => wider.push(mv),
                Some(r) => note(statuses, &mv.name, CandidateStatus::Rejected(r)),
            }
        }
        exact
            .into_iter()
            .chain(wider)
            .filter(|mv| !settled(screen, statuses, mv))
            .collect()
    }

    /// The mappings of `mv`'s occurrences onto the query's, or why it cannot answer: checks
    /// far cheaper than the e-graph that keep most MVs that cannot answer out of it.
    fn check(
        &self,
        mv: &MaterializedView,
        screen: &mut Screen,
    ) -> Result<Vec<Mapping>, CandidateStatus> {
        let rejected = |r| Err(CandidateStatus::Rejected(r));
        if let Err(r) = &mv.eligibility {
            return Err(CandidateStatus::Ineligible(r.clone()));
        }
        if mv.is_union {
            let why = format!(
                "{} is a UNION: it answers only a UNION of the same branches",
                mv.name
            );
            return rejected(Rejection::new(ReasonCode::UnionNotMatched, why));
        }
        if let Some(why) = screen.stale_rejection(mv) {
            return rejected(Rejection::new(ReasonCode::Stale, why));
        }
        if let Some(missing) = screen.missing_column(mv, &self.tables, &self.columns) {
            return rejected(column_missing(&missing, &self.group_columns, &mv.name));
        }
        if let Some(r) = self.dimension_not_kept(mv) {
            return rejected(r);
        }
        occurrences::mappings(&self.occurrences, &mv.occurrences, &mv.name)
            .map_err(CandidateStatus::Rejected)
    }

    /// A column the query groups or filters on that an aggregate MV over its one table
    /// neither groups by nor filters on (src/plan/dimensions.rs).
    fn dimension_not_kept(&self, mv: &MaterializedView) -> Option<Rejection> {
        let unkept = mv
            .dimensions
            .as_ref()
            .filter(|_| mv.base_tables == self.tables)
            .and_then(|kept| self.needed.difference(kept).next())?;
        let grouped = self
            .group_columns
            .iter()
            .any(|g| g.split_once('.').is_some_and(|(_, c)| c == unkept));
        let (code, verb) = if grouped {
            (ReasonCode::GroupByNotKept, "groups by")
        } else {
            (ReasonCode::FilterNotOnGroupKeys, "filters on")
        };
        let reason = format!(
            "the query {verb} {unkept}, which {} neither groups by nor filters on",
            mv.name
        );
        Some(Rejection::new(code, reason))
    }
}

/// The query reads `missing` (`table.column`), which `mv` does not keep.
pub(super) fn column_missing(
    missing: &str,
    group_columns: &BTreeSet<String>,
    mv: &str,
) -> Rejection {
    let (code, verb) = if group_columns.contains(missing) {
        (ReasonCode::GroupByNotKept, "groups by")
    } else {
        (ReasonCode::ColumnMissing, "reads")
    };
    Rejection::new(
        code,
        format!("the query {verb} {missing}, which {mv} does not keep"),
    )
}

/// Orders MVs most like `region` first (sharing its filters, keys and aggregates), then the
/// smallest, then by name: the order in which they enter a bounded e-graph.
fn rank_by_likeness<T>(
    items: &mut [T],
    region: &LogicalPlan,
    mv: impl Fn(&T) -> &Arc<MaterializedView>,
) {
    let wanted = region::signature(region);
    items.sort_by_cached_key(|item| {
        let mv = mv(item);
        (
            std::cmp::Reverse(region::shared(&mv.signature, &wanted)),
            mv.row_count.unwrap_or(u64::MAX),
            mv.name.clone(),
        )
    });
}

/// Keeps the first of the ranked `eligible` MVs whose mappings (one per self-join variant)
/// fit in `limit`, at least one, and notes the others as left out.
fn limit_candidates(eligible: &mut Vec<Candidate>, limit: usize, statuses: &mut Statuses) {
    let passed = eligible.len();
    let mut taken = 0;
    let keep = eligible
        .iter()
        .take_while(|(_, m)| {
            taken += m.len();
            taken <= limit
        })
        .count()
        .max(1);
    for (mv, _) in eligible.drain(keep..) {
        let why = format!(
            "{passed} MVs over these tables passed the index; only the {keep} most like the query entered the e-graph",
        );
        let r = Rejection::new(ReasonCode::CandidateLimit, why);
        note(statuses, &mv.name, CandidateStatus::Rejected(r));
    }
}

/// Whether `mv` need not be looked at again in this plan: no region can use it, and what was
/// noted of it says as much as another region's rejection would.
pub(super) fn settled(screen: &mut Screen, statuses: &Statuses, mv: &MaterializedView) -> bool {
    statuses.get(&mv.name).is_some_and(|s| rank(s) <= 3) && screen.hopeless(mv)
}
