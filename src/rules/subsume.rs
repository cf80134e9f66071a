//! The filter-subsumption applier: when the query's filter implies an MV's filter over the same
//! input, the query's filtered relation is also "the MV's filtered relation, filtered by what
//! is left" (the residual, [`crate::egraph::predicate::compensation`]). Adding that equivalent form to
//! the query's class lets the projection and rollup rules read the MV as if the filters had
//! been equal.
//!
//! Pattern variables it reads: `?q = (filter ?qp ?x)` (the query's filter) and `?mp`, the MV's
//! conjuncts over the same `?x`; `?m` names the MV for the report.

use super::var;
use egg::{Applier, Id, PatternAst, Subst, Symbol, Var};

use crate::egraph::lang::{Node, PlanAnalysis, PlanGraph, add_set, list_items, mv_of, reject};
use crate::egraph::predicate::cached_compensation;
use crate::report::{ReasonCode, Rejection};

pub struct SubsumeApplier {
    v: [Var; 5],
}

impl Default for SubsumeApplier {
    fn default() -> Self {
        SubsumeApplier {
            v: ["?q", "?qp", "?mp", "?x", "?m"].map(var),
        }
    }
}

impl Applier<Node, PlanAnalysis> for SubsumeApplier {
    fn vars(&self) -> Vec<Var> {
        self.v.to_vec()
    }

    fn apply_one(
        &self,
        egraph: &mut PlanGraph,
        _eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let [q, qp, mp, x, m] = self.v.map(|v| egraph.find(subst[v]));
        let Some(mv) = mv_of(egraph, m) else {
            return vec![];
        };
        let (query, kept) = (list_items(egraph, qp), list_items(egraph, mp));
        match cached_compensation(egraph, &query, &kept) {
            Ok(residual) => {
                let mut new = egraph.add(Node::Filter([mp, x]));
                if !residual.is_empty() {
                    let list = add_set(egraph, &residual);
                    new = egraph.add(Node::Filter([list, new]));
                }
                if egraph.union(q, new) {
                    vec![q]
                } else {
                    vec![]
                }
            }
            Err(why) => {
                let reason = format!(
                    "the query allows {}, but {mv} keeps only rows where {}",
                    why.query_allows, why.mv_keeps
                );
                reject(
                    egraph,
                    q,
                    mv,
                    Rejection::new(ReasonCode::FilterNotImplied, reason),
                );
                vec![]
            }
        }
    }
}
