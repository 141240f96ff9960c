//! Dunning storage logic both backends share: value conversions, the state
//! changes of outbox messages, the tasks the store opens by itself, and how
//! [`crate::DunningStore::record_run`] decides which actions are written.
//! Keeping these here (the backends only run SQL) is what makes SQLite and
//! PostgreSQL behave identically.

use std::collections::{HashMap, HashSet};

use arflow_domain::dunning::Channel;
use arflow_domain::dunning::records::{
    AssignmentScope, Charge, ChargeKind, MessageStatus, OutboxMessage, StepKey, StepRecord, Task,
    TaskKind, TaskStatus,
};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::common::{corrupt, unknown};
use crate::{PlannedWrite, RunCounts, StoreError};

/// Bounces match addresses case-insensitively; they are stored lower-cased.
pub(crate) fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The date in `zone` at `now`. An unknown zone counts as UTC: a task's due
/// date is not worth failing a delivery worker over.
pub(crate) fn today_in(zone: &str, now: Timestamp) -> Date {
    TimeZone::get(zone)
        .unwrap_or(TimeZone::UTC)
        .to_datetime(now)
        .date()
}

pub(crate) fn to_json<T: Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Database(format!("{what}: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

pub(crate) fn parse_step(s: &str) -> Result<StepKey, StoreError> {
    StepKey::parse(s).ok_or_else(|| corrupt("dunning step", s))
}

pub(crate) fn parse_status(s: &str) -> Result<MessageStatus, StoreError> {
    MessageStatus::parse(s).ok_or_else(|| corrupt("message status", s))
}

pub(crate) fn parse_channel(s: &str) -> Result<Channel, StoreError> {
    Channel::parse(s).ok_or_else(|| corrupt("message channel", s))
}

pub(crate) fn parse_task_kind(s: &str) -> Result<TaskKind, StoreError> {
    TaskKind::parse(s).ok_or_else(|| corrupt("task kind", s))
}

pub(crate) fn task_status_str(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Open => "open",
        TaskStatus::Done => "done",
    }
}

pub(crate) fn parse_task_status(s: &str) -> Result<TaskStatus, StoreError> {
    match s {
        "open" => Ok(TaskStatus::Open),
        "done" => Ok(TaskStatus::Done),
        other => Err(corrupt("task status", other)),
    }
}

pub(crate) fn parse_charge_kind(s: &str) -> Result<ChargeKind, StoreError> {
    ChargeKind::parse(s).ok_or_else(|| corrupt("charge kind", s))
}

pub(crate) fn assignment_scope(kind: &str, key: String) -> Result<AssignmentScope, StoreError> {
    match kind {
        "invoice" => Ok(AssignmentScope::Invoice(key)),
        "customer" => Ok(AssignmentScope::Customer(key)),
        "segment" => Ok(AssignmentScope::Segment(key)),
        other => Err(corrupt("policy assignment scope", other)),
    }
}

pub(crate) fn u32_col(what: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

pub(crate) fn conflict(message: String) -> StoreError {
    StoreError::Conflict(message)
}

pub(crate) fn not_found(entity: &'static str, id: i64) -> StoreError {
    StoreError::NotFound { entity, id }
}

// ---- Outbox state changes ----

/// Fails unless message `id` is in one of the `from` states and claimed by
/// `worker`: a worker whose lease expired must not touch a row someone else
/// has taken since.
pub(crate) fn check_worker(
    id: i64,
    status: MessageStatus,
    claimed_by: Option<&str>,
    worker: &str,
    from: &[MessageStatus],
    doing: &str,
) -> Result<(), StoreError> {
    if !from.contains(&status) {
        return Err(conflict(format!(
            "cannot {doing} message #{id}: it is {status}"
        )));
    }
    if claimed_by != Some(worker) {
        return Err(conflict(format!(
            "cannot {doing} message #{id}: it is claimed by {}, not {worker}",
            claimed_by.unwrap_or("no one")
        )));
    }
    Ok(())
}

/// How a worker method changes a message: from which states, what the
/// conflict message says it tried (`doing`), the event kind, and the error or
/// reason it reported (`detail`).
pub(crate) struct WorkerChange<'a> {
    pub from: &'a [MessageStatus],
    pub doing: &'a str,
    pub kind: &'static str,
    pub detail: &'a str,
}

pub(crate) const CLAIMED_OR_SENDING: &[MessageStatus] =
    &[MessageStatus::Claimed, MessageStatus::Sending];

pub(crate) fn sent(m: &OutboxMessage, provider_id: &str, now: Timestamp) -> OutboxMessage {
    OutboxMessage {
        status: MessageStatus::Sent,
        provider_id: Some(provider_id.to_owned()),
        sent_at: Some(now),
        lease_until: None,
        ..m.clone()
    }
}

pub(crate) fn retry(m: &OutboxMessage, error: &str, next_attempt_at: Timestamp) -> OutboxMessage {
    OutboxMessage {
        status: MessageStatus::Queued,
        next_attempt_at,
        last_error: Some(error.to_owned()),
        claimed_by: None,
        lease_until: None,
        ..m.clone()
    }
}

pub(crate) fn failed(m: &OutboxMessage, error: &str) -> OutboxMessage {
    OutboxMessage {
        status: MessageStatus::Failed,
        last_error: Some(error.to_owned()),
        lease_until: None,
        ..m.clone()
    }
}

pub(crate) fn cancelled(m: &OutboxMessage) -> OutboxMessage {
    OutboxMessage {
        status: MessageStatus::Cancelled,
        lease_until: None,
        ..m.clone()
    }
}

/// A person settled an in-doubt message: delivered, or queued for a fresh
/// attempt right away.
pub(crate) fn confirmed(m: &OutboxMessage, delivered: bool, now: Timestamp) -> OutboxMessage {
    if delivered {
        OutboxMessage {
            status: MessageStatus::Sent,
            sent_at: Some(now),
            lease_until: None,
            ..m.clone()
        }
    } else {
        OutboxMessage {
            status: MessageStatus::Queued,
            next_attempt_at: now,
            claimed_by: None,
            lease_until: None,
            ..m.clone()
        }
    }
}

fn invoice_numbers(m: &OutboxMessage) -> Vec<String> {
    m.invoices.iter().map(|i| i.number.clone()).collect()
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "SMS",
        Channel::Task => "message",
    }
}

