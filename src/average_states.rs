//! An MV's averages stored with their sum and count, as CarbonData stores an MV's `avg` and
//! ClickHouse its `avgState`. An average of averages is wrong, so an MV keeping only `avg(x)`
//! per hour could not answer `avg(x)` per day; with `sum(x)` and `count(x)` beside it, the
//! rollup rebuilds any coarser average (and answers `sum(x)` and `count(x)` too).
//!
//! The session appends these states to the MVs it materializes, after the MV's own columns and
//! named as DataFusion displays them (`sum(t.x)`, `count(t.x)`, `sum(CAST(t.id AS Float64))`),
//! unless the MV already outputs a column of that name. The standalone `Rewriter` does not: there the user stores the MV, with
//! exactly the columns of its definition.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result};
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, Filter, LogicalPlan, Projection, Sort, cast,
};

/// `plan` (a definition as planned from SQL, before type coercion) with the states of its
/// averages appended to its outputs. A plan that is not projections, HAVING filters and an
/// ORDER BY over one aggregate, has no plain `avg`, or cannot take the states (a name taken
/// below a renaming), is returned as it is: the states only let the MV answer more.
pub fn with_average_states(plan: LogicalPlan) -> LogicalPlan {
    let outputs: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    match append(&plan, &outputs) {
        Ok(Some((extended, _))) => extended,
        _ => plan,
    }
}

/// The columns holding the states in a plan's output, with the names a projection gives them.
type States = Vec<(Column, String)>;

/// `plan` with the states appended, and their columns; `None` when there is no state to add.
fn append(plan: &LogicalPlan, taken: &[String]) -> Result<Option<(LogicalPlan, States)>> {
    match plan {
        LogicalPlan::Aggregate(aggregate) => {
            let states = states(aggregate, taken)?;
            if states.is_empty() {
                return Ok(None);
            }
            let mut aggr_expr = aggregate.aggr_expr.clone();
            aggr_expr.extend(states.iter().cloned());
            let extended = Aggregate::try_new(
                aggregate.input.clone(),
                aggregate.group_expr.clone(),
                aggr_expr,
            )?;
            let n = extended.schema.fields().len();
            let columns = (n - states.len()..n)
                .zip(&states)
                .map(|(i, state)| {
                    let column = Column::from(extended.schema.qualified_field(i));
                    (column, state.to_string())
                })
                .collect();
            Ok(Some((LogicalPlan::Aggregate(extended), columns)))
        }
        LogicalPlan::Sort(sort) => {
            let Some((input, columns)) = append(&sort.input, taken)? else {
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
            let Some((input, columns)) = append(&filter.input, taken)? else {
                return Ok(None);
            };
            let extended = Filter::try_new(filter.predicate.clone(), input.into())?;
            Ok(Some((LogicalPlan::Filter(extended), columns)))
        }
        LogicalPlan::Projection(projection) => {
            let Some((input, columns)) = append(&projection.input, taken)? else {
                return Ok(None);
            };
            let mut expr = projection.expr.clone();
            expr.extend(
                columns
                    .iter()
                    .map(|(c, name)| Expr::Column(c.clone()).alias(name)),
            );
            let extended = Projection::try_new(expr, input.into())?;
            let columns = columns
                .into_iter()
                .map(|(_, name)| (Column::from_name(&name), name))
                .collect();
            Ok(Some((LogicalPlan::Projection(extended), columns)))
        }
        _ => Ok(None),
    }
}

/// `sum` and `count` of the argument of each plain `avg` of `aggregate`, except those already
/// computed or whose name an output has. The sum is one `avg` can be rebuilt from exactly
/// (`crate::rules::rollup`): of an integer of at most 32 bits (summed in 64 bits), a DECIMAL
/// or a DOUBLE as it is, of anything else as DOUBLEs, which `avg` sums (a BIGINT's own sum may
/// overflow).
fn states(aggregate: &Aggregate, taken: &[String]) -> Result<Vec<Expr>> {
    let schema = aggregate.input.schema();
    let mut out: Vec<Expr> = Vec::new();
    for a in &aggregate.aggr_expr {
        let Expr::AggregateFunction(f) = a else {
            continue;
        };
        let p = &f.params;
        let plain = !p.distinct && p.filter.is_none() && p.order_by.is_empty();
        let [x] = p.args.as_slice() else { continue };
        if f.func.name() != "avg" || !plain {
            continue;
        }
        let summed = match x.get_type(schema)? {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Decimal128(..)
            | DataType::Float64 => x.clone(),
            _ => cast(x.clone(), DataType::Float64),
        };
        for state in [sum(summed), count(x.clone())] {
            let name = state.to_string();
            let present = aggregate.aggr_expr.contains(&state) || out.contains(&state);
            if !present && !taken.contains(&name) {
                out.push(state);
            }
        }
    }
    Ok(out)
}
