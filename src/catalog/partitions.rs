//! Partition-level freshness (StarRocks' and Doris' partition compensation). An MV that keeps
//! a Hive-partitioned table's partition column, so that each of its rows comes from rows of one
//! partition, still holds the right rows for the partitions whose files did not change since it
//! was computed. While it is stale, it answers as the MV *restricted* to those partitions: its
//! definition filtered by `day NOT IN (<changed days>)` on the table, and its stored rows read
//! through the same filter, which the rewrite puts in the plan above the MV's scan. A query
//! reading only unchanged partitions is answered from it; one reading changed ones is answered
//! in parts (`crate::forms::parts`): the restricted MV's rows, and the changed partitions from
//! the table. It never answers a changed partition.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue, TableReference};
use datafusion::logical_expr::Volatility;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::physical_expr::create_physical_expr;
use datafusion::prelude::ident;

use super::freshness::Staleness;
use super::{Catalog, MaterializedView};

/// The partitions of one table an MV may no longer answer for.
#[derive(Clone, Debug)]
pub struct Cut {
    pub table: String,
    /// What the MV keeps of one partition column: the column, or a function of it alone
    /// (`date_trunc('month', day)`), over the unqualified column.
    pub key: Expr,
    /// Its position among the MV's outputs.
    pub output: usize,
    /// The values of the key whose partitions' files changed since the MV was computed.
    pub changed: Vec<ScalarValue>,
}

impl Cut {
    /// The key over `table`'s scan (its columns qualified by the scan's name).
    pub fn on_scan(&self, table: &TableReference) -> Expr {
        qualified(&self.key, table)
    }

    /// `key NOT IN (the changed values)`: the rows of unchanged partitions.
    pub fn unchanged(&self, key: Expr) -> Expr {
        key.in_list(self.changed.iter().cloned().map(lit).collect(), true)
    }

    /// The other rows: `(key NOT IN (the changed values)) IS NOT TRUE`, so that a key NULL
    /// for some partition is on this side too.
    pub fn changed_rows(&self, key: Expr) -> Expr {
        Expr::IsNotTrue(Box::new(self.unchanged(key)))
    }

    /// The changed values as text, as DataFusion casts them (`2024-03-01T00:00:00` for a
    /// timestamp, which displays as a number).
    pub fn values(&self) -> Vec<String> {
        let text = |v: &ScalarValue| {
            let cast = v.cast_to(&DataType::Utf8).ok();
            cast.and_then(|t| t.try_as_str().flatten().map(str::to_string))
        };
        let shown = |v: &ScalarValue| text(v).unwrap_or_else(|| v.to_string());
        self.changed.iter().map(shown).collect()
    }

    /// `events.day = 2024-03-03, 2024-03-04` for the report.
    pub fn describe(&self) -> String {
        if self.changed.is_empty() {
            return format!("{}: only files outside its partitions", self.table);
        }
        let values = self.values();
        let key = match &self.key {
            Expr::Column(c) => format!("{}.{}", self.table, c.name),
            bucket => format!(
                "{} of {}",
                crate::egraph::lang::sql_text(bucket),
                self.table
            ),
        };
        format!("{key} = {}", values.join(", "))
    }
}

/// A stale MV that answers for its unchanged partitions: it restricted to them, and the cuts.
#[derive(Clone, Debug)]
pub struct Partly {
    answering: Arc<MaterializedView>,
    /// What its stored rows are filtered by where a rewrite reads them.
    rows: Option<Expr>,
    cuts: Vec<Cut>,
}

impl Partly {
    /// What the report says when `mv` answers.
    pub fn note(&self, mv: &str) -> String {
        let cuts: Vec<String> = self.cuts.iter().map(Cut::describe).collect();
        format!(
            "{mv} answered only for partitions unchanged since it was computed; changed, so read from the tables where the query reads them: {}",
            cuts.join("; ")
        )
    }
}

impl Catalog {
    /// The MV that answers for `name`: restricted to its unchanged partitions while it is
    /// partly fresh, else as registered.
    pub(crate) fn answering(&self, name: &str) -> Option<&Arc<MaterializedView>> {
        match (self.partly.get(name), self.finest.get(name)) {
            (Some(partly), _) => Some(&partly.answering),
            (None, Some(finest)) => Some(&finest.answering),
            (None, None) => self.mvs.get(name),
        }
    }

