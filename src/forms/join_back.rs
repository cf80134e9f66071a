//! MVs over some of the query's tables: the MV answers its part of the join, and the rewrite
//! joins it back to the rest.
//!
//! An inner join commutes with the filters on one side, so `filter(P, join(A, B, C))` is
//! `filter(P_out, join(proj(N, filter(P_in, join(A, B))), C))` where `P_in` are the conjuncts
//! that read only `A` and `B`, `P_out` the others, and `N` the columns of `A` and `B` used above.
//! Before saturation the query's aggregate or projection gets that form for every MV over a
//! subset of its tables; the ordinary rules then answer `proj(N, filter(P_in, join(A, B)))`
//! from the MV (exactly, or with a residual filter) and the join with `C` stays. An aggregated
//! MV is joined back by splitting the query's aggregation around the join (eager
//! aggregation, [`Split::eager`]): the part is grouped by what is used above it, and that
//! inner aggregate is the MV's to answer.

use std::collections::{BTreeSet, HashMap, HashSet};

use datafusion::arrow::datatypes::DataType;
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{Expr, cast, lit, when};
use egg::{Id, Symbol};

use crate::egraph::lang::{
    HeadKind, Node, PlanGraph, add_set, display, expr_nodes, list_items, placeholder, unjoined,
};
use crate::egraph::to_egraph::RegionInEGraph;
use crate::report::{ReasonCode, Rejection};
use crate::rules::conditions::has_aggregate;
use crate::rules::rollup::{
    Computed, RollupTable, aggregate, average_parts, divide, rebuilt_average, regroup,
    widens_small_integer,
};

/// Adds, for every `agg` or `proj` of the query over its base relation, the same node over the
/// query's join with the MV's tables (and the filters on them alone) projected apart.
pub fn add_join_back(
    egraph: &mut PlanGraph,
    query: &RegionInEGraph,
    mv: &RegionInEGraph,
    mv_name: &str,
    rollups: &RollupTable,
) -> Result<(), Rejection> {
    let (query_conds, query_inputs) = unjoined(egraph, query.base);
    let (_, mv_inputs) = unjoined(egraph, mv.base);
    if !mv_inputs.iter().all(|i| query_inputs.contains(i)) {
        return Err(Rejection::new(
            ReasonCode::UnsupportedQuery,
            format!("{mv_name} reads its tables differently from the query (a subquery?)"),
        ));
    }
    let inside: HashSet<Id> = mv_inputs
        .iter()
        .flat_map(|i| egraph[*i].data.schema.clone().unwrap_or_default())
        .map(|c| egraph.find(c))
        .collect();
    let (conds_in, conds_out): (Vec<Id>, Vec<Id>) = query_conds.into_iter().partition(|c| {
        columns(egraph, &[*c], &inside)
            .iter()
            .all(|x| inside.contains(x))
    });
    let part = mv_part(egraph, &mv_inputs, &conds_in);
    let rest: Vec<Id> = query_inputs
        .iter()
        .copied()
        .filter(|i| !mv_inputs.contains(i))
        .collect();
    let consumers = query.consumers(egraph);
    let mv_outputs: HashSet<Id> = mv.outputs.iter().map(|o| egraph.find(*o)).collect();
    let split = Split {
        part,
        rest: &rest,
        conds_out: &conds_out,
        inside: &inside,
        mv_outputs: &mv_outputs,
    };
    let mut why_not = None;
    for node in consumers {
        if mv.aggregated {
            // The MV's groups must be joined back: aggregate the query's part first.
            if let Node::Agg([k, a, _]) = node {
                match split.eager(egraph, k, a, mv_name, rollups) {
                    Ok(answer) => {
                        let original = egraph.add(node.clone());
                        egraph.union(original, answer);
                    }
                    Err(r) => why_not = Some(r),
                }
            }
            continue;
        }
        split.rows(egraph, node);
    }
    egraph.rebuild();
    match why_not {
        Some(r) => Err(r),
        None if mv.aggregated && !query.aggregated => Err(Rejection::new(
            ReasonCode::MvAggregatesQueryDoesNot,
            format!("{mv_name} holds groups, but the query reads individual rows"),
        )),
        None => Ok(()),
    }
}

