//! The normal form regions are read in, for queries and MV definitions alike.

use std::borrow::Cow;

use datafusion::logical_expr::LogicalPlan;

use crate::plan::{semi_join, single_distinct};

/// `plan` in the form its regions are read in, queries and MV definitions alike: semi joins
/// under a deduplication as the inner joins they came from, DISTINCT aggregates as one
/// aggregate. Each form computes the same rows; a plan that cannot be rebuilt stays as it is.
pub fn regions_form(plan: &LogicalPlan) -> Cow<'_, LogicalPlan> {
    let mut form = Cow::Borrowed(plan);
    if let Ok(Some(inner)) = semi_join::semi_joins_as_inner(&form) {
        form = Cow::Owned(inner);
    }
    if let Ok(Some(one)) = single_distinct::distinct_aggregates_as_one(&form) {
        form = Cow::Owned(one);
    }
    form
}