    /// The MV that answers for `name` and the filter its stored rows are read through, if
    /// there is one: restricted to its unchanged partitions, or a grouping-sets MV's finest
    /// set ([`super::grouping_sets`]).
    fn read_through(&self, name: &str) -> Option<(&Arc<MaterializedView>, &Expr)> {
        match (self.partly.get(name), self.finest.get(name)) {
            (Some(partly), _) => Some((&partly.answering, partly.rows.as_ref()?)),
            (None, Some(finest)) => Some((&finest.answering, &finest.rows)),
            (None, None) => None,
        }
    }

    /// `plan`, a region answered from MVs, with each scan of an MV read through a filter
    /// ([`Catalog::read_through`]: a partly fresh MV's unchanged partitions, a grouping-sets
    /// MV's finest set) filtered so, so that the restriction is in the plan (and in the SQL
    /// text written of it). A scan the rewrite made reads the source of the MV that answered;
    /// one the query itself made (`FROM by_day`) reads another and is left alone. `None` if a
    /// filter cannot be added, or if `region` (the query's) reads a grouping-sets MV that the
    /// plan reads too: a plan built with `Rewriter::mv_source` scans it through the source the
    /// rewrite's scans have, so the two could not be told apart.
    pub(crate) fn filter_answering_scans(
        &self,
        region: &LogicalPlan,
        plan: LogicalPlan,
    ) -> Option<LogicalPlan> {
        if self.partly.is_empty() && self.finest.is_empty() {
            return Some(plan);
        }
        let finest_read = |p: &LogicalPlan| {
            let read = crate::plan::region::base_tables(p);
            read.into_iter()
                .filter(|t| self.finest.contains_key(t))
                .collect::<std::collections::BTreeSet<_>>()
        };
        let read_by_query = finest_read(region);
        if !read_by_query.is_empty() && !read_by_query.is_disjoint(&finest_read(&plan)) {
            return None;
        }
        let filtered = plan.transform_up(|node| {
            let LogicalPlan::TableScan(scan) = node else {
                return Ok(Transformed::no(node));
            };
            match self.read_through(scan.table_name.table()) {
                Some((answering, rows)) if Arc::ptr_eq(&scan.source, &answering.source) => {
                    let rows = qualified(rows, &scan.table_name);
                    let scan = LogicalPlanBuilder::from(LogicalPlan::TableScan(scan));
                    Ok(Transformed::yes(scan.filter(rows)?.build()?))
                }
                _ => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
            }
        });
        filtered.ok().map(|t| t.data)
    }

    /// Whether the rows `mv` answers with (restricted, if partly fresh) are the tables' rows
    /// now.
    pub(crate) fn answers_current_rows(&self, mv: &str) -> bool {
        self.partly.contains_key(mv) || self.stale(mv).is_none()
    }

    /// After a write to `table`: each MV computed from it partly fresh, or not.
    pub(super) fn restrict_readers_of(&mut self, table: &str) {
        let readers: Vec<String> = self
            .computed
            .iter()
            .filter(|(_, c)| c.from.contains_key(table))
            .map(|(mv, _)| mv.clone())
            .collect();
        readers.iter().for_each(|mv| self.restrict(mv));
    }

    /// Indexes `mv` restricted to its unchanged partitions if it is partly fresh, as
    /// registered otherwise.
    pub(super) fn restrict(&mut self, mv: &str) {
        match self.restriction(mv) {
            Some(partly) => {
                self.reindex(Arc::clone(&partly.answering));
                self.partly.insert(mv.to_string(), partly);
            }
            None => self.unrestrict(mv),
        }
    }

    /// Indexes `mv` as registered again.
    pub(super) fn unrestrict(&mut self, mv: &str) {
        if self.partly.remove(mv).is_some()
            && let Some(registered) = self.answering(mv).cloned()
        {
            self.reindex(registered);
        }
    }

    /// Puts `mv` in the indexes in place of the MV of its name.
    fn reindex(&mut self, mv: Arc<MaterializedView>) {
        self.version += 1;
        if let Some(set) = self.by_tables.get_mut(&mv.base_tables) {
            set.insert(mv.name.clone(), Arc::clone(&mv));
        }
        for t in &mv.base_tables {
            if let Some(set) = self.by_table.get_mut(t) {
                set.insert(mv.name.clone(), Arc::clone(&mv));
            }
        }
        self.index.insert(&mv);
    }

