//! An MV with a left join answering the inner join of the same tables.
//!
//! `A JOIN B ON c WHERE p` keeps the rows of `A LEFT JOIN B ON c` where `B` matched, which are
//! those where a column of `B` that is NOT NULL in its table is not NULL: the query's relation
//! equals `filter(p + (b IS NOT NULL), ljoin(A, B, c))`. Before saturation that form joins the
//! query's class when an MV left-joins the query's two tables on conditions the query's join
//! holds; the filter rules then answer it from the MV. Nullability is the table schema's.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::logical_expr::{Expr, TableSource};
use egg::{Id, Symbol};

use crate::egraph::lang::{Node, PlanGraph, add_set, list_items, name_of, placeholder, unjoined};
use crate::egraph::to_egraph::RegionInEGraph;

/// Adds the left-join form to the query's base relation when `mv` left-joins the same two
/// tables, and says whether it did (otherwise the MV is judged, and reported, by the ordinary
/// rules).
pub fn add_inner_as_outer(
    egraph: &mut PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
    sources: &HashMap<Symbol, Arc<dyn TableSource>>,
) -> bool {
    let (_, mv_inner) = unjoined(egraph, mv.base);
    let Some([preserved, nullable, on]) = mv_inner.first().and_then(|c| {
        egraph[*c].nodes.iter().find_map(|n| match n {
            Node::LeftJoin(ids) => Some(*ids),
            _ => None,
        })
    }) else {
        return false;
    };
    let (conditions, inputs) = unjoined(egraph, query.base);
    let (preserved, nullable) = (egraph.find(preserved), egraph.find(nullable));
    let mut sorted = vec![preserved, nullable];
    sorted.sort();
    if inputs.len() != 2 || inputs != sorted {
        return false;
    }
    let on = list_items(egraph, on);
    if !on.iter().all(|c| conditions.contains(c)) {
        return false;
    }
    let Some(not_null) = not_null_column(egraph, nullable, sources) else {
        return false;
    };
    let h = egraph
        .analysis
        .intern(Expr::IsNotNull(Box::new(placeholder(0))));
    let matched = egraph.add(Node::Expr(h, vec![not_null]));
    let mut above: Vec<Id> = conditions.into_iter().filter(|c| !on.contains(c)).collect();
    above.push(matched);
    let on = add_set(egraph, &on);
    let join = egraph.add(Node::LeftJoin([preserved, nullable, on]));
    let above = add_set(egraph, &above);
    let outer = egraph.add(Node::Filter([above, join]));
    let changed = egraph.union(query.base, outer);
    egraph.rebuild();
    changed
}

/// A column of the scanned table `scan` that its schema declares NOT NULL.
fn not_null_column(
    egraph: &PlanGraph,
    scan: Id,
    sources: &HashMap<Symbol, Arc<dyn TableSource>>,
) -> Option<Id> {
    let (name, cols) = egraph[scan].nodes.iter().find_map(|n| match n {
        Node::Scan([name, cols]) => Some((*name, *cols)),
        _ => None,
    })?;
    let schema = sources.get(&name_of(egraph, name)?)?.schema();
    let i = schema.fields().iter().position(|f| !f.is_nullable())?;
    list_items(egraph, cols).get(i).copied()
}
