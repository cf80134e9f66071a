//! Tables on files: DataFusion listing tables over Parquet, CSV or JSON files, on any object
//! store the session's runtime knows. Another process may add, remove or rewrite those files at
//! any time, so a file table's state is the set of files it lists (path, size, last modified,
//! e-tag where the store gives one). A listing that differs from the one recorded before is a
//! write to the table (`Change::Files`): its version moves, and the MVs computed from the old
//! files are stale, with what moved in the reason (`events: 2 files added`).
//!
//! A listing costs a round trip to the store (milliseconds for a thousand local files), and a
//! query an MV over the table might answer needs to know the files did not move. [`FileListing`]
//! says how: by default (`watch`) the table's local directories are watched
//! (`super::file_watch`), and its last listing stands until an event says a file changed, so
//! a query pays a non-blocking read of the event queue, and is still never answered by an MV
//! computed before a write another process completed. Where events cannot be trusted (object
//! stores, network and FUSE file systems, symbolic or hard links) the default lists for every
//! such query, as `always` does. `'<n> ms'` reuses a listing that young. The listing is
//! DataFusion's own (`ListingTableUrl::list_all_files`, with the table's extension and the
//! session's options), so it sees exactly the files a scan of the table reads; the session
//! turns DataFusion's list-files cache off, which would otherwise hide new files from scans and
//! listings alike.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::catalog::MemTable;
use datafusion::common::ScalarValue;
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing::helpers::parse_partitions_for_path;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::object_store::path::Path;
use futures::TryStreamExt;

use super::file_watch::{Covered, Watch};
use super::freshness::Change;

/// When a file table's last listing may stand for a query being planned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileListing {
    /// While no event of the table's watched directories says a file changed (the default):
    /// exact, and nearly free on local file systems; elsewhere, as `Always`.
    #[default]
    Watch,
    /// List again for every query: a file written a moment ago is seen.
    Always,
    /// Reuse a listing this young: cheaper on remote stores, and files written within that
    /// time may be missed (the MV answers as of the listing).
    Reuse(Duration),
}

impl fmt::Display for FileListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileListing::Watch => write!(f, "watch"),
            FileListing::Always => write!(f, "always"),
            FileListing::Reuse(d) => write!(f, "{} ms", d.as_millis()),
        }
    }
}

impl std::str::FromStr for FileListing {
    type Err = String;

    /// `watch`, `always`, or `<n> ms`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "watch" => return Ok(FileListing::Watch),
            "always" => return Ok(FileListing::Always),
            _ => {}
        }
        let ms = s
            .strip_suffix("ms")
            .map(str::trim)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("'{s}' is none of 'watch', 'always', '<n> ms'"))?;
        Ok(FileListing::Reuse(Duration::from_millis(ms)))
    }
}

/// One file as a listing saw it. Times are kept to the millisecond, as they are saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    size: u64,
    modified_ms: i64,
    e_tag: Option<String>,
}

/// The files a table lists, by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSet(BTreeMap<String, FileMeta>);

impl FileSet {
    /// As saved with the data directory: `{path: {size, modified_ms, e_tag}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let files: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(path, m)| {
                let meta = serde_json::json!({
                    "size": m.size,
                    "modified_ms": m.modified_ms,
                    "e_tag": m.e_tag,
                });
                (path.clone(), meta)
            })
            .collect();
        serde_json::Value::Object(files)
    }

    /// Reads what [`FileSet::to_json`] wrote; `None` if it is not that.
    pub fn from_json(value: &serde_json::Value) -> Option<FileSet> {
        let files = value
            .as_object()?
            .iter()
            .map(|(path, m)| {
                let meta = FileMeta {
                    size: m.get("size")?.as_u64()?,
                    modified_ms: m.get("modified_ms")?.as_i64()?,
                    e_tag: m.get("e_tag")?.as_str().map(str::to_string),
                };
                Some((path.clone(), meta))
            })
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(FileSet(files))
    }

    /// What changed from `self` to `now`, if anything did; files in `touched` were written
    /// since, whatever their listing says.
    pub fn changes_to(&self, now: &FileSet, touched: &BTreeSet<String>) -> Option<FilesChanged> {
        let mut change = FilesChanged::default();
        for (path, meta) in &now.0 {
            match self.0.get(path) {
                None => change.added.push(path.clone()),
                Some(old) if old != meta || touched.contains(path) => {
                    change.rewritten.push(path.clone())
                }
                Some(_) => {}
            }
        }
        change.removed = self
            .0
            .keys()
            .filter(|p| !now.0.contains_key(*p))
            .cloned()
            .collect();
        (!change.is_empty()).then_some(change)
    }
}

