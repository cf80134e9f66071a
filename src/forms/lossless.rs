//! MVs that join more tables than the query, through declared keys.
//!
//! Joining a table `a` to `t` on a NOT NULL foreign key of `a` that references a unique key of
//! `t` keeps every row of `a` exactly once: the join is lossless and adds no rows. So a query
//! over `a` equals the same query over `a JOIN t ON fk = key`, and an MV defined over the join
//! can answer it. Before saturation, the query's relation gets that second form (the MV's extra
//! tables joined on the keys), and the ordinary rules do the rest: the MV's filter may then
//! only add the key equalities, or conditions the query implies. Nothing is assumed: keys are
//! the user's declarations ([`crate::catalog::constraints`]) and nullability is the table schema's.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::{Expr, TableSource};
use egg::{Id, Symbol};

use crate::catalog::constraints::Constraints;
use crate::egraph::lang::{Node, PlanGraph, add_set, decompose, name_of, unjoined};
use crate::egraph::to_egraph::RegionInEGraph;
use crate::report::{ReasonCode, Rejection};

/// Why the MV's extra tables (those not in `query`) cannot all be joined losslessly by the
/// declared keys, judged on the catalog alone; `None` when they can.
pub fn missing_key(
    constraints: &Constraints,
    query: &BTreeSet<String>,
    mv_tables: &BTreeSet<String>,
    mv: &str,
) -> Option<Rejection> {
    if !query.is_subset(mv_tables) {
        return Some(different_tables(query, mv_tables, mv));
    }
    let mut attached: Vec<&String> = query.iter().collect();
    let mut pending: Vec<&String> = mv_tables.difference(query).collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|t| {
            let reachable = attached.iter().any(|a| {
                constraints
                    .foreign_keys(a, t)
                    .iter()
                    .any(|k| constraints.is_unique(t, &k.referenced))
            });
            if reachable {
                attached.push(t);
            }
            !reachable
        });
        if pending.len() == before {
            let t = pending[0];
            let declared: Vec<String> = attached
                .iter()
                .flat_map(|a| constraints.foreign_keys(a, t))
                .map(|k| k.to_string())
                .collect();
            let why = if declared.is_empty() {
                format!(
                    "no foreign key to {t} is declared (ALTER TABLE .. ADD FOREIGN KEY .. \
                     REFERENCES {t} (..))"
                )
            } else {
                format!(
                    "{} is declared, but no unique key of {t} it references (ALTER TABLE {t} \
                     ADD PRIMARY KEY (..))",
                    declared.join(", ")
                )
            };
            return Some(Rejection::new(
                ReasonCode::DifferentTables,
                format!("{mv} also joins {t}, which the query does not, and {why}"),
            ));
        }
    }
    None
}

fn different_tables(query: &BTreeSet<String>, mv_tables: &BTreeSet<String>, mv: &str) -> Rejection {
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    Rejection::new(
        ReasonCode::DifferentTables,
        format!(
            "{mv} reads {}, the query reads {}",
            list(mv_tables),
            list(query)
        ),
    )
}

