//! A region no MV answers whole, answered in two disjoint parts (Calcite's union rewriting,
//! StarRocks' query compensation): the rows of one table an MV's filter keeps (`C`), which
//! the MV answers, UNION ALL the other rows (`C IS NOT TRUE`: false or NULL), read from the
//! base tables as before.
//!
//! Why the parts are the region's rows: the region reads the table once, and only through
//! inner joins or the preserved side of outer, semi and anti joins, so each of its rows comes
//! from exactly one row of the table, which is in exactly one part. An aggregate's groups
//! merge both parts' partial aggregates (src/forms/reaggregate.rs); no aggregate may sit below the
//! split, whose groups would be cut. Which `C` is tried is only a guess (the MVs whose filter
//! the region's does not imply, if the two may meet): whatever it is, the parts partition the
//! rows, and the engine decides whether an MV answers the first, filtering its rows again
//! where `C` does not imply the region's filter.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    Expr, Filter, JoinType, LogicalPlan, Projection, TableProviderFilterPushDown, TableScan,
    TableScanBuilder, Union,
};

use crate::catalog::MaterializedView;
use crate::egraph::ToEGraph;
use crate::egraph::lang::{PlanAnalysis, PlanGraph};
use crate::egraph::predicate;
use crate::forms::reaggregate;
use crate::rules::rollup::RollupTable;

/// A filter an MV applies to one table's rows, over that table's columns.
#[derive(Clone, Debug)]
pub struct Condition {
    pub mv: String,
    pub table: String,
    pub predicate: Expr,
}

/// Each table `mv` filters, with the conjunction of its filters on the table.
pub fn conditions(mv: &MaterializedView) -> Vec<Condition> {
    let mut by_table: BTreeMap<String, Vec<Expr>> = BTreeMap::new();
    for (scan, conjuncts) in scan_filters(&mv.plan) {
        let all = by_table
            .entry(scan.table_name.table().to_string())
            .or_default();
        for c in conjuncts {
            if !all.contains(c) {
                all.push(c.clone());
            }
        }
    }
    by_table
        .into_iter()
        .filter_map(|(table, conjuncts)| {
            Some(Condition {
                mv: mv.name.clone(),
                table,
                predicate: conjunction(conjuncts)?,
            })
        })
        .collect()
}

/// Each table scan of `plan` with the conjuncts filtering it: those directly over it (where
/// DataFusion pushes a filter on one table) and those pushed into it.
fn scan_filters(plan: &LogicalPlan) -> Vec<(&TableScan, Vec<&Expr>)> {
    let mut out = Vec::new();
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::Filter(f) => {
                if let LogicalPlan::TableScan(scan) = f.input.as_ref() {
                    out.push((scan, split_conjunction(&f.predicate)));
                }
            }
            LogicalPlan::TableScan(scan) => out.push((scan, scan.filters.iter().collect())),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// `region` computed as its rows where `condition` holds, which `answer` gives from an MV,
/// UNION ALL the others from the base tables; `None` when the parts are not the region's rows
/// or `answer` gives nothing.
pub fn answer_in_parts(
    region: &LogicalPlan,
    condition: &Condition,
    rollups: &RollupTable,
    answer: &mut dyn FnMut(&LogicalPlan) -> Option<LogicalPlan>,
) -> Option<LogicalPlan> {
    if !saves_work(region, condition) || !meets_region_filter(region, condition) {
        return None;
    }
    in_parts(region, condition, rollups, answer)
}

fn in_parts(
    region: &LogicalPlan,
    condition: &Condition,
    rollups: &RollupTable,
    answer: &mut dyn FnMut(&LogicalPlan) -> Option<LogicalPlan>,
) -> Option<LogicalPlan> {
    match region {
        LogicalPlan::Aggregate(agg) => {
            if !partitions_by(&agg.input, &condition.table) {
                return None;
            }
            let split = reaggregate::split(agg, rollups).ok()?;
            let (held, rest) = parts(&split.inner, condition)?;
            let union = Union::try_new(vec![Arc::new(answer(&held)?), Arc::new(rest)]).ok()?;
            split.over(LogicalPlan::Union(union))
        }
        _ if partitions_by(region, &condition.table) => {
            let (held, rest) = parts(region, condition)?;
            let union = Union::try_new(vec![Arc::new(answer(&held)?), Arc::new(rest)]).ok()?;
            // The union's fields are unqualified: named again as the region's.
            let exprs = union
                .schema
                .columns()
                .into_iter()
                .zip(region.schema().iter())
                .map(|(c, (q, f))| Expr::Column(c).alias_qualified(q.cloned(), f.name()))
                .collect();
            let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Union(union)));
            projection.ok().map(LogicalPlan::Projection)
        }
        // The region's top above its aggregate (HAVING, the projection, the order) stays.
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Sort(_) => {
            let [input] = region.inputs()[..] else {
                return None;
            };
            let input = in_parts(input, condition, rollups, answer)?;
            region
                .with_new_exprs(region.expressions(), vec![input])
                .ok()
        }
        _ => None,
    }
}

