//! Time buckets across dialects: the grains ([`grain`]), the nesting lattice read from the
//! `timeseries` pack ([`lattice`]), and CarbonData's and ClickHouse's bucket functions as
//! DataFusion UDFs ([`functions`]). The rewrites that use them are in `rules/bucket.rs`.

pub mod functions;
pub mod grain;
pub mod lattice;

pub use functions::register;
pub use grain::{Grain, grain_of_call, recognize};
pub use lattice::Lattice;