    /// `mv` restricted to its unchanged partitions, if it is partly fresh ([`Catalog::cuts`]),
    /// must not answer stale (the default staleness) and may answer partly.
    fn restriction(&self, mv: &str) -> Option<Partly> {
        // A grouping-sets MV restricted would no longer be read as its finest set.
        if !self.may_add_unions()
            || self.staleness_of(mv) != Staleness::Enforced
            || self.failed.contains_key(mv)
            || self.finest.contains_key(mv)
        {
            return None;
        }
        let cuts = self.cuts(mv)?;
        let (answering, rows) = restricted(self.mvs.get(mv)?, &cuts)?;
        let answering = Arc::new(answering);
        Some(Partly {
            answering,
            rows,
            cuts,
        })
    }

    /// The partitions whose files changed since `mv` was computed, one cut per input that
    /// changed, if each such input is a partitioned table on files whose partition column
    /// `mv` keeps, whose every change since was of its files, and no MV it reads is stale.
    pub(crate) fn cuts(&self, mv: &str) -> Option<Vec<Cut>> {
        let computed = self.computed.get(mv)?;
        let registered = self.mvs.get(mv)?;
        let mut cuts = Vec::new();
        for (input, version) in &computed.from {
            if self.versions.current(input) != *version {
                cuts.push(self.cut(registered, input, *version)?);
            } else if self.mvs.contains_key(input) && self.stale(input).is_some() {
                return None;
            }
        }
        (!cuts.is_empty()).then_some(cuts)
    }

    /// The partitions of `input` whose files changed since its `version`, if `mv` keeps its
    /// partition column and only its files changed.
    fn cut(&self, mv: &MaterializedView, input: &str, version: u64) -> Option<Cut> {
        let files = self.files.get(input)?;
        let columns: Vec<String> = files
            .partition_columns()
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        let (column, key, output) = kept_partition(&mv.plan, input, &columns)?;
        let at = columns.iter().position(|c| *c == column)?;
        let changed = self.versions.files_changed_since(input, version)?;
        let mut values: Vec<ScalarValue> = Vec::new();
        let paths = changed.added.iter().chain(&changed.removed);
        for path in paths.chain(&changed.rewritten) {
            // A file outside the partition directories is not read by the table's scans.
            let Some(value) = files.partition_of(path).and_then(|v| v.get(at).cloned()) else {
                continue;
            };
            let value = match &key {
                Expr::Column(_) => value,
                bucket => evaluate(bucket, &column, value)?,
            };
            if !values.contains(&value) {
                values.push(value);
            }
        }
        Some(Cut {
            table: input.to_string(),
            key,
            output,
            changed: values,
        })
    }
}

/// The first of `partition_columns` (of `table`) that `plan`, an MV's definition, keeps as an
/// output, itself or a function of it alone (a bucket), such that each of its rows comes from
/// rows of `table` with one value of that output: the plan reads `table` once, through
/// filters, projections and inner joins, and the output is a group key of its one aggregate or
/// passed through. With what it keeps (over the unqualified column) and its output position.
pub fn kept_partition(
    plan: &LogicalPlan,
    table: &str,
    partition_columns: &[String],
) -> Option<(String, Expr, usize)> {
    let below = match top_aggregate(plan) {
        Some(agg) => agg.input.as_ref(),
        None => plan,
    };
    if scans_through_rows(below, table) != Some(1) {
        return None;
    }
    (0..plan.schema().fields().len()).find_map(|j| {
        let (scanned, column, key) = source_key(plan, j)?;
        (scanned == table && partition_columns.contains(&column)).then_some((column, key, j))
    })
}

/// The aggregate under the top projection, or at the top.
fn top_aggregate(plan: &LogicalPlan) -> Option<&datafusion::logical_expr::Aggregate> {
    match plan {
        LogicalPlan::Aggregate(agg) => Some(agg),
        LogicalPlan::Projection(p) => match p.input.as_ref() {
            LogicalPlan::Aggregate(agg) => Some(agg),
            _ => None,
        },
        _ => None,
    }
}

/// How often `plan` scans `table`, if it computes its rows one input row (combination) at a
/// time: only projections, filters, aliases, scans and inner joins.
fn scans_through_rows(plan: &LogicalPlan, table: &str) -> Option<usize> {
    match plan {
        LogicalPlan::TableScan(scan) => Some(usize::from(scan.table_name.table() == table)),
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
            scans_through_rows(plan.inputs()[0], table)
        }
        LogicalPlan::Join(j) if j.join_type == JoinType::Inner => {
            Some(scans_through_rows(&j.left, table)? + scans_through_rows(&j.right, table)?)
        }
        _ => None,
    }
}

