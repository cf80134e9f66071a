//! Rewritable regions: maximal select-project-join-aggregate subtrees (inner and outer joins;
//! a table read twice is two occurrences, `crate::plan::occurrences`).
//! Everything outside a region stays as DataFusion planned it.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, TableScan, Volatility};

/// How strict the determinism check is: MVs must be immutable (`now()` changes between refresh
/// and query); queries may use stable functions, which are evaluated at query time either way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Determinism {
    Immutable,
    AllowStable,
}

/// Why `plan` is not a region, or `None` when it is one.
pub fn not_a_region(plan: &LogicalPlan, determinism: Determinism) -> Option<String> {
    let mut scans = 0;
    let mut why = None;
    let _ = plan.apply(|node| {
        let problem = match node {
            LogicalPlan::TableScan(scan) => {
                scans += 1;
                if scan.fetch.is_some() {
                    Some("it has a LIMIT".to_string())
                } else {
                    scan.filters
                        .iter()
                        .find_map(|e| expr_problem(e, determinism))
                }
            }
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
                None
            }
            LogicalPlan::Aggregate(agg) => agg
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_)))
                .then(|| "it uses GROUPING SETS, CUBE or ROLLUP".to_string()),
            LogicalPlan::Limit(_) => Some("it has a LIMIT".to_string()),
            LogicalPlan::Window(_) => Some("it uses a window function".to_string()),
            LogicalPlan::Join(join) => match join.join_type {
                JoinType::LeftMark | JoinType::RightMark => Some(format!(
                    "it has a {} join (inner, outer, semi and anti joins only)",
                    join.join_type
                )),
                _ if join.null_aware => Some("it has a NOT IN subquery".to_string()),
                _ => None,
            },
            LogicalPlan::Union(_) => Some("it has a UNION".to_string()),
            LogicalPlan::Sort(_) => Some("it has an ORDER BY below its top".to_string()),
            other => Some(format!("it contains a {} node", other.display())),
        };
        let problem = problem.or_else(|| {
            node.expressions()
                .iter()
                .find_map(|e| expr_problem(e, determinism))
        });
        if problem.is_some() {
            why = problem;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match (why, scans) {
        (Some(w), _) => Some(w),
        (None, 0) => Some("it reads no table".to_string()),
        (None, _) => ambiguous_tables(plan),
    }
}

/// Tables are told apart by bare name, and later reads of one are qualified `name#k`: two
/// tables of one name in different schemas, or a table whose name has a `#`, would be confused.
fn ambiguous_tables(plan: &LogicalPlan) -> Option<String> {
    let mut seen: std::collections::HashMap<String, datafusion::common::TableReference> =
        std::collections::HashMap::new();
    let mut why = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.table();
            if name.contains('#') {
                why = Some(format!("it reads a table named with '#' ({name})"));
            } else if let Some(other) = seen.get(name)
                && *other != scan.table_name
            {
                why = Some(format!(
                    "it reads two tables named {name} ({other} and {})",
                    scan.table_name
                ));
            }
            seen.insert(name.to_string(), scan.table_name.clone());
        }
        Ok(if why.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    why
}

fn expr_problem(expr: &Expr, determinism: Determinism) -> Option<String> {
    let mut why = None;
    let _ = expr.apply(|e| {
        why = match e {
            Expr::ScalarFunction(f) => {
                let volatility = f.func.signature().volatility;
                let bad = match determinism {
                    Determinism::Immutable => volatility != Volatility::Immutable,
                    Determinism::AllowStable => volatility == Volatility::Volatile,
                };
                bad.then(|| format!("{}() is not deterministic", f.func.name()))
            }
            Expr::WindowFunction(_) => Some("it uses a window function".to_string()),
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => {
                Some("it has a subquery".to_string())
            }
            Expr::OuterReferenceColumn(..) => Some("it is a correlated subquery".to_string()),
            Expr::Placeholder(_) => Some("it has a parameter placeholder".to_string()),
            Expr::GroupingSet(_) => Some("it uses GROUPING SETS, CUBE or ROLLUP".to_string()),
            Expr::AggregateFunction(f) if f.func.signature().volatility == Volatility::Volatile => {
                Some(format!("{}() is not deterministic", f.func.name()))
            }
            _ => None,
        };
        Ok(if why.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    why
}

/// Base tables read by `plan`, by table name.
pub fn base_tables(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            tables.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    tables
}

/// Base-table columns `plan` reads (`table.column`), from its scans' projections and pushed-down
/// filters. An MV can only answer a query whose columns it reads too: every expression equal to
/// a query's mentions the same columns.
pub fn base_columns(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut columns = BTreeSet::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            columns.extend(scan_columns(scan));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    columns
}

/// The columns one scan reads (`table.column`): its projection and its pushed-down filters'.
pub fn scan_columns(scan: &TableScan) -> impl Iterator<Item = String> + '_ {
    let table = scan.table_name.table();
    let schema = scan.source.schema();
    let projected: Vec<usize> = match &scan.projection {
        Some(p) => p.clone(),
        None => (0..schema.fields().len()).collect(),
    };
    let projected = projected
        .into_iter()
        .map(move |i| format!("{table}.{}", schema.field(i).name()));
    let filtered = scan
        .filters
        .iter()
        .flat_map(|f| f.column_refs())
        .map(move |c| format!("{table}.{}", c.name));
    projected.chain(filtered)
}

/// Base-table columns (`table.column`) the GROUP BY of `plan` reads directly.
pub fn group_columns(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut columns = BTreeSet::new();
    let tables = base_tables(plan);
    let (Some(table), 1) = (tables.first(), tables.len()) else {
        return columns;
    };
    let _ = plan.apply(|node| {
        if let LogicalPlan::Aggregate(agg) = node {
            for e in &agg.group_expr {
                for c in e.column_refs() {
                    columns.insert(format!("{table}.{}", c.name));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    columns
}

/// What a plan filters on, groups by and aggregates, as the sorted hashes of unqualified
/// expression texts: two plans sharing many of them are likely to answer each other. Only used
/// to choose which MVs enter the e-graph first when there are too many (`Limits::candidates`),
/// never to decide, so a collision costs at most a ranking; hashes make ranking thousands of
/// MVs integer comparisons.
pub fn signature(plan: &LogicalPlan) -> Vec<u64> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::utils::split_conjunction;
    let unqualified = |e: &Expr| -> String {
        e.clone()
            .transform(|e| {
                Ok(match e {
                    Expr::Column(c) => Transformed::yes(Expr::Column(c.name.into())),
                    other => Transformed::no(other),
                })
            })
            .map(|t| t.data.to_string())
            .unwrap_or_default()
    };
    let mut texts = BTreeSet::new();
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::Filter(f) => {
                texts.extend(split_conjunction(&f.predicate).into_iter().map(unqualified));
            }
            LogicalPlan::TableScan(scan) => {
                texts.extend(
                    scan.filters
                        .iter()
                        .flat_map(split_conjunction)
                        .map(unqualified),
                );
            }
            LogicalPlan::Aggregate(agg) => {
                texts.extend(agg.group_expr.iter().map(unqualified));
                texts.extend(agg.aggr_expr.iter().map(unqualified));
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut hashes: Vec<u64> = texts
        .iter()
        .map(|text| {
            let mut hasher = std::hash::DefaultHasher::new();
            text.hash(&mut hasher);
            hasher.finish()
        })
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// How many of the (sorted) `signature`'s items `wanted` shares.
pub fn shared(signature: &[u64], wanted: &[u64]) -> usize {
    wanted
        .iter()
        .filter(|w| signature.binary_search(w).is_ok())
        .count()
}
