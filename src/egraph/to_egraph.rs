//! Adding a region (query or MV definition) to the e-graph, normalizing as it goes: aliases
//! dropped, columns resolved to the base-table column they read, conjuncts and GROUP BY keys as
//! sorted sets, commutative operands ordered, intermediate projections folded into the
//! expressions that use them.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema, NullEquality};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, ExprSchemable, Filter, Join, JoinType, LogicalPlan, Operator,
    Projection, TableScan, TableSource, cast,
};
use egg::{Id, Symbol};

use crate::egraph::lang::{HeadKind, Node, PlanGraph, decompose, placeholder, unjoined};
use crate::plan::occurrences::{Mapping, qualifier};

/// Where the region landed: its root class (always a `proj`) and its output expressions.
#[derive(Clone, Debug)]
pub struct RegionInEGraph {
    pub root: Id,
    pub outputs: Vec<Id>,
    /// The filtered scan under any aggregate: what the region reads rows from.
    pub base: Id,
    /// Whether the region aggregates.
    pub aggregated: bool,
}

impl RegionInEGraph {
    /// The query's `agg` and `proj` nodes that read its base relation: where a different form
    /// of that relation (joined to more tables, or split around a join) is put in.
    pub fn consumers(&self, egraph: &PlanGraph) -> Vec<Node> {
        let base = egraph.find(self.base);
        egraph
            .analysis
            .query
            .iter()
            .flat_map(|c| egraph[*c].nodes.iter())
            .filter(|n| {
                matches!(n, Node::Agg([_, _, input]) | Node::Proj([_, input])
                    if egraph.find(*input) == base)
            })
            .cloned()
            .collect()
    }

    /// Lets the query's consumers also read `base`, another form of its base relation with
    /// the same rows and at least its columns (columns are expression classes, so each
    /// consumer names the same ones over either form).
    pub fn read_also_from(&self, egraph: &mut PlanGraph, base: Id) {
        for node in self.consumers(egraph) {
            let original = egraph.add(node.clone());
            let other = egraph.add(match node {
                Node::Agg([k, a, _]) => Node::Agg([k, a, base]),
                Node::Proj([items, _]) => Node::Proj([items, base]),
                other => other,
            });
            egraph.union(original, other);
        }
        egraph.rebuild();
    }
}

/// Adds regions to an e-graph, remembering the base tables' sources for converting back.
pub struct ToEGraph<'a> {
    pub egraph: &'a mut PlanGraph,
    pub tables: &'a mut HashMap<Symbol, Arc<dyn TableSource>>,
    /// Which occurrence each scan of the region being added stands for.
    mapping: Mapping,
    /// Scans of each table met so far in the region being added.
    scans: HashMap<String, usize>,
    /// The aggregates computed so far in the region being added.
    aggregates: std::collections::HashSet<Id>,
}

type Out<T> = Result<T, String>;

impl<'a> ToEGraph<'a> {
    pub fn new(
        egraph: &'a mut PlanGraph,
        tables: &'a mut HashMap<Symbol, Arc<dyn TableSource>>,
    ) -> Self {
        ToEGraph {
            egraph,
            tables,
            mapping: Mapping::default(),
            scans: HashMap::new(),
            aggregates: std::collections::HashSet::new(),
        }
    }

    /// Adds `plan` (which must be a region) as `(proj outputs ...)`, its scans of each table
    /// numbered in plan order.
    pub fn add_region(&mut self, plan: &LogicalPlan) -> Out<RegionInEGraph> {
        self.add_region_mapped(plan, &Mapping::default())
    }

    /// Adds `plan` with its scans of a table read several times standing for the occurrences
    /// `mapping` gives them (`crate::plan::occurrences`).
    pub fn add_region_mapped(
        &mut self,
        plan: &LogicalPlan,
        mapping: &Mapping,
    ) -> Out<RegionInEGraph> {
        self.mapping = mapping.clone();
        self.scans.clear();
        self.aggregates.clear();
        let (rel, outputs) = self.rel(plan)?;
        let list = self.egraph.add(Node::List(outputs.clone().into()));
        let root = self.egraph.add(Node::Proj([list, rel]));
        let (mut base, mut aggregated) = (rel, false);
        loop {
            let is_agg = |id: Id| {
                self.egraph[id]
                    .nodes
                    .iter()
                    .any(|n| matches!(n, Node::Agg(_)))
            };
            let below = self.egraph[base].nodes.iter().find_map(|n| match n {
                Node::Agg([_, _, input]) => Some(*input),
                Node::Filter([_, input]) if is_agg(*input) => Some(*input),
                _ => None,
            });
            match below {
                Some(input) => {
                    aggregated |= is_agg(base);
                    base = input;
                }
                None => break,
            }
        }
        Ok(RegionInEGraph {
            root,
            outputs,
            base,
            aggregated,
        })
    }

