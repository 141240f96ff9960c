//! Customers: the list (`GET /customers`), one customer's page
//! (`GET /customers/{key}`: who they are, how to reach them, what they owe,
//! how they pay, which policy chases them, what pauses it, and one timeline
//! of everything that happened), and the collector's actions on it: notes,
//! holds, disputes and promises to pay.
//!
//! The actions validate like `arflow hold|dispute|promise` and answer a
//! mistake by showing the page again with the message next to the form,
//! status 422, the typed values kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arflow_domain::analytics::customers::CustomerBehavior;
use arflow_domain::dunning::records::{
    AssignmentScope, Dispute, Hold, MessageStatus, Promise, Scope, TaskStatus,
};
use arflow_domain::model::AllocationSource;
use arflow_domain::money::{Currency, DecimalStyle, Money};
use arflow_store::{EventFilter, Note, OutboxFilter, Store};
use axum::extract::{Form, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use super::common::{
    Fields, Pauses, Prediction, RecordId, amount_text, behaviour, customer_href, done, encode,
    href, local_time, money, one_decimal, paginate, parse_date, parse_page, predicted,
    promise_active, ratio_text, sort_links, start_of,
};
use super::invoices::contains_ci;
use crate::AppState;
use crate::access::Caller;
use crate::cache::{InvoiceState, LedgerView};
use crate::charts::sparkline;
use crate::problem::{AppError, PageError};
use crate::routes::{COLLECTOR, Route, VIEWER};

pub fn routes() -> Vec<Route> {
    vec![
        Route::page(Method::GET, "/customers", VIEWER, list),
        Route::page(Method::GET, "/customers/{key}", VIEWER, page),
        Route::page(Method::POST, "/customers/{key}/notes", COLLECTOR, add_note),
        Route::page(
            Method::POST,
            "/customers/{key}/holds",
            COLLECTOR,
            create_hold,
        ),
        Route::page(Method::POST, "/holds/{id}/end", COLLECTOR, end_hold),
        Route::page(
            Method::POST,
            "/customers/{key}/disputes",
            COLLECTOR,
            open_dispute,
        ),
        Route::page(
            Method::POST,
            "/disputes/{id}/resolve",
            COLLECTOR,
            resolve_dispute,
        ),
        Route::page(
            Method::POST,
            "/customers/{key}/promises",
            COLLECTOR,
            create_promise,
        ),
        Route::page(
            Method::POST,
            "/promises/{id}/cancel",
            COLLECTOR,
            cancel_promise,
        ),
    ]
}

pub const PER_PAGE: usize = 50;
/// Timeline entries shown before "show everything".
pub const TIMELINE_SHOWN: usize = 200;
/// Settled invoices in the payment trend.
pub const TREND_INVOICES: usize = 12;
/// Longest note, reason or resolution accepted.
const MAX_TEXT: usize = 10_000;

// ---------------------------------------------------------------------------
// The list

/// (key, descending when first chosen)
const LIST_COLUMNS: [(&str, bool); 6] = [
    ("name", false),
    ("key", false),
    ("open", true),
    ("overdue", true),
    ("invoices", true),
    ("late", true),
];

#[derive(Serialize)]
struct ListRow {
    key: String,
    name: String,
    href: String,
    segment: Option<String>,
    country: Option<String>,
    currency: &'static str,
    collector: Option<String>,
    open: i64,
    overdue: i64,
    open_invoices: u64,
    days_late: String,
    days_late_value: String,
}

async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let q = Fields(q);
    let search = q.get("q").unwrap_or("").to_string();
    let segment = q.get("segment").unwrap_or("").to_string();
    let with_balance = q.flag("balance");
    let sort = q.get("sort").unwrap_or("name").to_string();
    let Some(&(_, default_desc)) = LIST_COLUMNS.iter().find(|c| c.0 == sort) else {
        return Err(AppError::invalid(
            "sort",
            Some(&sort),
            "is not a column (name, key, open, overdue, invoices, late)",
        )
        .into());
    };
    let desc = match q.get("dir") {
        None => default_desc,
        Some("asc") => false,
        Some("desc") => true,
        Some(d) => return Err(AppError::invalid("dir", Some(d), "must be asc or desc").into()),
    };
    let page = parse_page(q.get("page"))?;
    let view = super::ledger_view(&app, &caller).await?;
    let (view, report) = app
        .blocking(move |_| {
            let r = behaviour(&view)?;
            Ok((view, r))
        })
        .await?;
    let base = report.currency;
    let by_key: HashMap<&str, &CustomerBehavior> = report
        .customers
        .iter()
        .map(|c| (c.external_id.as_str(), c))
        .collect();
    let needle = search.to_lowercase();
    let mut rows: Vec<(Option<&CustomerBehavior>, &arflow_domain::model::Stored<_>)> = view
        .customers
        .iter()
        .filter(|c| {
            (needle.is_empty()
                || contains_ci(&c.name, &needle)
                || contains_ci(&c.external_id, &needle))
                && (segment.is_empty() || c.segment.as_deref() == Some(segment.as_str()))
        })
        .map(|c| (by_key.get(c.external_id.as_str()).copied(), c))
        .filter(|(b, _)| !with_balance || b.is_some_and(|b| b.open_balance > 0))
        .collect();
    let open = |b: Option<&CustomerBehavior>| b.map_or(0, |b| b.open_balance);
    let overdue = |b: Option<&CustomerBehavior>| b.map_or(0, |b| b.overdue_balance);
    let count = |b: Option<&CustomerBehavior>| b.map_or(0, |b| b.open_invoice_count);
    let late = |b: Option<&CustomerBehavior>| b.and_then(|b| b.weighted_avg_days_late);
    let lower: HashMap<i64, String> = if sort == "name" {
        rows.iter()
            .map(|(_, c)| (c.id, c.name.to_lowercase()))
            .collect()
    } else {
        HashMap::new()
    };
    rows.sort_by(|(ba, ca), (bb, cb)| {
        let o = match sort.as_str() {
            "name" => lower[&ca.id].cmp(&lower[&cb.id]),
            "key" => ca.external_id.cmp(&cb.external_id),
            "open" => open(*ba).cmp(&open(*bb)),
            "overdue" => overdue(*ba).cmp(&overdue(*bb)),
            "invoices" => count(*ba).cmp(&count(*bb)),
            _ => late(*ba)
                .unwrap_or(-1.0)
                .total_cmp(&late(*bb).unwrap_or(-1.0)),
        }
        .then_with(|| ca.external_id.cmp(&cb.external_id));
        if desc { o.reverse() } else { o }
    });
    let link = |sort_key: &str, d: bool, page: usize| {
        let default = LIST_COLUMNS
            .iter()
            .find(|c| c.0 == sort_key)
            .is_some_and(|c| c.1 == d);
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        href(
            "/customers",
            &[
                ("q", &search),
                ("segment", &segment),
                ("balance", if with_balance { "1" } else { "" }),
                (
                    "sort",
                    if sort_key == "name" && default {
                        ""
                    } else {
                        sort_key
                    },
                ),
                (
                    "dir",
                    if default {
                        ""
                    } else if d {
                        "desc"
                    } else {
                        "asc"
                    },
                ),
                ("page", &page),
            ],
        )
    };
    let total_open: i64 = rows.iter().map(|(b, _)| open(*b)).sum();
    let total_overdue: i64 = rows.iter().map(|(b, _)| overdue(*b)).sum();
    let (range, pager) = paginate(rows.len(), page, PER_PAGE, "customers", |n| {
        link(&sort, desc, n)
    });
    let shown: Vec<ListRow> = rows[range]
        .iter()
        .map(|(b, c)| ListRow {
            key: c.external_id.clone(),
            name: c.name.clone(),
            href: customer_href(&c.external_id),
            segment: c.segment.clone(),
            country: c.country.clone(),
            currency: c.currency.code(),
            collector: c.collector.clone(),
            open: open(*b),
            overdue: overdue(*b),
            open_invoices: count(*b),
            days_late: one_decimal(late(*b)),
            days_late_value: ratio_text(late(*b)),
        })
        .collect();
    let segments: std::collections::BTreeSet<String> = view
        .customers
        .iter()
        .filter_map(|c| c.segment.clone())
        .collect();
    let heads = sort_links(&LIST_COLUMNS, &sort, desc, |k, d| link(k, d, 1));
    let ctx = minijinja::context! {
        rows => shown,
        count => rows.len(),
        total_open => total_open,
        total_overdue => total_overdue,
        currency => base.code(),
        pager => pager,
        heads => heads,
        q => search,
        segment => segment,
        balance => with_balance,
        sort => sort,
        dir => if desc { "desc" } else { "asc" },
        segments => segments.into_iter().collect::<Vec<_>>(),
        filtered => !(q.get("q").is_none() && q.get("segment").is_none() && !with_balance),
    };
    Ok(app.views.render(
        "customers.html",
        super::chrome(
            &caller,
            &view.org.name,
            "customers",
            "Customers",
            super::flash(q.get("ok")),
            ctx,
        ),
    )?)
}

