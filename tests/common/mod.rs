//! Shared test support: the generated tables, and result comparison as multisets.
#![allow(dead_code)]

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use mvrewrite::MvSession;
pub use mvrewrite::testkit::compare::compare;
use mvrewrite::testkit::datagen;

/// A session with MVs and a plain DataFusion context over the same data.
pub struct Pair {
    pub session: MvSession,
    pub plain: SessionContext,
}

/// `orders`: one column of each type filters compare (NULLs in every nullable column).
pub fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("status", DataType::Utf8, true),
        Field::new("paid", DataType::Boolean, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("day", DataType::Date32, true),
        Field::new("qty", DataType::Int32, true),
        Field::new("min_qty", DataType::Int32, true),
        Field::new("ratio", DataType::Float64, true),
    ]))
}

/// `sales`, `events`, `orders`, `readings`, `users`, `visits` and `sites`, generated.
pub fn sales_and_events() -> Pair {
    let session = MvSession::new();
    let plain = session.without_rewrites();
    for (name, batches) in generated_tables() {
        let schema = batches[0].schema();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let table = Arc::new(MemTable::try_new(schema, vec![batches]).unwrap());
        session.context().register_table(name, table).unwrap();
        session
            .catalog()
            .write()
            .unwrap()
            .set_table_rows(name, rows as u64);
    }
    Pair { session, plain }
}

/// The tables of [`sales_and_events`], by name.
pub fn generated_tables() -> Vec<(&'static str, Vec<RecordBatch>)> {
    let sales = datagen::sales(3000, 7).unwrap();
    let events = datagen::events(20_000, 4096, 11, |_| {}).unwrap();
    let orders = datagen::random_batch(orders_schema(), 3000, 5).unwrap();
    let readings = datagen::readings(20_000, 3).unwrap();
    let users = datagen::users(2_000, 13).unwrap();
    let visits = datagen::visits(10_000, 2_000, 17).unwrap();
    let sites = datagen::sites(19).unwrap();
    vec![
        ("sales", vec![sales]),
        ("events", events),
        ("orders", vec![orders]),
        ("readings", vec![readings]),
        ("users", vec![users]),
        ("visits", vec![visits]),
        ("sites", vec![sites]),
    ]
}

/// One case of a rule pack (`rules/<pack>.cases`): the MVs it creates, its query and the MV
/// it expects to be used (if any).
pub struct Case {
    pub name: String,
    pub expect: Option<String>,
    pub mvs: Vec<String>,
    pub query: String,
}

/// The cases of a pack's text.
pub fn cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for chunk in text.split("# case: ").skip(1) {
        let (name, body) = chunk.split_once('\n').unwrap();
        let expect = body
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .map(str::trim)
            .filter(|e| *e != "none")
            .map(str::to_string);
        let sql: String = body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let mut statements = mvrewrite::testkit::split_statements(&sql).unwrap();
        let query = statements.pop().expect("a case ends with its query");
        out.push(Case {
            name: name.trim().to_string(),
            expect,
            mvs: statements,
            query,
        });
    }
    out
}

/// `sql` planned and optimized in the plain context: the plan the engine is given.
pub async fn original_plan(pair: &Pair, sql: &str) -> datafusion::logical_expr::LogicalPlan {
    pair.plain
        .sql(sql)
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap()
}

/// Runs `sql` in the MV session and in the plain context and asserts equal results and equal
/// schemas (names, types, nullability). Returns the MVs the session used.
/// `FLOOR(ts TO unit)` is translated first, as `MvSession::sql` does (DataFusion does not plan
/// it): both sides run the same text.
pub async fn assert_same(pair: &Pair, sql: &str) -> Vec<String> {
    assert_same_in(&pair.session, &pair.plain, sql).await
}

/// [`assert_same`] for each of `queries`, each answered from `mv` alone.
pub async fn assert_answered_by(pair: &Pair, mv: &str, queries: &[&str]) {
    for query in queries {
        assert_eq!(assert_same(pair, query).await, [mv], "{query}");
    }
}

/// [`assert_same`] for each of `queries`, none rewritten.
pub async fn assert_not_rewritten(pair: &Pair, queries: &[&str]) {
    for query in queries {
        assert!(assert_same(pair, query).await.is_empty(), "{query}");
    }
}

