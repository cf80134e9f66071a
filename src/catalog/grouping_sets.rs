//! An MV defined with GROUPING SETS, ROLLUP or CUBE holds the rows of each of its sets. The
//! rows of its finest set (every key) are the plain aggregate by every key, so the MV answers
//! as that aggregate, its stored rows read through a filter keeping that set's rows alone
//! ([`crate::catalog::Catalog::filter_answering_scans`]). Queries by grouping sets reach it
//! through the plain aggregate under them (`crate::forms::reaggregate`), coarser queries roll
//! it up like any aggregate MV.
//!
//! The filter must be certain, since a NULL a set puts in a key it groups away looks like a
//! NULL in the data: the MV answers only when every key is a column NOT NULL below the
//! grouping (a NULL key then marks a set that groups it away), or when it keeps a `grouping()`
//! column whose value in the finest set no other set has. Otherwise it is ineligible, with
//! why.

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, GroupingSet, LogicalPlan, Projection, lit,
};
use datafusion::prelude::ident;
use std::sync::Arc;

use super::MaterializedView;

/// What tells the finest set's rows from the other sets' in the stored MV.
#[derive(Clone, Debug, PartialEq)]
pub enum FinestRows {
    /// Every key NOT NULL below the grouping: the outputs (by position) keeping the keys are
    /// all not NULL.
    KeysPresent(Vec<usize>),
    /// The output (by position) computed from the grouping id alone has this value, which
    /// no other set gives it.
    Grouping(usize, ScalarValue),
}

impl FinestRows {
    /// The filter over the stored columns (`stored`, the MV's stored schema).
    pub fn predicate(&self, stored: &Schema) -> Option<Expr> {
        let column = |j: &usize| stored.fields().get(*j).map(|f| ident(f.name()));
        match self {
            FinestRows::KeysPresent(outputs) => {
                let present: Option<Vec<Expr>> = outputs
                    .iter()
                    .map(|j| column(j).map(Expr::is_not_null))
                    .collect();
                conjunction(present?)
            }
            FinestRows::Grouping(j, value) => Some(column(j)?.eq(lit(value.clone()))),
        }
    }
}

/// A grouping-sets definition as the plain aggregate by every key, and how its rows are told
/// apart; `None` when `plan` has no grouping sets, `Err` (why) when it cannot be read so.
pub fn finest_set(plan: &LogicalPlan) -> Option<Result<(LogicalPlan, FinestRows), String>> {
    let has_sets = plan
        .exists(|node| {
            Ok(matches!(node, LogicalPlan::Aggregate(a)
                if matches!(a.group_expr.as_slice(), [Expr::GroupingSet(_)])))
        })
        .unwrap_or(true);
    if !has_sets {
        return None;
    }
    Some(read_finest(plan))
}

fn read_finest(plan: &LogicalPlan) -> Result<(LogicalPlan, FinestRows), String> {
    const SHAPE: &str = "its grouping sets are not the aggregate under its top projection";
    let LogicalPlan::Projection(projection) = plan else {
        return Err(SHAPE.into());
    };
    let (having, agg) = match projection.input.as_ref() {
        LogicalPlan::Filter(f) => match f.input.as_ref() {
            LogicalPlan::Aggregate(agg) => (Some(f), agg),
            _ => return Err(SHAPE.into()),
        },
        LogicalPlan::Aggregate(agg) => (None, agg),
        _ => return Err(SHAPE.into()),
    };
    let [Expr::GroupingSet(grouping)] = agg.group_expr.as_slice() else {
        return Err(SHAPE.into());
    };
    let keys: Vec<Expr> = grouping.distinct_expr().into_iter().cloned().collect();
    let masks = set_masks(grouping, &keys);
    if masks.iter().filter(|m| **m == 0).count() != 1 {
        return Err("its sets do not have the set of every key exactly once".into());
    }
    let rows = finest_rows(projection, agg, &keys, &masks)?;
    let plain = plain_form(projection, having, agg, keys).map_err(|e| e.to_string())?;
    Ok((plain, rows))
}

/// Each set's bitmask as DataFusion's grouping id writes it: bit `n - 1 - i` set when key
/// `i` is grouped away.
fn set_masks(grouping: &GroupingSet, keys: &[Expr]) -> Vec<u64> {
    let sets: Vec<Vec<&Expr>> = match grouping {
        GroupingSet::GroupingSets(sets) => sets.iter().map(|s| s.iter().collect()).collect(),
        GroupingSet::Rollup(es) => (0..=es.len()).map(|i| es[..i].iter().collect()).collect(),
        GroupingSet::Cube(es) => (0..1u64 << es.len())
            .map(|bits| {
                let kept = |(i, _): &(usize, &Expr)| bits & (1 << i) != 0;
                es.iter().enumerate().filter(kept).map(|(_, e)| e).collect()
            })
            .collect(),
    };
    let n = keys.len();
    sets.iter()
        .map(|set| {
            let away = |(i, k): (usize, &Expr)| (!set.contains(&k)).then_some(1u64 << (n - 1 - i));
            keys.iter().enumerate().filter_map(away).sum()
        })
        .collect()
}

