//! What collectors work with: holds, disputes, promises to pay, tasks,
//! notes, and the outbox of reminders. Reads need VIEWER, changes COLLECTOR.

use arflow_domain::dunning::records::{
    Dispute as DDispute, Hold as DHold, MessageStatus, Promise as DPromise, Scope as DScope,
    TaskStatus,
};
use arflow_domain::model::Stored;
use arflow_domain::money::Money as DMoney;
use arflow_store::{Note as DNote, OutboxFilter, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use jiff::civil::Date;
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::{
    self, AssignTask, Dispute, Hold, Message, NewDispute, NewHold, NewNote, NewPromise, Note,
    Promise, ResolveDispute, SnoozeTask, Task,
};
use super::extract::{ApiBody, ApiError, ApiPath, ApiQuery, parse_empty, parse_json};
use super::idempotency::{Reply, once};
use super::ledger::{after_id, view_and_index};
use super::ledger_write::{actor, segment};
use super::page::{self, List, Page};
use super::validate::Errors;
use crate::AppState;
use crate::access::Caller;
use crate::cache::InvoiceState;
use crate::pages::ledger_view_of;
use crate::problem::ProblemBody;

async fn today(app: &AppState, caller: &Caller) -> Result<Date, ApiError> {
    Ok(ledger_view_of(app, caller.org).await?.today)
}

/// A numeric id from the path; anything else names nothing (404).
fn id_of(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("{what} '{raw}' was not found")))
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_bool_param(name: &str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    raw.map(|r| match r.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid(name, Some(r), "must be true or false")),
    })
    .transpose()
}

fn one_of<'a>(
    from: &[(&'a str, Option<&'a str>)],
    what: &str,
) -> Result<(&'a str, &'a str), ApiError> {
    let given: Vec<(&str, &str)> = from
        .iter()
        .filter_map(|(name, v)| v.map(|v| (*name, v)))
        .collect();
    match given.as_slice() {
        [one] => Ok(*one),
        _ => Err(ApiError::invalid(
            &format!("/{}", from[0].0),
            None,
            format!("give exactly one of {what}"),
        )),
    }
}

/// The scope of a hold or a promise, checked against the ledger.
async fn scope_of(
    app: &AppState,
    caller: &Caller,
    customer: Option<&str>,
    invoice: Option<&str>,
) -> Result<DScope, ApiError> {
    let (field, key) = one_of(
        &[("customer", customer), ("invoice", invoice)],
        "customer and invoice",
    )?;
    let (view, _) = view_and_index(app, caller).await?;
    match field {
        "customer" if view.customer(key).is_some() => Ok(DScope::Customer(key.to_string())),
        "invoice" if view.invoice_index.contains_key(key) => Ok(DScope::Invoice(key.to_string())),
        _ => Err(ApiError::invalid(
            &format!("/{field}"),
            Some(key),
            format!("unknown {field}"),
        )),
    }
}

// --- holds -------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HoldQuery {
    /// true: only holds pausing dunning now; false: only ended or expired ones.
    #[param(value_type = Option<bool>)]
    active: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List holds (by creation).
#[utoipa::path(get, path = "/api/v1/holds", tag = "collections", params(HoldQuery),
    responses((status = 200, description = "A page of holds", body = dto::HoldPage)))]
pub async fn list_holds(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HoldQuery>,
) -> Result<Json<Page<Hold>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Holds, q.cursor.as_deref())?;
    let active = parse_bool_param("active", q.active.as_deref())?;
    let today = today(&app, &caller).await?;
    let now = app.clock.now();
    let org = caller.org;
    let holds = app.blocking(move |store| Ok(store.holds(org)?)).await?;
    let items = after_id(&holds, |h| h.id, after)
        .iter()
        .filter(|h| active.is_none_or(|a| h.is_active(today, now) == a));
    Ok(Json(page::by_id(
        List::Holds,
        items,
        |h| h.id,
        None,
        limit,
        |h| dto::hold(h, today, now),
    )))
}

