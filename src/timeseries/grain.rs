//! Time-bucket grains and the one canonical spelling each has in the e-graph.
//!
//! Every bucket spelling (`date_trunc`, `date_bin`, CarbonData's `timeseries`, ClickHouse's
//! `toStartOf*`; the last two simplify to the first two, see `frontend::time_functions`) is read as a
//! [`Grain`] over a timestamp term and written back as one canonical DataFusion expression, so
//! equal buckets are one e-class whatever their spelling.

use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::functions::datetime::{date_bin, date_trunc};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, ExprSchemable, lit};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;
/// 1970-01-05, a Monday: where `date_trunc('week')` weeks start.
const MONDAY_ORIGIN: i64 = 4 * NANOS_PER_DAY;

/// How a bucket function cuts the time line of its timestamp (the wall clock of the
/// timestamp's time zone; the plain value for a timestamp without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    /// Buckets `[origin + k·width, origin + (k+1)·width)`, in nanoseconds, the origin reduced
    /// modulo the width: `date_trunc` from microsecond to week, and `date_bin`.
    Fixed {
        width: i64,
        origin: i64,
    },
    Month,
    Quarter,
    Year,
}

/// `date_trunc` units and the grain each is.
const DATE_TRUNC_UNITS: [(&str, Grain); 10] = [
    ("microsecond", Grain::fixed_const(1_000, 0)),
    ("millisecond", Grain::fixed_const(1_000_000, 0)),
    ("second", Grain::fixed_const(NANOS_PER_SECOND, 0)),
    ("minute", Grain::fixed_const(60 * NANOS_PER_SECOND, 0)),
    ("hour", Grain::fixed_const(3_600 * NANOS_PER_SECOND, 0)),
    ("day", Grain::fixed_const(NANOS_PER_DAY, 0)),
    ("week", Grain::fixed_const(7 * NANOS_PER_DAY, MONDAY_ORIGIN)),
    ("month", Grain::Month),
    ("quarter", Grain::Quarter),
    ("year", Grain::Year),
];

impl Grain {
    /// Fixed-width buckets; `None` unless the width is positive.
    pub fn fixed(width: i64, origin: i64) -> Option<Grain> {
        (width > 0).then(|| Grain::Fixed {
            width,
            origin: origin.rem_euclid(width),
        })
    }

    const fn fixed_const(width: i64, origin: i64) -> Grain {
        Grain::Fixed { width, origin }
    }

    /// Whether every bucket of `coarse` is an exact union of buckets of `self`, by arithmetic:
    /// widths divide and origins align; calendar grains are unions of days (midnight to
    /// midnight), months of quarters of years. A week is not a union of anything above it.
    pub fn divides(self, coarse: Grain) -> bool {
        use Grain::*;
        match (self, coarse) {
            (
                Fixed {
                    width: w1,
                    origin: o1,
                },
                Fixed {
                    width: w2,
                    origin: o2,
                },
            ) => w2 % w1 == 0 && (o2 - o1).rem_euclid(w1) == 0,
            (Fixed { .. }, Month | Quarter | Year) => {
                self.divides(Grain::fixed_const(NANOS_PER_DAY, 0))
            }
            (Month, Month | Quarter | Year) | (Quarter, Quarter | Year) | (Year, Year) => true,
            _ => false,
        }
    }

    /// Whether every bucket starts at midnight (a day or a union of days): a DATE then holds
    /// the bucket exactly, and casting it back to a timestamp gives the bucket.
    pub fn starts_at_midnight(self) -> bool {
        let day = Grain::fixed_const(NANOS_PER_DAY, 0);
        self == day || day.divides(self)
    }

    /// The grain `date_trunc(unit, ..)` buckets by.
    pub fn of_date_trunc(unit: &str) -> Option<Grain> {
        let unit = unit.to_ascii_lowercase();
        DATE_TRUNC_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, g)| *g)
    }

    fn date_trunc_unit(self) -> Option<&'static str> {
        DATE_TRUNC_UNITS
            .iter()
            .find(|(_, g)| *g == self)
            .map(|(u, _)| *u)
    }

    /// The canonical expression for this grain over `ts` (of type `ts_type`): `date_trunc`
    /// when a unit matches, else `date_bin` with the reduced origin. `date_bin` has no time
    /// zone form here: over a zoned timestamp it bins in UTC, not on the zone's wall clock.
    pub fn bucket(self, ts: Expr, ts_type: &DataType) -> Option<Expr> {
        if let Some(unit) = self.date_trunc_unit() {
            return Some(date_trunc().call(vec![lit(unit), ts]));
        }
        let Grain::Fixed { width, origin } = self else {
            return None;
        };
        match ts_type {
            DataType::Timestamp(_, None) => Some(date_bin().call(vec![
                lit(ScalarValue::IntervalMonthDayNano(Some(
                    IntervalMonthDayNano::new(0, 0, width),
                ))),
                ts,
                lit(ScalarValue::TimestampNanosecond(Some(origin), None)),
            ])),
            _ => None,
        }
    }

    /// Whether `value` (a literal of the bucketed term's type) starts a bucket: evaluated by
    /// DataFusion's own constant folding, so time zones and calendars are DataFusion's.
    pub fn starts_bucket(self, value: &ScalarValue) -> bool {
        let Some(bucket) = self.bucket(lit(value.clone()), &value.data_type()) else {
            return false;
        };
        let simplifier = ExprSimplifier::new(SimplifyContext::default());
        matches!(simplifier.simplify(bucket), Ok(Expr::Literal(v, _)) if v == *value)
    }
}

