//! Why an MV that entered the e-graph was not related to the query, when no rule said so
//! itself: the joins, inputs or filters that differ, in words.

use std::collections::HashSet;

use egg::Id;

use crate::egraph::RegionInEGraph;
use crate::egraph::lang::{Node, PlanGraph, display, list_items};
use crate::report::{ReasonCode, Rejection};

use super::extract::reachable_classes;

/// Why no rule related the MV to the query, when no rule said so itself: the first of its
/// joins, its inputs, its filter or its grouping that differs.
pub(super) fn diagnose(
    egraph: &PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
    name: &str,
) -> Rejection {
    if let Some(r) = joins_differ(egraph, query, mv, name) {
        return r;
    }
    if let Some(r) = inputs_differ(egraph, query, mv, name) {
        return r;
    }
    if egraph.find(query.base) != egraph.find(mv.base) {
        return Rejection::new(
            ReasonCode::FilterNotImplied,
            format!(
                "the query reads {}, but {name} keeps only {}",
                rows_where(conjuncts(egraph, query.base)),
                rows_where(conjuncts(egraph, mv.base))
            ),
        );
    }
    if mv.aggregated && !query.aggregated {
        return Rejection::new(
            ReasonCode::MvAggregatesQueryDoesNot,
            format!("{name} holds groups, but the query reads individual rows"),
        );
    }
    Rejection::new(
        ReasonCode::UnsupportedQuery,
        format!("no rule relates the query to {name}"),
    )
}

/// The query's outer, semi and anti joins against the MV's, when they differ.
fn joins_differ(
    egraph: &PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
    name: &str,
) -> Option<Rejection> {
    let (query_joins, mv_joins) = (joins(egraph, query.base), joins(egraph, mv.base));
    if query_joins == mv_joins {
        return None;
    }
    let list = |j: &[String]| {
        if j.is_empty() {
            "no outer, semi or anti join".to_string()
        } else {
            j.join(" and ")
        }
    };
    Some(Rejection::new(
        ReasonCode::JoinNotMatched,
        format!(
            "the query has {}, but {name} has {}",
            list(&query_joins),
            list(&mv_joins)
        ),
    ))
}

/// The inputs only one of them joins, when their filters are alike but their inputs are not.
fn inputs_differ(
    egraph: &PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
    name: &str,
) -> Option<Rejection> {
    let (query_conds, query_inputs) = crate::egraph::lang::unjoined(egraph, query.base);
    let (mv_conds, mv_inputs) = crate::egraph::lang::unjoined(egraph, mv.base);
    let alike =
        |a: &[Id], b: &[Id]| a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x));
    if !alike(&query_conds, &mv_conds) || alike(&query_inputs, &mv_inputs) {
        return None;
    }
    let only = |of: &[Id], not_in: &[Id]| {
        let described: Vec<String> = of
            .iter()
            .filter(|i| !not_in.contains(i))
            .map(|i| describe_input(egraph, *i, 0))
            .collect();
        if described.is_empty() {
            "nothing else".to_string()
        } else {
            described.join(" and ")
        }
    };
    let verb = if query_inputs.len() > 1 {
        "joins"
    } else {
        "reads"
    };
    Some(Rejection::new(
        ReasonCode::JoinNotMatched,
        format!(
            "the query {verb} {}, where {name} {verb} {}",
            only(&query_inputs, &mv_inputs),
            only(&mv_inputs, &query_inputs)
        ),
    ))
}

