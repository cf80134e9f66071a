//! The conformance corpus (`../shared/corpus`, Apache Calcite and CarbonData MV tests): every
//! case's MVs are materialized over generated data, its query is run with and without
//! rewriting, and results are compared. Prints one summary line:
//! `conformance: R/E rewrites, W wrong, M mismatches, P panics (Q the source does not rewrite
//! answered in parts)`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int32Array};
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::FutureExt;
use mvrewrite::MvSession;
use mvrewrite::testkit::{datagen, split_statements};
use serde_json::{Value, json};

const ROWS_PER_TABLE: usize = 300;
/// A safety net: no case comes near it on the generated data.
const CASE_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// The corpus tables, created from `schema.sql` and filled with generated rows; the `keys`
/// columns near-unique.
async fn tables(schema_sql: &str, keys: &BTreeSet<String>) -> HashMap<String, Arc<MemTable>> {
    let scratch = SessionContext::new();
    let mut out = HashMap::new();
    for (i, statement) in split_statements(schema_sql)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        scratch
            .sql(&statement)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let name = statement
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_matches('"')
            .to_lowercase();
        let schema = scratch
            .table_provider(name.as_str())
            .await
            .unwrap()
            .schema();
        let batch =
            datagen::random_batch_with_keys(schema.clone(), ROWS_PER_TABLE, 1000 + i as u64, keys)
                .unwrap();
        let batch = honor_declared_keys(&name, batch);
        out.insert(
            name,
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
        );
    }
    out
}