    /// `exprs` over the columns of `scan` (a table scan), as expression classes: for reasoning
    /// about filters outside any region.
    pub fn scan_conjuncts(&mut self, scan: &LogicalPlan, exprs: &[Expr]) -> Out<Vec<Id>> {
        let (_, outs) = self.rel(scan)?;
        exprs
            .iter()
            .map(|e| self.expr(e, scan.schema(), &outs))
            .collect()
    }

    /// Converts a relational node: its class and the expression classes of its output columns.
    fn rel(&mut self, plan: &LogicalPlan) -> Out<(Id, Vec<Id>)> {
        match plan {
            LogicalPlan::TableScan(scan) => self.scan(scan),
            LogicalPlan::Filter(filter) => self.filter_plan(filter),
            LogicalPlan::Projection(p) => self.projection(p),
            LogicalPlan::Aggregate(agg) => self.aggregate(agg),
            LogicalPlan::SubqueryAlias(alias) => self.rel(&alias.input),
            LogicalPlan::Join(join)
                if matches!(
                    join.join_type,
                    JoinType::Left
                        | JoinType::Right
                        | JoinType::Full
                        | JoinType::LeftSemi
                        | JoinType::RightSemi
                        | JoinType::LeftAnti
                        | JoinType::RightAnti
                ) =>
            {
                self.outer_join(join)
            }
            LogicalPlan::Join(join) if join.join_type == JoinType::Inner => self.inner_join(join),
            other => Err(format!("unsupported plan node {}", other.display())),
        }
    }

