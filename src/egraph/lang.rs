//! The e-graph language: logical plans whose columns are identified by the expression they hold.
//!
//! Relational nodes (`scan`, `mv`, `filter`, `agg`, `proj`) output a list of *expression
//! e-classes* (their schema, see [`ClassData::schema`]). A `proj` over an MV reads an MV column
//! simply by naming the e-class of the expression the MV stores, so projection containment and
//! reuse of stored UDF columns come from hash-consing rather than from rules.
//!
//! Scalar and aggregate expressions are not spelled out node by node: each one is a DataFusion
//! [`Expr`] *head* (the expression with its children replaced by placeholders) plus child
//! e-classes. That keeps every DataFusion expression form representable without a second
//! expression language, and makes converting back exact.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result as DfResult};
use datafusion::logical_expr::Expr;
use egg::{Analysis, DidMerge, EGraph, Id, Symbol, define_language};

use crate::report::Rejection;

define_language! {
    /// A node of the plan e-graph (see the module docs and ARCHITECTURE.md for each form).
    pub enum Node {
        "scan" = Scan([Id; 2]),
        "mv" = Mv([Id; 2]),
        "filter" = Filter([Id; 2]),
        "agg" = Agg([Id; 3]),
        "proj" = Proj([Id; 2]),
        "join" = Join([Id; 1]),
        "ljoin" = LeftJoin([Id; 3]),
        "fjoin" = FullJoin([Id; 3]),
        "sjoin" = SemiJoin([Id; 3]),
        "ajoin" = AntiJoin([Id; 3]),
        "as" = As([Id; 2]),
        "list" = List(Box<[Id]>),
        Expr(Head, Vec<Id>),
        Name(Symbol),
    }
}

// Node forms:
// - `(scan table (list columns...))`: every column of a base table.
// - `(mv name (list outputs...))`: a materialized view; its outputs are the e-classes of the
//   expressions it stores, positionally.
// - `(filter (list conjuncts...) input)`: conjuncts are a sorted, deduplicated set.
// - `(agg (list keys...) (list aggregates...) input)`: both lists are sorted sets.
// - `(proj (list items...) input)`: positional outputs.
// - `(join (list inputs...))`: the inner join of its inputs (a sorted set) with no condition,
//   outputting their columns in that order. Join conditions are conjuncts of a `filter` above
//   it: `A JOIN B ON a = b WHERE p` is `(filter (list a=b p) (join (list A B)))`, so join order,
//   ON versus WHERE and column equalities need no rules (Goldstein & Larson).
// - `(ljoin preserved nullable (list on...))`: a left outer join (a right join is written as
//   the left join it mirrors). Filters on the preserved input sit above it, filters on the
//   nullable input are ON conditions: both are equalities, so MVs and queries that place them
//   differently meet.
// - `(fjoin a b (list on...))`: a full outer join, inputs ordered by class id.
// - `(sjoin kept probe (list on...))`, `(ajoin kept probe (list on...))`: the rows of `kept`
//   with a match in `probe` (semi join: `EXISTS`, `IN`), or with none (anti join: `NOT
//   EXISTS`), outputting `kept`'s columns. As for `ljoin`, filters on `kept` sit above, filters
//   on `probe` are ON conditions.
// - `(as target value)`, only inside a `proj` list: compute `value` and let it stand for the
//   expression `target` above (so a re-aggregated `sum(count)` answers `count(*)`).
// - `Expr(head, children)`: a scalar or aggregate expression, an interned [`Head`].
// - `Name(symbol)`: a table or MV name.

/// The plan e-graph.
pub type PlanGraph = EGraph<Node, PlanAnalysis>;

/// Index of an interned expression head in [`PlanAnalysis::heads`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Head(pub u32);

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl FromStr for Head {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('#')
            .and_then(|n| n.parse().ok())
            .map(Head)
            .ok_or(())
    }
}

const PLACEHOLDER: &str = "__mvr_child_";

