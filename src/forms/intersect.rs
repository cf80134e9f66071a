//! A distinct INTERSECT with its sides swapped. `A INTERSECT B` is the set of rows both hold,
//! so `B INTERSECT A` has the same rows (by position: the columns are named as the other
//! side's), and an MV defined by one answers the other. DataFusion plans `A INTERSECT B` as
//! `DISTINCT A` semi-joined to `B` on every column, NULLs matching; the swap is `DISTINCT B`
//! semi-joined to `A`. `INTERSECT ALL` keeps the left side's duplicates and is not swapped.

use std::collections::HashSet;

use datafusion::common::{Column, NullEquality};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder};

/// `plan` as the distinct INTERSECT of its sides in the other order, if it is one.
pub fn swapped(plan: &LogicalPlan) -> Option<LogicalPlan> {
    let LogicalPlan::Join(join) = plan else {
        return None;
    };
    if join.join_type != JoinType::LeftSemi
        || join.null_equality != NullEquality::NullEqualsNull
        || join.filter.is_some()
    {
        return None;
    }
    let left = distinct_input(&join.left)?;
    let left_columns = join.left.schema().columns();
    let right_columns = join.right.schema().columns();
    if left_columns.len() != right_columns.len() || join.on.len() != left_columns.len() {
        return None;
    }
    // The keys pair each left column with the right column at its position: row equality.
    let pairs: HashSet<(Column, Column)> = join
        .on
        .iter()
        .map(|(l, r)| match (l, r) {
            (Expr::Column(l), Expr::Column(r)) => Some((l.clone(), r.clone())),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let positional: HashSet<(Column, Column)> = left_columns
        .iter()
        .cloned()
        .zip(right_columns.iter().cloned())
        .collect();
    if pairs != positional || positional.len() != left_columns.len() {
        return None;
    }
    let right = join.right.as_ref().clone();
    let right_distinct = match distinct_input(&right) {
        Some(_) => right,
        None => LogicalPlanBuilder::from(right)
            .aggregate(
                right_columns.iter().cloned().map(Expr::Column),
                Vec::<Expr>::new(),
            )
            .ok()?
            .build()
            .ok()?,
    };
    LogicalPlanBuilder::from(right_distinct)
        .join_detailed(
            left.clone(),
            JoinType::LeftSemi,
            (right_columns, left_columns),
            None,
            NullEquality::NullEqualsNull,
        )
        .ok()?
        .build()
        .ok()
}

/// The input of a DISTINCT as DataFusion's optimizer writes it: an aggregate grouping by every
/// column of its input, with no aggregates.
fn distinct_input(plan: &LogicalPlan) -> Option<&LogicalPlan> {
    let LogicalPlan::Aggregate(agg) = plan else {
        return None;
    };
    let columns: Vec<Expr> = agg
        .input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    (agg.aggr_expr.is_empty() && agg.group_expr == columns).then_some(agg.input.as_ref())
}
