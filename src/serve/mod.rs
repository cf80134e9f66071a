//! `mvrewrite serve`: an Arrow Flight SQL server over one [`MvSession`], so that JDBC, ADBC
//! (Python, Go, C) and BI tools reach a rewriting session: MV statements, writes and queries
//! run through [`MvSession::sql`], queries are rewritten, `EXPLAIN` shows the MV.
//!
//! Written on arrow-flight's `FlightSqlService` trait rather than on
//! `datafusion-flight-sql-server`: that crate plans every statement with DataFusion's own
//! planner (so `CREATE MATERIALIZED VIEW` and the versioned writes would be bypassed, and its
//! updates are not implemented), and it would turn on all of DataFusion's default features and
//! bring Substrait into every build (BENCHMARKS.md, build cost).
//!
//! `auth.rs` who may connect and do what, `statement.rs` statements dispatched to the
//! session, `handle.rs` what tickets and prepared statements carry, `metadata.rs` the
//! catalog calls, `service.rs` the protocol. Behind the cargo feature `serve`.
//!
//! May use: `lifecycle` and everything below. Used by `cli`.

pub mod auth;
mod handle;
mod metadata;
mod service;
mod statement;

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::error::{MvError, Result};
use crate::lifecycle::MvSession;

pub use auth::{Access, Role};

/// The largest request a client may send (a statement, bound parameters): 16 MiB.
const MAX_REQUEST_BYTES: usize = 16 << 20;
/// Requests one connection may have running at once.
const MAX_REQUESTS_PER_CONNECTION: usize = 64;

/// A running server: its address, and a way to stop it.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
}

/// Serves `session` over Flight SQL on `listen` (port 0: any free port, see
/// [`Server::local_addr`]) to the clients `access` admits. Refused without any credentials.
/// Every client shares the session: its tables, MVs and settings.
pub async fn serve(session: Arc<MvSession>, listen: SocketAddr, access: Access) -> Result<Server> {
    if access.is_empty() {
        return Err(MvError::Input(
            "a server needs at least one token or user: every request is authenticated".into(),
        ));
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| MvError::Input(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| MvError::Internal(e.to_string()))?;
    let service = service::MvFlightSql::new(session, auth::Authenticator::new(access))
        .map_err(|e| MvError::Internal(e.message().to_string()))?;
    let service = FlightServiceServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(
        tonic::transport::Server::builder()
            .concurrency_limit_per_connection(MAX_REQUESTS_PER_CONNECTION)
            .add_service(service)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            }),
    );
    Ok(Server {
        addr,
        stop: Some(stop),
        task,
    })
}

impl Server {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the server fails or is stopped.
    pub async fn wait(mut self) -> Result<()> {
        let task = &mut self.task;
        let done = task
            .await
            .map_err(|e| MvError::Internal(format!("server task: {e}")))?;
        done.map_err(|e| MvError::Internal(format!("server: {e}")))
    }

    /// Stops accepting requests, lets those running finish, and returns.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }
}
