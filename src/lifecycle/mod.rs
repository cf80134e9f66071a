//! A ready DataFusion session with materialized views: `CREATE MATERIALIZED VIEW` runs the
//! definition, stores the result (in memory, or with a store as Parquet files other engines
//! read), and queries are rewritten to use it. Writes through the session are versioned, so a
//! stale MV never answers unless its staleness setting allows it (`crate::catalog::freshness`).
//!
//! `writes.rs` holds the writes to base tables, `refresh.rs` creating, refreshing (full or
//! incremental) and dropping MVs, `restore.rs` saving and restoring the store;
//! `incremental.rs` what an MV takes from appended rows, `storage.rs` where an MV's rows are
//! and the provider reading them, `materialize.rs` computing them there, `store.rs` the
//! store's generations of Parquet files, `persist.rs` its `catalog.json`,
//! `partitions.rs` refreshing only the changed partitions, `dependencies.rs` the graph of MVs,
//! `progress.rs` what long computations report as they run.
//!
//! May use: `frontend`, `engine`, `catalog` and everything below. Used by `cli`.

pub mod dependencies;
mod distributed;
mod files;
pub mod incremental;
mod materialize;
mod partitions;
pub mod persist;
mod place;
pub mod progress;
mod refresh;
mod restore;
pub mod storage;
pub mod store;
mod store_lock;
mod writes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::array::{StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::dataframe::DataFrame;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::optimizer::OptimizerRule;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::Catalog;
use crate::catalog::constraints::DeclaredKey;
use crate::catalog::definition::NormalizedPlans;
use crate::catalog::freshness::Staleness;
use crate::engine::Engine;
use crate::error::{MvError, Result};
use crate::frontend::optimizer_rule::MvRewriteRule;
use crate::frontend::sql::{MvStatement, mv_statement, standard_sql};
use crate::lifecycle::persist::{SavedCatalog, SavedMv};
use crate::lifecycle::progress::ProgressSink;
use crate::lifecycle::storage::Stored;
use crate::lifecycle::store::DataDir;
use crate::report::Report;

use refresh::Install;
pub use refresh::{RefreshMode, Refreshed};
pub use restore::Restored;

/// A `SessionContext` with the mvrewrite rule and an MV catalog.
pub struct MvSession {
    ctx: SessionContext,
    catalog: Arc<RwLock<Catalog>>,
    rule: Arc<MvRewriteRule>,
    /// The same configuration without the rule: MV definitions are normalized here.
    plain: SessionState,
    /// Each MV's definition as a refresh last planned it, to skip normalizing it again.
    normalized: NormalizedPlans,
    /// Each MV's rows.
    stored: Mutex<HashMap<String, Stored>>,
    /// Held by every write and every refresh: a refresh never interleaves with a write.
    maintenance: tokio::sync::Mutex<()>,
    /// Held while the catalog is saved: saves happen one at a time.
    saving: tokio::sync::Mutex<()>,
    /// Read while SQL is planned, written while a refresh swaps an MV's table (DataFusion
    /// replaces a table by removing it, then adding the new one): planning never finds the
    /// name of an MV being refreshed missing.
    naming: tokio::sync::RwLock<()>,
    /// Where MVs are persisted, if anywhere, and the MVs saved there not restored yet (every
    /// MV after those it reads): they stay saved until restored, replaced (OR REPLACE) or
    /// dropped, and their names are taken.
    data_dir: Option<DataDir>,
    pending: Mutex<Vec<SavedMv>>,
    /// For each kept MV a restore failed for, the tables it reads that were registered then:
    /// it is tried again once that changes.
    restore_tried: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// The number of the next generation written to the store.
    next_generation: AtomicU64,
    /// Where the progress of long computations goes, if anywhere.
    progress: Mutex<Option<ProgressSink>>,
    /// When the session's plans run on a cluster (`distributed.rs`), its state before: the
    /// plans that cannot ship run in it.
    local: Option<SessionState>,
}

impl Default for MvSession {
    fn default() -> Self {
        Self::new()
    }
}

impl MvSession {
    /// A session with DataFusion's default configuration.
    pub fn new() -> Self {
        Self::with_config(SessionConfig::new())
    }

