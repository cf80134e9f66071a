//! The Flight SQL service: arrow-flight's `FlightSqlService` trait (which decodes the
//! protocol's commands) implemented over an [`MvSession`]. Each call first checks the
//! client's token (`auth.rs`); statements go to `statement.rs`, the metadata calls to
//! `metadata.rs`. Results stream batch by batch as DataFusion produces them; a client that
//! goes away drops its stream, and with it the query's execution.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::ParamValues;
use futures::{Stream, TryStreamExt, future, stream};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::lifecycle::MvSession;
use crate::serve::auth::{Authenticator, Role};
use crate::serve::handle::{Handle, to_ipc};
use crate::serve::metadata;
use crate::serve::statement::{self, Kind};

/// Parameter rows one request may bind (an `executemany` of more is sent in parts).
const MAX_PARAMETER_ROWS: usize = 100_000;

type DoGetStream = <MvFlightSql as FlightService>::DoGetStream;

/// The service one server runs: the session every client shares, and who may use it.
pub(crate) struct MvFlightSql {
    session: Arc<MvSession>,
    auth: Authenticator,
    sql_info: Arc<SqlInfoData>,
}

impl MvFlightSql {
    pub(crate) fn new(session: Arc<MvSession>, auth: Authenticator) -> Result<Self, Status> {
        Ok(MvFlightSql {
            session,
            auth,
            sql_info: metadata::sql_info()?,
        })
    }

    fn role<T>(&self, request: &Request<T>) -> Result<Role, Status> {
        self.auth.role(request.metadata())
    }

    /// A statement's `FlightInfo`: a query is planned (for its schema) and runs when the
    /// ticket is fetched; a change runs now, and the ticket carries its result.
    async fn statement_info(
        &self,
        role: Role,
        handle: Handle,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let kind = statement::kind(&self.session, &handle.sql).await?;
        statement::allow(role, kind)?;
        let params = one_row(&self.session, &handle).await?;
        let (schema, ticket) = match kind {
            Kind::Query => {
                let frame = statement::run(&self.session, &handle.sql, params).await?;
                (statement::schema_of(&frame), handle)
            }
            Kind::Change => {
                let (schema, batches) =
                    statement::run_change(&self.session, &handle.sql, params).await?;
                let done = Handle::done(&schema, &batches)?;
                (schema, done)
            }
        };
        let ticket = TicketStatementQuery {
            statement_handle: ticket.to_bytes().into(),
        };
        info_response(&ticket.as_any(), &schema, descriptor)
    }

    /// A ticket's rows: a change's result as it ran, or the query run now (planned again,
    /// so it sees the tables and MVs as they are when fetched).
    async fn statement_rows(
        &self,
        role: Role,
        handle: Handle,
    ) -> Result<Response<DoGetStream>, Status> {
        if let Some((schema, batches)) = handle.result()? {
            return Ok(batches_response(schema, batches));
        }
        let kind = statement::kind(&self.session, &handle.sql).await?;
        statement::allow(role, kind)?;
        let params = one_row(&self.session, &handle).await?;
        if kind == Kind::Change {
            let (schema, batches) =
                statement::run_change(&self.session, &handle.sql, params).await?;
            return Ok(batches_response(schema, batches));
        }
        let frame = statement::run(&self.session, &handle.sql, params).await?;
        let schema = statement::schema_of(&frame);
        let rows = frame
            .execute_stream()
            .await
            .map_err(|e| statement::to_status(e.into()))?
            .map_err(|e| FlightError::ExternalError(Box::new(e)));
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(rows)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(flight)))
    }

    /// Runs a change once per parameter row (once when there are none); the rows changed.
    async fn update(&self, role: Role, sql: &str, rows: Vec<ParamValues>) -> Result<i64, Status> {
        let kind = statement::kind(&self.session, sql).await?;
        statement::allow(role, kind)?;
        let runs: Vec<Option<_>> = if rows.is_empty() {
            vec![None]
        } else {
            rows.into_iter().map(Some).collect()
        };
        let mut changed = 0i64;
        for params in runs {
            let (_, batches) = statement::run_change(&self.session, sql, params).await?;
            changed = changed.saturating_add(statement::changed_rows(&batches));
        }
        Ok(changed)
    }
}

/// The one row of parameters a query takes, if any.
async fn one_row(session: &MvSession, handle: &Handle) -> Result<Option<ParamValues>, Status> {
    let Some(batches) = handle.parameter_batches()? else {
        return Ok(None);
    };
    let mut rows = statement::parameter_rows(session, &handle.sql, &batches).await?;
    match rows.len() {
        0 => Ok(None),
        1 => Ok(rows.pop()),
        n => Err(Status::invalid_argument(format!(
            "a query takes one row of parameters, not {n}"
        ))),
    }
}

