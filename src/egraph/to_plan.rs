//! Turning the extracted e-graph term back into a DataFusion `LogicalPlan`.
//!
//! Expressions are resolved by identity: an expression e-class that the input relation outputs
//! becomes a column reference, anything else is rebuilt from its head. The root projection
//! takes the original query's qualified names and types, so DataFusion's schema check passes.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::logical_expr::{
    Expr, ExprSchemable, JoinType, LogicalPlan, LogicalPlanBuilder, TableSource, cast,
};
use egg::{Extractor, Id, Symbol};

use crate::egraph::cost::RowsRead;
use crate::egraph::lang::{
    Head, HeadKind, Node, PlanGraph, expr_nodes, list_items, name_of, recompose,
};

type Out<T> = Result<T, String>;

/// Builds plans from the cheapest node of each class.
pub struct ToPlan<'a> {
    pub egraph: &'a PlanGraph,
    pub best: &'a Extractor<'a, RowsRead<'a>, Node, crate::egraph::lang::PlanAnalysis>,
    pub tables: &'a HashMap<Symbol, Arc<dyn TableSource>>,
    pub mvs: &'a HashMap<Symbol, Arc<dyn TableSource>>,
    /// The classes whose expressions are being rebuilt, innermost last.
    pub rebuilding: RefCell<Vec<Id>>,
}

