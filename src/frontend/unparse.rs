//! A plan as SQL text, through DataFusion's unparser, around its gaps for the plans mvrewrite
//! writes. Each is rewritten first into a plan of the same rows the unparser writes right:
//! - an aggregate with no projection above it in its SELECT (a union's branch, as answering in
//!   parts builds them) is written with its aggregates before its group keys, the reverse of
//!   the plan's column order, so a UNION ALL would pair the wrong columns: it gets a projection
//!   of its own columns;
//! - a timestamp literal with a time zone is written as a cast to a timestamp without one,
//!   which DataFusion reads in the column's zone (hours off): it is written as the RFC 3339
//!   string `arrow_cast` to the zoned type;
//! - a NaN or infinite float is written bare (`NaN`, read as a column name): it is written as
//!   a string cast to the float type;
//! - a sort key naming a projection's output by the relation it is aliased into is written
//!   as a column of no table: it is written by the output's name;
//! - a projection below the root naming all its columns after one relation (an MV answering
//!   a derived table `t`) loses that name: it becomes the derived table's alias;
//! - a filtered table under an alias is written with the table's name, which the alias hides,
//!   and a filtered table joined by other than an inner join has its filter folded into the
//!   ON clause (or the NOT EXISTS), where on a preserved side it no longer drops rows: such a
//!   table becomes a derived table of its own;
//! - an alias of an alias is written with the inner one: only the outer one is kept;
//! - join keys that match NULLs (INTERSECT, EXCEPT) are written with `=`, which does not: they
//!   are written as `IS NOT DISTINCT FROM` conditions.
//!
//! What still cannot be written (NOT IN, which the unparser writes as NOT EXISTS, grouping-set
//! ids, a projection naming its columns after several relations, output names a SELECT
//! repeats) is an error, or SQL that does not plan:
//! [`checked_sql`] gives only text that plans.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::temporal_conversions::{
    timestamp_ms_to_datetime, timestamp_ns_to_datetime, timestamp_s_to_datetime,
    timestamp_us_to_datetime,
};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, Result, ScalarValue, TableReference, not_impl_err};
use datafusion::execution::SessionState;
use datafusion::logical_expr::expr::Alias;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Join, JoinType, LogicalPlan, Operator, Projection, SubqueryAlias,
    cast as cast_expr, lit,
};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::{DefaultDialect, Dialect};

/// `plan` as SQL text DataFusion plans again over `state`'s tables (down to a physical plan,
/// where the last unresolved column shows), or `None`.
pub async fn checked_sql(plan: &LogicalPlan, state: &SessionState) -> Option<String> {
    let text = plan_sql(plan, &DefaultDialect {}).ok()?.to_string();
    let planned = state.create_logical_plan(&text).await.ok()?;
    let optimized = state.optimize(&planned).ok()?;
    state.create_physical_plan(&optimized).await.ok()?;
    Some(text)
}

/// `plan` as a SQL statement in `dialect`.
pub fn plan_sql(plan: &LogicalPlan, dialect: &dyn Dialect) -> Result<Statement> {
    // A NOT IN join is empty when the subquery has a NULL; the unparser writes it as NOT
    // EXISTS, which is not.
    if plan.exists(|n| Ok(matches!(n, LogicalPlan::Join(j) if j.null_aware)))? {
        return not_impl_err!("NOT IN is written as NOT EXISTS, which a NULL does not empty");
    }
    let plan = projected_aggregates(plan.clone(), false)?.data;
    let plan = plan
        .transform_up(|node| node.map_expressions(|e| e.transform_up(literal_written_right)))?
        .data;
    let plan = plan.transform_up(sort_by_output_names)?.data;
    let plan = plan.transform_up(outer_alias_only)?.data;
    let plan = plan.transform_up(null_equal_keys_as_conditions)?.data;
    let plan = plan.transform_up(filtered_scans_derived)?.data;
    // The root's qualifiers name nothing above it: only its inputs' are kept as aliases.
    let plan = plan
        .map_children(|input| input.transform_up(aliased_projection))?
        .data;
    Unparser::new(dialect).plan_to_sql(&plan)
}

