//! Exception alerts: what a person should look at because it is unusual, not
//! merely overdue. Each alert has a stable key (`alert:<kind>:<subject>:<ISO
//! week>`) and becomes a task of kind `alert` through
//! [`arflow_store::DunningStore::record_run`], which writes a key once: the
//! same alert raised again in the same week opens no second task.
//!
//! The kinds:
//! - `late_vs_usual`: an overdue invoice has waited longer than 90 % of the
//!   customer's settled invoices took (their usual P90), with at least 5 of them;
//! - `behaviour_shift`: the customer's invoices settled in the last 90 days
//!   were paid at least 10 days later, on average, than their earlier ones;
//! - `no_contact`: a large invoice (in the top 10 % of open amounts) more
//!   than 60 days overdue with no message sent and no task completed for the
//!   customer in the last 30 days;
//! - `dunning_stalled`: once dunning has run (recorded a step) and is not paused, an
//!   invoice whose next step's date is more than 3 days past and that is not
//!   paused, deferred or stopped: the automation is not escalating;
//! - `no_policy`: an invoice never chased because its policy is not stored;
//! - `bounce_spike`: at least 3 bounces in the last 7 days and more than
//!   twice the daily rate of the 28 days before.

use std::collections::{HashMap, HashSet};

use arflow_domain::dunning::planner::Decision;
use arflow_domain::dunning::records::{Task, TaskKind};
use arflow_domain::ledger::{Closure, Ledger};
use arflow_domain::model::Organization;
use arflow_domain::predict::PredictError;
use arflow_domain::predict::priority::money_words;
use arflow_store::{OutboxFilter, PlannedWrite, RunCounts, Store};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::DunningError;
use crate::predict::PredictInputs;
use crate::snapshot::Snapshot;

/// Days a next step may be overdue before the stall alert.
pub const STALL_DAYS: i64 = 3;
/// Days overdue before a large invoice needs a human contact.
pub const NO_CONTACT_OVERDUE_DAYS: i64 = 60;
/// The window in which a message sent or a task completed counts as contact.
pub const CONTACT_WINDOW_DAYS: i64 = 30;
/// Minimum settled invoices for a customer's usual P90.
pub const MIN_HISTORY: usize = 5;
/// Mean days-late increase that counts as a shift.
pub const SHIFT_DAYS: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    DunningStalled,
    NoPolicy,
    NoContact,
    LateVsUsual,
    BehaviourShift,
    BounceSpike,
}

impl AlertKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertKind::DunningStalled => "dunning_stalled",
            AlertKind::NoPolicy => "no_policy",
            AlertKind::NoContact => "no_contact",
            AlertKind::LateVsUsual => "late_vs_usual",
            AlertKind::BehaviourShift => "behaviour_shift",
            AlertKind::BounceSpike => "bounce_spike",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// The task key: `alert:<kind>:<invoice or customer>:<ISO week>`.
    pub key: String,
    /// Customer external id; `None` only for an organization-wide alert with
    /// no customer to attach a task to.
    pub customer: Option<String>,
    pub customer_name: Option<String>,
    pub invoice: Option<String>,
    /// Open amount in the base currency (minor units), when about an invoice.
    pub open_base: Option<i64>,
    pub title: String,
    /// The reason in words.
    pub detail: String,
}

fn week_of(d: Date) -> String {
    let w = d.iso_week_date();
    format!("{:04}-W{:02}", w.year(), w.week())
}

fn days_between(a: Date, b: Date) -> i64 {
    i64::from(b.since(a).map(|s| s.get_days()).unwrap_or(0))
}