impl ToPlan<'_> {
    /// The plan for the region rooted at `root`, with `target`'s names and types.
    pub fn root(&self, root: Id, target: &DFSchema) -> Out<LogicalPlan> {
        let (input, _) = self.rel(root)?;
        conform(input, target)
    }

    /// A relation and the expression classes of its output columns, positionally.
    fn rel(&self, class: Id) -> Out<(LogicalPlan, Vec<Id>)> {
        let node = self.best.find_best_node(class);
        match node {
            Node::Scan([name, cols]) | Node::Mv([name, cols]) => self.scan(node, *name, *cols),
            Node::Join([inputs]) => self.product(*inputs),
            Node::LeftJoin([a, b, on])
            | Node::FullJoin([a, b, on])
            | Node::SemiJoin([a, b, on])
            | Node::AntiJoin([a, b, on]) => self.outer_join(node, *a, *b, *on),
            Node::Filter([conjuncts, input]) => self.filter(*conjuncts, *input),
            Node::Agg([keys, aggs, input]) => self.aggregate(*keys, *aggs, *input),
            Node::Proj([items, input]) => self.projection(*items, *input),
            other => Err(format!("not a relation: {other}")),
        }
    }

    /// A scan of a base table or of an MV (`node` tells which), checked against its source.
    fn scan(&self, node: &Node, name: Id, cols: Id) -> Out<(LogicalPlan, Vec<Id>)> {
        let name = name_of(self.egraph, name).ok_or("scan without a name")?;
        let sources = if matches!(node, Node::Scan(_)) {
            self.tables
        } else {
            self.mvs
        };
        let source = sources
            .get(&name)
            .ok_or_else(|| format!("no source for {name}"))?;
        let cols = list_items(self.egraph, cols);
        if source.schema().fields().len() != cols.len() {
            return Err(format!(
                "{name} does not have the columns it was defined with"
            ));
        }
        let scan = LogicalPlanBuilder::scan(
            TableReference::bare(name.as_str()),
            Arc::clone(source),
            None,
        );
        // A later occurrence of a table read twice keeps its own qualifier, so that
        // the two sides of a self-join stay apart (`crate::plan::occurrences`).
        let alias = match node {
            Node::Scan(_) => self.qualifier(&cols),
            _ => None,
        };
        let plan = match alias {
            Some(q) if q.table() != name.as_str() => build(scan.and_then(|s| s.alias(q)))?,
            _ => build(scan)?,
        };
        Ok((plan, cols))
    }

    /// An inner join's inputs as a chain of cross joins (its conditions are the filter above).
    fn product(&self, inputs: Id) -> Out<(LogicalPlan, Vec<Id>)> {
        let mut ids = Vec::new();
        let mut plan: Option<LogicalPlanBuilder> = None;
        for input in list_items(self.egraph, inputs) {
            let (p, cols) = self.rel(input)?;
            ids.extend(cols);
            plan = Some(match plan {
                None => LogicalPlanBuilder::from(p),
                Some(b) => b.cross_join(p).map_err(|e| e.to_string())?,
            });
        }
        let plan = plan.ok_or("a join without inputs")?;
        Ok((build(Ok(plan))?, ids))
    }

    /// A left, full, semi or anti join (`node` tells which) of `a` and `b` on `on`.
    fn outer_join(&self, node: &Node, a: Id, b: Id, on: Id) -> Out<(LogicalPlan, Vec<Id>)> {
        let kind = match node {
            Node::LeftJoin(_) => JoinType::Left,
            Node::FullJoin(_) => JoinType::Full,
            Node::SemiJoin(_) => JoinType::LeftSemi,
            _ => JoinType::LeftAnti,
        };
        let (left, left_ids) = self.rel(a)?;
        let (right, right_ids) = self.rel(b)?;
        let kept = left_ids.len();
        let mut ids: Vec<Id> = left_ids.into_iter().chain(right_ids).collect();
        // The conditions are resolved over both inputs' columns, as the join sees them.
        let both = build(LogicalPlanBuilder::from(left.clone()).cross_join(right.clone()))?;
        let on = list_items(self.egraph, on)
            .into_iter()
            .map(|c| self.expr(c, &both, &ids))
            .collect::<Out<Vec<_>>>()?;
        let plan = build(LogicalPlanBuilder::from(left).join_on(right, kind, on))?;
        if matches!(kind, JoinType::LeftSemi | JoinType::LeftAnti) {
            ids.truncate(kept);
        }
        Ok((plan, ids))
    }

    /// A filter of `input` by the conjunction of `conjuncts`.
    fn filter(&self, conjuncts: Id, input: Id) -> Out<(LogicalPlan, Vec<Id>)> {
        let (input, ids) = self.rel(input)?;
        let predicate = list_items(self.egraph, conjuncts)
            .into_iter()
            .map(|c| self.expr(c, &input, &ids))
            .collect::<Out<Vec<_>>>()?
            .into_iter()
            .reduce(Expr::and)
            .ok_or("empty filter")?;
        Ok((
            build(LogicalPlanBuilder::from(input).filter(predicate))?,
            ids,
        ))
    }

    /// An aggregate of `input`, outputting its keys then its aggregates.
    fn aggregate(&self, keys: Id, aggs: Id, input: Id) -> Out<(LogicalPlan, Vec<Id>)> {
        let (input, ids) = self.rel(input)?;
        let keys = list_items(self.egraph, keys);
        let aggs = list_items(self.egraph, aggs);
        let key_exprs = keys
            .iter()
            .map(|k| self.expr(*k, &input, &ids))
            .collect::<Out<Vec<_>>>()?;
        let agg_exprs = aggs
            .iter()
            .map(|a| self.rebuild(*a, &input, &ids))
            .collect::<Out<Vec<_>>>()?;
        let plan = build(LogicalPlanBuilder::from(input).aggregate(key_exprs, agg_exprs))?;
        Ok((plan, keys.into_iter().chain(aggs).collect()))
    }

    /// A projection of `items` over `input`, aliasing renamed or repeated names apart.
    fn projection(&self, items: Id, input: Id) -> Out<(LogicalPlan, Vec<Id>)> {
        let (input, ids) = self.rel(input)?;
        let mut names = HashSet::new();
        let mut out_ids = Vec::new();
        let mut exprs = Vec::new();
        for (i, item) in list_items(self.egraph, items).into_iter().enumerate() {
            let (target, value) = self.as_parts(item);
            let e = self.expr(value, &input, &ids)?;
            let name = e.schema_name().to_string();
            let e = if target != value || !names.insert(name) {
                e.alias(format!("__mvr_{i}"))
            } else {
                e
            };
            exprs.push(e);
            out_ids.push(target);
        }
        Ok((
            build(LogicalPlanBuilder::from(input).project(exprs))?,
            out_ids,
        ))
    }

    /// The qualifier of the base-table columns `cols` (a scan's).
    fn qualifier(&self, cols: &[Id]) -> Option<TableReference> {
        let first = *cols.first()?;
        expr_nodes(self.egraph, first).find_map(|(h, _)| match self.egraph.analysis.head(h) {
            Expr::Column(c) => c.relation.clone(),
            _ => None,
        })
    }

    /// `(target, value)` of a projection item; a plain item is its own target.
    fn as_parts(&self, item: Id) -> (Id, Id) {
        match self.egraph[item].nodes.iter().find_map(|n| match n {
            Node::As([t, v]) => Some((*t, *v)),
            _ => None,
        }) {
            Some((t, v)) => (self.egraph.find(t), self.egraph.find(v)),
            None => (item, item),
        }
    }

    /// An expression over `input`: a column reference when `input` outputs the class.
    fn expr(&self, class: Id, input: &LogicalPlan, ids: &[Id]) -> Out<Expr> {
        let class = self.egraph.find(class);
        if let Some(pos) = ids.iter().position(|i| self.egraph.find(*i) == class) {
            let (qualifier, field) = input.schema().qualified_field(pos);
            return Ok(Expr::Column(Column::new(qualifier.cloned(), field.name())));
        }
        self.rebuild(class, input, ids)
    }

    /// Rebuilds `class` from its head, resolving its children over `input`: the first of its
    /// spellings that `input` can compute.
    /// Spellings are never followed through a class being rebuilt: the e-graph has cycles (a
    /// bucket is the cast of its own DATE).
    fn rebuild(&self, class: Id, input: &LogicalPlan, ids: &[Id]) -> Out<Expr> {
        let class = self.egraph.find(class);
        if self.rebuilding.borrow().contains(&class) {
            return Err("a cycle of spellings".into());
        }
        self.rebuilding.borrow_mut().push(class);
        let mut result = Err("expected an expression class".to_string());
        for (head, children) in expr_nodes(self.egraph, class) {
            result = self.rebuild_node(head, children, input, ids);
            if result.is_ok() {
                break;
            }
        }
        self.rebuilding.borrow_mut().pop();
        result
    }

    fn rebuild_node(
        &self,
        head: Head,
        children: &[Id],
        input: &LogicalPlan,
        ids: &[Id],
    ) -> Out<Expr> {
        let analysis = &self.egraph.analysis;
        if *analysis.kind(head) == HeadKind::Column {
            return Err(format!("{} is not available here", analysis.head(head)));
        }
        let children = children
            .iter()
            .map(|c| self.expr(*c, input, ids))
            .collect::<Out<Vec<_>>>()?;
        let e = recompose(analysis.head(head), children).map_err(|e| e.to_string())?;
        // A cast the rollup added only for types that change on re-aggregation.
        if let Expr::Cast(c) = &e
            && c.expr.get_type(input.schema()).ok().as_ref() == Some(c.field.data_type())
        {
            return Ok(*c.expr.clone());
        }
        Ok(e)
    }
}

/// A built plan, DataFusion's error as text: every relation ends in one.
fn build(b: datafusion::common::Result<LogicalPlanBuilder>) -> Out<LogicalPlan> {
    b.and_then(|b| b.build()).map_err(|e| e.to_string())
}

/// `input` with the names, qualifiers and types of `target`, column by column: a rewritten
/// plan must look exactly like the one it replaces to the plan above it.
pub fn conform(input: LogicalPlan, target: &DFSchema) -> Out<LogicalPlan> {
    if input.schema().fields().len() != target.fields().len() {
        return Err("the rewritten region changed width".into());
    }
    let exprs = input
        .schema()
        .iter()
        .zip(target.iter())
        .map(|((q, f), (qualifier, field))| {
            let e = Expr::Column(Column::new(q.cloned(), f.name()));
            let e = if f.data_type() != field.data_type() {
                cast(e, field.data_type().clone())
            } else {
                e
            };
            e.alias_qualified(qualifier.cloned(), field.name())
        })
        .collect::<Vec<_>>();
    LogicalPlanBuilder::from(input)
        .project(exprs)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())
}
