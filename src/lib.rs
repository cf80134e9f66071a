//! # mvrewrite
//!
//! Answers SQL queries over fact tables from registered materialized views (MVs),
//! transparently and never wrongly. You register MVs with `CREATE MATERIALIZED VIEW` and keep
//! writing queries against the base tables; each query is rewritten to read the cheapest MV
//! that can answer it (re-aggregated to a coarser GROUP BY, a finer time bucket rolled up,
//! filtered again, joined back to dimensions, or answered in parts), or left alone.
//!
//! Queries are planned by DataFusion; each maximal select-project-join-aggregate region of the
//! plan goes into an e-graph (egg) with the definitions of the MVs over its tables, rule packs
//! saturate it, and the cheapest equivalent plan (cells read) is extracted.
//!
//! ## Three ways in
//!
//! - [`MvSession`]: a DataFusion `SessionContext` where `CREATE / REFRESH / DROP MATERIALIZED
//!   VIEW` work, writes are tracked and queries are rewritten; `EXPLAIN` shows the MV.
//! - [`MvRewriteRule`]: the same rewrite as an `OptimizerRule` in your own `SessionState`.
//! - [`Rewriter`]: the standalone call, SQL or a `LogicalPlan` in; the rewritten plan, its SQL
//!   text and a [`Report`] (every MV: used, more expensive, or rejected with a
//!   [`ReasonCode`]) out. No data needed.
//!
//! The `mvrewrite` binary wraps them (`rewrite`, `explain`, `shell`, `demo`, and with the
//! feature `serve`, `serve`: an Arrow Flight SQL server over an `MvSession`).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use mvrewrite::MvSession;
//! let session = MvSession::new();
//! session.sql("CREATE TABLE events (kind VARCHAR, value BIGINT) AS VALUES ('a', 1), ('b', 2), ('a', 3)").await.unwrap().collect().await.unwrap();
//! session.sql("CREATE MATERIALIZED VIEW by_kind AS SELECT kind, count(*) AS n, sum(value) AS total FROM events GROUP BY kind").await.unwrap();
//! // count(*) over the whole table: the sum of the MV's counts.
//! let rows = session.sql("SELECT count(*) FROM events").await.unwrap().collect().await.unwrap();
//! assert_eq!(session.last_report().unwrap().used_mvs(), vec!["by_kind"]);
//! # });
//! ```
//!
//! ```
//! use mvrewrite::{CandidateStatus, ReasonCode, Rewriter};
//! let mut rw = Rewriter::new();
//! rw.execute("CREATE TABLE sales (country VARCHAR, sex VARCHAR, quantity INT, price DOUBLE);
//!             CREATE MATERIALIZED VIEW by_country AS
//!               SELECT country, sum(quantity) AS q FROM sales GROUP BY country").unwrap();
//! // The MV has no `sex` column: not used, and the report says why.
//! let r = rw.rewrite_sql("SELECT sex, sum(quantity) FROM sales GROUP BY sex").unwrap();
//! assert!(!r.rewritten);
//! let CandidateStatus::Rejected(why) = &r.report.candidates[0].status else { panic!() };
//! assert_eq!(why.code, ReasonCode::GroupByNotKept);
//! ```
//!
//! ## The guide
//!
//! [`guide::rewriting`] (aggregates, rollup, grouping sets, unions, parts),
//! [`guide::filters`], [`guide::joins`], [`guide::time_buckets`] (CarbonData, ClickHouse,
//! `date_trunc`, `date_bin`), [`guide::lifecycle`] (freshness, refresh, persistence),
//! [`guide::cli`], [`guide::testing`], [`guide::serving`] (Flight SQL). How the code is laid out: `ARCHITECTURE.md` in the
//! repository.

#![warn(missing_docs)]

// The stages, lowest first: a folder uses only those listed before it (ARCHITECTURE.md).
pub(crate) mod catalog;
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "ballista")]
pub mod cluster;
pub(crate) mod egraph;
pub(crate) mod engine;
mod error;
pub(crate) mod forms;
pub(crate) mod frontend;
pub(crate) mod lifecycle;
pub(crate) mod plan;
mod report;
pub(crate) mod rules;
#[cfg(feature = "serve")]
pub mod serve;
#[doc(hidden)]
pub mod testkit;
pub(crate) mod timeseries;

pub use catalog::constraints::{DeclaredKey, ForeignKey};
pub use catalog::files::FileListing;
pub use catalog::freshness::{Stale, Staleness};
pub use catalog::{Catalog, MaterializedView};
pub use engine::{Engine, Explain, Limits, Outcome};
pub use error::{MvError, Result};
pub use frontend::optimizer_rule::MvRewriteRule;
pub use frontend::rewrite::{RewriteResult, Rewriter};
pub use frontend::rule_options::MvRewriteOptions;
pub use frontend::spark_aggregates::{
    functions as spark_aggregate_functions, register as register_spark_aggregates,
};
pub use frontend::spark_like::analyzer_rules as spark_like_analyzer_rules;
pub use frontend::time_functions::{
    functions as time_bucket_functions, register as register_time_functions,
};
pub use lifecycle::progress::{Progress, ProgressSink};
pub use lifecycle::{MvSession, RefreshMode, Refreshed, Restored};
pub use report::{Candidate, CandidateStatus, ReasonCode, Rejection, Report, SaturationStats};

/// The user guide: the pages of `docs/` in the repository, rendered here so that their
/// examples are compiled and run as doctests.
pub mod guide {
    #[doc = include_str!("../docs/rewriting.md")]
    pub mod rewriting {}
    #[doc = include_str!("../docs/filters.md")]
    pub mod filters {}
    #[doc = include_str!("../docs/joins.md")]
    pub mod joins {}
    #[doc = include_str!("../docs/time-buckets.md")]
    pub mod time_buckets {}
    #[doc = include_str!("../docs/lifecycle.md")]
    pub mod lifecycle {}
    #[doc = include_str!("../docs/cli.md")]
    pub mod cli {}
    #[doc = include_str!("../docs/testing.md")]
    pub mod testing {}
    #[doc = include_str!("../docs/serving.md")]
    pub mod serving {}
    #[doc = include_str!("../docs/embedding.md")]
    pub mod embedding {}
    #[doc = include_str!("../docs/cluster.md")]
    pub mod cluster {}
    #[doc = include_str!("../docs/reasons.md")]
    pub mod reasons {}
}

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
