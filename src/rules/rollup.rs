//! The aggregate rollup applier: answers a query's aggregate from an aggregated MV, either by
//! reading the MV's groups directly (same GROUP BY) or by re-aggregating them to the query's
//! coarser GROUP BY. Which aggregate rolls up how is data: the `rollup` lines of the
//! `aggregate` pack.
//!
//! Pattern variables it reads: `?q = (agg ?qk ?qa ?x)` or `?q = (agg ?qk ?qa (filter ?p ?x))`
//! (the query's aggregate, optionally over a filter) and `?m = (proj ?ml (agg ?mk ?ma ?x))`
//! (the MV, over the same input `?x`). A query filter is applied to the MV's groups, which is
//! only equivalent when every conjunct is computed from the MV's group keys: all rows of a
//! group agree on those, so filtering rows and filtering groups keep the same groups whole.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::var;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{AggregateUDF, Cast, Expr, Operator, lit};
use egg::{Applier, Id, PatternAst, Subst, Symbol, Var};

use super::conditions::{first_missing, has_aggregate};
use crate::egraph::lang::{
    HeadKind, Node, PlanAnalysis, PlanGraph, display, expr_node, list_items, mv_of, placeholder,
};
use crate::plan::dimensions::{AggregateCall, MvAggregates};
use crate::report::{ReasonCode, Rejection};

/// How one aggregate function rolls up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupRule {
    /// The MV aggregates (same argument) it is computed from.
    pub from: Vec<String>,
    /// The aggregate that combines the MV's partial results (`divide` for sum/count).
    pub via: String,
    /// Whether an empty input must give 0 rather than NULL (`count`).
    pub zero_on_empty: bool,
}

/// The rollup table of the `aggregate` pack.
#[derive(Debug, Default)]
pub struct RollupTable {
    pub rules: HashMap<String, RollupRule>,
    /// Aggregates whose result does not depend on duplicates: computable from MV group keys.
    pub duplicate_insensitive: Vec<String>,
    /// Aggregates known to give DataFusion's `default_value` over no rows (a user's aggregate
    /// of another name may not): read from a pinned group without GROUP BY.
    pub empty_is_default: Vec<String>,
}

impl RollupTable {
    /// Whether an aggregate MV over the query's one table, computing `mv`'s functions, may
    /// answer the query's aggregate `call` at all, by any rule: it computes the same function
    /// (same GROUP BY, or re-aggregated), or all that the function rolls up from, or the
    /// aggregate ignores duplicates and reads only columns the MV groups by. A necessary
    /// condition, for the screen (src/engine/screen.rs).
    pub fn may_provide(&self, call: &AggregateCall, mv: &MvAggregates) -> bool {
        let Some(function) = &call.function else {
            return true;
        };
        let from_keys = call.distinct || self.duplicate_insensitive.contains(function);
        mv.functions.contains(function)
            || (from_keys && call.columns.is_subset(&mv.key_columns))
            || self.rules.get(function).is_some_and(|rule| {
                !call.distinct && rule.from.iter().all(|f| mv.functions.contains(f))
            })
    }

    /// Parses `QUERY_FN from MV_FN... via REAGG_FN [zero-on-empty]`.
    pub fn parse_rollup(&mut self, text: &str) -> Result<(), String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let from_at = words.iter().position(|w| *w == "from");
        let via_at = words.iter().position(|w| *w == "via");
        let (Some(1), Some(via_at)) = (from_at, via_at) else {
            return Err("expected 'rollup FN from MV_FN... via FN [zero-on-empty]'".into());
        };
        let from: Vec<String> = words[2..via_at].iter().map(|s| s.to_string()).collect();
        let via = words
            .get(via_at + 1)
            .ok_or("missing function after 'via'")?;
        let zero_on_empty = match &words[via_at + 2..] {
            [] => false,
            ["zero-on-empty"] => true,
            other => return Err(format!("unexpected {other:?}")),
        };
        if from.is_empty() || (*via == "divide") != (from.len() == 2) {
            return Err("'via divide' takes two MV aggregates, anything else one".into());
        }
        if *via != "divide" {
            aggregate_udf(via).ok_or_else(|| format!("unknown aggregate function {via}"))?;
        }
        self.rules.insert(
            words[0].to_string(),
            RollupRule {
                from,
                via: via.to_string(),
                zero_on_empty,
            },
        );
        Ok(())
    }
}

