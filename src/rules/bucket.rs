//! The time-bucket rewrites of the `timeseries` pack: `@coarser-bucket` (a coarser bucket
//! computed from a finer one), `@aligned-range` (a range on the raw timestamp as a range on
//! a bucket) and `@field-of-bucket` (a `date_part` of the timestamp as one of a bucket). Each
//! looks at every bucket of a term at once, which no single pattern can: they are a searcher
//! and an applier each.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, lit};
use egg::{Applier, Id, PatternAst, SearchMatches, Searcher, Subst, Symbol, Var};

use super::var;
use crate::egraph::lang::{
    HeadKind, Node, PlanAnalysis, PlanGraph, decompose, display, expr_nodes, list_items,
    placeholder,
};
use crate::egraph::predicate::atoms::{self, Atom};
use crate::egraph::predicate::values::{HalfOpen, ValueSet};
use crate::report::{ReasonCode, Rejection};
use crate::timeseries::{Grain, Lattice};

/// The buckets in the e-graph by the class of the term they bucket: `(grain, head, class)`.
fn buckets_by_term(
    egraph: &PlanGraph,
) -> BTreeMap<Id, Vec<(Grain, crate::egraph::lang::Head, Id)>> {
    let mut out: BTreeMap<Id, Vec<_>> = BTreeMap::new();
    if !egraph.analysis.has_buckets {
        return out;
    }
    for class in egraph.classes() {
        for node in &class.nodes {
            if let Node::Expr(head, children) = node
                && let HeadKind::Bucket(grain) = egraph.analysis.kind(*head)
                && let [term] = children.as_slice()
            {
                out.entry(egraph.find(*term))
                    .or_default()
                    .push((*grain, *head, class.id));
            }
        }
    }
    out
}

/// The matches on `eclass` among `pairs`.
fn on_class(
    egraph: &PlanGraph,
    pairs: Vec<(Id, Subst)>,
    eclass: Id,
    limit: usize,
) -> Option<SearchMatches<'static, Node>> {
    let eclass = egraph.find(eclass);
    let pairs = pairs.into_iter().filter(|(c, _)| *c == eclass);
    group(pairs.take(limit).collect()).pop()
}

/// One match per class: the substitutions the applier needs, all on `eclass`.
fn group(pairs: Vec<(Id, Subst)>) -> Vec<SearchMatches<'static, Node>> {
    let mut by_class: BTreeMap<Id, Vec<Subst>> = BTreeMap::new();
    for (class, subst) in pairs {
        by_class.entry(class).or_default().push(subst);
    }
    by_class
        .into_iter()
        .map(|(eclass, substs)| SearchMatches {
            eclass,
            substs,
            ast: None,
        })
        .collect()
}

/// The egg `Searcher` of a rule whose `pairs(egraph)` lists its matches (class, bindings of
/// `vars`), found by looking at the whole e-graph at once.
macro_rules! searcher_of_pairs {
    ($rule:ty, $($var:literal),+) => {
        impl Searcher<Node, PlanAnalysis> for $rule {
            fn search_eclass_with_limit(
                &self,
                egraph: &PlanGraph,
                eclass: Id,
                limit: usize,
            ) -> Option<SearchMatches<'_, Node>> {
                on_class(egraph, self.pairs(egraph), eclass, limit)
            }

            fn search_with_limit(
                &self,
                egraph: &PlanGraph,
                limit: usize,
            ) -> Vec<SearchMatches<'_, Node>> {
                group(self.pairs(egraph).into_iter().take(limit).collect())
            }

            fn vars(&self) -> Vec<Var> {
                vec![$(var($var)),+]
            }
        }
    };
}

fn subst(bindings: &[(&str, Id)]) -> Subst {
    let mut s = Subst::with_capacity(bindings.len());
    for (name, id) in bindings {
        s.insert(var(name), *id);
    }
    s
}