/// Whether each row of `plan` comes from one row of `table`, so that splitting the table's
/// rows splits the plan's: it reads the table once, through joins that keep each row of the
/// table's side apart, and does not aggregate (nor order, which a union would not keep).
fn partitions_by(plan: &LogicalPlan, table: &str) -> bool {
    reads_through_kept_sides(plan, table) == Some(1)
}

/// How often `plan` reads `table`, or `None` if a node is more than a projection, filter,
/// alias or join, or a join may pad or repeat the table's rows from the other side: only the
/// sides an inner join, or an outer, semi, anti or mark join's preserved side, may read it.
fn reads_through_kept_sides(plan: &LogicalPlan, table: &str) -> Option<usize> {
    match plan {
        LogicalPlan::TableScan(scan) => Some(usize::from(scan.table_name.table() == table)),
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => plan
            .inputs()
            .into_iter()
            .map(|input| reads_through_kept_sides(input, table))
            .sum(),
        LogicalPlan::Join(join) => {
            let left = reads_through_kept_sides(&join.left, table)?;
            let right = reads_through_kept_sides(&join.right, table)?;
            let (left_kept, right_kept) = match join.join_type {
                JoinType::Inner => (true, true),
                JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => {
                    (true, false)
                }
                JoinType::Right
                | JoinType::RightSemi
                | JoinType::RightAnti
                | JoinType::RightMark => (false, true),
                JoinType::Full => (false, false),
            };
            ((left == 0 || left_kept) && (right == 0 || right_kept)).then_some(left + right)
        }
        _ => None,
    }
}

/// Whether the split saves work: the region joins (the MV's part saves joining its rows), or
/// the table's scan applies the other part's filter exactly (as a table partitioned by the
/// filtered column prunes its partitions; an inexact pushdown, as a file's statistics, may
/// skip nothing for `C IS NOT TRUE`). Otherwise the other part reads the whole table again,
/// and only filtering its rows costs about what aggregating them does: measured no faster
/// (BENCHMARKS.md).
fn saves_work(region: &LogicalPlan, condition: &Condition) -> bool {
    let rest = Expr::IsNotTrue(Box::new(condition.predicate.clone()));
    region
        .exists(|node| {
            Ok(match node {
                LogicalPlan::Join(_) => true,
                LogicalPlan::TableScan(scan) if scan.table_name.table() == condition.table => {
                    let rest = requalified(&rest, &scan.table_name);
                    scan.source
                        .supports_filters_pushdown(&[&rest])
                        .is_ok_and(|support| {
                            support
                                .iter()
                                .all(|s| *s == TableProviderFilterPushDown::Exact)
                        })
                }
                _ => false,
            })
        })
        .unwrap_or(false)
}

