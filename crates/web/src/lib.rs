//! arflow's web application: server-rendered pages for people, a JSON REST
//! API for programs, and the endpoints outgoing email points at.
//!
//! How a request flows (see `routes.rs`, the one table of every route):
//! `middleware.rs` gives it a request id, times it for `/metrics` and adds
//! the security headers; `access.rs` finds the caller (session cookie for
//! pages, bearer token for the API), enforces the route's role and, for
//! state-changing requests, the CSRF token; the handler then runs store
//! calls on Tokio's blocking pool (the store is synchronous) and renders a
//! template (`views.rs`, MiniJinja, autoescaped) or JSON.
//!
//! Every handler works inside the caller's organization (`Caller::org`):
//! nothing a caller sends can name another organization.

pub mod access;
pub mod api;
pub mod assets;
pub mod cache;
pub mod charts;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod problem;
pub mod routes;
pub mod secrets;
pub mod session;
pub mod unsubscribe;
pub mod views;

use std::future::Future;
use std::sync::Arc;

use arflow_domain::analytics::summary::SummaryConfig;
use arflow_domain::clock::Clock;
use arflow_store::{Store, StoreError};
use jiff::SignedDuration;

/// How the server was configured (from `arflow.toml` and the command line).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The report settings `arflow report summary` uses, so the overview
    /// shows the same numbers.
    pub summary: SummaryConfig,
    /// Mark cookies `Secure` (the server is reached over HTTPS, directly or
    /// behind a proxy).
    pub secure_cookies: bool,
    /// A session ends after this long without a request.
    pub session_idle: SignedDuration,
    /// Largest accepted request body (CSV uploads).
    pub max_body_bytes: usize,
    /// How outgoing email and SMS are configured, for the settings page,
    /// secrets already replaced by "set" / "not set".
    pub delivery: Vec<(String, String)>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            summary: SummaryConfig::default(),
            secure_cookies: false,
            session_idle: SignedDuration::from_hours(12),
            max_body_bytes: 20 * 1024 * 1024,
            delivery: Vec::new(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<WebConfig>,
    pub metrics: Arc<metrics::Metrics>,
    pub cache: Arc<cache::LedgerCache>,
    pub limiter: Arc<session::IpLimiter>,
    pub views: Arc<views::Views>,
    pub imports: Arc<pages::import::PendingImports>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: WebConfig) -> AppState {
        AppState {
            store,
            clock,
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
            cache: Arc::new(cache::LedgerCache::default()),
            limiter: Arc::new(session::IpLimiter::default()),
            views: Arc::new(views::Views::new()),
            imports: Arc::new(pages::import::PendingImports::new()),
        }
    }

    /// Runs store work on the blocking pool.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, problem::AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, problem::AppError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| problem::AppError::Internal(format!("a background task failed: {e}")))?
    }
}

impl From<StoreError> for problem::AppError {
    fn from(e: StoreError) -> Self {
        problem::AppError::from_store(e)
    }
}

pub use routes::router;

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
