//! Comparing query results as multisets of rows, floats within a relative tolerance: how tests,
//! the demo and the conformance run decide that a rewrite returned the original's answer.
//! (Re-aggregating partial float sums changes the last bits; nothing else may differ.)

use datafusion::arrow::array::{Array, Float32Array, Float64Array};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Relative tolerance for floats.
pub const FLOAT_TOLERANCE: f64 = 1e-9;

/// One row as comparable cells; floats kept apart for a tolerant comparison.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell {
    Text(String),
    Float(f64),
    Null,
}

fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Cell>>, String> {
    let mut out = Vec::new();
    let options = FormatOptions::default();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(col, f)| {
                    let any = col.as_any();
                    if col.is_null(r) {
                        Cell::Null
                    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
                        Cell::Float(a.value(r))
                    } else if let Some(a) = any.downcast_ref::<Float32Array>() {
                        Cell::Float(f64::from(a.value(r)))
                    } else {
                        Cell::Text(f.value(r).to_string())
                    }
                })
                .collect();
            out.push(row);
        }
    }
    Ok(out)
}

fn close(a: f64, b: f64) -> bool {
    a == b
        || (a.is_nan() && b.is_nan())
        || (a - b).abs() <= FLOAT_TOLERANCE * a.abs().max(b.abs()).max(1.0)
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

/// Compares two results as multisets of rows. Returns a description of the first difference.
pub fn compare(expected: &[RecordBatch], actual: &[RecordBatch]) -> Result<(), String> {
    let (mut a, mut b) = (rows(expected)?, rows(actual)?);
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

/// Whether every row of `part` occurs in `whole` (as a multiset, floats within tolerance).
pub fn contained(part: &[RecordBatch], whole: &[RecordBatch]) -> Result<(), String> {
    let mut pool = rows(whole)?;
    for row in rows(part)? {
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