/// DataFusion's built-in aggregate functions by name.
pub(crate) fn aggregate_udf(name: &str) -> Option<Arc<AggregateUDF>> {
    static ALL: OnceLock<HashMap<String, Arc<AggregateUDF>>> = OnceLock::new();
    ALL.get_or_init(|| {
        datafusion::functions_aggregate::all_default_aggregate_functions()
            .into_iter()
            .map(|f| (f.name().to_string(), f))
            .collect()
    })
    .get(name)
    .cloned()
}

pub struct RollupApplier {
    table: Arc<RollupTable>,
    v: [Var; 7],
    filter: Var,
}

impl RollupApplier {
    pub fn new(table: Arc<RollupTable>) -> Self {
        RollupApplier {
            table,
            v: ["?q", "?m", "?qk", "?qa", "?mk", "?ma", "?ml"].map(var),
            filter: var("?p"),
        }
    }
}

impl Applier<Node, PlanAnalysis> for RollupApplier {
    /// The variables it reads: a rule whose searcher does not bind them fails to load.
    fn vars(&self) -> Vec<Var> {
        self.v.to_vec()
    }

    fn apply_one(
        &self,
        egraph: &mut PlanGraph,
        _eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let [q, m, qk, qa, mk, ma, ml] = self.v.map(|v| egraph.find(subst[v]));
        let Some(mv) = mv_of(egraph, m) else {
            return vec![];
        };
        let filter = subst.get(self.filter).map(|p| egraph.find(*p));
        if filter.is_none() && (qk, qa) == (mk, ma) {
            return vec![]; // the MV's own aggregate: nothing to rewrite
        }
        let mut plan = Rollup {
            egraph,
            table: &self.table,
            mv,
            input: m,
            unique_key: None,
        };
        match plan.answer(qk, qa, mk, ml, filter) {
            Ok(Some(new)) if plan.egraph.union(q, new) => vec![q],
            Ok(_) => vec![],
            Err(rejection) => {
                crate::egraph::lang::reject(plan.egraph, q, mv, rejection);
                vec![]
            }
        }
    }
}

/// A query aggregate computed otherwise than from partial aggregates: `aggs` (aggregates over
/// the input's rows) and `out`, the query aggregate's value from them.
pub(crate) struct Computed {
    pub aggs: Vec<Id>,
    pub out: Id,
}

/// The aggregate `agg(keys, aggs, ·)` answered from `input`, whose rows are partial groups
/// holding the aggregates `stored` (and the non-aggregate `key_outputs`), the aggregates in
/// `computed` as they say: what the rollup builds over an MV, and what a join back builds over
/// a partial aggregation below the join.
#[allow(clippy::too_many_arguments)]
pub(crate) fn regroup(
    egraph: &mut PlanGraph,
    table: &RollupTable,
    mv: Symbol,
    input: Id,
    keys: Vec<Id>,
    aggs: &[Id],
    stored: &HashSet<Id>,
    key_outputs: &HashSet<Id>,
    computed: &HashMap<Id, Computed>,
) -> Result<Id, Rejection> {
    Rollup {
        egraph,
        table,
        mv,
        input,
        unique_key: None,
    }
    .regroup(keys, aggs, stored, key_outputs, computed)
}

/// The partial sum and count among `stored` (what `mv` outputs) that rebuild the average `a`
/// over `input` (see [`Rollup::avg_parts`]): what a join back asks the MV for.
pub(crate) fn average_parts(
    egraph: &mut PlanGraph,
    table: &RollupTable,
    mv: &str,
    input: Id,
    a: Id,
    stored: &HashSet<Id>,
) -> Result<Option<(Id, Id)>, Rejection> {
    let parts = Rollup {
        egraph,
        table,
        mv: Symbol::from(mv),
        input,
        unique_key: None,
    }
    .avg_parts(a, stored)?;
    Ok(parts.map(|(sum, count, _)| (sum, count)))
}

/// `sum / NULLIF(count, 0)` computed as `avg` computes it, of type `result`: NULL, like
/// `avg`, when a group has no non-NULL values.
///
/// - DOUBLE: `CAST(sum AS DOUBLE) / CAST(NULLIF(count, 0) AS DOUBLE)`.
/// - `DECIMAL(p + 4, s + 4)` (the average of a `DECIMAL(p, s)`): DataFusion's `avg`
///   truncates `sum * 10^4 / count`, in 128 bits, to scale `s + 4`. Arrow's decimal
///   division does exactly that for `DECIMAL(38, s) / DECIMAL(20, 0)` (it adds 4 to the
///   dividend's scale and truncates), and the final cast only narrows the precision.
pub(crate) fn divide(egraph: &mut PlanGraph, sum: Id, count: Id, result: &DataType) -> Id {
    let head = egraph
        .analysis
        .intern(average(placeholder(0), placeholder(1), result));
    egraph.add(Node::Expr(head, vec![sum, count]))
}

