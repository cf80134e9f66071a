//! Reading a predicate e-class as atoms the implication check understands.
//!
//! The predicates arrive already normalized by DataFusion's expression simplifier (the engine
//! sees optimized plans and MV definitions normalized the same way: `NOT (a > 3)` is `a <= 3`,
//! short `IN` lists are `OR` chains, `BETWEEN` is kept), and by the e-graph (commutative
//! operands ordered, equal sub-expressions one class). What is left to read is small.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::{Between, InList, Like};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use egg::Id;

use super::values::ValueSet;
use crate::egraph::lang::{HeadKind, PlanGraph, expr_node};

/// One fact a predicate states. Every atom is true exactly when its condition holds, so a
/// conjunction of atoms is the predicate.
#[derive(Clone, Debug)]
pub enum Atom {
    /// The term's value is in the set. Any boolean expression the reader does not take apart
    /// (`f(x)`, `a LIKE '%x%'`) is the atom "this term is in {true}": such predicates match
    /// when they are the same e-class, that is, equal up to the e-graph's normalization.
    In { term: Id, set: ValueSet },
    /// Two terms are equal (and therefore neither is NULL).
    Equal(Id, Id),
    /// At least one branch holds; a branch is a conjunction.
    Or(Vec<Vec<Atom>>),
}

/// The atoms of a predicate class (a conjunction when the class is an `AND`).
pub fn read(egraph: &PlanGraph, class: Id) -> Vec<Atom> {
    let class = egraph.find(class);
    let fallback = || {
        vec![Atom::In {
            term: class,
            set: boolean(true),
        }]
    };
    let Some((head, children)) = expr_node(egraph, class) else {
        return fallback();
    };
    let child = |i: usize| egraph.find(children[i]);
    let read = match egraph.analysis.head(head) {
        Expr::BinaryExpr(BinaryExpr { op, .. }) if children.len() == 2 => match op {
            Operator::And => {
                let mut atoms = read(egraph, child(0));
                atoms.extend(read(egraph, child(1)));
                Some(atoms)
            }
            Operator::Or => Some(vec![disjunction(egraph, class)]),
            op => comparison(egraph, *op, child(0), child(1)),
        },
        Expr::Between(Between { negated, .. }) if children.len() == 3 => {
            let (low, high) = (literal(egraph, child(1)), literal(egraph, child(2)));
            match (low, high) {
                (Some(low), Some(high)) if fits(egraph, child(0), &low, &high) => {
                    let set = if *negated {
                        ValueSet::compared(Operator::Lt, &low)
                            .zip(ValueSet::compared(Operator::Gt, &high))
                            .and_then(|(a, b)| a.union(&b))
                    } else {
                        ValueSet::compared(Operator::GtEq, &low)
                            .zip(ValueSet::compared(Operator::LtEq, &high))
                            .and_then(|(a, b)| a.intersect(&b))
                    };
                    set.map(|set| {
                        vec![Atom::In {
                            term: child(0),
                            set,
                        }]
                    })
                }
                _ => None,
            }
        }
        Expr::InList(InList { negated, .. }) if !children.is_empty() => {
            in_list(egraph, child(0), &children[1..], *negated)
        }
        Expr::IsNull(_) => Some(vec![in_set(child(0), ValueSet::null_only())]),
        Expr::IsNotNull(_) => Some(vec![in_set(child(0), ValueSet::not_null())]),
        Expr::IsUnknown(_) => Some(vec![in_set(child(0), ValueSet::null_only())]),
        Expr::IsNotUnknown(_) => Some(vec![in_set(child(0), ValueSet::not_null())]),
        Expr::IsTrue(_) => Some(vec![in_set(child(0), boolean(true))]),
        Expr::IsFalse(_) => Some(vec![in_set(child(0), boolean(false))]),
        Expr::IsNotTrue(_) => Some(vec![in_set(child(0), boolean(false).or_null())]),
        Expr::IsNotFalse(_) => Some(vec![in_set(child(0), boolean(true).or_null())]),
        // Three-valued: `NOT x` holds where x is false, not where it is NULL.
        Expr::Not(_) if is_boolean(egraph, child(0)) => {
            Some(vec![in_set(child(0), boolean(false))])
        }
        Expr::Like(like) if children.len() == 2 => like_prefix(egraph, like, child(0), child(1)),
        _ => None,
    };
    read.unwrap_or_else(fallback)
}

/// An `OR` chain: one atom on a single term when every branch constrains only that term
/// (`a = 1 OR a = 2 OR a IS NULL`, `a >= 1 AND a < 5 OR a > 9`), otherwise the branches.
fn disjunction(egraph: &PlanGraph, class: Id) -> Atom {
    let mut branches = Vec::new();
    let mut todo = vec![class];
    while let Some(c) = todo.pop() {
        match expr_node(egraph, c) {
            Some((h, kids))
                if kids.len() == 2
                    && matches!(
                        egraph.analysis.head(h),
                        Expr::BinaryExpr(BinaryExpr {
                            op: Operator::Or,
                            ..
                        })
                    ) =>
            {
                todo.push(egraph.find(kids[1]));
                todo.push(egraph.find(kids[0]));
            }
            _ => branches.push(read(egraph, c)),
        }
    }
    // A branch that constrains one term only (`a >= 1 AND a < 5`) is that term in the
    // intersection of its sets.
    let on_one_term = |b: &Vec<Atom>| -> Option<(Id, ValueSet)> {
        let mut atoms = b.iter();
        let Some(Atom::In { term, set }) = atoms.next() else {
            return None;
        };
        atoms.try_fold((*term, set.clone()), |(t, acc), atom| match atom {
            Atom::In { term, set } if *term == t => Some((t, acc.intersect(set)?)),
            _ => None,
        })
    };
    let read: Option<Vec<(Id, ValueSet)>> = branches.iter().map(on_one_term).collect();
    if let Some(read) = read
        && let Some((term, _)) = read.first()
        && read.iter().all(|(t, _)| t == term)
    {
        let union = read
            .iter()
            .try_fold(ValueSet::nothing(), |u, (_, set)| u.union(set));
        if let Some(set) = union {
            return Atom::In { term: *term, set };
        }
    }
    Atom::Or(branches)
}

