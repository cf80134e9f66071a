//! The DataFusion `OptimizerRule`: add it to any `SessionState` and queries are answered from
//! the MVs in its catalog.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};

use datafusion::common::Result;
use datafusion::common::alias::AliasGenerator;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{ApplyOrder, Optimizer, OptimizerConfig, OptimizerRule};

use crate::catalog::Catalog;
use crate::engine::{Engine, Explain};
use crate::report::Report;

/// Rewrites plans to read materialized views. Append it after DataFusion's own rules
/// (`SessionStateBuilder::with_optimizer_rule`): it expects simplified, pushed-down plans, and
/// DataFusion's later passes then push filters and projections into the MV scan.
///
/// MV definitions are normalized by DataFusion's optimizer, and a query must reach the engine
/// in the same shape to match. DataFusion calls the rule once per optimizer pass; rather than
/// running the whole optimizer again on the plan of the first pass (which once cost 59% of
/// TPC-H planning time), the rule waits for the pass in which DataFusion's rules no longer
/// change the plan: that plan is already normal. Only when the last pass arrives before that
/// (or the optimizer has one pass) does it normalize the plan itself. The passes of one
/// optimization are told from another's, however many run at once, by the alias generator
/// DataFusion makes for each, so the rewrite of a plan never depends on
/// what else is being planned. A plan that reaches the optimizer already optimized
/// elsewhere (no rule changes it in the first pass) is not rewritten: the optimizer stops
/// before the rule sees it a second time. Plans from SQL or the DataFrame API always change in
/// the first pass (projections are pushed into their scans).
pub struct MvRewriteRule {
    catalog: Arc<RwLock<Catalog>>,
    engine: Arc<Engine>,
    /// DataFusion's own rules, for the plans the rule must normalize itself, and to push
    /// projections and filters into the MV scans of a rewritten plan.
    normalizer: Optimizer,
    /// The passes of the optimizations under way, by the address of their alias generator: a
    /// session may plan many queries at once.
    passes: Mutex<Optimizations>,
    /// The last plan nothing was found for, with the catalog version and what the engine was
    /// given: a plan planned again needs no second attempt.
    last_miss: Mutex<Option<(u64, LogicalPlan, Decision)>>,
    last_decision: Mutex<Option<Decision>>,
}

/// What the rule keeps of its last rewrite to explain it: the report is written only when it
/// is read, so that planning does not pay for a sentence per MV.
#[derive(Clone)]
struct Decision {
    /// The plan the engine was given.
    input: LogicalPlan,
    catalog_version: u64,
    used: Vec<String>,
}

/// The optimizations the rule follows. DataFusion gives every `SessionState` made for a query
/// (`SessionContext::state`, hence every `sql()` and DataFrame) and every `OptimizerContext` an
/// alias generator of its own, and hands it to each rule in every pass: the generator's address
/// names one optimization exactly, unlike the query's start time, which two queries started at
/// once may share. The entry holds a weak reference, so the address cannot be reused while the
/// entry exists, and an entry whose state has been dropped is known to be over and is removed.
#[derive(Default)]
struct Optimizations {
    by_generator: HashMap<usize, Passes>,
    /// Dead entries are removed when the map reaches this size, then it is set to twice the
    /// live entries: memory follows the optimizations alive, not the queries ever planned, at
    /// an amortized constant cost per pass.
    sweep_at: usize,
}

/// Entries below which no sweep is made.
const SWEEP_MIN: usize = 64;

impl Optimizations {
    /// The passes of the optimization `generator` belongs to, new if it has none yet.
    fn of(&mut self, generator: &Arc<AliasGenerator>) -> &mut Passes {
        let key = Arc::as_ptr(generator) as usize;
        if !self.by_generator.contains_key(&key) && self.by_generator.len() >= self.sweep_at {
            self.by_generator
                .retain(|_, p| p.optimization.strong_count() > 0);
            self.sweep_at = (2 * self.by_generator.len()).max(SWEEP_MIN);
        }
        self.by_generator.entry(key).or_insert_with(|| Passes {
            optimization: Arc::downgrade(generator),
            calls: 0,
            last_output: None,
            introduced: HashSet::new(),
        })
    }

    /// The passes of `generator`'s optimization, if it has been seen.
    fn get(&mut self, generator: &Arc<AliasGenerator>) -> Option<&mut Passes> {
        self.by_generator
            .get_mut(&(Arc::as_ptr(generator) as usize))
    }
}