/// The task a message gets when its worker vanished while sending it. One
/// per in-doubt episode: a message confirmed not delivered can be retried
/// and end in doubt again, hence the attempt number in the key.
pub(crate) fn in_doubt_task(id: i64, m: &OutboxMessage, today: Date, now: Timestamp) -> Task {
    let channel = channel_name(m.channel);
    let task = Task::open(
        format!("in_doubt:{}:{}", m.key, m.attempts),
        TaskKind::InDoubt,
        &m.customer,
        format!(
            "Check whether the {channel} to {} was delivered",
            m.recipient
        ),
        format!(
            "The worker sending message #{id} ({channel} to {}, \"{}\") stopped while handing it to the provider, \
             so it may or may not have reached the recipient. It will not be sent again on its own. \
             Check with the provider or the customer, then run `arflow outbox confirm {id} --delivered` \
             if it arrived, or `arflow outbox confirm {id} --not-delivered` to send it again.",
            m.recipient, m.subject
        ),
        today,
        now,
    );
    Task {
        invoices: invoice_numbers(m),
        message_key: Some(m.key.clone()),
        ..task
    }
}

/// The task a message gets when it failed for good.
pub(crate) fn delivery_failed_task(
    id: i64,
    m: &OutboxMessage,
    error: &str,
    today: Date,
    now: Timestamp,
) -> Task {
    let channel = channel_name(m.channel);
    let task = Task::open(
        format!("delivery_failed:{}", m.key),
        TaskKind::DeliveryFailed,
        &m.customer,
        format!("The {channel} to {} could not be delivered", m.recipient),
        format!(
            "Message #{id} ({channel} to {}, \"{}\") failed and will not be retried: {error}. \
             Check the contact's details or reach the customer another way.",
            m.recipient, m.subject
        ),
        today,
        now,
    );
    Task {
        invoices: invoice_numbers(m),
        message_key: Some(m.key.clone()),
        ..task
    }
}

/// The task for one customer with a contact at a bounced address.
pub(crate) fn bounce_task(
    address: &str,
    customer: &str,
    contacts: &[String],
    reason: &str,
    today: Date,
    now: Timestamp,
) -> Task {
    Task::open(
        format!("bounce:{address}:{customer}:{}", now.as_microsecond()),
        TaskKind::Bounce,
        customer,
        format!("Email to {address} bounced"),
        format!(
            "Email to {address} (contact {}) bounced: {reason}. No more email goes to this address \
             until the bounce is cleared; find a working address or reach the customer another way.",
            contacts.join(", ")
        ),
        today,
        now,
    )
}