/// Files added, removed or rewritten between two listings of a table, or two versions of a
/// versioned table (`super::delta`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilesChanged {
    /// Paths in the store, as listed (for a Delta table, as its log names them).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Same path, another size, time or e-tag.
    pub rewritten: Vec<String>,
    /// The versions of a versioned table it went from and to.
    pub versions: Option<(u64, u64)>,
}

impl FilesChanged {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.rewritten.is_empty()
    }

    /// Whether files were only added (what an incremental refresh can read alone).
    pub fn only_added(&self) -> bool {
        self.removed.is_empty() && self.rewritten.is_empty()
    }

    /// The change as saved in the store's catalog (`crate::lifecycle::persist`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "added": self.added,
            "removed": self.removed,
            "rewritten": self.rewritten,
            "versions": self.versions.map(|(from, to)| [from, to]),
        })
    }

    /// Reads what [`FilesChanged::to_json`] wrote; `None` if it is not that.
    pub fn from_json(value: &serde_json::Value) -> Option<FilesChanged> {
        let paths = |key: &str| -> Option<Vec<String>> {
            value
                .get(key)?
                .as_array()?
                .iter()
                .map(|p| p.as_str().map(str::to_string))
                .collect()
        };
        let versions = match value.get("versions")? {
            serde_json::Value::Null => None,
            v => Some((v.get(0)?.as_u64()?, v.get(1)?.as_u64()?)),
        };
        Some(FilesChanged {
            added: paths("added")?,
            removed: paths("removed")?,
            rewritten: paths("rewritten")?,
            versions,
        })
    }

    /// Adds a later change to this one.
    pub fn extend(&mut self, later: &FilesChanged) {
        self.added.extend(later.added.iter().cloned());
        self.removed.extend(later.removed.iter().cloned());
        self.rewritten.extend(later.rewritten.iter().cloned());
        self.versions = match (self.versions, later.versions) {
            (Some((from, _)), Some((_, to))) => Some((from, to)),
            (mine, theirs) => mine.or(theirs),
        };
    }
}

impl fmt::Display for FilesChanged {
    /// `2 files added, 1 removed`; `version 12 -> 14 (2 files added)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((from, to)) = self.versions {
            let files = FilesChanged {
                versions: None,
                ..self.clone()
            };
            return write!(f, "version {from} -> {to} ({files})");
        }
        let counts = [
            (self.added.len(), "added"),
            (self.removed.len(), "removed"),
            (self.rewritten.len(), "rewritten"),
        ];
        let noun = if counts.iter().map(|(n, _)| n).sum::<usize>() == 1 {
            "file"
        } else {
            "files"
        };
        let mut parts: Vec<String> = Vec::new();
        for (n, what) in counts.into_iter().filter(|(n, _)| *n > 0) {
            parts.push(if parts.is_empty() {
                format!("{n} {noun} {what}")
            } else {
                format!("{n} {what}")
            });
        }
        if parts.is_empty() {
            write!(f, "no file changed")
        } else {
            write!(f, "{}", parts.join(", "))
        }
    }
}

/// A table's state as last seen: the files it lists, or the version of a versioned table
/// (`super::delta`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableState {
    Files(FileSet),
    Version(u64),
}

impl TableState {
    /// As saved with the store: a listing as [`FileSet::to_json`] writes it; a version as
    /// `{"version": 12}` (a listing's values are objects, so the two never read as each other).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            TableState::Files(files) => files.to_json(),
            TableState::Version(version) => serde_json::json!({ "version": version }),
        }
    }

    /// Reads what [`TableState::to_json`] wrote; `None` if it is not that.
    pub fn from_json(value: &serde_json::Value) -> Option<TableState> {
        let object = value.as_object()?;
        match (object.len(), object.get("version").and_then(|v| v.as_u64())) {
            (1, Some(version)) => Some(TableState::Version(version)),
            _ => FileSet::from_json(value).map(TableState::Files),
        }
    }
}

