//! A region's e-graph before saturation: the query region, each candidate MV's definition
//! unioned with a scan of the MV, and the query forms an MV needs to meet it
//! (src/forms/: outer joins, wider aggregates, joins back, lossless joins, join-equal columns,
//! operands of an MV's integer `+`/`-` column),
//! with the row counts extraction costs by.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{LogicalPlan, TableSource};
use egg::{EGraph, Symbol};

use crate::catalog::{Catalog, MaterializedView};
use crate::egraph::cost::UNKNOWN_ROWS;
use crate::egraph::lang::{Node, PlanAnalysis, PlanGraph, list_items};
use crate::egraph::{RegionInEGraph, ToEGraph};
use crate::forms::{
    invertible, join_back, join_equivalence, lossless, outer_join, wider_aggregates,
};
use crate::plan::occurrences::Mapping;
use crate::plan::region;
use crate::report::{CandidateStatus, ReasonCode, Rejection, Report};

use super::Engine;
use super::candidates::Candidate;
use super::extract::reachable_classes;
use super::statuses::{Statuses, note};

/// Tables and MVs by name, as the e-graph's scans read them.
pub(super) type Sources = HashMap<Symbol, Arc<dyn TableSource>>;

/// The e-graph of one region, ready to saturate.
pub(super) struct RegionGraph {
    pub egraph: PlanGraph,
    pub query: RegionInEGraph,
    /// Each MV that entered, with its definition in the e-graph (once per mapping of its
    /// occurrences, for self-joins).
    pub mvs: Vec<(Arc<MaterializedView>, RegionInEGraph)>,
    pub tables: Sources,
    pub mv_sources: Sources,
}

impl Engine {
    /// The region and its candidates in one e-graph, or `None` when the region itself cannot
    /// be put in one (every candidate is then rejected with why).
    pub(super) fn build_egraph(
        &self,
        region: &LogicalPlan,
        candidates: &[Candidate],
        catalog: &Catalog,
        statuses: &mut Statuses,
        report: &mut Report,
    ) -> Option<RegionGraph> {
        let tables = region::base_tables(region);
        let mut egraph: PlanGraph = EGraph::new(PlanAnalysis::default());
        let mut table_sources = HashMap::new();
        let mut mvs = Vec::new();
        let mut mv_sources: Sources = HashMap::new();
        let mut convert = ToEGraph::new(&mut egraph, &mut table_sources);
        let query = match add_query(&mut convert, region) {
            Ok(q) => q,
            Err(why) => {
                report.unsupported = Some(why.clone());
                for (mv, _) in candidates {
                    let r = Rejection::new(ReasonCode::UnsupportedQuery, why.clone());
                    note(statuses, &mv.name, CandidateStatus::Rejected(r));
                }
                return None;
            }
        };
        // An MV reading a table several times is added once per mapping of its occurrences
        // onto the query's (self-joins).
        let variants = candidates
            .iter()
            .flat_map(|(mv, mappings)| mappings.iter().map(move |m| (mv, m)));
        for (mv, mapping) in variants {
            match self.add_candidate(&mut convert, &query, mv, mapping, &tables, catalog) {
                Ok(def) => {
                    invertible::add_inverses(convert.egraph, &def.outputs);
                    let name = Symbol::from(&mv.name);
                    let name_id = convert.egraph.add(Node::Name(name));
                    let cols = convert.egraph.add(Node::List(def.outputs.clone().into()));
                    let scan = convert.egraph.add(Node::Mv([name_id, cols]));
                    convert.egraph.union(def.root, scan);
                    convert.egraph.analysis.mv_roots.push(def.root);
                    mv_sources.insert(name, Arc::clone(&mv.source));
                    mvs.push((Arc::clone(mv), def));
                }
                Err(r) if r.code == ReasonCode::Ineligible => {
                    note(statuses, &mv.name, CandidateStatus::Ineligible(r));
                }
                Err(r) => note(statuses, &mv.name, CandidateStatus::Rejected(r)),
            }
        }
        record_rows(&mut egraph, &tables, &mvs, catalog);
        record_mv_columns(&mut egraph, region, &mvs);
        egraph.rebuild();
        Some(RegionGraph {
            egraph,
            query,
            mvs,
            tables: table_sources,
            mv_sources,
        })
    }

