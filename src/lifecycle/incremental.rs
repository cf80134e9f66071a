//! Incremental refresh for append-only changes (LanceDB/Geneva's "materialize only new rows").
//!
//! When one input of an MV only gained rows since its last refresh, the definition is run
//! with that input's scan reading the new rows alone:
//! - an MV computed row by row (filters, projections, inner joins with the input read once)
//!   gets the new rows' results appended: an inner join distributes over the union of old and
//!   new rows of one side;
//! - an aggregate MV whose aggregates merge (`sum`, `count`, `min`, `max`, and `avg` stored
//!   beside `sum` and `count` of the same argument, or of the integer it averages as the
//!   session stores them) gets the new rows' partial aggregates
//!   appended as a *fragment*. Its stored rows may then hold a group more than once, so the MV
//!   is read through a view that regroups them ([`Regroup`]); queries, rewritten or not, see
//!   one row per group.
//!
//! Anything else is recomputed in full, and the reason is reported.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, Result as DfResult};
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, JoinType, LogicalPlan, LogicalPlanBuilder, Projection,
    TableSource, cast,
};

/// How an MV takes appended rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Computed row by row: the new rows' results are appended.
    Rows,
    /// An aggregate of mergeable aggregates: partial aggregates are appended and regrouped.
    Aggregate(Regroup),
}

/// How each stored column of an aggregate MV merges over its fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regroup {
    columns: Vec<Merge>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Merge {
    Key,
    /// `sum` and `count`: summed.
    Sum,
    Min,
    Max,
    /// The stored `sum` and `count` columns of the same argument.
    Avg {
        sum: usize,
        count: usize,
    },
}

/// How `definition` (an MV's normalized plan) takes appended rows, or why it cannot.
pub fn shape(definition: &LogicalPlan) -> Result<Shape, String> {
    let Some((outputs, agg)) = stored_aggregate(definition)? else {
        return row_by_row(definition).map(|()| Shape::Rows);
    };
    regroupable(agg, &outputs)?;
    let columns = merges(agg, &outputs)?;
    Ok(Shape::Aggregate(Regroup { columns }))
}

/// The aggregate at the top of `definition` and the outputs of it the MV stores, if any.
fn stored_aggregate(definition: &LogicalPlan) -> Result<Option<(Vec<usize>, &Aggregate)>, String> {
    Ok(Some(match definition {
        LogicalPlan::Projection(p) => match p.input.as_ref() {
            LogicalPlan::Aggregate(agg) => {
                let positions = p
                    .expr
                    .iter()
                    .map(|e| match unaliased(e) {
                        Expr::Column(c) => agg.schema.index_of_column(&c).ok(),
                        _ => None,
                    })
                    .collect::<Option<Vec<usize>>>();
                match positions {
                    Some(positions) => (positions, agg),
                    None => return Err("it computes expressions over its aggregates".into()),
                }
            }
            _ => return Ok(None),
        },
        LogicalPlan::Aggregate(agg) => ((0..agg.schema.fields().len()).collect(), agg),
        _ => return Ok(None),
    }))
}

/// Whether fragments of `agg`, storing `outputs`, can be regrouped into one row per group.
fn regroupable(agg: &Aggregate, outputs: &[usize]) -> Result<(), String> {
    row_by_row(&agg.input)?;
    let keys = agg.group_expr.len();
    // Fragments regroup by the stored keys: a key the MV does not store would be merged away.
    if (0..keys).any(|k| !outputs.contains(&k)) {
        return Err(
            "it does not store every GROUP BY key, so its fragments could not be regrouped".into(),
        );
    }
    if agg
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Err("it uses GROUPING SETS".into());
    }
    Ok(())
}

