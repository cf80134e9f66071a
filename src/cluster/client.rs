//! A session whose plans run on a Ballista cluster: its state upgraded by Ballista (its query
//! planner sends plans to the scheduler; the rewrite rule stays, after Ballista's rule), with
//! mvrewrite's time-bucket functions and Spark's aggregates, which the upgrade replaces with
//! DataFusion's.

use std::sync::Arc;

use ballista_core::extension::SessionStateExt;
use datafusion::execution::{FunctionRegistry, SessionState};

use crate::error::{MvError, Result};
use crate::lifecycle::MvSession;

/// `session` with its plans run on the Ballista cluster whose scheduler is at `url`
/// (`df://host:port`, `http://host:port`): queries are rewritten here and again on the
/// scheduler, MVs are computed there and kept in the session's store, which every executor
/// must reach (a shared directory or an object store).
pub async fn remote(session: MvSession, url: &str) -> Result<MvSession> {
    let scheduler = scheduler_address(url)?;
    session.distributed(|state| on_cluster(state, scheduler))
}

/// `state` as a client of the scheduler at `scheduler` (`http://host:port`).
pub(crate) fn on_cluster(state: SessionState, scheduler: String) -> Result<SessionState> {
    let mut state = state.upgrade_for_ballista(scheduler)?;
    for f in crate::frontend::time_functions::functions() {
        state.register_udf(Arc::new(f))?;
    }
    for f in crate::frontend::spark_aggregates::functions() {
        state.register_udaf(Arc::new(f))?;
    }
    Ok(state)
}

/// The scheduler's gRPC address from a `df://` or `http://` URL (port 50050 by default).
fn scheduler_address(url: &str) -> Result<String> {
    let url =
        url::Url::parse(url).map_err(|e| MvError::Input(format!("scheduler URL {url}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| MvError::Input(format!("scheduler URL {url}: no host")))?;
    Ok(format!("http://{host}:{}", url.port().unwrap_or(50050)))
}
