//! The store's lock: one session writes a store at a time, since each replaces the catalog and
//! removes the generations it does not name.
//!
//! In a local directory it is an advisory lock on `.lock`, which the operating system releases
//! when the process dies. An object store has no such locks: `.lock` is an object created only
//! if absent (a conditional put, which S3, GCS, Azure and the memory store all offer) naming
//! its holder, and deleted when the session ends (in the background: dropping cannot wait; a
//! session of this process opening the store meanwhile waits for it). A lock whose holder is
//! known to be gone (a session of this process already dropped, a process of this host no
//! longer running) is taken over; any other is refused, with what to remove if its holder died
//! elsewhere.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde_json::{Value, json};

use crate::error::Result;
use crate::lifecycle::place::{Place, failed};

const LOCK: &str = ".lock";

/// The object-store locks this process holds, by URL, and whether each is being released: a
/// lock naming this process that is not among them was left by a session already dropped.
static HELD: Mutex<BTreeMap<String, Held>> = Mutex::new(BTreeMap::new());

#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Live,
    Releasing,
}

/// Tells the locks of one process apart.
static TOKENS: AtomicU64 = AtomicU64::new(1);

/// How long a session waits for a lock this process is releasing.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// A held lock, released when dropped.
#[derive(Debug)]
pub enum StoreLock {
    /// The open file holding the advisory lock.
    Local { _file: File },
    Object {
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
        url: String,
        token: u64,
    },
}

impl StoreLock {
    /// Takes the lock of the store at `place`.
    pub async fn take(place: &Place) -> Result<StoreLock> {
        let at = place.show(LOCK);
        let refused = |holder: &str| {
            failed(
                "another session writes this store (its lock is held",
                &at,
                format!("{holder}); if that session is gone, remove {at}"),
            )
        };
        match place {
            Place::Local(root) => {
                let file =
                    File::create(root.join(LOCK)).map_err(|e| failed("cannot create", &at, e))?;
                file.try_lock()
                    .map_err(|_| refused("by a running process"))?;
                Ok(StoreLock::Local { _file: file })
            }
            Place::Objects { store, url, root } => {
                let path = root.clone().join(LOCK);
                let key = format!("{url}{LOCK}");
                let token = TOKENS.fetch_add(1, Ordering::Relaxed);
                let mine = serde_json::to_vec(&holder(token)).unwrap_or_default();
                let create = || PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                let waited = std::time::Instant::now();
                loop {
                    match store
                        .put_opts(&path, PutPayload::from(mine.clone()), create())
                        .await
                    {
                        Ok(_) => break,
                        Err(datafusion::object_store::Error::AlreadyExists { .. }) => {}
                        Err(e) => return Err(failed("cannot create", &at, e)),
                    }
                    if held(&key) == Some(Held::Releasing) && waited.elapsed() < RELEASE_WAIT {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    let found = store
                        .get(&path)
                        .await
                        .map_err(|e| failed("cannot read", &at, e))?;
                    let version = datafusion::object_store::UpdateVersion {
                        e_tag: found.meta.e_tag.clone(),
                        version: found.meta.version.clone(),
                    };
                    let bytes = found
                        .bytes()
                        .await
                        .map_err(|e| failed("cannot read", &at, e))?;
                    let theirs: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if !gone(&theirs, &key) {
                        return Err(refused(&describe(&theirs)));
                    }
                    // Conditional on the lock read, so two sessions taking over the same lock
                    // cannot both succeed.
                    let over = PutOptions {
                        mode: PutMode::Update(version),
                        ..Default::default()
                    };
                    store
                        .put_opts(&path, PutPayload::from(mine), over)
                        .await
                        .map_err(|_| refused("by a session that took it over just now"))?;
                    break;
                }
                if let Ok(mut held) = HELD.lock() {
                    held.insert(key.clone(), Held::Live);
                }
                Ok(StoreLock::Object {
                    store: Arc::clone(store),
                    path,
                    url: key,
                    token,
                })
            }
        }
    }
}

fn held(key: &str) -> Option<Held> {
    HELD.lock().ok().and_then(|h| h.get(key).copied())
}

fn forget(key: &str) {
    if let Ok(mut held) = HELD.lock() {
        held.remove(key);
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let StoreLock::Object {
            store,
            path,
            url,
            token,
        } = self
        else {
            return;
        };
        // Deleting needs the runtime the store's client runs on; without one the lock stays,
        // and the next session of this process takes it over (its holder is gone).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            forget(url);
            return;
        };
        if let Ok(mut held) = HELD.lock() {
            held.insert(url.clone(), Held::Releasing);
        }
        let (store, path, url, token) = (Arc::clone(store), path.clone(), url.clone(), *token);
        runtime.spawn(async move {
            // Only our own lock: never one a session took over since.
            if let Ok(found) = store.get(&path).await
                && let Ok(bytes) = found.bytes().await
                && serde_json::from_slice::<Value>(&bytes)
                    .is_ok_and(|v| v.get("token").and_then(Value::as_u64) == Some(token))
            {
                let _ = store.delete(&path).await;
            }
            forget(&url);
        });
    }
}

/// Who holds a lock: this process, on this host, and which of its locks it is.
fn holder(token: u64) -> Value {
    json!({ "host": host(), "pid": std::process::id(), "token": token })
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Whether the holder of a lock is known to be gone: a session of this process no longer
/// holding it, or a process of this host that no longer runs (Linux, where `/proc` says).
fn gone(holder: &Value, key: &str) -> bool {
    let (Some(their_host), Some(pid)) = (
        holder.get("host").and_then(Value::as_str),
        holder.get("pid").and_then(Value::as_u64),
    ) else {
        return false;
    };
    if their_host.is_empty() || their_host != host() {
        return false;
    }
    if pid == u64::from(std::process::id()) {
        return held(key).is_none();
    }
    cfg!(target_os = "linux")
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn describe(holder: &Value) -> String {
    match (
        holder.get("host").and_then(Value::as_str),
        holder.get("pid").and_then(Value::as_u64),
    ) {
        (Some(host), Some(pid)) => format!("by process {pid} on {host}"),
        _ => "by an unknown holder".to_string(),
    }
}