/// The conjuncts of the filter at `base`, written out.
fn conjuncts(egraph: &PlanGraph, base: Id) -> Vec<String> {
    egraph[base]
        .nodes
        .iter()
        .find_map(|n| match n {
            Node::Filter([list, _]) => Some(
                list_items(egraph, *list)
                    .into_iter()
                    .map(|c| display(egraph, c))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// `rows where a AND b`, or `every row`.
fn rows_where(conjuncts: Vec<String>) -> String {
    if conjuncts.is_empty() {
        "every row".to_string()
    } else {
        format!("rows where {}", conjuncts.join(" AND "))
    }
}

/// The outer, semi and anti joins under `rel`, described (`a left join of users with visits
/// on ...`): an inner join is a filter over a set, so only these have a shape to differ in.
fn joins(egraph: &PlanGraph, rel: Id) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![rel];
    let mut seen = HashSet::new();
    let tables = |c: Id| -> String {
        let mut names: Vec<String> = reachable_classes(egraph, c)
            .into_iter()
            .flat_map(|k| egraph[k].nodes.iter())
            .filter_map(|n| match n {
                Node::Scan([name, _]) => {
                    crate::egraph::lang::name_of(egraph, *name).map(|s| s.to_string())
                }
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names.join(", ")
    };
    while let Some(c) = todo.pop() {
        let c = egraph.find(c);
        if !seen.insert(c) {
            continue;
        }
        for node in &egraph[c].nodes {
            match node {
                Node::LeftJoin([a, b, on])
                | Node::FullJoin([a, b, on])
                | Node::SemiJoin([a, b, on])
                | Node::AntiJoin([a, b, on]) => {
                    let kind = join_kind(node).unwrap_or_default();
                    let on: Vec<String> = list_items(egraph, *on)
                        .into_iter()
                        .map(|x| display(egraph, x))
                        .collect();
                    out.push(format!(
                        "{kind} of {} with {} on {}",
                        tables(*a),
                        tables(*b),
                        on.join(" AND ")
                    ));
                    todo.extend([*a, *b]);
                }
                Node::Filter([_, input]) => todo.push(*input),
                Node::Join([inputs]) => todo.extend(list_items(egraph, *inputs)),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// An outer, semi or anti join's kind in words.
fn join_kind(node: &Node) -> Option<&'static str> {
    match node {
        Node::LeftJoin(_) => Some("a left join"),
        Node::FullJoin(_) => Some("a full join"),
        Node::SemiJoin(_) => Some("a semi join (EXISTS, IN, INTERSECT)"),
        Node::AntiJoin(_) => Some("an anti join (NOT EXISTS, EXCEPT)"),
        _ => None,
    }
}

/// A join input in words: `events where events.value > 10 grouped by events.user_id`.
fn describe_input(egraph: &PlanGraph, class: Id, depth: usize) -> String {
    let exprs = |list: Id, separator: &str| {
        list_items(egraph, list)
            .into_iter()
            .map(|x| display(egraph, x))
            .collect::<Vec<_>>()
            .join(separator)
    };
    let described = (depth < 8)
        .then(|| {
            egraph[class].nodes.iter().find_map(|n| match n {
                Node::Scan([name, _]) => {
                    crate::egraph::lang::name_of(egraph, *name).map(|s| s.to_string())
                }
                Node::Agg([keys, _, input]) if list_items(egraph, *keys).is_empty() => Some(
                    format!("one total of {}", describe_input(egraph, *input, depth + 1)),
                ),
                Node::Agg([keys, _, input]) => Some(format!(
                    "{} grouped by {}",
                    describe_input(egraph, *input, depth + 1),
                    exprs(*keys, ", ")
                )),
                Node::LeftJoin([a, b, _])
                | Node::FullJoin([a, b, _])
                | Node::SemiJoin([a, b, _])
                | Node::AntiJoin([a, b, _]) => Some(format!(
                    "{} of {} with {}",
                    join_kind(n)?,
                    describe_input(egraph, *a, depth + 1),
                    describe_input(egraph, *b, depth + 1)
                )),
                Node::Filter([conds, input]) => Some(format!(
                    "{} where {}",
                    describe_input(egraph, *input, depth + 1),
                    exprs(*conds, " AND ")
                )),
                _ => None,
            })
        })
        .flatten();
    described.unwrap_or_else(|| "a subquery".to_string())
}
