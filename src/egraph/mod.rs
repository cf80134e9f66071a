//! The e-graph: its language and analysis ([`lang`]), filter implication between sets of
//! conjunct classes ([`predicate`]), a plan region and MV definitions into it ([`to_egraph`]),
//! an extracted term back to a `LogicalPlan` ([`to_plan`]), and the cost extraction minimizes
//! ([`cost`]).
//!
//! May use: `plan`, `timeseries`, `report`. Rules, forms and the engine build on it.

pub mod cost;
pub mod lang;
pub mod predicate;
pub mod to_egraph;
pub mod to_plan;

pub use to_egraph::{RegionInEGraph, ToEGraph};
pub use to_plan::ToPlan;
