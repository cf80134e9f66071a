//! An MV column `a + k` or `a - k` (`k` an integer literal, all of one integer type) gives `a`
//! back: `column - k`, `column + k`; `k - a` gives `k - column`. DataFusion's integer
//! arithmetic wraps around (it does not check overflow), and wrapping addition is undone
//! exactly by wrapping subtraction, NULLs included; so an expression the query needs over `a`
//! (`a + 2`, a filter `a + 10 = 20`) is computed from the MV's column. Floating-point and
//! DECIMAL arithmetic round or overflow, and are left alone.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use egg::Id;

use crate::egraph::lang::{HeadKind, Node, PlanGraph, expr_nodes, placeholder};

/// For each of `outputs` (an MV's columns) that adds or subtracts an integer literal, its
/// operand spelled as the inverse over the column.
pub fn add_inverses(egraph: &mut PlanGraph, outputs: &[Id]) {
    for &column in outputs {
        let found: Vec<(Id, Operator, Id, bool)> = expr_nodes(egraph, column)
            .filter_map(|(head, children)| {
                let Expr::BinaryExpr(b) = egraph.analysis.head(head) else {
                    return None;
                };
                let [l, r] = children else { return None };
                let literal = |c: &Id| {
                    expr_nodes(egraph, *c)
                        .any(|(h, _)| matches!(egraph.analysis.kind(h), HeadKind::Literal))
                };
                // (operand, inverse operator, literal, literal first)
                match b.op {
                    Operator::Plus if literal(r) => Some((*l, Operator::Minus, *r, false)),
                    Operator::Plus if literal(l) => Some((*r, Operator::Minus, *l, false)),
                    Operator::Minus if literal(r) => Some((*l, Operator::Plus, *r, false)),
                    Operator::Minus if literal(l) => Some((*r, Operator::Minus, *l, true)),
                    _ => None,
                }
            })
            .collect();
        for (operand, inverse, literal, literal_first) in found {
            let types = [column, operand, literal].map(|c| egraph[c].data.data_type.clone());
            let integer = matches!(&types[0], Some(t) if is_integer(t));
            if !integer || types[1] != types[0] || types[2] != types[0] {
                continue;
            }
            let head = egraph.analysis.intern(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(placeholder(0)),
                inverse,
                Box::new(placeholder(1)),
            )));
            let children = if literal_first {
                vec![literal, column]
            } else {
                vec![column, literal]
            };
            let spelled = egraph.add(Node::Expr(head, children));
            egraph.union(operand, spelled);
        }
    }
}

fn is_integer(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}
