//! Persistence: with a data directory, MV definitions, their rows (Parquet, one file per
//! fragment) and their freshness survive a restart.
//!
//! Every file is written whole under a temporary name, synced, then renamed into place, and
//! `catalog.json` (the list of MVs and the files that hold each) is replaced the same way
//! only after the files it names exist: a write that fails or a process that dies midway leaves
//! the previous catalog and files as they were, never half of a new one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use crate::catalog::files::FileSet;
use crate::error::{MvError, Result};

/// One MV as saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMv {
    pub name: String,
    pub sql: String,
    pub columns: Vec<String>,
    pub on_commit: bool,
    /// The MV's own staleness setting, if it has one (`Staleness`'s spelling).
    pub staleness: Option<String>,
    pub computed_from: BTreeMap<String, u64>,
    pub computed_at: SystemTime,
    /// Its fragments' files, oldest first.
    pub files: Vec<String>,
}

/// The saved catalog: table versions and MVs, every MV after those it reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedCatalog {
    pub versions: BTreeMap<String, u64>,
    pub mvs: Vec<SavedMv>,
    /// The last listing of each table on files, which its saved version goes with.
    pub file_listings: BTreeMap<String, FileSet>,
}

/// A data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> MvError {
    MvError::Storage(format!("{what} {}: {e}", path.display()))
}

impl DataDir {
    /// Opens (creating) a data directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io("cannot create", &root, e))?;
        Ok(DataDir { root })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory holding `mv`'s files: its name with every byte but lower-case letters,
    /// digits and `_` escaped as `%XX`, so that distinct names never share a directory (upper
    /// case included, for file systems that ignore case).
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

    /// Writes `batches` as a new Parquet file of `mv` and returns its name. The file appears
    /// under its name only once complete.
    pub fn write_fragment(
        &self,
        mv: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<String> {
        let dir = self.mv_dir(mv);
        fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
        let next = fs::read_dir(&dir)
            .map_err(|e| io("cannot list", &dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".parquet")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .map_or(1, |n| n + 1);
        let name = format!("{next}.parquet");
        let path = dir.join(&name);
        write_atomically(&path, |file| {
            let mut writer =
                ArrowWriter::try_new(file, Arc::clone(schema), None).map_err(|e| e.to_string())?;
            for b in batches {
                writer.write(b).map_err(|e| e.to_string())?;
            }
            writer.close().map(|_| ()).map_err(|e| e.to_string())
        })?;
        Ok(name)
    }

    /// Reads one of `mv`'s files.
    pub fn read_fragment(&self, mv: &str, file: &str) -> Result<Vec<RecordBatch>> {
        let path = self.mv_dir(mv).join(file);
        let f = File::open(&path).map_err(|e| io("cannot open", &path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| b.build())
            .map_err(|e| io("cannot read", &path, e))?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| io("cannot read", &path, e))
    }

    /// Deletes `mv`'s files not in `keep` (all of them, and its directory, when `keep` is
    /// empty). Called after the catalog stopped naming them; a failure leaves garbage, never
    /// a wrong answer.
    pub fn remove_unlisted(&self, mv: &str, keep: &[String]) {
        let dir = self.mv_dir(mv);
        if keep.is_empty() {
            let _ = fs::remove_dir_all(&dir);
            return;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().to_string();
            if !keep.contains(&name) {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// The saved catalog, if one was saved.
    pub fn load(&self) -> Result<Option<SavedCatalog>> {
        let path = self.root.join("catalog.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot read", &path, e)),
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| io("cannot parse", &path, e))?;
        parse_catalog(&value)
            .map(Some)
            .ok_or_else(|| io("cannot read", &path, "unexpected contents"))
    }

    /// Replaces the saved catalog.
    pub fn save(&self, catalog: &SavedCatalog) -> Result<()> {
        let versions: serde_json::Map<String, Value> = catalog
            .versions
            .iter()
            .map(|(t, v)| (t.clone(), json!(v)))
            .collect();
        let mvs: Vec<Value> = catalog
            .mvs
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "sql": m.sql,
                    "columns": m.columns,
                    "on_commit": m.on_commit,
                    "staleness": m.staleness,
                    "computed_from": m.computed_from,
                    "computed_at_ms": m.computed_at
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                    "files": m.files,
                })
            })
            .collect();
        let listings: serde_json::Map<String, Value> = catalog
            .file_listings
            .iter()
            .map(|(t, f)| (t.clone(), f.to_json()))
            .collect();
        let saved = json!({ "versions": versions, "mvs": mvs, "file_listings": listings });
        let text =
            serde_json::to_string_pretty(&saved).map_err(|e| MvError::Internal(e.to_string()))?;
        write_atomically(&self.root.join("catalog.json"), |file| {
            file.write_all(text.as_bytes()).map_err(|e| e.to_string())
        })
    }
}