/// The value below which 90 % of `v` lie (nearest rank); `v` non-empty.
fn p90(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    let rank = ((v.len() as f64) * 0.9).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ago(now: Timestamp, days: i64) -> Timestamp {
    now.checked_sub(SignedDuration::from_hours(days * 24))
        .unwrap_or(now)
}

/// Finds the alerts of `org` at `now` (`today` is its date in the
/// organization's zone).
pub fn find_alerts(
    store: &dyn Store,
    org: &Organization,
    inputs: &PredictInputs,
    now: Timestamp,
    today: Date,
) -> Result<Vec<Alert>, DunningError> {
    let week = week_of(today);
    let facts = &inputs.facts;
    let ledger = Ledger::new(facts);
    let conv = inputs.conv();
    let mut out = Vec::new();
    let customer = |id: i64| {
        (
            Some(inputs.customer_key(id).to_string()),
            Some(inputs.customer_name(id).to_string()),
        )
    };

    // Per customer: days to pay and days late of invoices settled by today.
    let mut history: HashMap<i64, Vec<(Date, i64, i64)>> = HashMap::new();
    let mut open: Vec<(usize, i64, i64)> = Vec::new(); // (position, open minor, open base)
    for (i, f) in ledger.invoices() {
        if f.issue_date > today {
            continue;
        }
        let voided = matches!(f.closed, Some((d, Closure::Void)) if d <= today);
        if voided {
            continue;
        }
        if let Some(s) = ledger.settled_on(i).filter(|&s| s <= today) {
            history.entry(f.customer_id).or_default().push((
                s,
                days_between(f.issue_date, s),
                days_between(f.due_date, s),
            ));
            continue;
        }
        let amount = ledger.open_on(i, today);
        if amount > 0 {
            let b = conv
                .to_base(amount, f.currency, today)
                .map_err(|source| PredictError::Fx {
                    invoice_id: f.id,
                    source,
                })?;
            open.push((i, amount, b));
        }
    }

    // 1. Unpaid past the customer's usual P90.
    let mut usual: HashMap<i64, i64> = HashMap::new();
    for (c, h) in &history {
        if h.len() >= MIN_HISTORY {
            let mut d: Vec<i64> = h.iter().map(|x| x.1).collect();
            usual.insert(*c, p90(&mut d));
        }
    }
    for &(i, amount, b) in &open {
        let f = &facts.invoices[i];
        let waiting = days_between(f.issue_date, today);
        let Some(&p) = usual.get(&f.customer_id) else {
            continue;
        };
        if waiting > p && today > f.due_date {
            let number = inputs.invoice_number(f.id).to_string();
            let (cust, name) = customer(f.customer_id);
            out.push(Alert {
                kind: AlertKind::LateVsUsual,
                key: format!("alert:late_vs_usual:{number}:{week}"),
                customer: cust,
                customer_name: name.clone(),
                invoice: Some(number.clone()),
                open_base: Some(b),
                title: format!("{number} is unpaid longer than {} usually takes", name.unwrap_or_default()),
                detail: format!(
                    "{} open for {waiting} days; 90 % of this customer's invoices were paid within {p} days",
                    money_words(amount, f.currency)
                ),
            });
        }
    }

    // 2. Behaviour shift: recent days-late against the customer's history.
    let recent_from = today
        .checked_sub(jiff::Span::new().days(90))
        .unwrap_or(today);
    let mut shifts: Vec<(i64, f64, f64, usize)> = Vec::new();
    for (c, h) in &history {
        let (recent, older): (Vec<_>, Vec<_>) = h.iter().partition(|x| x.0 > recent_from);
        if recent.len() < 3 || older.len() < MIN_HISTORY {
            continue;
        }
        let mean =
            |v: &[&(Date, i64, i64)]| v.iter().map(|x| x.2 as f64).sum::<f64>() / v.len() as f64;
        let (r, o) = (mean(&recent), mean(&older));
        if r - o >= SHIFT_DAYS {
            shifts.push((*c, r, o, recent.len()));
        }
    }
    shifts.sort_by_key(|s| s.0);
    for (c, r, o, n) in shifts {
        let (cust, name) = customer(c);
        let key_part = cust.clone().unwrap_or_default();
        out.push(Alert {
            kind: AlertKind::BehaviourShift,
            key: format!("alert:behaviour_shift:{key_part}:{week}"),
            customer: cust,
            customer_name: name.clone(),
            invoice: None,
            open_base: None,
            title: format!("{} pays later than before", name.unwrap_or_default()),
            detail: format!(
                "the {n} invoices settled in the last 90 days were paid {:.0} days late on average, against {:.0} before",
                r, o
            ),
        });
    }

    // 3. Large, long overdue, nobody in touch.
    let since = ago(now, CONTACT_WINDOW_DAYS);
    let mut contacted: HashSet<String> = HashSet::new();
    for m in store.outbox(org.id, &OutboxFilter::default())? {
        if m.record.sent_at.is_some_and(|t| t > since && t <= now) {
            contacted.insert(m.record.customer.clone());
        }
    }
    for t in store.tasks(org.id, true)? {
        if t.record.completed_at.is_some_and(|c| c > since && c <= now) {
            contacted.insert(t.record.customer.clone());
        }
    }
    if !open.is_empty() {
        let mut amounts: Vec<i64> = open.iter().map(|o| o.2).collect();
        let large = p90(&mut amounts);
        for &(i, amount, b) in &open {
            let f = &facts.invoices[i];
            let overdue = days_between(f.due_date, today);
            if b < large || overdue <= NO_CONTACT_OVERDUE_DAYS {
                continue;
            }
            let (cust, name) = customer(f.customer_id);
            if cust.as_ref().is_some_and(|c| contacted.contains(c)) {
                continue;
            }
            let number = inputs.invoice_number(f.id).to_string();
            out.push(Alert {
                kind: AlertKind::NoContact,
                key: format!("alert:no_contact:{number}:{week}"),
                customer: cust,
                customer_name: name,
                invoice: Some(number.clone()),
                open_base: Some(b),
                title: format!("Call about {number}: large, {overdue} days overdue, no contact"),
                detail: format!(
                    "{} open, {overdue} days past due; no message sent and no task done for this customer in the last {CONTACT_WINDOW_DAYS} days",
                    money_words(amount, f.currency)
                ),
            });
        }
    }

    // 4. Dunning that should have fired but did not, and invoices with no policy.
    let snapshot = Snapshot::load(store, org, now)?;
    // Dunning counts as running once it has recorded a step (alert tasks
    // alone also set `started_on`, so that is not the test).
    let started = !snapshot.steps.is_empty() && !snapshot.settings.paused;
    match snapshot.plan() {
        Ok(plan) => {
            let cust_names: HashMap<&str, &str> = snapshot
                .customers
                .iter()
                .map(|c| (c.external_id.as_str(), c.name.as_str()))
                .collect();
            for d in &plan.decisions {
                let name = cust_names.get(d.customer).map(|s| s.to_string());
                let open_base = conv.to_base(d.open, d.currency, today).ok();
                match &d.decision {
                    Decision::Due {
                        step, days_late, ..
                    } if started && *days_late > STALL_DAYS => out.push(Alert {
                        kind: AlertKind::DunningStalled,
                        key: format!("alert:dunning_stalled:{}:{week}", d.invoice),
                        customer: Some(d.customer.to_string()),
                        customer_name: name,
                        invoice: Some(d.invoice.to_string()),
                        open_base,
                        title: format!("Dunning did not escalate {}", d.invoice),
                        detail: format!(
                            "step '{}' was due {days_late} days ago and has not been done; is the worker running?",
                            step.template
                        ),
                    }),
                    Decision::Stopped { reason }
                        if d
                            .policy
                            .is_some_and(|p| !snapshot.policies.contains_key(p)) =>
                    {
                        out.push(Alert {
                            kind: AlertKind::NoPolicy,
                            key: format!("alert:no_policy:{}:{week}", d.invoice),
                            customer: Some(d.customer.to_string()),
                            customer_name: name,
                            invoice: Some(d.invoice.to_string()),
                            open_base,
                            title: format!("{} is never chased", d.invoice),
                            detail: format!("not chased: {reason}"),
                        })
                    }
                    _ => {}
                }
            }
        }
        Err(e) => out.push(Alert {
            kind: AlertKind::NoPolicy,
            key: format!("alert:no_policy:org:{week}"),
            customer: None,
            customer_name: None,
            invoice: None,
            open_base: None,
            title: "Dunning cannot plan".into(),
            detail: e.to_string(),
        }),
    }

    // 5. Bounce spike.
    let bounces = store.bounces(org.id)?;
    let week_ago = ago(now, 7);
    let month_before = ago(now, 35);
    let recent: Vec<_> = bounces
        .iter()
        .filter(|b| b.at > week_ago && b.at <= now)
        .collect();
    let before = bounces
        .iter()
        .filter(|b| b.at > month_before && b.at <= week_ago)
        .count();
    if recent.len() >= 3 && recent.len() as f64 / 7.0 > 2.0 * (before as f64 / 28.0) {
        let latest = recent.iter().max_by_key(|b| b.at);
        let cust = latest.and_then(|b| {
            snapshot
                .contacts
                .iter()
                .find(|c| {
                    c.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&b.address))
                })
                .map(|c| c.customer.clone())
        });
        let name = cust
            .as_deref()
            .and_then(|c| snapshot.customer(c))
            .map(|c| c.name.clone());
        out.push(Alert {
            kind: AlertKind::BounceSpike,
            key: format!("alert:bounce_spike:org:{week}"),
            customer: cust,
            customer_name: name,
            invoice: None,
            open_base: None,
            title: "Email bounces are spiking".into(),
            detail: format!(
                "{} bounces in the last 7 days against {before} in the 28 days before; check the sending domain and contact addresses",
                recent.len()
            ),
        });
    }

    out.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(b.open_base.unwrap_or(0).cmp(&a.open_base.unwrap_or(0)))
            .then(a.key.cmp(&b.key))
    });
    Ok(out)
}

/// Opens one `alert` task per alert that names a customer; keys already
/// taken (the same alert this week) are counted in `already_done`.
pub fn record_alerts(
    store: &dyn Store,
    org: i64,
    alerts: &[Alert],
    today: Date,
    actor: &str,
    now: Timestamp,
) -> Result<RunCounts, DunningError> {
    let writes: Vec<PlannedWrite> = alerts
        .iter()
        .filter_map(|a| {
            let customer = a.customer.clone()?;
            Some(PlannedWrite {
                steps: Vec::new(),
                message: None,
                task: Some(Task {
                    invoices: a.invoice.iter().cloned().collect(),
                    ..Task::open(
                        a.key.clone(),
                        TaskKind::Alert,
                        &customer,
                        a.title.clone(),
                        a.detail.clone(),
                        today,
                        now,
                    )
                }),
                charges: Vec::new(),
            })
        })
        .collect();
    if writes.is_empty() {
        return Ok(RunCounts::default());
    }
    Ok(store.record_run(org, &writes, today, actor, now)?)
}
