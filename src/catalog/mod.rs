//! The MV registry: normalized definitions, eligibility, statistics, and the index from base
//! tables to MVs that keeps MVs which cannot apply out of the e-graph; declared keys; the
//! versions that say whether an MV is fresh.
//!
//! May use: `rules` (the rollup table, for average states), `egraph`, `plan`, `report`,
//! `error`. Used by `forms`, `engine` and everything above.

pub mod average_states;
pub mod constraints;
pub mod definition;
#[cfg(feature = "delta")]
pub mod delta;
mod file_watch;
pub mod files;
pub mod freshness;
pub mod grouping_sets;
pub mod mv_index;
pub mod partitions;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use datafusion::logical_expr::{LogicalPlan, TableSource};
use fixedbitset::FixedBitSet;

use crate::catalog::constraints::Constraints;
use crate::catalog::constraints::DeclaredKey;
use crate::catalog::files::{FileListing, FileTable, Listed, TableState};
use crate::catalog::freshness::{Change, FileWrite, Stale, Staleness, Versions};
use crate::catalog::mv_index::MvIndex;
use crate::error::{MvError, Result};
use crate::report::Rejection;

/// The schema an MV is stored with: its definition's columns, unqualified, a name that repeats
/// (`SELECT *` over a join: `t1.deptno`, `t2.deptno`) numbered (`deptno_2`) so that the
/// stored table can be scanned.
pub fn stored_schema(
    schema: &datafusion::common::DFSchema,
) -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{Field, Schema};
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let n = seen.entry(f.name().clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                f.as_ref().clone()
            } else {
                f.as_ref().clone().with_name(format!("{}_{n}", f.name()))
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A registered materialized view.
pub struct MaterializedView {
    /// Its name, as queries and the report spell it.
    pub name: String,
    /// The SQL it was defined with, when it came from SQL.
    pub sql: Option<String>,
    /// The definition after DataFusion's optimizer (the same normalization queries get).
    pub plan: LogicalPlan,
    /// Base tables the definition reads (through the MVs it reads, for a nested MV).
    pub base_tables: BTreeSet<String>,
    /// The tables and MVs the definition reads as written: what it is computed from.
    pub inputs: BTreeSet<String>,
    /// Base-table columns the definition reads (`table.column`).
    pub(crate) base_columns: BTreeSet<String>,
    /// What it filters on, groups by and aggregates ([`crate::plan::region::signature`]).
    pub(crate) signature: Vec<u64>,
    /// How many times it reads each table (self-joins), computed once for every rewrite.
    pub(crate) occurrences: BTreeMap<String, usize>,
    /// For an aggregate over one table, the columns its keys and filters mention
    /// ([`crate::plan::dimensions`]).
    pub(crate) dimensions: Option<BTreeSet<String>>,
    /// For an aggregate over one table, its key columns and aggregate functions
    /// ([`crate::plan::dimensions`]).
    pub(crate) aggregates: Option<crate::plan::dimensions::MvAggregates>,
    /// Whether it is a UNION, which answers only a UNION of the same branches.
    pub(crate) is_union: bool,
    /// `Err` when the definition can never answer a query; the reason is reported.
    pub eligibility: std::result::Result<(), Rejection>,
    /// Rows stored, when known (the session records it when it materializes the MV).
    pub row_count: Option<u64>,
    /// How a rewritten plan scans the MV.
    pub(crate) source: Arc<dyn TableSource>,
}

impl MaterializedView {
    /// Builds the registry entry for an already normalized definition, validating it.
    pub fn new(
        name: impl Into<String>,
        sql: Option<String>,
        plan: LogicalPlan,
        source: Arc<dyn TableSource>,
        row_count: Option<u64>,
    ) -> Self {
        let (plan, eligibility) = validate::prepare_definition(plan);
        MaterializedView {
            name: name.into(),
            sql,
            base_tables: validate::base_tables(&plan),
            inputs: validate::base_tables(&plan),
            base_columns: crate::plan::region::base_columns(&plan),
            signature: crate::plan::region::signature(&plan),
            occurrences: crate::plan::occurrences::table_occurrences(&plan),
            dimensions: crate::plan::dimensions::kept_by_mv(&plan),
            aggregates: crate::plan::dimensions::aggregates_of_mv(&plan),
            is_union: crate::plan::union_shape::union_shape(&plan).is_some(),
            plan,
            eligibility,
            row_count,
            source,
        }
    }
}

impl MaterializedView {
    /// Sets what the MV is computed from when that differs from the tables its plan reads (a
    /// nested MV: its plan reads the base tables under the MVs it reads).
    pub fn with_inputs(mut self, inputs: BTreeSet<String>) -> Self {
        self.inputs = inputs;
        self
    }
}

impl std::fmt::Debug for MaterializedView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterializedView")
            .field("name", &self.name)
            .field("base_tables", &self.base_tables)
            .field("eligibility", &self.eligibility)
            .field("row_count", &self.row_count)
            .finish_non_exhaustive()
    }
}

