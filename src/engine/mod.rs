//! The rewrite pipeline for one plan: find regions, pick candidate MVs, build and saturate an
//! e-graph per region, extract the cheapest plan, convert it back, and report.
//!
//! May use: `forms`, `catalog`, `rules`, `egraph`, `plan`, `timeseries`, `report`. Called by
//! the `frontend` (the optimizer rule and the rewrite call).

pub mod screen;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{LogicalPlan, TableSource};
use egg::{EGraph, Extractor, Id, Language, Runner, SimpleScheduler, Symbol};

use crate::catalog::{Catalog, MaterializedView};
use crate::egraph::cost::{RowsRead, UNKNOWN_ROWS};
use crate::egraph::lang::{Node, PlanAnalysis, PlanGraph, display, list_items};
use crate::egraph::{RegionInEGraph, ToEGraph, ToPlan};
use crate::engine::screen::Screen;
use crate::forms::{
    join_back, join_equivalence, lossless, outer_join, parts, reaggregate, union, wider_aggregates,
};
use crate::plan::normal_form::regions_form;
use crate::plan::occurrences::Mapping;
use crate::plan::region::{self, Determinism};
use crate::plan::union_shape::union_shape;
use crate::plan::{dimensions, occurrences};
use crate::report::{Candidate, CandidateStatus, ReasonCode, Rejection, Report, SaturationStats};
use crate::rules::RuleSet;

/// Fixed bounds on saturation. Iteration and node limits make results deterministic; the time
/// limit is a safety net. When a limit stops saturation, extraction still returns a correct
/// plan (possibly the original), and the report names the limit.
#[derive(Clone, Debug)]
pub struct Limits {
    pub iterations: usize,
    pub nodes: usize,
    pub time: Duration,
    /// At most this many MVs enter one region's e-graph, the smallest first; the others are
    /// reported `candidate_limit`.
    pub candidates: usize,
    /// A region no MV answers whole is tried in two parts (src/parts.rs), by at most this
    /// many MVs' filters; 0 never splits one.
    pub parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            iterations: 10,
            nodes: 10_000,
            time: Duration::from_millis(500),
            candidates: 64,
            parts: 2,
        }
    }
}

/// The result of rewriting a plan.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The rewritten plan, or the original when nothing was rewritten.
    pub plan: LogicalPlan,
    pub rewritten: bool,
    pub report: Report,
}

/// How much a rewrite's report says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Explain {
    /// Every MV over the plan's tables, with why it was or was not used.
    All,
    /// Only the MVs used: no reason is written for the others. The optimizer rule rewrites
    /// in this mode, and writes the whole report only when it is read.
    UsedOnly,
}

/// Rule packs plus limits: everything needed to rewrite plans against a catalog.
pub struct Engine {
    rules: RuleSet,
    limits: Limits,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(RuleSet::builtin(), Limits::default())
    }
}

impl Engine {
    pub fn new(rules: RuleSet, limits: Limits) -> Self {
        Engine { rules, limits }
    }

    /// Rewrites every maximal region of `plan` that a cheaper MV can answer. Never fails: what
    /// cannot be rewritten is kept as it is, with the reason in the report.
    pub fn rewrite(&self, plan: &LogicalPlan, catalog: &Catalog) -> Outcome {
        self.rewrite_explaining(plan, catalog, Explain::All)
    }

    /// Whether no MV can answer any part of `plan`, judged from the tables and columns it
    /// reads and, for a plan over one table, the dimensions and aggregates it needs (no
    /// region is looked at): what planning a query no MV answers costs.
    pub fn none_can_answer(&self, plan: &LogicalPlan, catalog: &Catalog) -> bool {
        catalog.is_empty()
            || Screen::new(&regions_form(plan), catalog, &self.rules.rollups).none_can_answer()
    }

