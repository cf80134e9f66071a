//! The standalone `rewrite` call: base-table schemas and MV definitions in, rewritten plan, SQL
//! and report out. Nothing is executed; MVs are known by their definitions only.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::common::TableReference;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{
    DdlStatement, LogicalPlan, logical_plan::builder::LogicalTableSource,
};
use datafusion::prelude::SessionContext;
use futures::executor::block_on;

use crate::catalog::definition::{normalize_definition, plan_definition};
use crate::catalog::{Catalog, MaterializedView};
use crate::engine::Engine;
use crate::error::{MvError, Result};
use crate::frontend::sql::{MvStatement, mv_statement, parse_create_mv, standard_sql};
use crate::report::Report;

/// What [`Rewriter::rewrite_sql`] and [`Rewriter::rewrite`] return.
#[derive(Clone, Debug)]
pub struct RewriteResult {
    /// The plan DataFusion optimized, before mvrewrite.
    pub original: LogicalPlan,
    /// The rewritten plan (equal to `original` when no MV answers).
    pub plan: LogicalPlan,
    /// `plan` as SQL, by DataFusion's unparser (`None` if it cannot write the plan, or writes
    /// text that does not plan).
    pub sql: Option<String>,
    /// Whether an MV answers any part of the query.
    pub rewritten: bool,
    /// The MVs `plan` reads.
    pub used_mvs: Vec<String>,
    /// Which MVs were used, and why the others were not.
    pub report: Report,
}

