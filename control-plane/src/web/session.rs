//! Browser sessions. An operator exchanges an admin token, a consumer an
//! email and password, for a session: a random id in an HttpOnly, Secure,
//! SameSite=Strict cookie (only its SHA-256 is stored, like the tokens),
//! with an expiry and a CSRF token that every write must echo in
//! `X-CSRF-Token`. The store keeps sessions, so every replica accepts
//! them. Failed sign-ins are limited per client address.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use hyper::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::{
    clock::{self, rfc3339},
    error::ApiError,
    store::{Conn, DbError},
    tokens,
};

pub const COOKIE: &str = "edgegw_session";
const CSRF_HEADER: &str = "x-csrf-token";

/// Who a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An operator, signed in with an admin token (subject: its label).
    Admin,
    /// A developer-portal account (subject: its email).
    Consumer,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Admin => "admin",
            Kind::Consumer => "consumer",
        }
    }
}

/// The credentials a request carries: a bearer token, a session cookie,
/// a CSRF token.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub authorization: Option<String>,
    pub session: Option<String>,
    pub csrf: Option<String>,
}

impl Credentials {
    pub fn from_headers(headers: &HeaderMap) -> Credentials {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let session = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == COOKIE && !value.is_empty()).then(|| value.to_string())
            });
        Credentials {
            authorization: text(header::AUTHORIZATION.as_str()),
            session,
            csrf: text(CSRF_HEADER),
        }
    }
}

/// A live session.
#[derive(Clone, Debug)]
pub struct Session {
    pub kind: Kind,
    pub subject: String,
    pub csrf: String,
    pub expires_at: i64,
}

impl Session {
    /// What `GET /v1/session` and the sign-ins answer.
    pub fn shown(&self) -> Value {
        json!({
            "kind": self.kind.name(),
            "subject": self.subject,
            "csrf": self.csrf,
            "expires_at": self.expires_at,
        })
    }
}

/// Starts a session; answers its cookie id (shown to the browser only).
pub fn create(
    conn: &Conn,
    kind: Kind,
    subject: &str,
    ttl: u64,
) -> Result<(String, Session), DbError> {
    let now = clock::now();
    // Expired sessions go as new ones start.
    conn.execute(
        "DELETE FROM web_sessions WHERE expires_at <= ?1",
        &[now.into()],
    )?;
    let id = tokens::random(32);
    let session = Session {
        kind,
        subject: subject.to_string(),
        csrf: tokens::random(24),
        expires_at: now + ttl as i64,
    };
    conn.execute(
        "INSERT INTO web_sessions (sha256, kind, subject, csrf, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            (&tokens::sha256_hex(&id)).into(),
            kind.name().into(),
            (&session.subject).into(),
            (&session.csrf).into(),
            session.expires_at.into(),
        ],
    )?;
    Ok((id, session))
}

/// The session of cookie id `id`: 401 when unknown or expired.
pub fn find(conn: &Conn, id: &str) -> Result<Session, ApiError> {
    let row = conn.query_opt(
        "SELECT kind, subject, csrf, expires_at FROM web_sessions WHERE sha256 = ?1",
        &[(&tokens::sha256_hex(id)).into()],
    )?;
    let Some(row) = row else {
        return Err(ApiError::unauthorized(
            "no session (signed out, or never signed in); sign in again",
        ));
    };
    let kind = match row.text(0)?.as_str() {
        "admin" => Kind::Admin,
        _ => Kind::Consumer,
    };
    let session = Session {
        kind,
        subject: row.text(1)?,
        csrf: row.text(2)?,
        expires_at: row.int(3)?,
    };
    if session.expires_at <= clock::now() {
        return Err(ApiError::unauthorized(format!(
            "session expired at {}; sign in again",
            rfc3339(session.expires_at)
        )));
    }
    if kind == Kind::Admin
        && conn
            .query_opt(
                "SELECT name FROM admin_tokens WHERE name = ?1",
                &[(&session.subject).into()],
            )?
            .is_none()
    {
        return Err(ApiError::unauthorized(format!(
            "the admin token \"{}\" this session was opened with was revoked; sign in with another",
            session.subject
        )));
    }
    Ok(session)
}

/// Ends the session of cookie id `id`.
pub fn delete(conn: &Conn, id: &str) -> Result<(), DbError> {
    conn.execute(
        "DELETE FROM web_sessions WHERE sha256 = ?1",
        &[(&tokens::sha256_hex(id)).into()],
    )?;
    Ok(())
}

