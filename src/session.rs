//! A ready DataFusion session with materialized views: `CREATE MATERIALIZED VIEW` runs the
//! definition, stores the result in memory, registers it, and queries are rewritten to use it.

use std::sync::{Arc, RwLock};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::provider_as_source;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::optimizer::Optimizer;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::{Catalog, MaterializedView};
use crate::definition::{normalize_definition, plan_definition};
use crate::engine::Engine;
use crate::error::{MvError, Result};
use crate::optimizer_rule::MvRewriteRule;
use crate::report::Report;
use crate::sql::{CreateMv, DeclaredKey, MvStatement, parse_mv_statement, standard_sql};

/// A `SessionContext` with the mvrewrite rule and an MV catalog.
pub struct MvSession {
    ctx: SessionContext,
    catalog: Arc<RwLock<Catalog>>,
    rule: Arc<MvRewriteRule>,
    /// The same configuration without the rule: MV definitions are normalized here.
    plain: SessionState,
}

impl Default for MvSession {
    fn default() -> Self {
        Self::new()
    }
}

impl MvSession {
    pub fn new() -> Self {
        Self::with_config(SessionConfig::new())
    }

    pub fn with_config(config: SessionConfig) -> Self {
        let catalog = Arc::new(RwLock::new(Catalog::new()));
        let rule = Arc::new(MvRewriteRule::new(
            Arc::clone(&catalog),
            Arc::new(Engine::default()),
        ));
        let state = SessionStateBuilder::new()
            .with_config(config.clone())
            .with_default_features()
            .with_analyzer_rules(crate::spark_like::analyzer_rules())
            .with_optimizer_rule(Arc::clone(&rule) as _)
            .build();
        let mut plain = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(crate::spark_like::analyzer_rules())
            .build();
        // CarbonData's and ClickHouse's bucket functions, in MV definitions and queries alike.
        for f in crate::timeseries::functions::functions() {
            // Registering a function replaces one of the same name; there is no failure path.
            let _ = plain.register_udf(Arc::new(f));
        }
        let ctx = SessionContext::new_with_state(state);
        crate::timeseries::register(&ctx);
        MvSession {
            ctx,
            catalog,
            rule,
            plain,
        }
    }

    /// The underlying DataFusion context: everything DataFusion offers works on it, and its
    /// queries (SQL or DataFrame) are rewritten.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// A context over the same tables, MVs and functions that never rewrites: what the queries
    /// would return and cost without mvrewrite, to compare with.
    pub fn without_rewrites(&self) -> SessionContext {
        let state = SessionStateBuilder::new_from_existing(self.ctx.state())
            .with_optimizer_rules(Optimizer::new().rules)
            .build();
        SessionContext::new_with_state(state)
    }

    pub fn catalog(&self) -> Arc<RwLock<Catalog>> {
        Arc::clone(&self.catalog)
    }

    /// The report of the last query for which an MV was considered.
    pub fn last_report(&self) -> Option<Report> {
        self.rule.last_report()
    }

    /// Forgets the last report.
    pub fn clear_report(&self) {
        self.rule.clear_report();
    }

