//! Registration-time checks of MV definitions.

use datafusion::logical_expr::LogicalPlan;

use crate::plan::region::{self, Determinism};
use crate::report::{ReasonCode, Rejection};

pub use crate::plan::region::base_tables;

/// Strips what does not change the MV's rows (a top-level ORDER BY: the stored table has no
/// order anyway) and decides whether the definition can ever answer a query.
pub fn prepare_definition(plan: LogicalPlan) -> (LogicalPlan, Result<(), Rejection>) {
    let plan = match plan {
        LogicalPlan::Sort(sort) if sort.fetch.is_none() => sort.input.as_ref().clone(),
        other => other,
    };
    let plan = crate::plan::normal_form::regions_form(&plan).into_owned();
    let why_not = match crate::plan::union_shape::union_shape(&plan) {
        Some(shape) => {
            crate::plan::union_shape::not_a_union_of_regions(&shape, Determinism::Immutable)
        }
        None => region::not_a_region(&plan, Determinism::Immutable),
    };
    // A grouping-sets MV answers as its finest set (indexed in its place) when it can.
    let why_not = match (why_not, super::grouping_sets::finest_set(&plan)) {
        (Some(why), Some(Err(finest))) => Some(format!("{why}, and {finest}")),
        (why, _) => why,
    };
    let eligibility = match why_not {
        None => Ok(()),
        Some(why) => Err(Rejection::new(
            ReasonCode::Ineligible,
            format!("the MV cannot answer queries: {why}"),
        )),
    };
    (plan, eligibility)
}
