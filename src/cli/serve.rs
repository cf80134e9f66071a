//! `mvrewrite serve`: the session of `shell` (`--data`, `--store`) served over Flight SQL
//! (`crate::serve`) until the process is stopped; the store's commits make stopping it at any
//! moment safe.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::{MvError, Result};
use crate::lifecycle::MvSession;
use crate::serve::{Access, Role};

/// The credentials given on the command line or in the environment (no `Debug`: it would
/// print them).
#[derive(Clone, Default)]
pub struct Credentials {
    /// Bearer tokens that may do everything.
    pub tokens: Vec<String>,
    /// Bearer tokens that may only query.
    pub read_only_tokens: Vec<String>,
    /// `name:password` of users that may do everything.
    pub users: Vec<String>,
    /// `name:password` of users that may only query.
    pub read_only_users: Vec<String>,
}

impl Credentials {
    /// The server's [`Access`]; an error names a malformed user (never its password).
    pub fn access(&self) -> Result<Access> {
        let mut access = Access::new();
        for (tokens, role) in [
            (&self.tokens, Role::ReadWrite),
            (&self.read_only_tokens, Role::ReadOnly),
        ] {
            for token in tokens.iter().filter(|t| !t.is_empty()) {
                access = access.with_token(token.clone(), role);
            }
        }
        for (users, role) in [
            (&self.users, Role::ReadWrite),
            (&self.read_only_users, Role::ReadOnly),
        ] {
            for user in users.iter().filter(|u| !u.is_empty()) {
                let (name, password) = user
                    .split_once(':')
                    .filter(|(name, password)| !name.is_empty() && !password.is_empty())
                    .ok_or_else(|| {
                        MvError::Input(
                            "a user is given as NAME:PASSWORD, both not empty".to_string(),
                        )
                    })?;
                access = access.with_user(name, password, role);
            }
        }
        Ok(access)
    }
}

/// Serves `session` on `listen` until the process ends; prints the address on stdout (with
/// port 0, the port chosen) once clients can connect.
pub async fn run(session: MvSession, listen: SocketAddr, credentials: &Credentials) -> Result<()> {
    let access = credentials.access()?;
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: listening on {listen}, beyond this machine; Flight SQL here is not encrypted (no TLS)"
        );
    }
    let server = crate::serve::serve(Arc::new(session), listen, access).await?;
    println!("Flight SQL on grpc://{}", server.local_addr());
    server.wait().await
}