/// The part the MV answers: the join of its tables, filtered by the conditions on them alone.
fn mv_part(egraph: &mut PlanGraph, mv_inputs: &[Id], conds_in: &[Id]) -> Id {
    let part = match mv_inputs {
        [single] => *single,
        many => {
            let set = add_set(egraph, many);
            egraph.add(Node::Join([set]))
        }
    };
    if conds_in.is_empty() {
        part
    } else {
        let set = add_set(egraph, conds_in);
        egraph.add(Node::Filter([set, part]))
    }
}

/// The query's join split around the MV's tables: `part` (their join, with the conditions
/// on them alone), the `rest` of the inputs, the conditions `conds_out` across, the columns
/// `inside` the part, and what the MV outputs.
struct Split<'a> {
    part: Id,
    rest: &'a [Id],
    conds_out: &'a [Id],
    inside: &'a HashSet<Id>,
    mv_outputs: &'a HashSet<Id>,
}

impl Split<'_> {
    /// An MV of rows: `node` over the part narrowed to what is used above, joined to the rest.
    fn rows(&self, egraph: &mut PlanGraph, node: Node) {
        let mut used: Vec<Id> = match &node {
            Node::Agg([k, a, _]) => [*k, *a]
                .iter()
                .flat_map(|l| list_items(egraph, *l))
                .collect(),
            Node::Proj([items, _]) => list_items(egraph, *items),
            _ => return,
        };
        used.extend(self.conds_out);
        let needed = frontier(egraph, &used, self.inside);
        let needed = egraph.add(Node::List(needed.into()));
        let narrowed = egraph.add(Node::Proj([needed, self.part]));
        let joined = self.joined(egraph, narrowed);
        let original = egraph.add(node.clone());
        let alternative = egraph.add(match node {
            Node::Agg([k, a, _]) => Node::Agg([k, a, joined]),
            Node::Proj([items, _]) => Node::Proj([items, joined]),
            other => other,
        });
        egraph.union(original, alternative);
    }

    /// `filter(P_out, join(mv_side, rest))`: what stands for the query's join in both forms.
    fn joined(&self, egraph: &mut PlanGraph, mv_side: Id) -> Id {
        let mut inputs = self.rest.to_vec();
        inputs.push(mv_side);
        let inputs = add_set(egraph, &inputs);
        let mut joined = egraph.add(Node::Join([inputs]));
        if !self.conds_out.is_empty() {
            let set = add_set(egraph, self.conds_out);
            joined = egraph.add(Node::Filter([set, joined]));
        }
        joined
    }

    /// Eager aggregation: `agg(K, A, filter(P_out, join(part, rest)))` equals
    /// `agg(K, re-aggregated A, filter(P_out, join(agg(K_in, A_in, part), rest)))`, where
    /// `K_in` are the part's expressions used above (its group keys and join columns) and
    /// `A_in` the query's aggregates computed per finer group. Holds when every aggregate
    /// reads only the part and rolls up (sum, count, min, max, avg from sum and count: the
    /// MV's own, [`average_parts`]): a partial group joins the same rest rows as each of its
    /// rows would. A DISTINCT aggregate of the part's columns is computed above the join, its
    /// argument kept in `K_in`. An aggregate of the rest's columns is computed above the join:
    /// min, max and DISTINCT ones as they are, `sum`, `count` and `avg` weighted by the partial
    /// group's `count(*)` ("eager count", Yan and Larson). The inner aggregate is then the
    /// MV's to answer.
    fn eager(
        &self,
        egraph: &mut PlanGraph,
        keys: Id,
        aggs: Id,
        mv: &str,
        rollups: &RollupTable,
    ) -> Result<Id, Rejection> {
        let (keys, aggs) = (list_items(egraph, keys), list_items(egraph, aggs));
        let mut partials = Vec::new();
        let mut distinct_args: Vec<Id> = Vec::new();
        // Aggregates of the other tables' columns, computed above the join.
        let mut computed = HashMap::new();
        for a in &aggs {
            let (name, distinct, args, reads_rest) = self.classify(egraph, *a, mv)?;
            if reads_rest {
                // A partial group joins the same rows of the others as each of its rows: the
                // same values (min, max, DISTINCT), each as many times as the group has rows.
                if !distinct && !rollups.duplicate_insensitive.contains(&name) {
                    let (rows, c) = by_rows(egraph, &name, &args, *a, mv)?;
                    partials.push(rows);
                    computed.insert(*a, c);
                }
                continue;
            }
            if distinct {
                // Computed above the join from the partial groups, which keep its argument.
                distinct_args.extend(&args);
                continue;
            }
            partials.extend(self.part_partials(egraph, *a, &name, &args, mv, rollups)?);
        }
        let mut partials: Vec<Id> = partials.iter().map(|p| egraph.find(*p)).collect();
        partials.sort();
        partials.dedup();
        let mut used = keys.clone();
        used.extend(self.conds_out);
        used.extend(distinct_args);
        let inner_keys = frontier(egraph, &used, self.inside);
        // A global inner aggregate returns a row even over no rows, which would then join
        // the rest and make groups the query does not have.
        if inner_keys.is_empty() {
            return Err(unsupported(
                mv,
                "the query's aggregate has no key on the MV's tables (a cross join)",
            ));
        }
        let grouped = self.inner_aggregate(egraph, &inner_keys, &partials);
        let joined = self.joined(egraph, grouped);
        let stored: HashSet<Id> = partials.iter().map(|p| egraph.find(*p)).collect();
        let key_outputs = key_outputs(egraph, joined, &stored);
        regroup(
            egraph,
            rollups,
            Symbol::from(mv),
            joined,
            keys,
            &aggs,
            &stored,
            &key_outputs,
            &computed,
        )
    }

    /// The inner aggregate `agg(K_in, A_in, part)`, the MV's to answer.
    fn inner_aggregate(&self, egraph: &mut PlanGraph, inner_keys: &[Id], partials: &[Id]) -> Id {
        let inner_key_list = add_set(egraph, inner_keys);
        let partial_list = add_set(egraph, partials);
        let grouped = egraph.add(Node::Agg([inner_key_list, partial_list, self.part]));
        // Projected, so that an inner aggregate equal to the MV's reads the MV's columns.
        let mut outputs = inner_keys.to_vec();
        outputs.extend(partials);
        let outputs = egraph.add(Node::List(outputs.into()));
        egraph.add(Node::Proj([outputs, grouped]))
    }

    /// Only plain aggregates of one side's columns split: `a`'s name, DISTINCT, args, side.
    fn classify(
        &self,
        egraph: &PlanGraph,
        a: Id,
        mv: &str,
    ) -> Result<(String, bool, Vec<Id>, bool), Rejection> {
        let (head, args) = expr_nodes(egraph, a)
            .next()
            .map(|(h, c)| (h, c.to_vec()))
            .ok_or_else(|| unsupported(mv, "an aggregate is not an expression"))?;
        let read = columns(egraph, &args, self.inside);
        let reads_part = read.iter().all(|c| self.inside.contains(c));
        let reads_rest = !read.is_empty() && read.iter().all(|c| !self.inside.contains(c));
        let (name, distinct) = match egraph.analysis.kind(head) {
            HeadKind::Aggregate { name, distinct } if reads_part || reads_rest => {
                (name.clone(), *distinct)
            }
            _ => {
                return Err(unsupported(
                    mv,
                    &format!(
                        "{} is not a plain aggregate of the MV's tables' columns, nor of the others'",
                        display(egraph, a)
                    ),
                ));
            }
        };
        Ok((name, distinct, args, reads_rest))
    }

    /// The partial aggregates the inner aggregate computes for `a`, an aggregate of the part.
    fn part_partials(
        &self,
        egraph: &mut PlanGraph,
        a: Id,
        name: &str,
        args: &[Id],
        mv: &str,
        rollups: &RollupTable,
    ) -> Result<Vec<Id>, Rejection> {
        let mut partials = Vec::new();
        match rollups.rules.get(name) {
            Some(rule) if rule.via == "divide" => {
                // The MV's own sum and count when they rebuild the average (an integer's
                // `sum(i)`, a NOT NULL column's `count(*)`), else those of its argument.
                if let Ok(Some((sum, count))) =
                    average_parts(egraph, rollups, mv, self.part, a, self.mv_outputs)
                {
                    partials.extend([sum, count]);
                    return Ok(partials);
                }
                for part in &rule.from {
                    let arg = args
                        .first()
                        .copied()
                        .ok_or_else(|| unsupported(mv, "avg() has no argument"))?;
                    partials.extend(aggregate(egraph, part, arg));
                }
            }
            Some(_) => partials.push(a),
            None => {
                return Err(unsupported(mv, &format!("{name} does not roll up")));
            }
        }
        Ok(partials)
    }
}