/// Column names the corpus joins on (`a.x = b.y`, in ON or WHERE). Real data has them as keys:
/// CarbonData's test tables, joined on `empname`, hold one row per name. Generated from small
/// domains, they would make every join an explosion no MV is cheaper than. (Strings among them
/// come out numeric, which CarbonData's `CAST(t2.empname AS DOUBLE)` also needs: Spark makes
/// other strings NULL where DataFusion fails.)
fn join_columns(cases: &[Value]) -> BTreeSet<String> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, visit_expressions};
    use datafusion::sql::sqlparser::{dialect::GenericDialect, parser::Parser};
    let mut columns = BTreeSet::new();
    for case in cases {
        let sql = ["mv", "mv_df", "query", "query_df"]
            .iter()
            .flat_map(|k| match &case[*k] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => vec![],
            });
        for text in sql {
            let Ok(statements) = Parser::parse_sql(&GenericDialect {}, &text) else {
                continue;
            };
            let _ = visit_expressions(&statements, |e| {
                if let Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } = e
                    && let (Expr::CompoundIdentifier(l), Expr::CompoundIdentifier(r)) =
                        (left.as_ref(), right.as_ref())
                    && l.first() != r.first()
                {
                    for side in [l, r] {
                        if let Some(name) = side.last() {
                            columns.insert(name.value.to_lowercase());
                        }
                    }
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
    }
    columns
}

/// The keys the corpus declares (Calcite's HrFKUKSchema, in a comment of `schema.sql`).
const DECLARED_KEYS: [&str; 2] = [
    "ALTER TABLE depts ADD PRIMARY KEY (deptno)",
    "ALTER TABLE emps ADD FOREIGN KEY (deptno) REFERENCES depts (deptno)",
];

/// Makes the generated data satisfy [`DECLARED_KEYS`]: `depts.deptno` unique (10, 20, ...),
/// every `emps.deptno` one of the first 30 of them. Declared keys are trusted, so data that
/// broke them would make rewrites through them wrong.
fn honor_declared_keys(table: &str, batch: RecordBatch) -> RecordBatch {
    let column = match table {
        "depts" => Int32Array::from_iter_values((1..=batch.num_rows() as i32).map(|i| i * 10)),
        "emps" => {
            let old = batch
                .column_by_name("deptno")
                .unwrap()
                .as_primitive::<Int32Type>();
            Int32Array::from_iter_values(
                old.iter()
                    .map(|v| (v.unwrap_or(0).abs() / 10 % 30 + 1) * 10),
            )
        }
        _ => return batch,
    };
    let i = batch.schema().index_of("deptno").unwrap();
    let mut columns = batch.columns().to_vec();
    columns[i] = Arc::new(column);
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

struct Outcome {
    rewritten: bool,
    used: Vec<String>,
    mismatch: Option<String>,
    error: Option<String>,
    /// The rewriter's report, for triage.
    report: String,
    /// Whether a region was answered in parts: the MV's rows, the others from the tables.
    in_parts: bool,
}

impl Outcome {
    fn failed(error: String) -> Self {
        Outcome {
            rewritten: false,
            used: vec![],
            mismatch: None,
            error: Some(error),
            report: String::new(),
            in_parts: false,
        }
    }
}

async fn run_case(case: &Value, tables: &HashMap<String, Arc<MemTable>>) -> Outcome {
    let session = MvSession::new();
    let plain = session.without_rewrites();
    for (name, table) in tables {
        session
            .context()
            .register_table(name.as_str(), table.clone())
            .unwrap();
        session
            .catalog()
            .write()
            .unwrap()
            .set_table_rows(name, ROWS_PER_TABLE as u64);
    }
    // Only the cases whose upstream schema has the key (Calcite's HrFKUKSchema): elsewhere
    // a rewrite through it would be one the source engine could not make.
    let tagged = case["features"]
        .as_array()
        .is_some_and(|f| f.iter().any(|t| t == "fk_uk_join_elimination"));
    if tagged {
        for key in DECLARED_KEYS {
            session.sql(key).await.unwrap();
        }
    }
    let strs = |key: &str| -> Vec<String> {
        case[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mvs = if case["mv_df"].is_array() {
        strs("mv_df")
    } else {
        strs("mv")
    };
    let names = strs("mv_names");
    let query = case["query_df"]
        .as_str()
        .or(case["query"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut outcome = Outcome::failed(String::new());
    outcome.error = None;
    for (name, mv) in names.iter().zip(&mvs) {
        let ddl = format!("CREATE MATERIALIZED VIEW {name} AS {mv}");
        if let Err(e) = session.sql(&ddl).await {
            outcome.error = Some(format!("{name}: {e}"));
        }
    }
    session.clear_report();
    let expected = match plain.sql(&query).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    };
    let actual = match session.context().sql(&query).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    };
    let used = common::used_mvs(&session);
    outcome.used = used
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| names.contains(m))
        .collect();
    outcome.rewritten = !outcome.used.is_empty();
    let report = session.last_report();
    outcome.in_parts = report.as_ref().is_some_and(|r| !r.parts.is_empty());
    outcome.report = report.map(|r| r.to_string()).unwrap_or_default();
    match (expected, actual) {
        (Ok(e), Ok(a)) => {
            if outcome.rewritten {
                outcome.mismatch = common::compare(&e, &a).err();
                if outcome.mismatch.is_some()
                    && let Some(full) = without_limit(&plain, &query).await
                {
                    // LIMIT over ties may pick other rows: as many rows, all from the full answer.
                    outcome.mismatch = if e.iter().map(|b| b.num_rows()).sum::<usize>()
                        != a.iter().map(|b| b.num_rows()).sum::<usize>()
                    {
                        Some("row counts differ under LIMIT".into())
                    } else {
                        mvrewrite::testkit::compare::contained(&a, &full).err()
                    };
                }
                // Its SQL text too (a LIMIT over ties may pick other rows: left out).
                if outcome.mismatch.is_none()
                    && !query.to_ascii_lowercase().contains("limit")
                    && let Ok(df) = session.context().sql(&query).await
                    && let Ok(plan) = df.into_optimized_plan()
                {
                    outcome.mismatch = common::same_from_text(&session, &plan, &e).await.err();
                }
            }
        }
        (Err(e), Ok(_)) => outcome.error = Some(format!("original failed: {e}")),
        (Ok(_), Err(e)) => outcome.mismatch = Some(format!("rewritten failed: {e}")),
        (Err(e), Err(_)) => outcome.error = Some(format!("query failed: {e}")),
    }
    if let Err(e) = used {
        outcome.mismatch = Some(e);
    }
    outcome
}

/// The query's full answer when it has a LIMIT (`None` when it has none).
async fn without_limit(plain: &SessionContext, query: &str) -> Option<Vec<RecordBatch>> {
    let plan = plain.sql(query).await.ok()?.into_unoptimized_plan();
    let mut limited = false;
    let plan = plan
        .transform_up(|p| {
            Ok(match p {
                LogicalPlan::Limit(l) => {
                    limited = true;
                    Transformed::yes(l.input.as_ref().clone())
                }
                LogicalPlan::Sort(mut s) if s.fetch.is_some() => {
                    limited = true;
                    s.fetch = None;
                    Transformed::yes(LogicalPlan::Sort(s))
                }
                p => Transformed::no(p),
            })
        })
        .ok()?
        .data;
    if !limited {
        return None;
    }
    plain
        .execute_logical_plan(plan)
        .await
        .ok()?
        .collect()
        .await
        .ok()
}

#[tokio::test]
async fn conformance() {
    let dir = corpus_dir();
    let Ok(cases) = std::fs::read_to_string(dir.join("cases.jsonl")) else {
        writeln!(
            std::io::stdout(),
            "conformance: skipped, no corpus at {}",
            dir.display()
        )
        .unwrap();
        return;
    };
    let cases: Vec<Value> = cases
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys = join_columns(&cases);
    let schema = std::fs::read_to_string(dir.join("schema.sql")).unwrap();
    let tables = tables(&schema, &keys).await;
    let out_path = std::env::var("CONFORMANCE_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/conformance.jsonl"));
    if let Some(parent) = out_path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut out = std::fs::File::create(&out_path).unwrap();
    let (mut r, mut e, mut w, mut m, mut p, mut parts) = (0, 0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?").to_string();
        let strict = case["asserted"].as_bool().unwrap_or(true)
            && !case["upstream_disabled"].as_bool().unwrap_or(false);
        let expect = case["expect"].as_str().unwrap_or("");
        let started = std::time::Instant::now();
        let run = std::panic::AssertUnwindSafe(run_case(case, &tables)).catch_unwind();
        let outcome = match tokio::time::timeout(CASE_TIME_LIMIT, run).await {
            Ok(Ok(o)) => o,
            Err(_) => Outcome::failed(format!("not finished in {CASE_TIME_LIMIT:?}")),
            Ok(Err(_)) => {
                p += 1;
                failures.push(format!("PANIC {id}"));
                Outcome::failed("panic".into())
            }
        };
        if std::env::var("CONFORMANCE_TIMING").is_ok() {
            eprintln!("{:>8.1?} {id}", started.elapsed());
        }
        if strict && expect == "rewrite" {
            e += 1;
            r += usize::from(outcome.rewritten);
        }
        // "semantic": the MV alone cannot answer. Answered in parts, it does not answer
        // alone (the other rows come from the tables); the results are still compared.
        if strict
            && expect == "no-rewrite"
            && case["no_rewrite_reason"].as_str() == Some("semantic")
            && outcome.rewritten
        {
            if outcome.in_parts {
                parts += 1;
            } else {
                w += 1;
                failures.push(format!("WRONG {id}: used {:?}", outcome.used));
            }
        }
        if let Some(diff) = &outcome.mismatch {
            m += 1;
            failures.push(format!("MISMATCH {id}: {diff}"));
        }
        let record = json!({
            "id": id,
            "expect": expect,
            "rewritten": outcome.rewritten,
            "used_mvs": outcome.used,
            "report": outcome.report,
            "in_parts": outcome.in_parts,
            "mismatch": outcome.mismatch,
            "error": outcome.error,
        });
        writeln!(out, "{record}").unwrap();
    }
    for f in &failures {
        eprintln!("{f}");
    }
    // Straight to stdout, past the test harness's capture: CI logs show the line.
    writeln!(
        std::io::stdout(),
        "conformance: {r}/{e} rewrites, {w} wrong, {m} mismatches, {p} panics \
         ({parts} the source does not rewrite answered in parts)"
    )
    .unwrap();
    assert_eq!((w, m, p), (0, 0, 0), "wrong rewrites, mismatches or panics");
    assert!(r >= 100, "only {r} of {e} expected rewrites found");
}
