//! An aggregate computed as a final aggregate over partial ones: a plain aggregate by its keys
//! (and the arguments of its DISTINCT aggregates) computing partial results, which the final
//! aggregate merges as the rollup table says (`sum` of counts, `min` of minimums, averages from
//! sums and counts). Calcite answers the same two questions this way:
//!
//! - a GROUPING SETS, ROLLUP or CUBE aggregate over a plain aggregate by every key it names
//!   (src/engine/walk.rs): the plain aggregate is a region an MV may answer, and each grouping set
//!   groups its rows, which partition the input by a superset of the set's keys, so each group
//!   merges the same input rows whole. Only the empty key list differs (an aggregate without
//!   GROUP BY has a row even over no input), so it is not split;
//! - a plain aggregate over input rows taken in disjoint parts (src/forms/parts.rs): each part's
//!   partial aggregate, the final one over all their rows.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchemaRef, ScalarValue};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, AggregateUDF, Cast, Expr, ExprSchemable, GroupingSet, LogicalPlan, Projection,
};

use crate::rules::rollup::{RollupTable, aggregate_udf, average, rebuilt_average};

/// An aggregate taken apart: the plain aggregate of partial results below, and how the
/// original aggregate is computed over whatever answers it.
#[derive(Debug)]
pub struct Reaggregation {
    /// The plain aggregate: the original keys, then the arguments of DISTINCT aggregates,
    /// grouped; the partial aggregates.
    pub inner: LogicalPlan,
    /// The original grouping sets, if any; their keys are the first fields of `inner`.
    grouping: Option<GroupingSet>,
    keys: Vec<Expr>,
    /// The aggregates the grouping sets compute, over `inner`'s fields by position.
    finals: Vec<Final>,
    /// The original aggregate's schema, which the rebuilt plan must have.
    schema: DFSchemaRef,
}

/// How one of the query's aggregates is computed over the plain aggregate's rows.
#[derive(Debug)]
enum Final {
    /// `via(partial)`; 0 rather than NULL over no rows when `zero_on_empty` (a count).
    Reaggregate {
        via: Arc<AggregateUDF>,
        partial: usize,
        zero_on_empty: bool,
    },
    /// An average: the sum of partial sums over the sum of partial counts.
    Average { sum: usize, count: usize },
    /// `f(DISTINCT args)`, its arguments read from keys of the plain aggregate.
    Distinct {
        func: Arc<AggregateUDF>,
        args: Vec<usize>,
    },
}

/// `plan` split, if it is an aggregate by grouping sets; `Err` says why one cannot be.
pub fn split_grouping_sets(
    plan: &LogicalPlan,
    table: &RollupTable,
) -> Option<Result<Reaggregation, String>> {
    let LogicalPlan::Aggregate(agg) = plan else {
        return None;
    };
    let [Expr::GroupingSet(grouping)] = agg.group_expr.as_slice() else {
        return None;
    };
    let keys: Vec<Expr> = grouping.distinct_expr().into_iter().cloned().collect();
    if keys.is_empty() {
        return Some(Err("its only grouping set is empty".into()));
    }
    Some(split_aggregate(agg, Some(grouping), keys, table))
}

/// A plain aggregate split; `Err` says why it cannot be.
pub fn split(agg: &Aggregate, table: &RollupTable) -> Result<Reaggregation, String> {
    if agg
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Err("it groups by grouping sets".into());
    }
    split_aggregate(agg, None, agg.group_expr.clone(), table)
}

fn split_aggregate(
    agg: &Aggregate,
    grouping: Option<&GroupingSet>,
    keys: Vec<Expr>,
    table: &RollupTable,
) -> Result<Reaggregation, String> {
    let mut inner_keys = keys.clone();
    let mut partials: Vec<Expr> = Vec::new();
    let mut finals = Vec::new();
    for expr in &agg.aggr_expr {
        finals.push(final_of(agg, expr, table, &mut inner_keys, &mut partials)?);
    }
    // Partial aggregates follow the keys: shift them past the DISTINCT arguments added.
    shift_partials(&mut finals, inner_keys.len());
    let inner = Aggregate::try_new(Arc::clone(&agg.input), inner_keys, partials)
        .map_err(|e| format!("its keys cannot be grouped alone: {e}"))?;
    Ok(Reaggregation {
        inner: LogicalPlan::Aggregate(inner),
        grouping: grouping.cloned(),
        keys,
        finals,
        schema: Arc::clone(&agg.schema),
    })
}

/// Splits one aggregate: its final, adding what it reads to the inner keys or the partials.
fn final_of(
    agg: &Aggregate,
    expr: &Expr,
    table: &RollupTable,
    inner_keys: &mut Vec<Expr>,
    partials: &mut Vec<Expr>,
) -> Result<Final, String> {
    let f = match expr {
        Expr::Alias(a) => &*a.expr,
        e => e,
    };
    let Expr::AggregateFunction(f) = f else {
        return Err(format!("{expr} is not an aggregate function"));
    };
    let name = f.func.name();
    if f.params.filter.is_some() || !f.params.order_by.is_empty() {
        return Err(format!("{name}() has a FILTER or an ORDER BY"));
    }
    if f.params.distinct {
        // A literal argument (`string_agg(DISTINCT x, ',')`'s delimiter) must stay one.
        if f.params.args.iter().any(|a| matches!(a, Expr::Literal(..))) {
            return Err(format!("{name}(DISTINCT ..) has a literal argument"));
        }
        let args = f
            .params
            .args
            .iter()
            .map(|a| position_or_push(inner_keys, a))
            .collect();
        return Ok(Final::Distinct {
            func: Arc::clone(&f.func),
            args,
        });
    }
    rolled_up(agg, expr, f, table, partials)
}