/// [`assert_same`] for a session and a context over the same tables that does not rewrite.
pub async fn assert_same_in(session: &MvSession, plain: &SessionContext, sql: &str) -> Vec<String> {
    let sql = &*mvrewrite::testkit::standard_sql(sql);
    session.clear_report();
    let original = plain.sql(sql).await.unwrap();
    let rewritten = session.context().sql(sql).await.unwrap();
    let optimized = |df: &datafusion::dataframe::DataFrame| {
        df.clone().into_optimized_plan().unwrap().schema().clone()
    };
    let plan = rewritten.clone().into_optimized_plan().unwrap();
    let (s1, s2) = (optimized(&original), plan.schema().clone());
    let expected = original.collect().await.unwrap();
    let actual = rewritten.collect().await.unwrap();
    let used = used_mvs(session).unwrap_or_else(|e| panic!("{sql}: {e}"));
    // Names and types must be equal. Nullability may differ, as DataFusion sees it over the
    // MV's columns: one computed by `date_bin` is declared nullable, one computed by
    // `toStartOfMinute` from a NOT NULL timestamp is not (the original may be the other
    // spelling). A column declared NOT NULL must then hold no NULL in the original's rows.
    let fields = |s: &datafusion::common::DFSchema| {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        fields(&s1),
        fields(&s2),
        "schema changed for {sql} (used {used:?})"
    );
    for (i, (a, b)) in s1.fields().iter().zip(s2.fields()).enumerate() {
        let nulls: usize = expected.iter().map(|b| b.column(i).null_count()).sum();
        assert!(
            !a.is_nullable() || b.is_nullable() || nulls == 0,
            "{} became NOT NULL in {sql}, yet the original returns {nulls} NULLs",
            a.name()
        );
    }
    if let Err(diff) = compare(&expected, &actual) {
        panic!("results differ for {sql} (used {used:?}): {diff}");
    }
    if !used.is_empty()
        && let Err(e) = same_from_text(session, &plan, &expected).await
    {
        panic!("{sql} (used {used:?}): {e}");
    }
    used
}

/// Whether `plan` as SQL text, as `rewrite` and the command line print it, returns the
/// original's rows, where there is text (the library gives none that does not plan).
pub async fn same_from_text(
    session: &MvSession,
    plan: &datafusion::logical_expr::LogicalPlan,
    expected: &[datafusion::arrow::record_batch::RecordBatch],
) -> Result<(), String> {
    let reader = session.without_rewrites();
    let Some(text) = mvrewrite::testkit::checked_sql(plan, &reader.state()).await else {
        return Ok(());
    };
    let rows = match reader.sql(&text).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    }
    .map_err(|e| format!("its SQL text fails: {e}\n  text:  {text}"))?;
    compare(expected, &rows)
        .map_err(|diff| format!("its SQL text returns other rows: {diff}\n  text:  {text}"))
}

/// The MVs the session's last rewrite read, from its report. The rule rewrites without
/// explaining and writes the report when it is read, by rewriting again: an error when the
/// two disagree (the report then carries a note saying so).
pub fn used_mvs(session: &MvSession) -> Result<Vec<String>, String> {
    let Some(report) = session.last_report() else {
        return Ok(vec![]);
    };
    match report
        .notes
        .iter()
        .find(|n| n.starts_with("the catalog changed"))
    {
        Some(note) => Err(format!("the report disagrees with the rewrite: {note}")),
        None => Ok(report.used_mvs()),
    }
}

/// The environment variable `name` parsed, or `default` when unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A new, empty directory for one test of `suite`, unique to this process and moment.
pub fn fresh_dir(suite: &str, test: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "mvrewrite-{suite}-{test}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Another writer: a plain DataFusion context writes rows `first..=last` (`kind` one of three,
/// `v` the row's number) as the Parquet file `file` of `dir`.
pub async fn write_file(dir: &std::path::Path, file: &str, first: i64, last: i64) {
    let sql = format!(
        "COPY (SELECT 'k' || CAST(value % 3 AS VARCHAR) AS kind, value AS v
               FROM generate_series({first}, {last}))
         TO '{}' STORED AS PARQUET",
        dir.join(file).display()
    );
    let other = SessionContext::new();
    other.sql(&sql).await.unwrap().collect().await.unwrap();
}

/// Another writer on an object store: rows `first..=last` (as [`write_file`] writes them) put
/// as the Parquet object `path`.
pub async fn put_parquet(
    store: &dyn datafusion::object_store::ObjectStore,
    path: &str,
    first: i64,
    last: i64,
) {
    use datafusion::object_store::ObjectStoreExt;
    let sql = format!(
        "SELECT 'k' || CAST(value % 3 AS VARCHAR) AS kind, value AS v FROM generate_series({first}, {last})"
    );
    let batches = SessionContext::new()
        .sql(&sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(&mut bytes, batches[0].schema(), None)
            .unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    let path = datafusion::object_store::path::Path::from(path);
    store.put(&path, bytes.into()).await.unwrap();
}

/// `mv`, kept in `session`'s store, read by a plain DataFusion context at its location as
/// another engine would: its rows are `definition`'s, run on the tables as they are.
pub async fn another_engine_reads(session: &MvSession, mv: &str, definition: &str) {
    let location = session.mv_location(mv).unwrap().unwrap();
    let plain = SessionContext::new();
    plain
        .register_parquet("mv", &location, Default::default())
        .await
        .unwrap();
    let stored = plain.sql("SELECT * FROM mv").await.unwrap().collect().await;
    let computed = session.without_rewrites().sql(definition).await.unwrap();
    compare(&computed.collect().await.unwrap(), &stored.unwrap()).unwrap();
}