async fn find_hold(app: &AppState, org: i64, id: i64) -> Result<Stored<DHold>, ApiError> {
    app.blocking(move |store| Ok(store.holds(org)?.into_iter().find(|h| h.id == id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("hold '{id}' was not found")))
}

/// One hold.
#[utoipa::path(get, path = "/api/v1/holds/{id}", tag = "collections",
    params(("id" = i64, Path, description = "The hold's id")),
    responses((status = 200, description = "The hold", body = Hold),
        (status = 404, description = "No such hold in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn get_hold(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Hold>, ApiError> {
    let id = id_of("hold", &id)?;
    let h = find_hold(&app, caller.org, id).await?;
    let today = today(&app, &caller).await?;
    Ok(Json(dto::hold(&h, today, app.clock.now())))
}

/// Pause dunning for a customer or an invoice.
#[utoipa::path(post, path = "/api/v1/holds", tag = "collections", request_body = NewHold,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = Hold,
        headers(("Location" = String, description = "The new hold's URL")))))]
pub async fn create_hold(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewHold = parse_json(&body)?;
        let scope = scope_of(
            &app,
            &caller,
            input.customer.as_deref(),
            input.invoice.as_deref(),
        )
        .await?;
        let today = today(&app, &caller).await?;
        let mut errs = Errors::default();
        let reason = errs.text("/reason", &input.reason);
        let until = input.until.as_deref().and_then(|raw| {
            let d = errs.date("/until", raw)?;
            if d <= today {
                errs.add(
                    "/until",
                    Some(raw),
                    format!("must be after today ({today}): a hold ends on that day"),
                );
                return None;
            }
            Some(d)
        });
        errs.check()?;
        let now = app.clock.now();
        let hold = DHold {
            scope,
            reason: reason.unwrap_or_default(),
            created_at: now,
            created_by: actor(&caller),
            expires_on: until,
            ended_at: None,
            ended_by: None,
        };
        let org = caller.org;
        let h = hold.clone();
        let id = app
            .blocking(move |store| Ok(store.create_hold(org, &h, now)?))
            .await?;
        Reply::created(
            format!("/api/v1/holds/{id}"),
            dto::hold(&Stored { id, record: hold }, today, now),
        )
    })
    .await
}

/// End a hold: dunning resumes with the next run.
#[utoipa::path(post, path = "/api/v1/holds/{id}/end", tag = "collections",
    params(("id" = i64, Path, description = "The hold's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 200, description = "The ended hold", body = Hold),
        (status = 404, description = "No such hold in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The hold already ended", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn end_hold(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        parse_empty(&body)?;
        let id = id_of("hold", &id)?;
        let (org, who, now) = (caller.org, actor(&caller), app.clock.now());
        find_hold(&app, org, id).await?;
        app.blocking(move |store| Ok(store.end_hold(org, id, &who, now)?))
            .await?;
        let h = find_hold(&app, org, id).await?;
        Reply::ok(dto::hold(&h, today(&app, &caller).await?, now))
    })
    .await
}

// --- disputes ------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisputeQuery {
    /// open or resolved.
    status: Option<String>,
    /// Only disputes about this invoice.
    invoice: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List disputes (by creation).
#[utoipa::path(get, path = "/api/v1/disputes", tag = "collections", params(DisputeQuery),
    responses((status = 200, description = "A page of disputes", body = dto::DisputePage)))]
pub async fn list_disputes(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DisputeQuery>,
) -> Result<Json<Page<Dispute>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Disputes, q.cursor.as_deref())?;
    let open = match non_empty(&q.status) {
        None => None,
        Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                Some(other),
                "must be open or resolved",
            ));
        }
    };
    let invoice = non_empty(&q.invoice).map(str::to_string);
    let now = app.clock.now();
    let org = caller.org;
    let disputes = app.blocking(move |store| Ok(store.disputes(org)?)).await?;
    let items = after_id(&disputes, |d| d.id, after).iter().filter(|d| {
        open.is_none_or(|o| d.is_open(now) == o)
            && invoice.as_deref().is_none_or(|i| d.invoice == i)
    });
    Ok(Json(page::by_id(
        List::Disputes,
        items,
        |d| d.id,
        None,
        limit,
        |d| dto::dispute(d, now),
    )))
}

