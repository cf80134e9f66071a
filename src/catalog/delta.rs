//! Delta Lake tables (the `delta` feature), read with delta-rs: a table whose state is its
//! version. Its log says exactly what each version did, so a newer version is a write only if
//! it changed rows, and the files it added are what an incremental refresh reads
//! (`super::files` follows it like a table on files, with the version as its state).
//!
//! What a version did, from its log's actions:
//! - files added and removed with `dataChange` (append, overwrite, DELETE, UPDATE, MERGE) are a
//!   change of files, named with the versions (`version 12 -> 14 (2 files added)`); only
//!   additions can be read alone;
//! - files added and removed without `dataChange` (OPTIMIZE's compaction, Z-order) change no
//!   row, which the protocol guarantees: not a write, and no MV is stale for it;
//! - a new schema or partitioning (a metadata action), or a move to an older version (a table
//!   pinned at another version): the whole table changed;
//! - a log that no longer holds a version in between (cleaned up after a checkpoint): the
//!   whole table changed, as nothing says what did.
//!
//! Scans read the latest version when they run (as a listing table lists its files when it
//! is scanned), or the version the table is pinned at (time travel).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProviderFactory};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use deltalake_core::kernel::Action;
use deltalake_core::logstore::{LogStore, get_actions};
use deltalake_core::{DeltaTable, DeltaTableBuilder, ensure_table_uri};

use super::files::FilesChanged;
use super::freshness::Change;
use crate::error::MvError;

/// A Delta table as the session reads it: by its location, at its latest version or pinned
/// at one. Its clones share what was loaded.
#[derive(Clone, Debug)]
pub struct DeltaSource {
    /// The table's root, as delta-rs normalized it (`file:///data/orders/`).
    location: String,
    /// Its log's directory, when it is on this machine (what a watch covers).
    local_log: Option<std::path::PathBuf>,
    /// The version it is pinned at, if any (time travel).
    pinned: Option<u64>,
    /// The table as last loaded: what scans start from.
    table: Arc<Mutex<DeltaTable>>,
    schema: SchemaRef,
    partition_columns: Vec<(String, DataType)>,
    /// The partition values of each file the log named in a change read so far, by its path
    /// in the log (partition freshness asks them).
    partitions: Arc<Mutex<HashMap<String, Vec<Option<String>>>>>,
}

impl DeltaSource {
    /// Opens the Delta table at `location` (a path or URL), at `version` or its latest. A
    /// location without a readable log is a typed error that says so.
    pub async fn open(location: &str, version: Option<u64>) -> Result<DeltaSource, MvError> {
        let fail = |e: &dyn std::fmt::Display| MvError::Delta(format!("{location}: {e}"));
        let url = ensure_table_uri(location).map_err(|e| fail(&e))?;
        let mut builder = DeltaTableBuilder::from_url(url).map_err(|e| fail(&e))?;
        if let Some(version) = version {
            builder = builder.with_version(version);
        }
        let table = builder.load().await.map_err(|e| fail(&e))?;
        let provider = table.table_provider().build().await.map_err(|e| fail(&e))?;
        let schema = provider.schema();
        let snapshot = table.snapshot().map_err(|e| fail(&e))?;
        let partition_columns = snapshot
            .metadata()
            .partition_columns()
            .iter()
            .map(|name| {
                let field = schema.field_with_name(name).map_err(|e| fail(&e))?;
                Ok((name.clone(), field.data_type().clone()))
            })
            .collect::<Result<Vec<_>, MvError>>()?;
        let local_log = table.table_url().to_file_path().ok();
        Ok(DeltaSource {
            location: table.table_url().to_string(),
            local_log: local_log.map(|root| root.join("_delta_log")),
            pinned: version,
            table: Arc::new(Mutex::new(table)),
            schema,
            partition_columns,
            partitions: Arc::default(),
        })
    }

    /// The table's root, as a URL.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The version it is pinned at, if it is.
    pub fn pinned(&self) -> Option<u64> {
        self.pinned
    }

    /// Its partition columns, typed as its schema says.
    pub fn partition_columns(&self) -> &[(String, DataType)] {
        &self.partition_columns
    }

    /// The directory of its log, if it is on this machine (what a watch covers).
    pub fn local_log(&self) -> Option<std::path::PathBuf> {
        self.local_log.clone().filter(|log| log.is_dir())
    }

