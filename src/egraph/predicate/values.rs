//! Sets of values a term may hold for a predicate to be true: a NULL flag plus disjoint
//! intervals with open or closed bounds.
//!
//! DataFusion's interval arithmetic (`datafusion::logical_expr::interval_arithmetic::Interval`)
//! only has closed bounds and approximates strict ones with the next representable value, which
//! does not exist for strings; predicates over strings (`name > 'x'`) need open bounds, so this
//! module keeps its own small bound type over DataFusion's `ScalarValue`.
//!
//! Every operation answers `None` when two values cannot be compared (different types): the
//! callers then assume nothing, which is always sound.

use std::cmp::Ordering;
use std::fmt::Write;
use std::ops::Bound;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator;

/// Where a predicate over one term is true.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueSet {
    /// True for NULL (`IS NULL`, `IS NOT TRUE`).
    pub null: bool,
    /// Sorted, disjoint, non-empty intervals of non-NULL values.
    intervals: Vec<Interval>,
}

/// A range `[a, b)`; `None` for an unbounded end.
pub type HalfOpen = (Option<ScalarValue>, Option<ScalarValue>);

#[derive(Clone, Debug, PartialEq)]
struct Interval {
    lo: Bound<ScalarValue>,
    hi: Bound<ScalarValue>,
}

impl ValueSet {
    /// Any value, NULL included: no constraint.
    pub fn any() -> Self {
        ValueSet {
            null: true,
            intervals: vec![Interval::full()],
        }
    }

    /// Any non-NULL value (`IS NOT NULL`).
    pub fn not_null() -> Self {
        ValueSet {
            null: false,
            intervals: vec![Interval::full()],
        }
    }

    /// NULL only (`IS NULL`).
    pub fn null_only() -> Self {
        ValueSet {
            null: true,
            intervals: vec![],
        }
    }

    /// No value: the predicate is never true (a comparison with NULL).
    pub fn nothing() -> Self {
        ValueSet {
            null: false,
            intervals: vec![],
        }
    }

