//! The worklist (`GET /worklist`): open tasks for people — calls a policy
//! asked for, disputes, broken promises, bounced emails, messages in doubt,
//! prediction alerts — ranked by what waiting costs. With a trained payment
//! model the rank is the model's priority (`arflow worklist`: open amount ×
//! P(paid 30+ days late) × overdue weight, summed over the task's invoices,
//! or over the customer's when the task names none); without one it is the
//! amount at stake × the days it is overdue.
//!
//! Collectors assign (to themselves or a colleague), complete (with an
//! optional note, kept on the customer) and snooze tasks.

use std::collections::{HashMap, HashSet};

use arflow_domain::dunning::records::{Dispute, Task, TaskKind, TaskStatus};
use arflow_domain::model::Stored;
use arflow_store::{Note, OutboxFilter, Role};
use axum::extract::{Form, Query, State};
use axum::http::Method;
use axum::response::Response;
use jiff::civil::Date;
use serde::Serialize;

use super::common::{
    Fields, Prediction, RecordId, add_days, customer_href, done, href, local_date, money,
    parse_date, predicted, with_converter,
};
use crate::AppState;
use crate::access::Caller;
use crate::cache::{InvoiceRow, InvoiceState, LedgerView};
use crate::problem::{AppError, PageError};
use crate::routes::{COLLECTOR, Route, VIEWER};

pub fn routes() -> Vec<Route> {
    vec![
        Route::page(Method::GET, "/worklist", VIEWER, list),
        Route::page(Method::POST, "/tasks/{id}/assign", COLLECTOR, assign),
        Route::page(Method::POST, "/tasks/{id}/done", COLLECTOR, complete),
        Route::page(Method::POST, "/tasks/{id}/snooze", COLLECTOR, snooze),
    ]
}

/// Plain words for a task's kind.
pub fn kind_words(k: TaskKind) -> &'static str {
    match k {
        TaskKind::Step => "policy step",
        TaskKind::Unreachable => "cannot be reached",
        TaskKind::Bounce => "bounced email",
        TaskKind::BrokenPromise => "broken promise",
        TaskKind::InDoubt => "message in doubt",
        TaskKind::DeliveryFailed => "delivery failed",
        TaskKind::Alert => "alert",
    }
}

#[derive(Serialize)]
struct Row {
    /// "task" or "dispute".
    item: &'static str,
    /// "task-<id>" or "dispute-<id>".
    dom_id: String,
    id: i64,
    rank: usize,
    kind: &'static str,
    kind_words: &'static str,
    title: String,
    detail: String,
    /// Why it ranks where it does.
    why: String,
    score: i64,
    customer: String,
    customer_name: String,
    customer_href: String,
    invoices: Vec<String>,
    assignee: Option<String>,
    mine: bool,
    due_on: String,
    days_late: i64,
    snoozed_until: Option<String>,
    message_href: Option<String>,
    /// Where a dispute is resolved.
    resolve_href: Option<String>,
}

/// One item of the worklist: an open task, or an open dispute waiting for
/// a resolution (disputes are not tasks: they are resolved on the
/// customer's page).
struct Work<'a> {
    task: Option<&'a Stored<Task>>,
    dispute: Option<&'a Stored<Dispute>>,
    customer: String,
    invoices: Vec<String>,
    due_on: Date,
}

/// The worklist's kind filter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KindFilter {
    Task(TaskKind),
    Dispute,
}

#[derive(Serialize)]
struct UserOption {
    email: String,
    label: String,
}

/// The invoices the listed tasks need, found in one pass over the view:
/// each named invoice's row, and every open row of each customer.
struct Index<'a> {
    by_number: HashMap<&'a str, &'a InvoiceRow>,
    by_customer: HashMap<&'a str, Vec<&'a InvoiceRow>>,
}