/// Ends every session of `subject` (a deleted consumer).
pub fn delete_all(conn: &Conn, kind: Kind, subject: &str) -> Result<(), DbError> {
    conn.execute(
        "DELETE FROM web_sessions WHERE kind = ?1 AND subject = ?2",
        &[kind.name().into(), subject.into()],
    )?;
    Ok(())
}

/// A write (anything but GET and HEAD) made with a session must carry
/// the session's CSRF token: another site's page can make the browser send
/// the cookie (were it not SameSite) but cannot read the token.
pub fn check_csrf(method: &Method, session: &Session, creds: &Credentials) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let sent = creds.csrf.as_deref().unwrap_or_default();
    if bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token (X-CSRF-Token); reload the page, and sign in again if it persists",
        ))
    }
}

/// The admin behind a request: a bearer admin token, or an operator's
/// session (with its CSRF token on writes). Answers the label the audit
/// log names.
pub fn admin(conn: &Conn, creds: &Credentials, method: &Method) -> Result<String, ApiError> {
    match (&creds.authorization, &creds.session) {
        (None, Some(id)) => {
            let session = find(conn, id)?;
            if session.kind != Kind::Admin {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "a developer-portal session cannot use the management API; sign in to /ui with an admin token",
                ));
            }
            check_csrf(method, &session, creds)?;
            Ok(format!("{} (console)", session.subject))
        }
        (auth, _) => tokens::check_admin(conn, auth.as_deref()),
    }
}

/// The consumer behind a portal request (their session, with the CSRF
/// token on writes): their email.
pub fn consumer(conn: &Conn, creds: &Credentials, method: &Method) -> Result<String, ApiError> {
    let Some(id) = &creds.session else {
        return Err(ApiError::unauthorized(
            "no session; sign in to the developer portal at /portal",
        ));
    };
    let session = find(conn, id)?;
    if session.kind != Kind::Consumer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "an operator session is not a developer-portal account; sign in to /portal with an email and password",
        ));
    }
    check_csrf(method, &session, creds)?;
    Ok(session.subject)
}

/// `Set-Cookie` for a new session, or (`None`) one that clears it. The
/// cookie itself lasts while the browser runs: the server's expiry ends
/// the session, so an expired one is answered with a message that says so
/// rather than looking like no sign-in at all.
pub fn cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict"),
        None => format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
    }
}

/// Failed sign-ins per client address: at most `MAX_FAILURES` per
/// `WINDOW`, then 429 until the window ends. Per replica (a client
/// spreading guesses over N replicas gets N times as many); bounded to
/// `MAX_TRACKED` addresses.
pub struct Limiter {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED: usize = 65_536;

impl Limiter {
    pub fn new() -> Limiter {
        Limiter {
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// 429 while `ip` has used up its failures.
    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((count, since)) = map.get(&ip)
            && *count >= MAX_FAILURES
            && since.elapsed() < WINDOW
        {
            let wait = WINDOW.saturating_sub(since.elapsed()).as_secs() + 1;
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed sign-ins from {ip}; wait {wait} s before trying again"),
            ));
        }
        Ok(())
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; edgegw_session=abc; b=2".parse().unwrap(),
        );
        h.append("x-csrf-token", "t".parse().unwrap());
        let c = Credentials::from_headers(&h);
        assert_eq!(c.session.as_deref(), Some("abc"));
        assert_eq!(c.csrf.as_deref(), Some("t"));
        assert!(c.authorization.is_none());
    }

    #[test]
    fn writes_need_the_sessions_csrf_token() {
        let s = Session {
            kind: Kind::Admin,
            subject: "ops".into(),
            csrf: "right".into(),
            expires_at: i64::MAX,
        };
        let with = |t: Option<&str>| Credentials {
            csrf: t.map(String::from),
            ..Credentials::default()
        };
        assert!(check_csrf(&Method::GET, &s, &with(None)).is_ok());
        assert!(check_csrf(&Method::POST, &s, &with(Some("right"))).is_ok());
        for bad in [None, Some(""), Some("wrong"), Some("righ")] {
            let err = check_csrf(&Method::POST, &s, &with(bad)).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn failed_sign_ins_are_limited_per_address() {
        let l = Limiter::new();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            l.check(a).unwrap();
            l.failed(a);
        }
        let err = l.check(a).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err.message.contains("wait"), "{}", err.message);
        l.check(b).unwrap();
    }
}
