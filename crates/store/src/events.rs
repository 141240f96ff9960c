//! The events a change set appends to the log, computed before writing so both
//! backends record exactly the same thing.
//!
//! What an event's `data` holds:
//! - `*.created`: `{}`. The created record is stored in its own table and
//!   every later change to it is logged as an `*.updated` event with the full
//!   from/to values, so the record as created can always be reconstructed;
//!   copying the whole record into the log as well doubled the size of a
//!   large import and most of its write time. The summary still describes
//!   the record for humans ("Invoice INV-1 for 100.00 USD created").
//! - `*.updated`: `{"changes": {field: {"from": old, "to": new}}}`. This
//!   includes `organization.updated` (keyed by the organization's slug),
//!   written by [`crate::Store::update_organization`].
//! - `fx_rate.set`: the rate (a set may replace an earlier rate for the same
//!   day, so the log keeps the value).

use std::fmt::{self, Write as _};

use arflow_domain::model::{Allocation, AllocationSource, Organization};
use arflow_domain::money::Currency;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::changeset::{Change, ChangeSet};

/// An event about to be appended (the store adds id and timestamp).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: &'static str,
    pub entity_type: &'static str,
    pub entity_key: String,
    pub customer: Option<String>,
    pub summary: String,
    pub data: Value,
}

impl NewEvent {
    fn empty() -> NewEvent {
        NewEvent {
            kind: "",
            entity_type: "",
            entity_key: String::new(),
            customer: None,
            summary: String::new(),
            data: Value::Null,
        }
    }

    /// Sets the customer, reusing the existing buffer.
    pub(crate) fn set_customer(&mut self, customer: Option<&str>) {
        match (customer, &mut self.customer) {
            (Some(c), Some(s)) => {
                s.clear();
                s.push_str(c);
            }
            (Some(c), slot @ None) => *slot = Some(c.to_owned()),
            (None, slot) => *slot = None,
        }
    }
}

/// Amounts in minor units as decimal text, exactly like
/// [`arflow_domain::money::format_minor`] but written straight into the
/// summary being built instead of allocating a `String` per event.
pub(crate) struct Minor(pub i64, pub Currency);

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Minor(minor, currency) = *self;
        let exp = u32::from(currency.exponent());
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        if exp == 0 {
            return write!(f, "{sign}{abs}");
        }
        let unit = 10u64.pow(exp);
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / unit,
            abs % unit,
            width = exp as usize
        )
    }
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Field-by-field difference `{field: {"from": old, "to": new}}`.
pub fn diff<T: Serialize>(before: &T, after: &T) -> Map<String, Value> {
    let (Value::Object(b), Value::Object(a)) = (to_value(before), to_value(after)) else {
        return Map::new();
    };
    let mut out = Map::new();
    for (k, new) in &a {
        let old = b.get(k).unwrap_or(&Value::Null);
        if old != new {
            out.insert(k.clone(), json!({"from": old, "to": new}));
        }
    }
    out
}

/// Fills `ev` for a created or changed record; false when an update changes
/// nothing (no event).
fn change_event<T: Serialize>(
    ev: &mut NewEvent,
    change: &Change<T>,
    entity_type: &'static str,
    key: &str,
    customer: &str,
    describe: impl Fn(&T, &mut String),
) -> bool {
    ev.summary.clear();
    match change {
        Change::Insert(r) => {
            ev.kind = created_kind(entity_type);
            describe(r, &mut ev.summary);
            ev.summary.push_str(" created");
            // An empty map does not allocate.
            ev.data = Value::Object(Map::new());
        }
        Change::Update { before, after, .. } => {
            let d = diff(before, after);
            if d.is_empty() {
                return false;
            }
            ev.kind = updated_kind(entity_type);
            describe(after, &mut ev.summary);
            ev.summary.push_str(" updated: ");
            for (i, field) in d.keys().enumerate() {
                if i > 0 {
                    ev.summary.push_str(", ");
                }
                ev.summary.push_str(field);
            }
            ev.data = json!({ "changes": d });
        }
    }
    ev.entity_type = entity_type;
    ev.entity_key.clear();
    ev.entity_key.push_str(key);
    ev.set_customer(Some(customer));
    true
}

// Kinds are a closed set; static strings spare a `format!` per event.
fn created_kind(entity_type: &str) -> &'static str {
    match entity_type {
        "customer" => "customer.created",
        "contact" => "contact.created",
        "invoice" => "invoice.created",
        "credit_note" => "credit_note.created",
        "payment" => "payment.created",
        _ => "allocation.created",
    }
}

fn updated_kind(entity_type: &str) -> &'static str {
    match entity_type {
        "customer" => "customer.updated",
        "contact" => "contact.updated",
        "invoice" => "invoice.updated",
        "credit_note" => "credit_note.updated",
        _ => "payment.updated",
    }
}