/// Rewrites queries against MVs known only by their definitions.
///
/// ```
/// use mvrewrite::Rewriter;
/// let mut rw = Rewriter::new();
/// rw.execute("CREATE TABLE sales (country VARCHAR, sex VARCHAR, quantity INT, price DOUBLE)").unwrap();
/// rw.execute("CREATE MATERIALIZED VIEW by_sex AS SELECT sex, country, sum(quantity) AS q FROM sales GROUP BY sex, country").unwrap();
/// let r = rw.rewrite_sql("SELECT sex, sum(quantity) FROM sales GROUP BY sex").unwrap();
/// assert_eq!(r.used_mvs, vec!["by_sex"]);
/// assert!(r.sql.unwrap().contains("by_sex"));
/// ```
pub struct Rewriter {
    ctx: SessionContext,
    catalog: Catalog,
    engine: Engine,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Rewriter {
    /// A rewriter with no tables and no MVs, and the built-in rule packs.
    pub fn new() -> Self {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_analyzer_rules(crate::frontend::spark_like::analyzer_rules())
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::frontend::time_functions::register(&ctx);
        crate::frontend::spark_aggregates::register(&ctx);
        Rewriter {
            ctx,
            catalog: Catalog::new(),
            engine: Engine::default(),
        }
    }

    fn state(&self) -> SessionState {
        self.ctx.state()
    }

    /// Runs DDL: `CREATE TABLE` (schema only), `CREATE MATERIALIZED VIEW`, `DROP MATERIALIZED
    /// VIEW`. Several statements may be given, separated by `;`.
    pub fn execute(&mut self, sql: &str) -> Result<()> {
        for statement in split_statements(&standard_sql(sql))? {
            match mv_statement(&statement)? {
                Some(MvStatement::Create(_)) => self.create_materialized_view(&statement)?,
                // Definitions only: there is nothing to recompute.
                Some(MvStatement::Refresh { name }) => {
                    if self.catalog.get(&name).is_none() {
                        return Err(MvError::UnknownMv(name));
                    }
                }
                // No data, so nothing is ever stale.
                Some(MvStatement::SetStaleness(_) | MvStatement::SetFileListing(_)) => {}
                Some(MvStatement::AddKeys(keys)) => {
                    for key in keys {
                        self.catalog.declare_key(key)?;
                    }
                }
                Some(MvStatement::Drop {
                    names, if_exists, ..
                }) => {
                    for name in names {
                        if self.catalog.drop_mv(&name) {
                            self.ctx.deregister_table(TableReference::bare(name))?;
                        } else if !if_exists {
                            return Err(MvError::UnknownMv(name));
                        }
                    }
                }
                None => self.run_statement(&statement)?,
            }
        }
        Ok(())
    }

    /// Runs a statement that is DataFusion's. A `CREATE EXTERNAL TABLE` that declares its
    /// columns only declares them: the rewriter reads no data, so its location (an object
    /// store this process may not reach) is never opened. One that does not must be read for
    /// its schema, as DataFusion does.
    fn run_statement(&mut self, statement: &str) -> Result<()> {
        let plan = block_on(self.ctx.state().create_logical_plan(statement))?;
        if let LogicalPlan::Ddl(DdlStatement::CreateExternalTable(create)) = &plan
            && !create.schema.fields().is_empty()
        {
            let name = create.name.table().to_string();
            return self.register_table(&name, Arc::clone(create.schema.inner()));
        }
        block_on(async { self.ctx.execute_logical_plan(plan).await?.collect().await })?;
        Ok(())
    }

    /// Declares a base table by its Arrow schema.
    pub fn register_table(&mut self, name: &str, schema: SchemaRef) -> Result<()> {
        if self.catalog.contains(name) {
            return Err(MvError::DuplicateMv(name.to_string()));
        }
        let table = MemTable::try_new(schema, vec![vec![]])?;
        self.ctx.register_table(name, Arc::new(table))?;
        Ok(())
    }

    /// Records a base table's row count, used to cost plans.
    pub fn set_table_rows(&mut self, table: &str, rows: u64) {
        self.catalog.set_table_rows(table, rows);
    }

    /// Registers `CREATE [OR REPLACE] MATERIALIZED VIEW [IF NOT EXISTS] name AS query`.
    pub fn create_materialized_view(&mut self, sql: &str) -> Result<()> {
        let create = parse_create_mv(&standard_sql(sql))?;
        if self.catalog.contains(&create.name) && create.if_not_exists {
            return Ok(());
        }
        let state = self.state();
        let plan = block_on(plan_definition(
            &state,
            &state,
            &create.query,
            &create.columns,
        ))?;
        self.add(&create.name, Some(create.query), plan, create.or_replace)
    }

    /// Registers an MV from a `(name, LogicalPlan)` pair.
    pub fn register_materialized_view(&mut self, name: &str, plan: LogicalPlan) -> Result<()> {
        let plan = normalize_definition(&self.state(), plan)?;
        self.add(name, None, plan, false)
    }

    fn add(
        &mut self,
        name: &str,
        sql: Option<String>,
        plan: LogicalPlan,
        replace: bool,
    ) -> Result<()> {
        if self.ctx.table_exist(TableReference::bare(name))? && !self.catalog.contains(name) {
            return Err(MvError::NameTaken {
                name: name.to_string(),
            });
        }
        let schema = crate::catalog::stored_schema(plan.schema());
        let source = Arc::new(LogicalTableSource::new(Arc::clone(&schema)));
        let mv = MaterializedView::new(name, sql, plan, source, None);
        self.catalog.register(mv, replace)?;
        // A table of the MV's columns (and no rows), so that SQL over it plans: the rewritten
        // SQL text is checked that way, and queries may read the MV by name.
        self.ctx.deregister_table(TableReference::bare(name))?;
        let table = MemTable::try_new(schema, vec![vec![]])?;
        self.ctx
            .register_table(TableReference::bare(name), Arc::new(table))?;
        Ok(())
    }

    /// The MVs registered so far.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Plans and rewrites a query.
    pub fn rewrite_sql(&self, sql: &str) -> Result<RewriteResult> {
        let state = self.state();
        let plan = block_on(state.create_logical_plan(&standard_sql(sql)))?;
        self.rewrite(&plan)
    }

    /// Rewrites a plan (optimized first with DataFusion's rules, as the optimizer rule sees it).
    pub fn rewrite(&self, plan: &LogicalPlan) -> Result<RewriteResult> {
        let state = self.state();
        let original = state.optimize(plan)?;
        let outcome = self.engine.rewrite(&original, &self.catalog);
        let plan = if outcome.rewritten {
            // Let DataFusion push projections and filters into the MV scan.
            state.optimize(&outcome.plan)?
        } else {
            original.clone()
        };
        // Text only if it plans again: not every plan can be written (src/frontend/unparse.rs).
        let sql = block_on(crate::frontend::unparse::checked_sql(&plan, &state));
        Ok(RewriteResult {
            original,
            used_mvs: outcome.report.used_mvs(),
            sql,
            plan,
            rewritten: outcome.rewritten,
            report: outcome.report,
        })
    }

    /// A schema-only source for scanning a registered MV (for callers building plans).
    pub fn mv_source(&self, name: &str) -> Option<Arc<dyn datafusion::logical_expr::TableSource>> {
        self.catalog.get(name).map(|mv| Arc::clone(&mv.source))
    }
}

/// Splits a script into statements with sqlparser's tokenizer (so `;` inside strings and
/// comments is safe); comments before a statement are dropped, and so are statements holding
/// nothing else.
pub fn split_statements(sql: &str) -> Result<Vec<String>> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    // Split on the tokenizer's semicolons, not the parser's statements: statements the parser
    // does not know (REFRESH MATERIALIZED VIEW) pass through as written.
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| MvError::Parse(e.to_string()))?;
    let mut statements = Vec::new();
    let (mut current, mut has_content) = (String::new(), false);
    for token in tokens {
        match token {
            Token::SemiColon => {
                if has_content {
                    statements.push(current.trim().to_string());
                }
                (current, has_content) = (String::new(), false);
            }
            // Comments and blanks before a statement are not part of it.
            Token::Whitespace(_) if !has_content => {}
            Token::Whitespace(_) => current.push_str(&token.to_string()),
            other => {
                has_content = true;
                current.push_str(&other.to_string());
            }
        }
    }
    if has_content {
        statements.push(current.trim().to_string());
    }
    Ok(statements)
}