/// What an expression head is, as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadKind {
    /// A base-table column (a leaf).
    Column,
    /// A literal (a leaf).
    Literal,
    /// An aggregate function call: its name and whether it is DISTINCT. Aggregates with a
    /// FILTER or ORDER BY clause are `Opaque`: they only match themselves.
    Aggregate { name: String, distinct: bool },
    /// An aggregate that no rule may take apart (FILTER/ORDER BY clause).
    OpaqueAggregate,
    /// A time bucket in its canonical spelling (`crate::timeseries`): one child, the
    /// bucketed timestamp.
    Bucket(crate::timeseries::Grain),
    /// Any other scalar expression.
    Scalar,
}

/// The residual filter, or why the query's filter does not imply the MV's.
pub type Implication = Result<Vec<Id>, crate::report::NotImplied>;

/// Per-e-graph data: the head interner, statistics for costing and the reasons rules gave for
/// not firing (read by the report).
#[derive(Default)]
pub struct PlanAnalysis {
    heads: Vec<(Expr, HeadKind)>,
    head_ids: HashMap<Expr, Head>,
    /// Estimated rows of each base table and MV, by name.
    pub rows: HashMap<Symbol, f64>,
    /// For each MV, the columns a read of it is charged for (src/egraph/cost.rs).
    pub mv_columns: HashMap<Symbol, f64>,
    /// Why a rule did not fire for an MV, when it was trying to answer the query.
    pub rejections: Vec<(Symbol, Rejection)>,
    /// The classes of the query region (MV definitions match each other too; only failures
    /// on the query are worth reporting).
    pub query: Vec<Id>,
    /// The root classes of the candidate MVs.
    pub mv_roots: Vec<Id>,
    /// Filter implication results by (query conjuncts, MV conjuncts): egg applies every match
    /// again in each iteration, and the answer does not change.
    pub implications: HashMap<(Vec<Id>, Vec<Id>), Implication>,
    /// Whether any time bucket was interned: the bucket rewrites skip e-graphs without one.
    pub has_buckets: bool,
    /// The classes of base-table columns declared NOT NULL. Such a column is NULL only where
    /// an outer join extends its table's rows with NULLs.
    pub not_null: Vec<Id>,
}

impl PlanAnalysis {
    /// Interns `head` (an expression whose children are placeholders).
    pub fn intern(&mut self, head: Expr) -> Head {
        if let Some(h) = self.head_ids.get(&head) {
            return *h;
        }
        let kind = classify(&head);
        self.has_buckets |= matches!(kind, HeadKind::Bucket(_));
        let h = Head(self.heads.len() as u32);
        self.head_ids.insert(head.clone(), h);
        self.heads.push((head, kind));
        h
    }

    pub fn head(&self, h: Head) -> &Expr {
        &self.heads[h.0 as usize].0
    }

    pub fn kind(&self, h: Head) -> &HeadKind {
        &self.heads[h.0 as usize].1
    }
}

/// Whether `class` belongs to the query region.
pub fn in_query(egraph: &PlanGraph, class: Id) -> bool {
    let class = egraph.find(class);
    egraph
        .analysis
        .query
        .iter()
        .any(|i| egraph.find(*i) == class)
}

/// Records why `mv` could not answer `query_class`, if that class belongs to the query.
pub fn reject(egraph: &mut PlanGraph, query_class: Id, mv: Symbol, rejection: Rejection) {
    let in_query = in_query(egraph, query_class);
    let rejections = &mut egraph.analysis.rejections;
    if in_query && !rejections.iter().any(|(m, r)| *m == mv && *r == rejection) {
        rejections.push((mv, rejection));
    }
}

fn classify(head: &Expr) -> HeadKind {
    match head {
        Expr::Column(_) => HeadKind::Column,
        Expr::Literal(..) => HeadKind::Literal,
        Expr::AggregateFunction(f) => {
            if f.params.filter.is_some() || !f.params.order_by.is_empty() {
                HeadKind::OpaqueAggregate
            } else {
                HeadKind::Aggregate {
                    name: f.func.name().to_string(),
                    distinct: f.params.distinct,
                }
            }
        }
        Expr::ScalarFunction(call) => {
            match crate::timeseries::grain_of_call(call.name(), &call.args) {
                Some(grain) => HeadKind::Bucket(grain),
                None => HeadKind::Scalar,
            }
        }
        _ => HeadKind::Scalar,
    }
}

