//! Watching a table on local files, so that its last listing stands until a file changes: what
//! the default listing policy (`FileListing::Watch`) rests on.
//!
//! On Linux, every directory of the table is watched with inotify. The kernel queues an event
//! before the syscall that creates, writes, renames or removes a file in a watched directory
//! returns, whichever process made it, so draining the queue without blocking when a query is
//! planned sees every change completed before: no event since the last listing means the
//! listing still stands. An event (or the queue overflowing, a watched directory removed, the
//! table's directory resolving to another one) makes the next query list again; just before
//! that listing the watches are brought up to date (new partition directories), so that no
//! change falls between the watch and the listing.
//!
//! Where events cannot be trusted, the table is listed for every query instead, as with
//! `always`:
//! - object stores, and file systems another machine or layer may write without this kernel
//!   seeing it (NFS, SMB, FUSE, 9p, overlay...): only local disk file systems and tmpfs are
//!   watched (`statfs`);
//! - a symbolic link, a file with other hard links, or another file system mounted inside the
//!   table's directories: written through another path, they raise no event in them;
//! - an inotify instance or watch the system refuses (its limits).
//!
//! Not seen, by inotify's own limits (inotify(7)): writes through a shared memory mapping, and a
//! file system mounted over one of the table's directories after it was watched.
//!
//! Files named by events are remembered until the next listing: a file rewritten in place with
//! the same size within the file system's clock tick lists the same, and is still reported
//! rewritten.

use std::collections::BTreeSet;

/// What a listing made while watching covers: the changes drained before it began, and the
/// files events named among them (listing paths).
#[derive(Clone, Debug, Default)]
pub(crate) struct Covered {
    changes: u64,
    pub(crate) touched: BTreeSet<String>,
}

#[cfg(target_os = "linux")]
pub(crate) use linux::Watch;

/// Elsewhere nothing is watched: every listing policy that would watch lists instead.
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Default)]
pub(crate) struct Watch;

#[cfg(not(target_os = "linux"))]
impl Watch {
    pub(crate) fn unchanged(&self) -> bool {
        false
    }

    pub(crate) fn before_listing(
        &self,
        _roots: Option<Vec<std::path::PathBuf>>,
    ) -> Option<Covered> {
        None
    }

