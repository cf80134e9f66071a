//! The scheduler's sessions. Ballista's scheduler optimizes every plan a client sends again,
//! in a session its session builder makes for the job; mvrewrite's builder makes it over the
//! tables, functions, rewrite rule and MVs of a session, so the scheduler rewrites too (plans
//! from clients without the rule). A plan that already reads an MV comes out as it is (no MV
//! is defined over an MV's scan), and a stale MV is refused there as on the client: both
//! judge it by the same versions and file listings.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::optimizer::with_ballista_optimizer_rules;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_server::SessionBuilder;
use datafusion::common::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

use crate::cluster::following::Following;
use crate::error::{MvError, Result};
use crate::frontend::rule_options::MvRewriteOptions;

/// A session builder planning with `state()` (the tables, functions, rule and MVs it holds),
/// under the configuration the client sent, with Ballista's optimizer rule in front. Plans
/// arrive optimized by their client, so the scheduler's optimizer makes one pass (another
/// would find nothing to change and stop): in it the rule normalizes the plan itself and
/// rewrites it.
pub fn session_builder(
    state: impl Fn() -> Result<SessionState> + Send + Sync + 'static,
) -> SessionBuilder {
    Arc::new(move |config: SessionConfig| {
        let state = state().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let rules = with_ballista_optimizer_rules(state.optimizers());
        // Without a default catalog of its own: the state's catalog list is the session's,
        // shared, and building one would replace its tables with an empty catalog.
        let config = config
            .upgrade_for_ballista()
            .set_usize("datafusion.optimizer.max_passes", 1)
            .with_create_default_catalog_and_schema(false);
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .with_optimizer_rules(rules)
            .build())
    })
}

/// Runs a scheduler on `bind` until the process ends, planning with the MVs `following`
/// follows.
pub async fn run(following: Arc<Following>, bind: SocketAddr) -> Result<()> {
    let builder = session_builder(move || following.state());
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        ..SchedulerConfig::default()
    }
    .with_override_session_builder(Arc::clone(&builder))
    // With mvrewrite's settings, which clients send with their plans (`rule_options.rs`).
    .with_override_config_producer(Arc::new(|| {
        SessionConfig::new_with_ballista().with_option_extension(MvRewriteOptions::default())
    }));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista_error)?;
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(ballista_error)
}

/// A Ballista error, as mvrewrite reports errors.
pub(crate) fn ballista_error(e: ballista_core::error::BallistaError) -> MvError {
    MvError::DataFusion(DataFusionError::External(Box::new(e)))
}
