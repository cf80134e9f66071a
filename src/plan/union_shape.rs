//! A union of regions, as MV definitions and queries spell it: a `Union`, possibly under a
//! DISTINCT. Recognized here, below the catalog, because registering an MV needs to know
//! whether it is one; answering a union from a union MV is `forms::union`.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan};

use crate::plan::region::{self, Determinism};

/// A union of regions, possibly under a DISTINCT.
pub struct UnionShape<'a> {
    pub distinct: bool,
    pub branches: &'a [Arc<LogicalPlan>],
}

/// The union shape of `plan`: a `Union`, or a DISTINCT over one (`Distinct::All`, or the
/// aggregate grouping by every column, with no aggregates, that DataFusion's optimizer makes of
/// it). Branches are not checked here.
pub fn union_shape(plan: &LogicalPlan) -> Option<UnionShape<'_>> {
    match plan {
        LogicalPlan::Union(u) => Some(UnionShape {
            distinct: false,
            branches: &u.inputs,
        }),
        LogicalPlan::Distinct(Distinct::All(input)) => distinct_over(input),
        LogicalPlan::Aggregate(agg)
            if agg.aggr_expr.is_empty()
                && agg.group_expr.len() == agg.input.schema().fields().len()
                && agg
                    .group_expr
                    .iter()
                    .zip(agg.input.schema().iter())
                    .all(|(e, f)| *e == Expr::Column(Column::from(f))) =>
        {
            distinct_over(&agg.input)
        }
        _ => None,
    }
}

fn distinct_over(input: &LogicalPlan) -> Option<UnionShape<'_>> {
    match input {
        LogicalPlan::Union(u) => Some(UnionShape {
            distinct: true,
            branches: &u.inputs,
        }),
        _ => None,
    }
}

/// Why a union cannot be compared branch by branch: a branch that is not a region.
pub fn not_a_union_of_regions(shape: &UnionShape, determinism: Determinism) -> Option<String> {
    shape.branches.iter().enumerate().find_map(|(i, b)| {
        region::not_a_region(b, determinism).map(|why| format!("its branch {}: {why}", i + 1))
    })
}
