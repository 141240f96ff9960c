//! `arflow dunning run`: plan, render, and record in one transaction.
//!
//! The store writes every action atomically and keyed: an action whose step
//! records or key already exist (another run got there first) is dropped
//! whole, so running twice, or two workers at once, never queues a message
//! twice.

use arflow_domain::dunning::planner::{Plan, PlannedAction};
use arflow_domain::dunning::policy::Channel;
use arflow_domain::dunning::records::{MessageStatus, OutboxMessage, Task, TaskKind};
use arflow_domain::model::{Customer, Organization};
use arflow_domain::money::Money;
use arflow_store::{PlannedWrite, RunCounts, Store};
use jiff::Timestamp;
use rand::RngCore;
use serde::Serialize;

use crate::DunningError;
use crate::render::{RenderRequest, Renderer};
use crate::snapshot::Snapshot;

/// What a run planned and what it wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub planned_actions: usize,
    pub planned_messages: usize,
    pub planned_tasks: usize,
    pub broken_promises: usize,
    pub written: RunCounts,
}

/// A fresh secret for reply addresses and unsubscribe links: 128 random bits.
/// Drawn from the OS generator on purpose: it must not be guessable, and it
/// is stored with the message, so reproducibility is not lost.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The write for one planned action: its message rendered (or its task
/// worded), its step records and charges.
fn write_for_action(
    snapshot: &Snapshot,
    action: &PlannedAction,
    renderer: &dyn Renderer,
) -> Result<Option<PlannedWrite>, DunningError> {
    let now = snapshot.now;
    let Some(customer) = snapshot.customer(&action.customer) else {
        return Ok(None);
    };
    let token = new_token();
    let req = RenderRequest {
        org: &snapshot.org,
        customer,
        action,
        token: &token,
    };
    let render_err = |message: String| DunningError::Render {
        template: action.template.clone(),
        locale: action.locale.clone(),
        customer: action.customer.clone(),
        message,
    };
    let (message, task) = match (action.channel, action.recipient.as_ref()) {
        (Channel::Email | Channel::Sms, Some(recipient)) => {
            let rendered = renderer.render_message(&req).map_err(render_err)?;
            let message = OutboxMessage {
                key: action.key.clone(),
                customer: action.customer.clone(),
                channel: action.channel,
                contact: action.contact.clone(),
                recipient: recipient.clone(),
                policy: action.policy.clone(),
                step: action.step,
                template: action.template.clone(),
                locale: action.locale.clone(),
                currency: action.currency,
                invoices: action.invoices.clone(),
                subject: rendered.subject,
                body_text: rendered.text,
                body_html: if action.channel == Channel::Email {
                    rendered.html
                } else {
                    None
                },
                token,
                time_zone: action.time_zone.clone(),
                not_before: action.send_at,
                created_at: now,
                status: MessageStatus::Queued,
                attempts: 0,
                next_attempt_at: action.send_at,
                claimed_by: None,
                lease_until: None,
                last_error: None,
                provider_id: None,
                sent_at: None,
            };
            (Some(message), None)
        }
        _ => {
            let (title, detail) = if action.requested_channel == Channel::Task {
                renderer.render_task(&req).map_err(render_err)?
            } else {
                unreachable_task_text(&snapshot.org, customer, action)
            };
            let kind = if action.requested_channel == Channel::Task {
                TaskKind::Step
            } else {
                TaskKind::Unreachable
            };
            let task = Task {
                invoices: action.invoices.iter().map(|i| i.number.clone()).collect(),
                assignee: customer.collector.clone(),
                ..Task::open(
                    action.key.clone(),
                    kind,
                    &action.customer,
                    title,
                    detail,
                    action.local_date,
                    now,
                )
            };
            (None, Some(task))
        }
    };
    Ok(Some(PlannedWrite {
        steps: action.steps.clone(),
        message,
        task,
        charges: action.charges.clone(),
    }))
}