/// What a table on files reads: files a listing finds, or a Delta table's log.
#[derive(Clone, Debug)]
enum Source {
    Listing {
        table: Arc<ListingTable>,
        /// The session's state: its object stores, listing options (subdirectories,
        /// partitions).
        state: Arc<SessionState>,
    },
    #[cfg(feature = "delta")]
    Delta(super::delta::DeltaSource),
}

/// What the session knows of one table on files: where its files are, how to list them (or
/// read its version), and what it last saw.
#[derive(Clone, Debug)]
pub struct FileTable {
    source: Source,
    listed: Option<(TableState, SystemTime)>,
    /// Why its listings fail, while they do: one failure is one write, not one per query
    /// planned.
    failing: Option<String>,
    /// Its directories' watch, shared by its clones; also what tells this table's listings
    /// from those of a table that replaced it.
    watch: Arc<Watch>,
    /// Held from the start of a listing to its recording: listings recorded in the order they
    /// began, so a slower, older one never replaces a newer one.
    listing_turn: Arc<Mutex<()>>,
}

/// One listing of a table (or reading of its version), to be recorded.
#[derive(Debug)]
pub struct Listed {
    state: TableState,
    /// For a versioned table seen at a new version: the version it was compared with, and
    /// what its log says changed since (`None`: no row).
    log: Option<(u64, Option<Change>)>,
    at: SystemTime,
    of: Arc<Watch>,
    /// What its watch had seen when it began, if the table is watched.
    covered: Option<Covered>,
}

impl FileTable {
    /// A file table read through `table`, listed with `state`'s stores and options.
    pub fn new(table: Arc<ListingTable>, state: Arc<SessionState>) -> Self {
        Self::reading(Source::Listing { table, state })
    }

    /// The table on files `provider` is, if it is one (a listing table, a Delta table);
    /// listings use `state()`.
    pub fn of(
        provider: &Arc<dyn TableProvider>,
        state: impl FnOnce() -> Arc<SessionState>,
    ) -> Option<Self> {
        let any = provider.as_ref() as &dyn std::any::Any;
        if let Some(listing) = any.downcast_ref::<ListingTable>() {
            return Some(Self::new(Arc::new(listing.clone()), state()));
        }
        #[cfg(feature = "delta")]
        if let Some(delta) = any.downcast_ref::<super::delta::DeltaSource>() {
            return Some(Self::reading(Source::Delta(delta.clone())));
        }
        None
    }

    fn reading(source: Source) -> Self {
        FileTable {
            source,
            listed: None,
            failing: None,
            watch: Arc::default(),
            listing_turn: Arc::default(),
        }
    }

    /// Starts from a state saved by an earlier process: the first listing is compared with
    /// it, so files changed while no process ran are seen.
    pub fn seed(&mut self, state: TableState) {
        self.listed = Some((state, SystemTime::UNIX_EPOCH));
    }

    /// Its last state seen, if it was listed.
    pub fn listing(&self) -> Option<&TableState> {
        self.listed.as_ref().map(|(state, _)| state)
    }

    /// Notes a failed listing; whether it is the first since the last one that succeeded.
    pub fn failed(&mut self, why: &str) -> bool {
        self.failing.replace(why.to_string()).is_none()
    }

    /// Why it cannot be read, when that is known before a scan fails: a Delta table whose log
    /// could not be read (its last version still loads, but it is not the table).
    pub fn unreadable(&self) -> Option<crate::error::MvError> {
        match &self.source {
            Source::Listing { .. } => None,
            #[cfg(feature = "delta")]
            Source::Delta(delta) => self
                .failing
                .as_ref()
                .map(|why| crate::error::MvError::Delta(format!("{}: {why}", delta.location()))),
        }
    }

    /// Whether `other` reads the same files the same way (the table was not replaced by
    /// another over other files, or at another version).
    pub fn same_files_as(&self, other: &FileTable) -> bool {
        match (&self.source, &other.source) {
            (Source::Listing { table: mine, .. }, Source::Listing { table, .. }) => {
                same_listing(mine, table)
            }
            #[cfg(feature = "delta")]
            (Source::Delta(mine), Source::Delta(theirs)) => {
                mine.location() == theirs.location() && mine.pinned() == theirs.pinned()
            }
            #[cfg(feature = "delta")]
            _ => false,
        }
    }