    /// The values `v` for which `term OP v` is true; `None` for operators that are not
    /// comparisons. NULL compares to nothing.
    pub fn compared(op: Operator, v: &ScalarValue) -> Option<Self> {
        use Bound::{Excluded, Included, Unbounded};
        if v.is_null() {
            return matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
            )
            .then(Self::nothing);
        }
        let (lo, hi) = match op {
            Operator::Eq => (Included(v.clone()), Included(v.clone())),
            Operator::Lt => (Unbounded, Excluded(v.clone())),
            Operator::LtEq => (Unbounded, Included(v.clone())),
            Operator::Gt => (Excluded(v.clone()), Unbounded),
            Operator::GtEq => (Included(v.clone()), Unbounded),
            Operator::NotEq => {
                let below = Self::from_interval(Unbounded, Excluded(v.clone()))?;
                let above = Self::from_interval(Excluded(v.clone()), Unbounded)?;
                return below.union(&above);
            }
            _ => return None,
        };
        Self::from_interval(lo, hi)
    }

    /// The values equal to one of `values` (`term IN (...)`; a NULL in the list matches
    /// nothing). Sorted once, so lists of thousands stay cheap.
    pub fn any_of(values: &[ScalarValue]) -> Option<Self> {
        let mut set = ValueSet {
            null: false,
            intervals: values
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| Interval {
                    lo: Bound::Included(v.clone()),
                    hi: Bound::Included(v.clone()),
                })
                .collect(),
        };
        set.normalize()?;
        Some(set)
    }

    /// The non-NULL values equal to none of `values` (`term NOT IN (...)`): the gaps between
    /// them. Nothing when the list holds a NULL (the predicate is then never true).
    pub fn none_of(values: &[ScalarValue]) -> Option<Self> {
        use Bound::{Excluded, Unbounded};
        if values.iter().any(ScalarValue::is_null) {
            return Some(Self::nothing());
        }
        // Sorting needs a total order: values that do not compare to themselves give up.
        if values
            .iter()
            .any(|v| compare(v, v) != Some(Ordering::Equal))
        {
            return None;
        }
        let mut sorted = values.to_vec();
        let mut order_ok = true;
        sorted.sort_by(|a, b| {
            compare(a, b).unwrap_or_else(|| {
                order_ok = false;
                Ordering::Equal
            })
        });
        if !order_ok {
            return None;
        }
        sorted.dedup_by(|a, b| compare(a, b) == Some(Ordering::Equal));
        let mut intervals = Vec::with_capacity(sorted.len() + 1);
        let mut lo = Unbounded;
        for v in sorted {
            intervals.push(Interval {
                lo,
                hi: Excluded(v.clone()),
            });
            lo = Excluded(v);
        }
        intervals.push(Interval { lo, hi: Unbounded });
        let mut set = ValueSet {
            null: false,
            intervals,
        };
        set.normalize()?;
        Some(set)
    }

    /// `[lo, hi]` with the given bounds, without NULL.
    pub fn from_interval(lo: Bound<ScalarValue>, hi: Bound<ScalarValue>) -> Option<Self> {
        let mut set = ValueSet {
            null: false,
            intervals: vec![Interval { lo, hi }],
        };
        set.normalize()?;
        Some(set)
    }

    /// With NULL added.
    pub fn or_null(mut self) -> Self {
        self.null = true;
        self
    }

    /// The set as half-open ranges `[a, b)` (`None`: unbounded), `<= b` read as `< b + 1` on a
    /// discrete type (integers, dates); `None` for any other set. NULL is not in them.
    pub fn half_open_ranges(&self) -> Option<Vec<HalfOpen>> {
        self.intervals
            .iter()
            .map(|Interval { lo, hi }| {
                let lo = match lo {
                    Bound::Included(v) => Some(v.clone()),
                    Bound::Unbounded => None,
                    Bound::Excluded(_) => return None,
                };
                let hi = match hi {
                    Bound::Excluded(v) => Some(v.clone()),
                    Bound::Included(v) => Some(step(v, Step::Up)?),
                    Bound::Unbounded => None,
                };
                Some((lo, hi))
            })
            .collect()
    }

    /// The finite bounds of [`Self::half_open_ranges`]: the sets a time bucket can stand in
    /// for (NULL allowed or not). `None` for any other set, or one without bounds.
    pub fn half_open_bounds(&self) -> Option<Vec<ScalarValue>> {
        let bounds: Vec<ScalarValue> = self
            .half_open_ranges()?
            .into_iter()
            .flat_map(|(lo, hi)| lo.into_iter().chain(hi))
            .collect();
        (!bounds.is_empty()).then_some(bounds)
    }

    pub fn is_empty(&self) -> bool {
        !self.null && self.intervals.is_empty()
    }

    /// The single non-NULL value in the set, if it holds exactly one.
    pub fn single_value(&self) -> Option<&ScalarValue> {
        match (self.null, self.intervals.as_slice()) {
            (
                false,
                [
                    Interval {
                        lo: Bound::Included(a),
                        hi: Bound::Included(b),
                    },
                ],
            ) if compare(a, b) == Some(Ordering::Equal) => Some(a),
            _ => None,
        }
    }

    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let mut intervals = Vec::new();
        for a in &self.intervals {
            for b in &other.intervals {
                let lo = max_lower(&a.lo, &b.lo)?;
                let hi = min_upper(&a.hi, &b.hi)?;
                intervals.push(Interval { lo, hi });
            }
        }
        let mut set = ValueSet {
            null: self.null && other.null,
            intervals,
        };
        set.normalize()?;
        Some(set)
    }

    pub fn union(&self, other: &Self) -> Option<Self> {
        let mut set = ValueSet {
            null: self.null || other.null,
            intervals: self
                .intervals
                .iter()
                .chain(&other.intervals)
                .cloned()
                .collect(),
        };
        set.normalize()?;
        Some(set)
    }

    /// Whether every value of `self` is in `other`. `Some(false)` may also mean "could not
    /// prove it": callers only act on `Some(true)`.
    pub fn is_subset(&self, other: &Self) -> Option<bool> {
        if self.null && !other.null {
            return Some(false);
        }
        for a in &self.intervals {
            let mut inside = false;
            for b in &other.intervals {
                if cmp_lower(&b.lo, &a.lo)? != Ordering::Greater
                    && cmp_upper(&a.hi, &b.hi)? != Ordering::Greater
                {
                    inside = true;
                    break;
                }
            }
            if !inside {
                return Some(false);
            }
        }
        Some(true)
    }

    /// The set as a condition on `term`, for reports (`price <= 100`).
    pub fn describe(&self, term: &str) -> String {
        use Bound::{Excluded, Included, Unbounded};
        let mut parts = Vec::new();
        for i in &self.intervals {
            let mut s = String::new();
            match (&i.lo, &i.hi) {
                (Included(a), Included(b)) if compare(a, b) == Some(Ordering::Equal) => {
                    let _ = write!(s, "{term} = {}", sql_value(a));
                }
                (Unbounded, Unbounded) => {
                    let _ = write!(s, "{term} IS NOT NULL");
                }
                (lo, hi) => {
                    let mut sides = Vec::new();
                    match lo {
                        Included(a) => sides.push(format!("{term} >= {}", sql_value(a))),
                        Excluded(a) => sides.push(format!("{term} > {}", sql_value(a))),
                        Unbounded => {}
                    }
                    match hi {
                        Included(b) => sides.push(format!("{term} <= {}", sql_value(b))),
                        Excluded(b) => sides.push(format!("{term} < {}", sql_value(b))),
                        Unbounded => {}
                    }
                    s = sides.join(" AND ");
                }
            }
            parts.push(s);
        }
        if self.null {
            parts.push(format!("{term} IS NULL"));
        }
        match parts.len() {
            0 => "nothing".to_string(),
            1 => parts.remove(0),
            _ => format!("({})", parts.join(" OR ")),
        }
    }

    /// Tightens bounds on discrete types, drops empty intervals, sorts and merges the rest.
    fn normalize(&mut self) -> Option<()> {
        let mut kept = Vec::with_capacity(self.intervals.len());
        for i in self.intervals.drain(..) {
            let i = Interval {
                lo: tighten(i.lo, Step::Up),
                hi: tighten(i.hi, Step::Down),
            };
            if !i.is_empty()? {
                kept.push(i);
            }
        }
        let mut order_ok = true;
        kept.sort_by(|a, b| {
            cmp_lower(&a.lo, &b.lo).unwrap_or_else(|| {
                order_ok = false;
                Ordering::Equal
            })
        });
        if !order_ok {
            return None;
        }
        let mut merged: Vec<Interval> = Vec::with_capacity(kept.len());
        for i in kept {
            match merged.last_mut() {
                Some(last) if touches(&last.hi, &i.lo)? => {
                    if cmp_upper(&i.hi, &last.hi)? == Ordering::Greater {
                        last.hi = i.hi;
                    }
                }
                _ => merged.push(i),
            }
        }
        self.intervals = merged;
        Some(())
    }
}