/// Adds to the query's classes the form that joins the MV's extra tables on their keys: every
/// `agg` or `proj` of the query over its base relation gets the same node over `filter(query
/// conditions + key equalities, join(query tables + extra tables))`, which it returns. Errors
/// say which key is missing from the MV's join, or may be NULL.
pub fn add_lossless_joins(
    egraph: &mut PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
    mv_name: &str,
    constraints: &Constraints,
    sources: &HashMap<Symbol, Arc<dyn TableSource>>,
) -> Result<Id, Rejection> {
    let unsupported = |why: &str| {
        Rejection::new(
            ReasonCode::UnsupportedQuery,
            format!("{mv_name} joins more tables than the query, but {why}"),
        )
    };
    let (query_conds, query_inputs) = unjoined(egraph, query.base);
    let (mv_conds, mv_inputs) = unjoined(egraph, mv.base);
    let table = |egraph: &PlanGraph, class: Id| -> Option<String> {
        egraph[class].nodes.iter().find_map(|n| match n {
            Node::Scan([name, _]) => name_of(egraph, *name).map(|s| s.to_string()),
            _ => None,
        })
    };
    let mut attached = Vec::new();
    for input in &query_inputs {
        if !mv_inputs.contains(input) {
            return Err(unsupported("the query's join inputs are not among its own"));
        }
        attached
            .push(table(egraph, *input).ok_or_else(|| unsupported("the query joins a subquery"))?);
    }
    let mut pending: Vec<(Id, String)> = Vec::new();
    for input in mv_inputs.iter().filter(|i| !query_inputs.contains(i)) {
        let name = table(egraph, *input).ok_or_else(|| unsupported("it joins a subquery"))?;
        // Keys are looked up by table name (its first occurrence): a table read twice would
        // have its second read attached on the first one's key.
        if attached.contains(&name) || pending.iter().any(|(_, t)| *t == name) {
            return Err(unsupported(&format!("it reads {name} more than once")));
        }
        pending.push((*input, name));
    }
    let mut key_conditions = Vec::new();
    let mut blocked = Vec::new();
    while !pending.is_empty() {
        let before = pending.len();
        let mut still = Vec::new();
        for (input, t) in pending {
            match attach(egraph, &attached, &t, &mv_conds, constraints, sources) {
                Ok(conditions) => {
                    key_conditions.extend(conditions);
                    attached.push(t);
                }
                Err(why) => {
                    blocked.push(why);
                    still.push((input, t));
                }
            }
        }
        pending = still;
        if pending.len() == before {
            return Err(Rejection::new(
                ReasonCode::DifferentTables,
                blocked.join("; "),
            ));
        }
        blocked.clear();
    }
    let join = add_set(egraph, &mv_inputs);
    let join = egraph.add(Node::Join([join]));
    let mut conditions = query_conds;
    conditions.extend(key_conditions);
    let conditions = add_set(egraph, &conditions);
    let base = egraph.add(Node::Filter([conditions, join]));
    query.read_also_from(egraph, base);
    Ok(egraph.find(base))
}

/// The key equalities joining `t` to one of `attached` through a declared NOT NULL foreign key
/// to a unique key of `t`, if the MV's conditions hold them all; else why not.
fn attach(
    egraph: &mut PlanGraph,
    attached: &[String],
    t: &str,
    mv_conds: &[Id],
    constraints: &Constraints,
    sources: &HashMap<Symbol, Arc<dyn TableSource>>,
) -> Result<Vec<Id>, String> {
    let mut why = format!(
        "no declared foreign key from {} to a unique key of {t}",
        attached.join(", ")
    );
    for a in attached {
        for key in constraints.foreign_keys(a, t) {
            if !constraints.is_unique(t, &key.referenced) {
                why = format!(
                    "{key}: {t}({}) is not declared unique",
                    key.referenced.join(", ")
                );
                continue;
            }
            let schema = sources.get(&Symbol::from(a.as_str())).map(|s| s.schema());
            let nullable = key.columns.iter().find(|c| {
                schema
                    .as_ref()
                    .and_then(|s| s.field_with_name(c).ok().map(|f| f.is_nullable()))
                    .unwrap_or(true)
            });
            if let Some(c) = nullable {
                why = format!("{key}: {a}.{c} may be NULL, and a NULL key joins nothing");
                continue;
            }
            let equalities: Option<Vec<Id>> = key
                .columns
                .iter()
                .zip(&key.referenced)
                .map(|(c, r)| equality(egraph, (a, c), (t, r)))
                .collect();
            match equalities {
                Some(eqs) if eqs.iter().all(|e| mv_conds.contains(e)) => return Ok(eqs),
                _ => why = format!("the MV does not join on {key}"),
            }
        }
    }
    Err(why)
}

/// The class of `a.c = t.r` as the converter writes it, if it is in the e-graph.
fn equality(egraph: &mut PlanGraph, (a, c): (&str, &str), (t, r): (&str, &str)) -> Option<Id> {
    let column = |egraph: &mut PlanGraph, table: &str, col: &str| {
        let h = egraph.analysis.intern(Expr::Column(Column::new(
            Some(TableReference::bare(table)),
            col,
        )));
        egraph.lookup(Node::Expr(h, vec![]))
    };
    let left = column(egraph, a, c)?;
    let right = column(egraph, t, r)?;
    let (head, _) =
        decompose(Expr::Column(Column::from_name("l")).eq(Expr::Column(Column::from_name("r"))))
            .ok()?;
    let h = egraph.analysis.intern(head);
    let (x, y) = (egraph.find(left), egraph.find(right));
    let children = if x <= y { vec![x, y] } else { vec![y, x] };
    egraph
        .lookup(Node::Expr(h, children))
        .map(|id| egraph.find(id))
}
