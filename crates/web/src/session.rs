//! Logging in and out.
//!
//! A session is a random 32-byte id in an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` when served over HTTPS); the store keeps its SHA-256 with the
//! user, a CSRF token and an expiry that slides while the user is active.
//!
//! Guessing passwords is slowed twice: per email, through the store (so
//! every web server on one database counts the same failures), and per
//! client address, in memory (so one address cannot try many emails).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use arflow_store::Session;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp};
use minijinja::context;
use serde::Deserialize;

use crate::AppState;
use crate::access::{Caller, SESSION_COOKIE, Via, session_caller};
use crate::problem::{AppError, PageError};
use crate::secrets;

/// Failed logins allowed per email within [`FAILURE_WINDOW`].
pub const MAX_FAILURES_PER_EMAIL: u32 = 5;
pub const FAILURE_WINDOW: SignedDuration = SignedDuration::from_mins(15);
/// Login attempts allowed per client address per minute.
pub const MAX_ATTEMPTS_PER_IP_PER_MINUTE: u32 = 20;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// `GET /login`: the form (or straight on, when already logged in).
pub async fn login_page(
    State(app): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    if session_caller(&app, &headers).await?.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(app.views.render(
        "login.html",
        context! { next => next, error => None::<String>, email => "" },
    )?)
}

/// `POST /login`.
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    crate::access::same_site(&headers)?;
    let next = safe_next(form.next.as_deref());
    let now = app.clock.now();
    let ip = peer.ip();
    if let Err(wait) = app.limiter.attempt(ip, now) {
        return Err(AppError::TooManyRequests {
            retry_after_secs: wait,
        }
        .into());
    }
    let email = form.email.trim().to_lowercase();
    let password = form.password;
    let ip_text = ip.to_string();
    let idle = app.config.session_idle;
    let outcome = {
        let email = email.clone();
        app.blocking(move |store| {
            if store.login_failures(&email, now, FAILURE_WINDOW)? >= MAX_FAILURES_PER_EMAIL {
                return Ok(LoginOutcome::Locked);
            }
            let user = store.user_by_email(&email)?;
            let ok = match &user {
                Some(u) => secrets::verify_password(&password, &u.password_hash) && !u.disabled,
                None => {
                    secrets::burn_password_check(&password);
                    false
                }
            };
            let Some(user) = user.filter(|_| ok) else {
                store.record_login_failure(&email, &ip_text, now)?;
                return Ok(LoginOutcome::Wrong);
            };
            store.clear_login_failures(&email)?;
            let cookie = secrets::random_token().map_err(|e| AppError::Internal(e.to_string()))?;
            let csrf = secrets::random_token().map_err(|e| AppError::Internal(e.to_string()))?;
            store.create_session(
                &Session {
                    id_hash: secrets::sha256_hex(&cookie),
                    user_id: user.id,
                    org: user.org,
                    csrf_token: csrf,
                    created_at: now,
                    expires_at: now + idle,
                },
                now,
            )?;
            Ok(LoginOutcome::In(cookie))
        })
        .await?
    };
    match outcome {
        LoginOutcome::In(cookie) => {
            let mut r = Redirect::to(&next).into_response();
            set_cookie(&mut r, &session_cookie(&cookie, app.config.secure_cookies));
            Ok(r)
        }
        LoginOutcome::Wrong => {
            app.metrics.logins_failed.inc();
            let mut r = app.views.render(
                "login.html",
                context! { next => next, email => email, error => Some("The email or password is not right.") },
            )?;
            *r.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            Ok(r)
        }
        LoginOutcome::Locked => Err(AppError::TooManyRequests {
            retry_after_secs: FAILURE_WINDOW.as_secs() as u64,
        }
        .into()),
    }
}

enum LoginOutcome {
    In(String),
    Wrong,
    Locked,
}

/// `POST /logout`.
pub async fn logout(State(app): State<AppState>, caller: Caller) -> Result<Response, PageError> {
    if let Via::Session { id_hash, .. } = caller.via {
        let now = app.clock.now();
        app.blocking(move |store| Ok(store.delete_session(&id_hash, now)?))
            .await?;
    }
    let mut r = Redirect::to("/login").into_response();
    set_cookie(
        &mut r,
        &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(r)
}

fn session_cookie(value: &str, secure: bool) -> String {
    // No Max-Age: a browser session cookie; the server enforces expiry.
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

fn set_cookie(r: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Only local paths: `next` must not send a user to another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs, so "/\t/evil.example"
        // would become "//evil.example": no control characters at all.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Login attempts per client address per minute, in memory.
#[derive(Default)]
pub struct IpLimiter {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl IpLimiter {
    /// Counts an attempt; `Err(seconds to wait)` when over the limit.
    pub fn attempt(&self, ip: IpAddr, now: Timestamp) -> Result<(), u64> {
        let minute = now.as_second().div_euclid(60);
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 10_000 {
            w.retain(|_, (m, _)| *m == minute);
        }
        let entry = w.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        if entry.1 > MAX_ATTEMPTS_PER_IP_PER_MINUTE {
            Err((60 - now.as_second().rem_euclid(60)) as u64)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/invoices?x=1")), "/invoices?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn limits_attempts_per_address_per_minute() {
        let l = IpLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t: Timestamp = "2026-12-03T10:00:05Z".parse().unwrap();
        for _ in 0..MAX_ATTEMPTS_PER_IP_PER_MINUTE {
            assert!(l.attempt(ip, t).is_ok());
        }
        assert_eq!(l.attempt(ip, t), Err(55));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.attempt(other, t).is_ok());
        let next_minute: Timestamp = "2026-12-03T10:01:00Z".parse().unwrap();
        assert!(l.attempt(ip, next_minute).is_ok());
    }
}