    /// [`Self::rewrite`], with a report that says as much as `explain` asks: the same plan
    /// whatever it asks.
    pub fn rewrite_explaining(
        &self,
        plan: &LogicalPlan,
        catalog: &Catalog,
        explain: Explain,
    ) -> Outcome {
        let mut statuses = BTreeMap::new();
        let mut report = Report::default();
        if catalog.is_empty() {
            return Outcome {
                plan: plan.clone(),
                rewritten: false,
                report,
            };
        }
        let normalized = regions_form(plan);
        let mut screen = Screen::new(&normalized, catalog, &self.rules.rollups);
        // Most plans no MV can answer are known as such before looking at any region.
        let hopeless = match explain {
            Explain::All => screen.all_hopeless(),
            Explain::UsedOnly => screen.none_can_answer().then(Vec::new),
        };
        if let Some(rejected) = hopeless {
            report.candidates = rejected
                .into_iter()
                .map(|(mv, status)| Candidate { mv, status })
                .collect();
            return Outcome {
                plan: plan.clone(),
                rewritten: false,
                report,
            };
        }
        // Tables (with how often each is read) of join regions already tried: their
        // sub-regions reading the same are the same question.
        let mut tried_joins = HashSet::new();
        let mut notes = Vec::new();
        // Tables read by answers not kept (grouping sets not rebuilt over a plain aggregate's
        // answer, parts not united), with why: such an MV was not used after all, unless
        // another region reads it.
        let mut unkept: BTreeMap<String, &str> = BTreeMap::new();
        // A plan already reading an MV is not split again: its other part, read from the
        // tables, is exactly the rows the MV does not hold.
        let may_split = self.limits.parts > 0
            && !region::base_tables(plan)
                .iter()
                .any(|t| catalog.contains(t));
        let result = normalized.as_ref().clone().transform_down(|node| {
            // A union MV answers a whole union; otherwise its branches are regions of their own.
            if let Some(shape) = union_shape(&node) {
                let answered = union::answer_union(&node, &shape, catalog, &mut |mv, status| {
                    note(&mut statuses, mv, status)
                });
                return Ok(match answered {
                    Some(new) => Transformed::new(new, true, TreeNodeRecursion::Jump),
                    None => Transformed::no(node),
                });
            }
            // `joins`: a region joining tables that need not be tried again below it (not for
            // a grouping-sets split, whose join alone may still be answered).
            let mut answer = |region: &LogicalPlan, joins: bool, statuses: &mut _| {
                if joins && !tried_joins.insert(occurrences::table_occurrences(region)) {
                    return None;
                }
                // A bug in a rule must cost the rewrite, never the query: keep the region.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let explained = (statuses, explain);
                    self.rewrite_region(region, catalog, &mut screen, explained, &mut report)
                }))
                .unwrap_or_else(|_| {
                    report.unsupported = Some("internal error while rewriting; plan kept".into());
                    None
                })
            };
            // Grouping sets over a plain aggregate an MV answers.
            match reaggregate::split_grouping_sets(&node, &self.rules.rollups) {
                Some(Ok(split))
                    if region::not_a_region(&split.inner, Determinism::AllowStable).is_none() =>
                {
                    if let Some(answered) = answer(&split.inner, false, &mut statuses) {
                        let read = region::base_tables(&answered);
                        match split.over(answered) {
                            Some(new) => {
                                return Ok(Transformed::new(new, true, TreeNodeRecursion::Jump));
                            }
                            None => unkept.extend(read.into_iter().map(|t| (t, NOT_REBUILT))),
                        }
                    }
                }
                Some(Err(why)) => notes.push(format!(
                    "the GROUPING SETS aggregate is not answered through a plain one: {why}"
                )),
                _ => {}
            }
            if region::not_a_region(&node, Determinism::AllowStable).is_some() {
                return Ok(Transformed::no(node));
            }
            // A join no MV answers whole may still have inputs that one answers, and an
            // aggregate over an aggregate its inner one.
            let joins = has_join(&node);
            if let Some(new) = answer(&node, joins, &mut statuses) {
                return Ok(Transformed::new(new, true, TreeNodeRecursion::Jump));
            }
            // The rows an MV's filter keeps from it, and the others from the tables.
            let conditions = if may_split {
                self.part_conditions(&statuses, catalog)
            } else {
                Vec::new()
            };
            for condition in conditions {
                let mut read = BTreeSet::new();
                let mut answer_part = |part: &LogicalPlan| {
                    let answered = answer(part, false, &mut statuses)?;
                    read = region::base_tables(&answered);
                    Some(answered)
                };
                let rollups = &self.rules.rollups;
                let in_parts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    parts::answer_in_parts(&node, &condition, rollups, &mut answer_part)
                }));
                match in_parts.ok().flatten() {
                    Some(new) => {
                        report.parts.push(format!(
                            "{} answers the rows where {}; the others are read from {}",
                            condition.mv,
                            crate::egraph::lang::sql_text(&condition.predicate),
                            condition.table
                        ));
                        return Ok(Transformed::new(new, true, TreeNodeRecursion::Jump));
                    }
                    None => unkept.extend(read.into_iter().map(|t| (t, NOT_UNITED))),
                }
            }
            let below = if joins || nests_aggregates(&node) {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Jump
            };
            Ok(Transformed::new(node, false, below))
        });
        if let Ok(t) = &result {
            let read = region::base_tables(&t.data);
            for (mv, why) in unkept.iter().filter(|(mv, _)| !read.contains(*mv)) {
                if statuses.get(mv) == Some(&CandidateStatus::Used) {
                    let r = Rejection::new(ReasonCode::UnsupportedQuery, *why);
                    statuses.insert(mv.clone(), CandidateStatus::Rejected(r));
                }
            }
        }
        report.candidates = statuses
            .into_iter()
            .filter(|(_, status)| explain == Explain::All || *status == CandidateStatus::Used)
            .map(|(mv, status)| Candidate { mv, status })
            .collect();
        report.notes = report
            .used_mvs()
            .iter()
            .filter_map(|mv| catalog.stale_note(mv))
            .chain(notes)
            .collect();
        match result {
            Ok(t) if t.transformed => Outcome {
                rewritten: true,
                plan: t.data,
                report,
            },
            Ok(_) => Outcome {
                rewritten: false,
                plan: plan.clone(),
                report,
            },
            Err(e) => {
                report.unsupported = Some(e.to_string());
                Outcome {
                    plan: plan.clone(),
                    rewritten: false,
                    report,
                }
            }
        }
    }

    /// Filters to answer a region in parts by (src/parts.rs): those of the MVs its own filter
    /// does not imply, at most [`Limits::parts`].
    fn part_conditions(
        &self,
        statuses: &BTreeMap<String, CandidateStatus>,
        catalog: &Catalog,
    ) -> Vec<parts::Condition> {
        statuses
            .iter()
            .filter(|(_, status)| {
                matches!(status, CandidateStatus::Rejected(r) if r.code == ReasonCode::FilterNotImplied)
            })
            // A stale MV's rows next to the table's current ones would mix two times (a row
            // updated out of its filter since would count twice).
            .filter(|(mv, _)| catalog.stale(mv).is_none())
            .filter_map(|(mv, _)| catalog.get(mv))
            .flat_map(|mv| parts::conditions(mv))
            .take(self.limits.parts)
            .collect()
    }

    fn rewrite_region(
        &self,
        region: &LogicalPlan,
        catalog: &Catalog,
        screen: &mut Screen,
        (statuses, explain): (&mut BTreeMap<String, CandidateStatus>, Explain),
        report: &mut Report,
    ) -> Option<LogicalPlan> {
        let tables = region::base_tables(region);
        let columns = region::base_columns(region);
        let needed = dimensions::needed_by_query(region);
        // The MVs over these tables first, then those over more tables, which may answer
        // through declared keys (src/lossless.rs), and those over some of them, which answer
        // their part joined back to the rest (src/join_back.rs); each by name.
        let reading = match explain {
            Explain::All => catalog.reading_any(&tables),
            Explain::UsedOnly => screen.hopeful(&tables, &columns, &needed),
        };
        let (exact, others): (Vec<_>, Vec<_>) =
            reading.into_iter().partition(|mv| mv.base_tables == tables);
        let mut wider = Vec::new();
        for mv in others {
            if settled(screen, statuses, &mv) {
                continue;
            }
            if mv.base_tables.is_subset(&tables) {
                wider.push(mv);
                continue;
            }
            match lossless::missing_key(catalog.constraints(), &tables, &mv.base_tables, &mv.name) {
                None => wider.push(mv),
                Some(r) => note(statuses, &mv.name, CandidateStatus::Rejected(r)),
            }
        }
        let mut considered: Vec<_> = exact
            .into_iter()
            .chain(wider)
            .filter(|mv| !settled(screen, statuses, mv))
            .collect();
        if considered.is_empty() {
            return None;
        }
        // Bounded work whatever the catalog: the MVs most like the query enter the e-graph
        // (`limit_candidates`). With more MVs than may enter, ranking them before the checks
        // below lets those checks stop once enough have passed, unless every MV is explained.
        let limit = self.limits.candidates;
        let ranked = considered.len() > limit;
        if ranked {
            rank_by_likeness(&mut considered, region, |mv| mv);
        }
        let group_columns = region::group_columns(region);
        let query_occurrences = occurrences::table_occurrences(region);

        // Each eligible MV with the mappings of its occurrences onto the query's (one unless
        // it reads a table several times: self-joins).
        let mut eligible = Vec::new();
        let mut variants = 0;
        for mv in considered {
            if ranked && variants > limit && explain == Explain::UsedOnly {
                break;
            }
            let rejection = if let Err(r) = &mv.eligibility {
                note(statuses, &mv.name, CandidateStatus::Ineligible(r.clone()));
                continue;
            } else if mv.is_union {
                let why = format!(
                    "{} is a UNION: it answers only a UNION of the same branches",
                    mv.name
                );
                Rejection::new(ReasonCode::UnionNotMatched, why)
            } else if let Some(why) = screen.stale_rejection(&mv) {
                Rejection::new(ReasonCode::Stale, why)
            } else if let Some(missing) = screen.missing_column(&mv, &tables, &columns) {
                // A cheap necessary condition: keeps most MVs that cannot answer out of the e-graph.
                column_missing(&missing, &group_columns, &mv.name)
            } else if let Some(unkept) = mv
                .dimensions
                .as_ref()
                .filter(|_| mv.base_tables == tables)
                .and_then(|kept| needed.difference(kept).next())
            {
                // Cheaper still than the e-graph: src/dimensions.rs.
                let grouped = group_columns
                    .iter()
                    .any(|g| g.split_once('.').is_some_and(|(_, c)| c == unkept));
                let (code, verb) = if grouped {
                    (ReasonCode::GroupByNotKept, "groups by")
                } else {
                    (ReasonCode::FilterNotOnGroupKeys, "filters on")
                };
                let reason = format!(
                    "the query {verb} {unkept}, which {} neither groups by nor filters on",
                    mv.name
                );
                Rejection::new(code, reason)
            } else {
                match occurrences::mappings(&query_occurrences, &mv.occurrences, &mv.name) {
                    Ok(mappings) => {
                        variants += mappings.len();
                        eligible.push((mv, mappings));
                        continue;
                    }
                    Err(r) => r,
                }
            };
            note(statuses, &mv.name, CandidateStatus::Rejected(rejection));
        }
        if eligible.is_empty() {
            return None;
        }
        if variants > limit {
            if !ranked {
                rank_by_likeness(&mut eligible, region, |(mv, _)| mv);
            }
            limit_candidates(&mut eligible, limit, statuses);
        }

        let mut egraph: PlanGraph = EGraph::new(PlanAnalysis::default());
        let mut table_sources = HashMap::new();
        let mut convert = ToEGraph::new(&mut egraph, &mut table_sources);
        let query = match convert.add_region(region) {
            Ok(q) => {
                convert.egraph.analysis.query = reachable_classes(convert.egraph, q.root);
                if join_equivalence::add_equal_column_forms(convert.egraph, &q) {
                    convert.egraph.analysis.query = reachable_classes(convert.egraph, q.root);
                }
                q
            }
            Err(why) => {
                report.unsupported = Some(why.clone());
                for (mv, _) in &eligible {
                    let r = Rejection::new(ReasonCode::UnsupportedQuery, why.clone());
                    note(statuses, &mv.name, CandidateStatus::Rejected(r));
                }
                return None;
            }
        };
        let mut mv_roots = Vec::new();
        let mut mv_sources: HashMap<Symbol, Arc<dyn TableSource>> = HashMap::new();
        // An MV reading a table several times is added once per mapping of its occurrences
        // onto the query's (self-joins).
        let variants = eligible
            .iter()
            .flat_map(|(mv, mappings)| mappings.iter().map(move |m| (mv, m)));
        for (mv, mapping) in variants {
            let added = convert
                .add_region_mapped(&mv.plan, mapping)
                .map_err(|why| Rejection::new(ReasonCode::Ineligible, why));
            let added = added.and_then(|def| {
                if mv.base_tables == tables {
                    let added =
                        outer_join::add_inner_as_outer(
                            convert.egraph,
                            &query,
                            &def,
                            convert.tables,
                        ) || wider_aggregates::add_wider_aggregates(convert.egraph, &query, &def);
                    if !added {
                        return Ok(def);
                    }
                } else if mv.base_tables.is_subset(&tables) {
                    join_back::add_join_back(
                        convert.egraph,
                        &query,
                        &def,
                        &mv.name,
                        &self.rules.rollups,
                    )?;
                } else {
                    let base = lossless::add_lossless_joins(
                        convert.egraph,
                        &query,
                        &def,
                        &mv.name,
                        catalog.constraints(),
                        convert.tables,
                    )?;
                    // The key joins make their columns equal: the joined form's GROUP BY or
                    // output on the query's foreign key may be read from the MV's unique key.
                    convert.egraph.analysis.query = reachable_classes(convert.egraph, query.root);
                    let joined = RegionInEGraph {
                        base,
                        ..query.clone()
                    };
                    join_equivalence::add_equal_column_forms(convert.egraph, &joined);
                }
                // The new form is part of the query: rules answer it.
                convert.egraph.analysis.query = reachable_classes(convert.egraph, query.root);
                Ok(def)
            });
            match added {
                Ok(def) => {
                    let name = Symbol::from(&mv.name);
                    let name_id = convert.egraph.add(Node::Name(name));
                    let cols = convert.egraph.add(Node::List(def.outputs.clone().into()));
                    let scan = convert.egraph.add(Node::Mv([name_id, cols]));
                    convert.egraph.union(def.root, scan);
                    convert.egraph.analysis.mv_roots.push(def.root);
                    mv_sources.insert(name, Arc::clone(&mv.source));
                    mv_roots.push((Arc::clone(mv), def));
                }
                Err(r) if r.code == ReasonCode::Ineligible => {
                    note(statuses, &mv.name, CandidateStatus::Ineligible(r));
                }
                Err(r) => note(statuses, &mv.name, CandidateStatus::Rejected(r)),
            }
        }
        let base_rows = tables
            .iter()
            .map(|t| catalog.table_rows(t).map_or(UNKNOWN_ROWS, |r| r as f64))
            .fold(1.0, f64::max);
        for t in &tables {
            let rows = catalog.table_rows(t).map_or(UNKNOWN_ROWS, |r| r as f64);
            egraph.analysis.rows.insert(Symbol::from(t), rows);
        }
        for (mv, def) in &mv_roots {
            let rows = estimated_rows(mv, def, &egraph, base_rows);
            egraph.analysis.rows.insert(Symbol::from(&mv.name), rows);
        }
        egraph.rebuild();

        let runner = Runner::default()
            .with_egraph(egraph)
            .with_iter_limit(self.limits.iterations)
            .with_node_limit(self.limits.nodes)
            .with_time_limit(self.limits.time)
            .with_scheduler(SimpleScheduler)
            .run(&self.rules.rewrites);
        let egraph = &runner.egraph;
        report.saturation.push(SaturationStats {
            iterations: runner.iterations.len(),
            nodes: egraph.total_number_of_nodes(),
            classes: egraph.number_of_classes(),
            stop_reason: runner
                .stop_reason
                .as_ref()
                .map_or("unknown".into(), |r| format!("{r:?}")),
        });

        let extractor = Extractor::new(egraph, RowsRead { egraph });
        let root = egraph.find(query.root);
        let used = used_mvs(egraph, &extractor, root);
        let reachable = reachable_mvs(egraph, root);
        let mut plan = None;
        if !used.is_empty() {
            let to_plan = ToPlan {
                egraph,
                best: &extractor,
                tables: &table_sources,
                mvs: &mv_sources,
                rebuilding: Default::default(),
            };
            match to_plan.root(root, region.schema()) {
                Ok(p) => plan = Some(p),
                Err(why) => report.unsupported = Some(format!("could not build the plan: {why}")),
            }
        }
        // Self-join MVs some mapping of whose occurrences reads the query's very rows: a filter
        // that did not match under another mapping is not why they failed.
        let mut mappings_of: HashMap<&str, usize> = HashMap::new();
        for (mv, _) in &mv_roots {
            *mappings_of.entry(mv.name.as_str()).or_default() += 1;
        }
        let same_rows: HashSet<&str> = mv_roots
            .iter()
            .filter(|(mv, def)| {
                mappings_of[mv.name.as_str()] > 1
                    && egraph.find(def.base) == egraph.find(query.base)
            })
            .map(|(mv, _)| mv.name.as_str())
            .collect();
        for (mv, def) in &mv_roots {
            let name = Symbol::from(&mv.name);
            let status = if plan.is_some() && used.contains(&name) {
                CandidateStatus::Used
            } else if reachable.contains(&name) {
                CandidateStatus::MoreExpensive
            } else {
                // The most specific reason; among equals the last, as later iterations know
                // more equalities than earlier ones.
                let recorded = egraph
                    .analysis
                    .rejections
                    .iter()
                    .filter(|(m, r)| {
                        *m == name
                            && !(r.code == ReasonCode::FilterNotImplied
                                && same_rows.contains(mv.name.as_str()))
                    })
                    .max_by_key(|(_, r)| r.code.specificity())
                    .map(|(_, r)| r.clone());
                CandidateStatus::Rejected(
                    recorded.unwrap_or_else(|| diagnose(egraph, &query, def, &mv.name)),
                )
            };
            note(statuses, &mv.name, status);
        }
        plan
    }
}