/// A plain aggregate's final, computed from the partial aggregates its rollup rule names.
fn rolled_up(
    agg: &Aggregate,
    expr: &Expr,
    f: &AggregateFunction,
    table: &RollupTable,
    partials: &mut Vec<Expr>,
) -> Result<Final, String> {
    let name = f.func.name();
    let rule = table
        .rules
        .get(name)
        .ok_or_else(|| format!("{name}() is not computed from partial aggregates"))?;
    let mut partial_of = |from: &str, args: Vec<Expr>| {
        let udf = aggregate_udf(from).ok_or_else(|| format!("no aggregate {from}"))?;
        let call = Expr::AggregateFunction(AggregateFunction::new_udf(
            udf,
            args,
            false,
            None,
            vec![],
            None,
        ));
        Ok::<_, String>(position_or_push(partials, &call))
    };
    let mut partial = |from: &str| partial_of(from, f.params.args.clone());
    // An average as exactly as the rollup rebuilds one (a DOUBLE, or a DECIMAL's).
    let rebuilt = || {
        let schema = agg.input.schema();
        match (f.params.args.as_slice(), expr.get_type(schema)) {
            ([arg], Ok(result)) => rebuilt_average(arg.get_type(schema).ok().as_ref(), &result),
            _ => false,
        }
    };
    Ok(match (rule.from.as_slice(), rule.via.as_str()) {
        ([sum, count], "divide") if rebuilt() => {
            match integer_averaged(f.params.args.as_slice(), agg.input.schema()) {
                Some((widened, integer)) => Final::Average {
                    sum: partial_of(sum, vec![widened])?,
                    count: partial_of(count, vec![integer])?,
                },
                None => Final::Average {
                    sum: partial(sum)?,
                    count: partial(count)?,
                },
            }
        }
        (_, "divide") => {
            return Err(format!("{name}() of this type is not rebuilt exactly"));
        }
        ([from], via) => Final::Reaggregate {
            via: aggregate_udf(via).ok_or_else(|| format!("no aggregate {via}"))?,
            partial: partial(from)?,
            zero_on_empty: rule.zero_on_empty,
        },
        _ => return Err(format!("{name}() has no rollup rule this form takes")),
    })
}

/// For the average of an integer `i` of at most 32 bits, which DataFusion writes
/// `avg(CAST(i AS DOUBLE))`: `i` widened to 64 bits as `sum` takes it, and `i`. Their partial
/// `sum` and `count` are what an MV's plain aggregates keep (`sum(i)`, `count(i)`). The sum of
/// such integers is exact in 64 bits, and the DOUBLE of it is the sum of their DOUBLEs to the
/// last bit while below 2^53 (as the rollup rebuilds averages, src/rules/rollup.rs); a 64-bit
/// integer's sum may overflow where its DOUBLEs' does not, so it keeps the DOUBLE sums.
fn integer_averaged(args: &[Expr], schema: &DFSchemaRef) -> Option<(Expr, Expr)> {
    let [Expr::Cast(Cast { expr, field })] = args else {
        return None;
    };
    if field.data_type() != &DataType::Float64 {
        return None;
    }
    let wide = match expr.get_type(schema.as_ref()).ok()? {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int64,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => DataType::UInt64,
        _ => return None,
    };
    let widened = Expr::Cast(Cast::new(expr.clone(), wide));
    Some((widened, expr.as_ref().clone()))
}

/// Partials were numbered before the DISTINCT arguments joined the keys: renumbered here.
fn shift_partials(finals: &mut [Final], shift: usize) {
    for f in finals {
        match f {
            Final::Reaggregate { partial, .. } => *partial += shift,
            Final::Average { sum, count } => (*sum, *count) = (*sum + shift, *count + shift),
            Final::Distinct { .. } => {}
        }
    }
}

/// The position of `expr` in `exprs`, added at the end if absent.
fn position_or_push(exprs: &mut Vec<Expr>, expr: &Expr) -> usize {
    exprs.iter().position(|e| e == expr).unwrap_or_else(|| {
        exprs.push(expr.clone());
        exprs.len() - 1
    })
}

impl Reaggregation {
    /// The original aggregate computed over `answered`, a plan with the plain aggregate's
    /// fields (in order), with the original aggregate's schema; `None` if it cannot be built.
    pub fn over(&self, answered: LogicalPlan) -> Option<LogicalPlan> {
        let input = Arc::new(answered);
        let group_expr = self.group_expr(&input)?;
        let (aggregates, outputs) = self.final_aggregates(&input)?;
        let aggregate = Arc::new(LogicalPlan::Aggregate(
            Aggregate::try_new(input, group_expr, aggregates).ok()?,
        ));
        self.projected(aggregate, outputs)
    }