    fn loaded(&self) -> DeltaTable {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The table at the version it reads now (its latest, or the pinned one), loaded.
    async fn now(&self) -> Result<DeltaTable, String> {
        let mut table = self.loaded();
        if self.pinned.is_some() {
            return Ok(table);
        }
        let before = table.version();
        table
            .update_state()
            .await
            .map_err(|e| format!("cannot read the log of {}: {e}", self.location))?;
        if table.version() != before {
            *self
                .table
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = table.clone();
        }
        Ok(table)
    }

    /// This table pinned at `version`: what a refresh reads, the version it records.
    pub async fn at(&self, version: u64) -> Result<DeltaSource, MvError> {
        let mut table = self.loaded();
        if table.version() != Some(version) {
            table.load_version(version).await.map_err(|e| {
                MvError::Delta(format!("{} at version {version}: {e}", self.location))
            })?;
        }
        Ok(DeltaSource {
            pinned: Some(version),
            table: Arc::new(Mutex::new(table)),
            ..self.clone()
        })
    }

    /// The version scans read now.
    pub async fn version(&self) -> Result<u64, String> {
        let table = self.now().await?;
        table
            .version()
            .ok_or_else(|| format!("{} has no version", self.location))
    }

    /// What changed from version `from` to `to`, as the log says: `None` when no row did.
    pub async fn changes(&self, from: u64, to: u64) -> Result<Option<Change>, String> {
        let whole = |why: String| {
            Ok(Some(Change::Rewrite(format!(
                "{why} (version {from} -> {to})"
            ))))
        };
        if to < from {
            return whole("read at an older version".into());
        }
        let log = self.loaded().log_store();
        let mut changed = FilesChanged {
            versions: Some((from, to)),
            ..FilesChanged::default()
        };
        let mut partitions = Vec::new();
        for version in from + 1..=to {
            let commit = log
                .read_commit_entry(version)
                .await
                .map_err(|e| format!("cannot read version {version} of {}: {e}", self.location))?;
            let Some(commit) = commit else {
                return whole(format!("its log no longer holds version {version}"));
            };
            let actions = get_actions(version, &commit).map_err(|e| e.to_string())?;
            for action in actions {
                match action {
                    Action::Add(add) if add.data_change => {
                        partitions.push((add.path.clone(), self.values(&add.partition_values)));
                        changed.added.push(add.path);
                    }
                    Action::Remove(remove) if remove.data_change => {
                        // A removal that does not say its partition leaves it unknown: then no
                        // partition can be said unchanged.
                        let Some(values) = &remove.partition_values else {
                            return whole("a file was removed from an unnamed partition".into());
                        };
                        partitions.push((remove.path.clone(), self.values(values)));
                        changed.removed.push(remove.path);
                    }
                    Action::Metadata(_) => {
                        return whole("its schema or partitioning changed".into());
                    }
                    _ => {}
                }
            }
        }
        if changed.added.is_empty() && changed.removed.is_empty() {
            return Ok(None);
        }
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(partitions);
        Ok(Some(Change::Files(changed)))
    }

    /// A file's partition values, in the order of the partition columns.
    fn values(&self, named: &HashMap<String, Option<String>>) -> Vec<Option<String>> {
        self.partition_columns
            .iter()
            .map(|(name, _)| named.get(name).cloned().flatten())
            .collect()
    }

    /// Learns the partition values `other` (the same log) read.
    pub fn learn_partitions(&self, other: &DeltaSource) {
        let known = other
            .partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(known);
    }

    /// The partition values of the file at `path` (as its log names it), typed; `None` for a
    /// file no change read so far named.
    pub fn partition_of(&self, path: &str) -> Option<Vec<ScalarValue>> {
        let partitions = self
            .partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let values = partitions.get(path)?;
        values
            .iter()
            .zip(&self.partition_columns)
            .map(|(value, (_, typed))| match value {
                Some(v) => ScalarValue::try_from_string(v.clone(), typed).ok(),
                None => ScalarValue::try_from(typed).ok(),
            })
            .collect()
    }

    /// The rows of the files `paths` (added by versions since one an MV was computed from, as
    /// the log names them) as a table, or why they cannot be read alone: one of them is no
    /// longer in the table (compacted or removed since without a change of rows).
    pub async fn files(&self, paths: &[String]) -> Result<Arc<dyn TableProvider>, String> {
        let table = self.now().await?;
        let snapshot = table.snapshot().map_err(|e| e.to_string())?;
        let active: std::collections::HashSet<String> = snapshot
            .log_data()
            .iter()
            .map(|f| f.path().into_owned())
            .collect();
        if let Some(gone) = paths.iter().find(|p| !active.contains(&decoded(p))) {
            return Err(format!("{gone}, added since, is no longer in the table"));
        }
        let scan = table
            .table_provider()
            .with_file_paths(paths.iter().cloned())
            .build()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(scan))
    }
}

/// A path as the log writes it (URL-encoded) as delta-rs reads it back (`LogicalFileView::path`,
/// with the same crate).
fn decoded(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

#[async_trait]
impl TableProvider for DeltaSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Used to skip files and row groups; the filter stays above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    /// Reads the version the table is at when the scan is planned.
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let failed = |e: &dyn std::fmt::Display| {
            DataFusionError::External(Box::new(MvError::Delta(format!("{}: {e}", self.location))))
        };
        let table = self.now().await.map_err(|e| failed(&e))?;
        table
            .update_datafusion_session(state)
            .map_err(|e| failed(&e))?;
        let provider = table
            .table_provider()
            .build()
            .await
            .map_err(|e| failed(&e))?;
        if provider.schema().fields() != self.schema.fields() {
            return Err(DataFusionError::Plan(format!(
                "the schema of the Delta table at {} changed since it was registered: register it again",
                self.location
            )));
        }
        provider.scan(state, projection, filters, limit).await
    }
}

/// `CREATE EXTERNAL TABLE name STORED AS DELTA LOCATION '<path or URL>' [OPTIONS ('version'
/// '12')]`: a Delta table, at its latest version or pinned at one.
#[derive(Debug, Default)]
pub struct DeltaFactory;

#[async_trait]
impl TableProviderFactory for DeltaFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> DfResult<Arc<dyn TableProvider>> {
        // DataFusion's SQL names an option without a dot `format.<name>`.
        let mut version = None;
        for (key, value) in &cmd.options {
            match key.strip_prefix("format.").unwrap_or(key) {
                "version" => {
                    version = Some(value.trim().parse::<u64>().map_err(|_| {
                        DataFusionError::Plan(format!(
                            "the version of a Delta table is a number, not '{value}'"
                        ))
                    })?)
                }
                other => {
                    return Err(DataFusionError::Plan(format!(
                        "a Delta table takes only the option 'version', not '{other}'"
                    )));
                }
            }
        }
        let [location] = cmd.locations.as_slice() else {
            return Err(DataFusionError::Plan(format!(
                "a Delta table has one location, not {}",
                cmd.locations.len()
            )));
        };
        let source = DeltaSource::open(location, version)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(source))
    }
}
