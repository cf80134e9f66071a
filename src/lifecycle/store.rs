//! The store: a directory (or an object-store prefix) where each MV's rows are Parquet files
//! any engine can read.
//!
//! ```text
//! <store>/catalog.json           the MVs, and the generation each one is at (the commit point)
//! <store>/.lock                  held by the one session that writes the store
//! <store>/<mv>/<n>/<k>.parquet   generation n of the MV: its complete, final rows
//! <store>/<mv>/current           a symbolic link to the generation the catalog names (local, Unix)
//! ```
//!
//! Every refresh publishes a new, immutable generation: a directory holding the MV's final
//! rows (never partial aggregates: an aggregate MV's incremental refresh merges its new rows
//! into the previous generation's). Its files are written and synced, then `catalog.json` is
//! replaced atomically to name it: that rename is the commit. A session opening the store reads
//! only generations the catalog names, so a refresh cut short (an error, a killed process)
//! leaves the previous generation as the MV's rows; garbage collection removes what it left.
//!
//! Why generations rather than files added to one directory: a reader (another engine, a
//! Ballista executor) that lists a generation's directory sees one whole version, and a file
//! once published never changes, so caches keyed by path stay right. A generation of an MV
//! computed row by row shares its previous generation's files through hard links (copied where
//! links are refused; a server-side copy in an object store), so an incremental refresh writes only its new rows. File `<k>.parquet`
//! was first written by generation `k`, and generation numbers come from one counter for the
//! whole store, saved in the catalog: a published path is never reused, even by an MV dropped
//! and created again. The generation a refresh replaced stays until the next refresh, so that
//! queries already reading it finish; `current` gives other engines one stable location; the
//! lock keeps a second session from collecting a generation the first is writing.
//!
//! A store is a local directory or a URL of an object store registered on the session's
//! runtime (`crate::lifecycle::place` holds the operations that differ between the two; the
//! lock is in `crate::lifecycle::store_lock`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::object_store::local::LocalFileSystem;
use futures::StreamExt;
use futures::future::BoxFuture;
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::AsyncFileWriter;

use crate::error::Result;
use crate::lifecycle::place::{Place, failed};
use crate::lifecycle::store_lock::StoreLock;

/// One Parquet file of a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub name: String,
    pub size: u64,
    pub rows: u64,
    /// The xxHash32 of its bytes, computed as they were written, checked on restore: the
    /// `parquet` crate writes no page checksums, so damage that keeps a file's size would
    /// otherwise be read as rows (`None` in catalogs saved before checksums were kept).
    pub checksum: Option<u32>,
}

/// A published generation of an MV: its number and its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub number: u64,
    pub files: Vec<StoredFile>,
}

impl Generation {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// A store (the data directory of [`crate::MvSession::with_data_dir`], or the URL of
/// [`crate::MvSession::with_store`]).
#[derive(Clone, Debug)]
pub struct DataDir {
    place: Place,
    /// The lock, held while a session writes here (released with the last clone).
    lock: Option<Arc<StoreLock>>,
}

impl DataDir {
    /// Opens (creating) a store in a local directory, to read it. A session writing it also
    /// locks it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let place = Place::Local(root.into());
        place.make_dir("")?;
        Ok(DataDir { place, lock: None })
    }

    /// Opens the store at `location`: a local path, a `file://` URL, or the URL of an object
    /// store registered on `runtime` (`s3://bucket/mvs/`, `memory:///mvs/`).
    pub fn open_at(location: &str, runtime: &RuntimeEnv) -> Result<Self> {
        let url = ListingTableUrl::parse(location)?;
        if url.scheme() == "file" {
            // `object_store`'s local store turns an object path back into a file path, decoding
            // what a URL encodes.
            let path = LocalFileSystem::new()
                .path_to_filesystem(url.prefix())
                .map_err(|e| failed("not a local path:", location, e))?;
            return Self::open(path);
        }
        let store = runtime.object_store(url.object_store())?;
        let root = url.prefix().clone();
        let shown = format!("{}/", url.as_str().trim_end_matches('/'));
        let place = Place::Objects {
            store,
            url: shown,
            root,
        };
        Ok(DataDir { place, lock: None })
    }

    /// Takes the store's lock (`crate::lifecycle::store_lock`).
    pub(crate) async fn lock(&mut self) -> Result<()> {
        self.lock = Some(Arc::new(StoreLock::take(&self.place).await?));
        Ok(())
    }