impl<'a> Index<'a> {
    fn new(view: &'a LedgerView, work: &[Work<'_>]) -> Index<'a> {
        let numbers: HashSet<&str> = work
            .iter()
            .flat_map(|t| t.invoices.iter().map(String::as_str))
            .collect();
        // Rows are visited only for the tasks' customers (an array test).
        let mut wanted = vec![false; view.customers.len()];
        for t in work {
            if let Some(&i) = view.customer_index.get(&t.customer) {
                wanted[i] = true;
            }
        }
        let mut by_number = HashMap::new();
        let mut by_customer: HashMap<&str, Vec<&InvoiceRow>> = HashMap::new();
        for r in &view.rows {
            if !wanted.get(r.customer).copied().unwrap_or(false) {
                continue;
            }
            let inv = &view.invoices[r.index];
            if numbers.contains(inv.number.as_str()) {
                by_number.insert(inv.number.as_str(), r);
            }
            if matches!(r.state, InvoiceState::Open | InvoiceState::Overdue) {
                by_customer
                    .entry(inv.customer.as_str())
                    .or_default()
                    .push(r);
            }
        }
        Index {
            by_number,
            by_customer,
        }
    }
}

/// A task's rank: (score in base minor units, why in words).
fn rank(
    t: &Work<'_>,
    view: &LedgerView,
    index: &Index<'_>,
    prediction: &Prediction,
    conv: &arflow_domain::ledger::BaseConverter<'_>,
) -> (f64, String) {
    let base = view.facts.base_currency;
    let named = !t.invoices.is_empty();
    let customer_rows = index
        .by_customer
        .get(t.customer.as_str())
        .map_or(&[][..], Vec::as_slice);
    if let Prediction::Ready(p) = prediction {
        // The task's invoices, or all of the customer's open ones.
        let numbers: Vec<&str> = if named {
            t.invoices.iter().map(String::as_str).collect()
        } else {
            customer_rows
                .iter()
                .map(|r| view.invoices[r.index].number.as_str())
                .collect()
        };
        let mut best: Option<(f64, &str)> = None;
        let mut sum = 0.0;
        for n in numbers {
            if let Some(s) = p.invoices.get(n) {
                sum += s.score;
                if best.is_none_or(|b| s.score > b.0) {
                    best = Some((s.score, &s.explanation));
                }
            }
        }
        let why = best.map_or("nothing open the model would chase".to_string(), |b| {
            b.1.to_string()
        });
        return (
            sum,
            format!("priority {}: {why}", money(sum.round() as i64, base)),
        );
    }
    // The task's invoices still open, else the customer's overdue ones.
    let invoices: Vec<&InvoiceRow> = if named {
        t.invoices
            .iter()
            .filter_map(|n| index.by_number.get(n.as_str()).copied())
            .filter(|r| matches!(r.state, InvoiceState::Open | InvoiceState::Overdue))
            .collect()
    } else {
        customer_rows
            .iter()
            .copied()
            .filter(|r| r.state == InvoiceState::Overdue)
            .collect()
    };
    let mut stake = 0i64;
    let mut days = 0i64;
    for r in &invoices {
        let inv = &view.invoices[r.index];
        stake += conv
            .to_base(r.open, inv.currency, view.today)
            .unwrap_or(if inv.currency == base { r.open } else { 0 });
        days = days.max(r.days_overdue);
    }
    let score = stake as f64 * days as f64;
    let why = if stake == 0 {
        "nothing overdue at stake".to_string()
    } else {
        format!(
            "{} at stake, {} {} overdue",
            money(stake, base),
            days,
            if days == 1 { "day" } else { "days" }
        )
    };
    (score, why)
}