/// The expression of [`divide`], over the expressions `sum` and `count`.
pub(crate) fn average(sum: Expr, count: Expr, result: &DataType) -> Expr {
    let cast = |e: Expr, t: DataType| Expr::Cast(Cast::new(Box::new(e), t));
    let nullif = datafusion::functions::expr_fn::nullif(count, lit(0i64));
    match result {
        DataType::Decimal128(_, s) => {
            let quotient = cast(sum, DataType::Decimal128(38, s - 4))
                / cast(nullif, DataType::Decimal128(20, 0));
            cast(quotient, result.clone())
        }
        _ => cast(sum, DataType::Float64) / cast(nullif, DataType::Float64),
    }
}

/// `name(arg)`, a plain aggregate of one argument (the partial `sum(x)` and `count(x)` an
/// average is rebuilt from).
pub(crate) fn aggregate(egraph: &mut PlanGraph, name: &str, arg: Id) -> Option<Id> {
    let udf = aggregate_udf(name)?;
    let head = Expr::AggregateFunction(AggregateFunction::new_udf(
        udf,
        vec![placeholder(0)],
        false,
        None,
        vec![],
        None,
    ));
    let h = egraph.analysis.intern(head);
    Some(egraph.add(Node::Expr(h, vec![arg])))
}

struct Rollup<'a> {
    egraph: &'a mut PlanGraph,
    table: &'a RollupTable,
    mv: Symbol,
    /// What the answer reads: the MV, or the MV filtered by the query's filter.
    input: Id,
    /// The one MV group key the query neither groups by nor pins, if there is exactly one:
    /// within a query group the MV's rows then each have their own value of it.
    unique_key: Option<Id>,
}