/// What `regroup` may read as keys: the joined relation's columns that are not partials.
fn key_outputs(egraph: &PlanGraph, joined: Id, stored: &HashSet<Id>) -> HashSet<Id> {
    let mut key_outputs: HashSet<Id> = egraph[joined]
        .data
        .schema
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| egraph.find(c))
        .collect();
    key_outputs.retain(|c| !stored.contains(c));
    key_outputs
}

/// The rest's aggregate `a` weighted by each partial group's `count(*)`: that count, and `a`.
fn by_rows(
    egraph: &mut PlanGraph,
    name: &str,
    args: &[Id],
    a: Id,
    mv: &str,
) -> Result<(Id, Computed), Rejection> {
    let by_rows =
        count_star(egraph).and_then(|rows| Some((rows, weighted(egraph, name, args, rows, a)?)));
    let Some((rows, c)) = by_rows else {
        return Err(unsupported(
            mv,
            &format!(
                "{} of the other tables' columns is computed above the join only as min, max, a DISTINCT aggregate, count, the sum of a DOUBLE or an integer of at most 32 bits, or an average",
                display(egraph, a)
            ),
        ));
    };
    Ok((rows, c))
}

/// `count(*)`, DataFusion's `count(Int64(1))`.
fn count_star(egraph: &mut PlanGraph) -> Option<Id> {
    let one = add(egraph, lit(1i64), vec![]);
    aggregate(egraph, "count", one)
}

