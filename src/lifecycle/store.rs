//! The store: a directory where each MV's rows are Parquet files any engine can read.
//!
//! ```text
//! <store>/catalog.json           the MVs, and the generation each one is at (the commit point)
//! <store>/.lock                  held by the one session that writes the store
//! <store>/<mv>/<n>/<k>.parquet   generation n of the MV: its complete, final rows
//! <store>/<mv>/current           a symbolic link to the generation the catalog names (Unix)
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
//! links are refused), so an incremental refresh writes only its new rows. File `<k>.parquet`
//! was first written by generation `k`, and generation numbers come from one counter for the
//! whole store, saved in the catalog: a published path is never reused, even by an MV dropped
//! and created again. The generation a refresh replaced stays until the next refresh, so that
//! queries already reading it finish; `current` gives other engines one stable location; the
//! lock keeps a second session from collecting a generation the first is writing.
//!
//! Only a local directory is a store for now; object-store URLs are not.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use crate::error::{MvError, Result};

/// One Parquet file of a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub name: String,
    pub size: u64,
    pub rows: u64,
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

/// A store directory (the data directory of [`crate::MvSession::with_data_dir`]).
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
    /// The lock on `.lock`, held while a session writes here (released with the last clone).
    lock: Option<Arc<File>>,
}

pub(super) fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> MvError {
    MvError::Storage(format!("{what} {}: {e}", path.display()))
}