/// `term OP literal` (either side), or an equality of two terms.
fn comparison(egraph: &PlanGraph, op: Operator, left: Id, right: Id) -> Option<Vec<Atom>> {
    let flipped = match op {
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        Operator::Eq | Operator::NotEq => op,
        _ => return None,
    };
    match (literal(egraph, left), literal(egraph, right)) {
        (None, Some(v)) if fits(egraph, left, &v, &v) => {
            Some(vec![in_set(left, ValueSet::compared(op, &v)?)])
        }
        (Some(v), None) if fits(egraph, right, &v, &v) => {
            Some(vec![in_set(right, ValueSet::compared(flipped, &v)?)])
        }
        (None, None) if op == Operator::Eq => Some(vec![Atom::Equal(left, right)]),
        _ => None,
    }
}

/// `term [NOT] IN (literals...)`. A NULL in the list makes `NOT IN` never true and is never
/// matched by `IN`.
fn in_list(egraph: &PlanGraph, term: Id, items: &[Id], negated: bool) -> Option<Vec<Atom>> {
    let values = items
        .iter()
        .map(|i| literal(egraph, egraph.find(*i)))
        .collect::<Option<Vec<_>>>()?;
    if values.is_empty()
        || !values
            .iter()
            .all(|v| v.is_null() || fits(egraph, term, v, v))
    {
        return None;
    }
    let set = if negated {
        ValueSet::none_of(&values)?
    } else {
        ValueSet::any_of(&values)?
    };
    Some(vec![in_set(term, set)])
}

/// `s LIKE 'abc%'` is `'abc' <= s < 'abd'` in byte order (how Arrow compares strings). Only
/// for plain ASCII prefixes without wildcards or escapes inside, and `s LIKE 'abc'` (no
/// wildcard) is `s = 'abc'`.
fn like_prefix(egraph: &PlanGraph, like: &Like, term: Id, pattern: Id) -> Option<Vec<Atom>> {
    if like.negated || like.case_insensitive || like.escape_char.is_some() {
        return None;
    }
    let value = literal(egraph, pattern)?;
    let text = match &value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        _ => return None,
    };
    let plain = |s: &str| s.is_ascii() && !s.contains(['%', '_', '\\']);
    let same_type = |s: String| match &value {
        ScalarValue::LargeUtf8(_) => ScalarValue::LargeUtf8(Some(s)),
        ScalarValue::Utf8View(_) => ScalarValue::Utf8View(Some(s)),
        _ => ScalarValue::Utf8(Some(s)),
    };
    if !fits(egraph, term, &value, &value) {
        return None;
    }
    let set = if plain(&text) {
        ValueSet::compared(Operator::Eq, &value)?
    } else {
        let prefix = text
            .strip_suffix('%')
            .filter(|p| !p.is_empty() && plain(p))?;
        let last = *prefix.as_bytes().last()?;
        if last >= 0x7f {
            return None;
        }
        let mut next = prefix[..prefix.len() - 1].to_string();
        next.push(char::from(last + 1));
        ValueSet::compared(Operator::GtEq, &same_type(prefix.to_string()))?
            .intersect(&ValueSet::compared(Operator::Lt, &same_type(next))?)?
    };
    Some(vec![in_set(term, set)])
}

fn in_set(term: Id, set: ValueSet) -> Atom {
    Atom::In { term, set }
}

fn boolean(b: bool) -> ValueSet {
    ValueSet::compared(Operator::Eq, &ScalarValue::Boolean(Some(b)))
        .unwrap_or_else(ValueSet::nothing)
}

/// The value of a literal class.
fn literal(egraph: &PlanGraph, class: Id) -> Option<ScalarValue> {
    let (head, _) = expr_node(egraph, class)?;
    match (egraph.analysis.kind(head), egraph.analysis.head(head)) {
        (HeadKind::Literal, Expr::Literal(v, _)) => Some(v.clone()),
        _ => None,
    }
}

/// Whether literals `a` and `b` have the term's type, so that comparing values is comparing
/// what the predicate compares (a NULL literal of another type fits anywhere).
fn fits(egraph: &PlanGraph, term: Id, a: &ScalarValue, b: &ScalarValue) -> bool {
    let ty = egraph[term].data.data_type.as_ref();
    let ok = |v: &ScalarValue| v.is_null() || ty == Some(&v.data_type());
    ok(a) && ok(b)
}

fn is_boolean(egraph: &PlanGraph, class: Id) -> bool {
    egraph[class].data.data_type == Some(DataType::Boolean)
}