    /// A table scan as `(scan name cols)`: its columns named by the occurrence the scan
    /// stands for, its pushed-down filters as a filter over it.
    fn scan(&mut self, scan: &TableScan) -> Out<(Id, Vec<Id>)> {
        let table = scan.table_name.table().to_string();
        let schema = scan.source.schema();
        let k = self.scans.entry(table.clone()).or_default();
        let base = qualifier(&table, self.mapping.occurrence(&table, *k));
        *k += 1;
        let mut cols = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let column = Expr::Column(Column::new(Some(base.clone()), field.name()));
            let h = self.egraph.analysis.intern(column);
            let id = self.egraph.add(Node::Expr(h, vec![]));
            self.egraph[id].data.data_type = Some(field.data_type().clone());
            if !field.is_nullable() {
                self.egraph.analysis.not_null.push(id);
            }
            cols.push(id);
        }
        self.tables
            .insert(Symbol::from(&table), Arc::clone(&scan.source));
        let name = self.egraph.add(Node::Name(Symbol::from(&table)));
        let list = self.egraph.add(Node::List(cols.clone().into()));
        let mut rel = self.egraph.add(Node::Scan([name, list]));
        if !scan.filters.is_empty() {
            let full = DFSchema::try_from_qualified_schema(scan.table_name.clone(), &schema)
                .map_err(|e| e.to_string())?;
            let conjuncts = scan
                .filters
                .iter()
                .flat_map(split_conjunction)
                .map(|e| self.expr(e, &full, &cols))
                .collect::<Out<Vec<_>>>()?;
            rel = self.filter(conjuncts, rel);
        }
        let outputs = match &scan.projection {
            Some(p) => p.iter().map(|i| cols[*i]).collect(),
            None => cols,
        };
        Ok((rel, outputs))
    }

    /// A `Filter` plan node: its predicate's conjuncts, merged into any filter below.
    fn filter_plan(&mut self, filter: &Filter) -> Out<(Id, Vec<Id>)> {
        let (input, outs) = self.rel(&filter.input)?;
        let conjuncts = split_conjunction(&filter.predicate)
            .into_iter()
            .map(|e| self.expr(e, filter.input.schema(), &outs))
            .collect::<Out<Vec<_>>>()?;
        Ok((self.filter(conjuncts, input), outs))
    }

    /// A projection adds no node: its expressions become the input's output columns.
    fn projection(&mut self, p: &Projection) -> Out<(Id, Vec<Id>)> {
        let (input, outs) = self.rel(&p.input)?;
        let exprs = p
            .expr
            .iter()
            .map(|e| self.expr(e, p.input.schema(), &outs))
            .collect::<Out<Vec<_>>>()?;
        Ok((input, exprs))
    }

    /// An aggregate as `(agg keys aggs input)`, outputting its keys then its aggregates.
    fn aggregate(&mut self, agg: &Aggregate) -> Out<(Id, Vec<Id>)> {
        let (input, outs) = self.rel(&agg.input)?;
        let schema = agg.input.schema();
        let keys = agg
            .group_expr
            .iter()
            .map(|e| self.expr(e, schema, &outs))
            .collect::<Out<Vec<_>>>()?;
        let aggs = agg
            .aggr_expr
            .iter()
            .map(|e| self.expr(e, schema, &outs))
            .collect::<Out<Vec<_>>>()?;
        // An aggregate is one class whatever rows it reads (`count(*)` of two inputs,
        // `sum(x)` over a table and over groups of it): computed by two aggregates of
        // one region, the two could not be told apart.
        let mine: std::collections::HashSet<Id> =
            aggs.iter().map(|a| self.egraph.find(*a)).collect();
        if let Some(twice) = mine.iter().find(|a| self.aggregates.contains(a)) {
            return Err(format!(
                "it computes {} over two different inputs",
                crate::egraph::lang::display(self.egraph, *twice)
            ));
        }
        self.aggregates.extend(mine);
        let key_list = self.set(&keys);
        let agg_list = self.set(&aggs);
        let rel = self.egraph.add(Node::Agg([key_list, agg_list, input]));
        Ok((rel, keys.into_iter().chain(aggs).collect()))
    }

    /// A join other than inner (left, right, full, semi, anti): its conditions over both
    /// sides, then the full join or the one-sided join it is.
    fn outer_join(&mut self, join: &Join) -> Out<(Id, Vec<Id>)> {
        let (left, left_outs) = self.rel(&join.left)?;
        let (right, right_outs) = self.rel(&join.right)?;
        self.check_null_supplying_side(join.join_type, &left_outs, &right_outs)?;
        let both: Vec<Id> = left_outs.iter().chain(&right_outs).copied().collect();
        // A semi or anti join outputs its kept side's columns only; its conditions
        // read both sides, as the join sees them.
        let (outs, both_schema) = match join.join_type {
            JoinType::LeftSemi | JoinType::LeftAnti => (left_outs, None),
            JoinType::RightSemi | JoinType::RightAnti => (right_outs, None),
            _ => (both.clone(), Some(Arc::clone(&join.schema))),
        };
        let both_schema = match both_schema {
            Some(schema) => schema,
            None => Arc::new(
                join.left
                    .schema()
                    .join(join.right.schema())
                    .map_err(|e| e.to_string())?,
            ),
        };
        let mut on = Vec::new();
        for condition in join_conditions(join) {
            on.push(self.expr(&condition, &both_schema, &both)?);
        }
        let rel = match join.join_type {
            JoinType::Full => self.full_join(left, right, &on),
            kind => self.one_sided_join(kind, left, right, on),
        };
        Ok((rel, outs))
    }

    /// Refuses an outer join whose NULL-supplying side outputs anything but base columns and
    /// expressions NULL where their columns are.
    fn check_null_supplying_side(
        &self,
        join_type: JoinType,
        left_outs: &[Id],
        right_outs: &[Id],
    ) -> Out<()> {
        // Column identity by expression holds for base columns, and for expressions NULL
        // whenever their arguments are (`floor(x)`): NULL on an unmatched row whether
        // computed below the join or above it. Not `x IS NULL`: NULL below the NULL-supplying
        // side on an unmatched row, true above the join.
        let nullable: &[&[Id]] = match join_type {
            JoinType::Left => &[right_outs],
            JoinType::Right => &[left_outs],
            JoinType::Full => &[left_outs, right_outs],
            _ => &[],
        };
        if let Some(computed) = nullable
            .iter()
            .flat_map(|outs| outs.iter())
            .find(|c| !self.null_on_null(**c, 0))
        {
            return Err(format!(
                "it computes {} on the NULL-supplying side of an outer join",
                crate::egraph::lang::display(self.egraph, *computed)
            ));
        }
        Ok(())
    }

    /// A full join as `(fulljoin a b on)`, its two sides in class order since it commutes.
    fn full_join(&mut self, left: Id, right: Id, on: &[Id]) -> Id {
        let (a, b) = if self.egraph.find(left) <= self.egraph.find(right) {
            (left, right)
        } else {
            (right, left)
        };
        let on = self.set(on);
        self.egraph.add(Node::FullJoin([a, b, on]))
    }

    /// A left, semi or anti join (a right one with its sides swapped) as the join of its
    /// preserved side, under the filters that side had.
    fn one_sided_join(&mut self, kind: JoinType, left: Id, right: Id, mut on: Vec<Id>) -> Id {
        let (preserved, nullable) = match kind {
            JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti => (left, right),
            _ => (right, left),
        };
        // Filters on the preserved side keep or drop its rows whether or not
        // they match: they go above. Filters on the other side only decide
        // what matches: they are ON conditions.
        let (above, preserved) = unfiltered(self.egraph, preserved);
        let (more_on, nullable) = unfiltered(self.egraph, nullable);
        // DataFusion copies a filter on the preserved side across the join's
        // equalities (`a.x = 'v'` gives `b.x = 'v'` below the nullable side):
        // such a condition is implied by the others and the filter above, and
        // is dropped so that it does not tell this join from one without it.
        for c in more_on {
            let mut premise = on.clone();
            premise.extend(&above);
            if crate::egraph::predicate::compensation(self.egraph, &premise, &[c]).is_err() {
                on.push(c);
            }
        }
        let on = self.set(&on);
        let join = self.egraph.add(match kind {
            JoinType::LeftSemi | JoinType::RightSemi => Node::SemiJoin([preserved, nullable, on]),
            JoinType::LeftAnti | JoinType::RightAnti => Node::AntiJoin([preserved, nullable, on]),
            _ => Node::LeftJoin([preserved, nullable, on]),
        });
        if above.is_empty() {
            join
        } else {
            self.filter(above, join)
        }
    }

    /// An inner join as one filter over the product of all the inputs it joins.
    fn inner_join(&mut self, join: &Join) -> Out<(Id, Vec<Id>)> {
        let (left, left_outs) = self.rel(&join.left)?;
        let (right, right_outs) = self.rel(&join.right)?;
        let outs: Vec<Id> = left_outs.into_iter().chain(right_outs).collect();
        // Inner joins commute, associate and let filters through: one filter over one
        // set of inputs, whatever the join order and wherever a condition was written.
        let (mut conjuncts, mut inputs) = unjoined(self.egraph, left);
        let (more, right_inputs) = unjoined(self.egraph, right);
        conjuncts.extend(more);
        inputs.extend(right_inputs);
        for condition in join_conditions(join) {
            conjuncts.push(self.expr(&condition, &join.schema, &outs)?);
        }
        let inputs = self.set(&inputs);
        let product = self.egraph.add(Node::Join([inputs]));
        let rel = if conjuncts.is_empty() {
            product
        } else {
            self.filter(conjuncts, product)
        };
        Ok((rel, outs))
    }

    /// Whether `class` is a base column or an expression that is NULL when the columns it
    /// reads are: casts, arithmetic and comparisons, and functions NULL on any NULL argument,
    /// over at least one such operand. Not division or modulo: below the join they run on rows
    /// the join drops, where a zero divisor is an error the query would never raise. `depth`
    /// bounds the walk.
    fn null_on_null(&self, class: Id, depth: usize) -> bool {
        /// Functions NULL when an argument is NULL.
        const STRICT: [&str; 14] = [
            "floor",
            "ceil",
            "abs",
            "round",
            "trunc",
            "sqrt",
            "exp",
            "ln",
            "upper",
            "lower",
            "length",
            "character_length",
            "date_trunc",
            "date_part",
        ];
        if self.is_base_column(class) {
            return true;
        }
        if depth > 16 {
            return false;
        }
        let strict_operand =
            |children: &[Id]| children.iter().any(|c| self.null_on_null(*c, depth + 1));
        crate::egraph::lang::expr_nodes(self.egraph, class).any(|(h, children)| {
            match self.egraph.analysis.head(h) {
                Expr::Cast(_) | Expr::TryCast(_) | Expr::Negative(_) => strict_operand(children),
                Expr::BinaryExpr(b) => {
                    matches!(
                        b.op,
                        Operator::Plus
                            | Operator::Minus
                            | Operator::Multiply
                            | Operator::Eq
                            | Operator::NotEq
                            | Operator::Lt
                            | Operator::LtEq
                            | Operator::Gt
                            | Operator::GtEq
                    ) && strict_operand(children)
                }
                Expr::ScalarFunction(f) => {
                    STRICT.contains(&f.func.name()) && strict_operand(children)
                }
                _ => false,
            }
        })
    }

    /// Whether `class` is a base table's column.
    fn is_base_column(&self, class: Id) -> bool {
        crate::egraph::lang::expr_nodes(self.egraph, class)
            .any(|(h, _)| *self.egraph.analysis.kind(h) == HeadKind::Column)
    }

    /// `(filter conjuncts input)`, merging with a filter directly below.
    fn filter(&mut self, mut conjuncts: Vec<Id>, input: Id) -> Id {
        let below = self.egraph[input].nodes.iter().find_map(|n| match n {
            Node::Filter([list, inner]) => Some((*list, *inner)),
            _ => None,
        });
        let input = match below {
            Some((list, inner)) => {
                conjuncts.extend(crate::egraph::lang::list_items(self.egraph, list));
                inner
            }
            None => input,
        };
        let list = self.set(&conjuncts);
        self.egraph.add(Node::Filter([list, input]))
    }

    fn set(&mut self, ids: &[Id]) -> Id {
        crate::egraph::lang::add_set(self.egraph, ids)
    }

    /// `date` is `CAST(bucket AS DATE)`. When the bucket starts at midnight of a timestamp
    /// without time zone (`toStartOfMonth(ts)`, `toDate(ts)`), the date holds it exactly: the
    /// bucket is also `CAST(date AS TIMESTAMP)`, so an MV storing the date answers coarser
    /// buckets. (A zoned bucket's midnight is not the DATE's UTC midnight.)
    fn date_of_bucket(&mut self, date: Id, bucket: Id) {
        let starts_at_midnight = crate::egraph::lang::expr_nodes(self.egraph, bucket).any(|(h, _)| {
            matches!(self.egraph.analysis.kind(h), HeadKind::Bucket(g) if g.starts_at_midnight())
        });
        let Some(ts_type @ DataType::Timestamp(_, None)) =
            self.egraph[bucket].data.data_type.clone()
        else {
            return;
        };
        if starts_at_midnight {
            let head = self.egraph.analysis.intern(cast(placeholder(0), ts_type));
            let back = self.egraph.add(Node::Expr(head, vec![date]));
            self.egraph.union(bucket, back);
        }
    }

    /// Adds an expression evaluated over a relation whose columns are `outs` (with `schema`).
    fn expr(&mut self, expr: &Expr, schema: &DFSchema, outs: &[Id]) -> Out<Id> {
        match expr {
            Expr::Alias(a) => self.expr(&a.expr, schema, outs),
            Expr::Column(c) => {
                let i = schema.index_of_column(c).map_err(|e| e.to_string())?;
                outs.get(i)
                    .copied()
                    .ok_or_else(|| format!("column {c} out of range"))
            }
            _ if let Some((grain, ts)) = crate::timeseries::recognize(expr, schema) => {
                // Every spelling of a bucket is added as its canonical one.
                let data_type = ts.get_type(schema).map_err(|e| e.to_string())?;
                let term = self.expr(ts, schema, outs)?;
                let head = grain
                    .bucket(placeholder(0), &data_type)
                    .ok_or("a recognized bucket has a canonical form")?;
                let h = self.egraph.analysis.intern(head);
                let id = self.egraph.add(Node::Expr(h, vec![term]));
                self.egraph[id].data.data_type.get_or_insert(data_type);
                Ok(id)
            }
            _ => {
                let (head, children) = decompose(expr.clone()).map_err(|e| e.to_string())?;
                let mut ids = children
                    .iter()
                    .map(|c| self.expr(c, schema, outs))
                    .collect::<Out<Vec<_>>>()?;
                let head = canonical_operands(head, &mut ids, self.egraph);
                let h = self.egraph.analysis.intern(head);
                let id = self.egraph.add(Node::Expr(h, ids.clone()));
                // Typed once per class: DataFusion's `get_type` walks the whole expression, and
                // most expressions of an MV are already in the e-graph, typed, from the query.
                let typed = &mut self.egraph[id].data.data_type;
                if typed.is_none() {
                    *typed = expr.get_type(schema).ok();
                }
                if *typed == Some(DataType::Date32)
                    && let [bucket] = ids.as_slice()
                {
                    self.date_of_bucket(id, *bucket);
                }
                if let Expr::Cast(c) = expr
                    && let Ok(from) = c.expr.get_type(schema)
                    && widens_exactly(&from, c.field.data_type())
                    && let [narrow] = ids.as_slice()
                {
                    // Every value survives the cast and comes back from it: an MV storing
                    // `CAST(empid AS BIGINT)` also holds `empid`.
                    let head = self.egraph.analysis.intern(cast(placeholder(0), from));
                    let back = self.egraph.add(Node::Expr(head, vec![id]));
                    self.egraph.union(*narrow, back);
                }
                Ok(id)
            }
        }
    }
}