    /// A session with this configuration (the rule, the time-bucket functions and Spark's
    /// LIKE are added to it).
    pub fn with_config(config: SessionConfig) -> Self {
        let catalog = Arc::new(RwLock::new(Catalog::new()));
        let rule = Arc::new(MvRewriteRule::new(
            Arc::clone(&catalog),
            Arc::new(Engine::default()),
        ));
        let runtime = files_runtime();
        let state = with_table_formats(SessionStateBuilder::new())
            .with_config(config.clone())
            .with_default_features()
            .with_runtime_env(Arc::clone(&runtime))
            .with_analyzer_rules(crate::frontend::spark_like::analyzer_rules())
            .with_optimizer_rule(Arc::clone(&rule) as _)
            .build();
        let mut plain = with_table_formats(SessionStateBuilder::new())
            .with_config(config)
            .with_default_features()
            .with_runtime_env(runtime)
            .with_analyzer_rules(crate::frontend::spark_like::analyzer_rules())
            .build();
        // CarbonData's and ClickHouse's bucket functions, in MV definitions and queries alike.
        for f in crate::frontend::time_functions::functions() {
            // Registering a function replaces one of the same name; there is no failure path.
            let _ = plain.register_udf(Arc::new(f));
        }
        // Spark's `skewness` and `kurtosis`, which DataFusion lacks.
        for f in crate::frontend::spark_aggregates::functions() {
            let _ = plain.register_udaf(Arc::new(f));
        }
        let ctx = SessionContext::new_with_state(state);
        crate::frontend::time_functions::register(&ctx);
        crate::frontend::spark_aggregates::register(&ctx);
        MvSession {
            ctx,
            catalog,
            rule,
            plain,
            normalized: NormalizedPlans::default(),
            stored: Mutex::new(HashMap::new()),
            maintenance: tokio::sync::Mutex::new(()),
            saving: tokio::sync::Mutex::new(()),
            naming: tokio::sync::RwLock::new(()),
            data_dir: None,
            pending: Mutex::new(Vec::new()),
            restore_tried: Mutex::new(BTreeMap::new()),
            next_generation: AtomicU64::new(1),
            progress: Mutex::new(None),
            local: None,
        }
    }

    /// A session whose MVs (definitions, rows as Parquet, freshness) are kept in the local
    /// directory `dir` and survive a restart: [`MvSession::with_store`] on a new session.
    pub async fn with_data_dir(dir: impl Into<std::path::PathBuf>) -> Result<Self> {
        Self::new().keep_in(DataDir::open(dir)?).await
    }

    /// This session with its MVs (definitions, rows as Parquet, freshness) kept in the store
    /// at `location`, where they survive a restart: a local path, a `file://` URL, or the URL
    /// of an object store registered on the session's runtime first
    /// (`context().register_object_store(..)`: S3, GCS, Azure, `memory://`). Register the base
    /// tables, then call [`MvSession::restore`] (or run statements through
    /// [`MvSession::sql`], which restores the kept MVs as soon as the tables they read are
    /// registered). The session locks the store: a second session on it is refused while this
    /// one lives. Generations of MV rows the catalog does not name (older ones, and those a
    /// refresh cut short left) are removed.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use datafusion::execution::object_store::ObjectStoreUrl;
    /// # use datafusion::object_store::memory::InMemory;
    /// # #[tokio::main] async fn main() -> mvrewrite::Result<()> {
    /// let session = mvrewrite::MvSession::new();
    /// let url = ObjectStoreUrl::parse("memory://")?;
    /// session.context().register_object_store(url.as_ref(), Arc::new(InMemory::new()));
    /// let session = session.with_store("memory:///mvs/").await?;
    /// session.sql("CREATE TABLE t (x INT) AS VALUES (1), (2)").await?;
    /// session.sql("CREATE MATERIALIZED VIEW total AS SELECT sum(x) AS s FROM t").await?;
    /// assert_eq!(session.mv_location("total")?.unwrap(), "memory:///mvs/total/1/");
    /// # Ok(()) }
    /// ```
    pub async fn with_store(self, location: &str) -> Result<Self> {
        let store = DataDir::open_at(location, &self.ctx.runtime_env())?;
        self.keep_in(store).await
    }

    /// This session reading the MVs of the store at `location`, which another session writes
    /// (it holds the store's lock): a Ballista scheduler planning with the MVs a client
    /// creates and refreshes (`crate::cluster`). Nothing is written there, nothing removed;
    /// register the base tables, then [`MvSession::restore`]. It sees the store as it was when
    /// opened: open another to see a later state.
    pub async fn following_store(mut self, location: &str) -> Result<Self> {
        let data = DataDir::open_at(location, &self.ctx.runtime_env())?;
        let saved = data.load().await?.unwrap_or_default();
        self.follow(&saved)?;
        self.next_generation = AtomicU64::new(saved.next_generation.max(1));
        self.data_dir = Some(data);
        self.pending = Mutex::new(saved.mvs);
        Ok(self)
    }

    /// The versions and listings `saved` recorded, taken as the catalog's.
    fn follow(&self, saved: &SavedCatalog) -> Result<()> {
        let mut catalog = self.write_catalog()?;
        catalog.restore_versions(saved.versions.clone(), saved.file_writes.clone());
        catalog.set_awaiting(saved.mvs.iter().map(|mv| &mv.computed_from));
        catalog.restore_listings(saved.file_listings.clone());
        Ok(())
    }