    /// Whether this session holds the store's lock: only then does it write there (a
    /// session following the store, `MvSession::following_store`, only reads).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// Where the store is: a path, or a URL.
    pub fn location(&self) -> String {
        self.place.location("")
    }

    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    /// The directory holding `mv`'s generations, relative to the store: its name with every
    /// byte but lower-case letters, digits and `_` escaped as `-XX`, so that distinct names
    /// never share a directory (upper case included, for file systems that ignore case), and
    /// the name is the same in a path, a URL and an object key (none of which escapes `-`).
    fn mv_dir(mv: &str) -> String {
        mv.bytes()
            .map(|b| {
                if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' {
                    char::from(b).to_string()
                } else {
                    format!("-{b:02X}")
                }
            })
            .collect()
    }

    fn generation_dir(mv: &str, number: u64) -> String {
        format!("{}/{number}", Self::mv_dir(mv))
    }

    /// Where `mv`'s generations are, as DataFusion's `LOCATION` takes it.
    pub fn mv_location(&self, mv: &str) -> String {
        self.place.location(&Self::mv_dir(mv))
    }

    /// Where generation `number` of `mv` is, as DataFusion's `LOCATION` takes it.
    pub fn generation_location(&self, mv: &str, number: u64) -> String {
        self.place.location(&Self::generation_dir(mv, number))
    }

    /// Starts writing generation `number` of `mv`. Nothing reads it until the catalog names
    /// it. The session's counter never hands out a number the catalog named, so a generation
    /// already there is one a refresh cut short left: it is replaced.
    pub async fn new_generation(&self, mv: &str, number: u64) -> Result<GenerationWriter> {
        let dir = Self::generation_dir(mv, number);
        if self.is_generation(&dir).await {
            self.place.remove_all(&dir).await?;
        }
        self.place.make_dir(&dir)?;
        Ok(GenerationWriter {
            place: self.place.clone(),
            mv: mv.to_string(),
            generation: Generation {
                number,
                files: Vec::new(),
            },
        })
    }

    /// Whether `generation` of `mv` is whole: every file there, of its size and checksum, with
    /// a Parquet footer whose columns are `schema`'s. What a restore checks before the MV
    /// answers: it reads every byte of the MV once.
    pub async fn check(&self, mv: &str, generation: &Generation, schema: &SchemaRef) -> Result<()> {
        let dir = Self::generation_dir(mv, generation.number);
        for f in &generation.files {
            let file = format!("{dir}/{}", f.name);
            let at = self.place.show(&file);
            let size = self.place.size(&file).await?;
            if size != f.size {
                let sizes = format!("{size} bytes, {} written", f.size);
                return Err(failed("damaged file", &at, sizes));
            }
            if let Some(written) = f.checksum {
                let found = self.place.checksum(&file, size).await?;
                if found != written {
                    let sums = format!("checksum {found:08x}, {written:08x} written");
                    return Err(failed("damaged file", &at, sums));
                }
            }
            let meta = self.place.footer(&file, size).await?;
            let names = |s: &SchemaRef| -> Vec<String> {
                s.fields().iter().map(|f| f.name().clone()).collect()
            };
            let rows = meta.metadata().file_metadata().num_rows() as u64;
            if names(meta.schema()) != names(schema) || rows != f.rows {
                let what = "its columns or row count are not the MV's";
                return Err(failed("damaged file", &at, what));
            }
        }
        Ok(())
    }

    /// Points `<mv>/current` at `number` (after the catalog named it): a stable location
    /// other engines can read the MV at, in a local store. Best effort: the catalog is what
    /// counts.
    pub fn point_current(&self, mv: &str, number: u64) {
        let link = format!("{}/current", Self::mv_dir(mv));
        self.place.point(&link, &number.to_string());
    }

    /// Removes every generation the catalog does not name: `keep` maps each MV the catalog
    /// holds to its current generation (`None`: keep all of its files). The directories of
    /// MVs it does not hold lose their generations, and go once empty. Only directories that
    /// look like generations (a number, holding nothing but `<n>.parquet` files) are removed,
    /// so nothing else kept there is touched. A failure leaves garbage, never a wrong answer.
    pub async fn collect_garbage(&self, keep: &BTreeMap<String, Option<u64>>) {
        let kept: BTreeMap<String, Option<u64>> =
            keep.iter().map(|(mv, g)| (Self::mv_dir(mv), *g)).collect();
        let Ok(entries) = self.place.entries("").await else {
            return;
        };
        for dir in entries.into_iter().filter(|e| e.is_dir).map(|e| e.name) {
            match kept.get(&dir) {
                Some(None) => {}
                Some(Some(current)) => self.remove_generations(&dir, &[Some(*current)]).await,
                None => {
                    self.remove_generations(&dir, &[]).await;
                    if let Place::Local(root) = &self.place {
                        let dir = root.join(&dir);
                        for link in ["current", "current.tmp"].map(|l| dir.join(l)) {
                            if std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_symlink()) {
                                let _ = std::fs::remove_file(link);
                            }
                        }
                        let _ = std::fs::remove_dir(&dir);
                    }
                }
            }
        }
    }

    /// Removes `mv`'s generations but those in `keep`.
    pub async fn remove_old_generations(&self, mv: &str, keep: &[Option<u64>]) {
        self.remove_generations(&Self::mv_dir(mv), keep).await;
    }

    /// Removes everything of `mv` (dropped).
    pub async fn remove_mv(&self, mv: &str) {
        let _ = self.place.remove_all(&Self::mv_dir(mv)).await;
    }

    /// Removes the generation directories in `dir` but those in `keep`.
    async fn remove_generations(&self, dir: &str, keep: &[Option<u64>]) {
        let Ok(entries) = self.place.entries(dir).await else {
            return;
        };
        for e in entries.into_iter().filter(|e| e.is_dir) {
            let Ok(number) = e.name.parse::<u64>() else {
                continue;
            };
            let generation = format!("{dir}/{}", e.name);
            if !keep.contains(&Some(number)) && self.is_generation(&generation).await {
                let _ = self.place.remove_all(&generation).await;
            }
        }
    }

    /// Whether `dir` holds only what a generation holds (Parquet files named by a number), so
    /// that removing it removes nothing but a generation.
    async fn is_generation(&self, dir: &str) -> bool {
        let Ok(entries) = self.place.entries(dir).await else {
            return false;
        };
        entries.iter().all(|e| {
            !e.is_dir
                && e.name
                    .strip_suffix(".parquet")
                    .is_some_and(|n| n.parse::<u64>().is_ok())
        })
    }
}