/// Whether every value of `from` casts to a distinct value of `to` that casts back to it:
/// integers to wider integers (or to doubles, below 2^53), floats to doubles.
fn widens_exactly(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    matches!(
        (from, to),
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64)
            | (Int16, Int32 | Int64 | Float32 | Float64)
            | (Int32, Int64 | Float64)
            | (
                UInt8,
                UInt16 | UInt32 | UInt64 | Int16 | Int32 | Int64 | Float32 | Float64
            )
            | (UInt16, UInt32 | UInt64 | Int32 | Int64 | Float32 | Float64)
            | (UInt32, UInt64 | Int64 | Float64)
            | (Float32, Float64)
    )
}

/// A relation as (its filter's conjuncts, what the filter reads), or (nothing, itself).
fn unfiltered(egraph: &PlanGraph, rel: Id) -> (Vec<Id>, Id) {
    egraph[rel]
        .nodes
        .iter()
        .find_map(|n| match n {
            Node::Filter([list, inner]) => {
                Some((crate::egraph::lang::list_items(egraph, *list), *inner))
            }
            _ => None,
        })
        .unwrap_or((vec![], rel))
}

/// Orders the operands of commutative operators (and flips comparisons) so that `a + b` and
/// `b + a`, `x > 5` and `5 < x` are one e-node: canonicalization instead of commutativity
/// rules, which would blow the e-graph up.
fn canonical_operands(head: Expr, ids: &mut [Id], egraph: &PlanGraph) -> Expr {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &head else {
        return head;
    };
    if ids.len() != 2 || egraph.find(ids[0]) <= egraph.find(ids[1]) {
        return head;
    }
    let flipped = match op {
        Operator::Plus
        | Operator::Multiply
        | Operator::Eq
        | Operator::NotEq
        | Operator::And
        | Operator::Or
        | Operator::IsDistinctFrom
        | Operator::IsNotDistinctFrom
        | Operator::BitwiseAnd
        | Operator::BitwiseOr
        | Operator::BitwiseXor => *op,
        Operator::Lt => Operator::Gt,
        Operator::Gt => Operator::Lt,
        Operator::LtEq => Operator::GtEq,
        Operator::GtEq => Operator::LtEq,
        _ => return head,
    };
    ids.swap(0, 1);
    Expr::BinaryExpr(BinaryExpr::new(left.clone(), flipped, right.clone()))
}

/// A join key pair as the condition it stands for: `l = r`, or `l IS NOT DISTINCT FROM r` where
/// the join matches NULL keys (INTERSECT and EXCEPT), which DataFusion turns back into keys.
fn key_condition(join: &datafusion::logical_expr::Join, l: &Expr, r: &Expr) -> Expr {
    match join.null_equality {
        NullEquality::NullEqualsNothing => l.clone().eq(r.clone()),
        NullEquality::NullEqualsNull => datafusion::logical_expr::binary_expr(
            l.clone(),
            datafusion::logical_expr::Operator::IsNotDistinctFrom,
            r.clone(),
        ),
    }
}

/// A join's conditions, keys first then its filter's conjuncts: the inner and the other joins
/// read them alike.
fn join_conditions(join: &Join) -> impl Iterator<Item = Expr> + '_ {
    join.on
        .iter()
        .map(|(l, r)| key_condition(join, l, r))
        .chain(join.filter.iter().flat_map(|f| {
            split_conjunction(f)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        }))
}
