//! `mvrewrite serve` with a real Flight SQL client (arrow-flight's `FlightSqlServiceClient`)
//! over a loopback socket: the CarbonData and Moose scenarios (create, query rewritten,
//! insert, stale, refresh, used again) with every answer compared with a plain DataFusion
//! context's; metadata calls; prepared statements; tokens, users and the read-only role; bad
//! input; clients reading while another writes and refreshes.
#![cfg(feature = "serve")]

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use arrow_flight::{FlightInfo, IpcMessage};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use mvrewrite::MvSession;
use mvrewrite::serve::{Access, Role, Server, serve};
use mvrewrite::testkit::compare::compare;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const TOKEN: &str = "test-token-rw";
const READ_ONLY_TOKEN: &str = "test-token-ro";

fn access() -> Access {
    Access::new()
        .with_token(TOKEN, Role::ReadWrite)
        .with_token(READ_ONLY_TOKEN, Role::ReadOnly)
        .with_user("ana", "ana-password", Role::ReadWrite)
        .with_user("viewer", "viewer-password", Role::ReadOnly)
}

/// A server on a free loopback port over `session`.
async fn start(session: MvSession) -> Server {
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    serve(Arc::new(session), any_port, access()).await.unwrap()
}

/// A store directory unique to the test, emptied.
fn store(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mvrewrite-serve-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn client(server: &Server, token: Option<&str>) -> FlightSqlServiceClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{}", server.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    if let Some(token) = token {
        client.set_token(token.to_string());
    }
    client
}

/// Every endpoint's rows.
async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<Vec<RecordBatch>, String> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("no ticket")?;
        let stream = client.do_get(ticket).await.map_err(|e| e.to_string())?;
        batches.extend(
            stream
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(batches)
}

/// A statement's rows, as a client's `execute` and `do_get` return them.
async fn sql(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, String> {
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(|e| e.to_string())?;
    fetch(client, info).await
}

async fn plain(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

/// Every row's cells as text.
fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, row).unwrap())
                    .collect(),
            );
        }
    }
    rows
}

/// Whether a client's error message carries the status `code`.
fn has_code(e: &str, code: Code) -> bool {
    e.contains(code.description())
}

fn text(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).unwrap().to_string()
}

/// Runs `query` over Flight and on the plain context: the rows must be the same. Returns
/// whether the server's plan read `mv`.
async fn same_answer(
    client: &mut FlightSqlServiceClient<Channel>,
    reference: &SessionContext,
    query: &str,
    mv: &str,
) -> bool {
    let served = sql(client, query).await.unwrap();
    let expected = plain(reference, query).await;
    compare(&expected, &served).unwrap_or_else(|e| panic!("{query}: {e}"));
    let plan = text(&sql(client, &format!("EXPLAIN {query}")).await.unwrap());
    plan.contains(&format!("TableScan: {mv}"))
}