async fn find_dispute(app: &AppState, org: i64, id: i64) -> Result<Stored<DDispute>, ApiError> {
    app.blocking(move |store| Ok(store.disputes(org)?.into_iter().find(|d| d.id == id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dispute '{id}' was not found")))
}

/// One dispute.
#[utoipa::path(get, path = "/api/v1/disputes/{id}", tag = "collections",
    params(("id" = i64, Path, description = "The dispute's id")),
    responses((status = 200, description = "The dispute", body = Dispute),
        (status = 404, description = "No such dispute in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn get_dispute(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Dispute>, ApiError> {
    let id = id_of("dispute", &id)?;
    let d = find_dispute(&app, caller.org, id).await?;
    Ok(Json(dto::dispute(&d, app.clock.now())))
}

/// Open a dispute on an invoice: dunning on it pauses until resolved.
#[utoipa::path(post, path = "/api/v1/disputes", tag = "collections", request_body = NewDispute,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = Dispute,
            headers(("Location" = String, description = "The new dispute's URL"))),
        (status = 409, description = "The invoice already has an open dispute", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_dispute(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewDispute = parse_json(&body)?;
        let (view, _) = view_and_index(&app, &caller).await?;
        let mut errs = Errors::default();
        let invoice = errs.text("/invoice", &input.invoice);
        if let Some(i) = &invoice
            && !view.invoice_index.contains_key(i)
        {
            errs.add("/invoice", Some(i), "unknown invoice");
        }
        let reason = errs.text("/reason", &input.reason);
        errs.check()?;
        let now = app.clock.now();
        let d = DDispute {
            invoice: invoice.unwrap_or_default(),
            reason: reason.unwrap_or_default(),
            opened_at: now,
            opened_by: actor(&caller),
            resolved_at: None,
            resolved_by: None,
            resolution: None,
        };
        let org = caller.org;
        let dd = d.clone();
        let id = app
            .blocking(move |store| Ok(store.open_dispute(org, &dd, now)?))
            .await?;
        Reply::created(
            format!("/api/v1/disputes/{id}"),
            dto::dispute(&Stored { id, record: d }, now),
        )
    })
    .await
}

/// Resolve a dispute.
#[utoipa::path(post, path = "/api/v1/disputes/{id}/resolve", tag = "collections", request_body = ResolveDispute,
    params(("id" = i64, Path, description = "The dispute's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 200, description = "The resolved dispute", body = Dispute),
        (status = 404, description = "No such dispute in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The dispute is already resolved", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn resolve_dispute(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let id = id_of("dispute", &id)?;
        let input: ResolveDispute = parse_json(&body)?;
        let mut errs = Errors::default();
        let resolution = errs.text("/resolution", &input.resolution);
        errs.check()?;
        let resolution = resolution.unwrap_or_default();
        let (org, who, now) = (caller.org, actor(&caller), app.clock.now());
        find_dispute(&app, org, id).await?;
        app.blocking(move |store| Ok(store.resolve_dispute(org, id, &resolution, &who, now)?))
            .await?;
        Reply::ok(dto::dispute(&find_dispute(&app, org, id).await?, now))
    })
    .await
}

// --- promises ------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PromiseQuery {
    /// active, lapsed or cancelled.
    status: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List promises to pay (by creation).
#[utoipa::path(get, path = "/api/v1/promises", tag = "collections", params(PromiseQuery),
    responses((status = 200, description = "A page of promises", body = dto::PromisePage)))]
pub async fn list_promises(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PromiseQuery>,
) -> Result<Json<Page<Promise>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Promises, q.cursor.as_deref())?;
    let status = non_empty(&q.status).map(str::to_string);
    if let Some(s) = &status
        && !matches!(s.as_str(), "active" | "lapsed" | "cancelled")
    {
        return Err(ApiError::invalid(
            "status",
            Some(s),
            "must be active, lapsed or cancelled",
        ));
    }
    let today = today(&app, &caller).await?;
    let org = caller.org;
    let promises = app.blocking(move |store| Ok(store.promises(org)?)).await?;
    let items = after_id(&promises, |p| p.id, after).iter().filter(|p| {
        status
            .as_deref()
            .is_none_or(|s| dto::promise_status(p, today) == s)
    });
    Ok(Json(page::by_id(
        List::Promises,
        items,
        |p| p.id,
        None,
        limit,
        |p| dto::promise(p, today),
    )))
}

async fn find_promise(app: &AppState, org: i64, id: i64) -> Result<Stored<DPromise>, ApiError> {
    app.blocking(move |store| Ok(store.promises(org)?.into_iter().find(|p| p.id == id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("promise '{id}' was not found")))
}

/// One promise to pay.
#[utoipa::path(get, path = "/api/v1/promises/{id}", tag = "collections",
    params(("id" = i64, Path, description = "The promise's id")),
    responses((status = 200, description = "The promise", body = Promise),
        (status = 404, description = "No such promise in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn get_promise(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Promise>, ApiError> {
    let id = id_of("promise", &id)?;
    let p = find_promise(&app, caller.org, id).await?;
    Ok(Json(dto::promise(&p, today(&app, &caller).await?)))
}

/// Record a promise to pay: dunning pauses until the promised day plus grace.
#[utoipa::path(post, path = "/api/v1/promises", tag = "collections", request_body = NewPromise,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = Promise,
        headers(("Location" = String, description = "The new promise's URL")))))]
