//! Who may connect and what they may do. Every request carries `authorization: Bearer
//! <token>`: a token the server was started with, or one a handshake handed out for a user
//! and password (`authorization: Basic ..`, what JDBC's and ADBC's `user`/`password` options
//! send). Each token and user has a [`Role`]. Secrets are compared in constant time and never
//! printed: `Debug` shows their count only, and no error message repeats a header.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// What a client may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Queries, writes, and creating, refreshing and dropping tables and MVs.
    ReadWrite,
    /// Queries (and `EXPLAIN`, `SHOW`, the metadata calls) only.
    ReadOnly,
}

/// The credentials a server accepts: bearer tokens and users with passwords, each with a role.
#[derive(Clone, Default)]
pub struct Access {
    tokens: Vec<(String, Role)>,
    users: Vec<User>,
}

#[derive(Clone)]
struct User {
    name: String,
    password: String,
    role: Role,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("tokens", &self.tokens.len())
            .field("users", &self.users.len())
            .finish()
    }
}

impl Access {
    /// No one: a server refuses to start with it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `authorization: Bearer <token>` as `role`.
    pub fn with_token(mut self, token: impl Into<String>, role: Role) -> Self {
        self.tokens.push((token.into(), role));
        self
    }

    /// Accepts a handshake as `name` with `password`, which hands out a token with `role`.
    pub fn with_user(
        mut self,
        name: impl Into<String>,
        password: impl Into<String>,
        role: Role,
    ) -> Self {
        self.users.push(User {
            name: name.into(),
            password: password.into(),
            role,
        });
        self
    }

    /// Neither a token nor a user.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.users.is_empty()
    }
}

/// How long a token a handshake handed out is accepted.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Tokens handed out and kept at once; past it the oldest is forgotten (its client shakes
/// hands again).
const MAX_ISSUED_TOKENS: usize = 10_000;

/// Checks the requests' credentials and hands out tokens for users' passwords.
pub(crate) struct Authenticator {
    access: Access,
    issued: Mutex<Issued>,
}

/// Each token handed out: its role and when.
type Issued = HashMap<String, (Role, Instant)>;

impl Authenticator {
    pub(crate) fn new(access: Access) -> Self {
        Authenticator {
            access,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// The role of the request's bearer token; `Unauthenticated` without a valid one.
    pub(crate) fn role(&self, metadata: &MetadataMap) -> Result<Role, Status> {
        let token = credentials(metadata, "Bearer ")?;
        self.token_role(&token)
            .ok_or_else(|| Status::unauthenticated("invalid or expired token"))
    }

    /// A handshake: `Basic` user and password give a new token; a valid `Bearer` token is
    /// handed back as it is. Returns the token and its role.
    pub(crate) fn handshake(&self, metadata: &MetadataMap) -> Result<(String, Role), Status> {
        if let Ok(token) = credentials(metadata, "Bearer ") {
            let role = self
                .token_role(&token)
                .ok_or_else(|| Status::unauthenticated("invalid or expired token"))?;
            return Ok((token, role));
        }
        let encoded = credentials(metadata, "Basic ")?;
        // Padded or not: Go's Flight client (ADBC) leaves the padding out.
        let base64 = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let decoded = base64
            .decode(encoded.as_bytes())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| Status::invalid_argument("malformed Basic authorization"))?;
        let (name, password) = decoded
            .split_once(':')
            .ok_or_else(|| Status::invalid_argument("malformed Basic authorization"))?;
        // Every user's password is compared, so the time taken does not tell which names exist.
        let mut role = None;
        for user in &self.access.users {
            let matches = same(user.name.as_bytes(), name.as_bytes())
                & same(user.password.as_bytes(), password.as_bytes());
            if matches {
                role = Some(user.role);
            }
        }
        let role = role.ok_or_else(|| Status::unauthenticated("wrong user or password"))?;
        let token = new_token()?;
        let mut issued = self.lock_issued()?;
        let now = Instant::now();
        issued.retain(|_, (_, at)| now.duration_since(*at) < TOKEN_LIFETIME);
        if issued.len() >= MAX_ISSUED_TOKENS
            && let Some(oldest) = issued
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(t, _)| t.clone())
        {
            issued.remove(&oldest);
        }
        issued.insert(token.clone(), (role, now));
        Ok((token, role))
    }

    fn token_role(&self, token: &str) -> Option<Role> {
        let mut role = None;
        for (known, known_role) in &self.access.tokens {
            if same(known.as_bytes(), token.as_bytes()) {
                role = Some(*known_role);
            }
        }
        if role.is_some() {
            return role;
        }
        let issued = self.issued.lock().ok()?;
        let (role, at) = issued.get(token)?;
        (at.elapsed() < TOKEN_LIFETIME).then_some(*role)
    }

    fn lock_issued(&self) -> Result<std::sync::MutexGuard<'_, Issued>, Status> {
        self.issued
            .lock()
            .map_err(|_| Status::internal("token table lock poisoned"))
    }
}

/// The `authorization` header's value after `scheme`.
fn credentials(metadata: &MetadataMap, scheme: &str) -> Result<String, Status> {
    let value = metadata.get("authorization").ok_or_else(|| {
        Status::unauthenticated(
            "no authorization: send 'authorization: Bearer <token>', or shake hands with a user and password",
        )
    })?;
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("unreadable authorization header"))?;
    value
        .strip_prefix(scheme)
        .map(|v| v.trim().to_string())
        .ok_or_else(|| Status::unauthenticated(format!("expected {}authorization", scheme)))
}

/// Equal bytes, compared in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// 256 random bits from the operating system, as hex.
fn new_token() -> Result<String, Status> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| Status::internal("no randomness for a token"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    fn basic(user: &str, password: &str) -> MetadataMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        metadata(&format!("Basic {encoded}"))
    }

    #[test]
    fn tokens_and_users_get_their_roles() {
        let auth = Authenticator::new(
            Access::new()
                .with_token("s3cret", Role::ReadWrite)
                .with_user("ana", "pw", Role::ReadOnly),
        );
        assert_eq!(
            auth.role(&metadata("Bearer s3cret")).unwrap(),
            Role::ReadWrite
        );
        assert!(auth.role(&metadata("Bearer s3cre")).is_err());
        assert!(auth.role(&MetadataMap::new()).is_err());
        assert!(auth.handshake(&basic("ana", "wrong")).is_err());
        assert!(auth.handshake(&basic("bob", "pw")).is_err());
        // Without base64's padding, as Go's client sends it.
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("ana:pw");
        assert!(
            auth.handshake(&metadata(&format!("Basic {unpadded}")))
                .is_ok()
        );
        let (token, role) = auth.handshake(&basic("ana", "pw")).unwrap();
        assert_eq!(role, Role::ReadOnly);
        assert_eq!(token.len(), 64);
        assert_eq!(
            auth.role(&metadata(&format!("Bearer {token}"))).unwrap(),
            Role::ReadOnly
        );
        // Another handshake hands out another token.
        assert_ne!(auth.handshake(&basic("ana", "pw")).unwrap().0, token);
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let access = Access::new()
            .with_token("s3cret", Role::ReadWrite)
            .with_user("ana", "pw-xyz", Role::ReadOnly);
        assert!(!format!("{access:?}").contains("s3cret"));
        let auth = Authenticator::new(access);
        let e = auth.role(&metadata("Bearer s3cret-guess")).unwrap_err();
        assert!(!e.message().contains("guess"), "{}", e.message());
        let e = auth.handshake(&basic("ana", "pw-xy")).unwrap_err();
        assert!(!e.message().contains("pw-xy"), "{}", e.message());
    }
}