    /// Whether `other` reads the same Delta log as this one, at another version: then it
    /// takes this one's place and state, and its first reading compares the versions.
    pub fn same_log_as(&self, other: &FileTable) -> bool {
        match (&self.source, &other.source) {
            #[cfg(feature = "delta")]
            (Source::Delta(mine), Source::Delta(theirs)) => mine.location() == theirs.location(),
            _ => false,
        }
    }

    /// Reads through `other`'s source from now on (the same log at another version).
    pub fn read_through(&mut self, other: FileTable) {
        #[cfg(feature = "delta")]
        if let (Source::Delta(mine), Source::Delta(theirs)) = (&self.source, &other.source) {
            // The changes recorded so far name files the new source has not read of.
            theirs.learn_partitions(mine);
        }
        self.source = other.source;
        self.watch = other.watch;
    }

    /// Whether `provider` reads the same files the same way as this one.
    pub fn reads(&self, provider: &dyn TableProvider) -> bool {
        let any = provider as &dyn std::any::Any;
        match &self.source {
            Source::Listing { table, .. } => any
                .downcast_ref::<ListingTable>()
                .is_some_and(|other| same_listing(table, other)),
            #[cfg(feature = "delta")]
            Source::Delta(mine) => any
                .downcast_ref::<super::delta::DeltaSource>()
                .is_some_and(|d| d.location() == mine.location() && d.pinned() == mine.pinned()),
        }
    }