/// Splits `expr` into its head (children replaced by numbered placeholders) and its children.
pub fn decompose(expr: Expr) -> DfResult<(Expr, Vec<Expr>)> {
    let mut children = Vec::new();
    let head = expr
        .map_children(|child| {
            let placeholder = placeholder(children.len());
            children.push(child);
            Ok(Transformed::yes(placeholder))
        })?
        .data;
    Ok((head, children))
}

/// Puts `children` back into the placeholders of `head` (wherever they are: heads built by
/// rules, like `CAST(#0 AS DOUBLE) / #1`, nest them).
pub fn recompose(head: &Expr, children: Vec<Expr>) -> DfResult<Expr> {
    if children.is_empty() {
        return Ok(head.clone());
    }
    head.clone()
        .transform_up(|e| {
            let index = match &e {
                Expr::Column(c) => c
                    .name
                    .strip_prefix(PLACEHOLDER)
                    .and_then(|n| n.parse().ok()),
                _ => None,
            };
            match index.and_then(|i: usize| children.get(i)) {
                Some(child) => Ok(Transformed::yes(child.clone())),
                None => Ok(Transformed::no(e)),
            }
        })
        .map(|t| t.data)
}

/// E-class data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassData {
    /// For relational classes: the expression e-classes it outputs (a `proj`'s `as` items
    /// count as their target). All nodes of a class output the same set of expressions.
    pub schema: Option<Vec<Id>>,
    /// For expression classes: the output type, when the converter knew it.
    pub data_type: Option<DataType>,
}

