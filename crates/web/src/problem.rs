//! Errors, mapped once: to RFC 9457 problem details (`application/problem+json`)
//! for the API, to a plain error page for people.

use arflow_store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid field of a request: where, what was sent, why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field (JSON pointer for JSON bodies, the parameter name otherwise).
    pub field: String,
    /// The value sent, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &str, value: Option<&str>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            value: value.map(str::to_string),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("you need to log in")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: &str, value: Option<&str>, reason: impl Into<String>) -> AppError {
        let e = FieldError::new(field, value, reason);
        AppError::Invalid {
            detail: format!("{}: {}", e.field, e.reason),
            errors: vec![e],
        }
    }

    pub fn from_store(e: StoreError) -> AppError {
        match e {
            StoreError::NotFound { .. } => AppError::NotFound(e.to_string()),
            StoreError::UnknownReference { .. } => AppError::Invalid {
                detail: e.to_string(),
                errors: Vec::new(),
            },
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::Constraint { message, .. } => AppError::Conflict(message),
            StoreError::OverAllocated { .. } | StoreError::CurrencyMismatch { .. } => {
                AppError::Conflict(e.to_string())
            }
            other => AppError::Internal(other.to_string()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            AppError::NotFound(_) => "not-found",
            AppError::Invalid { .. } => "invalid-request",
            AppError::Conflict(_) => "conflict",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Forbidden(_) => "forbidden",
            AppError::TooManyRequests { .. } => "too-many-requests",
            AppError::Internal(_) => "internal",
        }
    }

    /// What is shown to the caller: internal details stay in the log.
    pub fn public_detail(&self) -> String {
        match self {
            AppError::Internal(_) => {
                "The request could not be completed; the server log has the details.".to_string()
            }
            other => other.to_string(),
        }
    }

    fn log(&self) {
        if let AppError::Internal(m) = self {
            tracing::error!(error = %m, "request failed");
        }
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// A URI naming the kind of problem (`/problems/<slug>`, relative to the server).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Invalid fields, for `invalid-request`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answered as `application/problem+json`.
#[derive(Debug)]
pub struct Problem(pub AppError);

impl<E: Into<AppError>> From<E> for Problem {
    fn from(e: E) -> Self {
        Problem(e.into())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let e = self.0;
        e.log();
        let status = e.status();
        let body = ProblemBody {
            kind: format!("/problems/{}", e.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: e.public_detail(),
            errors: match &e {
                AppError::Invalid { errors, .. } => errors.clone(),
                _ => Vec::new(),
            },
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_string());
        let mut r = (status, json).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        retry_after(&e, &mut r);
        if matches!(e, AppError::Unauthenticated) {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"arflow\""),
            );
        }
        r
    }
}

/// An error answered as an HTML page (for people).
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        e.log();
        let status = e.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let mut detail = crate::views::escape(&e.public_detail());
        if let AppError::Invalid { errors, .. } = &e {
            for f in errors {
                detail.push_str(&format!(
                    "<br>{}{}: {}",
                    crate::views::escape(&f.field),
                    f.value
                        .as_deref()
                        .map(|v| format!(" = '{}'", crate::views::escape(v)))
                        .unwrap_or_default(),
                    crate::views::escape(&f.reason)
                ));
            }
        }
        let mut r = crate::views::bare_page(
            status,
            title,
            &format!("<p>{detail}</p><p><a href=\"/\">Back to the overview</a></p>"),
        );
        retry_after(&e, &mut r);
        r
    }
}

fn retry_after(e: &AppError, r: &mut Response) {
    if let AppError::TooManyRequests { retry_after_secs } = e
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
}
