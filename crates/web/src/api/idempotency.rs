//! `Idempotency-Key` for POST requests.
//!
//! A client that is unsure whether a POST went through (a timeout, a lost
//! connection) sends it again with the same key. The first successful reply
//! to a key is stored per organization (`AccountStore::save_idempotent_reply`)
//! with the SHA-256 of method, path and body; the same key with the same
//! request gets that reply again, marked `Idempotent-Replayed: true`, and
//! nothing is done twice; the same key with another request is refused
//! (422). Failed requests change nothing and are not stored, so they can be
//! retried with the same key once corrected. While a request with a key is
//! running, a second one with the same key gets 409.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use arflow_store::IdempotentReply;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::extract::{ApiError, idempotency_key};
use crate::AppState;
use crate::access::Caller;

/// A successful write's reply: status, `Location`, JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: serde_json::Value,
}

impl Reply {
    pub fn created(location: String, body: impl serde::Serialize) -> Result<Reply, ApiError> {
        Ok(Reply {
            status: StatusCode::CREATED,
            location: Some(location),
            body: to_value(body)?,
        })
    }

    pub fn ok(body: impl serde::Serialize) -> Result<Reply, ApiError> {
        Ok(Reply {
            status: StatusCode::OK,
            location: None,
            body: to_value(body)?,
        })
    }

    fn into_response(self, replayed: bool) -> Response {
        let text = serde_json::to_string(&self.body).unwrap_or_else(|_| "null".to_string());
        let mut r = (self.status, text).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(loc) = self
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            h.insert(header::LOCATION, loc);
        }
        if replayed {
            h.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        r
    }
}

fn to_value(body: impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(body).map_err(|e| {
        ApiError::App(crate::problem::AppError::Internal(format!(
            "could not encode the reply: {e}"
        )))
    })
}

/// SHA-256 (hex) of `METHOD path?query`, a newline and the body.
pub fn request_hash(method: &Method, uri: &Uri, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b" ");
    h.update(
        uri.path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .as_bytes(),
    );
    h.update(b"\n");
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

static IN_FLIGHT: Mutex<Option<HashSet<(i64, String)>>> = Mutex::new(None);

/// Marks (org, key) as running until dropped.
struct Running {
    org: i64,
    key: String,
}

impl Running {
    fn start(org: i64, key: &str) -> Option<Running> {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        let set = set.get_or_insert_with(HashSet::new);
        set.insert((org, key.to_string())).then(|| Running {
            org,
            key: key.to_string(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = set.as_mut() {
            set.remove(&(self.org, std::mem::take(&mut self.key)));
        }
    }
}

/// What is stored: the reply's body and its `Location`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    location: Option<String>,
    body: serde_json::Value,
}

/// Runs `write` once per `Idempotency-Key` (when the request has one).
pub async fn once<F, Fut>(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    write: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    let key = match idempotency_key(headers) {
        Ok(Some(k)) => k,
        Ok(None) => {
            return match write().await {
                Ok(r) => r.into_response(false),
                Err(e) => e.into_response(),
            };
        }
        Err(e) => return e.into_response(),
    };
    let org = caller.org;
    let Some(_running) = Running::start(org, &key) else {
        return ApiError::conflict(
            "a request with this Idempotency-Key is still being processed; retry when it has finished",
        )
        .into_response();
    };
    let hash = request_hash(method, uri, body);
    let k = key.clone();
    let stored = match app
        .blocking(move |store| Ok(store.idempotent_reply(org, &k)?))
        .await
    {
        Ok(s) => s,
        Err(e) => return ApiError::App(e).into_response(),
    };
    if let Some(prev) = stored {
        if prev.request_hash != hash {
            return ApiError::invalid(
                "Idempotency-Key",
                Some(&key),
                "this key was already used for a different request (another method, path or body); use a new key",
            )
            .into_response();
        }
        let status = StatusCode::from_u16(prev.status).unwrap_or(StatusCode::OK);
        let reply = match serde_json::from_str::<Stored>(&prev.body) {
            Ok(s) => Reply {
                status,
                location: s.location,
                body: s.body,
            },
            Err(_) => Reply {
                status,
                location: None,
                body: serde_json::from_str(&prev.body).unwrap_or(serde_json::Value::Null),
            },
        };
        return reply.into_response(true);
    }
    let reply = match write().await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let saved = IdempotentReply {
        request_hash: hash,
        status: reply.status.as_u16(),
        body: serde_json::to_string(&Stored {
            location: reply.location.clone(),
            body: reply.body.clone(),
        })
        .unwrap_or_default(),
        created_at: app.clock.now(),
    };
    // The write is committed: failing to remember the reply must not turn
    // it into an error (a retry would then find the record and get 409).
    if let Err(e) = app
        .blocking(move |store| Ok(store.save_idempotent_reply(org, &key, &saved)?))
        .await
    {
        tracing::warn!(error = %e, "could not store the reply for an Idempotency-Key");
    }
    reply.into_response(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_method_path_and_body() {
        let u: Uri = "/api/v1/holds".parse().unwrap();
        let a = request_hash(&Method::POST, &u, b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_hash(&Method::POST, &u, b"{}"));
        assert_ne!(a, request_hash(&Method::POST, &u, b"{ }"));
        assert_ne!(
            a,
            request_hash(&Method::POST, &"/api/v1/disputes".parse().unwrap(), b"{}")
        );
    }

    #[test]
    fn one_request_per_key_at_a_time() {
        let a = Running::start(1, "k").expect("first");
        assert!(Running::start(1, "k").is_none());
        assert!(Running::start(2, "k").is_some());
        drop(a);
        assert!(Running::start(1, "k").is_some());
    }
}