/// The grain and the bucketed term of a bucket spelling DataFusion plans (`date_trunc(unit,
/// ts)`, `date_bin(stride, ts[, origin])`) over a timestamp; `None` for anything else.
pub fn recognize<'e>(expr: &'e Expr, schema: &DFSchema) -> Option<(Grain, &'e Expr)> {
    let Expr::ScalarFunction(call) = expr else {
        return None;
    };
    let ts = call.args.get(1)?;
    let DataType::Timestamp(_, zone) = ts.get_type(schema).ok()? else {
        return None;
    };
    let grain = grain_of_call(call.name(), &call.args)?;
    // date_bin bins zoned timestamps in UTC: not comparable with the zone's date_trunc.
    (call.name() == "date_trunc" || zone.is_none()).then_some((grain, ts))
}

/// The grain of a `date_trunc` or `date_bin` call whose unit, stride and origin are literals
/// (the second argument, the term, is not looked at: heads hold a placeholder there).
pub fn grain_of_call(name: &str, args: &[Expr]) -> Option<Grain> {
    let literal = |i: usize| match args.get(i) {
        Some(Expr::Literal(v, _)) => Some(v),
        _ => None,
    };
    match (name, args.len()) {
        ("date_trunc", 2) => match literal(0)? {
            ScalarValue::Utf8(Some(u))
            | ScalarValue::Utf8View(Some(u))
            | ScalarValue::LargeUtf8(Some(u)) => Grain::of_date_trunc(u),
            _ => None,
        },
        ("date_bin", 2 | 3) => {
            let width = match literal(0)? {
                ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => i64::from(i.days)
                    .checked_mul(NANOS_PER_DAY)?
                    .checked_add(i.nanoseconds)?,
                ScalarValue::IntervalDayTime(Some(i)) => i64::from(i.days)
                    .checked_mul(NANOS_PER_DAY)?
                    .checked_add(i64::from(i.milliseconds).checked_mul(1_000_000)?)?,
                _ => return None,
            };
            let origin = match args.len() {
                2 => 0,
                _ => match literal(2)? {
                    ScalarValue::TimestampNanosecond(Some(o), None) => *o,
                    _ => return None,
                },
            };
            Grain::fixed(width, origin)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(n: i64) -> Grain {
        Grain::fixed(n * 60 * NANOS_PER_SECOND, 0).unwrap()
    }

    #[test]
    fn divisibility_and_alignment() {
        assert!(minutes(5).divides(minutes(15)));
        assert!(!minutes(10).divides(minutes(15)));
        assert!(minutes(30).divides(Grain::Month));
        let week = Grain::of_date_trunc("week").unwrap();
        assert!(!week.divides(Grain::Month));
        assert!(Grain::of_date_trunc("day").unwrap().divides(week));
        // 15-minute bins starting at 00:05 do not nest in hours, nor in 5-minute bins at 00:00
        // ... but 5-minute bins do nest in them.
        let shifted = Grain::fixed(15 * 60 * NANOS_PER_SECOND, 5 * 60 * NANOS_PER_SECOND).unwrap();
        assert!(!shifted.divides(Grain::of_date_trunc("hour").unwrap()));
        assert!(minutes(5).divides(shifted));
        assert!(Grain::Month.divides(Grain::Year) && !Grain::Year.divides(Grain::Quarter));
    }

    #[test]
    fn bucket_starts_are_evaluated_by_datafusion() {
        let ts = |s: &str| {
            ScalarValue::try_from_string(
                s.to_string(),
                &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
            )
            .unwrap()
        };
        assert!(Grain::Month.starts_bucket(&ts("2024-03-01T00:00:00")));
        assert!(!Grain::Month.starts_bucket(&ts("2024-03-02T00:00:00")));
        assert!(minutes(15).starts_bucket(&ts("2024-03-02T10:45:00")));
        assert!(!minutes(15).starts_bucket(&ts("2024-03-02T10:50:00")));
    }
}