/// Why an MV that answered part of a region was not used after all.
const NOT_REBUILT: &str = "it answers the plain aggregate under the GROUPING SETS, but the sets could not be rebuilt over it";
const NOT_UNITED: &str =
    "it answers the rows its filter keeps, but they could not be united with the others";

/// The query reads `missing` (`table.column`), which `mv` does not keep.
pub fn column_missing(missing: &str, group_columns: &BTreeSet<String>, mv: &str) -> Rejection {
    let (code, verb) = if group_columns.contains(missing) {
        (ReasonCode::GroupByNotKept, "groups by")
    } else {
        (ReasonCode::ColumnMissing, "reads")
    };
    Rejection::new(
        code,
        format!("the query {verb} {missing}, which {mv} does not keep"),
    )
}

/// How much a status says: a more telling one replaces a less telling one.
fn rank(status: &CandidateStatus) -> u8 {
    match status {
        CandidateStatus::Used => 0,
        CandidateStatus::MoreExpensive => 1,
        CandidateStatus::Rejected(r) if r.code != ReasonCode::DifferentTables => 2,
        CandidateStatus::Ineligible(_) => 3,
        CandidateStatus::Rejected(_) => 4,
    }
}

/// Orders MVs most like `region` first (sharing its filters, keys and aggregates), then the
/// smallest, then by name: the order in which they enter a bounded e-graph.
fn rank_by_likeness<T>(
    items: &mut [T],
    region: &LogicalPlan,
    mv: impl Fn(&T) -> &Arc<MaterializedView>,
) {
    let wanted = region::signature(region);
    items.sort_by_cached_key(|item| {
        let mv = mv(item);
        (
            std::cmp::Reverse(region::shared(&mv.signature, &wanted)),
            mv.row_count.unwrap_or(u64::MAX),
            mv.name.clone(),
        )
    });
}

