//! A Ballista cluster in this process: a scheduler planning with the session's own tables,
//! functions, rule and MVs (the same catalog, so both judge freshness alike), and executors
//! reading its tables and MVs from their files; all on loopback ports the system chooses.
//! For tests, and to try a query on a cluster without starting one.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_scheduler::standalone::new_standalone_scheduler_with_builder;
use datafusion::execution::SessionState;

use crate::cluster::client::on_cluster;
use crate::cluster::scheduler::{ballista_error, session_builder};
use crate::error::{MvError, Result};
use crate::frontend::rule_options::MvRewriteOptions;
use crate::lifecycle::MvSession;

/// How many times, 100 ms apart, the in-process scheduler is tried before giving up.
const CONNECT_ATTEMPTS: usize = 50;

/// `session` with its plans run on a cluster started in this process with `executors`
/// executors of `slots` task slots each, and the scheduler's URL (`df://localhost:port`),
/// which other clients may connect to. The session must keep its MVs in a store (a local
/// directory is enough: the executors are in this process).
pub async fn standalone(
    session: MvSession,
    executors: usize,
    slots: usize,
) -> Result<(MvSession, String)> {
    let local = session.local_state();
    let scheduler = start_scheduler(&local).await?;
    let mut client = None;
    for _ in 0..CONNECT_ATTEMPTS {
        match SchedulerGrpcClient::connect(scheduler.clone()).await {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let client = client.ok_or_else(|| {
        MvError::Internal(format!(
            "the in-process scheduler at {scheduler} did not answer"
        ))
    })?;
    for _ in 0..executors {
        ballista_executor::new_standalone_executor_from_state(client.clone(), slots, &local)
            .await
            .map_err(ballista_error)?;
    }
    let url = scheduler.replacen("http://", "df://", 1);
    Ok((
        session.distributed(|state| on_cluster(state, scheduler))?,
        url,
    ))
}

/// A scheduler planning with `local` (the session's state before it was sent to the
/// cluster); its address.
async fn start_scheduler(local: &SessionState) -> Result<String> {
    let planning = local.clone();
    // With mvrewrite's settings, which the client sends with its plans (`rule_options.rs`).
    let config = local
        .config()
        .clone()
        .upgrade_for_ballista()
        .with_option_extension(MvRewriteOptions::default());
    let address = new_standalone_scheduler_with_builder(
        session_builder(move || Ok(planning.clone())),
        Arc::new(move || config.clone()),
        BallistaCodec::default(),
    )
    .await
    .map_err(ballista_error)?;
    Ok(format!("http://localhost:{}", address.port()))
}
