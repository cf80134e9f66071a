//! Dimension columns: a cheap necessary condition that keeps most aggregate MVs which cannot
//! answer a query out of the e-graph.
//!
//! A query over one table that filters on a column, or groups by it, needs that column from
//! an aggregate MV over the same table: as (part of) a group key, to re-filter or re-group
//! its rows, or in the MV's own filter, which the query's may repeat. An MV that neither
//! groups by nor filters on the column cannot answer, whatever the rules would try: its rows
//! have already summed over the column's values. The column's table must be the only one read
//! on both sides, so that a column name means one column.
//!
//! Likewise for its aggregates: an aggregate MV over that table answers the query's aggregate
//! only if it computes the same function, or what the function rolls up from, or the
//! aggregate ignores duplicates and reads only the MV's group keys
//! ([`crate::rules::rollup::RollupTable::may_provide`]).

use std::collections::BTreeSet;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Projection};

/// What an aggregate MV over one table computes per group: the columns (by name) its group
/// keys read, and the aggregate functions it computes (by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MvAggregates {
    pub key_columns: BTreeSet<String>,
    pub functions: BTreeSet<String>,
}

/// One aggregate of a query over one table: its function, whether DISTINCT, and the columns
/// (by name) its arguments read. `None` function for one with FILTER or ORDER BY, which only
/// an MV computing the very same aggregate answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateCall {
    pub function: Option<String>,
    pub distinct: bool,
    pub columns: BTreeSet<String>,
    /// As the plan writes it, for reports.
    pub expr: Expr,
}

/// The aggregate at the top of an MV's definition (under its projections), when filters and
/// projections alone lie between it and the one scan it reads.
fn mv_aggregate(plan: &LogicalPlan) -> Option<(&Aggregate, Chain<'_>)> {
    let mut top = plan;
    while let LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) = top {
        top = top.inputs()[0];
    }
    let LogicalPlan::Aggregate(agg) = top else {
        return None;
    };
    Some((agg, Chain::down_to_scan(&agg.input)?))
}

/// The columns (by name) an aggregate MV over one table keeps usable per row group: those its
/// group keys and filters mention. `None` when the MV is not that shape (no check applies).
pub fn kept_by_mv(plan: &LogicalPlan) -> Option<BTreeSet<String>> {
    let (agg, below) = mv_aggregate(plan)?;
    Some(below.keys_and_filters(agg))
}

/// For an aggregate MV over one table, its key columns and aggregate functions.
pub fn aggregates_of_mv(plan: &LogicalPlan) -> Option<MvAggregates> {
    let (agg, below) = mv_aggregate(plan)?;
    let functions = agg
        .aggr_expr
        .iter()
        .filter_map(|e| aggregate_function(e).map(|f| f.func.name().to_string()))
        .collect();
    Some(MvAggregates {
        key_columns: below.resolve(&agg.group_expr, 0),
        functions,
    })
}

/// The aggregates of the aggregate right over the one scan `plan` reads (through filters and
/// projections only); empty when there is none, or `plan` reads several scans.
pub fn aggregate_calls(plan: &LogicalPlan) -> Vec<AggregateCall> {
    let Some((agg, below)) = aggregate_over_scan(plan) else {
        return Vec::new();
    };
    agg.aggr_expr
        .iter()
        .filter_map(|e| {
            let f = aggregate_function(e)?;
            let plain = f.params.filter.is_none() && f.params.order_by.is_empty();
            Some(AggregateCall {
                function: plain.then(|| f.func.name().to_string()),
                distinct: f.params.distinct,
                columns: below.resolve(&f.params.args, 0),
                expr: Expr::AggregateFunction(f.clone()),
            })
        })
        .collect()
}

/// The aggregate right over the one scan `plan` reads, with what lies between (filters and
/// projections only); `None` when there is none, or `plan` reads several scans.
fn aggregate_over_scan(plan: &LogicalPlan) -> Option<(&Aggregate, Chain<'_>)> {
    let mut found = None;
    let mut scans = 0;
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(_) => scans += 1,
            LogicalPlan::Aggregate(agg) => {
                if let Some(below) = Chain::down_to_scan(&agg.input) {
                    found = Some((agg, below));
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if scans == 1 { found } else { None }
}

fn aggregate_function(expr: &Expr) -> Option<&AggregateFunction> {
    match expr {
        Expr::Alias(a) => aggregate_function(&a.expr),
        Expr::AggregateFunction(f) => Some(f),
        _ => None,
    }
}

/// The columns (by name) of its one table that `region` filters or groups on over its scan;
/// empty when the region reads more than one table or one table several times.
pub fn needed_by_query(region: &LogicalPlan) -> BTreeSet<String> {
    aggregate_over_scan(region)
        .map(|(agg, below)| below.keys_and_filters(agg))
        .unwrap_or_default()
}

/// The filters and projections between a plan and the one scan it reads.
struct Chain<'a> {
    /// Top first.
    projections: Vec<&'a Projection>,
    /// Each predicate with the number of projections above it.
    filters: Vec<(usize, &'a Expr)>,
}

impl<'a> Chain<'a> {
    /// `None` when anything but filters, projections and aliases lies between.
    fn down_to_scan(plan: &'a LogicalPlan) -> Option<Self> {
        let mut chain = Chain {
            projections: vec![],
            filters: vec![],
        };
        let mut node = plan;
        loop {
            match node {
                LogicalPlan::Filter(f) => {
                    chain.filters.push((chain.projections.len(), &f.predicate));
                    node = &f.input;
                }
                LogicalPlan::Projection(p) => {
                    chain.projections.push(p);
                    node = &p.input;
                }
                LogicalPlan::SubqueryAlias(a) => node = &a.input,
                LogicalPlan::TableScan(scan) => {
                    let depth = chain.projections.len();
                    chain
                        .filters
                        .extend(scan.filters.iter().map(|f| (depth, f)));
                    return Some(chain);
                }
                _ => return None,
            }
        }
    }

    /// The scan columns the group keys of `agg` (right over the chain) and the chain's
    /// filters read.
    fn keys_and_filters(&self, agg: &Aggregate) -> BTreeSet<String> {
        let mut columns = self.resolve(&agg.group_expr, 0);
        for (depth, filter) in &self.filters {
            columns.extend(self.resolve(std::slice::from_ref(*filter), *depth));
        }
        columns
    }

    /// The scan columns `exprs` (above the first `depth` projections of the chain) read: names
    /// a projection computes stand for the columns of the expression computing them.
    fn resolve(&self, exprs: &[Expr], depth: usize) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = exprs
            .iter()
            .flat_map(|e| e.column_refs())
            .map(|c| c.name.clone())
            .collect();
        for p in &self.projections[depth..] {
            names = names
                .iter()
                .flat_map(
                    |n| match p.schema.fields().iter().position(|f| f.name() == n) {
                        Some(i) => p.expr[i]
                            .column_refs()
                            .into_iter()
                            .map(|c| c.name.clone())
                            .collect(),
                        None => vec![n.clone()],
                    },
                )
                .collect();
        }
        names
    }
}