/// The versions of its inputs an MV was computed from, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Computed {
    pub from: BTreeMap<String, u64>,
    pub at: SystemTime,
}

/// All registered MVs plus the base-table statistics used for costing.
#[derive(Debug, Default)]
pub struct Catalog {
    mvs: BTreeMap<String, Arc<MaterializedView>>,
    /// The MVs over exactly each set of tables, and over each table, by name: what a region
    /// looks up, without a second lookup by name.
    by_tables: HashMap<BTreeSet<String>, BTreeMap<String, Arc<MaterializedView>>>,
    by_table: HashMap<String, BTreeMap<String, Arc<MaterializedView>>>,
    /// Which MVs read each table and keep each column, for ruling MVs out of whole plans.
    index: MvIndex,
    table_rows: HashMap<String, u64>,
    /// Table and MV versions, and the writes MVs may still need.
    versions: Versions,
    /// The versions of its inputs each MV was computed from, and when.
    computed: HashMap<String, Computed>,
    /// How stale an MV may be and still answer: the session's default, and per MV.
    staleness: Staleness,
    mv_staleness: HashMap<String, Staleness>,
    /// MVs whose last refresh failed: stale whatever the versions say, until one succeeds.
    failed: HashMap<String, Stale>,
    /// Bumped on every change that can change a rewrite.
    version: u64,
    /// Declared unique and foreign keys.
    constraints: Constraints,
    /// MVs recomputed after each write to their base tables (`refresh = 'on_commit'`).
    on_commit: BTreeSet<String>,
    /// Tables on files, with their last listing, and how old a listing may be.
    files: HashMap<String, FileTable>,
    file_listing: FileListing,
    /// Listings made (or failed) so far: what the listing policy saves, for tests and benches.
    listings: u64,
    /// Listings saved by an earlier process, for the tables not followed yet.
    saved_listings: HashMap<String, TableState>,
    /// The oldest version of each table that MVs kept in the store, not restored yet, were
    /// computed from: the writes since are kept for their refresh, as for restored MVs.
    awaiting: HashMap<String, u64>,
    /// Stale MVs that still answer for the partitions unchanged since they were computed
    /// ([`partitions`]): indexed as restricted to those.
    partly: HashMap<String, partitions::Partly>,
    /// Grouping-sets MVs that answer as their finest set ([`grouping_sets`]): indexed as that.
    finest: HashMap<String, grouping_sets::Finest>,
    /// Whether answers may not add a UNION ALL to plans ([`Catalog::answer_without_unions`]).
    without_unions: bool,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `mv`; with `replace`, an MV of the same name is replaced, otherwise it is an error.
    pub fn register(&mut self, mv: MaterializedView, replace: bool) -> Result<()> {
        self.version += 1;
        if self.mvs.contains_key(&mv.name) {
            if !replace {
                return Err(MvError::DuplicateMv(mv.name));
            }
            self.unindex(&mv.name);
        }
        self.partly.remove(&mv.name);
        let mv = Arc::new(mv);
        let indexed = match grouping_sets::answering(&mv) {
            Some(finest) => {
                let answering = Arc::clone(&finest.answering);
                self.finest.insert(mv.name.clone(), finest);
                answering
            }
            None => Arc::clone(&mv),
        };
        self.by_tables
            .entry(indexed.base_tables.clone())
            .or_default()
            .insert(indexed.name.clone(), Arc::clone(&indexed));
        for t in &indexed.base_tables {
            self.by_table
                .entry(t.clone())
                .or_default()
                .insert(indexed.name.clone(), Arc::clone(&indexed));
        }
        self.index.insert(&indexed);
        self.mvs.insert(mv.name.clone(), mv);
        Ok(())
    }