/// Contacts (customer id, customer key, contact name, email) at `address`,
/// grouped by customer in the order given.
pub(crate) fn group_bounced(
    contacts: Vec<(i64, String, String, String)>,
    address: &str,
) -> Vec<(i64, String, Vec<String>)> {
    let mut out: Vec<(i64, String, Vec<String>)> = Vec::new();
    for (id, customer, name, email) in contacts {
        if normalize_address(&email) != address {
            continue;
        }
        match out.last_mut() {
            Some((last, _, names)) if *last == id => names.push(name),
            _ => out.push((id, customer, vec![name])),
        }
    }
    out
}

// ---- Recording a run ----

/// The keys a run refers to (borrowed from its actions), for the backend to
/// resolve within the organization, one query each.
pub(crate) struct RunNeeds<'a> {
    /// Invoice numbers of step records and charges.
    pub invoices: HashSet<&'a str>,
    /// Invoice numbers of charges, whose customer their events name.
    pub charged: HashSet<&'a str>,
    /// Customer keys of messages and tasks.
    pub customers: HashSet<&'a str>,
}

pub(crate) fn run_needs(actions: &[PlannedWrite]) -> RunNeeds<'_> {
    let mut needs = RunNeeds {
        invoices: HashSet::new(),
        charged: HashSet::new(),
        customers: HashSet::new(),
    };
    for a in actions {
        needs
            .invoices
            .extend(a.steps.iter().map(|s| s.invoice.as_str()));
        needs
            .charged
            .extend(a.charges.iter().map(|c| c.invoice.as_str()));
        needs
            .customers
            .extend(a.message.iter().map(|m| m.customer.as_str()));
        needs
            .customers
            .extend(a.task.iter().map(|t| t.customer.as_str()));
    }
    needs.invoices.extend(needs.charged.iter().copied());
    needs
}

/// What the backend found for [`RunNeeds`]; a key it did not find is unknown.
#[derive(Default)]
pub(crate) struct RunRefs<'a> {
    /// Invoice number → id.
    pub invoices: HashMap<&'a str, i64>,
    /// Charged invoice number → its customer's key.
    pub charged: HashMap<&'a str, String>,
    /// Customer key → id.
    pub customers: HashMap<&'a str, i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunTable {
    Steps,
    Messages,
    Tasks,
    Charges,
}

/// What a backend does for [`write_run`]. Each `insert_*` inserts its rows
/// in order unless a row's unique key is taken (by a committed row, one
/// inserted earlier in this transaction, or an earlier row of `rows`) and
/// returns, per row, the new id or `None` when it was not inserted.
pub(crate) trait RunWriter {
    fn insert_steps(&mut self, rows: &[(i64, &StepRecord)])
    -> Result<Vec<Option<i64>>, StoreError>;
    fn insert_messages(
        &mut self,
        rows: &[(i64, &OutboxMessage)],
    ) -> Result<Vec<Option<i64>>, StoreError>;
    fn insert_tasks(&mut self, rows: &[(i64, &Task)]) -> Result<Vec<Option<i64>>, StoreError>;
    fn insert_charges(&mut self, rows: &[(i64, &Charge)]) -> Result<Vec<Option<i64>>, StoreError>;
    fn delete(&mut self, table: RunTable, ids: &[i64]) -> Result<(), StoreError>;
}

