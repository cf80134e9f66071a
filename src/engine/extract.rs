//! Saturation, extraction and the verdict on each MV: the rule packs run under fixed limits,
//! the cheapest term of the query's class is extracted and converted back to a plan, and
//! every MV that entered is used, more expensive, or rejected with the most specific reason
//! a rule recorded (or, failing that, one [`diagnose`] finds).

use std::collections::{BTreeSet, HashMap, HashSet};

use datafusion::logical_expr::LogicalPlan;
use egg::{Extractor, Id, Language, Runner, SimpleScheduler, Symbol};

use crate::egraph::ToPlan;
use crate::egraph::cost::RowsRead;
use crate::egraph::lang::{Node, PlanAnalysis, PlanGraph};
use crate::report::{CandidateStatus, ReasonCode, Report, SaturationStats};

use super::Engine;
use super::build::RegionGraph;
use super::diagnose::diagnose;
use super::statuses::{Statuses, note};

impl Engine {
    /// Runs the rule packs over the region's e-graph within [`super::Limits`]; the report
    /// records how far it got and why it stopped.
    pub(super) fn saturate(&self, mut graph: RegionGraph, report: &mut Report) -> RegionGraph {
        let runner = Runner::default()
            .with_egraph(graph.egraph)
            .with_iter_limit(self.limits.iterations)
            .with_node_limit(self.limits.nodes)
            .with_time_limit(self.limits.time)
            .with_scheduler(SimpleScheduler)
            .run(&self.rules.rewrites);
        report.saturation.push(SaturationStats {
            iterations: runner.iterations.len(),
            nodes: runner.egraph.total_number_of_nodes(),
            classes: runner.egraph.number_of_classes(),
            stop_reason: runner
                .stop_reason
                .as_ref()
                .map_or("unknown".into(), |r| format!("{r:?}")),
        });
        graph.egraph = runner.egraph;
        graph
    }
}

/// The cheapest plan of the query's class when it reads an MV, with `region`'s names and
/// types, and each MV's status.
pub(super) fn extract(
    graph: &RegionGraph,
    region: &LogicalPlan,
    statuses: &mut Statuses,
    report: &mut Report,
) -> Option<LogicalPlan> {
    let egraph = &graph.egraph;
    let extractor = Extractor::new(egraph, RowsRead { egraph });
    let root = egraph.find(graph.query.root);
    let used = used_mvs(egraph, &extractor, root);
    let mut plan = None;
    if !used.is_empty() {
        let to_plan = ToPlan {
            egraph,
            best: &extractor,
            tables: &graph.tables,
            mvs: &graph.mv_sources,
            rebuilding: Default::default(),
        };
        match to_plan.root(root, region.schema()) {
            Ok(p) => plan = Some(p),
            Err(why) => report.unsupported = Some(format!("could not build the plan: {why}")),
        }
    }
    let used = if plan.is_some() { used } else { HashSet::new() };
    judge(graph, &used, &reachable_mvs(egraph, root), statuses);
    plan
}

/// Each MV's status: used when the plan reads it, more expensive when some plan of the
/// query's class does, otherwise rejected.
fn judge(
    graph: &RegionGraph,
    used: &HashSet<Symbol>,
    reachable: &HashSet<Symbol>,
    statuses: &mut Statuses,
) {
    let egraph = &graph.egraph;
    // Self-join MVs some mapping of whose occurrences reads the query's very rows: a filter
    // that did not match under another mapping is not why they failed.
    let mut mappings_of: HashMap<&str, usize> = HashMap::new();
    for (mv, _) in &graph.mvs {
        *mappings_of.entry(mv.name.as_str()).or_default() += 1;
    }
    let same_rows: HashSet<&str> = graph
        .mvs
        .iter()
        .filter(|(mv, def)| {
            mappings_of[mv.name.as_str()] > 1
                && egraph.find(def.base) == egraph.find(graph.query.base)
        })
        .map(|(mv, _)| mv.name.as_str())
        .collect();
    for (mv, def) in &graph.mvs {
        let name = Symbol::from(&mv.name);
        let status = if used.contains(&name) {
            CandidateStatus::Used
        } else if reachable.contains(&name) {
            CandidateStatus::MoreExpensive
        } else {
            // The most specific reason; among equals the last, as later iterations know
            // more equalities than earlier ones.
            let recorded = egraph
                .analysis
                .rejections
                .iter()
                .filter(|(m, r)| {
                    *m == name
                        && !(r.code == ReasonCode::FilterNotImplied
                            && same_rows.contains(mv.name.as_str()))
                })
                .max_by_key(|(_, r)| r.code.specificity())
                .map(|(_, r)| r.clone());
            CandidateStatus::Rejected(
                recorded.unwrap_or_else(|| diagnose(egraph, &graph.query, def, &mv.name)),
            )
        };
        note(statuses, &mv.name, status);
    }
}

/// MVs read by the extracted plan.
fn used_mvs(
    egraph: &PlanGraph,
    best: &Extractor<RowsRead, Node, PlanAnalysis>,
    root: Id,
) -> HashSet<Symbol> {
    let mut used = HashSet::new();
    let mut todo = vec![root];
    let mut seen = HashSet::new();
    while let Some(class) = todo.pop() {
        if !seen.insert(egraph.find(class)) {
            continue;
        }
        let node = best.find_best_node(class);
        if let Node::Mv([name, _]) = node {
            used.extend(crate::egraph::lang::name_of(egraph, *name));
        } else {
            todo.extend(node.children().iter().copied());
        }
    }
    used
}

/// Every class reachable from `root`.
pub(super) fn reachable_classes(egraph: &PlanGraph, root: Id) -> Vec<Id> {
    let mut seen = HashSet::new();
    let mut todo = vec![root];
    while let Some(class) = todo.pop() {
        if seen.insert(egraph.find(class)) {
            for node in &egraph[class].nodes {
                todo.extend(node.children().iter().copied());
            }
        }
    }
    seen.into_iter().collect()
}

/// MVs some plan in the root class reads: those that matched, whether chosen or not.
fn reachable_mvs(egraph: &PlanGraph, root: Id) -> HashSet<Symbol> {
    let mut reach: HashMap<Id, BTreeSet<Symbol>> = HashMap::new();
    loop {
        let mut changed = false;
        for class in egraph.classes() {
            let mut set = reach.get(&class.id).cloned().unwrap_or_default();
            let before = set.len();
            for node in &class.nodes {
                match node {
                    Node::Mv([name, _]) => set.extend(crate::egraph::lang::name_of(egraph, *name)),
                    Node::Scan(_) | Node::Expr(..) | Node::Name(_) => {}
                    _ => {
                        for c in node.children() {
                            if let Some(s) = reach.get(&egraph.find(*c)) {
                                set.extend(s.iter().copied());
                            }
                        }
                    }
                }
            }
            if set.len() != before {
                changed = true;
                reach.insert(class.id, set);
            }
        }
        if !changed {
            break;
        }
    }
    reach
        .remove(&root)
        .unwrap_or_default()
        .into_iter()
        .collect()
}
