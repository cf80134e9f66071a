//! Columns a query's join makes equal: with `emps.deptno = depts.deptno` among the conditions
//! of the query's relation, every row has the same value in both, so a GROUP BY or output on
//! `emps.deptno` can be read from an MV that keeps only `depts.deptno`.
//!
//! The equality holds in that relation only (an outer join or another query would not have
//! it), so the two columns are never one class. Instead, before saturation, the query's
//! aggregate or projection over the relation gets a second form computing the same outputs
//! with one column spelled as the other (`as` items name what each stands for), and the
//! ordinary rules answer that form.

use egg::Id;

use crate::egraph::lang::{HeadKind, Node, PlanGraph, add_set, expr_node, list_items, unjoined};
use crate::egraph::to_egraph::RegionInEGraph;

/// Adds the forms of the query's consumers with each column of a column equality of its
/// relation replaced by the other; whether it added any.
pub fn add_equal_column_forms(egraph: &mut PlanGraph, query: &RegionInEGraph) -> bool {
    let (conditions, _) = unjoined(egraph, query.base);
    let equalities: Vec<(Id, Id, Id)> = conditions
        .iter()
        .filter_map(|c| column_equality(egraph, *c).map(|(a, b)| (*c, a, b)))
        .collect();
    let mut added = false;
    for (equality, a, b) in equalities {
        for (from, to) in [(a, b), (b, a)] {
            added |= add_filter_form(egraph, query.base, equality, from, to);
            for node in query.consumers(egraph) {
                added |= add_form(egraph, &node, from, to);
            }
        }
    }
    if added {
        egraph.rebuild();
    }
    added
}

/// The relation's filter with `from` spelled `to` in every condition but the equality itself.
fn add_filter_form(egraph: &mut PlanGraph, base: Id, equality: Id, from: Id, to: Id) -> bool {
    let Some((list, input)) = egraph[base].nodes.iter().find_map(|n| match n {
        Node::Filter([list, input]) => Some((*list, *input)),
        _ => None,
    }) else {
        return false;
    };
    let conditions = list_items(egraph, list);
    let spelled: Vec<Id> = conditions
        .iter()
        .map(|c| {
            if egraph.find(*c) == egraph.find(equality) {
                *c
            } else {
                substitute(egraph, *c, from, to, 0)
            }
        })
        .collect();
    let spelled = add_set(egraph, &spelled);
    let form = egraph.add(Node::Filter([spelled, input]));
    egraph.union(base, form)
}

/// `a = b` between two columns.
fn column_equality(egraph: &PlanGraph, conjunct: Id) -> Option<(Id, Id)> {
    let (head, children) = expr_node(egraph, conjunct)?;
    let is_eq = matches!(
        egraph.analysis.head(head),
        datafusion::logical_expr::Expr::BinaryExpr(b) if b.op == datafusion::logical_expr::Operator::Eq
    );
    // Floats that are `=` can still differ (-0.0 and 0.0 group apart): not interchangeable.
    let column = |c: Id| {
        expr_node(egraph, c).is_some_and(|(h, _)| *egraph.analysis.kind(h) == HeadKind::Column)
            && !egraph[c]
                .data
                .data_type
                .as_ref()
                .is_some_and(|t| t.is_floating())
    };
    match children {
        [a, b] if is_eq && column(*a) && column(*b) => Some((egraph.find(*a), egraph.find(*b))),
        _ => None,
    }
}

/// `class` with `from` spelled `to` (its first spelling; the class itself when `from` does
/// not occur), bounded in depth.
fn substitute(egraph: &mut PlanGraph, class: Id, from: Id, to: Id, depth: usize) -> Id {
    let class = egraph.find(class);
    if class == from {
        return to;
    }
    let Some((head, children)) = expr_node(egraph, class).map(|(h, c)| (h, c.to_vec())) else {
        return class;
    };
    if depth > 32 {
        return class;
    }
    let new: Vec<Id> = children
        .iter()
        .map(|c| substitute(egraph, *c, from, to, depth + 1))
        .collect();
    if new
        .iter()
        .zip(&children)
        .all(|(a, b)| egraph.find(*a) == egraph.find(*b))
    {
        return class;
    }
    egraph.add(Node::Expr(head, new))
}

/// The consumer with `from` spelled `to`, as a projection naming the original outputs, in the
/// consumer's class; whether anything changed.
fn add_form(egraph: &mut PlanGraph, node: &Node, from: Id, to: Id) -> bool {
    let (outputs, rebuilt_input) = match node {
        Node::Agg([keys, aggs, input]) => {
            let keys = list_items(egraph, *keys);
            let aggs = list_items(egraph, *aggs);
            let new_keys: Vec<Id> = keys
                .iter()
                .map(|k| substitute(egraph, *k, from, to, 0))
                .collect();
            let new_aggs: Vec<Id> = aggs
                .iter()
                .map(|a| substitute(egraph, *a, from, to, 0))
                .collect();
            let originals: Vec<Id> = keys.iter().chain(&aggs).copied().collect();
            let spelled: Vec<Id> = new_keys.iter().chain(&new_aggs).copied().collect();
            let (k, a) = (add_set(egraph, &new_keys), add_set(egraph, &new_aggs));
            let agg = egraph.add(Node::Agg([k, a, *input]));
            (originals.into_iter().zip(spelled).collect::<Vec<_>>(), agg)
        }
        Node::Proj([items, input]) => {
            let items = list_items(egraph, *items);
            let pairs: Vec<(Id, Id)> = items
                .iter()
                .map(|i| (*i, substitute(egraph, *i, from, to, 0)))
                .collect();
            (pairs, *input)
        }
        _ => return false,
    };
    if outputs
        .iter()
        .all(|(o, s)| egraph.find(*o) == egraph.find(*s))
    {
        return false;
    }
    let items: Vec<Id> = outputs
        .iter()
        .map(|(o, s)| {
            if egraph.find(*o) == egraph.find(*s) {
                *o
            } else {
                egraph.add(Node::As([*o, *s]))
            }
        })
        .collect();
    let items = egraph.add(Node::List(items.into()));
    let form = egraph.add(Node::Proj([items, rebuilt_input]));
    let original = egraph.add(node.clone());
    egraph.union(original, form)
}
