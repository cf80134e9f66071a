//! Where a store is, and the few operations the store (`crate::lifecycle::store`, which says
//! what its layout means) needs of it. Paths are relative to the store's root, `/`-separated.
//!
//! - A local directory, written with `std::fs`: every file and directory is synced before the
//!   catalog names it, and the catalog is written under a temporary name, synced, then renamed
//!   into place, so that a crash of the machine, not only of the process, keeps a whole
//!   version. (`object_store`'s local store renames before it could sync, hence our own code.)
//! - An object store registered on the session's runtime (S3, GCS, Azure, `memory://`):
//!   DataFusion's object store registry, so a store is reached the way the session's tables
//!   are. Every put is atomic and a multipart upload is visible only once completed, so the
//!   same catalog-as-commit-point protocol holds without renames.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::object_store::buffered::BufWriter;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};

use crate::error::{MvError, Result};

/// A store's place.
#[derive(Clone, Debug)]
pub enum Place {
    Local(PathBuf),
    Objects {
        store: Arc<dyn ObjectStore>,
        /// The store's URL, ending in `/` (`memory:///mvs/`).
        url: String,
        root: ObjectPath,
    },
}

/// An entry of a directory (a common prefix, for an object store).
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// A storage error naming what failed where.
pub fn failed(what: &str, at: &str, e: impl std::fmt::Display) -> MvError {
    MvError::Storage(format!("{what} {at}: {e}"))
}

impl Place {
    /// `rel` as users read it: a path, or a URL.
    pub fn show(&self, rel: &str) -> String {
        match self {
            Place::Local(root) => root.join(rel).display().to_string(),
            Place::Objects { url, .. } => format!("{url}{rel}"),
        }
    }

    /// The location of directory `rel` as DataFusion's `LOCATION` takes it (ending in `/`).
    pub fn location(&self, rel: &str) -> String {
        format!("{}/", self.show(rel).trim_end_matches('/'))
    }