/// Writes `path` through a temporary file renamed into place once written and synced.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::result::Result<(), String>,
) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let result = File::create(&tmp)
        .map_err(|e| io("cannot create", &tmp, e))
        .and_then(|mut f| {
            write(&mut f).map_err(|e| io("cannot write", &tmp, e))?;
            f.sync_all().map_err(|e| io("cannot sync", &tmp, e))
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| io("cannot rename", &tmp, e)))
        // The rename itself is durable once the directory is synced.
        .and_then(|()| match path.parent() {
            Some(dir) => File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("cannot sync", dir, e)),
            None => Ok(()),
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn parse_catalog(value: &Value) -> Option<SavedCatalog> {
    let versions = value
        .get("versions")?
        .as_object()?
        .iter()
        .map(|(t, v)| Some((t.clone(), v.as_u64()?)))
        .collect::<Option<BTreeMap<_, _>>>()?;
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mvs = value
        .get("mvs")?
        .as_array()?
        .iter()
        .map(|m| {
            Some(SavedMv {
                name: m.get("name")?.as_str()?.to_string(),
                sql: m.get("sql")?.as_str()?.to_string(),
                columns: strings(m.get("columns")?)?,
                on_commit: m.get("on_commit")?.as_bool()?,
                staleness: m.get("staleness")?.as_str().map(str::to_string),
                computed_from: m
                    .get("computed_from")?
                    .as_object()?
                    .iter()
                    .map(|(t, v)| Some((t.clone(), v.as_u64()?)))
                    .collect::<Option<_>>()?,
                computed_at: SystemTime::UNIX_EPOCH
                    + Duration::from_millis(m.get("computed_at_ms")?.as_u64()?),
                files: strings(m.get("files")?)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    // Absent from catalogs saved before tables on files were followed.
    let file_listings = match value.get("file_listings") {
        None => BTreeMap::new(),
        Some(listings) => listings
            .as_object()?
            .iter()
            .map(|(t, f)| Some((t.clone(), FileSet::from_json(f)?)))
            .collect::<Option<_>>()?,
    };
    Some(SavedCatalog {
        versions,
        mvs,
        file_listings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_round_trips_and_a_failed_write_keeps_the_old_one() {
        let dir = std::env::temp_dir().join(format!("mvr-persist-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let data = DataDir::open(&dir).unwrap();
        assert_eq!(data.load().unwrap(), None);
        let saved = SavedCatalog {
            file_listings: BTreeMap::new(),
            versions: [("events".to_string(), 3)].into(),
            mvs: vec![SavedMv {
                name: "daily".into(),
                sql: "SELECT 1".into(),
                columns: vec![],
                on_commit: true,
                staleness: Some("stale_tolerated".into()),
                computed_from: [("events".to_string(), 2)].into(),
                computed_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
                files: vec!["1.parquet".into()],
            }],
        };
        data.save(&saved).unwrap();
        assert_eq!(data.load().unwrap(), Some(saved.clone()));
        // A directory where the temporary file goes makes the write fail.
        fs::create_dir_all(dir.join("catalog.json.tmp")).unwrap();
        assert!(data.save(&SavedCatalog::default()).is_err());
        assert_eq!(data.load().unwrap(), Some(saved));
        let _ = fs::remove_dir_all(&dir);
    }
}
