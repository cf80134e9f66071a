//! Cost: estimated cells read (rows × columns of each table or MV scanned), plus the cells an
//! aggregate or a join hashes (its inputs, once more). Every other operator costs what its inputs read
//! plus a token amount, so among plans reading the same data the simpler one wins. An MV wins
//! when it is smaller than what it replaces (fewer rows, or fewer columns: a projection that
//! stores an expensive expression instead of its inputs), when it holds the groups the
//! query would otherwise compute from as many cells, and when it is as large: it saves
//! recomputing what it stores.

use egg::{CostFunction, Id, Language};

use crate::egraph::lang::{Node, PlanGraph, list_items, name_of};

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
            // An MV read is charged for the columns the query would read from the tables it
            // replaces, at most its own (src/engine/build.rs), less a cell and a half: on a
            // tie with the tables the MV wins, the projection naming its columns included (it
            // saves recomputing what it stores). A hundredth of a cell per column it holds
            // (under half a cell in all) makes the narrower of two MVs win their tie.
            Node::Mv([name, cols]) => {
                let name = name_of(self.egraph, *name);
                let rows = name
                    .and_then(|n| self.egraph.analysis.rows.get(&n).copied())
                    .unwrap_or(UNKNOWN_ROWS);
                let held = list_items(self.egraph, *cols).len().max(1) as f64;
                let charged = name
                    .and_then(|n| self.egraph.analysis.mv_columns.get(&n).copied())
                    .unwrap_or(held);
                (rows * charged - 1.5 + 0.01 * held.min(49.0)).max(0.0)
            }
            // Aggregating hashes every input row: it costs about as much again as reading
            // them. So an MV holding the query's groups wins over computing them from a table
            // of as many cells.
            Node::Agg([_, _, input]) => children + costs(*input) + 1.0,
            // So does joining: a hash join builds on one input and probes with the other.
            Node::Join([inputs]) => children + costs(*inputs) + 1.0,
            Node::LeftJoin([a, b, _])
            | Node::FullJoin([a, b, _])
            | Node::SemiJoin([a, b, _])
            | Node::AntiJoin([a, b, _]) => children + costs(*a) + costs(*b) + 1.0,
            Node::Filter(_) | Node::Proj(_) => children + 1.0,
            Node::Expr(..) | Node::As(_) => children + 1e-3,
            Node::List(_) | Node::Name(_) => children,
        }
    }
}