/// Whether some row may pass both `condition` and the region's own filter on its table (the
/// filter on its scan): otherwise the MV's part would be empty, and the split only cost. The
/// MV's rows the region does not read are filtered out of its part like any query's rows.
fn meets_region_filter(region: &LogicalPlan, condition: &Condition) -> bool {
    let mut scan = None;
    let mut own = Vec::new();
    for (s, conjuncts) in scan_filters(region) {
        if s.table_name.table() == condition.table {
            scan = Some(s.clone());
            own.extend(conjuncts.into_iter().map(|c| requalified(c, &s.table_name)));
        }
    }
    let Some(scan) = scan else {
        return false;
    };
    let Ok(whole) = TableScanBuilder::from(scan)
        .with_projection(None)
        .with_filters(vec![])
        .build()
    else {
        return false;
    };
    let keeps = requalified(&condition.predicate, &whole.table_name);
    let whole = LogicalPlan::TableScan(whole);
    // One scan, both filters over it (a second would be another occurrence of the table).
    let both: Vec<Expr> = split_conjunction(&keeps)
        .into_iter()
        .cloned()
        .chain(own)
        .collect();
    let mut egraph = PlanGraph::new(PlanAnalysis::default());
    let mut sources = HashMap::new();
    let mut convert = ToEGraph::new(&mut egraph, &mut sources);
    let Ok(ids) = convert.scan_conjuncts(&whole, &both) else {
        return false;
    };
    egraph.rebuild();
    !predicate::contradiction(&egraph, &ids)
}