impl Interval {
    fn full() -> Self {
        Interval {
            lo: Bound::Unbounded,
            hi: Bound::Unbounded,
        }
    }

    /// Only claims emptiness it can prove: `('a', 'b')` counts as non-empty.
    fn is_empty(&self) -> Option<bool> {
        use Bound::{Excluded, Included};
        Some(match (&self.lo, &self.hi) {
            (Included(a), Included(b)) => compare(a, b)? == Ordering::Greater,
            (Included(a) | Excluded(a), Included(b) | Excluded(b)) => {
                compare(a, b)? != Ordering::Less
            }
            _ => false,
        })
    }
}

/// How Arrow compares two values of the same type. Floats compare as DataFusion evaluates
/// them: NaN above every number and equal to itself, `-0.0` equal to `0.0` (checked by the
/// property tests in `tests/filter.rs`). `None` across types or with NULL.
pub fn compare(a: &ScalarValue, b: &ScalarValue) -> Option<Ordering> {
    fn float(x: f64, y: f64) -> Ordering {
        if x == 0.0 && y == 0.0 {
            Ordering::Equal
        } else {
            match (x.is_nan(), y.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => x.total_cmp(&y),
            }
        }
    }
    // Arrow orders a NaN with its sign bit set below -inf: such literals are not compared.
    let odd_nan = |x: f64| x.is_nan() && x.is_sign_negative();
    match (a, b) {
        (ScalarValue::Float64(Some(x)), ScalarValue::Float64(Some(y))) => {
            (!odd_nan(*x) && !odd_nan(*y)).then(|| float(*x, *y))
        }
        (ScalarValue::Float32(Some(x)), ScalarValue::Float32(Some(y))) => {
            let (x, y) = (f64::from(*x), f64::from(*y));
            (!odd_nan(x) && !odd_nan(y)).then(|| float(x, y))
        }
        (ScalarValue::Float16(_), _) | (_, ScalarValue::Float16(_)) => None,
        _ if a.is_null() || b.is_null() || a.data_type() != b.data_type() => None,
        _ => a.partial_cmp(b),
    }
}

/// Lower bounds ordered by where they start: `Unbounded < [v < (v`.
fn cmp_lower(a: &Bound<ScalarValue>, b: &Bound<ScalarValue>) -> Option<Ordering> {
    use Bound::{Excluded, Included, Unbounded};
    Some(match (a, b) {
        (Unbounded, Unbounded) => Ordering::Equal,
        (Unbounded, _) => Ordering::Less,
        (_, Unbounded) => Ordering::Greater,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => {
            compare(x, y)?.then(match (a, b) {
                (Included(_), Excluded(_)) => Ordering::Less,
                (Excluded(_), Included(_)) => Ordering::Greater,
                _ => Ordering::Equal,
            })
        }
    })
}

