//! Time buckets: the grains ([`grain`]) and the nesting lattice read from the `timeseries`
//! pack ([`lattice`]). It sits below the e-graph, whose bucket node carries a [`Grain`]; the
//! rewrites that use them are in `rules/bucket.rs`, and CarbonData's and ClickHouse's bucket
//! functions (DataFusion UDFs that simplify to `date_trunc`/`date_bin`) in
//! `frontend/time_functions.rs`.
//!
//! May use: nothing of the crate. Used by every stage from `egraph` up.

pub mod grain;
pub mod lattice;

pub use grain::{Grain, grain_of_call, recognize};
pub use lattice::Lattice;