impl DataDir {
    /// Opens (creating) a store, to read it. A session writing it also locks it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io("cannot create", &root, e))?;
        Ok(DataDir { root, lock: None })
    }

    /// Takes the store's lock: one session writes a store at a time, since each replaces the
    /// catalog and removes the generations it does not name. The operating system releases
    /// the lock of a process that dies.
    pub(crate) fn lock(&mut self) -> Result<()> {
        let path = self.root.join(".lock");
        let file = File::create(&path).map_err(|e| io("cannot create", &path, e))?;
        file.try_lock().map_err(|e| {
            io(
                "another session writes this store (its lock is held):",
                &path,
                e,
            )
        })?;
        self.lock = Some(Arc::new(file));
        Ok(())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory holding `mv`'s generations: its name with every byte but lower-case
    /// letters, digits and `_` escaped as `%XX`, so that distinct names never share a directory
    /// (upper case included, for file systems that ignore case).
    pub fn mv_dir(&self, mv: &str) -> PathBuf {
        let safe: String = mv
            .bytes()
            .map(|b| {
                if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        self.root.join(safe)
    }

    /// The directory of generation `number` of `mv`.
    pub fn generation_dir(&self, mv: &str, number: u64) -> PathBuf {
        self.mv_dir(mv).join(number.to_string())
    }

    /// Starts writing generation `number` of `mv`. Nothing reads it until the catalog names
    /// it. The session's counter never hands out a number the catalog named, so a generation
    /// already there is one a refresh cut short left: it is replaced.
    pub fn new_generation(&self, mv: &str, number: u64) -> Result<GenerationWriter> {
        let parent = self.mv_dir(mv);
        fs::create_dir_all(&parent).map_err(|e| io("cannot create", &parent, e))?;
        let dir = parent.join(number.to_string());
        if is_generation(&dir) {
            fs::remove_dir_all(&dir).map_err(|e| io("cannot remove", &dir, e))?;
        }
        fs::create_dir(&dir).map_err(|e| io("cannot create", &dir, e))?;
        Ok(GenerationWriter {
            dir,
            generation: Generation {
                number,
                files: Vec::new(),
            },
        })
    }

    /// Whether `generation` of `mv` is whole: every file there, of its size, with a Parquet
    /// footer whose columns are `schema`'s. What a restore checks before the MV answers (the
    /// rows themselves are read by queries).
    pub fn check(&self, mv: &str, generation: &Generation, schema: &SchemaRef) -> Result<()> {
        let dir = self.generation_dir(mv, generation.number);
        for f in &generation.files {
            let path = dir.join(&f.name);
            let file = File::open(&path).map_err(|e| io("cannot open", &path, e))?;
            let size = file
                .metadata()
                .map_err(|e| io("cannot read", &path, e))?
                .len();
            if size != f.size {
                return Err(io(
                    "damaged file",
                    &path,
                    format!("{size} bytes, {} written", f.size),
                ));
            }
            let meta = ArrowReaderMetadata::load(&file, Default::default())
                .map_err(|e| io("damaged file", &path, e))?;
            let names = |s: &SchemaRef| -> Vec<String> {
                s.fields().iter().map(|f| f.name().clone()).collect()
            };
            let rows = meta.metadata().file_metadata().num_rows() as u64;
            if names(meta.schema()) != names(schema) || rows != f.rows {
                return Err(io(
                    "damaged file",
                    &path,
                    "its columns or row count are not the MV's",
                ));
            }
        }
        Ok(())
    }

    /// Points `<mv>/current` at `number` (after the catalog named it): a stable location
    /// other engines can read the MV at. Best effort: the catalog is what counts.
    pub fn point_current(&self, mv: &str, number: u64) {
        #[cfg(unix)]
        {
            let dir = self.mv_dir(mv);
            let tmp = dir.join("current.tmp");
            let _ = fs::remove_file(&tmp);
            if std::os::unix::fs::symlink(number.to_string(), &tmp).is_ok() {
                let _ = fs::rename(&tmp, dir.join("current"));
            }
        }
        #[cfg(not(unix))]
        let _ = (mv, number);
    }

    /// Removes every generation the catalog does not name: `keep` maps each MV the catalog
    /// holds to its current generation (`None`: keep all of its files). The directories of
    /// MVs it does not hold lose their generations, and go once empty. Only directories that
    /// look like generations (a number, holding nothing but `<n>.parquet` files) are removed,
    /// so nothing else kept there is touched. A failure leaves garbage, never a wrong answer.
    pub fn collect_garbage(&self, keep: &BTreeMap<String, Option<u64>>) {
        let kept: BTreeMap<PathBuf, Option<u64>> =
            keep.iter().map(|(mv, g)| (self.mv_dir(mv), *g)).collect();
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            if !dir.is_dir() {
                continue;
            }
            match kept.get(&dir) {
                Some(None) => {}
                Some(Some(current)) => remove_generations(&dir, &[Some(*current)]),
                None => {
                    remove_generations(&dir, &[]);
                    for link in ["current", "current.tmp"].map(|l| dir.join(l)) {
                        if fs::symlink_metadata(&link).is_ok_and(|m| m.is_symlink()) {
                            let _ = fs::remove_file(link);
                        }
                    }
                    let _ = fs::remove_dir(&dir);
                }
            }
        }
    }

    /// Removes `mv`'s generations but those in `keep`.
    pub fn remove_old_generations(&self, mv: &str, keep: &[Option<u64>]) {
        remove_generations(&self.mv_dir(mv), keep);
    }

    /// Removes everything of `mv` (dropped).
    pub fn remove_mv(&self, mv: &str) {
        let _ = fs::remove_dir_all(self.mv_dir(mv));
    }
}

/// Removes the generation directories in `dir` but those in `keep`.
fn remove_generations(dir: &Path, keep: &[Option<u64>]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(number) = name.parse::<u64>() else {
            continue;
        };
        if !keep.contains(&Some(number)) && is_generation(&e.path()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Whether `dir` holds only what a generation holds (Parquet files named by a number), so
/// that removing it removes nothing but a generation.
fn is_generation(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(|e| e.ok()).all(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        e.file_type().is_ok_and(|t| t.is_file())
            && name
                .strip_suffix(".parquet")
                .is_some_and(|n| n.parse::<u64>().is_ok())
    })
}

/// A generation being written: files are added, then it is synced and published by the
/// catalog that names it.
pub struct GenerationWriter {
    dir: PathBuf,
    generation: Generation,
}

impl GenerationWriter {
    /// The directory written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its number.
    pub fn number(&self) -> u64 {
        self.generation.number
    }

    /// Adds the files of `previous` (in `from`) unchanged: hard links, or copies where the
    /// file system refuses links.
    pub fn share(&mut self, from: &Path, previous: &Generation) -> Result<()> {
        for f in &previous.files {
            let (src, dst) = (from.join(&f.name), self.dir.join(&f.name));
            if fs::hard_link(&src, &dst).is_err() {
                fs::copy(&src, &dst).map_err(|e| io("cannot copy", &src, e))?;
                File::open(&dst)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io("cannot sync", &dst, e))?;
            }
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
        let (path, mut writer) = self.open_file(schema)?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = RecordBatch::try_new(Arc::clone(schema), batch?.columns().to_vec())?;
            rows += batch.num_rows() as u64;
            writer
                .write(&batch)
                .map_err(|e| io("cannot write", &path, e))?;
        }
        self.close_file(path, writer, rows)
    }

    /// Writes `batches` as this generation's own file.
    pub fn write_batches(&mut self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let (path, mut writer) = self.open_file(schema)?;
        for b in batches {
            writer.write(b).map_err(|e| io("cannot write", &path, e))?;
        }
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        self.close_file(path, writer, rows)
    }

    /// Parquet through the `parquet` crate's writer rather than DataFusion's `COPY`: the file
    /// gets the name the catalog records and is synced before the catalog names it.
    fn open_file(&self, schema: &SchemaRef) -> Result<(PathBuf, ArrowWriter<File>)> {
        let path = self.dir.join(format!("{}.parquet", self.generation.number));
        let file = File::create(&path).map_err(|e| io("cannot create", &path, e))?;
        let writer = ArrowWriter::try_new(file, Arc::clone(schema), None)
            .map_err(|e| io("cannot write", &path, e))?;
        Ok((path, writer))
    }

    fn close_file(&mut self, path: PathBuf, writer: ArrowWriter<File>, rows: u64) -> Result<()> {
        let file = writer
            .into_inner()
            .map_err(|e| io("cannot write", &path, e))?;
        file.sync_all().map_err(|e| io("cannot sync", &path, e))?;
        let size = file
            .metadata()
            .map_err(|e| io("cannot read", &path, e))?
            .len();
        self.generation.files.push(StoredFile {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            size,
            rows,
        });
        Ok(())
    }

    /// The generation, its directory synced: ready for the catalog to name.
    pub fn finish(self) -> Result<Generation> {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        for dir in [&self.dir, parent] {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("cannot sync", dir, e))?;
        }
        Ok(self.generation)
    }
}
