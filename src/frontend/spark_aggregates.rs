//! Spark's `skewness` and `kurtosis` aggregates, which DataFusion lacks, as Spark defines them
//! (`CentralMomentAgg`), so that CarbonData's and Spark users' SQL runs unchanged:
//!
//! - `skewness(x) = sqrt(n) * m3 / m2^1.5`, `kurtosis(x) = n * m4 / m2^2 - 3` (excess kurtosis),
//!   where `mk` is the sum of `(x - mean)^k` over the non-NULL values;
//! - NULL over no values, and where `m2` is 0 (every value equal), as Spark 3 does
//!   (`spark.sql.legacy.statisticalAggregate` off).
//!
//! The moments are accumulated as Spark does, by the streaming update and merge of
//! (count, mean, m2, m3, m4), which keeps `m2` exactly 0 over equal values. To the rewriter
//! they are aggregates like any other: an MV keeping one answers it at the same grain.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Both of them.
pub fn functions() -> Vec<AggregateUDF> {
    [Moment::Skewness, Moment::Kurtosis]
        .into_iter()
        .map(|m| AggregateUDF::new_from_impl(CentralMoment::new(m)))
        .collect()
}

/// Registers both on `ctx`.
pub fn register(ctx: &SessionContext) {
    for f in functions() {
        ctx.register_udaf(f);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Moment {
    Skewness,
    Kurtosis,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CentralMoment {
    moment: Moment,
    signature: Signature,
}

impl CentralMoment {
    fn new(moment: Moment) -> Self {
        CentralMoment {
            moment,
            signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for CentralMoment {
    fn name(&self) -> &str {
        match self.moment {
            Moment::Skewness => "skewness",
            Moment::Kurtosis => "kurtosis",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Moments {
            moment: self.moment,
            state: State::default(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(["n", "mean", "m2", "m3", "m4"]
            .into_iter()
            .map(|s| {
                Arc::new(Field::new(
                    format_state_name(args.name, s),
                    DataType::Float64,
                    false,
                ))
            })
            .collect())
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(None))
    }
}

/// Count, mean and the sums of the 2nd to 4th powers of the deviations from the mean.
#[derive(Debug, Default, Clone, Copy)]
struct State {
    n: f64,
    mean: f64,
    m2: f64,
    m3: f64,
    m4: f64,
}

impl State {
    /// The state of `self`'s values and `other`'s (Spark's `CentralMomentAgg` merge; one value
    /// is the state `(1, x, 0, 0, 0)`).
    fn merge(self, b: State) -> State {
        let a = self;
        if b.n == 0.0 {
            return a;
        }
        if a.n == 0.0 {
            return b;
        }
        let n = a.n + b.n;
        let delta = b.mean - a.mean;
        let delta_n = delta / n;
        let mean = a.mean + delta_n * b.n;
        let m2 = a.m2 + b.m2 + delta * delta_n * a.n * b.n;
        let m3 = a.m3 + b.m3 + delta_n * delta_n * delta * a.n * b.n * (a.n - b.n)
            - 3.0 * delta_n * a.m2 * b.n
            + 3.0 * delta_n * b.m2 * a.n;
        let m4 = a.m4
            + b.m4
            + delta_n * delta_n * delta_n * delta * a.n * b.n * (a.n * a.n - a.n * b.n + b.n * b.n)
            + 6.0 * delta_n * delta_n * (a.n * a.n * b.m2 + b.n * b.n * a.m2)
            + 4.0 * delta_n * (a.n * b.m3 - b.n * a.m3);
        State {
            n,
            mean,
            m2,
            m3,
            m4,
        }
    }
}

#[derive(Debug)]
struct Moments {
    moment: Moment,
    state: State,
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(values) = values.first() else {
            return exec_err!("a central moment takes one argument");
        };
        for x in values.as_primitive::<Float64Type>().iter().flatten() {
            self.state = self.state.merge(State {
                n: 1.0,
                mean: x,
                ..State::default()
            });
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let State { n, m2, m3, m4, .. } = self.state;
        let value = match self.moment {
            _ if n == 0.0 || m2 == 0.0 => None,
            Moment::Skewness => Some(n.sqrt() * m3 / (m2 * m2 * m2).sqrt()),
            Moment::Kurtosis => Some(n * m4 / (m2 * m2) - 3.0),
        };
        Ok(ScalarValue::Float64(value))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let State {
            n,
            mean,
            m2,
            m3,
            m4,
        } = self.state;
        Ok([n, mean, m2, m3, m4]
            .into_iter()
            .map(|v| ScalarValue::Float64(Some(v)))
            .collect())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [n, mean, m2, m3, m4] = states else {
            return exec_err!("a central moment's state has five fields");
        };
        let column = |a: &ArrayRef| a.as_primitive::<Float64Type>().clone();
        let (n, mean, m2, m3, m4) = (column(n), column(mean), column(m2), column(m3), column(m4));
        for i in 0..n.len() {
            if n.is_null(i) {
                continue;
            }
            self.state = self.state.merge(State {
                n: n.value(i),
                mean: mean.value(i),
                m2: m2.value(i),
                m3: m3.value(i),
                m4: m4.value(i),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Float64Array;

    /// Spark's `skewness`/`kurtosis` of a column, computed directly from the definition.
    fn direct(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let m = |k: i32| xs.iter().map(|x| (x - mean).powi(k)).sum::<f64>();
        (
            n.sqrt() * m(3) / m(2).powf(1.5),
            n * m(4) / (m(2) * m(2)) - 3.0,
        )
    }

    fn evaluate(moment: Moment, parts: &[&[f64]]) -> Option<f64> {
        // Each part accumulated apart, then merged, as partial aggregates are.
        let mut whole = Moments {
            moment,
            state: State::default(),
        };
        for part in parts {
            let mut acc = Moments {
                moment,
                state: State::default(),
            };
            let values: ArrayRef = Arc::new(Float64Array::from(part.to_vec()));
            acc.update_batch(&[values]).unwrap();
            let states: Vec<ArrayRef> = acc
                .state()
                .unwrap()
                .into_iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            whole.merge_batch(&states).unwrap();
        }
        match whole.evaluate().unwrap() {
            ScalarValue::Float64(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn moments_match_their_definition_in_any_split() {
        let xs = [1.0, 2.0, 2.0, 3.0, 7.0, 11.0, -4.0, 0.5];
        let (skew, kurt) = direct(&xs);
        for split in [
            &[&xs[..]][..],
            &[&xs[..3], &xs[3..]],
            &[&xs[..1], &[], &xs[1..5], &xs[5..]],
        ] {
            let s = evaluate(Moment::Skewness, split).unwrap();
            let k = evaluate(Moment::Kurtosis, split).unwrap();
            assert!((s - skew).abs() < 1e-12, "{s} vs {skew}");
            assert!((k - kurt).abs() < 1e-12, "{k} vs {kurt}");
        }
    }

    #[test]
    fn no_values_or_no_spread_is_null() {
        assert_eq!(evaluate(Moment::Skewness, &[&[]]), None);
        assert_eq!(evaluate(Moment::Kurtosis, &[&[4.0, 4.0], &[4.0]]), None);
        assert_eq!(evaluate(Moment::Skewness, &[&[4.0]]), None);
    }
}
