//! The table of every route: path, method, who may use it, and whether it
//! answers people or programs. The router is built from this table, the
//! access middleware is attached from it, and the route-access test walks
//! it, so a route cannot exist without a declared access.

use arflow_store::Role;
use axum::Router;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::AppState;
use crate::access::{Access, Kind, enforce};

/// One route.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub kind: Kind,
    handler: MethodRouter<AppState>,
}

impl Route {
    pub fn new<H, T>(
        kind: Kind,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        Route {
            method,
            path,
            access,
            kind,
            handler: on(filter, handler),
        }
    }

    /// A page route.
    pub fn page<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Route::new(Kind::Page, method, path, access, handler)
    }

    /// An API route.
    pub fn api<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Route::new(Kind::Api, method, path, access, handler)
    }
}

pub const PUBLIC: Access = Access::Public;
pub const VIEWER: Access = Access::Role(Role::Viewer);
pub const COLLECTOR: Access = Access::Role(Role::Collector);
pub const ADMIN: Access = Access::Role(Role::Admin);

/// Every route of the application.
pub fn table() -> Vec<Route> {
    let mut routes = vec![
        Route::page(Method::GET, "/healthz", PUBLIC, healthz),
        Route::page(Method::GET, "/metrics", PUBLIC, metrics),
        Route::page(Method::GET, "/assets/{file}", PUBLIC, crate::assets::asset),
        Route::page(
            Method::GET,
            "/u/{token}",
            PUBLIC,
            crate::unsubscribe::unsubscribe_page,
        ),
        Route::page(
            Method::POST,
            "/u/{token}",
            PUBLIC,
            crate::unsubscribe::unsubscribe,
        ),
        Route::page(Method::GET, "/login", PUBLIC, crate::session::login_page),
        Route::page(Method::POST, "/login", PUBLIC, crate::session::login),
        Route::page(Method::POST, "/logout", VIEWER, crate::session::logout),
    ];
    routes.extend(crate::pages::routes());
    routes.extend(crate::api::routes());
    routes
}

/// The application, built from [`table`].
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in table() {
        let (access, kind) = (route.access, route.kind);
        let guarded = route
            .handler
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                move |s: State<AppState>,
                      req: axum::extract::Request,
                      next: axum::middleware::Next| {
                    enforce(s, access, kind, req, next)
                },
            ));
        router = router.route(route.path, guarded);
    }
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::observe,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ))
        .with_state(state)
}

async fn not_found() -> Response {
    crate::views::bare_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "<p>There is no page at this address.</p><p><a href=\"/\">Back to the overview</a></p>",
    )
}

/// 200 when the database answers, 503 when it does not.
async fn healthz(State(app): State<AppState>) -> Response {
    match app
        .blocking(|store| Ok(store.default_organization()?))
        .await
    {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response(),
    }
}

/// Prometheus text exposition.
async fn metrics(State(app): State<AppState>) -> Response {
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