    /// The rows of `paths` (files of this table, as listed, or as its log names them) as a
    /// plan that reads them with the table's format, options and schema: what an incremental
    /// refresh computes the MV's definition over, in one pass (reading them into memory first
    /// took as long as the computation).
    pub async fn read(&self, paths: &[String]) -> Result<LogicalPlan, String> {
        match &self.source {
            Source::Listing { table, .. } => read_listed(table, paths),
            #[cfg(feature = "delta")]
            Source::Delta(delta) => {
                let files = delta.files(paths).await?;
                LogicalPlanBuilder::scan("new_files", provider_as_source(files), None)
                    .and_then(|b| b.build())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The values of the table's partition columns for the file at `path` (as listed, or as
    /// its log names it), typed as declared: none for a table without partitions; `None` for
    /// a file outside any partition directory (a listing) or not named by a change read (a
    /// Delta table).
    pub fn partition_of(&self, path: &str) -> Option<Vec<ScalarValue>> {
        match &self.source {
            Source::Listing { table, .. } => listed_partition_of(table, path),
            #[cfg(feature = "delta")]
            Source::Delta(delta) => delta.partition_of(path),
        }
    }

    /// The table's partition columns, with their types (none when it is not partitioned).
    pub fn partition_columns(&self) -> &[(String, DataType)] {
        match &self.source {
            Source::Listing { table, .. } => &table.options().table_partition_cols,
            #[cfg(feature = "delta")]
            Source::Delta(delta) => delta.partition_columns(),
        }
    }

    /// Whether its last listing may stand for a query planned at `as_of`.
    pub fn listed_for(&self, as_of: SystemTime, policy: FileListing) -> bool {
        let Some((_, at)) = &self.listed else {
            return false;
        };
        match policy {
            FileListing::Watch => self.watch.unchanged() || *at >= as_of,
            FileListing::Always => *at >= as_of,
            FileListing::Reuse(d) => *at + d >= as_of,
        }
    }

    /// Records a listing; what changed since the one before, if there was one. A listing of
    /// a table this one replaced is dropped.
    pub fn record(&mut self, listed: Listed) -> Option<Change> {
        if !Arc::ptr_eq(&listed.of, &self.watch) {
            return None;
        }
        self.failing = None;
        let touched = listed.covered.as_ref().map(|c| &c.touched);
        let change = match (self.listing(), &listed.state) {
            (Some(TableState::Files(before)), TableState::Files(now)) => before
                .changes_to(now, touched.unwrap_or(&BTreeSet::new()))
                .map(Change::Files),
            (Some(TableState::Version(before)), TableState::Version(now)) if before != now => {
                match &listed.log {
                    Some((compared_with, change)) if compared_with == before => change.clone(),
                    // Read against another version than the one recorded (a concurrent
                    // listing recorded first): nothing says what changed in between.
                    _ => Some(Change::Rewrite(format!(
                        "moved from version {before} to {now}"
                    ))),
                }
            }
            _ => None,
        };
        if let Some(covered) = &listed.covered {
            self.watch.covered(covered);
        }
        self.listed = Some((listed.state, listed.at));
        change
    }

    /// Its turn to list: held until the listing is recorded.
    pub fn listing_turn(&self) -> MutexGuard<'_, ()> {
        self.listing_turn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The directories a watch covers, if all are on this machine: a listing's directories,
    /// a Delta table's log.
    fn local_directories(&self) -> Option<Vec<PathBuf>> {
        match &self.source {
            Source::Listing { table, .. } => table
                .table_paths()
                .iter()
                .map(|url| {
                    let path = url.get_url().to_file_path().ok()?;
                    (url.scheme() == "file" && path.is_dir()).then_some(path)
                })
                .collect(),
            #[cfg(feature = "delta")]
            Source::Delta(delta) => delta.local_log().map(|log| vec![log]),
        }
    }

    /// The table's files (or version) now, watched from before it begins under `policy`
    /// `watch`. Runs on a thread of its own with its own runtime, so that planning (a
    /// synchronous optimizer rule) and async callers alike can wait for it.
    pub fn list(&self, policy: FileListing) -> Result<Listed, String> {
        let at = SystemTime::now();
        let covered = (policy == FileListing::Watch)
            .then(|| self.watch.before_listing(self.local_directories()))
            .flatten();
        let (state, log) = std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime to list files: {e}"))?;
                runtime.block_on(self.list_async())
            })
            .join()
            .unwrap_or_else(|_| Err("listing files panicked".into()))
        })?;
        Ok(Listed {
            state,
            log,
            at,
            of: Arc::clone(&self.watch),
            covered,
        })
    }

    async fn list_async(&self) -> Result<(TableState, Option<(u64, Option<Change>)>), String> {
        match &self.source {
            Source::Listing { table, state } => {
                Ok((TableState::Files(list_files(table, state).await?), None))
            }
            #[cfg(feature = "delta")]
            Source::Delta(delta) => {
                let now = delta.version().await?;
                let log = match self.listing() {
                    Some(TableState::Version(before)) if *before != now => {
                        Some((*before, delta.changes(*before, now).await?))
                    }
                    _ => None,
                };
                Ok((TableState::Version(now), log))
            }
        }
    }
}

/// Whether two listing tables read the same files the same way.
fn same_listing(a: &ListingTable, b: &ListingTable) -> bool {
    a.table_paths() == b.table_paths() && a.options().file_extension == b.options().file_extension
}

/// [`FileTable::read`] for a listing table. The files of a partitioned table are read by
/// partition, each row given the values its directory names (`day=2024-03-01/`), typed as the
/// table declares them; a file outside any partition directory is skipped, as the table's own
/// scan skips it.
fn read_listed(table: &Arc<ListingTable>, paths: &[String]) -> Result<LogicalPlan, String> {
    let mut by_partition: Vec<(Vec<ScalarValue>, Vec<String>)> = Vec::new();
    for path in paths {
        let Some(values) = listed_partition_of(table, path) else {
            continue;
        };
        match by_partition.iter_mut().find(|(v, _)| *v == values) {
            Some((_, files)) => files.push(path.clone()),
            None => by_partition.push((values, vec![path.clone()])),
        }
    }
    let mut plans = Vec::new();
    for (values, files) in by_partition {
        let scan = LogicalPlanBuilder::scan(
            "new_files",
            provider_as_source(listed_files(table, &files)?),
            None,
        )
        .map_err(|e| e.to_string())?;
        let mut columns: Vec<Expr> = scan
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        for (value, (name, _)) in values
            .into_iter()
            .zip(&table.options().table_partition_cols)
        {
            columns.push(lit(value).alias(name));
        }
        plans.push(scan.project(columns).map_err(|e| e.to_string())?);
    }
    let mut plans = plans.into_iter();
    let Some(first) = plans.next() else {
        // No file in a partition: no rows, in the table's schema.
        let empty = MemTable::try_new(table.schema(), vec![vec![]]).map_err(|e| e.to_string())?;
        return LogicalPlanBuilder::scan("new_files", provider_as_source(Arc::new(empty)), None)
            .and_then(|b| b.build())
            .map_err(|e| e.to_string());
    };
    plans
        .try_fold(first, |all, next| all.union(next.build()?))
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())
}

