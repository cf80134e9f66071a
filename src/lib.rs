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

mod average_states;
pub mod catalog;
pub mod cli;
pub mod compare;
pub mod constraints;
pub mod convert;
pub mod cost;
pub mod datagen;
pub mod definition;
pub mod demo;
pub mod dependencies;
pub mod dimensions;
pub mod engine;
pub mod error;
pub mod freshness;
pub mod incremental;
pub mod join_back;
pub mod join_equivalence;
pub mod lang;
pub mod lossless;
mod mv_index;
pub mod occurrences;
pub mod optimizer_rule;
pub mod outer_join;
pub mod parts;
pub mod persist;
pub mod predicate;
pub mod reaggregate;
pub mod region;
pub mod report;
pub mod rewrite;
pub mod rules;
pub(crate) mod screen;
pub mod semi_join;
pub mod session;
pub mod single_distinct;
pub mod spark_like;
pub mod sql;
pub mod storage;
pub mod timeseries;
pub mod union;
pub mod unparse;
pub mod validate;
pub mod wider_aggregates;

pub use catalog::{Catalog, MaterializedView};
pub use engine::{Engine, Limits, Outcome};
pub use error::{MvError, Result};
pub use optimizer_rule::MvRewriteRule;
pub use report::{CandidateStatus, ReasonCode, Rejection, Report};
pub use rewrite::{RewriteResult, Rewriter};
pub use session::MvSession;

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