/// How each stored output of `agg` merges over fragments, or why one does not.
fn merges(agg: &Aggregate, outputs: &[usize]) -> Result<Vec<Merge>, String> {
    let keys = agg.group_expr.len();
    // Arguments are compared as computed from what the projection below the aggregate reads,
    // if there is one: DataFusion computes common subexpressions there (`__common_expr_1`).
    let (below, schema) = match agg.input.as_ref() {
        LogicalPlan::Projection(p) => (Some(p), p.input.schema()),
        input => (None, input.schema()),
    };
    let function = |i: usize| -> Result<(String, Vec<Expr>), String> {
        match unaliased(&agg.aggr_expr[i - keys]) {
            Expr::AggregateFunction(f)
                if !f.params.distinct
                    && f.params.filter.is_none()
                    && f.params.order_by.is_empty() =>
            {
                let args = f.params.args.into_iter().map(|a| over(a, below));
                let args = args.collect::<DfResult<_>>().map_err(|e| e.to_string())?;
                Ok((f.func.name().to_ascii_lowercase(), args))
            }
            other => Err(format!("{other} does not merge")),
        }
    };
    let mut columns = Vec::with_capacity(outputs.len());
    for &i in outputs {
        if i < keys {
            columns.push(Merge::Key);
            continue;
        }
        let (name, args) = function(i)?;
        columns.push(match name.as_str() {
            "sum" | "count" => Merge::Sum,
            "min" => Merge::Min,
            "max" => Merge::Max,
            "avg" => {
                let stored = |wanted: &str| {
                    outputs.iter().position(|&j| {
                        j >= keys
                            && function(j).is_ok_and(|(n, a)| {
                                n == wanted && (a == args || integer_state(&args, &a, &n, schema))
                            })
                    })
                };
                avg_merge(agg, i, stored)?
            }
            other => return Err(format!("{other}() does not merge")),
        });
    }
    Ok(columns)
}

/// How `avg` output `i` merges: from its argument's `sum` and `count` that `stored` finds.
fn avg_merge(
    agg: &Aggregate,
    i: usize,
    stored: impl Fn(&str) -> Option<usize>,
) -> Result<Merge, String> {
    if matches!(
        agg.schema.field(i).data_type(),
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    ) {
        return Err("avg of a decimal does not merge exactly".into());
    }
    match (stored("sum"), stored("count")) {
        (Some(sum), Some(count)) => Ok(Merge::Avg { sum, count }),
        _ => Err(format!(
            "{} merges only with sum and count of its argument stored beside it",
            agg.schema.field(i).name()
        )),
    }
}

/// Whether `state`, the argument of a stored `sum` or `count`, sums or counts what
/// `avg(averaged)` averages, as the session stores an integer's average
/// ([`crate::catalog::average_states`]): `avg(CAST(i AS DOUBLE))` beside `count(i)` and, for an
/// integer of at most 32 bits, `sum(CAST(i AS BIGINT))` (exact).
fn integer_state(averaged: &[Expr], state: &[Expr], function: &str, schema: &DFSchema) -> bool {
    let ([Expr::Cast(to_double)], [state]) = (averaged, state) else {
        return false;
    };
    let i = to_double.expr.as_ref();
    // As `sum` widens: a signed integer to a BIGINT, an unsigned one to an unsigned BIGINT.
    let (wide, integer) = match i.get_type(schema) {
        Ok(DataType::Int8 | DataType::Int16 | DataType::Int32) => (Some(DataType::Int64), true),
        Ok(DataType::UInt8 | DataType::UInt16 | DataType::UInt32) => (Some(DataType::UInt64), true),
        Ok(DataType::Int64 | DataType::UInt64) => (None, true),
        _ => (None, false),
    };
    let widened = |e: &Expr| matches!(e, Expr::Cast(c) if c.expr.as_ref() == i && Some(c.field.data_type()) == wide.as_ref());
    integer
        && to_double.field.data_type() == &DataType::Float64
        && match function {
            "sum" => widened(state),
            // Every integer has a DOUBLE: the cast is NULL only where the integer is.
            "count" => state == i,
            _ => false,
        }
}

/// `e` with the columns `projection` computes replaced by what computes them, and without
/// aliases.
fn over(e: Expr, projection: Option<&Projection>) -> DfResult<Expr> {
    e.transform_up(|e| {
        Ok(match e {
            Expr::Alias(a) => Transformed::yes(*a.expr),
            Expr::Column(c) => match projection
                .and_then(|p| p.schema.index_of_column(&c).ok().map(|i| &p.expr[i]))
            {
                Some(computed) => Transformed::yes(unaliased(computed)),
                None => Transformed::no(Expr::Column(c)),
            },
            other => Transformed::no(other),
        })
    })
    .data()
}

/// `e` without its aliases (DataFusion may stack two: `count(*) AS n`).
fn unaliased(e: &Expr) -> Expr {
    let mut e = e.clone();
    while let Expr::Alias(a) = e {
        e = *a.expr;
    }
    e
}

