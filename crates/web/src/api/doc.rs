//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the DTOs' schemas. Served at `GET /api/openapi.json` and
//! committed as docs/openapi.json (a test compares the two; run
//! `UPDATE_OPENAPI=1 cargo test -p arflow-web --test api openapi` after
//! changing the API).

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{dunning, ledger, ledger_write, reports};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "arflow API",
        version = "1",
        description = "The REST API of arflow, self-hosted accounts-receivable collections. \
            Authenticate with an API token (`Authorization: Bearer <token>`, created with \
            `arflow user token create`). Lists are cursor-paginated; POST requests accept an \
            `Idempotency-Key`; errors are RFC 9457 problem documents. See docs/api.md.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        serve_openapi,
        ledger::list_customers,
        ledger_write::create_customer,
        ledger::get_customer,
        dunning::list_notes,
        dunning::create_note,
        ledger::list_contacts,
        ledger_write::create_contact,
        ledger::get_contact,
        ledger::list_invoices,
        ledger_write::create_invoice,
        ledger::get_invoice,
        ledger::list_credit_notes,
        ledger_write::create_credit_note,
        ledger::get_credit_note,
        ledger::list_payments,
        ledger_write::create_payment,
        ledger::get_payment,
        ledger::list_allocations,
        ledger_write::create_allocation,
        ledger::get_allocation,
        dunning::list_holds,
        dunning::create_hold,
        dunning::get_hold,
        dunning::end_hold,
        dunning::list_disputes,
        dunning::create_dispute,
        dunning::get_dispute,
        dunning::resolve_dispute,
        dunning::list_promises,
        dunning::create_promise,
        dunning::get_promise,
        dunning::cancel_promise,
        dunning::list_tasks,
        dunning::get_task,
        dunning::complete_task,
        dunning::assign_task,
        dunning::snooze_task,
        dunning::list_messages,
        dunning::get_message,
        reports::summary_report,
        reports::aging_report,
    ),
    components(schemas(crate::problem::ProblemBody, crate::problem::FieldError)),
    modifiers(&Conventions),
    security(("bearer" = [])),
    tags(
        (name = "customers", description = "Customers, their contacts and notes"),
        (name = "invoices", description = "Invoices with today's open balance and state"),
        (name = "payments", description = "Payments, credit notes and their allocations to invoices"),
        (name = "collections", description = "Holds, disputes, promises to pay, tasks and the outbox"),
        (name = "reports", description = "The summary and aging reports"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: the bearer scheme and the problem replies
/// the access middleware and the extractors can give.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            "bearer".to_string(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token: `arflow user token create EMAIL --name N --scope read [--scope write]`"))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ProblemBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        let shared = [
            (
                "BadRequest",
                "The body is not valid JSON (RFC 9457 problem)",
            ),
            (
                "Unauthenticated",
                "No valid bearer token (RFC 9457 problem)",
            ),
            (
                "Forbidden",
                "The token's user lacks the role, or the token lacks the write scope (RFC 9457 problem)",
            ),
            (
                "Invalid",
                "A parameter or field is invalid; `errors` names each (RFC 9457 problem)",
            ),
            (
                "UnsupportedMediaType",
                "The body is not application/json (RFC 9457 problem)",
            ),
        ];
        for (name, description) in shared {
            components
                .responses
                .insert(name.to_string(), problem(description));
        }
        for (path, item) in api.paths.paths.iter_mut() {
            if path == "/api/openapi.json" {
                continue;
            }
            let ops = [(false, item.get.as_mut()), (true, item.post.as_mut())];
            for (is_post, op) in ops {
                let Some(op) = op else { continue };
                let mut add = |status: &str, name: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                };
                if is_post {
                    add("400", "BadRequest");
                    add("415", "UnsupportedMediaType");
                }
                add("401", "Unauthenticated");
                add("403", "Forbidden");
                add("422", "Invalid");
            }
        }
    }
}

/// The document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as committed in docs/openapi.json: pretty, with a final newline.
pub fn openapi_json() -> String {
    let mut s = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn serve_openapi() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(openapi_json).clone();
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