    async fn keep_in(mut self, mut data: DataDir) -> Result<Self> {
        data.lock().await?;
        let saved = data.load().await?.unwrap_or_default();
        self.follow(&saved)?;
        collect_garbage(&data, &saved).await;
        self.next_generation = AtomicU64::new(saved.next_generation.max(1));
        self.data_dir = Some(data);
        self.pending = Mutex::new(saved.mvs);
        Ok(self)
    }

    /// The store MVs are kept in, if any.
    pub fn data_dir(&self) -> Option<&DataDir> {
        self.data_dir.as_ref()
    }

    /// Where the rows of `mv` as it is now are, when it is kept in the store: a generation
    /// other engines can read as a Parquet table (`CREATE EXTERNAL TABLE .. LOCATION`), a
    /// directory or an object-store URL, never changed once published.
    pub fn mv_location(&self, mv: &str) -> Result<Option<String>> {
        let stored = self.lock_stored()?;
        Ok(
            match (&self.data_dir, stored.get(mv).and_then(Stored::generation)) {
                (Some(dir), Some(generation)) => {
                    Some(dir.generation_location(mv, generation.number))
                }
                _ => None,
            },
        )
    }

    /// DataFusion's logical plan of `sql`, planned in the session's context (nothing runs),
    /// never while a refresh swaps the table of an MV the statement names.
    pub async fn logical_plan(&self, sql: &str) -> Result<LogicalPlan> {
        let _naming = self.naming.read().await;
        Ok(self.ctx.state().create_logical_plan(sql).await?)
    }

    /// How stale an MV without its own setting may be and still answer (default: enforced).
    pub fn set_staleness(&self, staleness: Staleness) -> Result<()> {
        self.write_catalog()?.set_staleness(staleness);
        Ok(())
    }

    /// The underlying DataFusion context: everything DataFusion offers works on it, and its
    /// queries (SQL or DataFrame) are rewritten.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// A context over the same tables, MVs and functions that never rewrites: what the queries
    /// would return and cost without mvrewrite, to compare with.
    pub fn without_rewrites(&self) -> SessionContext {
        if self.is_distributed() {
            // The cluster's own rules (Ballista's) kept.
            return self.without_rule(self.ctx.state());
        }
        // The session's state with the rule taken out: a copy of the state, not a state built
        // again from its parts, which costs a refresh more than planning its plan does.
        let plain = SessionContext::new_with_state(self.ctx.state());
        plain.remove_optimizer_rule(self.rule.name());
        plain
    }

    /// The session's MV catalog, shared with its rule: to install the same rule elsewhere
    /// ([`crate::MvRewriteRule::new`]) or to inspect MVs.
    pub fn catalog(&self) -> Arc<RwLock<Catalog>> {
        Arc::clone(&self.catalog)
    }

    /// Reports the progress of MVs being computed (created, refreshed, compacted) and of
    /// restores to `sink`: the CLI prints it on stderr.
    pub fn on_progress(&self, sink: ProgressSink) {
        if let Ok(mut progress) = self.progress.lock() {
            *progress = Some(sink);
        }
    }

    /// The report of the last query for which an MV was considered.
    pub fn last_report(&self) -> Option<Report> {
        self.rule.last_report()
    }

    /// Forgets the last report.
    pub fn clear_report(&self) {
        self.rule.clear_report();
    }

    /// Runs one SQL statement: MV statements are handled here, writes are versioned, the rest
    /// is DataFusion's.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        self.sql_with_params(sql, None).await
    }