pub async fn create_promise(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewPromise = parse_json(&body)?;
        let scope = scope_of(
            &app,
            &caller,
            input.customer.as_deref(),
            input.invoice.as_deref(),
        )
        .await?;
        // The same rules as the customer page's promise form.
        let view = ledger_view_of(&app, caller.org).await?;
        let today = view.today;
        let mut errs = Errors::default();
        let expected_currency = match &scope {
            DScope::Invoice(number) => match view.invoice(number) {
                Some((_, row))
                    if !matches!(row.state, InvoiceState::Open | InvoiceState::Overdue) =>
                {
                    errs.add(
                        "/invoice",
                        Some(number),
                        format!(
                            "the invoice is {}: nothing is left to promise",
                            row.state.as_str().replace('_', " ")
                        ),
                    );
                    None
                }
                Some((inv, _)) => Some(inv.record.currency),
                None => None,
            },
            DScope::Customer(key) => view.customer(key).map(|c| c.record.currency),
        };
        let promised_on = errs.date("/promised_on", &input.promised_on);
        if let Some(d) = promised_on.filter(|d| *d < today) {
            errs.add(
                "/promised_on",
                Some(&d.to_string()),
                format!("is in the past (today is {today} in the organization's time zone)"),
            );
        }
        let amount = input.amount.as_ref().and_then(|m| {
            let currency = errs.currency("/amount/currency", &m.currency)?;
            if let Some(want) = expected_currency.filter(|w| *w != currency) {
                errs.add(
                    "/amount/currency",
                    Some(&m.currency),
                    format!("must be {}, the currency of what is promised", want.code()),
                );
                return None;
            }
            let minor = errs.positive_amount("/amount/amount", &m.amount, currency)?;
            Some(DMoney { minor, currency })
        });
        let note = errs.opt_text("/note", input.note.as_deref());
        if input.grace_days.is_some_and(|g| g > 90) {
            errs.add(
                "/grace_days",
                input.grace_days.map(|g| g.to_string()).as_deref(),
                "at most 90 days",
            );
        }
        errs.check()?;
        let org = caller.org;
        let grace_days = match input.grace_days {
            Some(g) => g,
            None => {
                app.blocking(move |store| Ok(store.dunning_settings(org)?.promise_grace_days))
                    .await?
            }
        };
        let now = app.clock.now();
        let p = DPromise {
            scope,
            amount,
            promised_on: promised_on.unwrap_or_default(),
            grace_days,
            made_at: now,
            made_by: actor(&caller),
            note,
            cancelled_at: None,
            cancelled_by: None,
        };
        let pp = p.clone();
        let id = app
            .blocking(move |store| Ok(store.create_promise(org, &pp, now)?))
            .await?;
        Reply::created(
            format!("/api/v1/promises/{id}"),
            dto::promise(&Stored { id, record: p }, today),
        )
    })
    .await
}

/// Cancel a promise: dunning resumes with the next run.
#[utoipa::path(post, path = "/api/v1/promises/{id}/cancel", tag = "collections",
    params(("id" = i64, Path, description = "The promise's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 200, description = "The cancelled promise", body = Promise),
        (status = 404, description = "No such promise in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The promise is already cancelled", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn cancel_promise(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        parse_empty(&body)?;
        let id = id_of("promise", &id)?;
        let (org, who, now) = (caller.org, actor(&caller), app.clock.now());
        find_promise(&app, org, id).await?;
        app.blocking(move |store| Ok(store.cancel_promise(org, id, &who, now)?))
            .await?;
        let p = find_promise(&app, org, id).await?;
        Reply::ok(dto::promise(&p, today(&app, &caller).await?))
    })
    .await
}

// --- tasks -----------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// open or done (default: both).
    status: Option<String>,
    /// A user's email, or `none` for unassigned tasks.
    assignee: Option<String>,
    /// Only tasks about this customer (key).
    customer: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List tasks (by creation).
#[utoipa::path(get, path = "/api/v1/tasks", tag = "collections", params(TaskQuery),
    responses((status = 200, description = "A page of tasks", body = dto::TaskPage)))]
