//! `mvrewrite scheduler` and `mvrewrite executor`: Ballista's scheduler and executor
//! processes (`crate::cluster`), the scheduler planning with the tables of `--data` and the
//! MVs of the `--store` the clients (`mvrewrite shell --scheduler`) keep them in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::shell;
use crate::cluster::executor::{self, ExecutorOptions};
use crate::cluster::following::{Following, Open};
use crate::cluster::scheduler;
use crate::error::{MvError, Result};
use crate::lifecycle::MvSession;

/// How often the scheduler looks for MVs created, refreshed or dropped in the store.
const CATCH_UP: Duration = Duration::from_secs(1);

/// Runs a scheduler on `bind` over the tables of `data` and the MVs of `store`, until the
/// process ends.
pub async fn run_scheduler(data: Option<PathBuf>, store: PathBuf, bind: SocketAddr) -> Result<()> {
    let location = store
        .to_str()
        .ok_or_else(|| MvError::Input(format!("{}: not a UTF-8 path", store.display())))?
        .to_string();
    let open: Open = Arc::new(move || {
        let (data, location) = (data.clone(), location.clone());
        Box::pin(async move {
            let session = MvSession::new().following_store(&location).await?;
            // Plans as its clients do (`MvSession::distributed`).
            session
                .catalog()
                .write()
                .map_err(|_| MvError::Internal("MV catalog lock poisoned".into()))?
                .answer_without_unions();
            if let Some(dir) = &data {
                shell::load_data(&session, dir).await?;
            }
            Ok(session)
        })
    });
    let following = Following::start(open).await?;
    let restored: Vec<String> = following
        .current()?
        .catalog()
        .read()
        .map(|c| c.iter().map(|mv| mv.name.clone()).collect())
        .unwrap_or_default();
    eprintln!("materialized views: {}", restored.join(", "));
    following.keep_up(CATCH_UP);
    println!("scheduler on df://{bind}");
    scheduler::run(following, bind).await
}

/// Runs an executor until the process ends.
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    executor::run(options).await
}
