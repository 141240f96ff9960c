//! The events dunning writes append to the log, built here once so both
//! backends record exactly the same thing.
//!
//! Same conventions as the ledger's events ([`crate::events`]): a creation
//! event summarises the record in one sentence and carries `{}` (the record's
//! own row holds its values); a change to a record carries the field-by-field
//! `{"changes": {field: {"from", "to"}}}` diff of the record before and after,
//! so ending a hold, sending a message or waiving a charge reads back exactly
//! what changed.

use std::fmt::Write as _;

use arflow_domain::dunning::Channel;
use arflow_domain::dunning::records::{
    AssignmentScope, Bounce, Charge, ChargeKind, Dispute, DunningSettings, Hold, OutboxMessage,
    Promise, Scope, StoredPolicy, Task,
};
use jiff::civil::Date;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::RunCounts;
use crate::events::{Minor, NewEvent, diff};

fn new(
    kind: &'static str,
    entity_type: &'static str,
    entity_key: String,
    customer: Option<&str>,
    summary: String,
    data: Value,
) -> NewEvent {
    NewEvent {
        kind,
        entity_type,
        entity_key,
        customer: customer.map(str::to_owned),
        summary,
        data,
    }
}

fn created() -> Value {
    Value::Object(Map::new())
}

fn changes<T: Serialize>(before: &T, after: &T) -> Value {
    json!({ "changes": diff(before, after) })
}

/// "invoice INV-1", "invoices INV-1 and INV-2", "invoices INV-1, INV-2, INV-3 and 4 more".
fn invoice_list(numbers: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut s = String::from(if numbers.len() == 1 {
        "invoice "
    } else {
        "invoices "
    });
    let shown = numbers.len().min(SHOWN);
    for (i, n) in numbers[..shown].iter().enumerate() {
        if i > 0 {
            s.push_str(if i + 1 == shown && numbers.len() <= SHOWN {
                " and "
            } else {
                ", "
            });
        }
        s.push_str(n);
    }
    if numbers.len() > SHOWN {
        let _ = write!(s, " and {} more", numbers.len() - SHOWN);
    }
    s
}

fn channel_word(c: Channel) -> &'static str {
    match c {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Task => "Message",
    }
}

/// "Email to anna@example.com about invoice INV-1".
fn message_phrase(m: &OutboxMessage) -> String {
    let numbers: Vec<&str> = m.invoices.iter().map(|i| i.number.as_str()).collect();
    let mut s = format!("{} to {}", channel_word(m.channel), m.recipient);
    if !numbers.is_empty() {
        let _ = write!(s, " about {}", invoice_list(&numbers));
    }
    s
}

fn charge_phrase(c: &Charge) -> String {
    let what = match c.kind {
        ChargeKind::LateFee => "Late fee",
        ChargeKind::Interest => "Interest",
        ChargeKind::Compensation => "Compensation",
    };
    format!(
        "{what} of {} {} on invoice {}",
        Minor(c.amount.minor, c.amount.currency),
        c.amount.currency,
        c.invoice
    )
}