// ---------------------------------------------------------------------------
// One customer

/// A form that was sent with a mistake: which form, the message, the values.
#[derive(Debug, Clone, Default)]
struct FormError {
    form: &'static str,
    field: String,
    message: String,
    /// For the resolve form: which dispute.
    target: Option<i64>,
    fields: Fields,
}

/// The values every form shows (blank, or what was typed before a mistake).
#[derive(Serialize, Default)]
struct FormValues {
    note_body: String,
    note_invoice: String,
    hold_scope: String,
    hold_reason: String,
    hold_until: String,
    dispute_invoice: String,
    dispute_reason: String,
    resolve_id: i64,
    resolution: String,
    promise_invoices: Vec<String>,
    promise_date: String,
    promise_amount: String,
    promise_grace: String,
    promise_note: String,
}

impl FormValues {
    fn from(e: Option<&FormError>, default_grace: u32) -> FormValues {
        let mut v = FormValues {
            promise_grace: default_grace.to_string(),
            ..FormValues::default()
        };
        let Some(e) = e else { return v };
        let f = &e.fields;
        let raw = |n: &str| f.raw(n).to_string();
        match e.form {
            "note" => {
                v.note_body = raw("body");
                v.note_invoice = raw("invoice");
            }
            "hold" => {
                v.hold_scope = raw("scope");
                v.hold_reason = raw("reason");
                v.hold_until = raw("until");
            }
            "dispute" => {
                v.dispute_invoice = raw("invoice");
                v.dispute_reason = raw("reason");
            }
            "resolve" => {
                v.resolve_id = e.target.unwrap_or(0);
                v.resolution = raw("resolution");
            }
            "promise" => {
                v.promise_invoices = f.all("invoice").into_iter().map(str::to_string).collect();
                v.promise_date = raw("date");
                v.promise_amount = raw("amount");
                v.promise_grace = raw("grace");
                v.promise_note = raw("note");
            }
            _ => {}
        }
        v
    }
}

#[derive(Serialize)]
struct ContactRow {
    key: String,
    name: String,
    role: Option<String>,
    primary: bool,
    email: Option<String>,
    email_bounced: Option<String>,
    phone: Option<String>,
    email_opt_out: bool,
    sms_consent: bool,
    sms_opt_out: bool,
    call_opt_out: bool,
}

#[derive(Serialize)]
struct OpenInvoice {
    number: String,
    issue_date: String,
    due_date: String,
    currency: &'static str,
    total: i64,
    open: i64,
    days_overdue: i64,
    state: &'static str,
    bucket: Option<String>,
    disputed: bool,
    on_hold: bool,
    promised: bool,
    policy: Option<String>,
    expected_pay_date: Option<String>,
    priority: Option<String>,
}

#[derive(Serialize)]
struct TrendInvoice {
    number: String,
    settled_on: String,
    days_to_pay: i64,
    days_late: i64,
}

#[derive(Serialize)]
struct ActiveHold {
    id: i64,
    scope: String,
    reason: String,
    until: Option<String>,
    created_by: String,
    created: String,
}

#[derive(Serialize)]
struct OpenDispute {
    id: i64,
    invoice: String,
    reason: String,
    opened_by: String,
    opened: String,
}

#[derive(Serialize)]
struct ActivePromise {
    id: i64,
    scope: String,
    amount: String,
    promised_on: String,
    last_day: String,
    made_by: String,
    note: Option<String>,
}

#[derive(Serialize)]
struct MessageBody {
    id: i64,
    href: String,
    channel: &'static str,
    recipient: String,
    subject: String,
    status: &'static str,
    text: String,
    last_error: Option<String>,
}

/// One line of the timeline.
#[derive(Serialize)]
struct Entry {
    #[serde(skip)]
    at: Timestamp,
    #[serde(skip)]
    order: u8,
    /// A DOM id: "tl-<kind>-<id>".
    id: String,
    /// CSS: kind-invoice, kind-payment, kind-message, kind-note, ...
    kind: &'static str,
    /// ISO date or RFC 3339 instant.
    iso: String,
    when: String,
    title: String,
    detail: Option<String>,
    who: Option<String>,
    badge: Option<(&'static str, String)>,
    href: Option<String>,
    message: Option<MessageBody>,
}

impl Entry {
    fn dated(
        d: Date,
        tz: &jiff::tz::TimeZone,
        kind: &'static str,
        id: String,
        title: String,
    ) -> Entry {
        Entry {
            at: start_of(d, tz),
            order: 0,
            id,
            kind,
            iso: d.to_string(),
            when: d.to_string(),
            title,
            detail: None,
            who: None,
            badge: None,
            href: None,
            message: None,
        }
    }

