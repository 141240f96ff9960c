//! Who is calling, and whether they may.
//!
//! Every route declares an [`Access`] in `routes.rs`; [`enforce`] runs
//! before the handler and either puts a [`Caller`] in the request or answers
//! itself: pages send anonymous people to the login form and answer 403
//! with a page, the API answers 401/403 problem documents. State-changing
//! requests from a browser session also need the session's CSRF token and,
//! when the browser says where the request came from, the same origin.

use arflow_store::{Role, Scope};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::problem::{AppError, PageError, Problem};
use crate::secrets;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// At least this role.
    Role(Role),
}

/// Whether a route answers people (HTML) or programs (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Page,
    Api,
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Session { id_hash: String, csrf: String },
    Token { id: i64, scopes: Vec<Scope> },
}

/// The authenticated caller, put in the request by [`enforce`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: i64,
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Caller {
    /// The session's CSRF token, for forms (empty for API tokens).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } => "",
        }
    }

    pub fn can(&self, role: Role) -> bool {
        self.role >= role
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(Problem(AppError::Unauthenticated))
    }
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "arflow_session";
/// The form field (or `X-CSRF-Token` header, or query parameter for
/// multipart uploads) carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// The middleware in front of every route.
pub async fn enforce(
    State(app): State<AppState>,
    access: Access,
    kind: Kind,
    req: Request,
    next: Next,
) -> Response {
    let Access::Role(needed) = access else {
        return next.run(req).await;
    };
    let caller = match kind {
        Kind::Page => session_caller(&app, req.headers()).await,
        Kind::Api => token_caller(&app, req.headers()).await,
    };
    let caller = match caller {
        Ok(Some(c)) => c,
        Ok(None) => return unauthenticated(kind, &req),
        Err(e) => return refuse(kind, e),
    };
    if caller.role < needed {
        return refuse(
            kind,
            AppError::Forbidden(format!(
                "this needs the {} role; {} is a {}",
                needed.as_str(),
                caller.email,
                caller.role.as_str()
            )),
        );
    }
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut req = req;
    if mutating {
        match &caller.via {
            Via::Token { scopes, .. } => {
                if !scopes.contains(&Scope::Write) {
                    return refuse(
                        kind,
                        AppError::Forbidden("this API token has no write scope".to_string()),
                    );
                }
            }
            Via::Session { csrf, .. } => {
                match check_csrf(req, csrf, app.config.max_body_bytes).await {
                    Ok(r) => req = r,
                    Err(e) => return refuse(kind, e),
                }
            }
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

fn unauthenticated(kind: Kind, req: &Request) -> Response {
    match kind {
        Kind::Api => Problem(AppError::Unauthenticated).into_response(),
        Kind::Page if req.method() == Method::GET => {
            let next = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", percent_encode(next))).into_response()
        }
        Kind::Page => PageError(AppError::Unauthenticated).into_response(),
    }
}

fn refuse(kind: Kind, e: AppError) -> Response {
    match kind {
        Kind::Api => Problem(e).into_response(),
        Kind::Page => PageError(e).into_response(),
    }
}

/// The caller behind the request's session cookie, if any.
pub async fn session_caller(
    app: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Caller>, AppError> {
    let Some(value) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = secrets::sha256_hex(&value);
    let now = app.clock.now();
    let idle = app.config.session_idle;
    let found = app
        .blocking(move |store| {
            let Some((session, user)) = store.session(&id_hash, now)? else {
                return Ok(None);
            };
            // Sliding expiry, written at most once per half idle period.
            if session.expires_at.duration_since(now) < idle / 2 {
                store.extend_session(&id_hash, now + idle)?;
            }
            Ok(Some((session, user)))
        })
        .await?;
    Ok(found.map(|(session, user)| Caller {
        org: user.org,
        user_id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
        via: Via::Session {
            id_hash: session.id_hash,
            csrf: session.csrf_token,
        },
    }))
}

/// The caller behind an `Authorization: Bearer` token, if any.
async fn token_caller(
    app: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Caller>, AppError> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Some(token) = auth
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Ok(None);
    };
    let hash = secrets::sha256_hex(token);
    let now = app.clock.now();
    let found = app
        .blocking(move |store| Ok(store.api_token_by_hash(&hash, now)?))
        .await?;
    Ok(found.map(|(token, user)| Caller {
        org: user.org,
        user_id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
        via: Via::Token {
            id: token.id,
            scopes: token.scopes,
        },
    }))
}

/// Refuses a browser request that another site made (the browser's
/// `Sec-Fetch-Site`, or an `Origin` naming another host). Also guards
/// `POST /login`, which has no session token yet: another site must not log
/// a visitor into the attacker's account.
pub fn same_site(headers: &axum::http::HeaderMap) -> Result<(), AppError> {
    let forbidden = |why: &str| AppError::Forbidden(format!("the request was refused: {why}"));
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(forbidden("it came from another site"));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != "null"
    {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        if host.is_none() || origin_host != host {
            return Err(forbidden("it came from another origin"));
        }
    }
    Ok(())
}

/// Checks the origin and the synchronizer token of a state-changing request
/// from a browser session; gives the request back (its body re-attached).
async fn check_csrf(req: Request, expected: &str, limit: usize) -> Result<Request, AppError> {
    same_site(req.headers())?;
    let forbidden = |why: &str| AppError::Forbidden(format!("the request was refused: {why}"));
    // A header (scripts) or a query parameter (multipart forms) ...
    let mut sent: Option<String> = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().query().and_then(|q| form_field(q, CSRF_FIELD)));
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let req = if sent.is_none() && is_form {
        // ... or the form's hidden field: read the body, then put it back.
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| AppError::invalid("body", None, "the form is too large or was cut off"))?;
        sent = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|b| form_field(b, CSRF_FIELD));
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    match sent {
        Some(token) if secrets::constant_time_eq(&token, expected) => Ok(req),
        Some(_) => Err(forbidden(
            "the form was out of date (reload the page and try again)",
        )),
        None => Err(forbidden("the form carried no CSRF token")),
    }
}

/// The value of `name` in an `application/x-www-form-urlencoded` string, for
/// fields whose names and values need no decoding (hex tokens).
fn form_field(encoded: &str, name: &str) -> Option<String> {
    encoded.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| cookie::Cookie::parse(c.trim().to_string()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Percent-encodes a path-and-query for use as a query value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_form_fields_and_cookies() {
        assert_eq!(
            form_field("a=1&_csrf=abc&b=2", "_csrf").as_deref(),
            Some("abc")
        );
        assert_eq!(form_field("a=1", "_csrf"), None);
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            header::COOKIE,
            "x=1; arflow_session=s3cr3t".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h, SESSION_COOKIE).as_deref(), Some("s3cr3t"));
        assert_eq!(cookie_value(&h, "nope"), None);
        assert_eq!(
            percent_encode("/invoices?q=a b&x=1"),
            "/invoices%3Fq%3Da%20b%26x%3D1"
        );
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin > Role::Collector && Role::Collector > Role::Viewer);
    }
}
