//! Planning an MV definition the way queries are planned, so that both reach the e-graph in
//! the same normalized shape.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::common::alias::AliasGenerator;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

use crate::catalog::average_states::with_average_states;
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

/// The names an MV the session stores is planned with.
pub enum StoredNames<'a> {
    /// `CREATE MATERIALIZED VIEW name (a, b, ...)`: the definition's columns (or none).
    Created(&'a [String]),
    /// The names it is stored with, when it is planned again (refresh, restore): its columns,
    /// then the states it was stored with, if any (an MV stored by an earlier version has none).
    Stored(&'a [String]),
}

/// Plans an MV the session stores: [`plan_definition`] with its averages' states appended
/// (their `sum` and `count`, `src/catalog/average_states.rs`).
pub async fn plan_stored_definition(
    planner: &SessionState,
    normalizer: &SessionState,
    sql: &str,
    names: StoredNames<'_>,
) -> Result<LogicalPlan> {
    let plan = planner.create_logical_plan(sql).await?;
    let visible = plan.schema().fields().len();
    let plan = match names {
        StoredNames::Created(columns) => with_average_states(rename_columns(plan, columns)?),
        StoredNames::Stored(columns) if columns.len() <= visible => rename_columns(plan, columns)?,
        // The states as planned now: a changed argument type renames them (an INT's
        // `sum(t.x)`, a BIGINT's `sum(CAST(t.x AS Float64))`), and the changed plan is then
        // recomputed in full.
        StoredNames::Stored(columns) => {
            with_average_states(rename_columns(plan, &columns[..visible])?)
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    /// An MV's averages' states are added when it is created, and planned again as stored:
    /// with them, or without them for an MV stored before they were.
    #[tokio::test]
    async fn stored_names_decide_the_states() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (k INT, x DOUBLE)").await.unwrap();
        let state = ctx.state();
        let sql = "SELECT k, avg(x) AS mean FROM t GROUP BY k";
        let names = async |names: StoredNames<'_>| {
            let plan = plan_stored_definition(&state, &state, sql, names).await?;
            let fields = plan.schema().fields().iter();
            Ok::<Vec<String>, crate::error::MvError>(fields.map(|f| f.name().clone()).collect())
        };
        let with_states = ["k", "mean", "sum(t.x)", "count(t.x)"].map(String::from);
        assert_eq!(names(StoredNames::Created(&[])).await.unwrap(), with_states);
        assert_eq!(
            names(StoredNames::Stored(&with_states)).await.unwrap(),
            with_states
        );
        let earlier = ["k", "mean"].map(String::from);
        assert_eq!(names(StoredNames::Stored(&earlier)).await.unwrap(), earlier);
        let renamed = ["key", "m"].map(String::from);
        assert_eq!(
            names(StoredNames::Created(&renamed)).await.unwrap(),
            ["key", "m", "sum(t.x)", "count(t.x)"]
        );
        // Stored when x was another type: the states as they are now.
        let retyped = ["k", "mean", "sum(CAST(t.x AS Float64))", "count(t.x)"].map(String::from);
        assert_eq!(
            names(StoredNames::Stored(&retyped)).await.unwrap(),
            with_states
        );
        let too_many = ["a", "b", "c"].map(String::from);
        let e = names(StoredNames::Created(&too_many)).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("names 3 columns but its query returns 2"),
            "{e}"
        );
    }
}
