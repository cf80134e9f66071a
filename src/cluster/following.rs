//! The MVs a scheduler plans with: those of the store a client session writes, followed. The
//! scheduler opens a session over the store (read only: the client holds its lock) and opens
//! it again whenever the store's catalog changes, so that a refreshed MV is read at its new
//! generation. Until then it plans with the MVs as they were, which are never wrong: an MV
//! whose tables changed since is stale to it as to the client (both compare the files they
//! list with those the MV was computed from), and the generation it reads stays in the store
//! until the next refresh.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::execution::SessionState;

use crate::error::{MvError, Result};
use crate::lifecycle::MvSession;
use crate::lifecycle::persist::SavedCatalog;

/// Opens the session a scheduler plans with: the base tables registered and the store
/// followed ([`MvSession::following_store`]); its MVs are restored here. Cheap (a catalog
/// read, tables listed): it is called twice per change.
pub type Open =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<MvSession>> + Send>> + Send + Sync>;

/// The session over the store as it was last seen, and the catalog it was opened at.
pub struct Following {
    open: Open,
    current: RwLock<(Arc<MvSession>, Option<SavedCatalog>)>,
}

impl Following {
    /// Follows the store of the session `open` opens (it must have one).
    pub async fn start(open: Open) -> Result<Arc<Self>> {
        let (session, seen) = open_at_catalog(&open).await?;
        Ok(Arc::new(Following {
            open,
            current: RwLock::new((Arc::new(session), seen)),
        }))
    }

    /// The state a scheduler session plans with: the tables, functions, rule and MVs of the
    /// store as last seen.
    pub fn state(&self) -> Result<SessionState> {
        Ok(self.current()?.local_state())
    }

    /// The session over the store as last seen.
    pub fn current(&self) -> Result<Arc<MvSession>> {
        self.current
            .read()
            .map(|c| Arc::clone(&c.0))
            .map_err(|_| MvError::Internal("followed session lock poisoned".into()))
    }

    /// Opens the session again if the store's catalog changed since it was opened; whether it
    /// did.
    pub async fn catch_up(&self) -> Result<bool> {
        let session = self.current()?;
        let Some(store) = session.data_dir() else {
            return Ok(false);
        };
        let now = store.load().await?;
        let seen = self
            .current
            .read()
            .map(|c| c.1.clone())
            .map_err(|_| MvError::Internal("followed session lock poisoned".into()))?;
        if now == seen {
            return Ok(false);
        }
        let (session, seen) = open_at_catalog(&self.open).await?;
        let mut current = self
            .current
            .write()
            .map_err(|_| MvError::Internal("followed session lock poisoned".into()))?;
        *current = (Arc::new(session), seen);
        Ok(true)
    }

    /// Catches up every `period`, for as long as the process runs; a failed attempt (the
    /// client writing the catalog that moment) is tried again at the next.
    pub fn keep_up(self: &Arc<Self>, period: Duration) {
        let following = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if let Err(e) = following.catch_up().await {
                    eprintln!("materialized views not reloaded: {e}");
                }
            }
        });
    }
}

/// The catalog of the store, then a session opened over it with its MVs restored: the session
/// is at that catalog or a later one, so a change after the load is seen at the next catch-up.
async fn open_at_catalog(open: &Open) -> Result<(MvSession, Option<SavedCatalog>)> {
    let probe = open().await?;
    let seen = match probe.data_dir() {
        Some(store) => store.load().await?,
        None => {
            return Err(MvError::Input(
                "the scheduler follows a store: give it the store the clients keep MVs in".into(),
            ));
        }
    };
    drop(probe);
    let session = open().await?;
    let restored = session.restore().await?;
    for (mv, e) in &restored.failed {
        eprintln!("materialized view {mv} not planned with: {e}");
    }
    Ok((session, seen))
}