async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let q = Fields(q);
    let who = q.get("who").unwrap_or("all").to_string();
    if !matches!(who.as_str(), "all" | "mine" | "unassigned") {
        return Err(AppError::invalid("who", Some(&who), "must be all, mine or unassigned").into());
    }
    let kind = match q.get("kind") {
        None => None,
        Some("dispute") => Some(KindFilter::Dispute),
        Some(k) => Some(KindFilter::Task(TaskKind::parse(k).ok_or_else(|| {
            AppError::invalid(
                "kind",
                Some(k),
                "is not a kind of work (step, unreachable, bounce, broken_promise, in_doubt, delivery_failed, alert, dispute)",
            )
        })?)),
    };
    let include_snoozed = q.flag("snoozed");
    let view = super::ledger_view(&app, &caller).await?;
    let org = caller.org;
    let now = app.clock.now();
    let (view, tasks, disputes, users, prediction, message_ids) = app
        .blocking(move |store| {
            let tasks = store.tasks(org, false)?;
            let disputes: Vec<Stored<Dispute>> = store
                .disputes(org)?
                .into_iter()
                .filter(|d| d.is_open(now))
                .collect();
            let users = store.users(org)?;
            let p = predicted(store, &view)?;
            // The messages tasks are about (in doubt, failed), by key.
            let mut wanted: Vec<&str> = tasks
                .iter()
                .filter(|t| t.message_key.is_some())
                .map(|t| t.customer.as_str())
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            let mut ids: HashMap<String, i64> = HashMap::new();
            for customer in wanted {
                let filter = OutboxFilter {
                    customer: Some(customer.to_string()),
                    ..OutboxFilter::default()
                };
                for m in store.outbox(org, &filter)? {
                    ids.insert(m.record.key, m.id);
                }
            }
            Ok((view, tasks, disputes, users, p, ids))
        })
        .await?;
    let today = view.today;
    let me = caller.email.clone();
    let snoozed = |t: &Task| t.snoozed_until.is_some_and(|s| s > today);
    let open: Vec<&Stored<Task>> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Open)
        .collect();
    let counts = minijinja::context! {
        all => open.iter().filter(|t| !snoozed(t)).count(),
        mine => open.iter().filter(|t| !snoozed(t) && t.assignee.as_deref() == Some(me.as_str())).count(),
        unassigned => open.iter().filter(|t| !snoozed(t) && t.assignee.is_none()).count(),
        snoozed => open.iter().filter(|t| snoozed(t)).count(),
        disputes => disputes.len(),
    };
    let mut work: Vec<Work<'_>> = open
        .into_iter()
        .filter(|t| include_snoozed || !snoozed(t))
        .filter(|t| match who.as_str() {
            "mine" => t.assignee.as_deref() == Some(me.as_str()),
            "unassigned" => t.assignee.is_none(),
            _ => true,
        })
        .filter(|t| kind.is_none_or(|k| k == KindFilter::Task(t.kind)))
        .map(|t| Work {
            task: Some(t),
            dispute: None,
            customer: t.customer.clone(),
            invoices: t.invoices.clone(),
            due_on: t.due_on,
        })
        .collect();
    if who == "all" && kind.is_none_or(|k| k == KindFilter::Dispute) {
        for d in &disputes {
            let Some(&i) = view.invoice_index.get(&d.invoice) else {
                continue;
            };
            work.push(Work {
                task: None,
                dispute: Some(d),
                customer: view.invoices[i].customer.clone(),
                invoices: vec![d.invoice.clone()],
                due_on: local_date(d.opened_at, &view.tz),
            });
        }
    }
    let index = Index::new(&view, &work);
    let mut ranked: Vec<(f64, String, &Work<'_>)> = with_converter(&view, |conv| {
        work.iter()
            .map(|w| {
                let (s, why) = rank(w, &view, &index, &prediction, conv);
                (s, why, w)
            })
            .collect()
    });
    let id_of = |w: &Work<'_>| {
        w.task
            .map_or_else(|| w.dispute.map_or(0, |d| d.id), |t| t.id)
    };
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.2.due_on.cmp(&b.2.due_on))
            .then(a.2.task.is_none().cmp(&b.2.task.is_none()))
            .then(id_of(a.2).cmp(&id_of(b.2)))
    });
    let names: HashMap<&str, &str> = view
        .customers
        .iter()
        .map(|c| (c.external_id.as_str(), c.name.as_str()))
        .collect();
    let days_late = |d: Date| {
        if d < today {
            (today - d).get_days() as i64
        } else {
            0
        }
    };
    let rows: Vec<Row> = ranked
        .iter()
        .enumerate()
        .map(|(i, (score, why, w))| {
            let customer_name = names
                .get(w.customer.as_str())
                .map_or_else(|| w.customer.clone(), |n| n.to_string());
            let common = |item: &'static str, id: i64| Row {
                item,
                dom_id: format!("{item}-{id}"),
                id,
                rank: i + 1,
                kind: "",
                kind_words: "",
                title: String::new(),
                detail: String::new(),
                why: why.clone(),
                score: score.round() as i64,
                customer: w.customer.clone(),
                customer_name: customer_name.clone(),
                customer_href: customer_href(&w.customer),
                invoices: w.invoices.clone(),
                assignee: None,
                mine: false,
                due_on: w.due_on.to_string(),
                days_late: days_late(w.due_on),
                snoozed_until: None,
                message_href: None,
                resolve_href: None,
            };
            match (w.task, w.dispute) {
                (Some(t), _) => Row {
                    kind: t.kind.as_str(),
                    kind_words: kind_words(t.kind),
                    title: t.title.clone(),
                    detail: t.detail.clone(),
                    assignee: t.assignee.clone(),
                    mine: t.assignee.as_deref() == Some(me.as_str()),
                    snoozed_until: t
                        .snoozed_until
                        .filter(|s| *s > today)
                        .map(|s| s.to_string()),
                    message_href: t
                        .message_key
                        .as_ref()
                        .and_then(|k| message_ids.get(k))
                        .map(|id| format!("/dunning/outbox/{id}")),
                    ..common("task", t.id)
                },
                (None, Some(d)) => Row {
                    kind: "dispute",
                    kind_words: "open dispute",
                    title: format!("Resolve the dispute on invoice {}", d.invoice),
                    detail: format!("{} (opened by {})", d.reason, d.opened_by),
                    resolve_href: Some(format!("{}#open-disputes", customer_href(&w.customer))),
                    ..common("dispute", d.id)
                },
                (None, None) => common("task", 0),
            }
        })
        .collect();
    let users: Vec<UserOption> = users
        .into_iter()
        .filter(|u| !u.disabled && u.role >= Role::Collector)
        .map(|u| UserOption {
            label: if u.name.is_empty() {
                u.email.clone()
            } else {
                format!("{} ({})", u.name, u.email)
            },
            email: u.email,
        })
        .collect();
    let kind_param = match kind {
        Some(KindFilter::Task(k)) => k.as_str(),
        Some(KindFilter::Dispute) => "dispute",
        None => "",
    };
    let here = href(
        "/worklist",
        &[
            ("who", if who == "all" { "" } else { who.as_str() }),
            ("kind", kind_param),
            ("snoozed", if include_snoozed { "1" } else { "" }),
        ],
    );
    let tab = |w: &str| {
        href(
            "/worklist",
            &[
                ("who", if w == "all" { "" } else { w }),
                ("kind", kind_param),
                ("snoozed", if include_snoozed { "1" } else { "" }),
            ],
        )
    };
    let (basis, basis_label) = match &prediction {
        Prediction::Ready(p) => (
            "predicted",
            format!(
                "Ranked by the payment model's priority (model v{}): open amount × chance of paying 30+ days late × overdue weight.",
                p.version
            ),
        ),
        Prediction::Failed { version, error } => (
            "amount_days",
            format!(
                "Ranked by amount at stake × days overdue (payment model v{version} could not be used: {error})."
            ),
        ),
        Prediction::NoModel => (
            "amount_days",
            "Ranked by amount at stake × days overdue (no payment model trained yet).".to_string(),
        ),
    };
    let ctx = minijinja::context! {
        rows => rows,
        counts => counts,
        who => who,
        kind => kind_param,
        kinds => TaskKind::ALL
            .iter()
            .map(|k| (k.as_str(), kind_words(*k)))
            .chain(std::iter::once(("dispute", "open dispute")))
            .map(|(value, label)| minijinja::context! { value => value, label => label })
            .collect::<Vec<_>>(),
        snoozed => include_snoozed,
        basis => basis,
        basis_label => basis_label,
        users => users,
        me_email => caller.email.clone(),
        here => here,
        tabs => minijinja::context! { all => tab("all"), mine => tab("mine"), unassigned => tab("unassigned") },
        today => today.to_string(),
        tomorrow => add_days(today, 1)?.to_string(),
    };
    Ok(app.views.render(
        "worklist.html",
        super::chrome(
            &caller,
            &view.org.name,
            "worklist",
            "Worklist",
            super::flash(q.get("ok")),
            ctx,
        ),
    )?)
}

