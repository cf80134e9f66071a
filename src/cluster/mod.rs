//! mvrewrite inside Apache DataFusion Ballista (feature `ballista`): queries and MV
//! computations run on a cluster's executors, and are rewritten both where they are planned
//! (the client's session) and on the scheduler, which optimizes every plan again.
//!
//! `client.rs` a session whose plans run on a cluster, `standalone.rs` a cluster in this
//! process (scheduler and executors on loopback ports), `scheduler.rs` the scheduler's
//! sessions (the rule, and the MVs of the store it follows, `following.rs`), `executor.rs`
//! an executor with mvrewrite's functions. MVs reach executors as listing tables over the
//! store's Parquet generations, which datafusion-proto ships as they are; each refresh
//! writes a new generation directory, so no statistics cache serves a replaced MV's.
//!
//! May use: `lifecycle`, `frontend` and everything below. Used by `cli`.

pub mod client;
pub mod executor;
pub mod following;
pub mod scheduler;
pub mod standalone;

pub use client::remote;
pub use standalone::standalone;
