//! Planning an MV definition the way queries are planned, so that both reach the e-graph in
//! the same normalized shape.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::common::alias::AliasGenerator;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

use crate::average_states::with_average_states;
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

/// Plans an MV the session stores: [`plan_definition`] with its averages' states appended
/// ([`with_average_states`]). `columns` may also name the states (the stored names, when a
/// stored MV is planned again); they must come out the same.
pub async fn plan_stored_definition(
    planner: &SessionState,
    normalizer: &SessionState,
    sql: &str,
    columns: &[String],
) -> Result<LogicalPlan> {
    let plan = planner.create_logical_plan(sql).await?;
    let visible = plan.schema().fields().len();
    let renamed = rename_columns(plan, &columns[..visible.min(columns.len())])?;
    let plan = with_average_states(renamed);
    if columns.len() > visible && !plan.schema().fields().iter().map(|f| f.name()).eq(columns) {
        return Err(columns_mismatch(columns.len(), visible));
    }
    normalize_definition(normalizer, plan)
}

/// Runs DataFusion's optimizer: the normalization queries get before the rule sees them.
/// `normalizer` must not contain the mvrewrite rule, or definitions would be rewritten
/// onto other MVs.
pub fn normalize_definition(normalizer: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan> {
    // With a fresh alias generator, common subexpressions get the same names
    // (`__common_expr_1`) each time a definition is planned: a refresh can then tell that it
    // plans the same as when the MV was computed.
    // (Not `mark_start_execution`: it would also fix `now()`, and fold it to a constant.)
    let mut state = normalizer.clone();
    state.execution_props_mut().alias_generator = Arc::new(AliasGenerator::new());
    Ok(state.optimize(&plan)?)
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
        return Err(columns_mismatch(
            columns.len(),
            plan.schema().fields().len(),
        ));
    }
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .zip(columns)
        .map(|((q, f), name)| Expr::Column(Column::new(q.cloned(), f.name())).alias(name))
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(exprs)?.build()?)
}

fn columns_mismatch(named: usize, returned: usize) -> crate::error::MvError {
    datafusion::error::DataFusionError::Plan(format!(
        "the MV names {named} columns but its query returns {returned}"
    ))
    .into()
}
