//! An MV's averages stored with their sum and count, as CarbonData stores an MV's `avg` and
//! ClickHouse its `avgState`. An average of averages is wrong, so an MV keeping only `avg(x)`
//! per hour could not answer `avg(x)` per day; with `sum(x)` and `count(x)` beside it, the
//! rollup rebuilds any coarser average (and answers `sum(x)` and `count(x)` too).
//!
//! The session appends these states to the MVs it materializes, after the MV's own columns,
//! named as DataFusion displays them (`sum(t.x)`, `count(t.x)`, `sum(CAST(t.id AS Float64))`);
//! a state the MV already outputs is not repeated. The standalone `Rewriter` adds none: there
//! the user stores the MV, with exactly the columns of its definition.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result};
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, Filter, LogicalPlan, Projection, Sort, cast,
};

use crate::rules::rollup::rebuilt_average;

/// `plan` (a definition as planned, before type coercion) with the states of its averages
/// appended to its outputs. A plan that is not projections, HAVING filters and an ORDER BY
/// over one aggregate, has no plain `avg` the rollup can rebuild, or cannot take the states
/// (an output already has a state's name), is returned as it is: the states only let the MV
/// answer more.
pub(crate) fn with_average_states(plan: LogicalPlan) -> LogicalPlan {
    match append(&plan) {
        Ok(Some((extended, _))) => extended,
        _ => plan,
    }
}

/// The columns holding the states in a plan's output, with the names a projection gives them.
type States = Vec<(Column, String)>;

/// `plan` with the states appended, and their columns; `None` when there is no state to add.
fn append(plan: &LogicalPlan) -> Result<Option<(LogicalPlan, States)>> {
    match plan {
        LogicalPlan::Aggregate(aggregate) => {
            let states = states(aggregate)?;
            if states.is_empty() {
                return Ok(None);
            }
            let mut aggr_expr = aggregate.aggr_expr.clone();
            for state in &states {
                if !aggr_expr.iter().any(|a| &unaliased(a) == state) {
                    aggr_expr.push(state.clone());
                }
            }
            let extended = Aggregate::try_new(
                aggregate.input.clone(),
                aggregate.group_expr.clone(),
                aggr_expr,
            )?;
            // The aggregates come last in its schema, in order.
            let first = extended.schema.fields().len() - extended.aggr_expr.len();
            let columns = states
                .iter()
                .filter_map(|state| {
                    let at = extended
                        .aggr_expr
                        .iter()
                        .position(|a| &unaliased(a) == state)?;
                    let column = Column::from(extended.schema.qualified_field(first + at));
                    Some((column, state.to_string()))
                })
                .collect();
            Ok(Some((LogicalPlan::Aggregate(extended), columns)))
        }
        LogicalPlan::Sort(sort) => {
            let Some((input, columns)) = append(&sort.input)? else {
                return Ok(None);
            };
            let extended = Sort {
                expr: sort.expr.clone(),
                input: input.into(),
                fetch: sort.fetch,
            };
            Ok(Some((LogicalPlan::Sort(extended), columns)))
        }
        LogicalPlan::Filter(filter) => {
            let Some((input, columns)) = append(&filter.input)? else {
                return Ok(None);
            };
            let extended = Filter::try_new(filter.predicate.clone(), input.into())?;
            Ok(Some((LogicalPlan::Filter(extended), columns)))
        }
        LogicalPlan::Projection(projection) => {
            let Some((input, columns)) = append(&projection.input)? else {
                return Ok(None);
            };
            let mut expr = projection.expr.clone();
            let mut out = Vec::with_capacity(columns.len());
            for (column, name) in columns {
                // Output already (`sum(x) AS s`): read there, not repeated.
                let output = projection
                    .expr
                    .iter()
                    .position(|e| matches!(unaliased(e), Expr::Column(c) if c == column));
                match output {
                    Some(i) => {
                        let (_, field) = projection.schema.qualified_field(i);
                        out.push((Column::from_name(field.name()), name));
                    }
                    None => {
                        expr.push(Expr::Column(column).alias(&name));
                        out.push((Column::from_name(&name), name));
                    }
                }
            }
            let extended = Projection::try_new(expr, input.into())?;
            Ok(Some((LogicalPlan::Projection(extended), out)))
        }
        _ => Ok(None),
    }
}

/// `sum` and `count` of what each plain `avg` of `aggregate` averages, in the forms the
/// rollup rebuilds it from exactly (`crate::rules::rollup`): of an integer of at most 32 bits,
/// summed in 64 bits, its own sum and count; of a BIGINT, the sum of its DOUBLEs (its own sum
/// may overflow) and its count; of a DOUBLE or a DECIMAL `avg` rebuilds, its own; of another
/// float, those of its DOUBLEs, as `avg` casts it. Nothing for other averages (of durations,
/// or of DECIMALs whose sums `avg` keeps in 256 bits), which could not be rebuilt.
fn states(aggregate: &Aggregate) -> Result<Vec<Expr>> {
    let schema = aggregate.input.schema();
    let mut out: Vec<Expr> = Vec::new();
    for a in &aggregate.aggr_expr {
        let Expr::AggregateFunction(f) = unaliased(a) else {
            continue;
        };
        let p = &f.params;
        let plain = !p.distinct && p.filter.is_none() && p.order_by.is_empty();
        let [x] = p.args.as_slice() else { continue };
        if f.func.name() != "avg" || !plain {
            continue;
        }
        let double = || cast(x.clone(), DataType::Float64);
        let (summed, counted) = match x.get_type(schema)? {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Float64 => (x.clone(), x.clone()),
            DataType::Int64 | DataType::UInt64 => (double(), x.clone()),
            DataType::Float16 | DataType::Float32 => (double(), double()),
            t @ DataType::Decimal128(p, s) => {
                let averaged = DataType::Decimal128((p + 4).min(38), (s + 4).min(38));
                if !rebuilt_average(Some(&t), &averaged) {
                    continue;
                }
                (x.clone(), x.clone())
            }
            _ => continue,
        };
        for state in [sum(summed), count(counted)] {
            if !out.contains(&state) {
                out.push(state);
            }
        }
    }
    Ok(out)
}

/// `e` without its aliases (a DataFrame's `avg(col("x")).alias("m")` is aliased in the
/// aggregate itself).
fn unaliased(e: &Expr) -> Expr {
    let mut e = e.clone();
    while let Expr::Alias(a) = e {
        e = *a.expr;
    }
    e
}