/// The `organization.updated` event for a change of the organization's
/// settings, or `None` when nothing changed.
pub fn organization_updated(before: &Organization, after: &Organization) -> Option<NewEvent> {
    let d = diff(before, after);
    if d.is_empty() {
        return None;
    }
    let mut summary = format!("Organization {} updated: ", after.name);
    for (i, field) in d.keys().enumerate() {
        if i > 0 {
            summary.push_str(", ");
        }
        summary.push_str(field);
    }
    Some(NewEvent {
        kind: "organization.updated",
        entity_type: "organization",
        entity_key: after.slug.clone(),
        customer: None,
        summary,
        data: json!({ "changes": d }),
    })
}

/// One event per created or changed record, in application order.
pub fn events_for(cs: &ChangeSet) -> Vec<NewEvent> {
    let mut out = Vec::new();
    let _ = for_each_event(cs, |e, _| {
        out.push(e.clone());
        Ok::<(), std::convert::Infallible>(())
    });
    out
}

/// Like [`events_for`] but hands each event over as it is built (with the
/// allocation it is about, if any), so a store writing a million events never
/// holds them all in memory at once. The same `NewEvent` is refilled for
/// every event (its buffers are reused rather than reallocated per event);
/// the callback may adjust it but must copy what it wants to keep.
pub fn for_each_event<E>(
    cs: &ChangeSet,
    mut f: impl FnMut(&mut NewEvent, Option<&Allocation>) -> Result<(), E>,
) -> Result<(), E> {
    let mut ev = NewEvent::empty();
    for c in &cs.customers {
        let r = c.record();
        if change_event(
            &mut ev,
            c,
            "customer",
            &r.external_id,
            &r.external_id,
            |r, s| {
                let _ = write!(s, "Customer {}", r.name);
            },
        ) {
            f(&mut ev, None)?;
        }
    }
    for c in &cs.contacts {
        let r = c.record();
        if change_event(
            &mut ev,
            c,
            "contact",
            &r.external_id,
            &r.customer,
            |r, s| {
                let _ = write!(s, "Contact {}", r.name);
            },
        ) {
            f(&mut ev, None)?;
        }
    }
    for c in &cs.invoices {
        let r = c.record();
        if change_event(&mut ev, c, "invoice", &r.number, &r.customer, |r, s| {
            let _ = write!(
                s,
                "Invoice {} for {} {}",
                r.number,
                Minor(r.total, r.currency),
                r.currency
            );
        }) {
            f(&mut ev, None)?;
        }
    }
    for c in &cs.credit_notes {
        let r = c.record();
        if change_event(&mut ev, c, "credit_note", &r.number, &r.customer, |r, s| {
            let _ = write!(
                s,
                "Credit note {} for {} {}",
                r.number,
                Minor(r.total, r.currency),
                r.currency
            );
        }) {
            f(&mut ev, None)?;
        }
    }
    for c in &cs.payments {
        let r = c.record();
        if change_event(
            &mut ev,
            c,
            "payment",
            &r.external_id,
            &r.customer,
            |r, s| {
                let _ = write!(
                    s,
                    "Payment of {} {} received {}",
                    Minor(r.amount, r.currency),
                    r.currency,
                    r.received_on
                );
            },
        ) {
            f(&mut ev, None)?;
        }
    }
    for a in &cs.allocations {
        let (kind, key) = match &a.source {
            AllocationSource::Payment(k) => ("payment", k),
            AllocationSource::CreditNote(k) => ("credit note", k),
        };
        ev.kind = "allocation.created";
        ev.entity_type = "allocation";
        ev.entity_key.clear();
        let _ = write!(ev.entity_key, "{}:{}", a.invoice, key);
        // The store fills in the customer and states the amount as money: it
        // knows the invoice's customer and currency (finish_allocation_event).
        ev.set_customer(None);
        ev.summary.clear();
        let _ = write!(
            ev.summary,
            "{} minor units of {kind} {key} applied to invoice {} on {}",
            a.amount, a.invoice, a.applied_on
        );
        ev.data = Value::Object(Map::new());
        f(&mut ev, Some(a))?;
    }
    for r in &cs.fx_rates {
        ev.kind = "fx_rate.set";
        ev.entity_type = "fx_rate";
        ev.entity_key.clear();
        let _ = write!(ev.entity_key, "{}/{}@{}", r.from, r.to, r.valid_on);
        ev.set_customer(None);
        ev.summary.clear();
        let _ = write!(
            ev.summary,
            "1 {} = {} {} from {}",
            r.from,
            r.rate.to_decimal_string(),
            r.to,
            r.valid_on
        );
        ev.data = to_value(r);
        f(&mut ev, None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arflow_domain::money::format_minor;

    #[test]
    fn minor_formats_like_format_minor() {
        for c in [
            Currency::USD,
            Currency::JPY,
            Currency::parse("BHD").unwrap(),
        ] {
            for v in [
                0,
                1,
                -1,
                5,
                99,
                100,
                123_456,
                -123_456,
                1_000_000_007,
                i64::MIN,
                i64::MAX,
            ] {
                assert_eq!(Minor(v, c).to_string(), format_minor(v, c), "{v} {c}");
            }
        }
    }
}