/// A generation being written: files are added, then it is synced and published by the
/// catalog that names it.
pub struct GenerationWriter {
    place: Place,
    mv: String,
    generation: Generation,
}

impl GenerationWriter {
    /// Its number.
    pub fn number(&self) -> u64 {
        self.generation.number
    }

    fn dir(&self) -> String {
        DataDir::generation_dir(&self.mv, self.generation.number)
    }

    /// Where it is, as DataFusion's `LOCATION` takes it.
    pub fn location(&self) -> String {
        self.place.location(&self.dir())
    }

    /// Adds the files of `previous` (a generation of the same MV) unchanged: hard links, or
    /// copies where the place refuses links.
    pub async fn share(&mut self, previous: &Generation) -> Result<()> {
        let from = DataDir::generation_dir(&self.mv, previous.number);
        for f in &previous.files {
            let (src, dst) = (
                format!("{from}/{}", f.name),
                format!("{}/{}", self.dir(), f.name),
            );
            self.place.share(&src, &dst).await?;
            self.generation.files.push(f.clone());
        }
        Ok(())
    }

    /// Writes `stream`'s rows (renamed to `schema`) as this generation's own file, as they
    /// come: an MV larger than memory is never held whole.
    pub async fn write(
        &mut self,
        schema: &SchemaRef,
        mut stream: SendableRecordBatchStream,
    ) -> Result<()> {
        let (file, mut writer) = self.open_file(schema)?;
        let at = self.place.show(&file);
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = RecordBatch::try_new(Arc::clone(schema), batch?.columns().to_vec())?;
            rows += batch.num_rows() as u64;
            writer
                .write(&batch)
                .await
                .map_err(|e| failed("cannot write", &at, e))?;
        }
        self.close_file(file, writer, rows).await
    }

    /// Writes `batches` as this generation's own file.
    pub async fn write_batches(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<()> {
        let (file, mut writer) = self.open_file(schema)?;
        let at = self.place.show(&file);
        for b in batches {
            writer
                .write(b)
                .await
                .map_err(|e| failed("cannot write", &at, e))?;
        }
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        self.close_file(file, writer, rows).await
    }

    /// Parquet through the `parquet` crate's writer rather than DataFusion's `COPY`: the file
    /// gets the name the catalog records and is whole (synced, or uploaded) before the catalog
    /// names it.
    fn open_file(&self, schema: &SchemaRef) -> Result<(String, Writer)> {
        let file = format!("{}/{}.parquet", self.dir(), self.generation.number);
        let hashing = Hashing {
            inner: self.place.create(&file)?,
            hash: twox_hash::XxHash32::with_seed(0),
        };
        let writer = AsyncArrowWriter::try_new(hashing, Arc::clone(schema), None)
            .map_err(|e| failed("cannot write", &self.place.show(&file), e))?;
        Ok((file, writer))
    }

    async fn close_file(&mut self, file: String, mut writer: Writer, rows: u64) -> Result<()> {
        writer
            .finish()
            .await
            .map_err(|e| failed("cannot write", &self.place.show(&file), e))?;
        let checksum = Some(writer.into_inner().hash.finish_32());
        let size = self.place.size(&file).await?;
        let name = file.rsplit('/').next().unwrap_or_default().to_string();
        self.generation.files.push(StoredFile {
            name,
            size,
            rows,
            checksum,
        });
        Ok(())
    }

    /// The generation, its directory synced: ready for the catalog to name.
    pub fn finish(self) -> Result<Generation> {
        self.place.sync_dir(&self.dir())?;
        self.place.sync_dir(&DataDir::mv_dir(&self.mv))?;
        Ok(self.generation)
    }
}

type Writer = AsyncArrowWriter<Hashing>;

/// A file being written, and the checksum of what was written to it so far.
struct Hashing {
    inner: Box<dyn AsyncFileWriter>,
    hash: twox_hash::XxHash32,
}

impl AsyncFileWriter for Hashing {
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        std::hash::Hasher::write(&mut self.hash, &bytes);
        self.inner.write(bytes)
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.inner.complete()
    }
}
