//! LogicalPlan ⇄ e-graph.

pub mod to_egraph;
pub mod to_plan;

pub use to_egraph::{RegionInEGraph, ToEGraph};
pub use to_plan::ToPlan;