    /// Removes an MV; returns whether it existed.
    /// MVs defined over it become stale: their contents came from the old one.
    pub fn drop_mv(&mut self, name: &str) -> bool {
        if !self.mvs.contains_key(name) {
            return false;
        }
        self.version += 1;
        self.computed.remove(name);
        self.failed.remove(name);
        self.mv_staleness.remove(name);
        self.on_commit.remove(name);
        self.partly.remove(name);
        self.record_write(name, Change::Rewrite("dropped".into()));
        self.unindex(name)
    }

    /// Removes an MV from the registry and its indexes, keeping its settings and freshness.
    fn unindex(&mut self, name: &str) -> bool {
        self.finest.remove(name);
        match self.mvs.remove(name) {
            Some(mv) => {
                self.index.remove(name);
                if let Some(set) = self.by_tables.get_mut(&mv.base_tables) {
                    set.remove(name);
                }
                for t in &mv.base_tables {
                    if let Some(set) = self.by_table.get_mut(t) {
                        set.remove(name);
                    }
                }
                true
            }
            None => false,
        }
    }

    /// Changes whenever the catalog changes in a way that can change a rewrite.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The MV of this name.
    pub fn get(&self, name: &str) -> Option<&Arc<MaterializedView>> {
        self.mvs.get(name)
    }