/// Writes the actions in phases (every step record, then every message,
/// task, charge), one batch each, so PostgreSQL needs a few round trips
/// rather than several per action. An action that loses any of its rows to
/// an existing key is dropped and the rows it did insert are deleted again
/// (inside the transaction, so no one ever sees them). Within one run the
/// first action to present a key in a phase takes it, even if that action is
/// dropped later. Returns the counts and which actions were written.
pub(crate) fn write_run<W: RunWriter>(
    w: &mut W,
    actions: &[PlannedWrite],
    refs: &RunRefs<'_>,
) -> Result<(RunCounts, Vec<bool>), StoreError> {
    let invoice = |n: &str| {
        refs.invoices
            .get(n)
            .copied()
            .ok_or_else(|| unknown("invoice", n))
    };
    let customer = |k: &str| {
        refs.customers
            .get(k)
            .copied()
            .ok_or_else(|| unknown("customer", k))
    };
    // Every reference is checked before anything is written.
    let mut steps = Vec::new();
    let mut step_owner = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        for s in &a.steps {
            steps.push((invoice(&s.invoice)?, s));
            step_owner.push(i);
        }
        if let Some(m) = &a.message {
            customer(&m.customer)?;
        }
        if let Some(t) = &a.task {
            customer(&t.customer)?;
        }
        for c in &a.charges {
            invoice(&c.invoice)?;
        }
    }

    let mut alive = vec![true; actions.len()];
    let mut owned: Vec<Vec<(RunTable, i64)>> = vec![Vec::new(); actions.len()];
    let settle = |ids: Vec<Option<i64>>,
                  owners: &[usize],
                  table: RunTable,
                  alive: &mut [bool],
                  owned: &mut [Vec<(RunTable, i64)>]|
     -> Result<(), StoreError> {
        if ids.len() != owners.len() {
            return Err(StoreError::Database(format!(
                "{table:?}: {} rows inserted for {} given",
                ids.len(),
                owners.len()
            )));
        }
        for (id, &i) in ids.into_iter().zip(owners) {
            match id {
                Some(id) => owned[i].push((table, id)),
                None => alive[i] = false,
            }
        }
        Ok(())
    };

    let ids = w.insert_steps(&steps)?;
    settle(ids, &step_owner, RunTable::Steps, &mut alive, &mut owned)?;

    let (mut rows, mut owners) = (Vec::new(), Vec::new());
    for (i, a) in actions.iter().enumerate() {
        if let (true, Some(m)) = (alive[i], &a.message) {
            rows.push((customer(&m.customer)?, m));
            owners.push(i);
        }
    }
    let ids = w.insert_messages(&rows)?;
    settle(ids, &owners, RunTable::Messages, &mut alive, &mut owned)?;

    let (mut rows, mut owners) = (Vec::new(), Vec::new());
    for (i, a) in actions.iter().enumerate() {
        if let (true, Some(t)) = (alive[i], &a.task) {
            rows.push((customer(&t.customer)?, t));
            owners.push(i);
        }
    }
    let ids = w.insert_tasks(&rows)?;
    settle(ids, &owners, RunTable::Tasks, &mut alive, &mut owned)?;

    let (mut rows, mut owners) = (Vec::new(), Vec::new());
    for (i, a) in actions.iter().enumerate() {
        if alive[i] {
            for c in &a.charges {
                rows.push((invoice(&c.invoice)?, c));
                owners.push(i);
            }
        }
    }
    let ids = w.insert_charges(&rows)?;
    settle(ids, &owners, RunTable::Charges, &mut alive, &mut owned)?;

    // Undo what the dropped actions inserted.
    for table in [
        RunTable::Steps,
        RunTable::Messages,
        RunTable::Tasks,
        RunTable::Charges,
    ] {
        let ids: Vec<i64> = owned
            .iter()
            .zip(&alive)
            .filter(|(_, alive)| !**alive)
            .flat_map(|(rows, _)| rows.iter().filter(|(t, _)| *t == table).map(|(_, id)| *id))
            .collect();
        if !ids.is_empty() {
            w.delete(table, &ids)?;
        }
    }

    let mut counts = RunCounts::default();
    for (a, _) in actions.iter().zip(&alive).filter(|(_, alive)| **alive) {
        counts.actions += 1;
        counts.step_records += a.steps.len() as u64;
        counts.messages += u64::from(a.message.is_some());
        counts.tasks += u64::from(a.task.is_some());
        counts.charges += a.charges.len() as u64;
    }
    counts.already_done = actions.len() as u64 - counts.actions;
    Ok((counts, alive))
}

/// The events of the written actions, in action order: `message.queued`,
/// `task.created`, `charge.created`.
pub(crate) fn for_each_run_event(
    actions: &[PlannedWrite],
    written: &[bool],
    refs: &RunRefs<'_>,
    mut f: impl FnMut(crate::events::NewEvent) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for (a, _) in actions.iter().zip(written).filter(|(_, w)| **w) {
        if let Some(m) = &a.message {
            f(crate::dunning_events::message_queued(m))?;
        }
        if let Some(t) = &a.task {
            f(crate::dunning_events::task_created(t))?;
        }
        for c in &a.charges {
            let customer = refs
                .charged
                .get(c.invoice.as_str())
                .map_or("", String::as_str);
            f(crate::dunning_events::charge_created(c, customer))?;
        }
    }
    Ok(())
}

/// Who the event log names for a one-click unsubscribe: the recipient,
/// known only by the link they used.
pub(crate) const UNSUBSCRIBE_ACTOR: &str = "recipient (unsubscribe link)";
