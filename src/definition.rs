//! Planning an MV definition the way queries are planned, so that both reach the e-graph in
//! the same normalized shape.

use datafusion::common::Column;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

use crate::error::Result;

/// Plans `sql` in `planner` (which knows the tables), applies the column names of `CREATE
/// MATERIALIZED VIEW name (a, b, ...)`, and normalizes with `normalizer`.
pub async fn plan_definition(
    planner: &SessionState,
    normalizer: &SessionState,
    sql: &str,
    columns: &[String],
) -> Result<LogicalPlan> {
    let plan = planner.create_logical_plan(sql).await?;
    normalize_definition(normalizer, rename_columns(plan, columns)?)
}

/// Runs DataFusion's optimizer: the normalization queries get before the rule sees them.
/// `normalizer` must not contain the mvrewrite rule, or definitions would be rewritten
/// onto other MVs.
pub fn normalize_definition(normalizer: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(normalizer.optimize(&plan)?)
}

fn rename_columns(plan: LogicalPlan, columns: &[String]) -> Result<LogicalPlan> {
    // Names it already has are not renamed, so that re-planning an MV with its own column
    // names gives the plan it was first computed from.
    let same = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name())
        .eq(columns.iter());
    if columns.is_empty() || same {
        return Ok(plan);
    }
    if columns.len() != plan.schema().fields().len() {
        return Err(datafusion::error::DataFusionError::Plan(format!(
            "the MV names {} columns but its query returns {}",
            columns.len(),
            plan.schema().fields().len()
        ))
        .into());
    }
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .zip(columns)
        .map(|((q, f), name)| Expr::Column(Column::new(q.cloned(), f.name())).alias(name))
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(exprs)?.build()?)
}
