//! Planning an MV definition the way queries are planned, so that both reach the e-graph in
//! the same normalized shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::common::Column;
use datafusion::common::alias::AliasGenerator;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
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
    normalize_definition(normalizer, plan_stored_sql(planner, sql, names).await?)
}

/// [`plan_stored_definition`] before normalization.
pub async fn plan_stored_sql(
    planner: &SessionState,
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
    Ok(plan)
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

/// Each MV's definition as last planned from its SQL, and normalized: a refresh plans the SQL
/// again (a table or view it names may have been replaced), and when that gives the same plan
/// over the same table providers, the normalized plan is taken from here instead of running
/// DataFusion's optimizer again, most of what planning a refresh costs. Same plan means the
/// same semantics: the optimizer only rewrites a plan into an equivalent one, and functions
/// compare equal only when they are the same (DataFusion compares closures by pointer).
#[derive(Default)]
pub struct NormalizedPlans(Mutex<HashMap<String, (LogicalPlan, LogicalPlan)>>);

impl NormalizedPlans {
    /// `planned` (the definition of `mv` as planned from its SQL just now) normalized.
    pub fn normalize(
        &self,
        normalizer: &SessionState,
        mv: &str,
        planned: LogicalPlan,
    ) -> Result<LogicalPlan> {
        let known = self.lock().get(mv).and_then(|(before, normalized)| {
            (*before == planned && same_sources(before, &planned)).then(|| normalized.clone())
        });
        if let Some(normalized) = known {
            return Ok(normalized);
        }
        let normalized = normalize_definition(normalizer, planned.clone())?;
        self.lock()
            .insert(mv.to_string(), (planned, normalized.clone()));
        Ok(normalized)
    }

    /// Drops what is kept for `mv` (dropped or replaced), and the providers it holds.
    pub fn forget(&self, mv: &str) {
        self.lock().remove(mv);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (LogicalPlan, LogicalPlan)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `a` and `b` (equal plans) scan the very same table providers, in order: plans
/// compare tables by name, and a table replaced under the same name must be read anew. (A
/// kept plan holds its providers, so their addresses are not reused while it is kept.)
fn same_sources(a: &LogicalPlan, b: &LogicalPlan) -> bool {
    fn providers(plan: &LogicalPlan) -> Vec<*const ()> {
        let mut found = Vec::new();
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                found.push(match source_as_provider(&scan.source) {
                    Ok(provider) => Arc::as_ptr(&provider) as *const (),
                    // Not a provider: its own source object stands for it.
                    Err(_) => Arc::as_ptr(&scan.source) as *const (),
                });
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    }
    providers(a) == providers(b)
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
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::tree_node::TreeNode;
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

    /// A definition planned the same over the same tables is normalized once; a table
    /// replaced under the same name (same schema, so the plans compare equal) is read anew.
    #[tokio::test]
    async fn a_kept_normalized_plan_serves_only_the_same_tables() {
        use datafusion::datasource::MemTable;

        let ctx = SessionContext::new();
        let table = || {
            let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, true)]));
            Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap())
        };
        ctx.register_table("t", table()).unwrap();
        let sql = "SELECT k, count(*) AS n FROM t GROUP BY k";
        let kept = NormalizedPlans::default();
        let normalized = async || {
            let state = ctx.state();
            let planned = plan_stored_sql(&state, sql, StoredNames::Stored(&[]))
                .await
                .unwrap();
            kept.normalize(&state, "mv", planned).unwrap()
        };
        let scanned = |plan: &LogicalPlan| {
            let mut found = None;
            plan.apply(|node| {
                if let LogicalPlan::TableScan(scan) = node {
                    found =
                        Some(Arc::as_ptr(&source_as_provider(&scan.source).unwrap()) as *const ());
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
            found.unwrap()
        };
        let first = normalized().await;
        let again = normalized().await;
        assert_eq!(first, again);
        assert_eq!(scanned(&first), scanned(&again));
        let replaced = table();
        let replaced_at = Arc::as_ptr(&replaced) as *const ();
        ctx.deregister_table("t").unwrap();
        ctx.register_table("t", replaced).unwrap();
        let after = normalized().await;
        assert_eq!(
            after, first,
            "the plans compare equal: only the provider differs"
        );
        assert_eq!(scanned(&after), replaced_at);
        kept.forget("mv");
        assert!(kept.lock().is_empty());
    }
}
