//! An executor for a cluster mvrewrite plans on: Ballista's executor process with
//! mvrewrite's functions (CarbonData's and ClickHouse's time buckets) in its registry, so
//! that any plan naming them runs there.

use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

use crate::cluster::scheduler::ballista_error;
use crate::error::Result;
use crate::lifecycle::MvSession;

/// Where an executor listens and which scheduler it serves.
#[derive(Clone, Debug)]
pub struct ExecutorOptions {
    /// The scheduler's host and gRPC port.
    pub scheduler: (String, u16),
    /// The address to bind (the host other nodes reach it at) and the port of its Flight
    /// service.
    pub bind: (String, u16),
    /// The port of its gRPC service.
    pub grpc_port: u16,
    /// Task slots (cores used).
    pub slots: usize,
    /// Where shuffle files go (a temporary directory when `None`).
    pub work_dir: Option<String>,
}

/// Runs an executor until the process ends.
pub async fn run(options: ExecutorOptions) -> Result<()> {
    let functions = MvSession::new().local_state();
    let config = ExecutorProcessConfig {
        scheduler_host: options.scheduler.0,
        scheduler_port: options.scheduler.1,
        bind_host: options.bind.0,
        port: options.bind.1,
        grpc_port: options.grpc_port,
        vcores: options.slots,
        work_dir: options.work_dir,
        override_function_registry: Some(Arc::new((&functions).into())),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista_error)
}