/// What the rule saw of one optimization of a query.
struct Passes {
    /// The optimization's alias generator: alive while the optimization's state is.
    optimization: Weak<AliasGenerator>,
    calls: usize,
    /// A hash of the plan the rule returned last: seeing it again means no other rule changed
    /// it. Not the plan itself: holding on to it would make the next pass copy every node it
    /// changes (`Arc::unwrap_or_clone`). Should two plans ever share a hash, the rule would
    /// rewrite a plan one pass early, which can cost a rewrite but never make one wrong.
    /// `None` after a pass whose plan no MV could answer (not hashed: nothing to wait for).
    last_output: Option<u64>,
    /// The MVs the rule's rewrite put into the plan; later passes over it have nothing to add.
    introduced: HashSet<String>,
}

/// What the rule does with the plan of one pass.
enum Step {
    /// Not yet normal: wait for the next pass.
    Wait,
    /// Normal (DataFusion's rules left it unchanged): rewrite it as it is. In the last pass,
    /// the rewritten plan is optimized here; otherwise DataFusion's next pass does it.
    Rewrite { last_pass: bool },
    /// The last chance before the optimizer stops: normalize it, then rewrite.
    NormalizeAndRewrite,
    /// No MV can answer any part of it (screened as it is: `Engine::none_can_answer`).
    /// `explained` when its report is to be kept: not in the first pass, because holding on to
    /// a plan makes the next pass copy every node it changes (`Arc::unwrap_or_clone`).
    Hopeless { explained: bool },
    /// Already rewritten in an earlier pass.
    Done,
}

impl std::fmt::Debug for MvRewriteRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MvRewriteRule").finish_non_exhaustive()
    }
}

impl MvRewriteRule {
    /// The rule over a catalog shared with whoever registers MVs in it (an [`crate::MvSession`]
    /// gives its own with `catalog()`).
    pub fn new(catalog: Arc<RwLock<Catalog>>, engine: Arc<Engine>) -> Self {
        MvRewriteRule {
            catalog,
            engine,
            normalizer: Optimizer::new(),
            passes: Mutex::new(Optimizations::default()),
            last_miss: Mutex::new(None),
            last_decision: Mutex::new(None),
        }
    }

    /// Forgets the last report (so the next one belongs to the next query).
    pub fn clear_report(&self) {
        if let Ok(mut last) = self.last_decision.lock() {
            *last = None;
        }
    }

    fn remember(&self, decision: Decision) {
        if let Ok(mut last) = self.last_decision.lock() {
            *last = Some(decision);
        }
    }

    /// The report of the last plan in which some MV was considered, written now: the same
    /// rewrite again, explaining every MV. Should the catalog have changed since (an MV
    /// created, refreshed or dropped, a table written), or a bounded staleness run out, its
    /// notes say so.
    pub fn last_report(&self) -> Option<Report> {
        let decision = self.last_decision.lock().ok()?.clone()?;
        let catalog = self.catalog.read().ok()?;
        let mut report = self.engine.rewrite(&decision.input, &catalog).report;
        if catalog.version() != decision.catalog_version || report.used_mvs() != decision.used {
            report.notes.push(format!(
                "the catalog changed after the query was planned; this report describes it as it is now (the plan reads {})",
                match decision.used.as_slice() {
                    [] => "no MV".to_string(),
                    used => used.join(", "),
                }
            ));
        }
        (!report.candidates.is_empty()).then_some(report)
    }

    /// Where `plan`, seen in a pass of the optimization `generator` belongs to, stands;
    /// `hopeless` when no MV can answer any part of it as it is.
    fn step(
        &self,
        plan: &LogicalPlan,
        generator: &Arc<AliasGenerator>,
        max_passes: usize,
        hopeless: bool,
    ) -> Step {
        let Ok(mut passes) = self.passes.lock() else {
            // Passes cannot be told apart: the plan may not be normal yet.
            return Step::NormalizeAndRewrite;
        };
        let p = passes.of(generator);
        p.calls += 1;
        // Later passes over the rewritten plan (and a new optimization of a query that reads
        // by name an MV the rule put into it: not rewritten again).
        if !p.introduced.is_empty() && reads_any(plan, &p.introduced) {
            p.last_output = None;
            return Step::Done;
        }
        let last_pass = p.calls >= max_passes;
        if hopeless {
            p.last_output = None;
            return Step::Hopeless {
                explained: p.calls > 1 || last_pass,
            };
        }
        let seen = fingerprint(plan);
        if p.last_output == Some(seen) {
            return Step::Rewrite { last_pass };
        }
        p.last_output = Some(seen);
        if last_pass {
            Step::NormalizeAndRewrite
        } else {
            Step::Wait
        }
    }