/// Where to go after an action: the worklist address the form came from.
fn back(f: &Fields) -> String {
    match f.get("back") {
        Some(b)
            if b.starts_with("/worklist")
                && !b.contains("//")
                && !b.contains('\\')
                && !b.contains("ok=") =>
        {
            b.to_string()
        }
        _ => "/worklist".to_string(),
    }
}

/// The open task `id` of the caller's organization.
async fn open_task(app: &AppState, org: i64, id: i64) -> Result<Stored<Task>, AppError> {
    let task = app
        .blocking(move |store| Ok(store.tasks(org, true)?.into_iter().find(|t| t.id == id)))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("task #{id} was not found")))?;
    if task.status != TaskStatus::Open {
        return Err(AppError::Conflict(format!("task #{id} is already done")));
    }
    Ok(task)
}

async fn assign(
    State(app): State<AppState>,
    caller: Caller,
    RecordId(id): RecordId,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let org = caller.org;
    open_task(&app, org, id).await?;
    let assignee = f.get("assignee").map(str::to_lowercase);
    if let Some(a) = &assignee {
        let a = a.clone();
        let ok = app
            .blocking(move |store| {
                Ok(store
                    .users(org)?
                    .iter()
                    .any(|u| u.email == a && !u.disabled && u.role >= Role::Collector))
            })
            .await?;
        if !ok {
            return Err(AppError::invalid(
                "assignee",
                assignee.as_deref(),
                "is not an active collector or admin of this organization",
            )
            .into());
        }
    }
    let (actor, now) = (caller.email.clone(), app.clock.now());
    let code = if assignee.is_some() {
        "task_assigned"
    } else {
        "task_unassigned"
    };
    app.blocking(move |store| Ok(store.assign_task(org, id, assignee.as_deref(), &actor, now)?))
        .await?;
    Ok(done(&back(&f), code))
}