/// Adds `node` to `class`; the class when that changed the e-graph.
fn union_new(egraph: &mut PlanGraph, class: Id, node: Node) -> Vec<Id> {
    let added = egraph.add(node);
    if egraph.union(class, added) {
        vec![class]
    } else {
        vec![]
    }
}

/// The buckets (and DATEs of buckets) of `term` among `classes`.
fn buckets_of(egraph: &PlanGraph, term: Id, classes: &HashSet<Id>) -> Vec<Id> {
    let is_bucket_of = |c: Id| {
        expr_nodes(egraph, c).any(|(h, children)| {
            matches!(egraph.analysis.kind(h), HeadKind::Bucket(_))
                && children.first().is_some_and(|t| egraph.find(*t) == term)
        })
    };
    let mut out: Vec<Id> = classes
        .iter()
        .copied()
        .filter(|c| {
            is_bucket_of(*c)
                || expr_nodes(egraph, *c).any(|(_, ch)| ch.len() == 1 && is_bucket_of(ch[0]))
        })
        .collect();
    out.sort();
    out
}

/// The bucketed term of `class`, if it is a bucket.
fn term_of(egraph: &PlanGraph, class: Id) -> Option<Id> {
    expr_nodes(egraph, class).find_map(|(h, children)| match (egraph.analysis.kind(h), children) {
        (HeadKind::Bucket(_), [t]) => Some(egraph.find(*t)),
        _ => None,
    })
}