/// Whether `plan` computes its rows one input row (combination) at a time.
fn row_by_row(plan: &LogicalPlan) -> Result<(), String> {
    let mut why = None;
    let _ = plan.apply_with_subqueries(|node| {
        why = match node {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_)
                if node.expressions().iter().any(Expr::contains_outer) =>
            {
                Some("it has a correlated subquery".into())
            }
            LogicalPlan::Subquery(_) => Some("it has a subquery".into()),
            LogicalPlan::TableScan(scan) if scan.fetch.is_some() => Some("it has a LIMIT".into()),
            LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::TableScan(_) => None,
            LogicalPlan::Join(j) if j.join_type == JoinType::Inner => None,
            LogicalPlan::Join(j) => Some(format!("it has a {} join", j.join_type)),
            LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) => Some(
                "it aggregates below its top (a DISTINCT aggregate or a grouped subquery), which does not merge"
                    .into(),
            ),
            LogicalPlan::Union(_) => Some("it has a UNION".into()),
            LogicalPlan::Window(_) => Some("it uses a window function".into()),
            LogicalPlan::Limit(_) | LogicalPlan::Sort(_) => {
                Some("it has an ORDER BY or LIMIT".into())
            }
            other => Some(format!("it has a {} node", other.display())),
        };
        Ok(if why.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    why.map_or(Ok(()), Err)
}

/// `definition` with its one scan of `table` reading `rows` instead (the filters pushed into
/// the scan kept above it).
pub fn over_new_rows(
    definition: &LogicalPlan,
    table: &str,
    rows: Arc<dyn TableSource>,
) -> Result<LogicalPlan, String> {
    let mut scans = 0;
    let _ = definition.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(s) = node
            && s.table_name.table() == table
        {
            scans += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if scans != 1 {
        return Err(format!("it reads {table} {scans} times"));
    }
    let replaced = definition.clone().transform_up(|node| match node {
        LogicalPlan::TableScan(s) if s.table_name.table() == table => {
            // Filters first: they may read columns the projection drops.
            let mut builder =
                LogicalPlanBuilder::scan(s.table_name.clone(), Arc::clone(&rows), None)?;
            if let Some(predicate) = conjunction(s.filters.clone()) {
                builder = builder.filter(predicate)?;
            }
            if let Some(projection) = &s.projection {
                let schema = rows.schema();
                let columns = projection.iter().map(|i| {
                    Expr::Column(Column::new(
                        Some(s.table_name.clone()),
                        schema.field(*i).name(),
                    ))
                });
                builder = builder.project(columns)?;
            }
            Ok(Transformed::yes(builder.build()?))
        }
        other => Ok(Transformed::no(other)),
    });
    replaced.map(|t| t.data).map_err(|e| e.to_string())
}

impl Regroup {
    /// The plan that reads `storage` (the stored fragments, with the MV's `schema`) as one row
    /// per group.
    pub fn plan(&self, storage: LogicalPlan, schema: &SchemaRef) -> DfResult<LogicalPlan> {
        let column = |i: usize| Expr::Column(Column::from_name(schema.field(i).name()));
        let keys: Vec<Expr> = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, m)| **m == Merge::Key)
            .map(|(i, _)| column(i))
            .collect();
        let mut aggregates = Vec::new();
        let mut outputs = Vec::with_capacity(self.columns.len());
        let aggregate = |e: Expr, aggregates: &mut Vec<Expr>| {
            let name = format!("__mvr_merged_{}", aggregates.len());
            aggregates.push(e.alias(&name));
            Expr::Column(Column::from_name(name))
        };
        for (i, m) in self.columns.iter().enumerate() {
            let field = schema.field(i);
            let merged = match m {
                Merge::Key => column(i),
                Merge::Sum => aggregate(sum(column(i)), &mut aggregates),
                Merge::Min => aggregate(min(column(i)), &mut aggregates),
                Merge::Max => aggregate(max(column(i)), &mut aggregates),
                Merge::Avg { sum: s, count: c } => {
                    let s = aggregate(sum(column(*s)), &mut aggregates);
                    let c = aggregate(sum(column(*c)), &mut aggregates);
                    cast(s, DataType::Float64) / cast(c, DataType::Float64)
                }
            };
            outputs.push(cast(merged, field.data_type().clone()).alias(field.name()));
        }
        LogicalPlanBuilder::from(storage)
            .aggregate(keys, aggregates)?
            .project(outputs)?
            .build()
    }
}