fn fields_list(d: &Value) -> String {
    d["changes"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// `None` when nothing changed.
pub(crate) fn settings_updated(
    slug: &str,
    before: &DunningSettings,
    after: &DunningSettings,
) -> Option<NewEvent> {
    let d = diff(before, after);
    if d.is_empty() {
        return None;
    }
    let data = json!({ "changes": d });
    let summary = format!("Dunning settings updated: {}", fields_list(&data));
    Some(new(
        "dunning_settings.updated",
        "dunning_settings",
        slug.to_owned(),
        None,
        summary,
        data,
    ))
}

pub(crate) fn policy_created(p: &StoredPolicy) -> NewEvent {
    new(
        "policy.created",
        "policy",
        p.name.clone(),
        None,
        format!("Policy {} created", p.name),
        created(),
    )
}

pub(crate) fn policy_updated(before: &StoredPolicy, after: &StoredPolicy) -> NewEvent {
    new(
        "policy.updated",
        "policy",
        after.name.clone(),
        None,
        format!("Policy {} updated", after.name),
        changes(before, after),
    )
}

pub(crate) fn scope_parts(scope: &AssignmentScope) -> (&'static str, &str) {
    match scope {
        AssignmentScope::Invoice(k) => ("invoice", k),
        AssignmentScope::Customer(k) => ("customer", k),
        AssignmentScope::Segment(k) => ("segment", k),
    }
}

/// `policy.assigned` (`to` is `Some`) or `policy.unassigned`; `customer` is
/// the customer the scope belongs to, for the customer timeline.
pub(crate) fn policy_assignment(
    scope: &AssignmentScope,
    from: Option<&str>,
    to: Option<&str>,
    customer: Option<&str>,
) -> NewEvent {
    let (kind, key) = scope_parts(scope);
    let (event_kind, summary) = match (to, from) {
        (Some(to), Some(from)) => (
            "policy.assigned",
            format!("Policy {to} assigned to {kind} {key} (was {from})"),
        ),
        (Some(to), None) => (
            "policy.assigned",
            format!("Policy {to} assigned to {kind} {key}"),
        ),
        (None, from) => (
            "policy.unassigned",
            format!("Policy {} unassigned from {kind} {key}", from.unwrap_or("")),
        ),
    };
    new(
        event_kind,
        "policy_assignment",
        format!("{kind}:{key}"),
        customer,
        summary,
        json!({ "changes": { "policy": { "from": from, "to": to } } }),
    )
}

fn scope_text(scope: &Scope) -> String {
    format!("{} {}", scope.kind(), scope.key())
}

pub(crate) fn hold_created(id: i64, h: &Hold, customer: &str) -> NewEvent {
    let until = match h.expires_on {
        Some(d) => format!("until {d}"),
        None => "with no end date".to_string(),
    };
    new(
        "hold.created",
        "hold",
        id.to_string(),
        Some(customer),
        format!("Hold on {} {until}: {}", scope_text(&h.scope), h.reason),
        created(),
    )
}

pub(crate) fn hold_ended(id: i64, before: &Hold, after: &Hold, customer: &str) -> NewEvent {
    new(
        "hold.ended",
        "hold",
        id.to_string(),
        Some(customer),
        format!(
            "Hold on {} ended: {}",
            scope_text(&after.scope),
            after.reason
        ),
        changes(before, after),
    )
}

pub(crate) fn dispute_opened(id: i64, d: &Dispute, customer: &str) -> NewEvent {
    new(
        "dispute.opened",
        "dispute",
        id.to_string(),
        Some(customer),
        format!("Dispute opened on invoice {}: {}", d.invoice, d.reason),
        created(),
    )
}

pub(crate) fn dispute_resolved(
    id: i64,
    before: &Dispute,
    after: &Dispute,
    customer: &str,
) -> NewEvent {
    new(
        "dispute.resolved",
        "dispute",
        id.to_string(),
        Some(customer),
        format!(
            "Dispute on invoice {} resolved: {}",
            after.invoice,
            after.resolution.as_deref().unwrap_or("")
        ),
        changes(before, after),
    )
}

fn promise_phrase(p: &Promise) -> String {
    let what = match p.amount {
        Some(m) => format!("{} {}", Minor(m.minor, m.currency), m.currency),
        None => "the open balance".to_string(),
    };
    format!(
        "Promise to pay {what} of {} by {}",
        scope_text(&p.scope),
        p.promised_on
    )
}

pub(crate) fn promise_created(id: i64, p: &Promise, customer: &str) -> NewEvent {
    new(
        "promise.created",
        "promise",
        id.to_string(),
        Some(customer),
        promise_phrase(p),
        created(),
    )
}

pub(crate) fn promise_cancelled(
    id: i64,
    before: &Promise,
    after: &Promise,
    customer: &str,
) -> NewEvent {
    new(
        "promise.cancelled",
        "promise",
        id.to_string(),
        Some(customer),
        format!("{} cancelled", promise_phrase(after)),
        changes(before, after),
    )
}

pub(crate) fn run(today: Date, counts: &RunCounts) -> NewEvent {
    let mut summary = format!(
        "Dunning run for {today} wrote {} action{} ({} message{}, {} task{}, {} charge{})",
        counts.actions,
        plural(counts.actions),
        counts.messages,
        plural(counts.messages),
        counts.tasks,
        plural(counts.tasks),
        counts.charges,
        plural(counts.charges),
    );
    if counts.already_done > 0 {
        let _ = write!(
            summary,
            "; {} {} already done",
            counts.already_done,
            if counts.already_done == 1 {
                "was"
            } else {
                "were"
            }
        );
    }
    let mut data = serde_json::to_value(counts).unwrap_or_else(|_| created());
    if let Value::Object(m) = &mut data {
        m.insert("today".into(), Value::String(today.to_string()));
    }
    new(
        "dunning.run",
        "dunning_run",
        today.to_string(),
        None,
        summary,
        data,
    )
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) fn message_queued(m: &OutboxMessage) -> NewEvent {
    new(
        "message.queued",
        "message",
        m.key.clone(),
        Some(&m.customer),
        format!(
            "{} queued (policy {}, step {})",
            message_phrase(m),
            m.policy,
            m.step
        ),
        created(),
    )
}

/// A delivery state change: `message.sent`, `.retry`, `.failed`,
/// `.cancelled` or `.confirmed`, with the diff of the message.
pub(crate) fn message_changed(
    kind: &'static str,
    before: &OutboxMessage,
    after: &OutboxMessage,
    detail: &str,
) -> NewEvent {
    let phrase = message_phrase(after);
    let summary = match kind {
        "message.sent" => format!("{phrase} sent"),
        "message.retry" => format!(
            "{phrase} will be retried at {}: {detail}",
            after.next_attempt_at
        ),
        "message.failed" => format!("{phrase} failed: {detail}"),
        "message.cancelled" => format!("{phrase} cancelled: {detail}"),
        _ => format!("{phrase} {detail}"),
    };
    new(
        kind,
        "message",
        after.key.clone(),
        Some(&after.customer),
        summary,
        changes(before, after),
    )
}

pub(crate) fn task_created(t: &Task) -> NewEvent {
    new(
        "task.created",
        "task",
        t.key.clone(),
        Some(&t.customer),
        format!("Task for customer {}: {}", t.customer, t.title),
        created(),
    )
}

pub(crate) fn task_completed(before: &Task, after: &Task) -> NewEvent {
    new(
        "task.completed",
        "task",
        after.key.clone(),
        Some(&after.customer),
        format!("Task done for customer {}: {}", after.customer, after.title),
        changes(before, after),
    )
}

pub(crate) fn charge_created(c: &Charge, customer: &str) -> NewEvent {
    new(
        "charge.created",
        "charge",
        c.key.clone(),
        Some(customer),
        format!("{}: {}", charge_phrase(c), c.description),
        created(),
    )
}

pub(crate) fn charge_waived(before: &Charge, after: &Charge, customer: &str) -> NewEvent {
    new(
        "charge.waived",
        "charge",
        after.key.clone(),
        Some(customer),
        format!(
            "{} waived: {}",
            charge_phrase(after),
            after.waive_reason.as_deref().unwrap_or("")
        ),
        changes(before, after),
    )
}

/// `before` is the earlier bounce of the address, if one was recorded.
pub(crate) fn bounce_recorded(before: Option<&Bounce>, after: &Bounce) -> NewEvent {
    new(
        "bounce.recorded",
        "bounce",
        after.address.clone(),
        None,
        format!("Email to {} bounced: {}", after.address, after.reason),
        before.map_or_else(created, |b| changes(b, after)),
    )
}

pub(crate) fn bounce_cleared(before: &Bounce, after: &Bounce) -> NewEvent {
    new(
        "bounce.cleared",
        "bounce",
        after.address.clone(),
        None,
        format!(
            "Bounce of {} cleared: email to it may resume",
            after.address
        ),
        changes(before, after),
    )
}

/// A contact opted out of email through a message's one-click link.
pub(crate) fn contact_unsubscribed(contact: &str, customer: &str, address: &str) -> NewEvent {
    new(
        "contact.unsubscribed",
        "contact",
        contact.to_string(),
        Some(customer),
        format!("{address} unsubscribed from reminder emails with the one-click link"),
        json!({"changes": {"email_opt_out": {"from": false, "to": true}}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_lists_read_as_english() {
        assert_eq!(invoice_list(&["A"]), "invoice A");
        assert_eq!(invoice_list(&["A", "B"]), "invoices A and B");
        assert_eq!(invoice_list(&["A", "B", "C"]), "invoices A, B and C");
        assert_eq!(
            invoice_list(&["A", "B", "C", "D", "E"]),
            "invoices A, B, C and 2 more"
        );
    }
}
