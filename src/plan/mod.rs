//! The query plan as the rewriter reads it, before any e-graph: the normal form regions are
//! read in, what a region is (a maximal select-project-join-aggregate subtree), tables read
//! more than once, union shapes, and the dimensions an aggregate keeps.
//!
//! May use: `report`, `timeseries`. Used by every stage above.

pub mod dimensions;
pub mod normal_form;
pub mod occurrences;
pub mod region;
pub mod semi_join;
pub mod single_distinct;
pub mod union_shape;