/// The scanned table and column output `j` of `plan` computes from alone, and how (over the
/// unqualified column), if it does so deterministically: followed down projections, filters,
/// aliases, inner joins and an aggregate's keys.
fn source_key(plan: &LogicalPlan, j: usize) -> Option<(String, String, Expr)> {
    let through = |input: &LogicalPlan, e: &Expr| {
        let e = unaliased(e);
        let columns: Vec<&Column> = e.column_refs().into_iter().collect();
        let [c] = columns.as_slice() else {
            return None;
        };
        if !immutable(e) {
            return None;
        }
        let (table, column, inner) = source_key(input, input.schema().index_of_column(c).ok()?)?;
        let key = e.clone().transform(|x| {
            Ok(match x {
                Expr::Column(_) => Transformed::yes(inner.clone()),
                other => Transformed::no(other),
            })
        });
        Some((table, column, key.ok()?.data))
    };
    match plan {
        LogicalPlan::TableScan(scan) => {
            let name = scan.projected_schema.field(j).name();
            let key = Expr::Column(Column::from_name(name));
            Some((scan.table_name.table().to_string(), name.clone(), key))
        }
        LogicalPlan::Projection(p) => through(&p.input, p.expr.get(j)?),
        // Under grouping sets a key is NULL in the rows of the sets that group it away, rows
        // that sum over partitions: none is followed (refreshing a day's rows alone would
        // leave such rows as they were).
        LogicalPlan::Aggregate(agg)
            if agg
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_))) =>
        {
            None
        }
        LogicalPlan::Aggregate(agg) => through(&agg.input, agg.group_expr.get(j)?),
        LogicalPlan::Filter(f) => source_key(&f.input, j),
        // `FROM events e`: the alias renames the table, not its columns' order.
        LogicalPlan::SubqueryAlias(alias) => source_key(&alias.input, j),
        LogicalPlan::Join(join) if join.join_type == JoinType::Inner => {
            let left = join.left.schema().fields().len();
            if j < left {
                source_key(&join.left, j)
            } else {
                source_key(&join.right, j - left)
            }
        }
        _ => None,
    }
}