/// Why `missing` (a query expression, or a filter conjunct) cannot be read from an MV whose
/// group keys are `keys`, when the reason is time buckets: the MV buckets the same timestamp
/// at a grain that does not nest, or the query's range does not fall on bucket boundaries.
pub fn explain(
    egraph: &PlanGraph,
    missing: Id,
    keys: &HashSet<Id>,
    mv: Symbol,
) -> Option<Rejection> {
    let missing = egraph.find(missing);
    let stored = |term: Id| {
        let b = buckets_of(egraph, term, keys);
        (!b.is_empty()).then(|| {
            b.iter()
                .map(|c| display(egraph, *c))
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    if let Some(term) = term_of(egraph, missing) {
        let kept = stored(term)?;
        return Some(Rejection::new(
            ReasonCode::BucketNotNested,
            format!(
                "the query groups by {}, and {mv} keeps only {kept}, whose buckets do not nest in it",
                display(egraph, missing)
            ),
        ));
    }
    let atoms = atoms::read(egraph, missing);
    let [Atom::In { term, set }] = atoms.as_slice() else {
        return None;
    };
    let term = egraph.find(*term);
    // A DATE is bucketed through its cast to a timestamp.
    let kept = stored(term).or_else(|| {
        timestamp_casts(egraph, term, buckets_by_term(egraph).into_keys())
            .iter()
            .find_map(|(cast, _)| stored(*cast))
    })?;
    let what = display(egraph, term);
    Some(Rejection::new(
        ReasonCode::TimeRangeNotAligned,
        format!(
            "the query keeps rows where {}, which do not start and end on buckets of {mv}'s {kept}",
            set.describe(&what)
        ),
    ))
}

/// `bucket(coarse, t) = bucket(coarse, bucket(fine, t))` for every pair of buckets of one term
/// `t` whose grains nest in the lattice. Matches `?coarse`'s class, binding `?fine`.
pub struct CoarserBucket {
    pub lattice: Arc<Lattice>,
}

impl CoarserBucket {
    fn pairs(&self, egraph: &PlanGraph) -> Vec<(Id, Subst)> {
        let mut pairs = Vec::new();
        for buckets in buckets_by_term(egraph).values() {
            for (coarse_grain, head, coarse) in buckets {
                for (fine_grain, _, fine) in buckets {
                    let done = egraph
                        .lookup(Node::Expr(*head, vec![*fine]))
                        .is_some_and(|c| egraph.find(c) == *coarse);
                    if !done && self.lattice.nests(*fine_grain, *coarse_grain) {
                        pairs.push((*coarse, subst(&[("?fine", *fine)])));
                    }
                }
            }
        }
        pairs
    }
}

searcher_of_pairs!(CoarserBucket, "?fine");

impl Applier<Node, PlanAnalysis> for CoarserBucket {
    fn apply_one(
        &self,
        egraph: &mut PlanGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let fine = subst[var("?fine")];
        let Some((head, _)) = expr_nodes(egraph, eclass)
            .find(|(h, _)| matches!(egraph.analysis.kind(*h), HeadKind::Bucket(_)))
        else {
            return vec![];
        };
        union_new(egraph, eclass, Node::Expr(head, vec![fine]))
    }
}

/// `date_part(field, t) = date_part(field, bucket(g, t))` when every bucket of `g` lies
/// within one period of the field (`g` is the field's grain or nests in it): the year of a
/// month bucket is the year of its timestamps, their day of week that of their day bucket.
/// `t` has no time zone; a DATE is bucketed through its cast to a timestamp. Matches the
/// `date_part` class, binding `?bucket`.
pub struct FieldOfBucket {
    pub lattice: Arc<Lattice>,
}

impl FieldOfBucket {
    fn pairs(&self, egraph: &PlanGraph) -> Vec<(Id, Subst)> {
        let buckets = buckets_by_term(egraph);
        if buckets.is_empty() {
            return vec![];
        }
        let mut pairs = Vec::new();
        for class in egraph.classes() {
            for node in &class.nodes {
                let Node::Expr(head, children) = node else {
                    continue;
                };
                let [field, t] = children.as_slice() else {
                    continue;
                };
                let Some(period) = field_period(egraph, *head, *field) else {
                    continue;
                };
                let t = egraph.find(*t);
                let terms: Vec<Id> = match &egraph[t].data.data_type {
                    Some(DataType::Timestamp(_, None)) => vec![t],
                    _ => timestamp_casts(egraph, t, buckets.keys().copied())
                        .into_iter()
                        .map(|(cast, _)| cast)
                        .collect(),
                };
                for term in terms {
                    for (grain, _, bucket) in buckets.get(&term).into_iter().flatten() {
                        let done = egraph
                            .lookup(Node::Expr(*head, vec![*field, *bucket]))
                            .is_some_and(|c| egraph.find(c) == class.id);
                        if !done && (*grain == period || self.lattice.nests(*grain, period)) {
                            pairs.push((class.id, subst(&[("?bucket", *bucket)])));
                        }
                    }
                }
            }
        }
        pairs
    }
}

/// The grain whose buckets keep `date_part(field, ..)` (a `date_part` head `head`) constant:
/// the field's own for year, quarter, month, ISO week, day, hour and minute, the day for the
/// day of the week or year. `None` for other fields (seconds may have fractions) and heads.
fn field_period(egraph: &PlanGraph, head: crate::egraph::lang::Head, field: Id) -> Option<Grain> {
    let Expr::ScalarFunction(call) = egraph.analysis.head(head) else {
        return None;
    };
    if call.name() != "date_part" {
        return None;
    }
    let name = expr_nodes(egraph, field).find_map(|(h, _)| match egraph.analysis.head(h) {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) => Some(s.to_ascii_lowercase()),
        _ => None,
    })?;
    let unit = match name.as_str() {
        "year" | "quarter" | "month" | "week" | "day" | "hour" | "minute" => name.as_str(),
        "dow" | "doy" | "isodow" => "day",
        _ => return None,
    };
    Grain::of_date_trunc(unit)
}

searcher_of_pairs!(FieldOfBucket, "?bucket");

impl Applier<Node, PlanAnalysis> for FieldOfBucket {
    fn apply_one(
        &self,
        egraph: &mut PlanGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let bucket = subst[var("?bucket")];
        let Some((head, field)) =
            expr_nodes(egraph, eclass).find_map(|(h, children)| match children {
                [field, _] if field_period(egraph, h, *field).is_some() => Some((h, *field)),
                _ => None,
            })
        else {
            return vec![];
        };
        union_new(egraph, eclass, Node::Expr(head, vec![field, bucket]))
    }
}

/// A filter conjunct over a timestamp term `t` (`t >= '2024-03-01'`, `t BETWEEN ..`, `t IN
/// (..)`) whose allowed values are half-open ranges `[a, b)` with every bound starting a bucket
/// of `bucket(g, t)`: then `t` is in the ranges exactly when its bucket is, and the conjunct
/// gets the same expression over the bucket. Matches the conjunct, binding `?term` and
/// `?bucket`.
///
/// A DATE `d` is bucketed as `bucket(g, CAST(d AS TIMESTAMP))`, and a conjunct on `d` is one on
/// the cast: the cast is exact and keeps order, so `d` is in `[a, b)` exactly when the cast is
/// in `[CAST(a), CAST(b))` (`d <= b` is `d < b + 1`). The conjunct then gets those ranges over
/// the bucket, written afresh (`?term` is the cast).
pub struct AlignedRange;

impl AlignedRange {
    fn pairs(&self, egraph: &PlanGraph) -> Vec<(Id, Subst)> {
        let buckets = buckets_by_term(egraph);
        if buckets.is_empty() {
            return vec![];
        }
        let mut conjuncts: Vec<Id> = egraph
            .classes()
            .flat_map(|c| c.nodes.iter())
            .filter_map(|n| match n {
                Node::Filter([list, _]) => Some(list_items(egraph, *list)),
                _ => None,
            })
            .flatten()
            .collect();
        conjuncts.sort();
        conjuncts.dedup();
        let mut pairs = Vec::new();
        for conjunct in conjuncts {
            let atoms = atoms::read(egraph, conjunct);
            let [Atom::In { term, set }] = atoms.as_slice() else {
                continue;
            };
            let term = egraph.find(*term);
            if let (Some(of_term), Some(bounds)) = (buckets.get(&term), set.half_open_bounds()) {
                for (grain, _, bucket) in of_term {
                    let replaced = replaced_node(egraph, conjunct, term, *bucket);
                    let done = replaced
                        .clone()
                        .and_then(|n| egraph.lookup(n))
                        .is_some_and(|c| egraph.find(c) == conjunct);
                    if !done && replaced.is_some() && bounds.iter().all(|b| grain.starts_bucket(b))
                    {
                        pairs.push((conjunct, subst(&[("?term", term), ("?bucket", *bucket)])));
                    }
                }
            }
            for cast in timestamp_casts(egraph, term, buckets.keys().copied()) {
                let Some(ranges) = cast_ranges(set, cast.1) else {
                    continue;
                };
                let bounds: Vec<&ScalarValue> =
                    ranges.iter().flat_map(|(a, b)| a.iter().chain(b)).collect();
                for (grain, _, bucket) in &buckets[&cast.0] {
                    if !bounds.is_empty() && bounds.iter().all(|b| grain.starts_bucket(b)) {
                        pairs.push((conjunct, subst(&[("?term", cast.0), ("?bucket", *bucket)])));
                    }
                }
            }
        }
        pairs
    }
}

/// The classes among `terms` that are `CAST(date AS TIMESTAMP)` (no time zone) of the DATE
/// class `date`, with the timestamp type.
fn timestamp_casts(
    egraph: &PlanGraph,
    date: Id,
    terms: impl Iterator<Item = Id>,
) -> Vec<(Id, &DataType)> {
    if egraph[date].data.data_type != Some(DataType::Date32) {
        return vec![];
    }
    terms
        .filter_map(|t| {
            expr_nodes(egraph, t).find_map(|(h, children)| match egraph.analysis.head(h) {
                Expr::Cast(cast)
                    if matches!(cast.field.data_type(), DataType::Timestamp(_, None))
                        && matches!(children, [c] if egraph.find(*c) == date) =>
                {
                    Some((t, cast.field.data_type()))
                }
                _ => None,
            })
        })
        .collect()
}

/// The half-open ranges of a DATE `set`, their bounds cast to the timestamp type `to` (exact, or
/// `None`); NULL, if in the set, is not among them.
fn cast_ranges(set: &ValueSet, to: &DataType) -> Option<Vec<HalfOpen>> {
    let cast = |v: Option<ScalarValue>| match v {
        Some(v) => v.cast_to(to).ok().map(Some),
        None => Some(None),
    };
    set.half_open_ranges()?
        .into_iter()
        .map(|(lo, hi)| Some((cast(lo)?, cast(hi)?)))
        .collect()
}

/// `x` in `ranges` (or NULL, when `null`), as an expression over placeholder 0.
fn in_ranges(ranges: Vec<HalfOpen>, null: bool) -> Option<Expr> {
    let x = placeholder(0);
    let mut branches: Vec<Expr> = ranges
        .into_iter()
        .map(|range| match range {
            (Some(a), Some(b)) => x.clone().gt_eq(lit(a)).and(x.clone().lt(lit(b))),
            (Some(a), None) => x.clone().gt_eq(lit(a)),
            (None, Some(b)) => x.clone().lt(lit(b)),
            (None, None) => x.clone().is_not_null(),
        })
        .collect();
    if null {
        branches.push(x.is_null());
    }
    branches.into_iter().reduce(Expr::or)
}

/// Adds `expr` to the e-graph, placeholder 0 standing for class `x`.
fn add_over(egraph: &mut PlanGraph, expr: Expr, x: Id) -> Option<Id> {
    if expr == placeholder(0) {
        return Some(x);
    }
    let (head, children) = decompose(expr).ok()?;
    let children = children
        .into_iter()
        .map(|c| add_over(egraph, c, x))
        .collect::<Option<Vec<_>>>()?;
    let head = egraph.analysis.intern(head);
    Some(egraph.add(Node::Expr(head, children)))
}

/// The conjunct's node with `term` replaced by `bucket`, when the conjunct reads `term` as a
/// direct operand and its other operands are literals (so it is a function of `term` alone).
fn replaced_node(egraph: &PlanGraph, conjunct: Id, term: Id, bucket: Id) -> Option<Node> {
    expr_nodes(egraph, conjunct).find_map(|(head, children)| {
        let reads_term = children.iter().any(|c| egraph.find(*c) == term);
        let rest_literal = children.iter().all(|c| {
            egraph.find(*c) == term
                || expr_nodes(egraph, *c)
                    .any(|(h, _)| *egraph.analysis.kind(h) == HeadKind::Literal)
        });
        (reads_term && rest_literal).then(|| {
            let children = children
                .iter()
                .map(|c| if egraph.find(*c) == term { bucket } else { *c })
                .collect();
            Node::Expr(head, children)
        })
    })
}

searcher_of_pairs!(AlignedRange, "?term", "?bucket");

impl Applier<Node, PlanAnalysis> for AlignedRange {
    fn apply_one(
        &self,
        egraph: &mut PlanGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let (term, bucket) = (egraph.find(subst[var("?term")]), subst[var("?bucket")]);
        let atoms = atoms::read(egraph, eclass);
        let [Atom::In { term: read, set }] = atoms.as_slice() else {
            return vec![];
        };
        if egraph.find(*read) == term {
            return match replaced_node(egraph, eclass, term, bucket) {
                Some(node) => union_new(egraph, eclass, node),
                None => vec![],
            };
        }
        // A DATE's conjunct, over the bucket of its cast.
        let Some(to) = egraph[term].data.data_type.clone() else {
            return vec![];
        };
        let Some(expr) = cast_ranges(set, &to).and_then(|r| in_ranges(r, set.null)) else {
            return vec![];
        };
        match add_over(egraph, expr, bucket) {
            Some(added) if egraph.union(eclass, added) => vec![eclass],
            _ => vec![],
        }
    }
}