/// Query aggregate `a` (`name(args)`: `sum`, `count` or `avg` of the other tables' columns)
/// over the join of partial groups of `rows` rows each: every joined row stands for `rows`
/// rows. `sum(x)` is `sum(x * rows)`, for a DOUBLE or an integer of at most 32 bits (which
/// `sum` casts to a BIGINT: exact); `count(x)` is the sum of `rows` where `x` is not NULL;
/// `avg(x)` of a DOUBLE (DataFusion averages integers as DOUBLEs) or a DECIMAL is the one over
/// the other.
fn weighted(egraph: &mut PlanGraph, name: &str, args: &[Id], rows: Id, a: Id) -> Option<Computed> {
    let [x] = args else { return None };
    let typed = egraph[*x].data.data_type.clone();
    let double = typed == Some(DataType::Float64);
    // The rebuilt value has the query aggregate's type: a sum's is its argument's, an
    // average's one `divide` rebuilds exactly (a DOUBLE, or a DECIMAL's `avg` type).
    let result = egraph[a].data.data_type.clone();
    let kept = match name {
        "count" => true,
        "avg" => result
            .as_ref()
            .is_some_and(|r| rebuilt_average(typed.as_ref(), r)),
        _ => result == typed,
    };
    if !kept {
        return None;
    }
    let sum_of = |egraph: &mut PlanGraph, per_row: Expr| {
        let per_row = add(egraph, per_row, vec![*x, rows]);
        aggregate(egraph, "sum", per_row)
    };
    let times_rows = || placeholder(0) * cast(placeholder(1), DataType::Float64);
    let rows_where_set = || {
        when(placeholder(0).is_null(), lit(0i64))
            .otherwise(placeholder(1))
            .ok()
    };
    let (aggs, out) = match name {
        "sum" if double => {
            let agg = sum_of(egraph, times_rows())?;
            (vec![agg], agg)
        }
        "sum" if widens_small_integer(egraph, *x) => {
            let agg = sum_of(egraph, placeholder(0) * placeholder(1))?;
            (vec![agg], agg)
        }
        "count" => {
            let agg = sum_of(egraph, rows_where_set()?)?;
            // A count is 0, not NULL, over no row.
            let out = add(egraph, coalesce(vec![placeholder(0), lit(0i64)]), vec![agg]);
            (vec![agg], out)
        }
        // Sums of integers' DOUBLEs are exact below 2^53, as `avg`'s own are; a DECIMAL's
        // multiples keep its scale, and their sum is the one `avg` accumulates, exactly.
        "avg" => {
            let per_row = match typed {
                Some(DataType::Decimal128(..)) => {
                    placeholder(0) * cast(placeholder(1), DataType::Decimal128(20, 0))
                }
                _ if double => times_rows(),
                _ => return None,
            };
            let sum = sum_of(egraph, per_row)?;
            let count = sum_of(egraph, rows_where_set()?)?;
            (
                vec![sum, count],
                divide(egraph, sum, count, result.as_ref()?),
            )
        }
        _ => return None,
    };
    Some(Computed { aggs, out })
}