impl Analysis<Node> for PlanAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut PlanGraph, enode: &Node, _id: Id) -> ClassData {
        let list = |egraph: &PlanGraph, id: Id| -> Vec<Id> {
            egraph[id]
                .nodes
                .iter()
                .find_map(|n| match n {
                    Node::List(items) => Some(items.to_vec()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let schema = match enode {
            Node::Scan([_, cols]) | Node::Mv([_, cols]) => Some(list(egraph, *cols)),
            Node::Filter([_, input])
            | Node::SemiJoin([input, _, _])
            | Node::AntiJoin([input, _, _]) => egraph[*input].data.schema.clone(),
            Node::LeftJoin([a, b, _]) | Node::FullJoin([a, b, _]) => egraph[*a]
                .data
                .schema
                .clone()
                .zip(egraph[*b].data.schema.clone())
                .map(|(x, y)| [x, y].concat()),
            Node::Join([inputs]) => list(egraph, *inputs)
                .into_iter()
                .map(|i| egraph[i].data.schema.clone())
                .collect::<Option<Vec<_>>>()
                .map(|schemas| schemas.concat()),
            Node::Agg([keys, aggs, _]) => {
                let mut s = list(egraph, *keys);
                s.extend(list(egraph, *aggs));
                Some(s)
            }
            Node::Proj([items, _]) => Some(
                list(egraph, *items)
                    .into_iter()
                    .map(|item| {
                        egraph[item]
                            .nodes
                            .iter()
                            .find_map(|n| match n {
                                Node::As([target, _]) => Some(*target),
                                _ => None,
                            })
                            .unwrap_or(item)
                    })
                    .collect(),
            ),
            _ => None,
        };
        ClassData {
            schema,
            data_type: None,
        }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let mut changed = false;
        if a.schema.is_none() && b.schema.is_some() {
            a.schema = b.schema;
            changed = true;
        }
        if a.data_type.is_none() && b.data_type.is_some() {
            a.data_type = b.data_type;
            changed = true;
        }
        DidMerge(changed, true)
    }
}

/// The expression node of an expression class, if it is one.
pub fn expr_node(egraph: &PlanGraph, id: Id) -> Option<(Head, &[Id])> {
    egraph[id].nodes.iter().find_map(|n| match n {
        Node::Expr(h, children) => Some((*h, children.as_slice())),
        _ => None,
    })
}

/// Every expression node of a class: equal expressions spelled differently (a day bucket of
/// the timestamp and a day bucket of its hour bucket); whoever reads one may need another.
pub fn expr_nodes(egraph: &PlanGraph, id: Id) -> impl Iterator<Item = (Head, &[Id])> {
    egraph[id].nodes.iter().filter_map(|n| match n {
        Node::Expr(h, children) => Some((*h, children.as_slice())),
        _ => None,
    })
}

/// The items of a `list` class.
pub fn list_items(egraph: &PlanGraph, id: Id) -> Vec<Id> {
    egraph[id]
        .nodes
        .iter()
        .find_map(|n| match n {
            Node::List(items) => Some(items.iter().map(|i| egraph.find(*i)).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Adds a `list` of the distinct classes in `ids` in a canonical order: how conjuncts, GROUP
/// BY keys and aggregates are stored, so equal sets are one class.
pub fn add_set(egraph: &mut PlanGraph, ids: &[Id]) -> Id {
    let mut items: Vec<Id> = ids.iter().map(|i| egraph.find(*i)).collect();
    items.sort();
    items.dedup();
    egraph.add(Node::List(items.into()))
}

/// A relation as (its filter's conjuncts, the inputs of the join under it): an inner join
/// is a filter over a set of inputs; a relation that is no join is its own only input.
pub fn unjoined(egraph: &PlanGraph, rel: Id) -> (Vec<Id>, Vec<Id>) {
    let (conjuncts, inner) = match egraph[rel].nodes.iter().find_map(|n| match n {
        Node::Filter([list, inner]) => Some((*list, *inner)),
        _ => None,
    }) {
        Some((list, inner)) => (list_items(egraph, list), egraph.find(inner)),
        None => (vec![], egraph.find(rel)),
    };
    let inputs = egraph[inner]
        .nodes
        .iter()
        .find_map(|n| match n {
            Node::Join([inputs]) => Some(list_items(egraph, *inputs)),
            _ => None,
        })
        .unwrap_or_else(|| vec![inner]);
    (conjuncts, inputs)
}

/// The name held by a `Name` class.
pub fn name_of(egraph: &PlanGraph, id: Id) -> Option<Symbol> {
    egraph[id].nodes.iter().find_map(|n| match n {
        Node::Name(s) => Some(*s),
        _ => None,
    })
}

/// The MV name if `id` is a materialized view's class.
pub fn mv_of(egraph: &PlanGraph, id: Id) -> Option<Symbol> {
    egraph[id].nodes.iter().find_map(|n| match n {
        Node::Mv([name, _]) => name_of(egraph, *name),
        _ => None,
    })
}

/// A class written as SQL-ish text, for reports.
pub fn display(egraph: &PlanGraph, class: Id) -> String {
    fn build(egraph: &PlanGraph, class: Id, depth: usize) -> Option<Expr> {
        let (head, children) = expr_node(egraph, class)?;
        if depth > 64 {
            return None;
        }
        let kids = children
            .iter()
            .map(|c| build(egraph, *c, depth + 1))
            .collect::<Option<Vec<_>>>()?;
        recompose(egraph.analysis.head(head), kids).ok()
    }
    build(egraph, class, 0)
        .map(|e| sql_text(&e))
        .unwrap_or_else(|| format!("expression {class}"))
}

/// An expression written as SQL, for reports. DataFusion's unparser writes literals as SQL
/// does ('b', not b); human_display is the fallback for what it cannot print.
pub fn sql_text(e: &Expr) -> String {
    match datafusion::sql::unparser::expr_to_sql(e) {
        Ok(sql) => without_outer_parentheses(sql.to_string()),
        Err(_) => e.human_display().to_string(),
    }
}

/// `(a = 1)` as `a = 1`; `(a) OR (b)` unchanged.
fn without_outer_parentheses(sql: String) -> String {
    let mut depth = 0;
    for (i, c) in sql.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return if i == sql.len() - 1 && sql.starts_with('(') {
                sql[1..i].to_string()
            } else {
                sql
            };
        }
    }
    sql
}

/// A numbered placeholder, for building heads by hand.
pub fn placeholder(i: usize) -> Expr {
    Expr::Column(Column::from_name(format!("{PLACEHOLDER}{i}")))
}
