//! The RFC 8058 one-click unsubscribe endpoint every reminder email links
//! to (`List-Unsubscribe: <BASE/u/TOKEN>`). Public: the recipient has no
//! account. POST works without cookies and answers directly, never with a
//! redirect; GET only shows a confirmation page (mail scanners follow links).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::AppState;
use crate::views::{bare_page, escape};

/// A GET must not unsubscribe: it shows a button that POSTs, as RFC 8058
/// section 3.2 asks of the page behind the link.
pub async fn unsubscribe_page(Path(token): Path<String>) -> Response {
    let action = format!("/u/{}", escape(&token));
    bare_page(
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
/// page's button).
pub async fn unsubscribe(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    let now = app.clock.now();
    let result = app
        .blocking(move |store| Ok(store.unsubscribe(&token, now)?))
        .await;
    match result {
        Ok(Some(done)) => bare_page(
            StatusCode::OK,
            "Unsubscribed",
            &format!(
                "<p>{} will no longer receive payment reminders by email.</p>",
                escape(&done.address)
            ),
        ),
        Ok(None) => bare_page(
            StatusCode::NOT_FOUND,
            "Link not recognised",
            "<p>This unsubscribe link is not valid. Please use the link from the email you received.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe failed");
            bare_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "<p>The request could not be completed. Please try again later.</p>",
            )
        }
    }
}
