//! MVs defined by a UNION ALL or UNION of regions (Calcite's union-to-union substitution). Such
//! an MV answers a query's union of as many branches when every query branch is the same
//! relation as a distinct MV branch: a bag union does not depend on branch order, and its
//! columns are positional. Branches are compared in one e-graph after the usual normalization
//! (conjuncts as sets, aliases dropped, ...), so their spelling does not matter either. A UNION
//! (distinct) query is answered from a UNION ALL MV of the same branches, with a DISTINCT on
//! top; the reverse never holds.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use egg::{EGraph, Id};

use crate::catalog::{Catalog, MaterializedView};
use crate::egraph::ToEGraph;
use crate::egraph::lang::{PlanAnalysis, PlanGraph};
use crate::egraph::to_plan::conform;
use crate::plan::region::{self, Determinism};
use crate::plan::union_shape::{UnionShape, not_a_union_of_regions, union_shape};
use crate::report::{CandidateStatus, ReasonCode, Rejection};

/// The query's union answered from a union MV, when one holds its branches: among those that
/// do, one needing no DISTINCT on top, then the one with fewest rows. Every union MV over the
/// same tables gets a status.
pub fn answer_union(
    query: &LogicalPlan,
    shape: &UnionShape,
    catalog: &Catalog,
    note: &mut dyn FnMut(&str, CandidateStatus),
) -> Option<LogicalPlan> {
    if not_a_union_of_regions(shape, Determinism::AllowStable).is_some() {
        return None;
    }
    let tables = region::base_tables(query);
    let mut matching = Vec::new();
    for mv in catalog.candidates(&tables) {
        let Some(mv_shape) = union_shape(&mv.plan) else {
            continue;
        };
        let rejection = match (&mv.eligibility, catalog.stale_rejection(&mv.name)) {
            (Err(r), _) => {
                note(&mv.name, CandidateStatus::Ineligible(r.clone()));
                continue;
            }
            (_, Some(why)) => Rejection::new(ReasonCode::Stale, why),
            _ => {
                let distinct = shape.distinct && !mv_shape.distinct;
                match matched(shape, &mv_shape, &mv.name).and_then(|()| {
                    scan_as(query, &mv, distinct)
                        .map_err(|e| Rejection::new(ReasonCode::UnsupportedQuery, e))
                }) {
                    Ok(plan) => {
                        let rows = mv.row_count.unwrap_or(u64::MAX);
                        matching.push(((distinct, rows), mv.name.clone(), plan));
                        continue;
                    }
                    Err(r) => r,
                }
            }
        };
        note(&mv.name, CandidateStatus::Rejected(rejection));
    }
    matching.sort_by_key(|m| m.0);
    let mut matching = matching.into_iter();
    let (_, used, plan) = matching.next()?;
    note(&used, CandidateStatus::Used);
    for (_, name, _) in matching {
        note(&name, CandidateStatus::MoreExpensive);
    }
    Some(plan)
}

/// Whether the MV's union holds the query's: as many branches, equal one to one, and a
/// DISTINCT MV only for a DISTINCT query.
fn matched(query: &UnionShape, mv: &UnionShape, name: &str) -> Result<(), Rejection> {
    let refuse = |why: String| Err(Rejection::new(ReasonCode::UnionNotMatched, why));
    if mv.distinct && !query.distinct {
        return refuse(format!(
            "{name} is a UNION without duplicates, the query a UNION ALL"
        ));
    }
    if mv.branches.len() != query.branches.len() {
        return refuse(format!(
            "{name} unions {} branches, the query {}",
            mv.branches.len(),
            query.branches.len()
        ));
    }
    let mut egraph: PlanGraph = EGraph::new(PlanAnalysis::default());
    let mut tables = HashMap::new();
    let mut convert = ToEGraph::new(&mut egraph, &mut tables);
    let mut add = |branches: &[Arc<LogicalPlan>]| -> Result<Vec<(Id, Vec<Id>)>, String> {
        branches
            .iter()
            .map(|b| convert.add_region(b).map(|r| (r.root, r.outputs)))
            .collect()
    };
    let (query_branches, mv_branches) = match (add(query.branches), add(mv.branches)) {
        (Ok(q), Ok(m)) => (q, m),
        (Err(why), _) | (_, Err(why)) => {
            return Err(Rejection::new(ReasonCode::UnsupportedQuery, why));
        }
    };
    egraph.rebuild();
    let canonical = |(root, outputs): (Id, Vec<Id>)| {
        let outputs: Vec<Id> = outputs.iter().map(|o| egraph.find(*o)).collect();
        (egraph.find(root), outputs)
    };
    let mut unused: Vec<_> = mv_branches.into_iter().map(canonical).collect();
    for (i, branch) in query_branches.into_iter().enumerate() {
        let branch = canonical(branch);
        match unused.iter().position(|b| *b == branch) {
            Some(p) => {
                unused.swap_remove(p);
            }
            None => {
                return refuse(format!(
                    "the query's branch {} is none of {name}'s branches",
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

/// A scan of the MV with the query's column names and types, under a DISTINCT when the query
/// removes duplicates the MV keeps.
fn scan_as(
    query: &LogicalPlan,
    mv: &MaterializedView,
    distinct: bool,
) -> Result<LogicalPlan, String> {
    let scan = LogicalPlanBuilder::scan(mv.name.as_str(), Arc::clone(&mv.source), None)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let scan = if distinct {
        LogicalPlanBuilder::from(scan)
            .distinct()
            .and_then(|b| b.build())
            .map_err(|e| e.to_string())?
    } else {
        scan
    };
    conform(scan, query.schema())
}
