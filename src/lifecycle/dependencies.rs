//! Which MVs read which tables and MVs (nested MVs), as a petgraph graph: refresh order is a
//! topological order, a stale MV makes its readers stale (`Catalog::stale` follows the same
//! edges), a definition that would close a cycle is refused, and dropping an MV that others
//! read needs `CASCADE`.

use std::collections::{BTreeSet, HashMap};

use petgraph::algo::{is_cyclic_directed, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Reversed};

use crate::catalog::Catalog;

/// Edges from each table or MV to the MVs that read it directly.
pub struct Dependencies {
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

impl Dependencies {
    /// The graph of the MVs registered in `catalog`, plus `extra` (an MV about to be created
    /// or replaced, with its inputs).
    pub fn of(catalog: &Catalog, extra: Option<(&str, &BTreeSet<String>)>) -> Self {
        let mut deps = Dependencies {
            graph: DiGraph::new(),
            index: HashMap::new(),
        };
        for mv in catalog.iter() {
            if extra.is_some_and(|(name, _)| name == mv.name) {
                continue;
            }
            deps.add(&mv.name, &mv.inputs);
        }
        if let Some((name, inputs)) = extra {
            deps.add(name, inputs);
        }
        deps
    }

    fn node(&mut self, name: &str) -> NodeIndex {
        if let Some(n) = self.index.get(name) {
            return *n;
        }
        let n = self.graph.add_node(name.to_string());
        self.index.insert(name.to_string(), n);
        n
    }

    fn add(&mut self, mv: &str, inputs: &BTreeSet<String>) {
        let to = self.node(mv);
        for input in inputs {
            let from = self.node(input);
            self.graph.update_edge(from, to, ());
        }
    }

    /// Whether some MV reads itself through others.
    pub fn has_cycle(&self) -> bool {
        is_cyclic_directed(&self.graph)
    }

    /// The MVs that read `name`, directly or through others, in an order where every MV comes
    /// after those it reads (the order to refresh them in).
    pub fn readers_of(&self, name: &str) -> Vec<String> {
        let Some(&start) = self.index.get(name) else {
            return vec![];
        };
        let mut reached = BTreeSet::new();
        let mut bfs = Bfs::new(&self.graph, start);
        while let Some(n) = bfs.next(&self.graph) {
            if n != start {
                reached.insert(n);
            }
        }
        self.in_order(|n| reached.contains(&n))
    }

    /// The MVs `name` reads, directly or through others, readers after what they read.
    pub fn inputs_of(&self, name: &str) -> Vec<String> {
        let Some(&start) = self.index.get(name) else {
            return vec![];
        };
        let reversed = Reversed(&self.graph);
        let mut reached = BTreeSet::new();
        let mut bfs = Bfs::new(reversed, start);
        while let Some(n) = bfs.next(reversed) {
            if n != start {
                reached.insert(n);
            }
        }
        self.in_order(|n| reached.contains(&n))
    }

    /// Every MV, each after those it reads.
    pub fn mvs_in_order(&self) -> Vec<String> {
        self.in_order(|_| true)
    }

    /// The MVs that read `name` directly.
    pub fn direct_readers(&self, name: &str) -> Vec<String> {
        let Some(&n) = self.index.get(name) else {
            return vec![];
        };
        let mut out: Vec<String> = self
            .graph
            .neighbors(n)
            .map(|m| self.graph[m].clone())
            .collect();
        out.sort();
        out
    }

    /// The nodes `keep` selects in topological order (names only of nodes with inputs: MVs).
    fn in_order(&self, keep: impl Fn(NodeIndex) -> bool) -> Vec<String> {
        // Cycles are refused when MVs are created, so the sort succeeds; if it did not, no
        // order is better than a wrong one.
        let order = toposort(&self.graph, None).unwrap_or_default();
        order
            .into_iter()
            .filter(|n| keep(*n))
            .filter(|n| {
                self.graph
                    .neighbors_directed(*n, petgraph::Direction::Incoming)
                    .next()
                    .is_some()
            })
            .map(|n| self.graph[n].clone())
            .collect()
    }
}