fn add(egraph: &mut PlanGraph, head: Expr, children: Vec<Id>) -> Id {
    let head = egraph.analysis.intern(head);
    egraph.add(Node::Expr(head, children))
}

fn unsupported(mv: &str, why: &str) -> Rejection {
    Rejection::new(
        ReasonCode::UnsupportedQuery,
        format!("{mv} covers some of the query's tables, but cannot be joined back: {why}"),
    )
}

/// The largest sub-expressions of `exprs` that read only columns of `inside` and hold no
/// aggregate: what the MV's side must output (a stored `date_trunc('day', ts)` is read as a
/// whole, not rebuilt from `ts`).
fn frontier(egraph: &PlanGraph, exprs: &[Id], inside: &HashSet<Id>) -> Vec<Id> {
    let mut out = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut todo: Vec<Id> = exprs.to_vec();
    while let Some(c) = todo.pop() {
        let c = egraph.find(c);
        if !seen.insert(c) {
            continue;
        }
        let cols = columns(egraph, &[c], inside);
        if inside.contains(&c)
            || (!cols.is_empty()
                && cols.iter().all(|x| inside.contains(x))
                && !has_aggregate(egraph, c))
        {
            out.insert(c);
            continue;
        }
        todo.extend(operands(egraph, c));
    }
    out.into_iter().collect()
}

/// The column classes the expressions in `exprs` read (a column is a class with a column head,
/// or one of `known`), sorted.
fn columns(egraph: &PlanGraph, exprs: &[Id], known: &HashSet<Id>) -> BTreeSet<Id> {
    let mut out = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut todo: Vec<Id> = exprs.to_vec();
    while let Some(c) = todo.pop() {
        let c = egraph.find(c);
        if !seen.insert(c) {
            continue;
        }
        if known.contains(&c) {
            out.insert(c);
            continue;
        }
        if expr_nodes(egraph, c).any(|(h, _)| *egraph.analysis.kind(h) == HeadKind::Column) {
            out.insert(c);
        }
        todo.extend(operands(egraph, c));
    }
    out
}

/// What an expression class is computed from: the operands of each of its spellings, and the
/// value an `as` item stands for.
fn operands(egraph: &PlanGraph, class: Id) -> Vec<Id> {
    egraph[class]
        .nodes
        .iter()
        .flat_map(|n| match n {
            Node::Expr(_, children) => children.clone(),
            Node::As([_, value]) => vec![*value],
            _ => vec![],
        })
        .collect()
}
