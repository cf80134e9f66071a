//! Conditions referenced by name from the rule packs.
//!
//! | name | holds when |
//! |---|---|
//! | `in-query ?q` | `?q` is part of the query being answered (MV definitions are not rewritten against each other) |
//! | `is-mv ?m` | `?m` is a materialized view |
//! | `non-empty ?l` | the list `?l` has an item (a GROUP BY that is not global) |
//! | `differ ?a ?b` | `?a` and `?b` are different e-classes |
//! | `computable ?e ?m` | every expression in `?e` (a list or an expression) can be computed from `?m`'s output columns without recomputing an aggregate |
//! | `computable-rows ?e ?m` | the same, but aggregates may be recomputed from `?m`'s rows |
//! | `computable-keys ?e ?m` | computable from the columns of `?m` that hold no aggregate (its group keys) |
//!
//! A condition that fails for an MV records why, for the report.

use std::collections::HashSet;

use egg::{Applier, Condition, Id, PatternAst, SearchMatches, Subst, Symbol, Var};

use crate::egraph::lang::{
    HeadKind, Node, PlanAnalysis, PlanGraph, expr_node, expr_nodes, list_items, mv_of,
};
use crate::report::{ReasonCode, Rejection};

#[derive(Clone, Copy, Debug)]
enum Kind {
    InQuery,
    NonEmpty,
    IsMv,
    Differ,
    Computable { rows: bool },
    ComputableFromKeys,
}

/// One named condition applied to pattern variables.
#[derive(Clone, Debug)]
pub struct Check {
    kind: Kind,
    vars: Vec<Var>,
}