impl Rollup<'_> {
    /// A relation equal to the query's aggregate (same output expressions), read from the MV.
    fn answer(
        &mut self,
        qk: Id,
        qa: Id,
        mk: Id,
        ml: Id,
        filter: Option<Id>,
    ) -> Result<Option<Id>, Rejection> {
        let (keys, aggs) = (list_items(self.egraph, qk), list_items(self.egraph, qa));
        let (mv_keys, stored) = (list_items(self.egraph, mk), list_items(self.egraph, ml));
        let key_outputs: HashSet<Id> = stored
            .iter()
            .copied()
            .filter(|c| !has_aggregate(self.egraph, *c))
            .collect();
        self.check_keys_kept(&keys, &key_outputs)?;
        let pinned = self.filter_groups(filter, &mv_keys, &key_outputs)?;
        let stored: HashSet<Id> = stored.into_iter().collect();
        // MV keys the filter pins to one value (`name = 'x'`) group nothing further. Without a
        // GROUP BY the query must return a row even when the filter keeps no group, which a
        // read of the MV's rows would not, so that case always re-aggregates.
        let mut effective: HashSet<Id> = keys.iter().copied().collect();
        effective.extend(pinned);
        let every_key_fixed = effective == mv_keys.iter().copied().collect::<HashSet<_>>();
        let same_grouping = every_key_fixed && (filter.is_none() || !keys.is_empty());
        if same_grouping && let Some(direct) = self.direct(&keys, &aggs, &stored) {
            return Ok(Some(direct));
        }
        if every_key_fixed
            && keys.is_empty()
            && let Some(one) = self.single_group(&aggs, &stored)
        {
            return Ok(Some(one));
        }
        self.note_unique_key(&mv_keys, &effective);
        self.regroup(keys, &aggs, &stored, &key_outputs, &HashMap::new())
            .map(Some)
    }

    /// The query's groups are read from the MV's: each of its keys must be computed from them.
    fn check_keys_kept(&self, keys: &[Id], key_outputs: &HashSet<Id>) -> Result<(), Rejection> {
        for k in keys {
            if first_missing(self.egraph, *k, key_outputs, false).is_some() {
                if let Some(why) = super::bucket::explain(self.egraph, *k, key_outputs, self.mv) {
                    return Err(why);
                }
                let what = display(self.egraph, *k);
                return Err(Rejection::new(
                    ReasonCode::GroupByNotKept,
                    format!(
                        "the query groups by {what}, which {} does not keep",
                        self.mv
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Moves the query's filter onto the MV's groups (conjuncts on group keys); the keys it pins.
    fn filter_groups(
        &mut self,
        filter: Option<Id>,
        mv_keys: &[Id],
        key_outputs: &HashSet<Id>,
    ) -> Result<HashSet<Id>, Rejection> {
        let mut pinned = HashSet::new();
        if let Some(conjuncts) = filter {
            for c in list_items(self.egraph, conjuncts) {
                pinned.extend(self.pinned_key(c, mv_keys));
                if first_missing(self.egraph, c, key_outputs, false).is_some() {
                    if let Some(why) = super::bucket::explain(self.egraph, c, key_outputs, self.mv)
                    {
                        return Err(why);
                    }
                    let what = display(self.egraph, c);
                    return Err(Rejection::new(
                        ReasonCode::FilterNotOnGroupKeys,
                        format!(
                            "the query filters on {what}, which is not computed from group keys of {}",
                            self.mv
                        ),
                    ));
                }
            }
            self.input = self.egraph.add(Node::Filter([conjuncts, self.input]));
        }
        Ok(pinned)
    }

    /// Notes the one MV key left free in a query group: `f(DISTINCT key)` is then `f(key)`.
    fn note_unique_key(&mut self, mv_keys: &[Id], effective: &HashSet<Id>) {
        // Not a float key: whether 0.0 and -0.0 (or NaNs) are one group and one distinct
        // value is for DataFusion's grouping and DISTINCT to agree on, which is not checked.
        if let [free] = mv_keys
            .iter()
            .filter(|k| !effective.contains(k))
            .collect::<Vec<_>>()[..]
            && !self.egraph[*free]
                .data
                .data_type
                .as_ref()
                .is_none_or(DataType::is_floating)
        {
            self.unique_key = Some(*free);
        }
    }

    /// `proj(keys + aggs, agg(keys, re-aggregates, input))`: the query's groups, each
    /// aggregate computed from the partial aggregates `stored` in the input's rows.
    fn regroup(
        &mut self,
        keys: Vec<Id>,
        aggs: &[Id],
        stored: &HashSet<Id>,
        key_outputs: &HashSet<Id>,
        computed: &HashMap<Id, Computed>,
    ) -> Result<Id, Rejection> {
        let mut new_aggs = Vec::new();
        let mut items = keys.clone();
        for a in aggs {
            let out = match computed.get(a) {
                Some(c) => {
                    new_aggs.extend(&c.aggs);
                    c.out
                }
                None => self.reaggregate(*a, stored, key_outputs, &mut new_aggs)?,
            };
            items.push(self.named(*a, out));
        }
        let key_list = self.set(keys);
        let agg_list = self.set(new_aggs);
        let agg = self.egraph.add(Node::Agg([key_list, agg_list, self.input]));
        let items = self.egraph.add(Node::List(items.into()));
        Ok(self.egraph.add(Node::Proj([items, agg])))
    }

    /// The MV key that `conjunct` (`key = literal`) fixes to one group, if any. Never a float
    /// key: `x = 0.0` holds for the two groups `0.0` and `-0.0`.
    fn pinned_key(&self, conjunct: Id, mv_keys: &[Id]) -> Option<Id> {
        let (head, children) = expr_node(self.egraph, conjunct)?;
        let Expr::BinaryExpr(b) = self.egraph.analysis.head(head) else {
            return None;
        };
        if b.op != Operator::Eq {
            return None;
        }
        let is_literal = |c: Id| {
            expr_node(self.egraph, c)
                .is_some_and(|(h, _)| *self.egraph.analysis.kind(h) == HeadKind::Literal)
        };
        match children {
            [a, l] | [l, a] if is_literal(*l) && mv_keys.contains(&self.egraph.find(*a)) => {
                let key = self.egraph.find(*a);
                let float = self.egraph[key]
                    .data
                    .data_type
                    .as_ref()
                    .is_none_or(DataType::is_floating);
                (!float).then_some(key)
            }
            _ => None,
        }
    }

    /// Same GROUP BY: every aggregate is read from the MV's row for its group.
    fn direct(&mut self, keys: &[Id], aggs: &[Id], stored: &HashSet<Id>) -> Option<Id> {
        let mut items = keys.to_vec();
        for a in aggs {
            let out = if stored.contains(a) {
                *a
            } else {
                let (sum, count, result) = self.avg_parts(*a, stored).ok()??;
                divide(self.egraph, sum, count, &result)
            };
            items.push(self.named(*a, out));
        }
        let items = self.egraph.add(Node::List(items.into()));
        Some(self.egraph.add(Node::Proj([items, self.input])))
    }

    /// No GROUP BY, and the filter pins every MV key: the filtered MV holds at most one row,
    /// the query's one group if it has any rows. Each aggregate is read from that row; over
    /// no row it is what the aggregate gives over no input (DataFusion's `default_value`: 0
    /// for a count, otherwise NULL), so the query keeps its one row.
    fn single_group(&mut self, aggs: &[Id], stored: &HashSet<Id>) -> Option<Id> {
        let mut picks = Vec::new();
        let rows = {
            let one = self.add(lit(1i64), vec![]);
            aggregate(self.egraph, "count", one)?
        };
        picks.push(rows);
        let mut items = Vec::new();
        for a in aggs {
            let out = if stored.contains(a) {
                let (head, _) = expr_node(self.egraph, *a)?;
                let Expr::AggregateFunction(f) = self.egraph.analysis.head(head) else {
                    return None;
                };
                if !self
                    .table
                    .empty_is_default
                    .iter()
                    .any(|n| n == f.func.name())
                {
                    return None;
                }
                let result = self.egraph[*a].data.data_type.clone()?;
                let empty = f.func.default_value(&result).ok()?;
                let value = self.pick(*a, &mut picks)?;
                if empty.is_null() {
                    value
                } else {
                    let head = datafusion::logical_expr::when(
                        placeholder(0).eq(lit(0i64)),
                        Expr::Literal(empty, None),
                    )
                    .otherwise(placeholder(1))
                    .ok()?;
                    self.add(head, vec![rows, value])
                }
            } else {
                let (sum, count, result) = self.avg_parts(*a, stored).ok()??;
                let (sum, count) = (self.pick(sum, &mut picks)?, self.pick(count, &mut picks)?);
                divide(self.egraph, sum, count, &result)
            };
            items.push(self.named(*a, out));
        }
        let keys = self.set(vec![]);
        let picks = self.set(picks);
        let agg = self.egraph.add(Node::Agg([keys, picks, self.input]));
        let items = self.egraph.add(Node::List(items.into()));
        Some(self.egraph.add(Node::Proj([items, agg])))
    }

    /// `max(value)` over at most one row: its value, or NULL over none. Only for the types
    /// `max` orders.
    fn pick(&mut self, value: Id, picks: &mut Vec<Id>) -> Option<Id> {
        let t = self.egraph[value].data.data_type.as_ref()?;
        let ordered = t.is_numeric()
            || matches!(
                t,
                DataType::Boolean
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Date32
                    | DataType::Date64
                    | DataType::Timestamp(..)
            );
        let max = aggregate(self.egraph, "max", value).filter(|_| ordered)?;
        picks.push(max);
        Some(max)
    }

    /// The expression (over the new aggregate's outputs) that equals query aggregate `a`,
    /// adding the aggregates it needs to `new_aggs`.
    fn reaggregate(
        &mut self,
        a: Id,
        stored: &HashSet<Id>,
        key_outputs: &HashSet<Id>,
        new_aggs: &mut Vec<Id>,
    ) -> Result<Id, Rejection> {
        let (head, args) = expr_node(self.egraph, a)
            .map(|(h, c)| (h, c.to_vec()))
            .ok_or_else(|| self.missing(a))?;
        let HeadKind::Aggregate { name, distinct } = self.egraph.analysis.kind(head).clone() else {
            return Err(self.missing(a));
        };
        let dup_insensitive = distinct || self.table.duplicate_insensitive.contains(&name);
        if dup_insensitive
            && args
                .iter()
                .all(|x| first_missing(self.egraph, *x, key_outputs, false).is_none())
        {
            return Ok(self.over_group_keys(a, &name, distinct, &args, new_aggs));
        }
        if distinct {
            return Err(Rejection::new(
                ReasonCode::DistinctNotOnKey,
                format!(
                    "{} needs its argument as a group key of {}",
                    display(self.egraph, a),
                    self.mv
                ),
            ));
        }
        let rule = self.table.rules.get(&name).cloned().ok_or_else(|| {
            Rejection::new(
                ReasonCode::AggregateMissing,
                format!("{name} cannot be rolled up from partial results"),
            )
        })?;
        if rule.via == "divide" {
            return self.average_of_sums(a, &rule, stored, new_aggs);
        }
        if !stored.contains(&a) || rule.from != [name.clone()] {
            return Err(self.missing(a));
        }
        Ok(self.rolled_up(a, &rule, new_aggs))
    }

    /// A duplicate-insensitive aggregate of group keys is computed again over the MV's groups.
    fn over_group_keys(
        &mut self,
        a: Id,
        name: &str,
        distinct: bool,
        args: &[Id],
        new_aggs: &mut Vec<Id>,
    ) -> Id {
        // min(k), count(DISTINCT k), ... over group keys: the MV's groups have the values.
        // Over the key whose values are unique within a query group, f(DISTINCT k) is f(k).
        let plain = match args[..] {
            [k] if distinct && Some(self.egraph.find(k)) == self.unique_key => {
                aggregate(self.egraph, name, k)
            }
            _ => None,
        };
        let out = plain.unwrap_or(a);
        new_aggs.push(out);
        out
    }

    /// An average rolls up as the sum of the MV's sums over the sum of its counts.
    fn average_of_sums(
        &mut self,
        a: Id,
        rule: &RollupRule,
        stored: &HashSet<Id>,
        new_aggs: &mut Vec<Id>,
    ) -> Result<Id, Rejection> {
        let (sum, count, result) = self.avg_parts(a, stored)?.ok_or_else(|| {
            Rejection::new(
                ReasonCode::AvgNeedsSumAndCount,
                format!(
                    "{} needs {} to keep {}(..) and {}(..) of the same argument",
                    display(self.egraph, a),
                    self.mv,
                    rule.from[0],
                    rule.from[1]
                ),
            )
        })?;
        let sum = self.reagg("sum", sum);
        let count = self.reagg("sum", count);
        new_aggs.extend([sum, count]);
        Ok(divide(self.egraph, sum, count, &result))
    }

    /// A stored partial re-aggregated by its rule, with the query's value over no rows and type.
    fn rolled_up(&mut self, a: Id, rule: &RollupRule, new_aggs: &mut Vec<Id>) -> Id {
        let mut out = self.reagg(&rule.via, a);
        new_aggs.push(out);
        // Always, not only without GROUP BY: a sum is nullable, a count is not.
        if rule.zero_on_empty {
            let head = datafusion::functions::expr_fn::coalesce(vec![placeholder(0), lit(0i64)]);
            out = self.add(head, vec![out]);
        }
        if let Some(t @ (DataType::Decimal128(..) | DataType::Decimal256(..))) =
            self.egraph[a].data.data_type.clone()
        {
            out = self.add(
                Expr::Cast(Cast::new(Box::new(placeholder(0)), t)),
                vec![out],
            );
        }
        out
    }

    /// For `avg(x)`: the MV's `sum(x)` and `count(x)` classes, and the average's type, which
    /// [`divide`] can rebuild exactly ([`rebuilt_average`]).
    ///
    /// DataFusion averages an integer `i` as `avg(CAST(i AS DOUBLE))`. Its count is `count(i)`
    /// (the cast is NULL only where `i` is). Its sum may be `sum(i)` when `i` has at most 32
    /// bits: `sum` adds them in 64 bits, exactly (it would take 2^32 rows of extreme values to
    /// overflow), so `CAST(sum(i) AS DOUBLE)` is the sum of the DOUBLEs to the last bit while
    /// that sum is below 2^53, and closer to the exact sum beyond. A 64-bit integer's sum may
    /// overflow where the DOUBLEs' does not: not used.
    fn avg_parts(
        &self,
        a: Id,
        stored: &HashSet<Id>,
    ) -> Result<Option<(Id, Id, DataType)>, Rejection> {
        let Some((head, args)) = expr_node(self.egraph, a) else {
            return Ok(None);
        };
        let HeadKind::Aggregate {
            name,
            distinct: false,
        } = self.egraph.analysis.kind(head)
        else {
            return Ok(None);
        };
        let Some(rule) = self.table.rules.get(name).filter(|r| r.via == "divide") else {
            return Ok(None);
        };
        let [arg] = args else { return Ok(None) };
        let argument = self.egraph[*arg].data.data_type.as_ref();
        let result = self.egraph[a].data.data_type.clone();
        let Some(result) = result.filter(|r| rebuilt_average(argument, r)) else {
            return Err(Rejection::new(
                ReasonCode::AggregateMissing,
                format!(
                    "{} is neither a DOUBLE nor the average of a DECIMAL of at most 25 digits: only those are rebuilt from sum and count",
                    display(self.egraph, a)
                ),
            ));
        };
        // The MV aggregate `fname` of an argument `of` accepts.
        let find = |fname: &str, of: &dyn Fn(Id) -> bool| {
            stored.iter().copied().find(|s| {
                expr_node(self.egraph, *s).is_some_and(|(h, c)| {
                    matches!(c, [c] if of(*c))
                        && matches!(self.egraph.analysis.kind(h),
                            HeadKind::Aggregate { name, distinct: false } if name == fname)
                })
            })
        };
        let same = |x: Id| move |c: Id| self.egraph.find(c) == self.egraph.find(x);
        let integer = casts_of(self.egraph, *arg, |t| t == &DataType::Float64)
            .find(|i| integer_bits(self.egraph, *i).is_some());
        let sum = find(&rule.from[0], &same(*arg)).or_else(|| {
            let i = integer
                .filter(|i| matches!(integer_bits(self.egraph, *i), Some(bits) if bits <= 32))?;
            find(&rule.from[0], &|c| self.is_or_widens(c, i))
        });
        let count = [Some(*arg), integer].into_iter().flatten().find_map(|x| {
            find(&rule.from[1], &same(x)).or_else(|| {
                // `count(x)` is `count(*)` where `x` is never NULL.
                let never_null = rule.from[1] == "count"
                    && (is_set_literal(self.egraph, x)
                        || self.never_null(x) && without_outer_joins(self.egraph, self.input));
                stored
                    .iter()
                    .copied()
                    .find(|s| never_null && is_count_star(self.egraph, *s))
            })
        });
        match (sum, integer) {
            (None, Some(i)) if integer_bits(self.egraph, i) == Some(64) => Err(Rejection::new(
                ReasonCode::AvgNeedsSumAndCount,
                format!(
                    "{} is rebuilt only from a sum of the DOUBLEs it averages: the sum of a 64-bit integer may overflow where theirs does not",
                    display(self.egraph, a)
                ),
            )),
            _ => Ok(sum.zip(count).map(|(sum, count)| (sum, count, result))),
        }
    }

    /// Whether `class` is the integer `i`, or `i` (of at most 32 bits) cast to 64 bits, as
    /// DataFusion's `sum` casts its argument: to a BIGINT, or an unsigned one to an unsigned
    /// BIGINT (never a negative value cast to an unsigned type).
    fn is_or_widens(&self, class: Id, i: Id) -> bool {
        let i = self.egraph.find(i);
        let unsigned = matches!(
            self.egraph[i].data.data_type,
            Some(DataType::UInt8 | DataType::UInt16 | DataType::UInt32)
        );
        self.egraph.find(class) == i
            || casts_of(self.egraph, class, |t| {
                t == &DataType::Int64 || (unsigned && t == &DataType::UInt64)
            })
            .any(|inner| self.egraph.find(inner) == i)
    }

    /// Whether `x` is a base column declared NOT NULL.
    fn never_null(&self, x: Id) -> bool {
        let x = self.egraph.find(x);
        let not_null = &self.egraph.analysis.not_null;
        not_null.iter().any(|c| self.egraph.find(*c) == x)
    }

    /// `via(arg)` as a new aggregate.
    fn reagg(&mut self, via: &str, arg: Id) -> Id {
        aggregate(self.egraph, via, arg).expect("rollup table functions are checked when loaded")
    }

    fn add(&mut self, head: Expr, children: Vec<Id>) -> Id {
        let h = self.egraph.analysis.intern(head);
        self.egraph.add(Node::Expr(h, children))
    }

    /// A projection item computing `value` that stands for `target`.
    fn named(&mut self, target: Id, value: Id) -> Id {
        if self.egraph.find(target) == self.egraph.find(value) {
            target
        } else {
            self.egraph.add(Node::As([target, value]))
        }
    }

    fn set(&mut self, ids: Vec<Id>) -> Id {
        crate::egraph::lang::add_set(self.egraph, &ids)
    }

    fn missing(&self, a: Id) -> Rejection {
        Rejection::new(
            ReasonCode::AggregateMissing,
            format!("{} does not keep {}", self.mv, display(self.egraph, a)),
        )
    }
}

/// The arguments of the casts in `class` to a type `to` accepts.
fn casts_of(
    egraph: &PlanGraph,
    class: Id,
    to: impl Fn(&DataType) -> bool,
) -> impl Iterator<Item = Id> {
    crate::egraph::lang::expr_nodes(egraph, class).filter_map(move |(head, children)| {
        match (egraph.analysis.head(head), children) {
            (Expr::Cast(cast), [x]) if to(cast.field.data_type()) => Some(*x),
            _ => None,
        }
    })
}

/// The width of an integer class.
fn integer_bits(egraph: &PlanGraph, class: Id) -> Option<u32> {
    match egraph[class].data.data_type.as_ref()? {
        DataType::Int8 | DataType::UInt8 => Some(8),
        DataType::Int16 | DataType::UInt16 => Some(16),
        DataType::Int32 | DataType::UInt32 => Some(32),
        DataType::Int64 | DataType::UInt64 => Some(64),
        _ => None,
    }
}

/// Whether `class` is a `BIGINT` cast of an integer of at most 32 bits, as DataFusion's `sum`
/// casts its argument: a sum or multiple of it (by a row count) is exact in 64 bits, unless
/// over 2^32 rows of extreme values.
pub(crate) fn widens_small_integer(egraph: &PlanGraph, class: Id) -> bool {
    egraph[class].data.data_type == Some(DataType::Int64)
        && casts_of(egraph, class, |t| t == &DataType::Int64)
            .any(|i| matches!(integer_bits(egraph, i), Some(bits) if bits <= 32))
}

/// Whether an average of type `result` over an argument of type `argument` is rebuilt exactly
/// from sum and count by [`divide`]: DOUBLE, or the `DECIMAL(p + 4, s + 4)` of a
/// `DECIMAL(p, s)` whose sum `avg` accumulates as a `DECIMAL(38, s)` (`p + 13 <= 38`,
/// DataFusion's `avg_sum_data_type`), as a re-aggregated sum is; wider sums `avg` keeps in
/// 256 bits.
pub(crate) fn rebuilt_average(argument: Option<&DataType>, result: &DataType) -> bool {
    match (argument, result) {
        (_, DataType::Float64) => true,
        (Some(DataType::Decimal128(p, s)), DataType::Decimal128(rp, rs)) => {
            *p <= 25 && *s >= 0 && *s + 4 <= 38 && (*rp, *rs) == (*p + 4, *s + 4)
        }
        _ => false,
    }
}

/// Whether `class` is `count(*)` (DataFusion's `count` of a non-NULL literal).
fn is_count_star(egraph: &PlanGraph, class: Id) -> bool {
    expr_node(egraph, class).is_some_and(|(h, args)| {
        matches!(egraph.analysis.kind(h), HeadKind::Aggregate { name, distinct: false } if name == "count")
            && matches!(args, [arg] if is_set_literal(egraph, *arg))
    })
}

/// Whether `class` is a literal other than NULL (`avg(1)` counts every row).
fn is_set_literal(egraph: &PlanGraph, class: Id) -> bool {
    expr_node(egraph, class).is_some_and(
        |(l, _)| matches!(egraph.analysis.head(l), Expr::Literal(v, _) if !v.is_null()),
    )
}

/// Whether no form of `rel`, nor of any relation below it, is an outer join: its NOT NULL
/// base columns are then never NULL.
fn without_outer_joins(egraph: &PlanGraph, rel: Id) -> bool {
    let mut seen = HashSet::new();
    let mut todo = vec![egraph.find(rel)];
    while let Some(class) = todo.pop() {
        if !seen.insert(class) {
            continue;
        }
        for node in &egraph[class].nodes {
            match node {
                Node::LeftJoin(_) | Node::FullJoin(_) => return false,
                Node::Filter([_, input])
                | Node::Proj([_, input])
                | Node::Agg([_, _, input])
                | Node::SemiJoin([input, _, _])
                | Node::AntiJoin([input, _, _]) => todo.push(egraph.find(*input)),
                Node::Join([inputs]) => todo.extend(
                    list_items(egraph, *inputs)
                        .into_iter()
                        .map(|i| egraph.find(i)),
                ),
                _ => {}
            }
        }
    }
    true
}
