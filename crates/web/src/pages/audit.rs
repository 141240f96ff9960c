//! The audit log: every event the store appended (ledger changes, dunning,
//! users, settings), newest first, filtered by who, what and which record,
//! paged by event id (`before`), so a page stays the same while new events
//! arrive and paging deep costs one index range scan.

use arflow_domain::model::Event;
use arflow_store::EventFilter;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::dunning::{
    PAGE_SIZE, customer_href, given, href, invoice_href, local, organization, policy_href, zone,
};
use crate::AppState;
use crate::access::Caller;
use crate::problem::PageError;
use crate::routes::{Route, VIEWER};

pub fn routes() -> Vec<Route> {
    vec![Route::page(Method::GET, "/audit", VIEWER, audit_page)]
}

/// Kinds offered as filters (any prefix can be typed).
const KIND_PREFIXES: [&str; 22] = [
    "customer.",
    "contact.",
    "invoice.",
    "credit_note.",
    "payment.",
    "allocation.",
    "fx_rate.",
    "note.",
    "hold.",
    "dispute.",
    "promise.",
    "task.",
    "charge.",
    "message.",
    "dunning.",
    "dunning_settings.",
    "policy.",
    "bounce.",
    "organization.",
    "user.",
    "api_token.",
    "model.",
];

/// Entity types offered as filters.
const ENTITY_TYPES: [&str; 16] = [
    "customer",
    "contact",
    "invoice",
    "credit_note",
    "payment",
    "allocation",
    "note",
    "hold",
    "dispute",
    "promise",
    "task",
    "charge",
    "message",
    "policy",
    "user",
    "api_token",
];

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    kind: Option<String>,
    customer: Option<String>,
    entity_type: Option<String>,
    entity_key: Option<String>,
    before: Option<String>,
}

#[derive(Serialize)]
struct Row {
    id: i64,
    at: String,
    when: String,
    actor: String,
    kind: String,
    /// The part before the first dot ("invoice"), for styling.
    family: String,
    summary: String,
    entity_type: String,
    entity_key: String,
    entity_href: Option<String>,
    customer: Option<String>,
    customer_href: Option<String>,
    data: Option<String>,
}

/// Where an event's record can be looked at, if it has a page.
fn entity_link(e: &Event, admin: bool) -> Option<String> {
    match e.entity_type.as_str() {
        "customer" => Some(customer_href(&e.entity_key)),
        "invoice" => Some(invoice_href(&e.entity_key)),
        "policy" => Some(policy_href(&e.entity_key)),
        "dunning_settings" => Some("/dunning".to_string()),
        "message" => Some(href(
            "/dunning/outbox",
            &[("customer", e.customer.as_deref().unwrap_or(""))],
        )),
        "user" | "api_token" | "organization" if admin => Some("/settings".to_string()),
        _ => None,
    }
}

fn row(e: &Event, tz: &jiff::tz::TimeZone, admin: bool) -> Row {
    let data = match &e.data {
        serde_json::Value::Null => None,
        serde_json::Value::Object(m) if m.is_empty() => None,
        v => serde_json::to_string_pretty(v).ok(),
    };
    Row {
        id: e.id,
        at: e.recorded_at.to_string(),
        when: local(e.recorded_at, tz),
        actor: e.actor.clone(),
        family: e.kind.split('.').next().unwrap_or("").to_string(),
        kind: e.kind.clone(),
        summary: e.summary.clone(),
        entity_href: entity_link(e, admin),
        entity_type: e.entity_type.clone(),
        entity_key: e.entity_key.clone(),
        customer_href: e.customer.as_deref().map(customer_href),
        customer: e.customer.clone(),
        data,
    }
}

async fn audit_page(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let actor = given(&q.actor).unwrap_or_default();
    let kind = given(&q.kind).unwrap_or_default();
    let customer = given(&q.customer).unwrap_or_default();
    let entity_type = given(&q.entity_type).unwrap_or_default();
    let entity_key = given(&q.entity_key).unwrap_or_default();
    let before_text = given(&q.before).unwrap_or_default();
    let mut problems = Vec::new();
    let before = if before_text.is_empty() {
        None
    } else {
        match before_text.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                problems.push(format!(
                    "before '{before_text}' is not an event number: showing the newest events"
                ));
                None
            }
        }
    };
    let some = |s: &String| (!s.is_empty()).then(|| s.clone());
    let filter = EventFilter {
        customer: some(&customer),
        entity_type: some(&entity_type),
        entity_key: some(&entity_key),
        kind_prefix: some(&kind),
        actor: some(&actor),
        before_id: before,
        limit: Some(PAGE_SIZE as u32 + 1),
    };
    let org_id = caller.org;
    let (org, events) = app
        .blocking(move |store| {
            let org = organization(store, org_id)?;
            let events = store.events(org_id, &filter)?;
            Ok((org, events))
        })
        .await?;
    let tz = zone(&org);
    let admin = caller.can(arflow_store::Role::Admin);
    let has_older = events.len() > PAGE_SIZE;
    let rows: Vec<Row> = events
        .iter()
        .take(PAGE_SIZE)
        .map(|e| row(e, &tz, admin))
        .collect();
    let link = |before: &str| {
        href(
            "/audit",
            &[
                ("actor", actor.as_str()),
                ("kind", kind.as_str()),
                ("customer", customer.as_str()),
                ("entity_type", entity_type.as_str()),
                ("entity_key", entity_key.as_str()),
                ("before", before),
            ],
        )
    };
    let older = if has_older {
        rows.last().map(|r| link(&r.id.to_string()))
    } else {
        None
    };
    let newest = before.is_some().then(|| link(""));
    let summary = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) => format!(
            "Events #{} to #{}{}",
            a.id,
            b.id,
            if before.is_some() { "" } else { " (newest)" }
        ),
        _ => "No events".to_string(),
    };
    let filtered = [&actor, &kind, &customer, &entity_type, &entity_key]
        .iter()
        .any(|s| !s.is_empty());
    // A bad `before` (a link parameter, not something a person typed) only
    // falls back to the newest events, so the page answers 200.
    let r = app.views.render(
        "audit.html",
        super::chrome(
            &caller,
            &org.name,
            "audit",
            "Audit log",
            None,
            context! {
                problems => problems,
                actor => actor,
                kind => kind,
                customer => customer,
                entity_type => entity_type,
                entity_key => entity_key,
                kinds => KIND_PREFIXES,
                entity_types => ENTITY_TYPES,
                filtered => filtered,
                events => rows,
                newest => newest,
                older => older,
                summary => summary,
                zone => org.time_zone,
            },
        ),
    )?;
    Ok(r)
}