/// Turns a plan into the writes `record_run` performs.
pub fn writes_for(
    snapshot: &Snapshot,
    plan: &Plan<'_>,
    renderer: &dyn Renderer,
) -> Result<Vec<PlannedWrite>, DunningError> {
    let now = snapshot.now;
    let mut writes = Vec::with_capacity(plan.actions.len() + plan.skipped.len());
    // Rendering dominates a big run and each message is independent: split
    // the actions over the machine's cores, keeping their order.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = plan.actions.len().div_ceil(threads).max(256);
    let rendered: Vec<Result<Vec<Option<PlannedWrite>>, DunningError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = plan
                .actions
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|a| write_for_action(snapshot, a, renderer))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
    for part in rendered {
        writes.extend(part?.into_iter().flatten());
    }
    for skipped in &plan.skipped {
        writes.push(PlannedWrite {
            steps: skipped.records.clone(),
            message: None,
            task: None,
            charges: Vec::new(),
        });
    }
    for broken in &plan.broken_promises {
        let amount = broken
            .amount
            .map(|m| m.to_string())
            .unwrap_or_else(|| "the open balance".to_string());
        let name = snapshot
            .customer(&broken.customer)
            .map_or(broken.customer.as_str(), |c| c.name.as_str());
        writes.push(PlannedWrite {
            steps: Vec::new(),
            message: None,
            task: Some(Task {
                invoices: broken.invoices.clone(),
                assignee: snapshot
                    .customer(&broken.customer)
                    .and_then(|c| c.collector.clone()),
                ..Task::open(
                    format!("broken_promise:{}", broken.promise),
                    TaskKind::BrokenPromise,
                    &broken.customer,
                    format!("{name} broke a promise to pay"),
                    format!(
                        "{name} promised to pay {amount} by {} and had not by the end of the grace period ({}). Invoices: {}. Call them to agree a new date, or escalate.",
                        broken.promised_on,
                        broken.broken_on,
                        broken.invoices.join(", ")
                    ),
                    broken.broken_on,
                    now,
                )
            }),
            charges: Vec::new(),
        });
    }
    Ok(writes)
}

/// The task opened when no channel can reach the customer.
fn unreachable_task_text(
    _org: &Organization,
    customer: &Customer,
    action: &PlannedAction,
) -> (String, String) {
    let total: i64 = action.invoices.iter().map(|i| i.open).sum();
    let list: Vec<String> = action
        .invoices
        .iter()
        .map(|i| {
            format!(
                "{} ({} open, due {})",
                i.number,
                Money::new(i.open, action.currency),
                i.due_date
            )
        })
        .collect();
    (
        format!(
            "Reach {} about {} ({} reminder could not be sent)",
            customer.name,
            Money::new(total, action.currency),
            action.template
        ),
        format!(
            "The '{}' {} reminder could not be sent: {}. Invoices: {}.",
            action.template,
            action.requested_channel,
            action
                .fallback_reason
                .as_deref()
                .unwrap_or("no channel reaches the customer"),
            list.join("; ")
        ),
    )
}

/// Plans and records one run for the organization.
pub fn run(
    store: &dyn Store,
    org: &Organization,
    now: Timestamp,
    renderer: &dyn Renderer,
    actor: &str,
) -> Result<RunReport, DunningError> {
    let snapshot = Snapshot::load(store, org, now)?;
    if snapshot.settings.paused {
        // Nothing is planned while paused, and dunning has not "started" either.
        return Ok(RunReport {
            planned_actions: 0,
            planned_messages: 0,
            planned_tasks: 0,
            broken_promises: 0,
            written: RunCounts::default(),
        });
    }
    let plan = snapshot.plan()?;
    let writes = writes_for(&snapshot, &plan, renderer)?;
    let today = now.to_zoned_datetime(snapshot.org_tz.clone()).date();
    let written = store.record_run(org.id, &writes, today, actor, now)?;
    Ok(RunReport {
        planned_actions: plan.actions.len(),
        planned_messages: plan
            .actions
            .iter()
            .filter(|a| a.channel != Channel::Task)
            .count(),
        planned_tasks: plan
            .actions
            .iter()
            .filter(|a| a.channel == Channel::Task)
            .count(),
        broken_promises: plan.broken_promises.len(),
        written,
    })
}