/// `plan` with a projection of its columns over each aggregate the unparser would write
/// unprojected. `projected`: a projection above `plan` in the same SELECT (only a filter,
/// which becomes HAVING, a sort, a limit or a window between them).
fn projected_aggregates(plan: LogicalPlan, projected: bool) -> Result<Transformed<LogicalPlan>> {
    let keeps_select = matches!(
        plan,
        LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Window(_)
    );
    let below = matches!(plan, LogicalPlan::Projection(_)) || (keeps_select && projected);
    let plan = plan.map_children(|input| projected_aggregates(input, below))?;
    if projected || !matches!(plan.data, LogicalPlan::Aggregate(_)) {
        return Ok(plan);
    }
    let columns = plan.data.schema().columns().into_iter().map(Expr::Column);
    let projection = Projection::try_new(columns.collect(), Arc::new(plan.data))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// A zoned timestamp or a non-finite float literal as an expression the unparser writes
/// with its value.
fn literal_written_right(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::Literal(value, _) = &e else {
        return Ok(Transformed::no(e));
    };
    let data_type = value.data_type();
    match (value, &data_type) {
        (ScalarValue::Float64(Some(f)), _) if !f.is_finite() => {
            Ok(Transformed::yes(cast_expr(lit(f.to_string()), data_type)))
        }
        (ScalarValue::Float32(Some(f)), _) if !f.is_finite() => {
            Ok(Transformed::yes(cast_expr(lit(f.to_string()), data_type)))
        }
        (_, DataType::Timestamp(_, Some(_))) => {
            // The instant in UTC, from the literal's own unit, cast back to the zoned type.
            let instant = match value {
                ScalarValue::TimestampSecond(Some(v), _) => timestamp_s_to_datetime(*v),
                ScalarValue::TimestampMillisecond(Some(v), _) => timestamp_ms_to_datetime(*v),
                ScalarValue::TimestampMicrosecond(Some(v), _) => timestamp_us_to_datetime(*v),
                ScalarValue::TimestampNanosecond(Some(v), _) => timestamp_ns_to_datetime(*v),
                _ => None,
            };
            let Some(instant) = instant else {
                return Ok(Transformed::no(e));
            };
            let text = format!("{}T{}+00:00", instant.date(), instant.time());
            let target = lit(data_type.to_string());
            Ok(Transformed::yes(
                datafusion::functions::expr_fn::arrow_cast(lit(text), target),
            ))
        }
        _ => Ok(Transformed::no(e)),
    }
}

/// A sort over a projection, by the projection's output names: the unparser looks a sort key
/// up among the projection's expressions, not its output columns, so a key naming an output
/// column by the relation it is aliased into would be written as a column of no table.
fn sort_by_output_names(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Sort(sort) = &plan else {
        return Ok(Transformed::no(plan));
    };
    let LogicalPlan::Projection(projection) = sort.input.as_ref() else {
        return Ok(Transformed::no(plan));
    };
    let outputs = projection.schema.columns();
    plan.map_expressions(|e| {
        e.transform(|e| match e {
            Expr::Column(c) if c.relation.is_some() && outputs.contains(&c) => Ok(
                Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
            ),
            other => Ok(Transformed::no(other)),
        })
    })
}

/// A join whose keys match NULLs (INTERSECT, EXCEPT, `IS NOT DISTINCT FROM` conditions), with
/// its keys as `IS NOT DISTINCT FROM` conditions: the unparser writes every key with `=`.
fn null_equal_keys_as_conditions(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Join(join) = &plan else {
        return Ok(Transformed::no(plan));
    };
    if join.null_equality != NullEquality::NullEqualsNull || join.on.is_empty() {
        return Ok(Transformed::no(plan));
    }
    let keys = join.on.iter().map(|(l, r)| {
        Expr::BinaryExpr(BinaryExpr::new(
            Box::new(l.clone()),
            Operator::IsNotDistinctFrom,
            Box::new(r.clone()),
        ))
    });
    let filter = keys.chain(join.filter.clone()).reduce(Expr::and);
    let rewritten = Join::try_new(
        Arc::clone(&join.left),
        Arc::clone(&join.right),
        vec![],
        filter,
        join.join_type,
        join.join_constraint,
        NullEquality::NullEqualsNothing,
        false,
    )?;
    Ok(Transformed::yes(LogicalPlan::Join(rewritten)))
}

/// An alias of an alias as the outer one alone (nothing reads the inner name): the unparser
/// writes the inner one, and the columns named by the outer one no longer resolve (a
/// decorrelated `EXISTS (SELECT .. FROM visits v ..)`).
fn outer_alias_only(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    match plan {
        LogicalPlan::SubqueryAlias(outer) => match outer.input.as_ref() {
            LogicalPlan::SubqueryAlias(inner) => {
                let alias = SubqueryAlias::try_new(Arc::clone(&inner.input), outer.alias)?;
                Ok(Transformed::yes(LogicalPlan::SubqueryAlias(alias)))
            }
            _ => Ok(Transformed::no(LogicalPlan::SubqueryAlias(outer))),
        },
        other => Ok(Transformed::no(other)),
    }
}

/// A filtered table read through an alias, or as an input of a join other than an inner
/// one, as a derived table of its own (under the alias, else the table's name). The unparser
/// writes such a filter with the table's name, which the alias hides, and folds it into an
/// outer join's ON clause, where on the preserved side it no longer drops rows (an anti join's
/// NOT EXISTS then keeps them); a derived table keeps it where it applies.
fn filtered_scans_derived(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let derived = |input: Arc<LogicalPlan>, alias: TableReference| -> Result<LogicalPlan> {
        let columns = input.schema().columns().into_iter().map(Expr::Column);
        let projection = Projection::try_new(columns.collect(), input)?;
        let aliased = SubqueryAlias::try_new(Arc::new(LogicalPlan::Projection(projection)), alias)?;
        Ok(LogicalPlan::SubqueryAlias(aliased))
    };
    match plan {
        LogicalPlan::SubqueryAlias(a) if filtered_scan(&a.input).is_some() => {
            Ok(Transformed::yes(derived(a.input, a.alias)?))
        }
        LogicalPlan::Join(mut join) if join.join_type != JoinType::Inner => {
            let mut changed = false;
            for input in [&mut join.left, &mut join.right] {
                if let Some(table) = filtered_scan(input) {
                    *input = Arc::new(derived(Arc::clone(input), table)?);
                    changed = true;
                }
            }
            let plan = LogicalPlan::Join(join);
            Ok(if changed {
                Transformed::yes(plan)
            } else {
                Transformed::no(plan)
            })
        }
        other => Ok(Transformed::no(other)),
    }
}

/// The table `plan` reads if it is filters over a table scan, at least one filter in all
/// (pushed into the scan or not).
fn filtered_scan(plan: &LogicalPlan) -> Option<TableReference> {
    let mut filtered = false;
    let mut plan = plan;
    loop {
        match plan {
            LogicalPlan::Filter(filter) => {
                filtered = true;
                plan = &filter.input;
            }
            LogicalPlan::TableScan(scan) => {
                return (filtered || !scan.filters.is_empty()).then(|| scan.table_name.clone());
            }
            _ => return None,
        }
    }
}

/// A projection whose columns are all aliased into one other relation, as that relation: a
/// derived table over the projection's columns unqualified.
fn aliased_projection(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Projection(projection) = &plan else {
        return Ok(Transformed::no(plan));
    };
    let mut relations = projection.expr.iter().map(|e| match e {
        Expr::Alias(Alias {
            relation: Some(r), ..
        }) => Some(r.clone()),
        _ => None,
    });
    let Some(Some(relation)) = relations.next() else {
        return Ok(Transformed::no(plan));
    };
    if !relations.all(|r| r.as_ref() == Some(&relation)) {
        return Ok(Transformed::no(plan));
    }
    let unqualified = projection
        .expr
        .iter()
        .map(|e| match e {
            Expr::Alias(a) => a.expr.as_ref().clone().alias(a.name.clone()),
            other => other.clone(),
        })
        .collect();
    let inner = Projection::try_new(unqualified, Arc::clone(&projection.input))?;
    let alias: TableReference = relation;
    let aliased = SubqueryAlias::try_new(Arc::new(LogicalPlan::Projection(inner)), alias)?;
    Ok(Transformed::yes(LogicalPlan::SubqueryAlias(aliased)))
}