    /// [`MvSession::sql`] with values for the statement's placeholders (`$1`, `$name`), bound
    /// before it runs: a prepared INSERT writes the values, a prepared query is rewritten with
    /// them as literals. MV statements take none.
    pub async fn sql_with_params(
        &self,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<DataFrame> {
        // Tables registered since the last statement, however they were, may bring kept MVs back.
        self.restore_if_ready().await?;
        let sql = standard_sql(sql);
        let sql = sql.as_ref();
        let statement = mv_statement(sql);
        if params.is_some() && matches!(statement, Ok(Some(_))) {
            return Err(MvError::Input(
                "materialized view statements take no parameters".into(),
            ));
        }
        match statement {
            Ok(Some(MvStatement::Create(create))) => {
                self.create_materialized_view(&create).await?;
                Ok(self.ctx.read_empty()?)
            }
            Ok(Some(MvStatement::Refresh { name })) => {
                let done = self.refresh_materialized_view(&name).await?;
                Ok(self.answer_context().read_batch(refreshed_batch(&done)?)?)
            }
            Ok(Some(MvStatement::SetFileListing(listing))) => {
                self.write_catalog()?.set_file_listing(listing);
                Ok(self.ctx.read_empty()?)
            }
            Ok(Some(MvStatement::SetStaleness(staleness))) => {
                self.set_staleness(staleness)?;
                Ok(self.ctx.read_empty()?)
            }
            Ok(Some(MvStatement::AddKeys(keys))) => {
                for key in keys {
                    self.declare_key(key)?;
                }
                Ok(self.ctx.read_empty()?)
            }
            Ok(Some(MvStatement::Drop {
                names,
                if_exists,
                cascade,
            })) => {
                for name in names {
                    if cascade {
                        self.drop_materialized_view_cascade(&name, if_exists)
                            .await?;
                    } else {
                        self.drop_materialized_view(&name, if_exists).await?;
                    }
                }
                Ok(self.ctx.read_empty()?)
            }
            Err(e) => Err(e),
            // Anything else goes to DataFusion, which reports its own errors.
            Ok(None) => {
                let plan = self.logical_plan(sql).await?;
                let plan = match params {
                    Some(values) => plan.with_param_values(values)?,
                    None => plan,
                };
                let creates_table = matches!(
                    &plan,
                    LogicalPlan::Ddl(
                        DdlStatement::CreateExternalTable(_)
                            | DdlStatement::CreateMemoryTable(_)
                            | DdlStatement::CreateView(_)
                    )
                );
                let done = self.run_plan(plan).await?;
                // MVs kept in the store come back once the tables they read exist, whenever
                // those are registered; the others stay kept.
                if creates_table {
                    self.restore_if_ready().await?;
                }
                Ok(done)
            }
        }
    }

    /// Declares a unique or foreign key on registered tables (what `ALTER TABLE .. ADD PRIMARY
    /// KEY | UNIQUE | FOREIGN KEY` does): MVs joining more tables than a query may then answer
    /// it, through NOT NULL foreign keys to unique keys. Keys are trusted, not checked.
    pub fn declare_key(&self, key: DeclaredKey) -> Result<()> {
        let tables = match &key {
            DeclaredKey::Unique { table, .. } => vec![table.clone()],
            DeclaredKey::Foreign(fk) => vec![fk.table.clone(), fk.references.clone()],
        };
        for t in tables {
            if !self.ctx.table_exist(t.as_str())? {
                return Err(MvError::UnknownTable(t));
            }
        }
        self.write_catalog()?.declare_key(key)
    }

    fn read_catalog(&self) -> Result<std::sync::RwLockReadGuard<'_, Catalog>> {
        self.catalog
            .read()
            .map_err(|_| MvError::Internal("MV catalog lock poisoned".into()))
    }

    fn write_catalog(&self) -> Result<std::sync::RwLockWriteGuard<'_, Catalog>> {
        self.catalog
            .write()
            .map_err(|_| MvError::Internal("MV catalog lock poisoned".into()))
    }
}

/// The session's runtime: DataFusion's defaults, but for its list-files cache, which keeps a
/// directory's listing forever by default, so that neither a scan nor the session would see
/// files another writer adds (`crate::catalog::files` lists for freshness instead).
fn files_runtime() -> Arc<RuntimeEnv> {
    let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
    RuntimeEnvBuilder::new()
        .with_cache_manager(caches)
        .build_arc()
        .unwrap_or_default()
}

/// The table formats `CREATE EXTERNAL TABLE .. STORED AS` takes beyond DataFusion's: Delta
/// Lake (`DELTA`) with the `delta` feature.
fn with_table_formats(builder: SessionStateBuilder) -> SessionStateBuilder {
    #[cfg(feature = "delta")]
    let builder = builder.with_table_factory(
        "DELTA".into(),
        Arc::new(crate::catalog::delta::DeltaFactory),
    );
    builder
}

/// Removes the store's generations `saved` does not name, and points each MV's `current` at
/// the one it names (a process may have died between the two).
async fn collect_garbage(store: &DataDir, saved: &SavedCatalog) {
    let keep: BTreeMap<String, Option<u64>> = saved
        .mvs
        .iter()
        .map(|mv| (mv.name.clone(), mv.generation.as_ref().map(|g| g.number)))
        .collect();
    for (mv, generation) in &keep {
        if let Some(number) = generation {
            store.point_current(mv, *number);
        }
    }
    store.collect_garbage(&keep).await;
}

/// What `REFRESH MATERIALIZED VIEW` returns: one row per MV refreshed (inputs first), with how
/// and why.
fn refreshed_batch(done: &[Refreshed]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("mv", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
    ]));
    let strings =
        |f: fn(&Refreshed) -> String| Arc::new(StringArray::from_iter_values(done.iter().map(f)));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            strings(|r| r.mv.clone()),
            strings(|r| r.mode.to_string()),
            strings(|r| r.reason.clone()),
            Arc::new(UInt64Array::from_iter_values(done.iter().map(|r| r.rows))),
        ],
    )?)
}