    /// `mv`'s definition under `mapping`, with the form of the query it needs to meet it: over
    /// the same tables an outer-join or wider-aggregate form, over fewer tables the query
    /// joined back, over more tables the query joined to them through declared keys.
    fn add_candidate(
        &self,
        convert: &mut ToEGraph,
        query: &RegionInEGraph,
        mv: &MaterializedView,
        mapping: &Mapping,
        tables: &BTreeSet<String>,
        catalog: &Catalog,
    ) -> Result<RegionInEGraph, Rejection> {
        let def = convert
            .add_region_mapped(&mv.plan, mapping)
            .map_err(|why| Rejection::new(ReasonCode::Ineligible, why))?;
        if mv.base_tables == *tables {
            let added = outer_join::add_inner_as_outer(convert.egraph, query, &def, convert.tables)
                || wider_aggregates::add_wider_aggregates(convert.egraph, query, &def);
            if !added {
                return Ok(def);
            }
        } else if mv.base_tables.is_subset(tables) {
            join_back::add_join_back(convert.egraph, query, &def, &mv.name, &self.rules.rollups)?;
        } else {
            let base = lossless::add_lossless_joins(
                convert.egraph,
                query,
                &def,
                &mv.name,
                catalog.constraints(),
                convert.tables,
            )?;
            // The key joins make their columns equal: the joined form's GROUP BY or output on
            // the query's foreign key may be read from the MV's unique key.
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
    }
}

/// The query region, with the forms its join-equal columns give, its classes marked as the
/// query's (only failures on the query are reported).
fn add_query(convert: &mut ToEGraph, region: &LogicalPlan) -> Result<RegionInEGraph, String> {
    let q = convert.add_region(region)?;
    convert.egraph.analysis.query = reachable_classes(convert.egraph, q.root);
    if join_equivalence::add_equal_column_forms(convert.egraph, &q) {
        convert.egraph.analysis.query = reachable_classes(convert.egraph, q.root);
    }
    Ok(q)
}

/// Rows of each table the region reads and of each MV, for the cost of extraction.
fn record_rows(
    egraph: &mut PlanGraph,
    tables: &BTreeSet<String>,
    mvs: &[(Arc<MaterializedView>, RegionInEGraph)],
    catalog: &Catalog,
) {
    let base_rows = tables
        .iter()
        .map(|t| catalog.table_rows(t).map_or(UNKNOWN_ROWS, |r| r as f64))
        .fold(1.0, f64::max);
    for t in tables {
        let rows = catalog.table_rows(t).map_or(UNKNOWN_ROWS, |r| r as f64);
        egraph.analysis.rows.insert(Symbol::from(t), rows);
    }
    for (mv, def) in mvs {
        let rows = estimated_rows(mv, def, egraph, base_rows);
        egraph.analysis.rows.insert(Symbol::from(&mv.name), rows);
    }
}

/// The columns each MV read is charged for: as many as it outputs, but no more than the
/// query reads from the tables it replaces. A scan reads only the columns the plan above it
/// needs, and those stand for the columns of the tables the query would read otherwise; so
/// an MV as large as its table, read instead of it, costs what the table does, not more for
/// the columns it keeps that this query does not need. Not an aggregate MV joined back to
/// the query's other tables: it is grouped again before the join, which joining the table
/// first avoids (measured many times slower for an MV as large as its table, BENCHMARKS.md).
fn record_mv_columns(
    egraph: &mut PlanGraph,
    region: &LogicalPlan,
    mvs: &[(Arc<MaterializedView>, RegionInEGraph)],
) {
    let mut read: HashMap<String, usize> = HashMap::new();
    let _ = region.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let columns = scan
                .projection
                .as_ref()
                .map_or(scan.projected_schema.fields().len(), Vec::len);
            *read.entry(scan.table_name.table().to_string()).or_default() += columns.max(1);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    for (mv, def) in mvs {
        let replaced: usize = mv.base_tables.iter().filter_map(|t| read.get(t)).sum();
        let joined_back = def.aggregated && mv.base_tables.len() < read.len();
        let columns = if joined_back {
            def.outputs.len()
        } else {
            def.outputs.len().min(replaced).max(1)
        };
        egraph
            .analysis
            .mv_columns
            .insert(Symbol::from(&mv.name), columns as f64);
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
