//! An MV joining aggregates that compute more than the query's aggregates do.
//!
//! Two aggregates with the same GROUP BY over the same input have the same rows, one per
//! group; the one computing more aggregates only has more columns. So a query joining
//! `(SELECT k, sum(a) .. GROUP BY k)` equals, column for column, the same join over the MV's
//! `(SELECT k, sum(a), sum(b) .. GROUP BY k)`. Before saturation that form joins the query's
//! class; the ordinary projection rules then read it from the MV (Calcite's
//! `testJoinOnLeftProjectToJoin`). Columns are expression classes, so the query's filter and
//! outputs name the same classes over either join. Inner joins only: an aggregate on the
//! NULL-supplying side of an outer join is not converted at all, and a semi or anti join's
//! probe outputs nothing, so DataFusion prunes an MV's extra aggregates there and the two
//! already meet.

use egg::Id;

use crate::egraph::lang::{Node, PlanGraph, add_set, list_items, unjoined};
use crate::egraph::to_egraph::RegionInEGraph;

/// Adds the query's join with each of its aggregate inputs replaced by a wider aggregate of
/// `mv`'s join, and says whether it did.
pub fn add_wider_aggregates(
    egraph: &mut PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
) -> bool {
    let (conditions, inputs) = unjoined(egraph, query.base);
    let (_, mv_inputs) = unjoined(egraph, mv.base);
    if inputs.len() < 2 {
        return false;
    }
    let widened: Vec<Id> = inputs
        .iter()
        .map(|&input| {
            mv_inputs
                .iter()
                .copied()
                .find(|&wider| computes_more(egraph, input, wider))
                .unwrap_or(input)
        })
        .collect();
    if widened == inputs {
        return false;
    }
    let join = add_set(egraph, &widened);
    let mut base = egraph.add(Node::Join([join]));
    if !conditions.is_empty() {
        let conditions = add_set(egraph, &conditions);
        base = egraph.add(Node::Filter([conditions, base]));
    }
    query.read_also_from(egraph, base);
    true
}

/// Whether `wider` is another aggregate than `narrow` with the same GROUP BY over the same
/// input, computing every aggregate `narrow` computes.
fn computes_more(egraph: &PlanGraph, narrow: Id, wider: Id) -> bool {
    let aggregate = |class: Id| {
        egraph[class].nodes.iter().find_map(|n| match n {
            Node::Agg([keys, aggs, input]) => Some((
                egraph.find(*keys),
                list_items(egraph, *aggs),
                egraph.find(*input),
            )),
            _ => None,
        })
    };
    if egraph.find(narrow) == egraph.find(wider) {
        return false;
    }
    match (aggregate(narrow), aggregate(wider)) {
        (Some((keys, aggs, input)), Some((wider_keys, wider_aggs, wider_input))) => {
            keys == wider_keys
                && input == wider_input
                && aggs.iter().all(|a| wider_aggs.contains(a))
        }
        _ => false,
    }
}
