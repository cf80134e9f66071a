//! Tables read more than once (self-joins): each scan of a table is an *occurrence*, and its
//! columns are qualified by it (`areas`, then `areas#2`, ...), so the two sides of a self-join
//! are different relations in the e-graph.
//!
//! Which of an MV's occurrences stands for which of the query's is not known from names
//! (aliases are the user's choice), so an MV reading a table `n` times is added once per
//! permutation of its occurrences, each one a renaming of the MV's bound variables and so
//! equally true. The number of mappings tried is bounded ([`MAX_MAPPINGS`]).

use std::collections::{BTreeMap, HashMap};

use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;

use crate::report::{ReasonCode, Rejection};

/// At most this many mappings of an MV's occurrences onto the query's are tried: all of them
/// for a table read up to four times (4! = 24).
pub const MAX_MAPPINGS: usize = 24;

/// How many times `plan` scans each table.
pub fn table_occurrences(plan: &LogicalPlan) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            *counts
                .entry(scan.table_name.table().to_string())
                .or_default() += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    counts
}

/// The qualifier of the columns of `table`'s occurrence `k` (from 0): the table's own name for
/// the first, so that plans reading each table once are written as they always were.
pub fn qualifier(table: &str, k: usize) -> TableReference {
    match k {
        0 => TableReference::bare(table),
        k => TableReference::bare(format!("{table}#{}", k + 1)),
    }
}

/// Per table, the occurrence number given to its `k`-th scan (in plan order); tables not
/// listed keep their scan order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping(HashMap<String, Vec<usize>>);

impl Mapping {
    /// The occurrence that `table`'s `k`-th scan stands for.
    pub fn occurrence(&self, table: &str, k: usize) -> usize {
        self.0
            .get(table)
            .and_then(|p| p.get(k))
            .copied()
            .unwrap_or(k)
    }
}

/// The mappings under which an MV reading its tables `mv` times can answer a query reading
/// them `query` times: every permutation of the occurrences of each table both read several
/// times (at most [`MAX_MAPPINGS`]). A table both read, but a different number of times, cannot
/// be matched: the MV is rejected with the table named.
pub fn mappings(
    query: &BTreeMap<String, usize>,
    mv: &BTreeMap<String, usize>,
    mv_name: &str,
) -> Result<Vec<Mapping>, Rejection> {
    let mut all = vec![Mapping::default()];
    for (table, &m) in mv {
        match query.get(table) {
            Some(&q) if q != m => {
                return Err(Rejection::new(
                    ReasonCode::DifferentTables,
                    format!(
                        "the query reads {table} {}, but {mv_name} reads it {}",
                        times(q),
                        times(m)
                    ),
                ));
            }
            Some(_) if m > 1 => {
                let perms = permutations(m);
                all = all
                    .iter()
                    .flat_map(|base| {
                        perms.iter().map(move |p| {
                            let mut next = base.clone();
                            next.0.insert(table.clone(), p.clone());
                            next
                        })
                    })
                    .take(MAX_MAPPINGS)
                    .collect();
            }
            _ => {}
        }
    }
    Ok(all)
}

fn times(n: usize) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// The permutations of `0..n`, the identity first, at most [`MAX_MAPPINGS`] of them.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(n);
    fn extend(n: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if out.len() >= MAX_MAPPINGS {
            return;
        }
        if current.len() == n {
            out.push(current.clone());
            return;
        }
        for i in 0..n {
            if !current.contains(&i) {
                current.push(i);
                extend(n, current, out);
                current.pop();
            }
        }
    }
    extend(n, &mut current, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn every_permutation_of_a_self_join_is_tried_within_the_bound() {
        let two = counts(&[("areas", 2), ("x", 1)]);
        let found = mappings(&two, &two, "mv").unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].occurrence("areas", 0), 0);
        assert_eq!(found[1].occurrence("areas", 0), 1);
        assert_eq!(found[1].occurrence("x", 0), 0);
        let many = counts(&[("a", 3), ("b", 3)]);
        assert_eq!(mappings(&many, &many, "mv").unwrap().len(), MAX_MAPPINGS);
        let five = counts(&[("a", 5)]);
        assert_eq!(mappings(&five, &five, "mv").unwrap().len(), MAX_MAPPINGS);
    }

    #[test]
    fn a_table_read_a_different_number_of_times_is_named() {
        let err = mappings(&counts(&[("areas", 2)]), &counts(&[("areas", 1)]), "mv").unwrap_err();
        assert_eq!(err.code, ReasonCode::DifferentTables);
        assert!(
            err.reason
                .contains("reads areas twice, but mv reads it once")
        );
        // Tables only one side reads are for the join-back and lossless-join paths.
        assert!(mappings(&counts(&[("a", 2), ("b", 1)]), &counts(&[("b", 1)]), "mv").is_ok());
    }
}