    pub(crate) fn covered(&self, _covered: &Covered) {}
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{BTreeSet, HashMap};
    use std::ffi::OsStr;
    use std::mem::MaybeUninit;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, MutexGuard};

    use datafusion::object_store::path::Path as StorePath;
    use rustix::fd::OwnedFd;
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    use super::Covered;

    /// `statfs` magic numbers of the file systems whose every write goes through this kernel:
    /// ext2/3/4, XFS, Btrfs, tmpfs, F2FS, ZFS.
    const LOCAL_FILE_SYSTEMS: [u32; 6] = [
        0xEF53,
        0x5846_5342,
        0x9123_683E,
        0x0102_1994,
        0xF2F5_2010,
        0x2FC1_2FC1,
    ];

    /// Every change to a directory's entries or to a file's content or times. Not reads: the
    /// table's own scans must not look like changes.
    fn events() -> WatchFlags {
        WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MODIFY
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::ATTRIB
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR
    }

    /// The watch over one table's directories; clones of its `FileTable` share it.
    #[derive(Debug, Default)]
    pub(crate) struct Watch(Mutex<State>);

    #[derive(Debug, Default)]
    struct State {
        /// `None` until listed under `watch`, and while events cannot be trusted.
        watching: Option<Watching>,
        /// Drains that found events (or lost the watch), and how many of them the recorded
        /// listing covers: it stands while the two are equal. They outlive a `Watching`, so a
        /// listing made under a watch since replaced never covers the new one's changes.
        changes: u64,
        covered: u64,
        /// Files events named since the last listing began.
        touched: BTreeSet<String>,
    }

    #[derive(Debug)]
    struct Watching {
        fd: OwnedFd,
        /// The directory of each watch, to name the files its events name.
        dirs: HashMap<i32, PathBuf>,
        /// The table's directories and the (device, inode) each resolved to when watched.
        roots: Vec<(PathBuf, (u64, u64))>,
    }

    fn identity(path: &Path) -> Option<(u64, u64)> {
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }

    impl Watch {
        fn state(&self) -> MutexGuard<'_, State> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// Whether no file of the table changed since the recorded listing began: drains the
        /// events queued so far without blocking. False when the table is not watched.
        pub(crate) fn unchanged(&self) -> bool {
            let mut state = self.state();
            let State {
                watching,
                changes,
                touched,
                ..
            } = &mut *state;
            let Some(w) = watching else {
                return false;
            };
            match w.drain(touched) {
                Ok(found) if w.roots_unmoved() => *changes += u64::from(found),
                _ => {
                    *watching = None;
                    *changes += 1;
                }
            }
            state.watching.is_some() && state.changes == state.covered
        }

        /// Brings the watch up to date just before the table is listed from `roots` (its
        /// directories; `None` on an object store), and says what that listing will cover;
        /// `None` when it cannot be watched (listed every time then).
        pub(crate) fn before_listing(&self, roots: Option<Vec<PathBuf>>) -> Option<Covered> {
            let mut state = self.state();
            let current = state.watching.take().filter(Watching::roots_unmoved);
            let watching = match current {
                Some(w) => Some(w),
                None => Watching::new(roots?),
            };
            let mut w = watching?;
            w.add_watches().ok()?;
            let found = w.drain(&mut state.touched).ok()?;
            state.changes += u64::from(found);
            state.watching = Some(w);
            Some(Covered {
                changes: state.changes,
                touched: std::mem::take(&mut state.touched),
            })
        }

        /// Records that the listing `covered` was made for was recorded.
        pub(crate) fn covered(&self, covered: &Covered) {
            let mut state = self.state();
            state.covered = state.covered.max(covered.changes);
        }
    }

    impl Watching {
        /// An inotify instance for `roots`, if they are directories on local file systems.
        fn new(roots: Vec<PathBuf>) -> Option<Watching> {
            let local = |root: &PathBuf| {
                rustix::fs::statfs(root.as_path())
                    .is_ok_and(|s| LOCAL_FILE_SYSTEMS.contains(&(s.f_type as u32)))
            };
            if roots.is_empty() || !roots.iter().all(local) {
                return None;
            }
            let roots = roots
                .into_iter()
                .map(|root| identity(&root).map(|id| (root, id)))
                .collect::<Option<Vec<_>>>()?;
            let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC).ok()?;
            Some(Watching {
                fd,
                dirs: HashMap::new(),
                roots,
            })
        }

        /// Whether each directory still resolves to the one watched (not replaced, renamed
        /// away or mounted over).
        fn roots_unmoved(&self) -> bool {
            self.roots
                .iter()
                .all(|(root, id)| identity(root) == Some(*id))
        }

        /// Watches every directory under the roots not watched yet, each before it is read,
        /// so that an entry made after the read raises an event. Fails on what would bypass
        /// the watch: a symbolic link, a hard-linked file, another file system.
        fn add_watches(&mut self) -> Result<(), String> {
            for (root, (device, _)) in &self.roots {
                let mut pending = vec![root.clone()];
                while let Some(dir) = pending.pop() {
                    let wd = inotify::add_watch(&self.fd, dir.as_path(), events())
                        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
                    self.dirs.insert(wd, dir.clone());
                    let entries = std::fs::read_dir(&dir).map_err(|e| e.to_string())?;
                    for entry in entries {
                        let entry = entry.map_err(|e| e.to_string())?;
                        // Gone since the read: its removal raised an event already.
                        let Ok(meta) = entry.metadata() else { continue };
                        let bypass = meta.file_type().is_symlink()
                            || meta.dev() != *device
                            || (!meta.is_dir() && meta.nlink() > 1);
                        if bypass {
                            return Err(format!("{} bypasses a watch", entry.path().display()));
                        }
                        if meta.is_dir() {
                            pending.push(entry.path());
                        }
                    }
                }
            }
            Ok(())
        }

        /// Reads the queued events without blocking, noting the files they name; whether there
        /// were any.
        fn drain(&mut self, touched: &mut BTreeSet<String>) -> Result<bool, Errno> {
            let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
            let mut reader = inotify::Reader::new(&self.fd, &mut buffer);
            let mut found = false;
            loop {
                let event = match reader.next() {
                    Ok(event) => event,
                    Err(Errno::WOULDBLOCK) => return Ok(found),
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e),
                };
                found = true;
                let flags = event.events();
                if flags.contains(ReadFlags::IGNORED) {
                    self.dirs.remove(&event.wd());
                }
                let named = event
                    .file_name()
                    .filter(|_| !flags.contains(ReadFlags::ISDIR));
                if let (Some(dir), Some(name)) = (self.dirs.get(&event.wd()), named) {
                    let path = dir.join(OsStr::from_bytes(name.to_bytes()));
                    // The path a listing of the local file system gives it.
                    if let Ok(key) = StorePath::from_absolute_path(&path) {
                        touched.insert(key.to_string());
                    }
                }
            }
        }
    }
}
