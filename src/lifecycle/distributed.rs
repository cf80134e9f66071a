//! A session whose plans run on a cluster (`crate::cluster`: Apache DataFusion Ballista): its
//! context's query planner sends them there, so queries and the computations of MVs run on
//! executors. Executors read tables only as datafusion-proto ships them without a codec of
//! its own: listing tables over files every node reaches. So MVs are kept in a store, and
//! the maintenance plans that read rows held in this process (an aggregate MV's new rows
//! merged with its previous generation) run here.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::OptimizerRule;
use datafusion::prelude::SessionContext;

use super::MvSession;
use crate::catalog::definition::NormalizedPlans;
use crate::error::Result;
use crate::frontend::rule_options::MvRewriteOptions;

impl MvSession {
    /// This session with its plans run where `upgrade`'s state plans them: `upgrade` is given
    /// the session's state (its tables, functions and the rewrite rule) and returns the state
    /// of a cluster client (Ballista's `upgrade_for_ballista`), which keeps its optimizer
    /// rules. Queries are then rewritten here and run on the cluster, and so are the
    /// computations of MVs, which must be kept in a store
    /// ([`crate::MvError::NoStoreOnCluster`] otherwise). The cluster's configuration (its
    /// string types, say) becomes the session's everywhere, so that MV definitions, queries
    /// and the plans run here agree.
    pub fn distributed(
        mut self,
        upgrade: impl FnOnce(SessionState) -> Result<SessionState>,
    ) -> Result<Self> {
        // Every state below shares the session's catalog list: none may build a default
        // catalog, which would replace the one holding its tables with an empty one. With
        // mvrewrite's settings, which go with the plans shipped (`rule_options.rs`).
        let shared = self
            .ctx
            .copied_config()
            .with_create_default_catalog_and_schema(false)
            .with_option_extension(MvRewriteOptions::default());
        let upgraded = upgrade(
            SessionStateBuilder::new_from_existing(self.ctx.state())
                .with_config(shared)
                .build(),
        )?;
        let config = upgraded
            .config()
            .clone()
            .with_create_default_catalog_and_schema(false);
        let configured = |state: SessionState| {
            SessionStateBuilder::new_from_existing(state)
                .with_config(config.clone())
                .build()
        };
        self.write_catalog()?.answer_without_unions();
        self.local = Some(configured(self.ctx.state()));
        self.plain = configured(self.plain.clone());
        // Normalized under the configuration before: planned again under the cluster's.
        self.normalized = NormalizedPlans::default();
        self.ctx = SessionContext::new_with_state(upgraded);
        Ok(self)
    }

    /// Whether the session's plans run on a cluster ([`MvSession::distributed`]).
    pub fn is_distributed(&self) -> bool {
        self.local.is_some()
    }

    /// The session's state before [`MvSession::distributed`] sent its plans elsewhere (the
    /// state itself otherwise): what a scheduler plans with, over the same tables and MVs.
    pub fn local_state(&self) -> SessionState {
        self.local.clone().unwrap_or_else(|| self.ctx.state())
    }

    /// The context the rows a statement answers with, computed in this process (rows
    /// written, MVs refreshed), are read in: this process's, as a cluster cannot read them.
    pub(super) fn answer_context(&self) -> SessionContext {
        match &self.local {
            Some(local) => SessionContext::new_with_state(local.clone()),
            None => self.ctx.clone(),
        }
    }

    /// The context a maintenance plan runs in, never rewritten: the cluster when every table
    /// it reads ships there, this process otherwise.
    pub(super) fn maintenance_context(&self, plan: &LogicalPlan) -> SessionContext {
        match &self.local {
            Some(local) if !ships(plan) => self.without_rule(local.clone()),
            _ => self.without_rewrites(),
        }
    }

    /// `state` without the rewrite rule, its other rules (DataFusion's, a cluster's) kept, and
    /// with rewriting off in the configuration its plans ship with, so that the scheduler's
    /// rule leaves them as they are too.
    pub(super) fn without_rule(&self, state: SessionState) -> SessionContext {
        let rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = state
            .optimizers()
            .iter()
            .filter(|r| r.name() != self.rule.name())
            .cloned()
            .collect();
        let mut config = state.config().clone();
        if let Some(options) = config
            .options_mut()
            .extensions
            .get_mut::<MvRewriteOptions>()
        {
            options.rewrite = false;
        }
        SessionContext::new_with_state(
            SessionStateBuilder::new_from_existing(state)
                .with_config(config.with_create_default_catalog_and_schema(false))
                .with_optimizer_rules(rules)
                .build(),
        )
    }
}

/// Whether every table `plan` reads is a listing table, which datafusion-proto ships to
/// executors as it is (paths, format, schema, partition columns).
fn ships(plan: &LogicalPlan) -> bool {
    let mut all = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            all &= source_as_provider(&scan.source)
                .is_ok_and(|p| (p.as_ref() as &dyn std::any::Any).is::<ListingTable>());
        }
        Ok(if all {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    all
}
