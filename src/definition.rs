//! Planning an MV definition the way queries are planned, so that both reach the e-graph in
//! the same normalized shape.

use datafusion::common::Column;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

use crate::error::Result;

/// Plans `sql` in `state` (which must not contain the mvrewrite rule), applies the column
/// names of `CREATE MATERIALIZED VIEW name (a, b, ...)`, and optimizes.
pub async fn plan_definition(
    state: &SessionState,
    sql: &str,
    columns: &[String],
) -> Result<LogicalPlan> {
    let plan = state.create_logical_plan(sql).await?;
    normalize_definition(state, rename_columns(plan, columns)?)
}

/// Runs DataFusion's optimizer (the normalization queries get before the rule sees them).
pub fn normalize_definition(state: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(state.optimize(&plan)?)
}

fn rename_columns(plan: LogicalPlan, columns: &[String]) -> Result<LogicalPlan> {
    if columns.is_empty() {
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