    fn object(root: &ObjectPath, rel: &str) -> ObjectPath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(root.clone(), |path, part| path.clone().join(part))
    }

    fn local(root: &FsPath, rel: &str) -> PathBuf {
        root.join(rel)
    }

    /// The contents of file `rel`, if it exists.
    pub async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let at = self.show(rel);
        match self {
            Place::Local(root) => match fs::read(Self::local(root, rel)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(failed("cannot read", &at, e)),
            },
            Place::Objects { store, root, .. } => match store.get(&Self::object(root, rel)).await {
                Ok(got) => Ok(Some(
                    got.bytes()
                        .await
                        .map_err(|e| failed("cannot read", &at, e))?
                        .to_vec(),
                )),
                Err(datafusion::object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(failed("cannot read", &at, e)),
            },
        }
    }

    /// Replaces file `rel` with `bytes` atomically: readers see the old contents or the new.
    pub async fn replace(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Place::Local(root) => replace_local(&Self::local(root, rel), &bytes),
            Place::Objects { store, root, .. } => store
                .put(&Self::object(root, rel), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| failed("cannot write", &self.show(rel), e)),
        }
    }

    /// Creates directory `rel` (and its parents) where directories exist.
    pub fn make_dir(&self, rel: &str) -> Result<()> {
        match self {
            Place::Local(root) => {
                let dir = Self::local(root, rel);
                fs::create_dir_all(&dir).map_err(|e| failed("cannot create", &self.show(rel), e))
            }
            Place::Objects { .. } => Ok(()),
        }
    }

    /// A new file `rel` to write Parquet into: visible whole once completed (an object's
    /// upload), or synced on completion (a local file, its name already final: nothing reads
    /// it before the catalog names it).
    pub fn create(&self, rel: &str) -> Result<Box<dyn AsyncFileWriter>> {
        match self {
            Place::Local(root) => {
                let path = Self::local(root, rel);
                let file =
                    File::create(&path).map_err(|e| failed("cannot create", &self.show(rel), e))?;
                Ok(Box::new(SyncedFile(file)))
            }
            Place::Objects { store, root, .. } => Ok(Box::new(BufWriter::new(
                Arc::clone(store),
                Self::object(root, rel),
            ))),
        }
    }

    /// The size of file `rel`.
    pub async fn size(&self, rel: &str) -> Result<u64> {
        let at = self.show(rel);
        match self {
            Place::Local(root) => fs::metadata(Self::local(root, rel))
                .map(|m| m.len())
                .map_err(|e| failed("cannot open", &at, e)),
            Place::Objects { store, root, .. } => store
                .head(&Self::object(root, rel))
                .await
                .map(|m| m.size)
                .map_err(|e| failed("cannot open", &at, e)),
        }
    }

    /// Bytes `range` of file `rel`.
    async fn read_range(&self, rel: &str, range: Range<u64>) -> Result<Bytes> {
        let at = self.show(rel);
        match self {
            Place::Local(root) => {
                let mut file = File::open(Self::local(root, rel))
                    .map_err(|e| failed("cannot open", &at, e))?;
                let mut bytes = vec![0; (range.end - range.start) as usize];
                file.seek(SeekFrom::Start(range.start))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(|e| failed("cannot read", &at, e))?;
                Ok(Bytes::from(bytes))
            }
            Place::Objects { store, root, .. } => store
                .get_range(&Self::object(root, rel), range)
                .await
                .map_err(|e| failed("cannot read", &at, e)),
        }
    }

    /// The xxHash32 of file `rel`, `size` bytes long, read a few megabytes at a time: a large
    /// MV is never held in memory whole.
    pub async fn checksum(&self, rel: &str, size: u64) -> Result<u32> {
        const CHUNK: u64 = 8 << 20;
        let mut hash = twox_hash::XxHash32::with_seed(0);
        let mut start = 0;
        while start < size {
            let end = (start + CHUNK).min(size);
            std::hash::Hasher::write(&mut hash, &self.read_range(rel, start..end).await?);
            start = end;
        }
        Ok(hash.finish_32())
    }

    /// The Parquet footer of file `rel`, `size` bytes long: its metadata and Arrow schema,
    /// read with two ranged reads whatever the place.
    pub async fn footer(&self, rel: &str, size: u64) -> Result<ArrowReaderMetadata> {
        let at = self.show(rel);
        let damaged = |e: ParquetError| failed("damaged file", &at, e);
        const TAIL: u64 = 8;
        if size < TAIL {
            return Err(failed("damaged file", &at, "shorter than a Parquet footer"));
        }
        let tail = self.read_range(rel, size - TAIL..size).await?;
        let tail: [u8; TAIL as usize] = tail[..].try_into().unwrap_or_default();
        let length = FooterTail::try_new(&tail)
            .map_err(damaged)?
            .metadata_length() as u64;
        if length + TAIL > size {
            return Err(failed(
                "damaged file",
                &at,
                "its footer is longer than the file",
            ));
        }
        let metadata = self
            .read_range(rel, size - TAIL - length..size - TAIL)
            .await?;
        let metadata = ParquetMetaDataReader::decode_metadata(&metadata).map_err(damaged)?;
        ArrowReaderMetadata::try_new(Arc::new(metadata), Default::default()).map_err(damaged)
    }

    /// Makes file `to` hold what `from` holds, sharing it where the place can: a hard link
    /// (copied and synced where links are refused), a server-side copy.
    pub async fn share(&self, from: &str, to: &str) -> Result<()> {
        let at = self.show(from);
        match self {
            Place::Local(root) => {
                let (src, dst) = (Self::local(root, from), Self::local(root, to));
                if fs::hard_link(&src, &dst).is_err() {
                    fs::copy(&src, &dst).map_err(|e| failed("cannot copy", &at, e))?;
                    File::open(&dst)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| failed("cannot sync", &self.show(to), e))?;
                }
                Ok(())
            }
            Place::Objects { store, root, .. } => store
                .copy(&Self::object(root, from), &Self::object(root, to))
                .await
                .map_err(|e| failed("cannot copy", &at, e)),
        }
    }

    /// The entries of directory `rel` (none when it does not exist).
    pub async fn entries(&self, rel: &str) -> Result<Vec<Entry>> {
        let at = self.show(rel);
        match self {
            Place::Local(root) => {
                let dir = match fs::read_dir(Self::local(root, rel)) {
                    Ok(dir) => dir,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(failed("cannot list", &at, e)),
                };
                Ok(dir
                    .filter_map(|e| e.ok())
                    .map(|e| Entry {
                        name: e.file_name().to_string_lossy().to_string(),
                        // Not following links: `current` is a link, not a directory to list.
                        is_dir: e.file_type().is_ok_and(|t| t.is_dir()),
                    })
                    .collect())
            }
            Place::Objects { store, root, .. } => {
                let prefix = Self::object(root, rel);
                let listed = store
                    .list_with_delimiter(Some(&prefix))
                    .await
                    .map_err(|e| failed("cannot list", &at, e))?;
                let name = |p: &ObjectPath| p.filename().unwrap_or_default().to_string();
                let dirs = listed.common_prefixes.iter().map(|p| Entry {
                    name: name(p),
                    is_dir: true,
                });
                let files = listed.objects.iter().map(|o| Entry {
                    name: name(&o.location),
                    is_dir: false,
                });
                Ok(dirs.chain(files).collect())
            }
        }
    }

    /// Removes directory `rel` and everything in it (links themselves, never what they point
    /// at).
    pub async fn remove_all(&self, rel: &str) -> Result<()> {
        let at = self.show(rel);
        match self {
            Place::Local(root) => match fs::remove_dir_all(Self::local(root, rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(failed("cannot remove", &at, e))
                }
                _ => Ok(()),
            },
            Place::Objects { store, root, .. } => {
                let prefix = Self::object(root, rel);
                let mut listed = store.list(Some(&prefix));
                while let Some(object) = listed.next().await {
                    let object = object.map_err(|e| failed("cannot list", &at, e))?;
                    store
                        .delete(&object.location)
                        .await
                        .map_err(|e| failed("cannot remove", &at, e))?;
                }
                Ok(())
            }
        }
    }

    /// Makes the entries of directory `rel` durable (local directories; an object store's
    /// puts are).
    pub fn sync_dir(&self, rel: &str) -> Result<()> {
        match self {
            Place::Local(root) => File::open(Self::local(root, rel))
                .and_then(|d| d.sync_all())
                .map_err(|e| failed("cannot sync", &self.show(rel), e)),
            Place::Objects { .. } => Ok(()),
        }
    }

    /// Points link `rel` at `target` (relative to the link's directory), replacing it
    /// atomically: local directories on Unix only, best effort. An object store has no links.
    pub fn point(&self, rel: &str, target: &str) {
        #[cfg(unix)]
        if let Place::Local(root) = self {
            let link = Self::local(root, rel);
            let tmp = link.with_extension("tmp");
            let _ = fs::remove_file(&tmp);
            if std::os::unix::fs::symlink(target, &tmp).is_ok() {
                let _ = fs::rename(&tmp, link);
            }
        }
        #[cfg(not(unix))]
        let _ = (rel, target);
    }
}

/// Writes `path` through a temporary file renamed into place once written and synced, then
/// syncs the directory, so the rename itself is durable.
fn replace_local(path: &FsPath, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let show = |p: &FsPath| p.display().to_string();
    let result = File::create(&tmp)
        .map_err(|e| failed("cannot create", &show(&tmp), e))
        .and_then(|mut f| {
            f.write_all(bytes)
                .map_err(|e| failed("cannot write", &show(&tmp), e))?;
            f.sync_all()
                .map_err(|e| failed("cannot sync", &show(&tmp), e))
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| failed("cannot rename", &show(&tmp), e)))
        .and_then(|()| match path.parent() {
            Some(dir) => File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| failed("cannot sync", &show(dir), e)),
            None => Ok(()),
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A local file Parquet is written into, synced when complete.
struct SyncedFile(File);

impl AsyncFileWriter for SyncedFile {
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        let written = self.0.write_all(&bytes).map_err(ParquetError::from);
        async move { written }.boxed()
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        let synced = self.0.sync_all().map_err(ParquetError::from);
        async move { synced }.boxed()
    }
}
