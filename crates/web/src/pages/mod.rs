//! The pages people use. Each module renders one area and declares its
//! routes; `chrome` gives every page the same frame (navigation, user,
//! CSRF token, flash message).

pub mod audit;
pub mod common;
pub mod customers;
pub mod dunning;
pub mod import;
pub mod invoices;
pub mod overview;
pub mod settings;
pub mod worklist;

use std::sync::Arc;

use arflow_store::Role;
use minijinja::Value;
use minijinja::value::merge_maps;
use serde::Serialize;

use crate::AppState;
use crate::access::Caller;
use crate::cache::LedgerView;
use crate::problem::AppError;
use crate::routes::Route;

pub fn routes() -> Vec<Route> {
    let mut r = Vec::new();
    r.extend(overview::routes());
    r.extend(invoices::routes());
    r.extend(customers::routes());
    r.extend(worklist::routes());
    r.extend(dunning::routes());
    r.extend(import::routes());
    r.extend(settings::routes());
    r.extend(audit::routes());
    r
}

#[derive(Serialize)]
struct NavItem {
    key: &'static str,
    label: &'static str,
    href: &'static str,
}

#[derive(Serialize)]
struct Me<'a> {
    email: &'a str,
    name: &'a str,
    role: &'static str,
    can_collect: bool,
    can_admin: bool,
}

/// The frame around a page's own context: `nav` is the active menu entry
/// ("overview", "invoices", ...), `flash` a confirmation to show.
pub fn chrome(
    caller: &Caller,
    org_name: &str,
    nav: &str,
    title: &str,
    flash: Option<&str>,
    page: Value,
) -> Value {
    let mut items = vec![
        NavItem {
            key: "overview",
            label: "Overview",
            href: "/",
        },
        NavItem {
            key: "invoices",
            label: "Invoices",
            href: "/invoices",
        },
        NavItem {
            key: "customers",
            label: "Customers",
            href: "/customers",
        },
        NavItem {
            key: "worklist",
            label: "Worklist",
            href: "/worklist",
        },
        NavItem {
            key: "dunning",
            label: "Dunning",
            href: "/dunning",
        },
        NavItem {
            key: "audit",
            label: "Audit log",
            href: "/audit",
        },
    ];
    if caller.can(Role::Admin) {
        items.push(NavItem {
            key: "import",
            label: "Import",
            href: "/import",
        });
        items.push(NavItem {
            key: "settings",
            label: "Settings",
            href: "/settings",
        });
    }
    let frame = minijinja::context! {
        nav => nav,
        title => title,
        org_name => org_name,
        nav_items => Value::from_serialize(&items),
        me => Value::from_serialize(Me {
            email: &caller.email,
            name: &caller.name,
            role: caller.role.as_str(),
            can_collect: caller.can(Role::Collector),
            can_admin: caller.can(Role::Admin),
        }),
        csrf => caller.csrf(),
        flash => flash,
        error => None::<String>,
    };
    merge_maps([page, frame])
}

/// The caller's ledger view (see `cache.rs`), on the blocking pool.
pub async fn ledger_view(app: &AppState, caller: &Caller) -> Result<Arc<LedgerView>, AppError> {
    ledger_view_of(app, caller.org).await
}

/// The ledger view of organization `org` (the caller's, always).
pub async fn ledger_view_of(app: &AppState, org: i64) -> Result<Arc<LedgerView>, AppError> {
    let now = app.clock.now();
    let aging = app.config.summary.aging.clone();
    let cache = Arc::clone(&app.cache);
    let metrics = Arc::clone(&app.metrics);
    app.blocking(move |store| {
        cache.view(store, org, now, &aging, || {
            metrics.cache_rebuilds.inc();
        })
    })
    .await
}

/// A fixed confirmation for `?ok=CODE` after a form was handled (a code,
/// not free text, so a link cannot make the page say anything).
pub fn flash(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "note_added" => "Note added.",
        "hold_created" => "Hold created: reminders are paused.",
        "hold_ended" => "Hold lifted: reminders resume.",
        "dispute_opened" => "Dispute opened: reminders for the invoice are paused.",
        "dispute_resolved" => "Dispute resolved.",
        "promise_added" => "Promise to pay recorded.",
        "promise_cancelled" => "Promise cancelled.",
        "task_done" => "Task completed.",
        "task_assigned" => "Task assigned.",
        "task_unassigned" => "Task unassigned.",
        "task_snoozed" => "Task snoozed.",
        "policy_saved" => "Policy saved.",
        "policy_created" => "Policy created: adjust its steps below.",
        "paused" => "All sending is paused.",
        "resumed" => "Sending resumed.",
        "imported" => "Import committed.",
        "settings_saved" => "Settings saved.",
        "user_created" => "User created.",
        "user_updated" => "User updated.",
        "token_revoked" => "API token revoked.",
        _ => return None,
    })
}
