//! arflow's HTTP server.
//!
//! So far it answers what outgoing email already points at: `/healthz`, and
//! the one-click unsubscribe link of every reminder (`List-Unsubscribe:
//! <BASE/u/TOKEN>`, RFC 8058). The dashboard, the REST API and accounts come
//! with the web application.
//!
//! The store is synchronous (a connection pool), so handlers run its calls
//! on Tokio's blocking pool.

use std::future::Future;
use std::sync::Arc;

use arflow_domain::clock::Clock;
use arflow_store::Store;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/u/{token}", get(unsubscribe_page).post(unsubscribe))
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// 200 when the database answers, 503 when it does not.
async fn healthz(State(state): State<AppState>) -> Response {
    let store = Arc::clone(&state.store);
    match tokio::task::spawn_blocking(move || store.default_organization()).await {
        Ok(Ok(_)) => plain(StatusCode::OK, "ok\n"),
        _ => plain(StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}

/// A GET must not unsubscribe (mail scanners follow links): it only shows a
/// button that POSTs, as RFC 8058 section 3.2 asks of the page behind the link.
async fn unsubscribe_page(Path(token): Path<String>) -> Response {
    let action = format!("/u/{}", escape(&token));
    page(
        StatusCode::OK,
        "Unsubscribe from payment reminders",
        &format!(
            "<p>Stop receiving payment reminders by email at this address?</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>\
             <p>Invoices stay due; the business may still contact you in other ways.</p>"
        ),
    )
}

/// The one-click POST (from the mail client, without cookies, or from the
/// page's button). Answers directly, never with a redirect.
async fn unsubscribe(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let store = Arc::clone(&state.store);
    let now = state.clock.now();
    let result = tokio::task::spawn_blocking(move || store.unsubscribe(&token, now)).await;
    match result {
        Ok(Ok(Some(done))) => page(
            StatusCode::OK,
            "Unsubscribed",
            &format!(
                "<p>{} will no longer receive payment reminders by email.</p>",
                escape(&done.address)
            ),
        ),
        Ok(Ok(None)) => page(
            StatusCode::NOT_FOUND,
            "Link not recognised",
            "<p>This unsubscribe link is not valid. Please use the link from the email you received.</p>",
        ),
        _ => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "<p>The request could not be completed. Please try again later.</p>",
        ),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    secure(&mut r);
    r
}

/// A complete HTML page with no scripts, styles or outside resources.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>\n"
    );
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    secure(&mut r);
    r
}

/// Security headers every response carries: nothing may run, embed or leak.
fn secure(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// HTML-escapes text for element content and quoted attributes. Five
/// characters; a templating engine for two short pages would be more code.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape(r#"<a href="x">O'Brien & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Brien &amp; co&lt;/a&gt;"
        );
    }
}