/// The parameter batches a client sends with `DoPut`, at most [`MAX_PARAMETER_ROWS`] rows.
async fn parameter_batches(
    stream: PeekableFlightDataStream,
) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
    // A message without a header only carries the command (what a client sends when the
    // parameters were bound before): no batch.
    let data = stream
        .map_err(FlightError::from)
        .try_filter(|d| future::ready(!d.data_header.is_empty()));
    let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
    let mut out = Vec::new();
    let mut rows = 0;
    while let Some(batch) = batches.try_next().await? {
        rows += batch.num_rows();
        if rows > MAX_PARAMETER_ROWS {
            return Err(Status::invalid_argument(format!(
                "more than {MAX_PARAMETER_ROWS} parameter rows in one request"
            )));
        }
        out.push(batch);
    }
    let schema = batches
        .schema()
        .cloned()
        .or_else(|| out.first().map(RecordBatch::schema))
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    Ok((schema, out))
}

/// A `FlightInfo` whose one endpoint's ticket is `command`.
fn info_response(
    command: &arrow_flight::sql::Any,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(command.encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// Batches already computed, as a `DoGet` stream.
fn batches_response(schema: SchemaRef, batches: Vec<RecordBatch>) -> Response<DoGetStream> {
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::iter(batches.into_iter().map(Ok)))
        .map_err(Status::from);
    Response::new(Box::pin(flight))
}

fn one_batch(batch: RecordBatch) -> Response<DoGetStream> {
    batches_response(batch.schema(), vec![batch])
}

/// A schema as the IPC message prepared statements describe their results and parameters in.
fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(message.0)
}

#[tonic::async_trait]
impl FlightSqlService for MvFlightSql {
    type FlightService = MvFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let (token, _) = self.auth.handshake(request.metadata())?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token not valid in a header"))?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(stream::iter([Ok(reply)])));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let role = self.role(&request)?;
        self.statement_info(role, Handle::statement(query.query), request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let role = self.role(&request)?;
        let handle = Handle::from_bytes(&query.prepared_statement_handle)?;
        self.statement_info(role, handle, request.into_inner())
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let role = self.role(&request)?;
        let handle = Handle::from_bytes(&ticket.statement_handle)?;
        self.statement_rows(role, handle).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let role = self.role(&request)?;
        let handle = Handle::from_bytes(&query.prepared_statement_handle)?;
        self.statement_rows(role, handle).await
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let role = self.role(&request)?;
        self.update(role, &command.query, Vec::new()).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let role = self.role(&request)?;
        let kind = statement::kind(&self.session, &query.query).await?;
        statement::allow(role, kind)?;
        let parameters = statement::parameter_schema(&self.session, &query.query).await?;
        // A change has no result set: JDBC then runs it as an update.
        let dataset = match kind {
            Kind::Query => {
                let frame = statement::run(&self.session, &query.query, None).await?;
                statement::schema_of(&frame).as_ref().clone()
            }
            Kind::Change => Schema::empty(),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Handle::statement(query.query).to_bytes().into(),
            dataset_schema: schema_bytes(&dataset)?,
            parameter_schema: schema_bytes(&parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // Handles hold everything: there is nothing to free.
        self.role(&request).map(|_| ())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.role(&request)?;
        let mut handle = Handle::from_bytes(&query.prepared_statement_handle)?;
        let (schema, batches) = parameter_batches(request.into_inner()).await?;
        handle.params = to_ipc(&schema, &batches)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.to_bytes().into()),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let role = self.role(&request)?;
        let handle = Handle::from_bytes(&query.prepared_statement_handle)?;
        let (_, mut batches) = parameter_batches(request.into_inner()).await?;
        if batches.iter().all(|b| b.num_rows() == 0) {
            batches = handle.parameter_batches()?.unwrap_or_default();
        }
        let rows = statement::parameter_rows(&self.session, &handle.sql, &batches).await?;
        self.update(role, &handle.sql, rows).await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.role(&request)?;
        let schema = query.into_builder().schema();
        info_response(&query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.role(&request)?;
        Ok(one_batch(metadata::catalogs(&self.session, query)?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.role(&request)?;
        let schema = query.clone().into_builder().schema();
        info_response(&query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.role(&request)?;
        Ok(one_batch(metadata::schemas(&self.session, query)?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.role(&request)?;
        let schema = query.clone().into_builder().schema();
        info_response(&query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.role(&request)?;
        Ok(one_batch(metadata::tables(&self.session, query).await?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.role(&request)?;
        let schema = query.into_builder().schema();
        info_response(&query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.role(&request)?;
        Ok(one_batch(metadata::table_types(query)?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.role(&request)?;
        let schema = query.clone().into_builder(&self.sql_info).schema();
        info_response(&query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.role(&request)?;
        let batch = query
            .into_builder(&self.sql_info)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(one_batch(batch))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