/// Upper bounds ordered by where they end: `v) < v] < Unbounded`.
fn cmp_upper(a: &Bound<ScalarValue>, b: &Bound<ScalarValue>) -> Option<Ordering> {
    use Bound::{Excluded, Included, Unbounded};
    Some(match (a, b) {
        (Unbounded, Unbounded) => Ordering::Equal,
        (Unbounded, _) => Ordering::Greater,
        (_, Unbounded) => Ordering::Less,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => {
            compare(x, y)?.then(match (a, b) {
                (Included(_), Excluded(_)) => Ordering::Greater,
                (Excluded(_), Included(_)) => Ordering::Less,
                _ => Ordering::Equal,
            })
        }
    })
}

fn max_lower(a: &Bound<ScalarValue>, b: &Bound<ScalarValue>) -> Option<Bound<ScalarValue>> {
    Some(if cmp_lower(a, b)? == Ordering::Less {
        b.clone()
    } else {
        a.clone()
    })
}

fn min_upper(a: &Bound<ScalarValue>, b: &Bound<ScalarValue>) -> Option<Bound<ScalarValue>> {
    Some(if cmp_upper(a, b)? == Ordering::Greater {
        b.clone()
    } else {
        a.clone()
    })
}

/// Whether an interval ending at `hi` and one starting at `lo` (not before it) leave no gap:
/// `..5] [5..`, `..5) [5..`, `..5] (5..`, and on discrete types `..4] [5..`.
fn touches(hi: &Bound<ScalarValue>, lo: &Bound<ScalarValue>) -> Option<bool> {
    use Bound::{Excluded, Included, Unbounded};
    Some(match (hi, lo) {
        (Unbounded, _) | (_, Unbounded) => true,
        (Excluded(a), Excluded(b)) => compare(a, b)? == Ordering::Greater,
        (Included(a), Included(b)) => {
            compare(a, b)? != Ordering::Less
                || step(a, Step::Up).is_some_and(|next| compare(&next, b) == Some(Ordering::Equal))
        }
        (Included(a) | Excluded(a), Included(b) | Excluded(b)) => compare(a, b)? != Ordering::Less,
    })
}

#[derive(Clone, Copy)]
enum Step {
    Up,
    Down,
}

/// On discrete types a strict bound is the neighbouring closed one: `x > 3` is `x >= 4`.
fn tighten(bound: Bound<ScalarValue>, direction: Step) -> Bound<ScalarValue> {
    match bound {
        Bound::Excluded(v) => match step(&v, direction) {
            Some(next) => Bound::Included(next),
            None => Bound::Excluded(v),
        },
        other => other,
    }
}

/// The next value up or down on a discrete type (integers, dates, booleans); `None` on other
/// types and at the ends of the range.
fn step(v: &ScalarValue, direction: Step) -> Option<ScalarValue> {
    macro_rules! int {
        ($variant:ident, $x:expr) => {
            match direction {
                Step::Up => $x.checked_add(1),
                Step::Down => $x.checked_sub(1),
            }
            .map(|n| ScalarValue::$variant(Some(n)))
        };
    }
    match v {
        ScalarValue::Int8(Some(x)) => int!(Int8, x),
        ScalarValue::Int16(Some(x)) => int!(Int16, x),
        ScalarValue::Int32(Some(x)) => int!(Int32, x),
        ScalarValue::Int64(Some(x)) => int!(Int64, x),
        ScalarValue::UInt8(Some(x)) => int!(UInt8, x),
        ScalarValue::UInt16(Some(x)) => int!(UInt16, x),
        ScalarValue::UInt32(Some(x)) => int!(UInt32, x),
        ScalarValue::UInt64(Some(x)) => int!(UInt64, x),
        ScalarValue::Date32(Some(x)) => int!(Date32, x),
        ScalarValue::Boolean(Some(b)) => match (direction, b) {
            (Step::Up, false) => Some(ScalarValue::Boolean(Some(true))),
            (Step::Down, true) => Some(ScalarValue::Boolean(Some(false))),
            _ => None,
        },
        _ => None,
    }
}