pub async fn list_tasks(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> Result<Json<Page<Task>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Tasks, q.cursor.as_deref())?;
    let status = match non_empty(&q.status) {
        None => None,
        Some("open") => Some(TaskStatus::Open),
        Some("done") => Some(TaskStatus::Done),
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                Some(other),
                "must be open or done",
            ));
        }
    };
    let assignee = non_empty(&q.assignee).map(str::to_lowercase);
    let customer = non_empty(&q.customer).map(str::to_string);
    let org = caller.org;
    let include_done = status != Some(TaskStatus::Open);
    let tasks = app
        .blocking(move |store| Ok(store.tasks(org, include_done)?))
        .await?;
    let items = after_id(&tasks, |t| t.id, after).iter().filter(|t| {
        status.is_none_or(|s| t.status == s)
            && customer.as_deref().is_none_or(|c| t.customer == c)
            && match assignee.as_deref() {
                None => true,
                Some("none") => t.assignee.is_none(),
                Some(a) => t
                    .assignee
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(a)),
            }
    });
    Ok(Json(page::by_id(
        List::Tasks,
        items,
        |t| t.id,
        None,
        limit,
        dto::task,
    )))
}

async fn find_task(app: &AppState, org: i64, id: i64) -> Result<Task, ApiError> {
    app.blocking(move |store| Ok(store.tasks(org, true)?.into_iter().find(|t| t.id == id)))
        .await?
        .map(|t| dto::task(&t))
        .ok_or_else(|| ApiError::not_found(format!("task '{id}' was not found")))
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "collections",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn get_task(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Task>, ApiError> {
    let id = id_of("task", &id)?;
    Ok(Json(find_task(&app, caller.org, id).await?))
}

/// Mark a task done.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/complete", tag = "collections",
    params(("id" = i64, Path, description = "The task's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 200, description = "The completed task", body = Task),
        (status = 404, description = "No such task in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The task is already done", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn complete_task(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        parse_empty(&body)?;
        let id = id_of("task", &id)?;
        let (org, who, now) = (caller.org, actor(&caller), app.clock.now());
        let task = find_task(&app, org, id).await?;
        if task.status == "done" {
            return Err(ApiError::conflict(format!("task {id} is already done")));
        }
        app.blocking(move |store| Ok(store.complete_task(org, id, &who, now)?))
            .await?;
        Reply::ok(find_task(&app, org, id).await?)
    })
    .await
}

/// Assign a task to a user of your organization (or unassign it).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/assign", tag = "collections", request_body = AssignTask,
    params(("id" = i64, Path, description = "The task's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn assign_task(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let id = id_of("task", &id)?;
        let input: AssignTask = parse_json(&body)?;
        let (org, who, now) = (caller.org, actor(&caller), app.clock.now());
        find_task(&app, org, id).await?;
        let assignee = input
            .assignee
            .as_deref()
            .map(|a| a.trim().to_lowercase())
            .filter(|a| !a.is_empty());
        if let Some(a) = assignee.clone() {
            let users = app.blocking(move |store| Ok(store.users(org)?)).await?;
            // A viewer could not complete the task: only collectors and admins.
            if !users
                .iter()
                .any(|u| u.email == a && !u.disabled && u.role >= Role::Collector)
            {
                return Err(ApiError::invalid(
                    "/assignee",
                    Some(&a),
                    "no active collector or admin with this email in your organization",
                ));
            }
        }
        app.blocking(move |store| {
            Ok(store.assign_task(org, id, assignee.as_deref(), &who, now)?)
        })
        .await?;
        Reply::ok(find_task(&app, org, id).await?)
    })
    .await
}

/// Hide an open task until a day (or wake it now).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/snooze", tag = "collections", request_body = SnoozeTask,
    params(("id" = i64, Path, description = "The task's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn snooze_task(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let id = id_of("task", &id)?;
        let input: SnoozeTask = parse_json(&body)?;
        let today = today(&app, &caller).await?;
        let mut errs = Errors::default();
        let until = input.until.as_deref().and_then(|raw| {
            let d = errs.date("/until", raw)?;
            if d <= today {
                errs.add(
                    "/until",
                    Some(raw),
                    format!("must be after today ({today})"),
                );
                return None;
            }
            Some(d)
        });
        errs.check()?;
        let (org, who, now) = (caller.org, actor(&caller), app.clock.now());
        find_task(&app, org, id).await?;
        app.blocking(move |store| Ok(store.snooze_task(org, id, until, &who, now)?))
            .await?;
        Reply::ok(find_task(&app, org, id).await?)
    })
    .await
}

// --- notes -----------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// A customer's notes, oldest first.
#[utoipa::path(get, path = "/api/v1/customers/{key}/notes", tag = "customers",
    params(("key" = String, Path, description = "The customer's key"), PageQuery),
    responses((status = 200, description = "A page of notes", body = dto::NotePage),
        (status = 404, description = "No such customer in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn list_notes(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Note>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Notes, q.cursor.as_deref())?;
    let (view, _) = view_and_index(&app, &caller).await?;
    if view.customer(&key).is_none() {
        return Err(ApiError::not_found(format!(
            "customer '{key}' was not found"
        )));
    }
    let org = caller.org;
    let notes = app
        .blocking(move |store| Ok(store.notes(org, &key)?))
        .await?;
    // Oldest first is creation order, but ids may interleave with other
    // customers' notes: page by id over the list sorted by id.
    let mut notes = notes;
    notes.sort_by_key(|n| n.id);
    let items = after_id(&notes, |n| n.id, after).iter();
    Ok(Json(page::by_id(
        List::Notes,
        items,
        |n| n.id,
        None,
        limit,
        |n| dto::note(n.id, n),
    )))
}

/// Add a note to a customer (optionally about one of its invoices).
#[utoipa::path(post, path = "/api/v1/customers/{key}/notes", tag = "customers", request_body = NewNote,
    params(("key" = String, Path, description = "The customer's key"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = Note,
            headers(("Location" = String, description = "The customer's notes"))),
        (status = 404, description = "No such customer in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_note(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiPath(key): ApiPath,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewNote = parse_json(&body)?;
        let (view, _) = view_and_index(&app, &caller).await?;
        if view.customer(&key).is_none() {
            return Err(ApiError::not_found(format!(
                "customer '{key}' was not found"
            )));
        }
        let mut errs = Errors::default();
        let text = errs.text("/body", &input.body);
        let invoice = errs.opt_text("/invoice", input.invoice.as_deref());
        if let Some(n) = &invoice {
            match view.invoice_index.get(n) {
                None => errs.add("/invoice", Some(n), "unknown invoice"),
                Some(&i) if view.invoices[i].customer != key => errs.add(
                    "/invoice",
                    Some(n),
                    format!("invoice {n} is not customer {key}'s"),
                ),
                Some(_) => {}
            }
        }
        errs.check()?;
        let note = DNote {
            customer: key.clone(),
            invoice,
            author: actor(&caller),
            body: text.unwrap_or_default(),
            created_at: app.clock.now(),
        };
        let org = caller.org;
        let n = note.clone();
        let id = app
            .blocking(move |store| Ok(store.add_note(org, &n)?))
            .await?;
        Reply::created(
            format!("/api/v1/customers/{}/notes", segment(&key)),
            dto::note(id, &note),
        )
    })
    .await
}

// --- messages ----------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// queued, claimed, sending, sent, in_doubt, failed or cancelled.
    status: Option<String>,
    /// Only messages to this customer (key).
    customer: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List the outbox, newest first (without message bodies).
#[utoipa::path(get, path = "/api/v1/messages", tag = "collections", params(MessageQuery),
    responses((status = 200, description = "A page of messages", body = dto::MessagePage)))]
