//! Shared test support: the generated tables, and result comparison as multisets.
#![allow(dead_code)]

use std::sync::Arc;

use datafusion::arrow::array::{Array, Float32Array, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use mvrewrite::{MvSession, datagen};

/// A session with MVs and a plain DataFusion context over the same `sales` and `events` data.
pub struct Pair {
    pub session: MvSession,
    pub plain: SessionContext,
}

pub fn sales_and_events() -> Pair {
    let session = MvSession::new();
    let plain = SessionContext::new();
    let sales = datagen::sales(3000, 7).unwrap();
    let events = datagen::events(20_000, 4096, 11, |_| {}).unwrap();
    for (name, batches) in [("sales", vec![sales]), ("events", events)] {
        let schema = batches[0].schema();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let table = Arc::new(MemTable::try_new(schema, vec![batches]).unwrap());
        session
            .context()
            .register_table(name, table.clone())
            .unwrap();
        plain.register_table(name, table).unwrap();
        session
            .catalog()
            .write()
            .unwrap()
            .set_table_rows(name, rows as u64);
    }
    Pair { session, plain }
}

/// One row as comparable cells; floats kept apart for a tolerant comparison.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell {
    Text(String),
    Float(f64),
    Null,
}

fn rows(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let mut out = Vec::new();
    let options = FormatOptions::default();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(col, f)| {
                    if col.is_null(r) {
                        Cell::Null
                    } else {
                        match col.data_type() {
                            DataType::Float64 => Cell::Float(
                                col.as_any()
                                    .downcast_ref::<Float64Array>()
                                    .unwrap()
                                    .value(r),
                            ),
                            DataType::Float32 => Cell::Float(f64::from(
                                col.as_any()
                                    .downcast_ref::<Float32Array>()
                                    .unwrap()
                                    .value(r),
                            )),
                            _ => Cell::Text(f.value(r).to_string()),
                        }
                    }
                })
                .collect();
            out.push(row);
        }
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Sort key: floats rounded, so rows that differ only by float error sort together.
fn key(row: &[Cell]) -> Vec<String> {
    row.iter()
        .map(|c| match c {
            Cell::Text(t) => format!("t{t}"),
            Cell::Float(f) => format!("f{:.4e}", f),
            Cell::Null => "n".into(),
        })
        .collect()
}

/// Compares two results as multisets of rows (floats within a relative 1e-9). Returns a
/// description of the first difference.
pub fn compare(expected: &[RecordBatch], actual: &[RecordBatch]) -> Result<(), String> {
    let (mut a, mut b) = (rows(expected), rows(actual));
    if a.len() != b.len() {
        return Err(format!(
            "{} rows expected, {} rows returned",
            a.len(),
            b.len()
        ));
    }
    a.sort_by_key(|r| key(r));
    b.sort_by_key(|r| key(r));
    for (x, y) in a.iter().zip(&b) {
        let same = x.len() == y.len()
            && x.iter().zip(y).all(|(p, q)| match (p, q) {
                (Cell::Float(p), Cell::Float(q)) => close(*p, *q),
                _ => p == q,
            });
        if !same {
            return Err(format!("row {x:?} expected, {y:?} returned"));
        }
    }
    Ok(())
}

/// Runs `sql` in the MV session and in the plain context and asserts equal results and equal
/// schemas (names, types, nullability). Returns the MVs the session used.
pub async fn assert_same(pair: &Pair, sql: &str) -> Vec<String> {
    pair.session.clear_report();
    let original = pair.plain.sql(sql).await.unwrap();
    let rewritten = pair.session.context().sql(sql).await.unwrap();
    let optimized = |df: &datafusion::dataframe::DataFrame| {
        df.clone().into_optimized_plan().unwrap().schema().clone()
    };
    let (s1, s2) = (optimized(&original), optimized(&rewritten));
    let expected = original.collect().await.unwrap();
    let actual = rewritten.collect().await.unwrap();
    let used = pair
        .session
        .last_report()
        .map(|r| r.used_mvs())
        .unwrap_or_default();
    assert_eq!(
        s1.as_arrow(),
        s2.as_arrow(),
        "schema changed for {sql} (used {used:?})"
    );
    if let Err(diff) = compare(&expected, &actual) {
        panic!("results differ for {sql} (used {used:?}): {diff}");
    }
    used
}

/// Whether every row of `part` occurs in `whole` (as a multiset, floats within tolerance).
pub fn contained(part: &[RecordBatch], whole: &[RecordBatch]) -> Result<(), String> {
    let mut pool = rows(whole);
    for row in rows(part) {
        let found = pool.iter().position(|w| {
            w.len() == row.len()
                && w.iter().zip(&row).all(|(p, q)| match (p, q) {
                    (Cell::Float(p), Cell::Float(q)) => close(*p, *q),
                    _ => p == q,
                })
        });
        match found {
            Some(i) => {
                pool.swap_remove(i);
            }
            None => return Err(format!("row {row:?} is not in the full result")),
        }
    }
    Ok(())
}