/// `predicate` with its columns qualified by `table`.
fn requalified(predicate: &Expr, table: &TableReference) -> Expr {
    predicate
        .clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new(
                Some(table.clone()),
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map_or_else(|_| predicate.clone(), |t| t.data)
}

/// `plan` with its rows where `condition` holds, and with the others.
fn parts(plan: &LogicalPlan, condition: &Condition) -> Option<(LogicalPlan, LogicalPlan)> {
    let rest = Expr::IsNotTrue(Box::new(condition.predicate.clone()));
    Some((
        filtered(plan, &condition.table, &condition.predicate)?,
        filtered(plan, &condition.table, &rest)?,
    ))
}

/// `plan` with `predicate` (over `table`'s columns) filtering the rows its scan of `table`
/// reads; the scan reads the columns the predicate needs, projected away above it.
fn filtered(plan: &LogicalPlan, table: &str, predicate: &Expr) -> Option<LogicalPlan> {
    plan.clone()
        .transform_up(|node| match node {
            LogicalPlan::TableScan(scan) if scan.table_name.table() == table => {
                filter_scan(&scan, predicate).map(Transformed::yes)
            }
            other => Ok(Transformed::no(other)),
        })
        .ok()
        .map(|t| t.data)
}

fn filter_scan(scan: &TableScan, predicate: &Expr) -> datafusion::common::Result<LogicalPlan> {
    let predicate = requalified(predicate, &scan.table_name);
    let source = scan.source.schema();
    let mut projection = scan.projection.clone();
    let mut widened = false;
    if let Some(p) = &mut projection {
        for column in predicate.column_refs() {
            let i = source.index_of(&column.name)?;
            if !p.contains(&i) {
                p.push(i);
                widened = true;
            }
        }
    }
    let wide = TableScanBuilder::from(scan.clone())
        .with_projection(projection)
        .build()?;
    let filter = LogicalPlan::Filter(Filter::try_new(
        predicate,
        Arc::new(LogicalPlan::TableScan(wide)),
    )?);
    if !widened {
        return Ok(filter);
    }
    let columns = scan
        .projected_schema
        .columns()
        .into_iter()
        .map(Expr::Column);
    Ok(LogicalPlan::Projection(Projection::try_new(
        columns.collect(),
        Arc::new(filter),
    )?))
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    /// The optimized plan DataFusion makes of `sql` over two small tables.
    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        for ddl in [
            "CREATE TABLE users (user_id INT, tier INT)",
            "CREATE TABLE visits (user_id INT, duration INT)",
        ] {
            ctx.sql(ddl).await.unwrap();
        }
        let df = ctx.sql(sql).await.unwrap();
        df.into_optimized_plan().unwrap()
    }

    /// Splitting a table splits the rows only from the side a join keeps each row of.
    #[tokio::test]
    async fn only_a_join_side_kept_row_by_row_partitions() {
        let cases = [
            (
                "SELECT * FROM users u JOIN visits v ON u.user_id = v.user_id",
                true,
                true,
            ),
            (
                "SELECT * FROM users u LEFT JOIN visits v ON u.user_id = v.user_id",
                true,
                false,
            ),
            (
                "SELECT * FROM users u RIGHT JOIN visits v ON u.user_id = v.user_id",
                false,
                true,
            ),
            (
                "SELECT * FROM users u FULL JOIN visits v ON u.user_id = v.user_id",
                false,
                false,
            ),
            (
                "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM visits v WHERE v.user_id = u.user_id)",
                true,
                false,
            ),
            (
                "SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM visits v WHERE v.user_id = u.user_id)",
                true,
                false,
            ),
            // A table read twice: a row of it is in both sides of the self join.
            (
                "SELECT * FROM users a JOIN users b ON a.tier = b.user_id",
                false,
                false,
            ),
        ];
        for (sql, users, visits) in cases {
            let plan = plan(sql).await;
            let found = (
                partitions_by(&plan, "users"),
                partitions_by(&plan, "visits"),
            );
            assert_eq!(found, (users, visits), "{sql}\n{}", plan.display_indent());
        }
    }

    /// A table source whose scans apply filters exactly (as a table partitioned by the filtered
    /// columns does).
    struct Pruning(datafusion::arrow::datatypes::SchemaRef);

    impl datafusion::logical_expr::TableSource for Pruning {
        fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
            Arc::clone(&self.0)
        }
        fn supports_filters_pushdown(
            &self,
            filters: &[&Expr],
        ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
            Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
        }
    }

    /// One table is split only where its scan skips rows; a join is split anyway.
    #[tokio::test]
    async fn a_split_must_save_a_join_or_a_scan() {
        let condition = Condition {
            mv: "mv".into(),
            table: "users".into(),
            predicate: datafusion::prelude::col("tier").gt(datafusion::prelude::lit(1)),
        };
        let aggregate = plan("SELECT tier, count(*) FROM users GROUP BY tier").await;
        assert!(!saves_work(&aggregate, &condition));
        let joined = plan(
            "SELECT u.tier, count(*) FROM users u JOIN visits v ON u.user_id = v.user_id GROUP BY u.tier",
        )
        .await;
        assert!(saves_work(&joined, &condition));
        let users = plan("SELECT * FROM users").await;
        let schema = users.schema().inner().clone();
        let pruned = datafusion::logical_expr::LogicalPlanBuilder::scan(
            "users",
            Arc::new(Pruning(schema)),
            None,
        )
        .and_then(|b| b.aggregate(vec![datafusion::prelude::col("tier")], Vec::<Expr>::new()))
        .and_then(|b| b.build())
        .unwrap();
        assert!(saves_work(&pruned, &condition));
    }

    #[tokio::test]
    async fn below_an_aggregate_rows_are_not_partitioned() {
        let plan = plan("SELECT tier, count(*) FROM users GROUP BY tier").await;
        assert!(!partitions_by(&plan, "users"));
        let LogicalPlan::Projection(p) = &plan else {
            panic!("{}", plan.display_indent())
        };
        let LogicalPlan::Aggregate(agg) = p.input.as_ref() else {
            panic!("{}", plan.display_indent())
        };
        assert!(partitions_by(&agg.input, "users"));
    }
}
