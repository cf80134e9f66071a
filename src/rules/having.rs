//! The HAVING applier: a query that filters the groups of an aggregate read from an MV with
//! the same GROUP BY, when the MV keeps more aggregates than the query (or filters its groups
//! with a weaker HAVING). The query's groups are the MV's groups; its filter on them is applied
//! over the MV's rows, as is a WHERE that only reads group keys (it keeps or drops whole
//! groups, so it may move above the aggregate).
//!
//! Pattern variables it reads: `?q = (filter ?qh (agg ?mk ?qa INPUT))` where INPUT is `?x` or
//! `(filter ?p ?x)`, and the MV `?m = (proj ?ml [(filter ?mh] (agg ?mk ?ma ?x)[)])`. The
//! answer is `(proj keys+aggregates (filter residual ?m))`: the query aggregate's outputs, read
//! from the MV's columns.

use std::collections::HashSet;

use super::var;
use egg::{Applier, Id, PatternAst, Subst, Symbol, Var};

use super::conditions::{available, first_missing};
use crate::egraph::lang::{
    Node, PlanAnalysis, PlanGraph, add_set, display, list_items, mv_of, reject,
};
use crate::egraph::predicate::cached_compensation;
use crate::report::{ReasonCode, Rejection};

pub struct HavingApplier {
    v: [Var; 5],
    mv_having: Var,
    key_filter: Var,
}

impl Default for HavingApplier {
    fn default() -> Self {
        HavingApplier {
            v: ["?q", "?qh", "?qa", "?mk", "?m"].map(var),
            mv_having: var("?mh"),
            key_filter: var("?p"),
        }
    }
}

impl Applier<Node, PlanAnalysis> for HavingApplier {
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
        let [q, qh, qa, mk, m] = self.v.map(|v| egraph.find(subst[v]));
        let Some(mv) = mv_of(egraph, m) else {
            return vec![];
        };
        let optional = |v: Var| {
            subst
                .get(v)
                .map(|c| list_items(egraph, *c))
                .unwrap_or_default()
        };
        let (mv_having, key_filter) = (optional(self.mv_having), optional(self.key_filter));
        let keys = list_items(egraph, mk);
        let key_set: HashSet<Id> = keys.iter().copied().collect();
        if let Some(c) = key_filter
            .iter()
            .find(|c| first_missing(egraph, **c, &key_set, false).is_some())
        {
            let what = display(egraph, *c);
            let reason = format!(
                "the query filters on {what} before grouping, which is not computed from group keys of {mv}"
            );
            reject(
                egraph,
                q,
                mv,
                Rejection::new(ReasonCode::FilterNotOnGroupKeys, reason),
            );
            return vec![];
        }
        let mut wanted = list_items(egraph, qh);
        wanted.extend(key_filter);
        let residual = match cached_compensation(egraph, &wanted, &mv_having) {
            Ok(residual) => residual,
            Err(why) => {
                let reason = format!(
                    "the query allows groups with {}, but {mv} keeps only groups where {}",
                    why.query_allows, why.mv_keeps
                );
                reject(
                    egraph,
                    q,
                    mv,
                    Rejection::new(ReasonCode::FilterNotImplied, reason),
                );
                return vec![];
            }
        };
        let mut outputs = keys;
        outputs.extend(list_items(egraph, qa));
        let stored = available(egraph, m);
        if outputs
            .iter()
            .chain(&residual)
            .any(|c| first_missing(egraph, *c, &stored, false).is_some())
        {
            return vec![]; // the projection and rollup rules report what is missing
        }
        let mut input = m;
        if !residual.is_empty() {
            let conjuncts = add_set(egraph, &residual);
            input = egraph.add(Node::Filter([conjuncts, m]));
        }
        let items = egraph.add(Node::List(outputs.into()));
        let answer = egraph.add(Node::Proj([items, input]));
        if egraph.union(q, answer) {
            vec![q]
        } else {
            vec![]
        }
    }
}