pub async fn list_messages(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> Result<Json<Page<Message>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let before = page::id_cursor(List::Messages, q.cursor.as_deref())?;
    let status = non_empty(&q.status)
        .map(|s| {
            MessageStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    Some(s),
                    "must be queued, claimed, sending, sent, in_doubt, failed or cancelled",
                )
            })
        })
        .transpose()?;
    let filter = OutboxFilter {
        status,
        customer: non_empty(&q.customer).map(str::to_string),
        limit: None,
    };
    let org = caller.org;
    let messages = app
        .blocking(move |store| Ok(store.outbox(org, &filter)?))
        .await?;
    Ok(Json(page::by_id_desc(
        List::Messages,
        messages.iter(),
        |m| m.id,
        before,
        limit,
        |m| dto::message(m, false),
    )))
}

/// One message, with its text and HTML bodies.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "collections",
    params(("id" = i64, Path, description = "The message's id")),
    responses((status = 200, description = "The message", body = Message),
        (status = 404, description = "No such message in your organization", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn get_message(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Message>, ApiError> {
    let id = id_of("message", &id)?;
    let org = caller.org;
    let m = app
        .blocking(move |store| Ok(store.message(org, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("message '{id}' was not found")))?;
    Ok(Json(dto::message(&m, true)))
}