/// Keeps the first of the ranked `eligible` MVs whose mappings (one per self-join variant)
/// fit in `limit`, at least one, and notes the others as left out.
fn limit_candidates(
    eligible: &mut Vec<(Arc<MaterializedView>, Vec<Mapping>)>,
    limit: usize,
    statuses: &mut BTreeMap<String, CandidateStatus>,
) {
    let passed = eligible.len();
    let mut taken = 0;
    let keep = eligible
        .iter()
        .take_while(|(_, m)| {
            taken += m.len();
            taken <= limit
        })
        .count()
        .max(1);
    for (mv, _) in eligible.drain(keep..) {
        let why = format!(
            "{passed} MVs over these tables passed the index; only the {keep} most like the query entered the e-graph",
        );
        let r = Rejection::new(ReasonCode::CandidateLimit, why);
        note(statuses, &mv.name, CandidateStatus::Rejected(r));
    }
}

/// Whether `mv` need not be looked at again in this plan: no region can use it, and what was
/// noted of it says as much as another region's rejection would.
fn settled(
    screen: &mut Screen,
    statuses: &BTreeMap<String, CandidateStatus>,
    mv: &MaterializedView,
) -> bool {
    statuses.get(&mv.name).is_some_and(|s| rank(s) <= 3) && screen.hopeless(mv)
}

