//! The store's catalog, `catalog.json`: MV definitions, the generation of rows each is at
//! (`crate::lifecycle::store`), their freshness, and the table versions and listings it goes
//! with, so that all of it survives a restart.
//!
//! It is replaced whole and atomically (`crate::lifecycle::place`: a local file written under a
//! temporary name, synced and renamed; an object put), only after the generations it names are
//! whole: that replacement is the commit of a refresh. A write that fails or a process that
//! dies midway leaves the previous catalog, naming the previous generations.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::catalog::files::{FilesChanged, TableState};
use crate::catalog::freshness::FileWrite;
use crate::error::{MvError, Result};
use crate::lifecycle::place::failed;
use crate::lifecycle::store::{DataDir, Generation, StoredFile};

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
    /// The latest writes of each table on files that changed only its files, which an MV
    /// computed before them refreshes from (the files they added) after a restart.
    pub file_writes: BTreeMap<String, Vec<FileWrite>>,
    /// The number the next generation written takes (numbers are never reused once
    /// published, even by an MV dropped and created again).
    pub next_generation: u64,
}

impl DataDir {
    /// The saved catalog, if one was saved.
    pub async fn load(&self) -> Result<Option<SavedCatalog>> {
        let Some(bytes) = self.place().read(CATALOG).await? else {
            return Ok(None);
        };
        let at = self.place().show(CATALOG);
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| failed("cannot parse", &at, e))?;
        parse_catalog(&value)
            .map(Some)
            .ok_or_else(|| failed("cannot read", &at, "unexpected contents"))
    }

    /// Replaces the saved catalog.
    pub async fn save(&self, catalog: &SavedCatalog) -> Result<()> {
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
                    "computed_at_ms": millis(m.computed_at),
                    "generation": m.generation.as_ref().map(generation_json),
                })
            })
            .collect();
        let listings: serde_json::Map<String, Value> = catalog
            .file_listings
            .iter()
            .map(|(t, f)| (t.clone(), f.to_json()))
            .collect();
        let file_writes: serde_json::Map<String, Value> = catalog
            .file_writes
            .iter()
            .map(|(t, writes)| (t.clone(), writes.iter().map(file_write_json).collect()))
            .collect();
        let saved = json!({
            "versions": versions,
            "mvs": mvs,
            "file_listings": listings,
            "file_writes": file_writes,
            "next_generation": catalog.next_generation,
        });
        let text =
            serde_json::to_string_pretty(&saved).map_err(|e| MvError::Internal(e.to_string()))?;
        self.place().replace(CATALOG, text.into_bytes()).await
    }
}

const CATALOG: &str = "catalog.json";

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
    // Absent from catalogs saved before the writes of files were kept.
    let file_writes = match value.get("file_writes") {
        None => BTreeMap::new(),
        Some(writes) => writes
            .as_object()?
            .iter()
            .map(|(t, w)| {
                let writes = w.as_array()?.iter().map(parse_file_write);
                Some((t.clone(), writes.collect::<Option<_>>()?))
            })
            .collect::<Option<_>>()?,
    };
    Some(SavedCatalog {
        versions,
        mvs,
        file_listings,
        file_writes,
        next_generation: match value.get("next_generation") {
            Some(n) => n.as_u64()?,
            None => 1,
        },
    })
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn file_write_json(w: &FileWrite) -> Value {
    json!({ "version": w.version, "at_ms": millis(w.at), "files": w.files.to_json() })
}

fn parse_file_write(w: &Value) -> Option<FileWrite> {
    Some(FileWrite {
        version: w.get("version")?.as_u64()?,
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(w.get("at_ms")?.as_u64()?),
        files: FilesChanged::from_json(w.get("files")?)?,
    })
}

fn generation_json(g: &Generation) -> Value {
    let files: Vec<Value> = g
        .files
        .iter()
        .map(|f| json!({ "name": f.name, "size": f.size, "rows": f.rows, "checksum": f.checksum }))
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
                checksum: match f.get("checksum") {
                    Some(c) if !c.is_null() => Some(u32::try_from(c.as_u64()?).ok()?),
                    _ => None,
                },
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

    #[tokio::test]
    async fn catalog_round_trips_and_a_failed_write_keeps_the_old_one() {
        let dir = std::env::temp_dir().join(format!("mvr-persist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = DataDir::open(&dir).unwrap();
        assert_eq!(data.load().await.unwrap(), None);
        let saved = SavedCatalog {
            file_listings: BTreeMap::new(),
            file_writes: [(
                "events".to_string(),
                vec![FileWrite {
                    version: 3,
                    at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_456),
                    files: FilesChanged {
                        added: vec!["dir/new.parquet".into()],
                        removed: vec![],
                        rewritten: vec![],
                        versions: Some((7, 8)),
                    },
                }],
            )]
            .into(),
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
                        checksum: Some(0xdead_beef),
                    }],
                }),
            }],
            next_generation: 5,
        };
        data.save(&saved).await.unwrap();
        assert_eq!(data.load().await.unwrap(), Some(saved.clone()));
        // A directory where the temporary file goes makes the write fail.
        std::fs::create_dir_all(dir.join("catalog.json.tmp")).unwrap();
        assert!(data.save(&SavedCatalog::default()).await.is_err());
        assert_eq!(data.load().await.unwrap(), Some(saved));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