    /// Registers in-memory data as a base table and records its row count for costing.
    pub fn register_batches(&self, name: &str, batches: Vec<RecordBatch>) -> Result<()> {
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| MvError::Internal(format!("no data for table {name}")))?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let table = MemTable::try_new(schema, vec![batches])?;
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, Arc::new(table))?;
        let mut catalog = self.write_catalog()?;
        catalog.set_table_rows(name, rows);
        catalog.mark_stale(name);
        Ok(())
    }

    /// Runs one SQL statement: MV statements are handled here, the rest by DataFusion.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let sql = standard_sql(sql);
        let sql = sql.as_ref();
        match parse_mv_statement(sql) {
            Ok(Some(MvStatement::Create(create))) => {
                self.create_materialized_view(&create).await?;
                Ok(self.ctx.read_empty()?)
            }
            Ok(Some(MvStatement::Refresh { name })) => {
                self.refresh_materialized_view(&name).await?;
                Ok(self.ctx.read_empty()?)
            }
            Ok(Some(MvStatement::AddKeys(keys))) => {
                for key in keys {
                    self.declare_key(key)?;
                }
                Ok(self.ctx.read_empty()?)
            }
            Ok(Some(MvStatement::Drop { names, if_exists })) => {
                for name in names {
                    self.drop_materialized_view(&name, if_exists)?;
                }
                Ok(self.ctx.read_empty()?)
            }
            // An MV statement mvrewrite read but cannot take.
            Err(e @ MvError::UnexpectedStatement { .. }) if parses_as_one_statement(sql) => Err(e),
            // Anything mvrewrite does not parse goes to DataFusion, which reports its own errors.
            Ok(None) | Err(_) => {
                let plan = self.ctx.state().create_logical_plan(sql).await?;
                let Some(table) = self.note_writes(&plan)? else {
                    return Ok(self.ctx.execute_logical_plan(plan).await?);
                };
                // A write runs now, so that the MVs refreshed on commit see it.
                let done = self.ctx.execute_logical_plan(plan).await?.collect().await?;
                let on_commit = self.read_catalog()?.on_commit_over(&table);
                for mv in on_commit {
                    if self.ctx.table_exist(table.as_str())? {
                        self.refresh_materialized_view(&mv).await?;
                    }
                }
                Ok(self.ctx.read_batches(done)?)
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

    /// Marks the MVs over a table this statement writes as stale (conservatively, when it is
    /// planned), and returns the table. Writes made on the context directly are not seen: see
    /// the README.
    fn note_writes(&self, plan: &LogicalPlan) -> Result<Option<String>> {
        let table = match plan {
            LogicalPlan::Dml(dml) => Some(dml.table_name.table().to_string()),
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(c)) if c.or_replace => {
                Some(c.name.table().to_string())
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(d)) => Some(d.name.table().to_string()),
            _ => None,
        };
        if let Some(table) = &table {
            self.write_catalog()?.mark_stale(table);
        }
        Ok(table)
    }

    /// Executes the definition, stores the result in memory and registers the MV.
    pub async fn create_materialized_view(&self, create: &CreateMv) -> Result<()> {
        let exists = self.read_catalog()?.contains(&create.name);
        if exists && create.if_not_exists {
            return Ok(());
        }
        if exists && !create.or_replace {
            return Err(MvError::DuplicateMv(create.name.clone()));
        }
        if !exists && self.ctx.table_exist(create.name.as_str())? {
            return Err(MvError::NameTaken {
                name: create.name.clone(),
            });
        }
        let plan = plan_definition(
            &self.ctx.state(),
            &self.plain,
            &create.query,
            &create.columns,
        )
        .await?;
        self.materialize(
            &create.name,
            Some(create.query.clone()),
            plan,
            create.or_replace,
        )
        .await?;
        self.write_catalog()?
            .set_on_commit(&create.name, create.on_commit);
        Ok(())
    }

    /// Recomputes an MV from its definition (re-planned from its SQL, so replaced tables are
    /// read anew), which makes a stale MV answer queries again.
    pub async fn refresh_materialized_view(&self, name: &str) -> Result<()> {
        let (sql, plan) = {
            let catalog = self.read_catalog()?;
            let mv = catalog
                .get(name)
                .ok_or_else(|| MvError::UnknownMv(name.to_string()))?;
            (mv.sql.clone(), mv.plan.clone())
        };
        let plan = match &sql {
            Some(query) => {
                let columns: Vec<String> = plan
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                plan_definition(&self.ctx.state(), &self.plain, query, &columns).await?
            }
            None => plan,
        };
        self.materialize(name, sql, plan, true).await
    }

    /// Registers an MV from a logical plan (for example a DataFrame's), materializing it.
    pub async fn create_materialized_view_from_plan(
        &self,
        name: &str,
        plan: LogicalPlan,
    ) -> Result<()> {
        if self.read_catalog()?.contains(name) {
            return Err(MvError::DuplicateMv(name.to_string()));
        }
        if self.ctx.table_exist(name)? {
            return Err(MvError::NameTaken {
                name: name.to_string(),
            });
        }
        let plan = normalize_definition(&self.plain, plan)?;
        self.materialize(name, None, plan, false).await
    }

    async fn materialize(
        &self,
        name: &str,
        sql: Option<String>,
        plan: LogicalPlan,
        replace: bool,
    ) -> Result<()> {
        let df = self.ctx.execute_logical_plan(plan.clone()).await?;
        let schema = crate::catalog::stored_schema(df.schema());
        let batches = df
            .collect()
            .await?
            .into_iter()
            .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let table = Arc::new(MemTable::try_new(schema, vec![batches])?);
        let mv = MaterializedView::new(
            name,
            sql,
            plan,
            provider_as_source(Arc::clone(&table) as _),
            Some(rows),
        );
        let mut catalog = self.write_catalog()?;
        if replace {
            self.ctx.deregister_table(name)?;
        }
        catalog.register(mv, replace)?;
        self.ctx.register_table(name, table)?;
        Ok(())
    }

    /// `DROP MATERIALIZED VIEW [IF EXISTS] name`.
    pub fn drop_materialized_view(&self, name: &str, if_exists: bool) -> Result<()> {
        let existed = self.write_catalog()?.drop_mv(name);
        if existed {
            self.ctx.deregister_table(name)?;
        } else if !if_exists {
            return Err(MvError::UnknownMv(name.to_string()));
        }
        Ok(())
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

/// Whether sqlparser reads `sql` as exactly one statement.
fn parses_as_one_statement(sql: &str) -> bool {
    use datafusion::sql::sqlparser::{dialect::GenericDialect, parser::Parser};
    Parser::parse_sql(&GenericDialect {}, sql).is_ok_and(|s| s.len() == 1)
}