impl Check {
    /// Parses `name ?var...`.
    pub fn parse(text: &str) -> Result<Check, String> {
        let mut words = text.split_whitespace();
        let name = words.next().ok_or("empty condition")?;
        let vars = words
            .map(|w| w.parse::<Var>().map_err(|e| format!("{w}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let (kind, arity) = match name {
            "in-query" => (Kind::InQuery, 1),
            "non-empty" => (Kind::NonEmpty, 1),
            "is-mv" => (Kind::IsMv, 1),
            "differ" => (Kind::Differ, 2),
            "computable" => (Kind::Computable { rows: false }, 2),
            "computable-rows" => (Kind::Computable { rows: true }, 2),
            "computable-keys" => (Kind::ComputableFromKeys, 2),
            other => return Err(format!("unknown condition '{other}'")),
        };
        if vars.len() != arity {
            return Err(format!("{name} takes {arity} variables"));
        }
        Ok(Check { kind, vars })
    }

    /// `query` is the class bound to `?q`: the side of the rule being answered.
    fn check(&self, egraph: &mut PlanGraph, subst: &Subst, query: Option<Id>) -> bool {
        let v = |i: usize| egraph.find(subst[self.vars[i]]);
        match self.kind {
            Kind::InQuery => crate::egraph::lang::in_query(egraph, v(0)),
            Kind::NonEmpty => !list_items(egraph, v(0)).is_empty(),
            Kind::IsMv => mv_of(egraph, v(0)).is_some(),
            Kind::Differ => v(0) != v(1),
            Kind::Computable { .. } | Kind::ComputableFromKeys => {
                let (exprs, source) = (v(0), v(1));
                let mut avail = available(egraph, source);
                let rows = matches!(self.kind, Kind::Computable { rows: true });
                if matches!(self.kind, Kind::ComputableFromKeys) {
                    avail.retain(|c| !has_aggregate(egraph, *c));
                }
                let is_list = egraph[exprs]
                    .nodes
                    .iter()
                    .any(|n| matches!(n, Node::List(_)));
                let items = if is_list {
                    list_items(egraph, exprs)
                } else {
                    vec![exprs]
                };
                for item in items {
                    if let Some(missing) = first_missing(egraph, item, &avail, rows) {
                        if let (Some(mv), Some(q)) = (mv_of(egraph, source), query) {
                            let what = crate::egraph::lang::display(egraph, missing);
                            crate::egraph::lang::reject(
                                egraph,
                                q,
                                mv,
                                Rejection::new(
                                    ReasonCode::ColumnMissing,
                                    format!("the query needs {what}, which {mv} does not keep"),
                                ),
                            );
                        }
                        return false;
                    }
                }
                true
            }
        }
    }
}

thread_local! {
    /// Rules name the side they answer `?q`.
    static QUERY_VAR: Var = super::var("?q");
}

/// All conditions must hold.
pub struct AllOf(pub Vec<Check>);

impl Condition<Node, crate::egraph::lang::PlanAnalysis> for AllOf {
    fn check(&self, egraph: &mut PlanGraph, _eclass: Id, subst: &Subst) -> bool {
        let query = QUERY_VAR.with(|q| subst.get(*q).copied());
        self.0.iter().all(|c| c.check(egraph, subst, query))
    }

    fn vars(&self) -> Vec<Var> {
        self.0.iter().flat_map(|c| c.vars.clone()).collect()
    }
}

/// The expression classes a relation outputs.
pub fn available(egraph: &PlanGraph, relation: Id) -> HashSet<Id> {
    egraph[relation]
        .data
        .schema
        .iter()
        .flatten()
        .map(|i| egraph.find(*i))
        .collect()
}

/// The first sub-expression of `class` that cannot be computed from `avail`, if any. With
/// `rows`, an aggregate may be computed over the rows (its arguments must be available). A
/// class with several spellings is computable when one of them is.
pub fn first_missing(egraph: &PlanGraph, class: Id, avail: &HashSet<Id>, rows: bool) -> Option<Id> {
    missing_on_path(egraph, class, avail, rows, &mut Vec::new())
}

/// `first_missing`, never following a spelling through a class it is already computing: the
/// e-graph has cycles (a bucket is the cast of its own DATE).
fn missing_on_path(
    egraph: &PlanGraph,
    class: Id,
    avail: &HashSet<Id>,
    rows: bool,
    path: &mut Vec<Id>,
) -> Option<Id> {
    let class = egraph.find(class);
    if avail.contains(&class) {
        return None;
    }
    if path.contains(&class) {
        return Some(class);
    }
    path.push(class);
    let missing = missing_here(egraph, class, avail, rows, path);
    path.pop();
    missing
}

fn missing_here(
    egraph: &PlanGraph,
    class: Id,
    avail: &HashSet<Id>,
    rows: bool,
    path: &mut Vec<Id>,
) -> Option<Id> {
    if let Some(value) = egraph[class].nodes.iter().find_map(|n| match n {
        Node::As([_, v]) => Some(*v),
        _ => None,
    }) {
        return missing_on_path(egraph, value, avail, rows, path);
    }
    let mut first = None;
    for (head, children) in expr_nodes(egraph, class) {
        let missing = match egraph.analysis.kind(head) {
            HeadKind::Column => Some(class),
            HeadKind::Literal => None,
            HeadKind::Aggregate { .. } | HeadKind::OpaqueAggregate if !rows => Some(class),
            HeadKind::Aggregate { .. } | HeadKind::OpaqueAggregate => children
                .iter()
                .find_map(|c| missing_on_path(egraph, *c, avail, false, path)),
            HeadKind::Bucket(_) | HeadKind::Scalar => children
                .iter()
                .find_map(|c| missing_on_path(egraph, *c, avail, rows, path)),
        };
        match missing {
            None => return None,
            Some(m) => {
                first.get_or_insert(m);
            }
        }
    }
    Some(first.unwrap_or(class))
}

/// Whether `class` contains an aggregate (aggregates are never equal to a scalar, so one
/// spelling tells; a cycle through the spellings has none).
pub fn has_aggregate(egraph: &PlanGraph, class: Id) -> bool {
    fn walk(egraph: &PlanGraph, class: Id, path: &mut Vec<Id>) -> bool {
        let class = egraph.find(class);
        if path.contains(&class) {
            return false;
        }
        let Some((head, children)) = expr_node(egraph, class) else {
            return false;
        };
        match egraph.analysis.kind(head) {
            HeadKind::Aggregate { .. } | HeadKind::OpaqueAggregate => true,
            _ => {
                path.push(class);
                let found = children.iter().any(|c| walk(egraph, *c, path));
                path.pop();
                found
            }
        }
    }
    walk(egraph, class, &mut Vec::new())
}

/// An applier that runs only on the matches whose conditions hold. Unlike egg's
/// `ConditionalApplier` it filters whole match sets, so it also guards multi-pattern appliers
/// (which cannot apply one substitution at a time).
pub struct Guarded<A> {
    pub condition: AllOf,
    pub applier: A,
}

impl<A: Applier<Node, PlanAnalysis>> Applier<Node, PlanAnalysis> for Guarded<A> {
    fn apply_matches(
        &self,
        egraph: &mut PlanGraph,
        matches: &[SearchMatches<Node>],
        rule_name: Symbol,
    ) -> Vec<Id> {
        let mut kept = Vec::new();
        for m in matches {
            let substs: Vec<Subst> = m
                .substs
                .iter()
                .filter(|s| self.condition.check(egraph, m.eclass, s))
                .cloned()
                .collect();
            if !substs.is_empty() {
                kept.push(SearchMatches {
                    eclass: m.eclass,
                    substs,
                    ast: m.ast.clone(),
                });
            }
        }
        // egg's multi-pattern applier reports every match as applied, even when the union was
        // already there, which would keep saturation from ever being detected.
        let before = (egraph.total_number_of_nodes(), egraph.number_of_classes());
        let applied = self.applier.apply_matches(egraph, &kept, rule_name);
        let after = (egraph.total_number_of_nodes(), egraph.number_of_classes());
        if before == after { vec![] } else { applied }
    }

    fn apply_one(
        &self,
        egraph: &mut PlanGraph,
        eclass: Id,
        subst: &Subst,
        ast: Option<&PatternAst<Node>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let matches = [SearchMatches {
            eclass,
            substs: vec![subst.clone()],
            ast: ast.map(std::borrow::Cow::Borrowed),
        }];
        self.apply_matches(egraph, &matches, rule_name)
    }

    fn vars(&self) -> Vec<Var> {
        let mut vars = self.applier.vars();
        vars.extend(self.condition.vars());
        vars
    }
}