/// Keeps the most useful status when an MV is considered in several regions.
fn note(statuses: &mut BTreeMap<String, CandidateStatus>, mv: &str, status: CandidateStatus) {
    match statuses.get(mv) {
        Some(old) if rank(old) <= rank(&status) => {}
        _ => {
            statuses.insert(mv.to_string(), status);
        }
    }
}

/// Rows an MV holds: recorded when materialized, otherwise guessed from its shape: each
/// conjunct of its filter keeps half the rows, and an aggregate with `k` keys over `n` rows
/// keeps `n^(k/(k+1))`, so narrower and coarser MVs look smaller.
fn estimated_rows(
    mv: &MaterializedView,
    def: &RegionInEGraph,
    egraph: &PlanGraph,
    base_rows: f64,
) -> f64 {
    if let Some(rows) = mv.row_count {
        return rows as f64;
    }
    let conjuncts = egraph[def.base]
        .nodes
        .iter()
        .find_map(|n| match n {
            Node::Filter([list, _]) => Some(list_items(egraph, *list).len()),
            _ => None,
        })
        .unwrap_or(0);
    let base_rows = (base_rows * 0.5f64.powi(conjuncts.min(16) as i32)).max(1.0);
    if !def.aggregated {
        return base_rows;
    }
    let keys = egraph[def.root]
        .nodes
        .iter()
        .find_map(|n| match n {
            Node::Proj([_, input]) => egraph[*input].nodes.iter().find_map(|n| match n {
                Node::Agg([keys, _, _]) => Some(list_items(egraph, *keys).len()),
                _ => None,
            }),
            _ => None,
        })
        .unwrap_or(1) as f64;
    base_rows.powf(keys / (keys + 1.0))
}