/// How the finest set's rows are told apart: by the keys all present when they are NOT NULL
/// columns below the grouping and kept as outputs, else by a `grouping()` output.
fn finest_rows(
    projection: &Projection,
    agg: &Aggregate,
    keys: &[Expr],
    masks: &[u64],
) -> Result<FinestRows, String> {
    let output_of = |i: usize| {
        let key = Expr::Column(Column::from(agg.schema.qualified_field(i)));
        projection
            .expr
            .iter()
            .position(|e| super::partitions::unaliased(e) == &key)
    };
    let mut nullable = None;
    let mut outputs = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let not_null = match key {
            Expr::Column(c) => agg
                .input
                .schema()
                .qualified_field_from_column(c)
                .is_ok_and(|(_, f)| !f.is_nullable()),
            _ => false,
        };
        match (not_null, output_of(i)) {
            (true, Some(j)) => outputs.push(j),
            (true, None) => {
                nullable.get_or_insert(format!("its key {key} is not kept"));
            }
            (false, _) => {
                nullable.get_or_insert(format!("its key {key} may be NULL in the data"));
            }
        }
    }
    let Some(why) = nullable else {
        return Ok(FinestRows::KeysPresent(outputs));
    };
    grouping_output(projection, agg, keys.len(), masks).ok_or_else(|| {
        format!(
            "{why}, where a NULL does not mark the sets that group it away, and no grouping() output tells its finest set apart"
        )
    })
}

/// An output computed from the grouping id alone whose value in the finest set (id 0) no other
/// set gives it.
fn grouping_output(
    projection: &Projection,
    agg: &Aggregate,
    n: usize,
    masks: &[u64],
) -> Option<FinestRows> {
    let id = Column::from(agg.schema.qualified_field(n));
    let id_type = agg.schema.field(n).data_type();
    // Repeated sets carry an ordinal above the mask bits.
    let ids: Vec<u64> = masks
        .iter()
        .enumerate()
        .map(|(k, m)| m | ((masks[..k].iter().filter(|x| *x == m).count() as u64) << n))
        .collect();
    let value_at = |e: &Expr, id_value: u64| {
        let v = ScalarValue::UInt64(Some(id_value)).cast_to(id_type).ok()?;
        super::partitions::evaluate(e, &id.name, v)
    };
    projection.expr.iter().enumerate().find_map(|(j, e)| {
        let refs = e.column_refs();
        if refs.is_empty() || refs.iter().any(|c| **c != id) {
            return None;
        }
        let finest = value_at(e, 0).filter(|v| !v.is_null())?;
        let others: Option<Vec<ScalarValue>> = ids
            .iter()
            .filter(|i| **i != 0)
            .map(|i| value_at(e, *i))
            .collect();
        (!others?.contains(&finest)).then(|| FinestRows::Grouping(j, finest))
    })
}

/// The definition with a plain aggregate by every key in place of the grouping sets, the
/// grouping id (0 in the finest set) a constant above it, each output named as before.
fn plain_form(
    projection: &Projection,
    having: Option<&Filter>,
    agg: &Aggregate,
    keys: Vec<Expr>,
) -> datafusion::error::Result<LogicalPlan> {
    let n = keys.len();
    let id = Column::from(agg.schema.qualified_field(n));
    let zero = ScalarValue::UInt64(Some(0)).cast_to(agg.schema.field(n).data_type())?;
    let constant = |e: Expr| {
        e.transform(|x| {
            Ok(match x {
                Expr::Column(c) if c == id => Transformed::yes(lit(zero.clone())),
                other => Transformed::no(other),
            })
        })
        .map(|t| t.data)
    };
    let plain = Aggregate::try_new(Arc::clone(&agg.input), keys, agg.aggr_expr.clone())?;
    let mut input = LogicalPlan::Aggregate(plain);
    if let Some(f) = having {
        input = LogicalPlan::Filter(Filter::try_new(
            constant(f.predicate.clone())?,
            Arc::new(input),
        )?);
    }
    let exprs = projection
        .expr
        .iter()
        .enumerate()
        .map(|(j, e)| {
            let (qualifier, field) = projection.schema.qualified_field(j);
            let kept = constant(e.clone())?;
            Ok(if kept == *e {
                kept
            } else {
                kept.unalias()
                    .alias_qualified(qualifier.cloned(), field.name())
            })
        })
        .collect::<datafusion::error::Result<Vec<Expr>>>()?;
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(input),
    )?))
}

/// A grouping-sets MV as it answers: its finest set, and the filter its stored rows are read
/// through.
#[derive(Debug)]
pub struct Finest {
    pub(crate) answering: Arc<MaterializedView>,
    pub(crate) rows: Expr,
}

/// `mv` answering as its finest set, if it is a grouping-sets MV that can.
pub fn answering(mv: &MaterializedView) -> Option<Finest> {
    let Some(Ok((plan, rows))) = finest_set(&mv.plan) else {
        return None;
    };
    let rows = rows.predicate(&mv.source.schema())?;
    let source = Arc::clone(&mv.source);
    let answering = MaterializedView::new(&mv.name, mv.sql.clone(), plan, source, mv.row_count);
    Some(Finest {
        answering: Arc::new(answering.with_inputs(mv.inputs.clone())),
        rows,
    })
}