    /// Whether an MV of this name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.mvs.contains_key(name)
    }

    /// How many MVs are registered.
    pub fn len(&self) -> usize {
        self.mvs.len()
    }

    /// Whether no MV is registered.
    pub fn is_empty(&self) -> bool {
        self.mvs.is_empty()
    }

    /// Every registered MV.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<MaterializedView>> {
        self.mvs.values()
    }

    /// The MVs over exactly `tables` (a union MV answers only a union of the same branches
    /// over them). A hash lookup, so thousands of unrelated MVs cost nothing.
    pub(crate) fn candidates(&self, tables: &BTreeSet<String>) -> Vec<Arc<MaterializedView>> {
        self.by_tables
            .get(tables)
            .into_iter()
            .flat_map(|mvs| mvs.values().cloned())
            .collect()
    }

    /// Whether any MV reads one of `tables` (a cheap test before any rewriting work).
    pub(crate) fn has_mvs_over(&self, tables: &BTreeSet<String>) -> bool {
        tables
            .iter()
            .any(|t| self.by_table.get(t).is_some_and(|mvs| !mvs.is_empty()))
    }

    /// The MVs that may answer part of a plan, with their slots in the index
    /// ([`MvIndex::may_answer`]).
    pub(crate) fn may_answer(
        &self,
        read: &BTreeSet<String>,
        scans: &HashMap<String, Vec<BTreeSet<String>>>,
    ) -> Vec<(usize, &Arc<MaterializedView>)> {
        let joins_declared = self.constraints.has_foreign_keys();
        self.index.may_answer(read, scans, joins_declared)
    }

    /// [`MvIndex::cannot_answer_region`].
    pub(crate) fn cannot_answer_region(
        &self,
        tables: &BTreeSet<String>,
        columns: &BTreeSet<String>,
        needed: &BTreeSet<String>,
    ) -> FixedBitSet {
        self.index.cannot_answer_region(tables, columns, needed)
    }

    /// MVs that read some of `tables`, by name.
    pub(crate) fn reading_any(&self, tables: &BTreeSet<String>) -> Vec<Arc<MaterializedView>> {
        let mut found: Vec<&Arc<MaterializedView>> = tables
            .iter()
            .filter_map(|t| self.by_table.get(t))
            .flat_map(|mvs| mvs.values())
            .collect();
        if tables.len() > 1 {
            found.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            found.dedup_by(|a, b| a.name == b.name);
        }
        found.into_iter().cloned().collect()
    }

    /// Records a write to a table (or an MV's recomputation) and returns its new version: the
    /// MVs computed from an older one are stale from now on.
    pub(crate) fn record_write(&mut self, table: &str, change: Change) -> u64 {
        self.version += 1;
        let version = self.versions.record(table, change);
        // No MV computed from the table needs the write (MVs created later start from now).
        if !self.oldest_needed().contains_key(table) {
            self.versions.prune(table, version);
        }
        self.restrict_readers_of(table);
        version
    }

    pub(crate) fn versions(&self) -> &Versions {
        &self.versions
    }

    /// Restores table versions saved before a restart, and the writes of files behind them.
    pub(crate) fn restore_versions(
        &mut self,
        versions: BTreeMap<String, u64>,
        file_writes: BTreeMap<String, Vec<FileWrite>>,
    ) {
        self.versions.restore(versions);
        self.versions.restore_file_writes(file_writes);
    }

    /// Records that `mv` was computed from these versions of its inputs (now), and forgets
    /// writes no MV needs any more.
    pub(crate) fn set_computed(&mut self, mv: &str, from: BTreeMap<String, u64>, at: SystemTime) {
        self.version += 1;
        self.failed.remove(mv);
        self.unrestrict(mv);
        self.computed.insert(mv.to_string(), Computed { from, at });
        for (t, v) in self.oldest_needed() {
            self.versions.prune(&t, v);
        }
    }

    /// Per table, the oldest version an MV was computed from (restored or still awaited):
    /// the writes after it are needed.
    fn oldest_needed(&self) -> HashMap<String, u64> {
        let mut oldest: HashMap<String, u64> = self.awaiting.clone();
        for c in self.computed.values() {
            for (t, v) in &c.from {
                let o = oldest.entry(t.clone()).or_insert(*v);
                *o = (*o).min(*v);
            }
        }
        oldest
    }

    /// The versions MVs kept in the store but not restored yet were computed from (replacing
    /// what was set before).
    pub(crate) fn set_awaiting<'a>(
        &mut self,
        computed_from: impl IntoIterator<Item = &'a BTreeMap<String, u64>>,
    ) {
        self.awaiting.clear();
        for from in computed_from {
            for (t, v) in from {
                let o = self.awaiting.entry(t.clone()).or_insert(*v);
                *o = (*o).min(*v);
            }
        }
    }

    /// The versions `mv` was computed from, and when (none for MVs registered without data).
    pub(crate) fn computed(&self, mv: &str) -> Option<&Computed> {
        self.computed.get(mv)
    }

    /// Marks `mv` stale because its refresh failed: its previous data stays, and it does not
    /// answer until a refresh succeeds.
    pub(crate) fn refresh_failed(&mut self, mv: &str, why: &str) {
        self.version += 1;
        self.unrestrict(mv);
        self.failed.insert(
            mv.to_string(),
            Stale {
                since: SystemTime::now(),
                cause: format!("its refresh failed: {why}"),
            },
        );
    }

    /// Whether and since when `mv` is stale: an input written after it was computed, an input
    /// MV that is stale itself, or a failed refresh.
    pub fn stale(&self, mv: &str) -> Option<Stale> {
        self.stale_within(mv, 0)
    }

    fn stale_within(&self, mv: &str, depth: usize) -> Option<Stale> {
        let failed = self.failed.get(mv);
        let Some(computed) = self.computed.get(mv) else {
            return failed.cloned();
        };
        let mut earliest: Option<Stale> = None;
        for (input, version) in &computed.from {
            let stale = match self
                .versions
                .first_write_after(input, *version, computed.at)
            {
                Some(since) => Some(Stale {
                    since,
                    cause: match self.versions.files_changed_since(input, *version) {
                        Some(files) => format!("{input}: {files} since {mv} was computed"),
                        None => format!("{input} was written after {mv} was computed"),
                    },
                }),
                // Dependencies form no cycle (`crate::lifecycle::dependencies`); the bound is a safety net.
                None if depth < 64 && self.mvs.contains_key(input) => {
                    self.stale_within(input, depth + 1).map(|s| Stale {
                        since: s.since,
                        cause: format!("it reads {input}, which is {s}"),
                    })
                }
                None => None,
            };
            if let Some(s) = stale
                && earliest.as_ref().is_none_or(|e| s.since < e.since)
            {
                earliest = Some(s);
            }
        }
        // A failed refresh is the cause to report; staleness started at the earliest write.
        match (failed, earliest) {
            (Some(f), Some(e)) => Some(Stale {
                since: f.since.min(e.since),
                cause: f.cause.clone(),
            }),
            (Some(f), None) => Some(f.clone()),
            (None, e) => e,
        }
    }

    /// MVs answer only in ways that add no UNION ALL to a plan: a stale MV no longer answers
    /// for its unchanged partitions (src/catalog/partitions.rs), nor a region in parts
    /// (src/forms/parts.rs). For sessions on a Ballista cluster: Ballista 55 returns no rows
    /// at all for a UNION ALL one side of which has none, under an aggregate.
    pub fn answer_without_unions(&mut self) {
        self.version += 1;
        self.without_unions = true;
        let all: Vec<String> = self.computed.keys().cloned().collect();
        all.iter().for_each(|mv| self.restrict(mv));
    }

    /// Whether answers may add a UNION ALL to plans ([`Catalog::answer_without_unions`]).
    pub(crate) fn may_add_unions(&self) -> bool {
        !self.without_unions
    }

    /// Sets the staleness allowed to every MV without its own.
    pub fn set_staleness(&mut self, staleness: Staleness) {
        self.version += 1;
        self.staleness = staleness;
        let all: Vec<String> = self.computed.keys().cloned().collect();
        all.iter().for_each(|mv| self.restrict(mv));
    }

    /// Sets the staleness allowed to one MV (`None`: the session's).
    pub fn set_mv_staleness(&mut self, mv: &str, staleness: Option<Staleness>) {
        self.version += 1;
        match staleness {
            Some(s) => self.mv_staleness.insert(mv.to_string(), s),
            None => self.mv_staleness.remove(mv),
        };
        self.restrict(mv);
    }

    /// The staleness set on `mv` itself, if any.
    pub fn own_staleness(&self, mv: &str) -> Option<Staleness> {
        self.mv_staleness.get(mv).copied()
    }

    /// The staleness `mv` is allowed.
    pub fn staleness_of(&self, mv: &str) -> Staleness {
        self.mv_staleness.get(mv).copied().unwrap_or(self.staleness)
    }

    /// Why `mv` may not answer because it is stale, if so.
    pub(crate) fn stale_rejection(&self, mv: &str) -> Option<String> {
        if self.partly.contains_key(mv) {
            return None;
        }
        let stale = self.stale(mv)?;
        let mode = self.staleness_of(mv);
        (!mode.allows(stale.since)).then(|| {
            format!("{mv} is {stale}; REFRESH MATERIALIZED VIEW {mv} to use it again (staleness = {mode})")
        })
    }

    /// What to report when a stale `mv` answers because its staleness allows it.
    pub(crate) fn stale_note(&self, mv: &str) -> Option<String> {
        if let Some(partly) = self.partly.get(mv) {
            return Some(partly.note(mv));
        }
        let stale = self.stale(mv)?;
        let mode = self.staleness_of(mv);
        mode.allows(stale.since)
            .then(|| format!("{mv} answered although {stale} (staleness = {mode})"))
    }

    /// Follows `table`'s files from now on (its first listing is the baseline); a table already
    /// followed over the same files keeps its listing.
    pub(crate) fn follow_files(&mut self, table: &str, file_table: FileTable) {
        match self.files.get_mut(table) {
            Some(followed) if followed.same_files_as(&file_table) => {}
            // The same Delta log at another version (time travel): the next reading compares
            // the versions.
            Some(followed) if followed.same_log_as(&file_table) => {
                followed.read_through(file_table)
            }
            // New, or replaced by a table over other files (a write the session recorded).
            _ => {
                let mut file_table = file_table;
                if let Some(saved) = self.saved_listings.remove(table) {
                    file_table.seed(saved);
                }
                self.files.insert(table.to_string(), file_table);
            }
        }
    }

    /// The file tables among `tables` (some MV reads, unless `all`) whose listing cannot stand
    /// for a query planned at `as_of`: those to list again.
    pub(crate) fn to_list(
        &self,
        tables: &BTreeSet<String>,
        as_of: SystemTime,
        all: bool,
    ) -> Vec<(String, FileTable)> {
        tables
            .iter()
            .filter_map(|t| Some((t, self.files.get(t)?)))
            .filter(|(t, f)| {
                (all || self.by_table.contains_key(*t)) && !f.listed_for(as_of, self.file_listing)
            })
            .map(|(t, f)| (t.clone(), f.clone()))
            .collect()
    }

    /// Records a listing of `table`: a change from the last one is a write.
    pub(crate) fn record_listing(&mut self, table: &str, listed: Listed) {
        self.listings += 1;
        let Some(followed) = self.files.get_mut(table) else {
            return;
        };
        if let Some(change) = followed.record(listed) {
            self.record_write(table, change);
        }
    }

    /// A file table whose files could not be listed: its MVs are stale until a listing and a
    /// refresh succeed, with why.
    /// Only the first failure in a row is a write: while the store stays unreachable, the
    /// writes kept for incremental refresh do not grow with every query planned.
    pub(crate) fn listing_failed(&mut self, table: &str, why: String) {
        self.listings += 1;
        if self.files.get_mut(table).is_some_and(|f| f.failed(&why)) {
            self.record_write(table, Change::Rewrite(format!("not listed ({why})")));
        }
    }

    /// The last listing of every table on files, as the data directory saves them beside the
    /// versions they go with.
    pub(crate) fn file_listings(&self) -> BTreeMap<String, TableState> {
        let mut listings: BTreeMap<String, TableState> = self
            .saved_listings
            .iter()
            .map(|(t, f)| (t.clone(), f.clone()))
            .collect();
        for (table, followed) in &self.files {
            if let Some(files) = followed.listing() {
                listings.insert(table.clone(), files.clone());
            }
        }
        listings
    }

    /// Listings saved before a restart: each table's first listing is compared with its own.
    pub(crate) fn restore_listings(&mut self, listings: BTreeMap<String, TableState>) {
        self.saved_listings.extend(listings);
    }

    /// The version each versioned table among `tables` was last seen at: what the versions
    /// recorded now go with, and what a refresh reads (`crate::lifecycle::files`).
    pub(crate) fn seen_versions(&self, tables: &BTreeSet<String>) -> BTreeMap<String, u64> {
        tables
            .iter()
            .filter_map(|t| match self.files.get(t)?.listing()? {
                TableState::Version(v) => Some((t.clone(), *v)),
                TableState::Files(_) => None,
            })
            .collect()
    }

    /// Why one of `tables` cannot be read, if its last listing said so (a Delta table whose
    /// log could not be read).
    pub(crate) fn unreadable(&self, tables: &BTreeSet<String>) -> Option<MvError> {
        tables
            .iter()
            .find_map(|t| self.files.get(t).and_then(FileTable::unreadable))
    }

    /// The table on files `table` is, if the catalog follows it.
    pub(crate) fn file_table(&self, table: &str) -> Option<&FileTable> {
        self.files.get(table)
    }

    /// Sets when a file table's listing may stand for a query being planned.
    pub fn set_file_listing(&mut self, listing: FileListing) {
        self.file_listing = listing;
        self.version += 1;
    }

    /// When a file table's listing may stand for a query being planned.
    pub fn file_listing(&self) -> FileListing {
        self.file_listing
    }

    /// How many listings of tables on files were made (or failed) so far.
    pub fn listings_made(&self) -> u64 {
        self.listings
    }

    /// Records a base table's row count for costing.
    pub fn set_table_rows(&mut self, table: impl Into<String>, rows: u64) {
        self.version += 1;
        self.table_rows.insert(table.into(), rows);
    }

    /// A base table's row count, when recorded.
    pub fn table_rows(&self, table: &str) -> Option<u64> {
        self.table_rows.get(table).copied()
    }

    /// Declares a unique or foreign key (trusted: a wrong key gives wrong answers, see the joins guide).
    pub fn declare_key(&mut self, key: DeclaredKey) -> Result<()> {
        self.version += 1;
        match key {
            DeclaredKey::Unique { table, columns } => {
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                self.constraints.declare_unique(&table, &columns);
                Ok(())
            }
            DeclaredKey::Foreign(key) => self
                .constraints
                .declare_foreign_key(key)
                .map_err(MvError::InvalidKey),
        }
    }

    /// Forgets the keys on or referencing `table` (dropped or replaced).
    pub(crate) fn forget_keys(&mut self, table: &str) {
        self.version += 1;
        self.constraints.forget(table);
    }

    pub(crate) fn constraints(&self) -> &Constraints {
        &self.constraints
    }

    /// Makes `mv` refresh after each write to its base tables, or not.
    pub fn set_on_commit(&mut self, mv: &str, on_commit: bool) {
        if on_commit {
            self.on_commit.insert(mv.to_string());
        } else {
            self.on_commit.remove(mv);
        }
    }

    /// Whether `mv` refreshes after each write to its inputs.
    pub fn is_on_commit(&self, mv: &str) -> bool {
        self.on_commit.contains(mv)
    }
}