    /// The final aggregate groups as the original does, by `input`'s key columns.
    fn group_expr(&self, input: &LogicalPlan) -> Option<Vec<Expr>> {
        let key_columns: Vec<Expr> = (0..self.keys.len())
            .map(|i| field(input, i))
            .collect::<Option<_>>()?;
        let as_column = |e: &Expr| {
            let i = self.keys.iter().position(|k| k == e)?;
            Some(key_columns[i].clone())
        };
        Some(match &self.grouping {
            None => key_columns,
            Some(GroupingSet::Rollup(es)) => vec![Expr::GroupingSet(GroupingSet::Rollup(
                es.iter().map(as_column).collect::<Option<_>>()?,
            ))],
            Some(GroupingSet::Cube(es)) => vec![Expr::GroupingSet(GroupingSet::Cube(
                es.iter().map(as_column).collect::<Option<_>>()?,
            ))],
            Some(GroupingSet::GroupingSets(sets)) => {
                vec![Expr::GroupingSet(GroupingSet::GroupingSets(
                    sets.iter()
                        .map(|s| s.iter().map(as_column).collect::<Option<_>>())
                        .collect::<Option<_>>()?,
                ))]
            }
        })
    }

    /// The final aggregates over `input`, and the [`Output`] each original aggregate reads.
    fn final_aggregates(&self, input: &LogicalPlan) -> Option<(Vec<Expr>, Vec<Output>)> {
        // Each final aggregate, deduplicated (an average and a sum share the sum of sums).
        let mut aggregates: Vec<Expr> = Vec::new();
        let mut call = |func: Arc<AggregateUDF>, args: Vec<Expr>, distinct: bool| {
            let e = Expr::AggregateFunction(AggregateFunction::new_udf(
                func,
                args,
                distinct,
                None,
                vec![],
                None,
            ));
            position_or_push(&mut aggregates, &e)
        };
        let sum = aggregate_udf("sum")?;
        let mut outputs = Vec::new();
        for f in &self.finals {
            outputs.push(match f {
                Final::Reaggregate {
                    via,
                    partial,
                    zero_on_empty,
                } => (
                    call(Arc::clone(via), vec![field(input, *partial)?], false),
                    None,
                    *zero_on_empty,
                ),
                Final::Average { sum: s, count: c } => {
                    let s = call(Arc::clone(&sum), vec![field(input, *s)?], false);
                    (
                        s,
                        Some(call(Arc::clone(&sum), vec![field(input, *c)?], false)),
                        false,
                    )
                }
                Final::Distinct { func, args } => {
                    let args = args
                        .iter()
                        .map(|i| field(input, *i))
                        .collect::<Option<_>>()?;
                    (call(Arc::clone(func), args, true), None, false)
                }
            });
        }
        Some((aggregates, outputs))
    }

    /// The final aggregate's outputs, named and typed as the original aggregate's.
    fn projected(&self, aggregate: Arc<LogicalPlan>, outputs: Vec<Output>) -> Option<LogicalPlan> {
        let out = aggregate.schema();
        let column = |i: usize| Expr::Column(Column::from(out.qualified_field(i)));
        // The keys, then grouping sets' `__grouping_id`.
        let group_fields = self.keys.len() + usize::from(self.grouping.is_some());
        let mut exprs: Vec<Expr> = (0..group_fields).map(column).collect();
        for (j, (value, count, zero_on_empty)) in outputs.into_iter().enumerate() {
            let result = self.schema.field(group_fields + j).data_type();
            let value = column(group_fields + value);
            let mut e = match count {
                Some(c) => average(value, column(group_fields + c), result),
                None => value,
            };
            if zero_on_empty {
                let zero = ScalarValue::new_zero(result).ok()?;
                e = datafusion::functions::expr_fn::coalesce(vec![e, Expr::Literal(zero, None)]);
            }
            if e.get_type(out.as_ref()).ok()? != *result {
                e = Expr::Cast(Cast::new(Box::new(e), result.clone()));
            }
            exprs.push(e);
        }
        let exprs = exprs
            .into_iter()
            .zip(self.schema.iter())
            .map(|(e, (qualifier, f))| e.alias_qualified(qualifier.cloned(), f.name()))
            .collect();
        let projection = Projection::try_new(exprs, aggregate).ok()?;
        projection
            .schema
            .logically_equivalent_names_and_types(&self.schema)
            .then_some(LogicalPlan::Projection(projection))
    }
}

/// An original aggregate over the final ones: the position of its value (an average's sum),
/// of an average's count, and whether it is 0 rather than NULL over no rows.
type Output = (usize, Option<usize>, bool);

/// Field `i` of `input`, if it has one: the final aggregate reads the answer by position.
fn field(input: &LogicalPlan, i: usize) -> Option<Expr> {
    (i < input.schema().fields().len())
        .then(|| Expr::Column(Column::from(input.schema().qualified_field(i))))
}