/// A value as SQL spells it, for reports (DataFusion's unparser: `'b'`, `CAST('2024-01-31
/// 23:59:59' AS TIMESTAMP)`).
fn sql_value(v: &ScalarValue) -> String {
    match datafusion::sql::unparser::expr_to_sql(&datafusion::logical_expr::lit(v.clone())) {
        Ok(sql) => sql.to_string(),
        Err(_) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i32) -> ScalarValue {
        ScalarValue::Int32(Some(v))
    }

    fn cmp(op: Operator, v: ScalarValue) -> ValueSet {
        ValueSet::compared(op, &v).unwrap()
    }

    #[test]
    fn in_and_not_in_lists_equal_their_chains_of_comparisons() {
        let values = [int(7), int(3), int(3), int(10)];
        let mut any = ValueSet::nothing();
        let mut none = ValueSet::not_null();
        for v in &values {
            any = any.union(&cmp(Operator::Eq, v.clone())).unwrap();
            none = none.intersect(&cmp(Operator::NotEq, v.clone())).unwrap();
        }
        assert_eq!(ValueSet::any_of(&values), Some(any));
        assert_eq!(ValueSet::none_of(&values), Some(none));
        let with_null = [int(1), ScalarValue::Int32(None)];
        assert_eq!(ValueSet::none_of(&with_null), Some(ValueSet::nothing()));
        assert_eq!(
            ValueSet::any_of(&with_null),
            Some(cmp(Operator::Eq, int(1)))
        );
        let big: Vec<ScalarValue> = (0..2000).map(|i| int(i * 2)).collect();
        let below = cmp(Operator::Lt, int(5000));
        assert_eq!(
            ValueSet::any_of(&big).unwrap().is_subset(&below),
            Some(true)
        );
    }

    #[test]
    fn strict_bounds_on_integers_are_closed_neighbours() {
        assert_eq!(cmp(Operator::Gt, int(3)), cmp(Operator::GtEq, int(4)));
        let between = cmp(Operator::Gt, int(3))
            .intersect(&cmp(Operator::Lt, int(5)))
            .unwrap();
        assert_eq!(between.single_value(), Some(&int(4)));
        // [1, 3] and [4, 6] leave no integer out.
        let a = ValueSet::from_interval(Bound::Included(int(1)), Bound::Included(int(3))).unwrap();
        let b = ValueSet::from_interval(Bound::Included(int(4)), Bound::Included(int(6))).unwrap();
        let whole = ValueSet::from_interval(Bound::Included(int(1)), Bound::Included(int(6)));
        assert_eq!(a.union(&b), whole);
    }

    #[test]
    fn strict_bounds_on_strings_and_floats_stay_open() {
        let s = |v: &str| ScalarValue::Utf8(Some(v.into()));
        let gt = cmp(Operator::Gt, s("a"));
        assert_eq!(gt.is_subset(&cmp(Operator::GtEq, s("a"))), Some(true));
        assert_eq!(cmp(Operator::GtEq, s("a")).is_subset(&gt), Some(false));
        let f = |v: f64| ScalarValue::Float64(Some(v));
        let open = cmp(Operator::Gt, f(1.0)).intersect(&cmp(Operator::Lt, f(2.0)));
        assert!(!open.unwrap().is_empty());
        assert!(
            cmp(Operator::Gt, f(1.0))
                .intersect(&cmp(Operator::Lt, f(1.0)))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn not_equal_and_nulls() {
        let ne = cmp(Operator::NotEq, int(5));
        assert_eq!(cmp(Operator::Gt, int(5)).is_subset(&ne), Some(true));
        assert_eq!(cmp(Operator::GtEq, int(5)).is_subset(&ne), Some(false));
        assert_eq!(ValueSet::null_only().is_subset(&ne), Some(false));
        assert_eq!(ValueSet::null_only().is_subset(&ne.or_null()), Some(true));
        assert!(
            ValueSet::compared(Operator::Eq, &ScalarValue::Int32(None))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn floats_compare_as_datafusion_evaluates() {
        let f = |v: f64| ScalarValue::Float64(Some(v));
        assert_eq!(compare(&f(-0.0), &f(0.0)), Some(Ordering::Equal));
        assert_eq!(
            compare(&f(f64::NAN), &f(f64::INFINITY)),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&f(f64::NAN), &f(f64::NAN)), Some(Ordering::Equal));
        assert_eq!(compare(&f(1.0), &int(1)), None);
        assert_eq!(compare(&f(-f64::NAN), &f(1.0)), None);
    }

    #[test]
    fn describes_sets() {
        let set = cmp(Operator::LtEq, int(100)).or_null();
        assert_eq!(set.describe("price"), "(price <= 100 OR price IS NULL)");
        assert_eq!(cmp(Operator::Eq, int(7)).describe("x"), "x = 7");
    }
}
