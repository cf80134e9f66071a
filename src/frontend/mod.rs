//! The ways into the engine: the DataFusion optimizer rule, the standalone rewrite call, MV
//! statements parsed from SQL, the rewritten plan written back as SQL text, and the dialect
//! pieces (CarbonData and ClickHouse time-bucket functions, Spark's LIKE on numbers, Spark's
//! `skewness` and `kurtosis`).
//!
//! May use: `engine` and everything below it. Used by `lifecycle` (the session installs the
//! rule) and `cli`.

pub mod optimizer_rule;
pub mod rewrite;
pub mod rule_options;
pub mod spark_aggregates;
pub mod spark_like;
pub mod sql;
pub mod time_functions;
pub mod unparse;
