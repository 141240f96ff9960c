//! The REST API under `/api/v1`, for programs: JSON in and out, bearer API
//! tokens only (`Authorization: Bearer <token>`; the access middleware
//! checks the token, the role each route declares below and, for POST, the
//! token's write scope), every error an RFC 9457 problem document, every
//! list cursor-paginated (`page.rs`), every POST safe to retry with an
//! `Idempotency-Key` (`idempotency.rs`). The OpenAPI 3.1 document is built
//! from the handlers' annotations (`doc.rs`), served at `/api/openapi.json`
//! and committed as docs/openapi.json. The guide is docs/api.md.
//!
//! - `ledger.rs`: customer, contact, invoice, credit-note, payment and
//!   allocation reads, from the in-memory ledger view (`cache.rs`) and the
//!   API's index of it (`index.rs`);
//! - `ledger_write.rs`: creating those (ADMIN), validated with the CSV
//!   importer's row rules (`validate.rs`), written with one `Store::apply`;
//! - `dunning.rs`: holds, disputes, promises, tasks, notes (COLLECTOR to
//!   change) and the outbox;
//! - `reports.rs`: the summary and aging reports, in the command line's JSON
//!   (`report_json.rs`, shared with `arflow report`).

mod doc;
pub mod dto;
mod dunning;
pub mod extract;
mod idempotency;
mod index;
mod ledger;
mod ledger_write;
pub mod page;
pub mod report_json;
mod reports;
mod validate;

use axum::http::Method;

pub use doc::{ApiDoc, openapi, openapi_json};

use crate::routes::{ADMIN, COLLECTOR, PUBLIC, Route, VIEWER};

pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        Route::api(M::GET, "/api/openapi.json", PUBLIC, doc::serve_openapi),
        // Customers, contacts, notes.
        Route::api(M::GET, "/api/v1/customers", VIEWER, ledger::list_customers),
        Route::api(
            M::POST,
            "/api/v1/customers",
            ADMIN,
            ledger_write::create_customer,
        ),
        Route::api(
            M::GET,
            "/api/v1/customers/{key}",
            VIEWER,
            ledger::get_customer,
        ),
        Route::api(
            M::GET,
            "/api/v1/customers/{key}/notes",
            VIEWER,
            dunning::list_notes,
        ),
        Route::api(
            M::POST,
            "/api/v1/customers/{key}/notes",
            COLLECTOR,
            dunning::create_note,
        ),
        Route::api(M::GET, "/api/v1/contacts", VIEWER, ledger::list_contacts),
        Route::api(
            M::POST,
            "/api/v1/contacts",
            ADMIN,
            ledger_write::create_contact,
        ),
        Route::api(
            M::GET,
            "/api/v1/contacts/{key}",
            VIEWER,
            ledger::get_contact,
        ),
        // Invoices, credit notes, payments, allocations.
        Route::api(M::GET, "/api/v1/invoices", VIEWER, ledger::list_invoices),
        Route::api(
            M::POST,
            "/api/v1/invoices",
            ADMIN,
            ledger_write::create_invoice,
        ),
        Route::api(
            M::GET,
            "/api/v1/invoices/{number}",
            VIEWER,
            ledger::get_invoice,
        ),
        Route::api(
            M::GET,
            "/api/v1/credit-notes",
            VIEWER,
            ledger::list_credit_notes,
        ),
        Route::api(
            M::POST,
            "/api/v1/credit-notes",
            ADMIN,
            ledger_write::create_credit_note,
        ),
        Route::api(
            M::GET,
            "/api/v1/credit-notes/{number}",
            VIEWER,
            ledger::get_credit_note,
        ),
        Route::api(M::GET, "/api/v1/payments", VIEWER, ledger::list_payments),
        Route::api(
            M::POST,
            "/api/v1/payments",
            ADMIN,
            ledger_write::create_payment,
        ),
        Route::api(
            M::GET,
            "/api/v1/payments/{key}",
            VIEWER,
            ledger::get_payment,
        ),
        Route::api(
            M::GET,
            "/api/v1/allocations",
            VIEWER,
            ledger::list_allocations,
        ),
        Route::api(
            M::POST,
            "/api/v1/allocations",
            ADMIN,
            ledger_write::create_allocation,
        ),
        Route::api(
            M::GET,
            "/api/v1/allocations/{id}",
            VIEWER,
            ledger::get_allocation,
        ),
        // Holds, disputes, promises, tasks.
        Route::api(M::GET, "/api/v1/holds", VIEWER, dunning::list_holds),
        Route::api(M::POST, "/api/v1/holds", COLLECTOR, dunning::create_hold),
        Route::api(M::GET, "/api/v1/holds/{id}", VIEWER, dunning::get_hold),
        Route::api(
            M::POST,
            "/api/v1/holds/{id}/end",
            COLLECTOR,
            dunning::end_hold,
        ),
        Route::api(M::GET, "/api/v1/disputes", VIEWER, dunning::list_disputes),
        Route::api(
            M::POST,
            "/api/v1/disputes",
            COLLECTOR,
            dunning::create_dispute,
        ),
        Route::api(
            M::GET,
            "/api/v1/disputes/{id}",
            VIEWER,
            dunning::get_dispute,
        ),
        Route::api(
            M::POST,
            "/api/v1/disputes/{id}/resolve",
            COLLECTOR,
            dunning::resolve_dispute,
        ),
        Route::api(M::GET, "/api/v1/promises", VIEWER, dunning::list_promises),
        Route::api(
            M::POST,
            "/api/v1/promises",
            COLLECTOR,
            dunning::create_promise,
        ),
        Route::api(
            M::GET,
            "/api/v1/promises/{id}",
            VIEWER,
            dunning::get_promise,
        ),
        Route::api(
            M::POST,
            "/api/v1/promises/{id}/cancel",
            COLLECTOR,
            dunning::cancel_promise,
        ),
        Route::api(M::GET, "/api/v1/tasks", VIEWER, dunning::list_tasks),
        Route::api(M::GET, "/api/v1/tasks/{id}", VIEWER, dunning::get_task),
        Route::api(
            M::POST,
            "/api/v1/tasks/{id}/complete",
            COLLECTOR,
            dunning::complete_task,
        ),
        Route::api(
            M::POST,
            "/api/v1/tasks/{id}/assign",
            COLLECTOR,
            dunning::assign_task,
        ),
        Route::api(
            M::POST,
            "/api/v1/tasks/{id}/snooze",
            COLLECTOR,
            dunning::snooze_task,
        ),
        // The outbox and reports.
        Route::api(M::GET, "/api/v1/messages", VIEWER, dunning::list_messages),
        Route::api(
            M::GET,
            "/api/v1/messages/{id}",
            VIEWER,
            dunning::get_message,
        ),
        Route::api(
            M::GET,
            "/api/v1/reports/summary",
            VIEWER,
            reports::summary_report,
        ),
        Route::api(
            M::GET,
            "/api/v1/reports/aging",
            VIEWER,
            reports::aging_report,
        ),
    ]
}
