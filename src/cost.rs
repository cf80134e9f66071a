//! Cost: estimated cells read (rows × columns of each table or MV scanned). Every operator
//! costs what its inputs read plus a token amount, so among plans reading the same data the
//! simpler one wins, and an MV wins only when it is smaller than what it replaces: fewer rows
//! (an aggregate) or fewer columns (a projection that stores an expression, such as an
//! expensive UDF column, instead of its inputs).

use egg::{CostFunction, Id, Language};

use crate::lang::{Node, PlanGraph, list_items, name_of};

/// Rows assumed for a table or MV whose size is unknown.
pub const UNKNOWN_ROWS: f64 = 1e6;

/// The cost function used for extraction; it reads row estimates from the e-graph's analysis.
pub struct RowsRead<'a> {
    pub egraph: &'a PlanGraph,
}

impl CostFunction<Node> for RowsRead<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &Node, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let cells = |name: Id, cols: Id| {
            let rows = name_of(self.egraph, name)
                .and_then(|n| self.egraph.analysis.rows.get(&n).copied())
                .unwrap_or(UNKNOWN_ROWS);
            rows * list_items(self.egraph, cols).len().max(1) as f64
        };
        let children: f64 = enode.children().iter().map(|c| costs(*c)).sum();
        match enode {
            Node::Scan([name, cols]) => cells(*name, *cols),
            // An MV read costs one cell more than it holds: on a tie, the base table wins.
            Node::Mv([name, cols]) => cells(*name, *cols) + 1.0,
            Node::Filter(_) | Node::Agg(_) | Node::Proj(_) | Node::Join(_) => children + 1.0,
            Node::Expr(..) | Node::As(_) => children + 1e-3,
            Node::List(_) | Node::Name(_) => children,
        }
    }
}