async fn complete(
    State(app): State<AppState>,
    caller: Caller,
    RecordId(id): RecordId,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let org = caller.org;
    let task = open_task(&app, org, id).await?;
    let note = f.get("note").map(str::to_string);
    if note.as_deref().is_some_and(|n| n.chars().count() > 10_000) {
        return Err(AppError::invalid("note", None, "is longer than 10000 characters").into());
    }
    let (actor, now) = (caller.email.clone(), app.clock.now());
    app.blocking(move |store| {
        let Some(body) = note else {
            return Ok(store.complete_task(org, id, &actor, now)?);
        };
        // Kept on the customer, about the task's invoice when it has one;
        // one transaction, so a note that cannot be kept leaves the task open.
        let invoice = match task.invoices.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        let note = Note {
            customer: task.customer.clone(),
            invoice,
            author: actor.clone(),
            body: format!("Task done: {}. {body}", task.title.trim_end_matches('.')),
            created_at: now,
        };
        store.complete_task_with_note(org, id, &actor, now, &note)?;
        Ok(())
    })
    .await?;
    Ok(done(&back(&f), "task_done"))
}

async fn snooze(
    State(app): State<AppState>,
    caller: Caller,
    RecordId(id): RecordId,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = Fields(form);
    let org = caller.org;
    open_task(&app, org, id).await?;
    let view = super::ledger_view(&app, &caller).await?;
    let until: Option<Date> = if f.flag("wake") {
        None
    } else {
        let Some(u) = f.get("until") else {
            return Err(
                AppError::invalid("until", None, "choose the day the task comes back").into(),
            );
        };
        let d = parse_date("until", u)?;
        if d <= view.today {
            return Err(AppError::invalid(
                "until",
                Some(u),
                format!(
                    "must be after today ({}): the task comes back on that day",
                    view.today
                ),
            )
            .into());
        }
        Some(d)
    };
    let (actor, now) = (caller.email.clone(), app.clock.now());
    app.blocking(move |store| Ok(store.snooze_task(org, id, until, &actor, now)?))
        .await?;
    Ok(done(&back(&f), "task_snoozed"))
}
