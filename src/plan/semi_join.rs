//! Semi joins under a GROUP BY without aggregates, as the inner joins they came from.
//!
//! DataFusion's optimizer turns `SELECT d.k FROM d JOIN e ON .. GROUP BY d.k` into a left semi
//! join, since only `d`'s columns are used and the grouping removes duplicates. Under that
//! deduplication `d ⋉ e` and `π_d(d ⋈ e)` hold the same set of rows, so the region is read as
//! the inner join, which MVs over both tables can answer. Other aggregates would count the
//! duplicates, and are left alone.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder};

/// `plan` with every semi join that sits (through projections, filters and aliases) under an
/// aggregate without aggregate functions replaced by the projected inner join; `None` when
/// there is none.
pub fn semi_joins_as_inner(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    let semi = |node: &LogicalPlan| {
        Ok(matches!(node, LogicalPlan::Join(j)
            if matches!(j.join_type, JoinType::LeftSemi | JoinType::RightSemi)))
    };
    // Rebuilding a plan copies its expressions: not for plans without semi joins.
    if !plan.exists(semi)? {
        return Ok(None);
    }
    let rewritten = plan.clone().transform_down(|node| match node {
        LogicalPlan::Aggregate(mut agg) if agg.aggr_expr.is_empty() => {
            let input = under_dedup(agg.input.as_ref().clone())?;
            if !input.transformed {
                return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
            }
            agg.input = input.data.into();
            Ok(Transformed::yes(LogicalPlan::Aggregate(agg)))
        }
        other => Ok(Transformed::no(other)),
    })?;
    Ok(rewritten.transformed.then_some(rewritten.data))
}

/// Rewrites the semi joins reachable from an input whose duplicates do not matter.
fn under_dedup(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    match plan {
        LogicalPlan::Join(join)
            if matches!(join.join_type, JoinType::LeftSemi | JoinType::RightSemi)
                && join.null_equality == NullEquality::NullEqualsNothing
                && !join.null_aware =>
        {
            let kept = match join.join_type {
                JoinType::LeftSemi => join.left.schema().clone(),
                _ => join.right.schema().clone(),
            };
            let (left, right) = (join.left.as_ref().clone(), join.right.as_ref().clone());
            let (left_keys, right_keys): (Vec<Expr>, Vec<Expr>) = join.on.into_iter().unzip();
            let inner = LogicalPlanBuilder::from(left)
                .join_with_expr_keys(right, JoinType::Inner, (left_keys, right_keys), join.filter)?
                .project(
                    kept.iter()
                        .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name()))),
                )?
                .build()?;
            Ok(Transformed::yes(inner))
        }
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
            plan.map_children(under_dedup)
        }
        other => Ok(Transformed::no(other)),
    }
}