    /// Rewrites `plan` (normalized first if `normalize`), remembering the outcome; optimizes a
    /// rewritten plan if `optimize_rewritten`.
    fn rewrite_now(
        &self,
        plan: LogicalPlan,
        normalize: bool,
        optimize_rewritten: bool,
        catalog: &Catalog,
        config: &dyn OptimizerConfig,
    ) -> Transformed<LogicalPlan> {
        let input = if normalize {
            match self.normalizer.optimize(plan.clone(), config, |_, _| {}) {
                Ok(normalized) => normalized,
                Err(_) => return Transformed::no(plan),
            }
        } else {
            plan.clone()
        };
        let outcome = self
            .engine
            .rewrite_explaining(&input, catalog, Explain::UsedOnly);
        let decision = Decision {
            input,
            catalog_version: catalog.version(),
            used: outcome.report.used_mvs(),
        };
        if !outcome.rewritten {
            if let Ok(mut last) = self.last_miss.lock() {
                *last = Some((catalog.version(), plan.clone(), decision.clone()));
            }
            self.remember(decision);
            return Transformed::no(plan);
        }
        self.remember(decision);
        // A join back to other tables comes out as a filter over a cross join: DataFusion
        // turns it into a hash join and pushes projections into the MV scan, in its next pass
        // or, when none follows, here.
        let rewritten = if optimize_rewritten {
            self.normalizer
                .optimize(outcome.plan.clone(), config, |_, _| {})
                .unwrap_or(outcome.plan)
        } else {
            outcome.plan
        };
        if let Ok(mut passes) = self.passes.lock()
            && let Some(p) = passes.get(config.alias_generator())
        {
            p.introduced = outcome.report.used_mvs().into_iter().collect();
            p.last_output = Some(fingerprint(&rewritten));
        }
        Transformed::yes(rewritten)
    }
}

fn fingerprint(plan: &LogicalPlan) -> u64 {
    use std::hash::{Hash, Hasher};
    // FxHash: a plan hashes as many small fields, where SipHash spends most of its time.
    let mut hasher = rustc_hash::FxHasher::default();
    plan.hash(&mut hasher);
    hasher.finish()
}

/// Whether `plan` scans one of `tables`.
fn reads_any(plan: &LogicalPlan, tables: &HashSet<String>) -> bool {
    plan.exists(|node| {
        Ok(matches!(node, LogicalPlan::TableScan(scan)
            if tables.contains(scan.table_name.table())))
    })
    .unwrap_or(false)
}

impl OptimizerRule for MvRewriteRule {
    fn name(&self) -> &str {
        "mvrewrite"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if crate::frontend::rule_options::rewriting_off(config) {
            return Ok(Transformed::no(plan));
        }
        let tables = crate::plan::region::base_tables(&plan);
        // Files other writers changed since the last listing make the MVs over them stale
        // before anything is decided.
        if let Some(start) = config.query_execution_start_time() {
            crate::catalog::files::observe(&self.catalog, &tables, start.into(), false);
        }
        let Ok(catalog) = self.catalog.read() else {
            return Ok(Transformed::no(plan));
        };
        if !catalog.has_mvs_over(&tables) {
            return Ok(Transformed::no(plan));
        }
        let cached = self.last_miss.lock().ok().and_then(|last| {
            last.as_ref()
                .filter(|(v, p, _)| *v == catalog.version() && *p == plan)
                .map(|(_, _, decision)| decision.clone())
        });
        if let Some(decision) = cached {
            self.remember(decision);
            return Ok(Transformed::no(plan));
        }
        let hopeless = self.engine.none_can_answer(&plan, &catalog);
        Ok(
            match self.step(
                &plan,
                config.alias_generator(),
                config.options().optimizer.max_passes,
                hopeless,
            ) {
                Step::Wait | Step::Done => Transformed::no(plan),
                Step::Hopeless { explained: true } => {
                    self.remember(Decision {
                        input: plan.clone(),
                        catalog_version: catalog.version(),
                        used: vec![],
                    });
                    Transformed::no(plan)
                }
                Step::Hopeless { explained: false } => {
                    self.clear_report();
                    Transformed::no(plan)
                }
                Step::Rewrite { last_pass } => {
                    self.rewrite_now(plan, false, last_pass, &catalog, config)
                }
                Step::NormalizeAndRewrite => self.rewrite_now(plan, true, true, &catalog, config),
            },
        )
    }
}
