//! Spark's LIKE on a non-string operand: Spark (and so CarbonData) casts the operand to a string
//! (`salary NOT LIKE '6%'` on a DOUBLE), where DataFusion refuses to coerce. An analyzer rule
//! adds the cast, so those users' MV definitions and queries run unchanged in the sessions
//! mvrewrite builds. Numbers print as Arrow casts them: `61.0` as in Spark, but very large or
//! small doubles without Spark's exponent (`1.0E20`).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::{Exists, InSubquery, SetComparison};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, cast};
use datafusion::optimizer::analyzer::{Analyzer, AnalyzerRule};

/// Casts a LIKE (or SIMILAR TO) operand of a numeric or boolean type to `Utf8`.
#[derive(Debug, Default)]
pub struct LikeCastsToString;

impl AnalyzerRule for LikeCastsToString {
    fn name(&self) -> &str {
        "mvrewrite_like_casts_to_string"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        // Rebuilding a plan costs more than looking at it, and merging input schemas more than
        // the rest of the rule: only plans, and then nodes, with a LIKE.
        if !plan_has_like(&plan) {
            return Ok(plan);
        }
        plan.transform_up_with_subqueries(|node| {
            if !expressions_have_like(&node, false) {
                return Ok(Transformed::no(node));
            }
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            node.map_expressions(|e| {
                e.transform_up(|e| {
                    let (mut like, similar) = match e {
                        Expr::Like(like) => (like, false),
                        Expr::SimilarTo(like) => (like, true),
                        other => return Ok(Transformed::no(other)),
                    };
                    let mut changed = false;
                    for side in [&mut like.expr, &mut like.pattern] {
                        if side.get_type(&schema).is_ok_and(|t| casts_to_string(&t)) {
                            **side = cast(side.as_ref().clone(), DataType::Utf8);
                            changed = true;
                        }
                    }
                    let e = if similar {
                        Expr::SimilarTo(like)
                    } else {
                        Expr::Like(like)
                    };
                    Ok(Transformed::new_transformed(e, changed))
                })
            })
        })
        .map(|t| t.data)
    }
}

/// Whether an expression of `plan` or of its subqueries has a LIKE or SIMILAR TO: one walk over
/// its expressions, entering subqueries where it meets them (`apply_with_subqueries` would walk
/// every expression twice, once to find the subqueries; this runs on every query planned).
fn plan_has_like(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply(|node| {
        found = expressions_have_like(node, true);
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Whether an expression of `node` has a LIKE or SIMILAR TO (in its subqueries too, when
/// `subqueries`).
fn expressions_have_like(node: &LogicalPlan, subqueries: bool) -> bool {
    let mut found = false;
    let _ = node.apply_expressions(|e| {
        e.apply(|e| {
            found = match e {
                Expr::Like(_) | Expr::SimilarTo(_) => true,
                Expr::Exists(Exists { subquery, .. })
                | Expr::InSubquery(InSubquery { subquery, .. })
                | Expr::SetComparison(SetComparison { subquery, .. })
                | Expr::ScalarSubquery(subquery) => subqueries && plan_has_like(&subquery.subquery),
                _ => false,
            };
            Ok(if found {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
    });
    found
}

/// Numbers and booleans only: Arrow prints timestamps with a `T` where Spark prints a space,
/// so a LIKE on a cast timestamp would not match what it matches in Spark.
fn casts_to_string(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean)
}

/// DataFusion's analyzer rules with `LikeCastsToString` first: it must run before type
/// coercion, which would reject the LIKE.
pub fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![Arc::new(LikeCastsToString)];
    rules.extend(Analyzer::new().rules);
    rules
}
