//! DISTINCT aggregates as they were written, before DataFusion split them in two.
//!
//! DataFusion's `single_distinct_aggregation_to_group_by` rule plans `SELECT k,
//! count(DISTINCT x), sum(y) .. GROUP BY k` as an aggregate over an aggregate: the inner one
//! groups by `k` and `x AS alias1` (and computes `sum(y) AS alias2`), the outer one groups by
//! `k` and computes `count(alias1)` and `sum(alias2)`. The MV definition and the query then
//! nest two aggregates, and the rollup, which reads one, cannot see that an MV's
//! `count(DISTINCT x)` per `(k, j)` is the query's per `k` when the query pins `j = 'a'`.
//! Reading the pair back as the one aggregate it came from gives both the form the rollup
//! knows; DataFusion splits it again, if it wants, when it optimizes the rewritten plan.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams, Alias};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};

/// The name DataFusion gives the distinct argument in the inner aggregate.
const DISTINCT_ALIAS: &str = "alias1";

/// `plan` with every aggregate pair of DataFusion's single-distinct split read back as one
/// aggregate; `None` when there is none. The outputs keep their names and types: what reads
/// them is unchanged.
pub fn distinct_aggregates_as_one(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    // Rebuilding a plan copies its expressions: not for plans without a split.
    if !plan.exists(|node| Ok(as_one(node).is_some()))? {
        return Ok(None);
    }
    let rewritten = plan.clone().transform_up(|node| match as_one(&node) {
        Some(one) => Ok(Transformed::yes(one?)),
        None => Ok(Transformed::no(node)),
    })?;
    Ok(rewritten.transformed.then_some(rewritten.data))
}

/// The one aggregate `node` was split from, if it is the outer half of a split.
fn as_one(node: &LogicalPlan) -> Option<Result<LogicalPlan>> {
    let (outer, inner, distinct, kept_keys) = split_pair(node)?;
    let partial = partials_by_name(inner)?;
    let mut aggregates = Vec::with_capacity(outer.aggr_expr.len());
    for (e, (qualifier, field)) in outer
        .aggr_expr
        .iter()
        .zip(outer.schema.iter().skip(outer.group_expr.len()))
    {
        let whole = whole_aggregate(e, distinct, &partial)?;
        aggregates.push(whole.alias_qualified(qualifier.cloned(), field.name()));
    }
    let one = match Aggregate::try_new(Arc::clone(&inner.input), kept_keys.to_vec(), aggregates) {
        Ok(one) => one,
        Err(e) => return Some(Err(e)),
    };
    // A two-phase DECIMAL sum is wider than the sum itself: such a split stays as it is, since
    // what reads the outputs expects their types.
    let same_types = one
        .schema
        .fields()
        .iter()
        .zip(outer.schema.fields())
        .all(|(a, b)| a.data_type() == b.data_type());
    same_types.then_some(Ok(LogicalPlan::Aggregate(one)))
}

/// The split's shape, checked first: outer, inner, the inner's `x AS alias1`, the shared keys.
fn split_pair(node: &LogicalPlan) -> Option<(&Aggregate, &Aggregate, &Alias, &[Expr])> {
    let LogicalPlan::Aggregate(outer) = node else {
        return None;
    };
    let LogicalPlan::Aggregate(inner) = outer.input.as_ref() else {
        return None;
    };
    // The inner keys: the outer keys, in order, then `x AS alias1`.
    let (distinct_key, kept_keys) = inner.group_expr.split_last()?;
    let Expr::Alias(distinct) = distinct_key else {
        return None;
    };
    if distinct.name != DISTINCT_ALIAS || kept_keys.len() != outer.group_expr.len() {
        return None;
    }
    let keys_kept = outer.group_expr.iter().enumerate().all(|(i, o)| {
        let (qualifier, field) = inner.schema.qualified_field(i);
        matches!(o, Expr::Column(c) if *c == Column::new(qualifier.cloned(), field.name()))
    });
    if !keys_kept {
        return None;
    }
    Some((outer, inner, distinct, kept_keys))
}

/// The outer aggregates read the inner ones by name: `None` if one of them has none.
fn partials_by_name(inner: &Aggregate) -> Option<HashMap<String, &Expr>> {
    // The inner aggregates, by the name the outer ones read them with (`alias2`, ...).
    let partial: HashMap<String, &Expr> = inner
        .aggr_expr
        .iter()
        .filter_map(|e| match e {
            Expr::Alias(a) => Some((a.name.clone(), a.expr.as_ref())),
            _ => None,
        })
        .collect();
    if partial.len() != inner.aggr_expr.len() {
        return None;
    }
    Some(partial)
}

/// Each outer aggregate must be one the split makes: it becomes the aggregate it came from.
fn whole_aggregate(e: &Expr, distinct: &Alias, partial: &HashMap<String, &Expr>) -> Option<Expr> {
    let Expr::AggregateFunction(f) = e else {
        return None;
    };
    let [Expr::Column(arg)] = f.params.args.as_slice() else {
        return None;
    };
    let plain = !f.params.distinct
        && f.params.filter.is_none()
        && f.params.order_by.is_empty()
        && arg.relation.is_none();
    if !plain {
        return None;
    }
    let whole = if arg.name == DISTINCT_ALIAS {
        // `f(alias1)` over the distinct values of each group: `f(DISTINCT x)`.
        with_params(f, vec![distinct.expr.as_ref().clone()], true)
    } else {
        // `g(aliasN)` over `g(y) AS aliasN`: two-phase `sum`, `min` or `max`, which is `g(y)`.
        let Expr::AggregateFunction(g) = partial.get(&arg.name)? else {
            return None;
        };
        let same = g.func.name() == f.func.name()
            && matches!(f.func.name(), "sum" | "min" | "max")
            && !g.params.distinct
            && g.params.filter.is_none()
            && g.params.order_by.is_empty();
        if !same {
            return None;
        }
        Expr::AggregateFunction(g.clone())
    };
    Some(whole)
}

fn with_params(f: &AggregateFunction, args: Vec<Expr>, distinct: bool) -> Expr {
    Expr::AggregateFunction(AggregateFunction {
        func: Arc::clone(&f.func),
        params: AggregateFunctionParams {
            args,
            distinct,
            filter: None,
            order_by: vec![],
            null_treatment: f.params.null_treatment,
        },
    })
}