/// The statements both the server and the plain context run.
async fn both(
    client: &mut FlightSqlServiceClient<Channel>,
    reference: &SessionContext,
    statement: &str,
) {
    sql(client, statement).await.unwrap();
    plain(reference, statement).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn carbondata_scenario_over_flight() {
    let dir = store("carbondata");
    let server = start(MvSession::with_data_dir(&dir).await.unwrap()).await;
    let mut c = client(&server, Some(TOKEN)).await;
    let reference = SessionContext::new();
    both(
        &mut c,
        &reference,
        "CREATE TABLE sales (country VARCHAR, city VARCHAR, quantity INT, price DOUBLE) AS VALUES
           ('fr', 'paris', 3, 10.5), ('fr', 'lyon', 1, 7.0), ('de', 'berlin', 2, 3.25),
           ('de', 'bonn', 5, 1.5), ('it', 'rome', 4, 8.0)",
    )
    .await;
    sql(
        &mut c,
        "CREATE MATERIALIZED VIEW by_city AS
           SELECT country, city, sum(price) AS total, sum(quantity) AS q, count(*) AS n
           FROM sales GROUP BY country, city",
    )
    .await
    .unwrap();
    // Rolled up from the city level to the country level.
    let query = "SELECT country, sum(price), sum(quantity), count(*) FROM sales GROUP BY country";
    assert!(same_answer(&mut c, &reference, query, "by_city").await);

    // An insert makes the MV stale: the answer comes from the table, and is the new one.
    let inserted = c
        .execute_update(
            "INSERT INTO sales VALUES ('fr', 'nice', 2, 4.0)".to_string(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    plain(
        &reference,
        "INSERT INTO sales VALUES ('fr', 'nice', 2, 4.0)",
    )
    .await;
    assert!(!same_answer(&mut c, &reference, query, "by_city").await);

    // Refreshed, it answers again.
    let refreshed = sql(&mut c, "REFRESH MATERIALIZED VIEW by_city")
        .await
        .unwrap();
    assert!(text(&refreshed).contains("by_city"), "{}", text(&refreshed));
    assert!(same_answer(&mut c, &reference, query, "by_city").await);

    // Dropped, it is gone from the plans and the answer stays.
    sql(&mut c, "DROP MATERIALIZED VIEW by_city").await.unwrap();
    assert!(!same_answer(&mut c, &reference, query, "by_city").await);
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moose_scenario_over_flight() {
    let server = start(MvSession::new()).await;
    let mut c = client(&server, Some(TOKEN)).await;
    let reference = SessionContext::new();
    both(
        &mut c,
        &reference,
        "CREATE TABLE events AS
           SELECT to_timestamp(1700000000 + value * 1800) AS ts,
                  'k' || CAST(value % 3 AS VARCHAR) AS kind, value
           FROM generate_series(1, 400)",
    )
    .await;
    sql(
        &mut c,
        "CREATE MATERIALIZED VIEW hourly AS
           SELECT date_trunc('hour', ts) AS h, kind, sum(value) AS total, count(*) AS n
           FROM events GROUP BY 1, 2",
    )
    .await
    .unwrap();
    let query =
        "SELECT date_trunc('day', ts) AS d, kind, sum(value), count(*) FROM events GROUP BY 1, 2";
    assert!(same_answer(&mut c, &reference, query, "hourly").await);
    let insert = "INSERT INTO events VALUES (to_timestamp(1700000000), 'k9', 5)";
    assert_eq!(c.execute_update(insert.to_string(), None).await.unwrap(), 1);
    plain(&reference, insert).await;
    assert!(!same_answer(&mut c, &reference, query, "hourly").await);
    sql(&mut c, "REFRESH MATERIALIZED VIEW hourly")
        .await
        .unwrap();
    assert!(same_answer(&mut c, &reference, query, "hourly").await);
    server.shutdown().await.unwrap();
}

/// A session with `sales` and the MV `by_country`, served.
async fn sales_server() -> Server {
    let session = MvSession::new();
    for statement in [
        "CREATE TABLE sales (country VARCHAR, quantity INT, price DOUBLE) AS VALUES
           ('fr', 3, 10.5), ('fr', 1, 7.0), ('de', 2, 3.25), ('de', 5, 1.5), ('it', 4, 8.0)",
        "CREATE MATERIALIZED VIEW by_country AS
           SELECT country, quantity, sum(price) AS total, count(*) AS n FROM sales GROUP BY country, quantity",
    ] {
        session.sql(statement).await.unwrap().collect().await.unwrap();
    }
    start(session).await
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(column).unwrap();
            let c = c.as_any().downcast_ref::<StringArray>().unwrap();
            (0..c.len())
                .map(|i| c.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_calls_list_tables_and_mvs() {
    let server = sales_server().await;
    let mut c = client(&server, Some(READ_ONLY_TOKEN)).await;
    let info = c.get_catalogs().await.unwrap();
    let catalogs = fetch(&mut c, info).await.unwrap();
    assert_eq!(strings(&catalogs, "catalog_name"), vec!["datafusion"]);

    let info = c
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("datafusion".into()),
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = fetch(&mut c, info).await.unwrap();
    assert!(strings(&schemas, "db_schema_name").contains(&"public".to_string()));

    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("public".into()),
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = fetch(&mut c, info).await.unwrap();
    let names = strings(&tables, "table_name");
    let types = strings(&tables, "table_type");
    let kind = |name: &str| types[names.iter().position(|n| n == name).unwrap()].clone();
    assert_eq!(kind("sales"), "TABLE");
    assert_eq!(kind("by_country"), "MATERIALIZED VIEW");
    // The table's schema, as the Arrow IPC message clients decode.
    let schemas = tables[0].column_by_name("table_schema").unwrap();
    let schemas = schemas
        .as_any()
        .downcast_ref::<datafusion::arrow::array::BinaryArray>()
        .unwrap();
    let sales = names.iter().position(|n| n == "sales").unwrap();
    let schema = Schema::try_from(IpcMessage(schemas.value(sales).to_vec().into())).unwrap();
    let fields: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(fields, vec!["country", "quantity", "price"]);

    // Filtered by type: only the MV.
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec!["MATERIALIZED VIEW".into()],
            include_schema: false,
        })
        .await
        .unwrap();
    let mvs = fetch(&mut c, info).await.unwrap();
    assert_eq!(strings(&mvs, "table_name"), vec!["by_country"]);

    let info = c.get_table_types().await.unwrap();
    let table_types = strings(&fetch(&mut c, info).await.unwrap(), "table_type");
    assert!(table_types.contains(&"MATERIALIZED VIEW".to_string()));

    let info = c
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
        ])
        .await
        .unwrap();
    let sql_info = fetch(&mut c, info).await.unwrap();
    assert_eq!(sql_info[0].num_rows(), 2);
    assert!(text(&sql_info).contains("mvrewrite"), "{}", text(&sql_info));
    server.shutdown().await.unwrap();
}

/// The tables `GetTables` lists.
async fn table_names(c: &mut FlightSqlServiceClient<Channel>) -> Vec<String> {
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: false,
        })
        .await
        .unwrap();
    let mut names = strings(&fetch(c, info).await.unwrap(), "table_name");
    names.sort();
    names
}