    fn timed(
        ts: Timestamp,
        tz: &jiff::tz::TimeZone,
        kind: &'static str,
        id: String,
        title: String,
    ) -> Entry {
        Entry {
            at: ts,
            order: 1,
            id,
            kind,
            iso: ts.to_string(),
            when: local_time(ts, tz),
            title,
            detail: None,
            who: None,
            badge: None,
            href: None,
            message: None,
        }
    }

    fn detail(mut self, d: impl Into<String>) -> Entry {
        let d = d.into();
        if !d.is_empty() {
            self.detail = Some(d);
        }
        self
    }

    fn who(mut self, w: &str) -> Entry {
        self.who = Some(w.to_string());
        self
    }

    fn badge(mut self, state: &'static str, text: impl Into<String>) -> Entry {
        self.badge = Some((state, text.into()));
        self
    }
}

/// Event kinds the timeline already shows from the records themselves.
const SHOWN_AS_RECORDS: &[&str] = &[
    "invoice.created",
    "credit_note.created",
    "payment.created",
    "allocation.created",
    "note.added",
    "hold.created",
    "hold.ended",
    "dispute.opened",
    "dispute.resolved",
    "promise.created",
    "promise.cancelled",
    "task.created",
    "task.completed",
    "message.queued",
];

/// Everything the customer page shows, read in one go on the blocking pool.
struct Loaded {
    view: Arc<LedgerView>,
    customer_index: usize,
    pauses: Pauses,
    bounced: HashMap<String, String>,
    notes: Vec<arflow_domain::model::Stored<Note>>,
    messages: Vec<arflow_domain::model::Stored<arflow_domain::dunning::records::OutboxMessage>>,
    tasks: Vec<arflow_domain::model::Stored<arflow_domain::dunning::records::Task>>,
    events: Vec<arflow_domain::model::Event>,
    default_policy: String,
    promise_grace_days: u32,
    assignments: Vec<arflow_domain::dunning::records::PolicyAssignment>,
    behaviour: Option<CustomerBehavior>,
    base: Currency,
    prediction: Prediction,
}

fn load(
    store: &dyn Store,
    view: Arc<LedgerView>,
    key: &str,
    now: Timestamp,
) -> Result<Loaded, AppError> {
    let org = view.org.id;
    let customer_index = *view
        .customer_index
        .get(key)
        .ok_or_else(|| AppError::NotFound(format!("customer '{key}' was not found")))?;
    let pauses = Pauses::load(store, org, view.today, now)?;
    let bounced = store
        .bounces(org)?
        .into_iter()
        .filter(|b| b.cleared_at.is_none())
        .map(|b| (b.address.to_lowercase(), b.reason))
        .collect();
    let notes = store.notes(org, key)?;
    let messages = store.outbox(
        org,
        &OutboxFilter {
            customer: Some(key.to_string()),
            ..OutboxFilter::default()
        },
    )?;
    let tasks = store
        .tasks(org, true)?
        .into_iter()
        .filter(|t| t.customer == key)
        .collect();
    let events = store.events(
        org,
        &EventFilter {
            customer: Some(key.to_string()),
            limit: Some(1000),
            ..EventFilter::default()
        },
    )?;
    let settings = store.dunning_settings(org)?;
    let assignments = store.policy_assignments(org)?;
    let report = behaviour(&view)?;
    let base = report.currency;
    let behaviour = report
        .customers
        .iter()
        .find(|c| c.external_id == key)
        .cloned();
    let prediction = predicted(store, &view)?;
    Ok(Loaded {
        view,
        customer_index,
        pauses,
        bounced,
        notes,
        messages,
        tasks,
        events,
        default_policy: settings.default_policy,
        promise_grace_days: settings.promise_grace_days,
        assignments,
        behaviour,
        base,
        prediction,
    })
}

async fn page(
    State(app): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let q = Fields(q);
    let all = q.get("timeline") == Some("all");
    show(&app, &caller, key, super::flash(q.get("ok")), None, all).await
}

/// Renders the customer page, with a form's mistake when there is one
/// (status 422, or 409 for a change that no longer applies).
async fn show(
    app: &AppState,
    caller: &Caller,
    key: String,
    flash: Option<&'static str>,
    error: Option<(StatusCode, FormError)>,
    timeline_all: bool,
) -> Result<Response, PageError> {
    let view = super::ledger_view(app, caller).await?;
    let now = app.clock.now();
    let k = key.clone();
    let d = app
        .blocking(move |store| load(store, view, &k, now))
        .await?;
    let (status, error) = match error {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    let ctx = context(&d, &key, error.as_ref(), timeline_all, caller);
    let mut r = app.views.render(
        "customer.html",
        super::chrome(
            caller,
            &d.view.org.name,
            "customers",
            &d.view.customers[d.customer_index].name,
            flash,
            ctx,
        ),
    )?;
    *r.status_mut() = status;
    Ok(r)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn scope_text(s: &Scope) -> String {
    match s {
        Scope::Customer(_) => "all invoices of the customer".to_string(),
        Scope::Invoice(n) => format!("invoice {n}"),
    }
}

fn context(
    d: &Loaded,
    key: &str,
    error: Option<&FormError>,
    timeline_all: bool,
    caller: &Caller,
) -> minijinja::Value {
    let view = &d.view;
    let tz = &view.tz;
    let today = view.today;
    let c = &view.customers[d.customer_index];
    let base = d.base;

    // Header.
    let header = minijinja::context! {
        name => c.name.clone(),
        key => c.external_id.clone(),
        segment => c.segment.clone(),
        country => c.country.clone(),
        time_zone => c.time_zone.clone(),
        org_time_zone => view.org.time_zone.clone(),
        locale => c.locale.clone(),
        currency => c.currency.code(),
        terms => c.payment_terms_days,
        collector => c.collector.clone(),
        autopay => yes_no(c.autopay),
        tags => c.tags.clone(),
        credit_limit => c.credit_limit.map(|l| money(l, c.currency)),
    };

    // Contacts.
    let contacts: Vec<ContactRow> = view
        .contacts
        .iter()
        .filter(|ct| ct.customer == key)
        .map(|ct| ContactRow {
            key: ct.external_id.clone(),
            name: ct.name.clone(),
            role: ct.role.clone(),
            primary: ct.is_primary,
            email: ct.email.clone(),
            email_bounced: ct
                .email
                .as_ref()
                .and_then(|e| d.bounced.get(&e.to_lowercase()).cloned()),
            phone: ct.phone.clone(),
            email_opt_out: ct.preferences.email_opt_out,
            sms_consent: ct.preferences.sms_consent,
            sms_opt_out: ct.preferences.sms_opt_out,
            call_opt_out: ct.preferences.call_opt_out,
        })
        .collect();

    // Policy: invoice > customer > segment > the organization's default.
    let mut policy_for_customer = None;
    let mut policy_for_segment = None;
    let mut invoice_policy: HashMap<&str, &str> = HashMap::new();
    for a in &d.assignments {
        match &a.scope {
            AssignmentScope::Customer(k) if k == key => {
                policy_for_customer = Some(a.policy.as_str())
            }
            AssignmentScope::Segment(s) if c.segment.as_deref() == Some(s.as_str()) => {
                policy_for_segment = Some(a.policy.as_str())
            }
            AssignmentScope::Invoice(n) => {
                invoice_policy.insert(n.as_str(), a.policy.as_str());
            }
            _ => {}
        }
    }
    let (policy, policy_why) = match (policy_for_customer, policy_for_segment) {
        (Some(p), _) => (p.to_string(), "assigned to this customer".to_string()),
        (None, Some(p)) => (
            p.to_string(),
            format!(
                "assigned to segment {}",
                c.segment.clone().unwrap_or_default()
            ),
        ),
        _ => (
            d.default_policy.clone(),
            "the organization's default policy".to_string(),
        ),
    };

    // Invoices of the customer.
    let rows: Vec<_> = view
        .rows
        .iter()
        .filter(|r| r.customer == d.customer_index)
        .collect();
    let predicted = d.prediction.ready();
    let mut open_rows: Vec<OpenInvoice> = Vec::new();
    let mut open_by_currency: std::collections::BTreeMap<&'static str, (i64, i64)> =
        Default::default();
    let mut all_numbers: Vec<(Date, String)> = Vec::new();
    let mut settled: Vec<TrendInvoice> = Vec::new();
    for r in &rows {
        let inv = &view.invoices[r.index];
        all_numbers.push((inv.issue_date, inv.number.clone()));
        if let Some(s) = r.settled_on
            && r.state == InvoiceState::Paid
            && s <= today
        {
            settled.push(TrendInvoice {
                number: inv.number.clone(),
                settled_on: s.to_string(),
                days_to_pay: (s - inv.issue_date).get_days() as i64,
                days_late: ((s - inv.due_date).get_days() as i64).max(0),
            });
        }
        if !matches!(r.state, InvoiceState::Open | InvoiceState::Overdue) {
            continue;
        }
        let e = open_by_currency.entry(inv.currency.code()).or_default();
        e.0 += r.open;
        if r.state == InvoiceState::Overdue {
            e.1 += r.open;
        }
        let score = predicted.and_then(|p| p.invoices.get(&inv.number));
        open_rows.push(OpenInvoice {
            number: inv.number.clone(),
            issue_date: inv.issue_date.to_string(),
            due_date: inv.due_date.to_string(),
            currency: inv.currency.code(),
            total: inv.total,
            open: r.open,
            days_overdue: r.days_overdue,
            state: r.state.as_str(),
            bucket: r.bucket.clone(),
            disputed: inv.disputed || d.pauses.disputed(&inv.number),
            on_hold: d.pauses.on_hold(&inv.number, key),
            promised: d.pauses.promised(&inv.number, key),
            policy: invoice_policy
                .get(inv.number.as_str())
                .map(|p| p.to_string()),
            expected_pay_date: score.map(|s| s.expected_pay_date.to_string()),
            priority: score.map(|s| s.explanation.clone()),
        });
    }
    all_numbers.sort_by(|a, b| b.cmp(a));
    settled.sort_by(|a, b| (&a.settled_on, &a.number).cmp(&(&b.settled_on, &b.number)));
    let trend: Vec<TrendInvoice> = settled
        .into_iter()
        .rev()
        .take(TREND_INVOICES)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let spark = sparkline(
        &trend
            .iter()
            .map(|t| Some(t.days_late as f64))
            .collect::<Vec<_>>(),
    );
    let b = d.behaviour.as_ref();
    let behaviour_ctx = minijinja::context! {
        invoices => b.map_or(0, |b| b.invoice_count),
        settled => b.map_or(0, |b| b.settled_count),
        avg_days_to_pay => one_decimal(b.and_then(|b| b.avg_days_to_pay)),
        avg_days_to_pay_value => ratio_text(b.and_then(|b| b.avg_days_to_pay)),
        weighted_days_to_pay => one_decimal(b.and_then(|b| b.weighted_avg_days_to_pay)),
        weighted_days_to_pay_value => ratio_text(b.and_then(|b| b.weighted_avg_days_to_pay)),
        avg_days_late => one_decimal(b.and_then(|b| b.avg_days_late)),
        avg_days_late_value => ratio_text(b.and_then(|b| b.avg_days_late)),
        weighted_days_late => one_decimal(b.and_then(|b| b.weighted_avg_days_late)),
        weighted_days_late_value => ratio_text(b.and_then(|b| b.weighted_avg_days_late)),
        open_base => b.map_or(0, |b| b.open_balance),
        open_base_value => amount_text(b.map_or(0, |b| b.open_balance), base),
        overdue_base => b.map_or(0, |b| b.overdue_balance),
        overdue_base_value => amount_text(b.map_or(0, |b| b.overdue_balance), base),
        trend => trend,
        sparkline => spark,
        priority => predicted
            .and_then(|p| p.customers.get(key))
            .map(|s| money(s.round() as i64, base)),
        model_version => predicted.map(|p| p.version),
    };

    // What pauses dunning now.
    let currency_of: HashMap<&str, Currency> = rows
        .iter()
        .map(|r| {
            let inv = &view.invoices[r.index];
            (inv.number.as_str(), inv.currency)
        })
        .collect();
    let customer_numbers: HashSet<&str> = currency_of.keys().copied().collect();
    let concerns = |s: &Scope| match s {
        Scope::Customer(k) => k == key,
        Scope::Invoice(n) => customer_numbers.contains(n.as_str()),
    };
    let holds: Vec<&arflow_domain::model::Stored<Hold>> = d
        .pauses
        .holds
        .iter()
        .filter(|h| concerns(&h.scope))
        .collect();
    let disputes: Vec<&arflow_domain::model::Stored<Dispute>> = d
        .pauses
        .disputes
        .iter()
        .filter(|x| customer_numbers.contains(x.invoice.as_str()))
        .collect();
    let promises: Vec<&arflow_domain::model::Stored<Promise>> = d
        .pauses
        .promises
        .iter()
        .filter(|p| concerns(&p.scope))
        .collect();
    let active_holds: Vec<ActiveHold> = holds
        .iter()
        .filter(|h| d.pauses.hold_active(h))
        .map(|h| ActiveHold {
            id: h.id,
            scope: scope_text(&h.scope),
            reason: h.reason.clone(),
            until: h.expires_on.map(|x| x.to_string()),
            created_by: h.created_by.clone(),
            created: local_time(h.created_at, tz),
        })
        .collect();
    let open_disputes: Vec<OpenDispute> = disputes
        .iter()
        .filter(|x| x.is_open(d.pauses.now))
        .map(|x| OpenDispute {
            id: x.id,
            invoice: x.invoice.clone(),
            reason: x.reason.clone(),
            opened_by: x.opened_by.clone(),
            opened: local_time(x.opened_at, tz),
        })
        .collect();
    let active_promises: Vec<ActivePromise> = promises
        .iter()
        .filter(|p| promise_active(p, today))
        .map(|p| ActivePromise {
            id: p.id,
            scope: scope_text(&p.scope),
            amount: p.amount.map_or("the open balance".to_string(), |m| {
                money(m.minor, m.currency)
            }),
            promised_on: p.promised_on.to_string(),
            last_day: p.last_day().to_string(),
            made_by: p.made_by.clone(),
            note: p.note.clone(),
        })
        .collect();

    // The timeline.
    let mut tl: Vec<Entry> = Vec::new();
    for r in &rows {
        let inv = &view.invoices[r.index];
        tl.push(
            Entry::dated(
                inv.issue_date,
                tz,
                "kind-invoice",
                format!("tl-invoice-{}", inv.id),
                format!(
                    "Invoice {} issued: {}",
                    inv.number,
                    money(inv.total, inv.currency)
                ),
            )
            .detail(format!("due {}", inv.due_date))
            .badge(r.state.as_str(), r.state.as_str().replace('_', " ")),
        );
    }
    for p in view.payments.iter().filter(|p| p.customer == key) {
        let mut how = Vec::new();
        if let Some(m) = &p.method {
            how.push(m.clone());
        }
        if let Some(r) = &p.reference {
            how.push(format!("reference {r}"));
        }
        if let Some(n) = &p.payer_name {
            how.push(format!("from {n}"));
        }
        tl.push(
            Entry::dated(
                p.received_on,
                tz,
                "kind-payment",
                format!("tl-payment-{}", p.id),
                format!("Payment received: {}", money(p.amount, p.currency)),
            )
            .detail(how.join(", ")),
        );
    }
    for cn in view.credit_notes.iter().filter(|x| x.customer == key) {
        tl.push(
            Entry::dated(
                cn.issue_date,
                tz,
                "kind-payment",
                format!("tl-credit-{}", cn.id),
                format!(
                    "Credit note {} issued: {}",
                    cn.number,
                    money(cn.total, cn.currency)
                ),
            )
            .detail(cn.reason.clone().unwrap_or_default()),
        );
    }
    for a in view
        .allocations
        .iter()
        .filter(|a| customer_numbers.contains(a.invoice.as_str()))
    {
        let (what, from) = match &a.source {
            AllocationSource::Payment(p) => ("Payment", p),
            AllocationSource::CreditNote(n) => ("Credit note", n),
        };
        let currency = currency_of
            .get(a.invoice.as_str())
            .copied()
            .unwrap_or(c.currency);
        tl.push(Entry::dated(
            a.applied_on,
            tz,
            "kind-payment",
            format!("tl-allocation-{}", a.id),
            format!(
                "{what} {from} applied to {}: {}",
                a.invoice,
                money(a.amount, currency)
            ),
        ));
    }
    for m in &d.messages {
        let at = m.sent_at.unwrap_or(m.created_at);
        let channel = m.channel.as_str();
        let mut e = Entry::timed(
            at,
            tz,
            "kind-message",
            format!("tl-message-{}", m.id),
            format!(
                "{} to {}: {}",
                match channel {
                    "sms" => "SMS",
                    "email" => "Email",
                    other => other,
                },
                m.recipient,
                m.subject
            ),
        )
        .badge(m.status.as_str(), m.status.as_str().replace('_', " "));
        let numbers: Vec<&str> = m.invoices.iter().map(|i| i.number.as_str()).collect();
        if !numbers.is_empty() {
            e = e.detail(format!(
                "about {} · policy {} step {}",
                numbers.join(", "),
                m.policy,
                m.step
            ));
        }
        e.href = Some(format!("/dunning/outbox/{}", m.id));
        e.message = Some(MessageBody {
            id: m.id,
            href: format!("/dunning/outbox/{}", m.id),
            channel,
            recipient: m.recipient.clone(),
            subject: m.subject.clone(),
            status: m.status.as_str(),
            text: m.body_text.clone(),
            last_error: m
                .last_error
                .clone()
                .filter(|_| m.status != MessageStatus::Sent),
        });
        tl.push(e);
    }
    for n in &d.notes {
        tl.push(
            Entry::timed(
                n.created_at,
                tz,
                "kind-note",
                format!("tl-note-{}", n.id),
                match &n.invoice {
                    Some(i) => format!("Note about invoice {i}"),
                    None => "Note".to_string(),
                },
            )
            .detail(n.body.clone())
            .who(&n.author),
        );
    }
    for h in &holds {
        let until = h
            .expires_on
            .map_or(" until lifted".to_string(), |x| format!(" until {x}"));
        tl.push(
            Entry::timed(
                h.created_at,
                tz,
                "kind-hold",
                format!("tl-hold-{}", h.id),
                format!("Hold on {}{until}", scope_text(&h.scope)),
            )
            .detail(h.reason.clone())
            .who(&h.created_by),
        );
        if let Some(end) = h.ended_at {
            tl.push(
                Entry::timed(
                    end,
                    tz,
                    "kind-hold",
                    format!("tl-hold-{}-ended", h.id),
                    format!("Hold on {} lifted", scope_text(&h.scope)),
                )
                .who(h.ended_by.as_deref().unwrap_or("")),
            );
        }
    }
    for x in &disputes {
        tl.push(
            Entry::timed(
                x.opened_at,
                tz,
                "kind-dispute",
                format!("tl-dispute-{}", x.id),
                format!("Dispute opened on invoice {}", x.invoice),
            )
            .detail(x.reason.clone())
            .who(&x.opened_by),
        );
        if let Some(at) = x.resolved_at {
            tl.push(
                Entry::timed(
                    at,
                    tz,
                    "kind-dispute",
                    format!("tl-dispute-{}-resolved", x.id),
                    format!("Dispute on invoice {} resolved", x.invoice),
                )
                .detail(x.resolution.clone().unwrap_or_default())
                .who(x.resolved_by.as_deref().unwrap_or(""))
                .badge("resolved", "resolved"),
            );
        }
    }
    for p in &promises {
        let amount = p.amount.map_or("the open balance".to_string(), |m| {
            money(m.minor, m.currency)
        });
        let state = if p.cancelled_at.is_some() {
            ("cancelled", "cancelled")
        } else if today <= p.last_day() {
            ("active", "active")
        } else {
            ("broken", "date passed")
        };
        tl.push(
            Entry::timed(
                p.made_at,
                tz,
                "kind-promise",
                format!("tl-promise-{}", p.id),
                format!(
                    "Promise to pay {amount} by {} ({})",
                    p.promised_on,
                    scope_text(&p.scope)
                ),
            )
            .detail(p.note.clone().unwrap_or_default())
            .who(&p.made_by)
            .badge(state.0, state.1),
        );
        if let Some(at) = p.cancelled_at {
            tl.push(
                Entry::timed(
                    at,
                    tz,
                    "kind-promise",
                    format!("tl-promise-{}-cancelled", p.id),
                    format!("Promise to pay by {} cancelled", p.promised_on),
                )
                .who(p.cancelled_by.as_deref().unwrap_or("")),
            );
        }
    }
    for t in &d.tasks {
        let state = match (t.status, t.snoozed_until) {
            (TaskStatus::Done, _) => ("done", "done".to_string()),
            (TaskStatus::Open, Some(s)) if s > today => ("snoozed", format!("snoozed until {s}")),
            (TaskStatus::Open, _) => ("open", "open".to_string()),
        };
        let mut e = Entry::timed(
            t.created_at,
            tz,
            "kind-task",
            format!("tl-task-{}", t.id),
            format!("Task: {}", t.title),
        )
        .detail(t.detail.clone())
        .badge(state.0, state.1);
        if let Some(a) = &t.assignee {
            e = e.who(&format!("assigned to {a}"));
        }
        tl.push(e);
        if let Some(at) = t.completed_at {
            tl.push(
                Entry::timed(
                    at,
                    tz,
                    "kind-task",
                    format!("tl-task-{}-done", t.id),
                    format!("Task done: {}", t.title),
                )
                .who(t.completed_by.as_deref().unwrap_or("")),
            );
        }
    }
    for ev in d
        .events
        .iter()
        .filter(|e| !SHOWN_AS_RECORDS.contains(&e.kind.as_str()))
    {
        tl.push(
            Entry::timed(
                ev.recorded_at,
                tz,
                "kind-event",
                format!("tl-event-{}", ev.id),
                ev.summary.clone(),
            )
            .who(&ev.actor)
            .badge("event", ev.kind.clone()),
        );
    }
    tl.sort_by(|a, b| (b.at, b.order, &b.id).cmp(&(a.at, a.order, &a.id)));
    let timeline_total = tl.len();
    if !timeline_all {
        tl.truncate(TIMELINE_SHOWN);
    }

    let values = FormValues::from(error, d.promise_grace_days);
    let open_numbers: Vec<String> = open_rows.iter().map(|r| r.number.clone()).collect();
    let tomorrow = today.tomorrow().map(|t| t.to_string()).unwrap_or_default();
    minijinja::context! {
        c => header,
        key => key,
        href => customer_href(key),
        base => base.code(),
        today => today.to_string(),
        tomorrow => tomorrow,
        contacts => contacts,
        policy => policy,
        policy_href => format!("/dunning/policies/{}", encode(&policy)),
        policy_why => policy_why,
        open_invoices => open_rows,
        open_totals => open_by_currency
            .into_iter()
            .map(|(cur, (open, overdue))| minijinja::context! { currency => cur, open => open, overdue => overdue })
            .collect::<Vec<_>>(),
        open_numbers => open_numbers,
        all_numbers => all_numbers.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
        invoices_href => href("/invoices", &[("customer", key), ("state", "all")]),
        behaviour => behaviour_ctx,
        holds => active_holds,
        disputes => open_disputes,
        promises => active_promises,
        timeline => tl,
        timeline_total => timeline_total,
        timeline_all => timeline_all || timeline_total <= TIMELINE_SHOWN,
        timeline_all_href => href(&customer_href(key), &[("timeline", "all")]),
        v => values,
        problem => error.map(|e| e.message.clone()),
        error_form => error.map_or("", |e| e.form),
        error_field => error.map_or(String::new(), |e| e.field.clone()),
        promise_grace_default => d.promise_grace_days,
        can_collect => caller.can(arflow_store::Role::Collector),
    }
}

// ---------------------------------------------------------------------------
// Actions

/// Shows the page again with the mistake.
async fn mistake(
    app: &AppState,
    caller: &Caller,
    key: String,
    form: &'static str,
    field: &str,
    message: impl Into<String>,
    fields: Fields,
) -> Result<Response, PageError> {
    mistake_with(
        app,
        caller,
        key,
        StatusCode::UNPROCESSABLE_ENTITY,
        FormError {
            form,
            field: field.to_string(),
            message: message.into(),
            target: None,
            fields,
        },
    )
    .await
}

async fn mistake_with(
    app: &AppState,
    caller: &Caller,
    key: String,
    status: StatusCode,
    e: FormError,
) -> Result<Response, PageError> {
    show(app, caller, key, None, Some((status, e)), false).await
}

/// The invoice, if it is one of the customer's.
fn own_invoice<'a>(
    view: &'a LedgerView,
    key: &str,
    number: &str,
) -> Option<&'a crate::cache::InvoiceRow> {
    let (inv, row) = view.invoice(number)?;
    (inv.customer == key).then_some(row)
}

fn too_long(s: &str) -> bool {
    s.chars().count() > MAX_TEXT
}

async fn add_note(
    State(app): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let view = super::ledger_view(&app, &caller).await?;
    if view.customer(&key).is_none() {
        return Err(AppError::NotFound(format!("customer '{key}' was not found")).into());
    }
    let Some(body) = f.get("body").map(str::to_string) else {
        return mistake(
            &app,
            &caller,
            key,
            "note",
            "body",
            "The note is empty: write what happened.",
            f,
        )
        .await;
    };
    if too_long(&body) {
        return mistake(
            &app,
            &caller,
            key,
            "note",
            "body",
            format!("The note is longer than {MAX_TEXT} characters."),
            f,
        )
        .await;
    }
    let invoice = f.get("invoice").map(str::to_string);
    if let Some(n) = &invoice
        && own_invoice(&view, &key, n).is_none()
    {
        return mistake(
            &app,
            &caller,
            key,
            "note",
            "invoice",
            format!("Invoice {n} is not one of this customer's invoices."),
            f,
        )
        .await;
    }
    let note = Note {
        customer: key.clone(),
        invoice,
        author: caller.email.clone(),
        body,
        created_at: app.clock.now(),
    };
    let org = caller.org;
    app.blocking(move |store| Ok(store.add_note(org, &note)?))
        .await?;
    Ok(done(&customer_href(&key), "note_added"))
}

async fn create_hold(
    State(app): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let view = super::ledger_view(&app, &caller).await?;
    if view.customer(&key).is_none() {
        return Err(AppError::NotFound(format!("customer '{key}' was not found")).into());
    }
    let scope = match f.get("scope") {
        None | Some("customer") => Scope::Customer(key.clone()),
        Some(n) => {
            if own_invoice(&view, &key, n).is_none() {
                let m = format!("Invoice {n} is not one of this customer's invoices.");
                return mistake(&app, &caller, key, "hold", "scope", m, f).await;
            }
            Scope::Invoice(n.to_string())
        }
    };
    let Some(reason) = f.get("reason").map(str::to_string) else {
        return mistake(
            &app,
            &caller,
            key,
            "hold",
            "reason",
            "Give a reason: it tells colleagues why reminders stopped.",
            f,
        )
        .await;
    };
    if too_long(&reason) {
        return mistake(
            &app,
            &caller,
            key,
            "hold",
            "reason",
            format!("The reason is longer than {MAX_TEXT} characters."),
            f,
        )
        .await;
    }
    let expires_on = match f.get("until") {
        None => None,
        Some(u) => match parse_date("until", u) {
            Ok(d) if d > view.today => Some(d),
            Ok(d) => {
                let m = format!(
                    "The end date {d} is not in the future: a hold ends on that day (leave it empty to hold until lifted)."
                );
                return mistake(&app, &caller, key, "hold", "until", m, f).await;
            }
            Err(_) => {
                let m = format!("'{u}' is not a date (use YYYY-MM-DD).");
                return mistake(&app, &caller, key, "hold", "until", m, f).await;
            }
        },
    };
    let now = app.clock.now();
    let hold = Hold {
        scope,
        reason,
        created_at: now,
        created_by: caller.email.clone(),
        expires_on,
        ended_at: None,
        ended_by: None,
    };
    let org = caller.org;
    app.blocking(move |store| Ok(store.create_hold(org, &hold, now)?))
        .await?;
    Ok(done(&customer_href(&key), "hold_created"))
}

/// The customer an invoice or customer scope belongs to.
fn scope_customer(view: &LedgerView, s: &Scope) -> Option<String> {
    match s {
        Scope::Customer(k) => Some(k.clone()),
        Scope::Invoice(n) => view.invoice(n).map(|(inv, _)| inv.customer.clone()),
    }
}

/// Runs a change on a hold, dispute or promise; a conflict (already ended,
/// resolved, cancelled) shows the customer page with the reason, 409;
/// `on_conflict` names the form, its target and what was typed.
async fn change_then_show(
    app: &AppState,
    caller: &Caller,
    key: String,
    on_conflict: (&'static str, i64, Fields),
    code: &'static str,
    change: impl FnOnce(&dyn Store) -> Result<(), AppError> + Send + 'static,
) -> Result<Response, PageError> {
    match app.blocking(move |store| change(store)).await {
        Ok(()) => Ok(done(&customer_href(&key), code)),
        Err(AppError::Conflict(message)) => {
            let (form, target, fields) = on_conflict;
            mistake_with(
                app,
                caller,
                key,
                StatusCode::CONFLICT,
                FormError {
                    form,
                    field: String::new(),
                    message,
                    target: Some(target),
                    fields,
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn end_hold(
    State(app): State<AppState>,
    caller: Caller,
    RecordId(id): RecordId,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let view = super::ledger_view(&app, &caller).await?;
    let org = caller.org;
    let hold = app
        .blocking(move |store| {
            store
                .holds(org)?
                .into_iter()
                .find(|h| h.id == id)
                .ok_or_else(|| AppError::NotFound(format!("hold #{id} was not found")))
        })
        .await?;
    let key = scope_customer(&view, &hold.scope)
        .ok_or_else(|| AppError::NotFound(format!("hold #{id} was not found")))?;
    let (actor, now) = (caller.email.clone(), app.clock.now());
    change_then_show(
        &app,
        &caller,
        key,
        ("hold_end", id, Fields(form)),
        "hold_ended",
        move |store| Ok(store.end_hold(org, id, &actor, now)?),
    )
    .await
}

async fn open_dispute(
    State(app): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let view = super::ledger_view(&app, &caller).await?;
    if view.customer(&key).is_none() {
        return Err(AppError::NotFound(format!("customer '{key}' was not found")).into());
    }
    let Some(invoice) = f.get("invoice").map(str::to_string) else {
        return mistake(
            &app,
            &caller,
            key,
            "dispute",
            "invoice",
            "Choose the invoice the customer disputes.",
            f,
        )
        .await;
    };
    if own_invoice(&view, &key, &invoice).is_none() {
        let m = format!("Invoice {invoice} is not one of this customer's invoices.");
        return mistake(&app, &caller, key, "dispute", "invoice", m, f).await;
    }
    let Some(reason) = f.get("reason").map(str::to_string) else {
        return mistake(
            &app,
            &caller,
            key,
            "dispute",
            "reason",
            "Give the customer's reason for the dispute.",
            f,
        )
        .await;
    };
    if too_long(&reason) {
        return mistake(
            &app,
            &caller,
            key,
            "dispute",
            "reason",
            format!("The reason is longer than {MAX_TEXT} characters."),
            f,
        )
        .await;
    }
    let now = app.clock.now();
    let org = caller.org;
    let number = invoice.clone();
    let already = app
        .blocking(move |store| {
            Ok(store
                .disputes(org)?
                .into_iter()
                .find(|d| d.invoice == number && d.is_open(now))
                .map(|d| d.id))
        })
        .await?;
    if let Some(id) = already {
        let m = format!("Invoice {invoice} already has an open dispute (#{id}): resolve it first.");
        return mistake(&app, &caller, key, "dispute", "invoice", m, f).await;
    }
    let dispute = Dispute {
        invoice,
        reason,
        opened_at: now,
        opened_by: caller.email.clone(),
        resolved_at: None,
        resolved_by: None,
        resolution: None,
    };
    change_then_show(
        &app,
        &caller,
        key,
        ("dispute", 0, f),
        "dispute_opened",
        move |store| {
            store.open_dispute(org, &dispute, now)?;
            Ok(())
        },
    )
    .await
}

async fn resolve_dispute(
    State(app): State<AppState>,
    caller: Caller,
    RecordId(id): RecordId,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let view = super::ledger_view(&app, &caller).await?;
    let org = caller.org;
    let dispute = app
        .blocking(move |store| {
            store
                .disputes(org)?
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| AppError::NotFound(format!("dispute #{id} was not found")))
        })
        .await?;
    let key = view
        .invoice(&dispute.invoice)
        .map(|(inv, _)| inv.customer.clone())
        .ok_or_else(|| AppError::NotFound(format!("dispute #{id} was not found")))?;
    let Some(resolution) = f.get("resolution").map(str::to_string) else {
        let e = FormError {
            form: "resolve",
            field: "resolution".to_string(),
            message: format!(
                "Say how the dispute on invoice {} was resolved.",
                dispute.invoice
            ),
            target: Some(id),
            fields: f,
        };
        return mistake_with(&app, &caller, key, StatusCode::UNPROCESSABLE_ENTITY, e).await;
    };
    if too_long(&resolution) {
        let e = FormError {
            form: "resolve",
            field: "resolution".to_string(),
            message: format!("The resolution is longer than {MAX_TEXT} characters."),
            target: Some(id),
            fields: f,
        };
        return mistake_with(&app, &caller, key, StatusCode::UNPROCESSABLE_ENTITY, e).await;
    }
    let (actor, now) = (caller.email.clone(), app.clock.now());
    change_then_show(
        &app,
        &caller,
        key,
        ("resolve", id, f),
        "dispute_resolved",
        move |store| Ok(store.resolve_dispute(org, id, &resolution, &actor, now)?),
    )
    .await
}

async fn create_promise(
    State(app): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let view = super::ledger_view(&app, &caller).await?;
    let Some(customer) = view.customer(&key) else {
        return Err(AppError::NotFound(format!("customer '{key}' was not found")).into());
    };
    let customer_currency = customer.currency;
    // Invoices: none = the customer's whole open balance.
    let numbers: Vec<String> = {
        let mut v: Vec<String> = f.all("invoice").into_iter().map(str::to_string).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut currency = customer_currency;
    for n in &numbers {
        match own_invoice(&view, &key, n) {
            None => {
                let m = format!("Invoice {n} is not one of this customer's invoices.");
                return mistake(&app, &caller, key, "promise", "invoice", m, f).await;
            }
            Some(row) if !matches!(row.state, InvoiceState::Open | InvoiceState::Overdue) => {
                let m = format!(
                    "Invoice {n} is {}: nothing is left to promise.",
                    row.state.as_str().replace('_', " ")
                );
                return mistake(&app, &caller, key, "promise", "invoice", m, f).await;
            }
            Some(row) => currency = view.invoices[row.index].currency,
        }
    }
    let promised_on = match f.get("date") {
        None => {
            return mistake(
                &app,
                &caller,
                key,
                "promise",
                "date",
                "Give the date the customer promised to pay by.",
                f,
            )
            .await;
        }
        Some(d) => match parse_date("date", d) {
            Ok(d) if d >= view.today => d,
            Ok(d) => {
                let m = format!(
                    "The promised date {d} is in the past (today is {}).",
                    view.today
                );
                return mistake(&app, &caller, key, "promise", "date", m, f).await;
            }
            Err(_) => {
                let m = format!("'{d}' is not a date (use YYYY-MM-DD).");
                return mistake(&app, &caller, key, "promise", "date", m, f).await;
            }
        },
    };
    let amount = match f.get("amount") {
        None => None,
        Some(_) if numbers.len() > 1 => {
            return mistake(&app, &caller, key, "promise", "amount", "An amount applies to one invoice or to the whole account: choose one invoice (or none), or leave the amount empty to promise the open balances.", f).await;
        }
        Some(a) => match Money::parse(a, currency, DecimalStyle::POINT) {
            Ok(m) if m.minor > 0 => Some(m),
            Ok(_) => {
                return mistake(
                    &app,
                    &caller,
                    key,
                    "promise",
                    "amount",
                    "The amount must be more than zero.",
                    f,
                )
                .await;
            }
            Err(e) => {
                let m = format!("'{a}' is not an amount in {}: {e}", currency.code());
                return mistake(&app, &caller, key, "promise", "amount", m, f).await;
            }
        },
    };
    let org = caller.org;
    let grace_days = match f.get("grace") {
        None => {
            app.blocking(move |store| Ok(store.dunning_settings(org)?.promise_grace_days))
                .await?
        }
        Some(g) => match g.parse::<u32>() {
            Ok(n) if n <= 90 => n,
            _ => {
                let m = format!("Grace days '{g}' must be a whole number from 0 to 90.");
                return mistake(&app, &caller, key, "promise", "grace", m, f).await;
            }
        },
    };
    let note = f.get("note").map(str::to_string);
    if note.as_deref().is_some_and(too_long) {
        return mistake(
            &app,
            &caller,
            key,
            "promise",
            "note",
            format!("The note is longer than {MAX_TEXT} characters."),
            f,
        )
        .await;
    }
    let now = app.clock.now();
    let scopes: Vec<Scope> = if numbers.is_empty() {
        vec![Scope::Customer(key.clone())]
    } else {
        numbers.into_iter().map(Scope::Invoice).collect()
    };
    let promises: Vec<Promise> = scopes
        .into_iter()
        .map(|scope| Promise {
            scope,
            amount,
            promised_on,
            grace_days,
            made_at: now,
            made_by: caller.email.clone(),
            note: note.clone(),
            cancelled_at: None,
            cancelled_by: None,
        })
        .collect();
    change_then_show(
        &app,
        &caller,
        key,
        ("promise", 0, f),
        "promise_added",
        // All the chosen invoices' promises or none.
        move |store| Ok(store.create_promises(org, &promises, now).map(drop)?),
    )
    .await
}

async fn cancel_promise(
    State(app): State<AppState>,
    caller: Caller,
    RecordId(id): RecordId,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let view = super::ledger_view(&app, &caller).await?;
    let org = caller.org;
    let promise = app
        .blocking(move |store| {
            store
                .promises(org)?
                .into_iter()
                .find(|p| p.id == id)
                .ok_or_else(|| AppError::NotFound(format!("promise #{id} was not found")))
        })
        .await?;
    let key = scope_customer(&view, &promise.scope)
        .ok_or_else(|| AppError::NotFound(format!("promise #{id} was not found")))?;
    let (actor, now) = (caller.email.clone(), app.clock.now());
    change_then_show(
        &app,
        &caller,
        key,
        ("promise_cancel", id, Fields(form)),
        "promise_cancelled",
        move |store| Ok(store.cancel_promise(org, id, &actor, now)?),
    )
    .await
}