/// MVs read by the extracted plan.
fn used_mvs(
    egraph: &PlanGraph,
    best: &Extractor<RowsRead, Node, PlanAnalysis>,
    root: Id,
) -> HashSet<Symbol> {
    let mut used = HashSet::new();
    let mut todo = vec![root];
    let mut seen = HashSet::new();
    while let Some(class) = todo.pop() {
        if !seen.insert(egraph.find(class)) {
            continue;
        }
        let node = best.find_best_node(class);
        if let Node::Mv([name, _]) = node {
            used.extend(crate::egraph::lang::name_of(egraph, *name));
        } else {
            todo.extend(node.children().iter().copied());
        }
    }
    used
}

/// Every class reachable from `root`.
fn reachable_classes(egraph: &PlanGraph, root: Id) -> Vec<Id> {
    let mut seen = HashSet::new();
    let mut todo = vec![root];
    while let Some(class) = todo.pop() {
        if seen.insert(egraph.find(class)) {
            for node in &egraph[class].nodes {
                todo.extend(node.children().iter().copied());
            }
        }
    }
    seen.into_iter().collect()
}

/// MVs some plan in the root class reads: those that matched, whether chosen or not.
fn reachable_mvs(egraph: &PlanGraph, root: Id) -> HashSet<Symbol> {
    let mut reach: HashMap<Id, BTreeSet<Symbol>> = HashMap::new();
    loop {
        let mut changed = false;
        for class in egraph.classes() {
            let mut set = reach.get(&class.id).cloned().unwrap_or_default();
            let before = set.len();
            for node in &class.nodes {
                match node {
                    Node::Mv([name, _]) => set.extend(crate::egraph::lang::name_of(egraph, *name)),
                    Node::Scan(_) | Node::Expr(..) | Node::Name(_) => {}
                    _ => {
                        for c in node.children() {
                            if let Some(s) = reach.get(&egraph.find(*c)) {
                                set.extend(s.iter().copied());
                            }
                        }
                    }
                }
            }
            if set.len() != before {
                changed = true;
                reach.insert(class.id, set);
            }
        }
        if !changed {
            break;
        }
    }
    reach
        .remove(&root)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The outer, semi and anti joins under `rel`, described (`a left join of users with visits
/// on ...`): an inner join is a filter over a set, so only these have a shape to differ in.
fn joins(egraph: &PlanGraph, rel: Id) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![rel];
    let mut seen = HashSet::new();
    let tables = |c: Id| -> String {
        let mut names: Vec<String> = reachable_classes(egraph, c)
            .into_iter()
            .flat_map(|k| egraph[k].nodes.iter())
            .filter_map(|n| match n {
                Node::Scan([name, _]) => {
                    crate::egraph::lang::name_of(egraph, *name).map(|s| s.to_string())
                }
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names.join(", ")
    };
    while let Some(c) = todo.pop() {
        let c = egraph.find(c);
        if !seen.insert(c) {
            continue;
        }
        for node in &egraph[c].nodes {
            match node {
                Node::LeftJoin([a, b, on])
                | Node::FullJoin([a, b, on])
                | Node::SemiJoin([a, b, on])
                | Node::AntiJoin([a, b, on]) => {
                    let kind = join_kind(node).unwrap_or_default();
                    let on: Vec<String> = list_items(egraph, *on)
                        .into_iter()
                        .map(|x| display(egraph, x))
                        .collect();
                    out.push(format!(
                        "{kind} of {} with {} on {}",
                        tables(*a),
                        tables(*b),
                        on.join(" AND ")
                    ));
                    todo.extend([*a, *b]);
                }
                Node::Filter([_, input]) => todo.push(*input),
                Node::Join([inputs]) => todo.extend(list_items(egraph, *inputs)),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Why no rule related the MV to the query, when no rule said so itself.
fn diagnose(
    egraph: &PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
    name: &str,
) -> Rejection {
    let conjuncts = |base: Id| -> Vec<String> {
        egraph[base]
            .nodes
            .iter()
            .find_map(|n| match n {
                Node::Filter([list, _]) => Some(
                    list_items(egraph, *list)
                        .into_iter()
                        .map(|c| display(egraph, c))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default()
    };
    let describe = |c: Vec<String>| {
        if c.is_empty() {
            "every row".to_string()
        } else {
            format!("rows where {}", c.join(" AND "))
        }
    };
    let (query_joins, mv_joins) = (joins(egraph, query.base), joins(egraph, mv.base));
    if query_joins != mv_joins {
        let list = |j: &[String]| {
            if j.is_empty() {
                "no outer, semi or anti join".to_string()
            } else {
                j.join(" and ")
            }
        };
        return Rejection::new(
            ReasonCode::JoinNotMatched,
            format!(
                "the query has {}, but {name} has {}",
                list(&query_joins),
                list(&mv_joins)
            ),
        );
    }
    let (query_conds, query_inputs) = crate::egraph::lang::unjoined(egraph, query.base);
    let (mv_conds, mv_inputs) = crate::egraph::lang::unjoined(egraph, mv.base);
    let alike =
        |a: &[Id], b: &[Id]| a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x));
    if alike(&query_conds, &mv_conds) && !alike(&query_inputs, &mv_inputs) {
        let only = |of: &[Id], not_in: &[Id]| {
            let described: Vec<String> = of
                .iter()
                .filter(|i| !not_in.contains(i))
                .map(|i| describe_input(egraph, *i, 0))
                .collect();
            if described.is_empty() {
                "nothing else".to_string()
            } else {
                described.join(" and ")
            }
        };
        let verb = if query_inputs.len() > 1 {
            "joins"
        } else {
            "reads"
        };
        return Rejection::new(
            ReasonCode::JoinNotMatched,
            format!(
                "the query {verb} {}, where {name} {verb} {}",
                only(&query_inputs, &mv_inputs),
                only(&mv_inputs, &query_inputs)
            ),
        );
    }
    if egraph.find(query.base) != egraph.find(mv.base) {
        return Rejection::new(
            ReasonCode::FilterNotImplied,
            format!(
                "the query reads {}, but {name} keeps only {}",
                describe(conjuncts(query.base)),
                describe(conjuncts(mv.base))
            ),
        );
    }
    if mv.aggregated && !query.aggregated {
        return Rejection::new(
            ReasonCode::MvAggregatesQueryDoesNot,
            format!("{name} holds groups, but the query reads individual rows"),
        );
    }
    Rejection::new(
        ReasonCode::UnsupportedQuery,
        format!("no rule relates the query to {name}"),
    )
}

/// An outer, semi or anti join's kind in words.
fn join_kind(node: &Node) -> Option<&'static str> {
    match node {
        Node::LeftJoin(_) => Some("a left join"),
        Node::FullJoin(_) => Some("a full join"),
        Node::SemiJoin(_) => Some("a semi join (EXISTS, IN, INTERSECT)"),
        Node::AntiJoin(_) => Some("an anti join (NOT EXISTS, EXCEPT)"),
        _ => None,
    }
}

/// A join input in words: `events where events.value > 10 grouped by events.user_id`.
fn describe_input(egraph: &PlanGraph, class: Id, depth: usize) -> String {
    let exprs = |list: Id, separator: &str| {
        list_items(egraph, list)
            .into_iter()
            .map(|x| display(egraph, x))
            .collect::<Vec<_>>()
            .join(separator)
    };
    let described = (depth < 8)
        .then(|| {
            egraph[class].nodes.iter().find_map(|n| match n {
                Node::Scan([name, _]) => {
                    crate::egraph::lang::name_of(egraph, *name).map(|s| s.to_string())
                }
                Node::Agg([keys, _, input]) if list_items(egraph, *keys).is_empty() => Some(
                    format!("one total of {}", describe_input(egraph, *input, depth + 1)),
                ),
                Node::Agg([keys, _, input]) => Some(format!(
                    "{} grouped by {}",
                    describe_input(egraph, *input, depth + 1),
                    exprs(*keys, ", ")
                )),
                Node::LeftJoin([a, b, _])
                | Node::FullJoin([a, b, _])
                | Node::SemiJoin([a, b, _])
                | Node::AntiJoin([a, b, _]) => Some(format!(
                    "{} of {} with {}",
                    join_kind(n)?,
                    describe_input(egraph, *a, depth + 1),
                    describe_input(egraph, *b, depth + 1)
                )),
                Node::Filter([conds, input]) => Some(format!(
                    "{} where {}",
                    describe_input(egraph, *input, depth + 1),
                    exprs(*conds, " AND ")
                )),
                _ => None,
            })
        })
        .flatten();
    described.unwrap_or_else(|| "a subquery".to_string())
}

fn has_join(plan: &LogicalPlan) -> bool {
    plan.exists(|n| Ok(matches!(n, LogicalPlan::Join(_))))
        .unwrap_or(false)
}

/// Whether an aggregate of `plan` reads another aggregate's output.
fn nests_aggregates(plan: &LogicalPlan) -> bool {
    let aggregates = |n: &LogicalPlan| {
        n.exists(|n| Ok(matches!(n, LogicalPlan::Aggregate(_))))
            .unwrap_or(false)
    };
    plan.exists(|n| {
        Ok(matches!(n, LogicalPlan::Aggregate(_)) && n.inputs().into_iter().any(aggregates))
    })
    .unwrap_or(false)
}