/// Whether `e` gives the same value for the same row whenever it is computed (no aggregate,
/// window, subquery, or function that is not immutable).
fn immutable(e: &Expr) -> bool {
    !e.exists(|x| {
        Ok(match x {
            Expr::ScalarFunction(f) => f.func.signature().volatility != Volatility::Immutable,
            Expr::AggregateFunction(_)
            | Expr::WindowFunction(_)
            | Expr::ScalarSubquery(_)
            | Expr::Exists(_)
            | Expr::InSubquery(_)
            | Expr::Placeholder(_)
            | Expr::ScalarVariable(..) => true,
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// `key` (a function of `column` alone) for a partition whose `column` is `value`, computed by
/// DataFusion's physical expression; `None` if it cannot be.
pub(super) fn evaluate(key: &Expr, column: &str, value: ScalarValue) -> Option<ScalarValue> {
    let schema = Schema::new(vec![Field::new(column, value.data_type(), true)]);
    let batch =
        RecordBatch::try_new(Arc::new(schema.clone()), vec![value.to_array().ok()?]).ok()?;
    let dfschema = DFSchema::try_from(schema).ok()?;
    let props = ExecutionProps::new();
    let context = PhysicalPlanningContext::default();
    let physical = create_physical_expr(key, &dfschema, &props, &context).ok()?;
    let computed = physical.evaluate(&batch).ok()?.into_array(1).ok()?;
    ScalarValue::try_from_array(&computed, 0).ok()
}

pub(super) fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unaliased(&a.expr),
        other => other,
    }
}

/// `mv` restricted to the partitions `cuts` leave: its definition with each cut's table
/// filtered to the other values; and the filter its stored rows are read through, over the
/// columns that keep the cuts' keys (none when no partition changed). `None` if a plan
/// cannot be built (then the MV is stale whole).
pub fn restricted(mv: &MaterializedView, cuts: &[Cut]) -> Option<(MaterializedView, Option<Expr>)> {
    let cut = |c: &&Cut| !c.changed.is_empty();
    let plan = mv
        .plan
        .clone()
        .transform_up(|node| match node {
            LogicalPlan::TableScan(scan) => {
                let keeps = cuts
                    .iter()
                    .filter(|c| c.table == scan.table_name.table())
                    .filter(cut)
                    .map(|c| c.unchanged(c.on_scan(&scan.table_name)));
                let keeps: Vec<Expr> = keeps.collect();
                let scan = LogicalPlan::TableScan(scan);
                match conjunction(keeps) {
                    Some(predicate) => Ok(Transformed::new(
                        LogicalPlanBuilder::from(scan).filter(predicate)?.build()?,
                        true,
                        TreeNodeRecursion::Continue,
                    )),
                    None => Ok(Transformed::no(scan)),
                }
            }
            other => Ok(Transformed::no(other)),
        })
        .ok()?
        .data;
    let stored = mv.source.schema();
    let keeps = cuts
        .iter()
        .filter(cut)
        .map(|c| Some(c.unchanged(ident(stored.fields().get(c.output)?.name()))))
        .collect::<Option<Vec<Expr>>>()?;
    let source = Arc::clone(&mv.source);
    let restricted = MaterializedView::new(&mv.name, mv.sql.clone(), plan, source, mv.row_count);
    Some((
        restricted.with_inputs(mv.inputs.clone()),
        conjunction(keeps),
    ))
}

/// `e` with its columns qualified by `table`.
fn qualified(e: &Expr, table: &TableReference) -> Expr {
    let requalified = e.clone().transform(|e| {
        Ok(match e {
            Expr::Column(c) => {
                Transformed::yes(Expr::Column(Column::new(Some(table.clone()), c.name)))
            }
            other => Transformed::no(other),
        })
    });
    requalified.map_or_else(|_| e.clone(), |t| t.data)
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        for ddl in [
            "CREATE TABLE events (kind VARCHAR, v BIGINT, day DATE)",
            "CREATE TABLE kinds (kind VARCHAR, label VARCHAR)",
        ] {
            ctx.sql(ddl).await.unwrap();
        }
        ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap()
    }

    /// Only an output that is the partition column or a function of it alone, with each row
    /// from one partition.
    #[tokio::test]
    async fn the_partition_column_is_kept_only_as_a_key_or_passed_through_or_bucketed() {
        let day = ["day".to_string()];
        let cases = [
            (
                "SELECT day, kind, sum(v) FROM events GROUP BY day, kind",
                Some(0),
            ),
            (
                "SELECT kind, day AS d, count(*) FROM events GROUP BY kind, day",
                Some(1),
            ),
            ("SELECT kind, sum(v) FROM events GROUP BY kind", None),
            (
                "SELECT date_trunc('month', day) AS m, sum(v) FROM events GROUP BY date_trunc('month', day)",
                Some(0),
            ),
            (
                "SELECT CAST(day AS VARCHAR) || kind AS dk, count(*) FROM events GROUP BY CAST(day AS VARCHAR) || kind",
                None,
            ),
            ("SELECT kind, max(day) FROM events GROUP BY kind", None),
            ("SELECT v, day FROM events WHERE v > 3", Some(1)),
            (
                "SELECT e.day, k.label, sum(e.v) FROM events e JOIN kinds k ON e.kind = k.kind GROUP BY e.day, k.label",
                Some(0),
            ),
            (
                "SELECT events.day, kinds.label, sum(events.v) FROM events JOIN kinds ON events.kind = kinds.kind GROUP BY events.day, kinds.label",
                Some(0),
            ),
            (
                "SELECT a.day, count(*) FROM events a JOIN events b ON a.v = b.v GROUP BY a.day",
                None,
            ),
            (
                "SELECT day, count(*) FROM (SELECT day, kind FROM events GROUP BY day, kind) GROUP BY day",
                None,
            ),
            // Grouping sets: the grand total's row sums every partition.
            ("SELECT day, sum(v) FROM events GROUP BY ROLLUP(day)", None),
            (
                "SELECT day, kind, sum(v) FROM events GROUP BY GROUPING SETS ((day), (day, kind))",
                None,
            ),
        ];
        for (sql, kept) in cases {
            let plan = plan(sql).await;
            let found = kept_partition(&plan, "events", &day).map(|(_, _, j)| j);
            assert_eq!(found, kept, "{sql}\n{}", plan.display_indent());
        }
    }
}