/// [`FileTable::partition_of`] for a listing table: DataFusion's own parsing, as its scans
/// use it.
fn listed_partition_of(table: &ListingTable, path: &str) -> Option<Vec<ScalarValue>> {
    let columns = &table.options().table_partition_cols;
    if columns.is_empty() {
        return Some(Vec::new());
    }
    let location = Path::parse(path).ok()?;
    let names = || columns.iter().map(|(name, _)| name.as_str());
    let parsed = table
        .table_paths()
        .iter()
        .find_map(|url| parse_partitions_for_path(url, &location, names()))?;
    if parsed.len() != columns.len() {
        return None;
    }
    parsed
        .into_iter()
        .zip(columns)
        .map(|(value, (_, typed))| ScalarValue::try_from_string(value.into_owned(), typed).ok())
        .collect()
}

/// The files `paths` of a listing table as a table of the columns stored in them (without
/// partition columns), with the table's format and options.
fn listed_files(table: &ListingTable, paths: &[String]) -> Result<Arc<ListingTable>, String> {
    let store = table
        .table_paths()
        .first()
        .ok_or("it lists no location")?
        .object_store();
    let urls = paths
        .iter()
        .map(|p| ListingTableUrl::parse(format!("{}{p}", store.as_str())))
        .collect::<datafusion::error::Result<Vec<_>>>()
        .map_err(|e| format!("cannot address its new files: {e}"))?;
    let partitions = &table.options().table_partition_cols;
    let table_schema = table.schema();
    let in_files = table_schema
        .fields()
        .iter()
        .filter(|f| partitions.iter().all(|(name, _)| name != f.name()))
        .cloned()
        .collect::<Vec<_>>();
    let options = table.options().clone().with_table_partition_cols(vec![]);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::new(Schema::new(in_files)));
    ListingTable::try_new(config)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The files a listing table lists now: DataFusion's own listing, with the table's
/// extension and the session's options.
async fn list_files(table: &ListingTable, state: &SessionState) -> Result<FileSet, String> {
    let extension = &table.options().file_extension;
    let mut files = BTreeMap::new();
    for url in table.table_paths() {
        let store = state
            .runtime_env()
            .object_store(url.object_store())
            .map_err(|e| format!("no object store for {url}: {e}"))?;
        let mut listed = url
            .list_all_files(state, store.as_ref(), extension)
            .await
            .map_err(|e| format!("cannot list {url}: {e}"))?;
        while let Some(meta) = listed
            .try_next()
            .await
            .map_err(|e| format!("cannot list {url}: {e}"))?
        {
            files.insert(
                meta.location.to_string(),
                FileMeta {
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                    e_tag: meta.e_tag,
                },
            );
        }
    }
    Ok(FileSet(files))
}

/// Lists the file tables among `tables` whose listing cannot stand for a query planned at
/// `as_of`, and records what moved since their last listing as writes. With `all`, every file
/// table among `tables` is considered (before an MV is computed from them); otherwise only
/// those some MV reads (before a query is planned: nothing to list where no MV could answer).
/// A listing that fails makes the table's MVs stale, with why.
pub fn observe(
    catalog: &std::sync::RwLock<super::Catalog>,
    tables: &std::collections::BTreeSet<String>,
    as_of: SystemTime,
    all: bool,
) {
    let (to_list, policy) = match catalog.read() {
        Ok(c) => (c.to_list(tables, as_of, all), c.file_listing()),
        Err(_) => return,
    };
    for (table, file_table) in to_list {
        let _turn = file_table.listing_turn();
        let listed = file_table.list(policy);
        let Ok(mut c) = catalog.write() else {
            return;
        };
        match listed {
            Ok(listed) => c.record_listing(&table, listed),
            Err(why) => c.listing_failed(&table, why),
        }
    }
}