/// One row of parameters, each column of the type the server asked for.
fn parameters(schema: &Schema, values: &[&str]) -> RecordBatch {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(values)
        .map(|(field, value)| {
            let text: ArrayRef = Arc::new(StringArray::from(vec![*value]));
            datafusion::arrow::compute::cast(&text, field.data_type()).unwrap()
        })
        .collect();
    RecordBatch::try_new(Arc::new(schema.clone()), columns).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_parameters() {
    let server = sales_server().await;
    let mut c = client(&server, Some(TOKEN)).await;
    let reference = SessionContext::new();
    plain(
        &reference,
        "CREATE TABLE sales (country VARCHAR, quantity INT, price DOUBLE) AS VALUES
           ('fr', 3, 10.5), ('fr', 1, 7.0), ('de', 2, 3.25), ('de', 5, 1.5), ('it', 4, 8.0)",
    )
    .await;

    let mut query = c
        .prepare(
            "SELECT country, sum(price) AS total FROM sales WHERE quantity > $1 GROUP BY country"
                .to_string(),
            None,
        )
        .await
        .unwrap();
    let parameter_schema = query.parameter_schema().unwrap().clone();
    assert_eq!(parameter_schema.fields().len(), 1);
    let dataset: Vec<_> = query
        .dataset_schema()
        .unwrap()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(dataset, vec!["country", "total"]);
    for bound in ["1", "3"] {
        query
            .set_parameters(parameters(&parameter_schema, &[bound]))
            .unwrap();
        let info = query.execute().await.unwrap();
        let served = fetch(&mut c, info).await.unwrap();
        let expected = plain(
            &reference,
            &format!("SELECT country, sum(price) AS total FROM sales WHERE quantity > {bound} GROUP BY country"),
        )
        .await;
        compare(&expected, &served).unwrap();
    }
    query.close().await.unwrap();

    // A prepared insert, two rows of parameters: two writes.
    let mut insert = c
        .prepare("INSERT INTO sales VALUES ($1, $2, $3)".to_string(), None)
        .await
        .unwrap();
    assert!(insert.dataset_schema().unwrap().fields().is_empty());
    let schema = insert.parameter_schema().unwrap().clone();
    assert_eq!(schema.fields().len(), 3);
    let one = parameters(&schema, &["es", "6", "2.5"]);
    let two = parameters(&schema, &["es", "7", "1.0"]);
    let rows = datafusion::arrow::compute::concat_batches(&one.schema(), [&one, &two]).unwrap();
    insert.set_parameters(rows).unwrap();
    assert_eq!(insert.execute_update().await.unwrap(), 2);
    plain(
        &reference,
        "INSERT INTO sales VALUES ('es', 6, 2.5), ('es', 7, 1.0)",
    )
    .await;
    let all = "SELECT country, sum(price), count(*) FROM sales GROUP BY country";
    compare(
        &plain(&reference, all).await,
        &sql(&mut c, all).await.unwrap(),
    )
    .unwrap();

    // A null parameter is a value too.
    query_with_null(&mut c, &parameter_schema).await;
    server.shutdown().await.unwrap();
}

async fn query_with_null(c: &mut FlightSqlServiceClient<Channel>, schema: &Schema) {
    let mut query = c
        .prepare(
            "SELECT count(*) AS n FROM sales WHERE quantity > $1".to_string(),
            None,
        )
        .await
        .unwrap();
    let null = new_null_array(schema.field(0).data_type(), 1);
    query
        .set_parameters(RecordBatch::try_new(Arc::new(schema.clone()), vec![null]).unwrap())
        .unwrap();
    let info = query.execute().await.unwrap();
    let rows = fetch(c, info).await.unwrap();
    assert!(text(&rows).contains("| 0 "), "{}", text(&rows));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_needs_a_valid_token() {
    let server = sales_server().await;
    let other = sales_server().await;
    let query = "SELECT count(*) FROM sales";

    let mut anonymous = client(&server, None).await;
    let e = sql(&mut anonymous, query).await.unwrap_err();
    assert!(has_code(&e, Code::Unauthenticated), "{e}");
    assert!(anonymous.get_catalogs().await.is_err());
    assert!(anonymous.prepare(query.to_string(), None).await.is_err());

    let mut wrong = client(&server, Some("test-token-wrong")).await;
    let e = sql(&mut wrong, query).await.unwrap_err();
    assert!(has_code(&e, Code::Unauthenticated), "{e}");
    assert!(
        !e.contains("test-token-wrong"),
        "the token is repeated: {e}"
    );

    // A password: wrong, then right (the handshake hands out a token the client keeps).
    let mut user = client(&server, None).await;
    let e = user
        .handshake("ana", "not-her-password")
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("not-her-password"), "{e}");
    assert!(user.token().is_none());
    user.handshake("ana", "ana-password").await.unwrap();
    assert_eq!(sql(&mut user, query).await.unwrap()[0].num_rows(), 1);

    // A token another server handed out is not this one's.
    let mut elsewhere = client(&other, None).await;
    elsewhere.handshake("ana", "ana-password").await.unwrap();
    let foreign = elsewhere.token().unwrap().clone();
    let mut borrowed = client(&server, Some(&foreign)).await;
    let e = sql(&mut borrowed, query).await.unwrap_err();
    assert!(has_code(&e, Code::Unauthenticated), "{e}");
    server.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_clients_query_but_never_write() {
    let server = sales_server().await;
    let mut viewer = client(&server, None).await;
    viewer.handshake("viewer", "viewer-password").await.unwrap();
    let mut ro_token = client(&server, Some(READ_ONLY_TOKEN)).await;
    let count = "SELECT count(*) AS n FROM sales";
    let before = text(&sql(&mut viewer, count).await.unwrap());
    for c in [&mut viewer, &mut ro_token] {
        for statement in [
            "INSERT INTO sales VALUES ('es', 1, 1.0)",
            "CREATE TABLE t2 (a INT)",
            "CREATE TABLE t3 AS SELECT * FROM sales",
            "CREATE MATERIALIZED VIEW m2 AS SELECT country, count(*) AS n FROM sales GROUP BY country",
            "REFRESH MATERIALIZED VIEW by_country",
            "DROP MATERIALIZED VIEW by_country",
            "DROP TABLE sales",
            "SET datafusion.execution.batch_size = 10",
            "EXPLAIN ANALYZE INSERT INTO sales VALUES ('es', 1, 1.0)",
        ] {
            let e = sql(c, statement).await.unwrap_err();
            assert!(has_code(&e, Code::PermissionDenied), "{statement}: {e}");
            let e = c
                .execute_update(statement.to_string(), None)
                .await
                .unwrap_err()
                .to_string();
            assert!(has_code(&e, Code::PermissionDenied), "{statement}: {e}");
            assert!(c.prepare(statement.to_string(), None).await.is_err());
        }
        // Queries and EXPLAIN are fine.
        assert!(
            text(
                &sql(
                    c,
                    "EXPLAIN SELECT country, sum(price) FROM sales GROUP BY country"
                )
                .await
                .unwrap()
            )
            .contains("by_country")
        );
    }
    let mut admin = client(&server, Some(TOKEN)).await;
    assert_eq!(text(&sql(&mut admin, count).await.unwrap()), before);
    assert_eq!(table_names(&mut admin).await, vec!["by_country", "sales"]);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error_and_the_server_keeps_serving() {
    let server = sales_server().await;
    let mut c = client(&server, Some(TOKEN)).await;
    let e = sql(&mut c, "SELEKT * FROM sales").await.unwrap_err();
    assert!(
        has_code(&e, Code::InvalidArgument) && e.contains("SELEKT"),
        "{e}"
    );
    let e = sql(&mut c, "SELECT nope FROM sales").await.unwrap_err();
    assert!(e.contains("nope"), "{e}");
    // Fails while it runs, after it was planned.
    let e = sql(&mut c, "SELECT CAST(country AS INT) FROM sales")
        .await
        .unwrap_err();
    assert!(e.contains("Cast") || e.contains("cast"), "{e}");
    // An oversized request.
    let huge = format!("SELECT '{}'", "x".repeat(20 << 20));
    assert!(sql(&mut c, &huge).await.is_err());
    // A forged ticket.
    let forged = arrow_flight::Ticket::new(b"not a ticket".to_vec());
    assert!(c.do_get(forged).await.is_err());

    // A client that goes away mid-stream.
    let mut leaving = client(&server, Some(TOKEN)).await;
    let info = leaving
        .execute(
            "SELECT value FROM generate_series(1, 50000000)".to_string(),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = leaving.do_get(ticket).await.unwrap();
    assert!(stream.try_next().await.unwrap().is_some());
    drop(stream);
    drop(leaving);

    let mut c = client(&server, Some(TOKEN)).await;
    let rows = sql(&mut c, "SELECT count(*) AS n FROM sales")
        .await
        .unwrap();
    assert!(text(&rows).contains("| 5 "), "{}", text(&rows));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_stream_in_batches() {
    let server = sales_server().await;
    let mut c = client(&server, Some(TOKEN)).await;
    let info = c
        .execute(
            "SELECT value, value * 2 AS twice FROM generate_series(1, 300000)".to_string(),
            None,
        )
        .await
        .unwrap();
    let batches = fetch(&mut c, info).await.unwrap();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 300_000);
    assert!(batches.len() > 1, "one batch of {rows} rows");
    server.shutdown().await.unwrap();
}

fn group(k: &str, n: i64, s: i64) -> Vec<String> {
    vec![k.to_string(), n.to_string(), s.to_string()]
}

/// Rows of group 'a' and 'b' after `round` writes: `(count, sum)` per group.
fn state(round: i64) -> (i64, i64) {
    (10 + round, 55 + (0..round).map(|j| 100 + j).sum::<i64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_whole_states_while_another_client_writes_and_refreshes() {
    const READERS: usize = 8;
    const QUERIES: usize = 15;
    const ROUNDS: i64 = 6;
    let dir = store("concurrent");
    let server = start(MvSession::with_data_dir(&dir).await.unwrap()).await;
    let mut admin = client(&server, Some(TOKEN)).await;
    for statement in [
        "CREATE TABLE t AS
           SELECT CASE WHEN value % 2 = 0 THEN 'a' ELSE 'b' END AS k, (value + 1) / 2 AS v
           FROM generate_series(1, 20)",
        "CREATE MATERIALIZED VIEW by_k AS SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k",
    ] {
        sql(&mut admin, statement).await.unwrap();
    }
    let query = "SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k ORDER BY k";
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut c = client(&server, Some(READ_ONLY_TOKEN)).await;
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..QUERIES {
                let rows = cells(&sql(&mut c, query).await.unwrap());
                // Both groups from one state: never one group before a write and one after.
                let round = (0..=ROUNDS).find(|r| {
                    let (n, s) = state(*r);
                    rows == [group("a", n, s), group("b", n, s)]
                });
                assert!(round.is_some(), "not a state the table was in: {rows:?}");
                seen.push(round.unwrap());
            }
            seen
        }));
    }
    for round in 0..ROUNDS {
        let v = 100 + round;
        let changed = admin
            .execute_update(format!("INSERT INTO t VALUES ('a', {v}), ('b', {v})"), None)
            .await
            .unwrap();
        assert_eq!(changed, 2);
        sql(&mut admin, "REFRESH MATERIALIZED VIEW by_k")
            .await
            .unwrap();
    }
    let mut states = Vec::new();
    for reader in readers {
        states.extend(reader.await.unwrap());
    }
    assert_eq!(states.len(), READERS * QUERIES);
    // The last state, from the refreshed MV.
    let rows = cells(&sql(&mut admin, query).await.unwrap());
    let (n, s) = state(ROUNDS);
    assert_eq!(rows, [group("a", n, s), group("b", n, s)]);
    let plan = text(&sql(&mut admin, &format!("EXPLAIN {query}")).await.unwrap());
    assert!(plan.contains("TableScan: by_k"), "{plan}");
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The built binary: `serve --help` hides the environment's secrets, refuses to start
/// without credentials, and serves with a token from the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_with_a_token_from_the_environment() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let binary = env!("CARGO_BIN_EXE_mvrewrite");
    let help = Command::new(binary)
        .args(["serve", "--help"])
        .env("MVREWRITE_TOKEN", "env-secret-123")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("Example:"), "{help}");
    assert!(!help.contains("env-secret-123"), "{help}");

    let refused = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("MVREWRITE_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8(refused.stderr).unwrap();
    assert!(err.contains("at least one token or user"), "{err}");

    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MVREWRITE_TOKEN", "env-secret-123")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("Flight SQL on grpc://")
        .unwrap()
        .to_string();
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = FlightSqlServiceClient::new(channel);
    assert!(sql(&mut c, "SELECT 1").await.is_err());
    c.set_token("env-secret-123".to_string());
    let rows = sql(&mut c, "SELECT 41 + 1 AS answer").await.unwrap();
    assert_eq!(cells(&rows), [["42"]]);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A client that disconnects mid-stream frees its work: the server drops the query's stream,
/// so DataFusion stops computing it. A function counting the rows it sees stops counting
/// once the client is gone, far short of the query's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_frees_its_work() {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let counted = create_udf(
        "counted",
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            if let ColumnarValue::Array(a) = &args[0] {
                counter.fetch_add(a.len() as u64, Ordering::SeqCst);
            }
            Ok(args[0].clone())
        }),
    );
    let session = MvSession::new();
    session.context().register_udf(counted);
    let server = start(session).await;
    let total: u64 = 10_000_000_000;
    let mut leaving = client(&server, Some(TOKEN)).await;
    let query = format!("SELECT counted(value) AS v FROM generate_series(1, {total})");
    let info = leaving.execute(query, None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = leaving.do_get(ticket).await.unwrap();
    assert!(stream.try_next().await.unwrap().is_some());
    drop(stream);
    drop(leaving);
    // What was in flight when the client left may still finish; then nothing more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_leaving = seen.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = seen.load(Ordering::SeqCst);
    assert!(
        after_leaving > 0 && after_leaving < total / 100,
        "{after_leaving}"
    );
    assert_eq!(
        later, after_leaving,
        "the query kept running without its client"
    );
    server.shutdown().await.unwrap();
}
