//! Request parsing for the API: the body, the query string and path
//! parameters, each mapped to an RFC 9457 problem that names the field and
//! says what is wrong (axum's own rejections answer in plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::problem::{AppError, FieldError, Problem, ProblemBody};

/// An API error: an [`AppError`] (answered by [`Problem`]), or a request the
/// server could not read at all (400, 413, 415).
#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    Unreadable {
        status: StatusCode,
        slug: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
}

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::App(e.into())
    }
}

impl ApiError {
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::App(AppError::NotFound(what.into()))
    }

    pub fn conflict(what: impl Into<String>) -> ApiError {
        ApiError::App(AppError::Conflict(what.into()))
    }

    /// 422 with one invalid field.
    pub fn invalid(field: &str, value: Option<&str>, reason: impl Into<String>) -> ApiError {
        ApiError::App(AppError::invalid(field, value, reason))
    }

    /// 422 with every invalid field (at least one).
    pub fn fields(errors: Vec<FieldError>) -> ApiError {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", display_field(&one.field), one.reason),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError::App(AppError::Invalid { detail, errors })
    }

    fn malformed(detail: impl Into<String>, errors: Vec<FieldError>) -> ApiError {
        ApiError::Unreadable {
            status: StatusCode::BAD_REQUEST,
            slug: "malformed-request",
            detail: detail.into(),
            errors,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::App(e) => e.status(),
            ApiError::Unreadable { status, .. } => *status,
        }
    }
}

fn display_field(f: &str) -> &str {
    if f.is_empty() { "body" } else { f }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::App(e) => Problem(e).into_response(),
            ApiError::Unreadable {
                status,
                slug,
                detail,
                errors,
            } => {
                let body = ProblemBody {
                    kind: format!("/problems/{slug}"),
                    title: status.canonical_reason().unwrap_or("Error").to_string(),
                    status: status.as_u16(),
                    detail,
                    errors,
                };
                let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_string());
                let mut r = (status, json).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                );
                r
            }
        }
    }
}

/// The raw body of a POST, with its content type checked: JSON, or empty.
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?").to_string());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::Unreadable {
                status: e.status(),
                slug: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "body-too-large"
                } else {
                    "malformed-request"
                },
                detail: format!("the request body could not be read: {}", e.body_text()),
                errors: Vec::new(),
            })?;
        if !bytes.iter().all(u8::is_ascii_whitespace) && !is_json(content_type.as_deref()) {
            return Err(ApiError::Unreadable {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                slug: "unsupported-media-type",
                detail: format!(
                    "send the body as JSON with Content-Type: application/json (it was {})",
                    content_type.as_deref().unwrap_or("not given")
                ),
                errors: vec![FieldError::new(
                    "Content-Type",
                    content_type.as_deref(),
                    "must be application/json",
                )],
            });
        }
        Ok(ApiBody(bytes))
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body into `T`. Syntax errors are 400 with the line and
/// column; a value of the wrong type, a missing or an unknown field is 422
/// naming the field as a JSON pointer.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            "the request body is empty: send a JSON object",
            vec![FieldError::new("", None, "a JSON object is required")],
        ));
    }
    // Syntax first, so a body cut off half-way is 400 whatever it started with.
    let tree: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::malformed(
            format!("the request body is not valid JSON: {e}"),
            vec![FieldError::new("", None, format!("not valid JSON: {e}"))],
        )
    })?;
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let reason = e.inner().to_string();
        let mut pointer = pointer_of(e.path());
        // Missing and unknown fields are reported at their parent.
        if let Some(name) = backticked(&reason)
            && (reason.starts_with("missing field") || reason.starts_with("unknown field"))
        {
            let segment = format!("/{}", escape_pointer(name));
            if !pointer.ends_with(&segment) {
                pointer.push_str(&segment);
            }
        }
        ApiError::fields(vec![FieldError::new(&pointer, None, friendlier(&reason))])
    })
}

/// A body that carries nothing: empty, or an empty JSON object.
pub fn parse_empty(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    parse_json::<Nothing>(body).map(|_| ())
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut p = String::new();
    for seg in path {
        match seg {
            Segment::Seq { index } => p.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                p.push('/');
                p.push_str(&escape_pointer(key));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    p
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn backticked(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

fn friendlier(reason: &str) -> String {
    if reason.starts_with("missing field") {
        "required value is missing".to_string()
    } else if let Some(rest) = reason.strip_prefix("unknown field `") {
        let expected = rest.split_once(", expected ").map(|(_, e)| e);
        match expected {
            Some(e) => format!("unknown field (expected {})", e.replace('`', "")),
            None => "unknown field".to_string(),
        }
    } else {
        reason.to_string()
    }
}

/// The query string parsed into `T`: a struct of `Option<String>` fields
/// with `#[serde(deny_unknown_fields)]`, so the only failures are an unknown
/// or a repeated parameter. Handlers check the values themselves and report
/// them with [`ApiError::invalid`] naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<T>(q)
            .map(ApiQuery)
            .map_err(|e| {
                let msg = e.to_string();
                let field = backticked(&msg).unwrap_or("query").to_string();
                let reason = if msg.starts_with("unknown field") {
                    friendlier(&msg).replace("unknown field", "unknown parameter")
                } else if msg.starts_with("duplicate field") {
                    "given more than once".to_string()
                } else {
                    msg.clone()
                };
                ApiError::invalid(&field, None, reason)
            })
    }
}

/// One path parameter, percent-decoded.
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::malformed(e.body_text(), Vec::new()))
    }
}

/// The `Idempotency-Key` header, when sent.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    let ok = !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if !ok {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            v.to_str().ok(),
            "must be 1 to 255 visible ASCII characters (a UUID, for example)",
        ));
    }
    Ok(Some(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        amount: String,
    }

    fn field_errors(e: ApiError) -> (u16, Vec<FieldError>) {
        match e {
            ApiError::App(AppError::Invalid { errors, .. }) => (422, errors),
            ApiError::Unreadable { status, errors, .. } => (status.as_u16(), errors),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        let (s, e) = field_errors(parse_json::<Body>(br#"{"name": 5, "items": []}"#).unwrap_err());
        assert_eq!((s, e[0].field.as_str()), (422, "/name"));
        assert!(e[0].reason.contains("expected a string"), "{}", e[0].reason);
        let (_, e) = field_errors(
            parse_json::<Body>(br#"{"name": "a", "items": [{"amount": "1"}, {}]}"#).unwrap_err(),
        );
        assert_eq!(e[0].field, "/items/1/amount");
        assert_eq!(e[0].reason, "required value is missing");
        let (_, e) = field_errors(
            parse_json::<Body>(br#"{"name": "a", "items": [], "x/y": 1}"#).unwrap_err(),
        );
        assert_eq!(e[0].field, "/x~1y");
        assert_eq!(e[0].reason, "unknown field (expected name or items)");
        let (s, _) = field_errors(parse_json::<Body>(br#"{"name": "a""#).unwrap_err());
        assert_eq!(s, 400);
        let (s, _) =
            field_errors(parse_json::<Body>(br#"{"name": "a", "items": []} x"#).unwrap_err());
        assert_eq!(s, 400);
        let (s, _) = field_errors(parse_json::<Body>(b"  ").unwrap_err());
        assert_eq!(s, 400);
        assert!(parse_empty(b"").is_ok() && parse_empty(b"{}").is_ok());
        assert!(parse_empty(br#"{"a":1}"#).is_err());
    }

    #[test]
    fn content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("application/json; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}
