//! # mvrewrite
//!
//! Answers SQL queries over base tables from registered materialized views (MVs),
//! transparently and never wrongly. Queries are planned by DataFusion; each maximal
//! select-project-aggregate region of the plan goes into an e-graph (egg) together with the
//! definitions of the MVs over the same tables, rule packs (`rules/*.rules`) saturate it, and
//! the cheapest equivalent plan (cells read: rows × columns) is extracted — an MV scan with whatever
//! re-aggregation, filter or expression it needs, or the original plan.
//!
//! Three ways to use it:
//! - [`MvSession`]: a DataFusion `SessionContext` where `CREATE MATERIALIZED VIEW` works and
//!   queries are rewritten (or add [`MvRewriteRule`] to your own `SessionState`);
//! - [`Rewriter`]: the standalone call, SQL or `LogicalPlan` in, rewritten plan, SQL and
//!   [`Report`] out;
//! - the `mvrewrite` command-line tool.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use mvrewrite::MvSession;
//! let session = MvSession::new();
//! session.sql("CREATE TABLE events (kind VARCHAR, value BIGINT) AS VALUES ('a', 1), ('b', 2), ('a', 3)").await.unwrap().collect().await.unwrap();
//! session.sql("CREATE MATERIALIZED VIEW by_kind AS SELECT kind, count(*) AS n, sum(value) AS total FROM events GROUP BY kind").await.unwrap();
//! let rows = session.sql("SELECT count(*) FROM events").await.unwrap().collect().await.unwrap();
//! assert_eq!(session.last_report().unwrap().used_mvs(), vec!["by_kind"]);
//! # });
//! ```

#![warn(missing_docs)]

// The stages, lowest first: a folder uses only those listed before it (ARCHITECTURE.md).
pub(crate) mod catalog;
#[doc(hidden)]
pub mod cli;
pub(crate) mod egraph;
pub(crate) mod engine;
mod error;
pub(crate) mod forms;
pub(crate) mod frontend;
pub(crate) mod lifecycle;
pub(crate) mod plan;
mod report;
pub(crate) mod rules;
#[doc(hidden)]
pub mod testkit;
pub(crate) mod timeseries;

pub use catalog::constraints::{DeclaredKey, ForeignKey};
pub use catalog::freshness::Staleness;
pub use catalog::{Catalog, MaterializedView};
pub use engine::{Engine, Explain, Limits, Outcome};
pub use error::{MvError, Result};
pub use frontend::optimizer_rule::MvRewriteRule;
pub use frontend::rewrite::{RewriteResult, Rewriter};
pub use frontend::spark_like::analyzer_rules as spark_like_analyzer_rules;
pub use frontend::time_functions::{
    functions as time_bucket_functions, register as register_time_functions,
};
pub use lifecycle::{MvSession, RefreshMode, Refreshed, Restored};
pub use report::{CandidateStatus, ReasonCode, Rejection, Report};

/// The README's and the guide pages' examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
mod guide_doctests {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/rewriting.md")]
    struct Rewriting;
    #[doc = include_str!("../docs/filters.md")]
    struct Filters;
    #[doc = include_str!("../docs/joins.md")]
    struct Joins;
    #[doc = include_str!("../docs/time-buckets.md")]
    struct TimeBuckets;
    #[doc = include_str!("../docs/lifecycle.md")]
    struct Lifecycle;
    #[doc = include_str!("../docs/cli.md")]
    struct Cli;
    #[doc = include_str!("../docs/testing.md")]
    struct Testing;
}
