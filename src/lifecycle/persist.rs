//! The store's catalog, `catalog.json`: MV definitions, the generation of rows each is at
//! (`crate::lifecycle::store`), their freshness, and the table versions and listings it goes
//! with, so that all of it survives a restart.
//!
//! It is written whole under a temporary name, synced, then renamed into place, only after
//! the generations it names are synced: the rename is the commit of a refresh. A write that
//! fails or a process that dies midway leaves the previous catalog, naming the previous
//! generations.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::catalog::files::TableState;
use crate::error::{MvError, Result};
use crate::lifecycle::store::{DataDir, Generation, StoredFile, io};

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
    /// The generation of rows the catalog names (`None`: saved by an earlier mvrewrite, as
    /// fragments, which a restore does not read).
    pub generation: Option<Generation>,
}

/// The saved catalog: table versions and MVs, every MV after those it reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedCatalog {
    pub versions: BTreeMap<String, u64>,
    pub mvs: Vec<SavedMv>,
    /// The last listing (or version) of each table on files, which its saved version goes with.
    pub file_listings: BTreeMap<String, TableState>,
    /// The number the next generation written takes (numbers are never reused once
    /// published, even by an MV dropped and created again).
    pub next_generation: u64,
}

impl DataDir {
    /// The saved catalog, if one was saved.
    pub fn load(&self) -> Result<Option<SavedCatalog>> {
        let path = self.path().join("catalog.json");
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
                    "generation": m.generation.as_ref().map(generation_json),
                })
            })
            .collect();
        let listings: serde_json::Map<String, Value> = catalog
            .file_listings
            .iter()
            .map(|(t, f)| (t.clone(), f.to_json()))
            .collect();
        let saved = json!({
            "versions": versions,
            "mvs": mvs,
            "file_listings": listings,
            "next_generation": catalog.next_generation,
        });
        let text =
            serde_json::to_string_pretty(&saved).map_err(|e| MvError::Internal(e.to_string()))?;
        write_atomically(&self.path().join("catalog.json"), |file| {
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
                generation: match m.get("generation") {
                    Some(g) if !g.is_null() => Some(parse_generation(g)?),
                    _ => None,
                },
            })
        })
        .collect::<Option<Vec<_>>>()?;
    // Absent from catalogs saved before tables on files were followed.
    let file_listings = match value.get("file_listings") {
        None => BTreeMap::new(),
        Some(listings) => listings
            .as_object()?
            .iter()
            .map(|(t, f)| Some((t.clone(), TableState::from_json(f)?)))
            .collect::<Option<_>>()?,
    };
    Some(SavedCatalog {
        versions,
        mvs,
        file_listings,
        next_generation: match value.get("next_generation") {
            Some(n) => n.as_u64()?,
            None => 1,
        },
    })
}

fn generation_json(g: &Generation) -> Value {
    let files: Vec<Value> = g
        .files
        .iter()
        .map(|f| json!({ "name": f.name, "size": f.size, "rows": f.rows }))
        .collect();
    json!({ "number": g.number, "files": files })
}

fn parse_generation(g: &Value) -> Option<Generation> {
    let files = g
        .get("files")?
        .as_array()?
        .iter()
        .map(|f| {
            Some(StoredFile {
                name: f.get("name")?.as_str()?.to_string(),
                size: f.get("size")?.as_u64()?,
                rows: f.get("rows")?.as_u64()?,
            })
        })
        .collect::<Option<_>>()?;
    Some(Generation {
        number: g.get("number")?.as_u64()?,
        files,
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
                generation: Some(Generation {
                    number: 4,
                    files: vec![StoredFile {
                        name: "2.parquet".into(),
                        size: 120,
                        rows: 3,
                    }],
                }),
            }],
            next_generation: 5,
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
