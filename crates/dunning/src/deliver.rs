//! Delivering the outbox: claim, check, mark `sending`, hand over, record.
//!
//! SMTP (or an SMS API) and the database cannot commit together, so the
//! order of writes is what makes delivery honest:
//! 1. `claim_messages` marks a batch `claimed` with a lease. A worker that
//!    dies now leaves rows that go back to `queued` when the lease ends:
//!    nothing was sent, so retrying is safe.
//! 2. `mark_sending` is committed **before** the provider is contacted. A
//!    worker that dies from here on leaves a `sending` row; when its lease
//!    ends it becomes `in_doubt` with a task for a person, and is never
//!    re-sent automatically: the provider may already have it.
//! 3. `mark_sent` records the provider's id; a transient failure goes back
//!    to `queued` with exponential backoff, a permanent one is `failed` with a
//!    task (and, for email, a bounce on the address).

use std::collections::HashMap;

use arflow_domain::clock::Clock;
use arflow_domain::dunning::calendar::{in_window, next_send_time};
use arflow_domain::dunning::policy::Channel;
use arflow_domain::dunning::records::{DunningSettings, OutboxMessage};
use arflow_domain::model::InvoiceStatus;
use arflow_notify::{FailureKind, SendError};
use arflow_store::{Released, Store};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::DunningError;

/// Hands a message to its provider (email or SMS); returns the provider's id.
pub trait Courier: Send + Sync {
    fn send(&self, message: &OutboxMessage) -> Result<String, SendError>;
}

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Names this worker in claims (host and process id by default).
    pub worker: String,
    pub batch: u32,
    /// How long a claim holds before another worker may take the row back
    /// (or declare it in doubt). Longer than the slowest provider call.
    pub lease: SignedDuration,
    /// Attempts before a transiently failing message is marked failed.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt up to `backoff_max`.
    pub backoff_base: SignedDuration,
    pub backoff_max: SignedDuration,
    /// How old the cached open balances may be when deciding whether a
    /// queued message is still needed.
    pub ledger_max_age: SignedDuration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            worker: format!(
                "{}:{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_string()),
                std::process::id()
            ),
            batch: 100,
            lease: SignedDuration::from_mins(10),
            max_attempts: 8,
            backoff_base: SignedDuration::from_mins(1),
            backoff_max: SignedDuration::from_hours(1),
            ledger_max_age: SignedDuration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryReport {
    pub released: Released,
    pub claimed: u64,
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Put back until the send window opens again.
    pub outside_window: u64,
}

/// Open balances per organization, refreshed when older than `ledger_max_age`.
#[derive(Default)]
pub struct LedgerCache {
    orgs: HashMap<i64, (Timestamp, HashMap<String, i64>)>,
}

impl LedgerCache {
    fn open_amounts(
        &mut self,
        store: &dyn Store,
        org: i64,
        now: Timestamp,
        max_age: SignedDuration,
    ) -> Result<&HashMap<String, i64>, DunningError> {
        let stale = self
            .orgs
            .get(&org)
            .is_none_or(|(at, _)| now.duration_since(*at) > max_age);
        if stale {
            let mut open: HashMap<String, i64> = HashMap::new();
            for inv in store.invoices(org)? {
                let amount = if inv.status == InvoiceStatus::Open {
                    inv.total
                } else {
                    0
                };
                open.insert(inv.record.number, amount);
            }
            for a in store.allocations(org)? {
                if let Some(o) = open.get_mut(&a.invoice) {
                    *o -= a.amount;
                }
            }
            self.orgs.insert(org, (now, open));
        }
        Ok(&self.orgs[&org].1)
    }
}

fn backoff(opts: &DeliveryOptions, attempts: u32) -> SignedDuration {
    let factor = 1i32 << attempts.saturating_sub(1).min(20);
    opts.backoff_base
        .checked_mul(factor)
        .unwrap_or(opts.backoff_max)
        .min(opts.backoff_max)
}

/// One delivery pass: release expired leases, claim a batch, deliver it.
pub fn deliver_batch(
    store: &dyn Store,
    courier: &dyn Courier,
    opts: &DeliveryOptions,
    clock: &dyn Clock,
    cache: &mut LedgerCache,
) -> Result<DeliveryReport, DunningError> {
    let mut report = DeliveryReport {
        released: store.release_expired_leases(clock.now())?,
        ..DeliveryReport::default()
    };
    let now = clock.now();
    let lease_until = now.checked_add(opts.lease).unwrap_or(now);
    let claimed = store.claim_messages(&opts.worker, now, lease_until, opts.batch)?;
    report.claimed = claimed.len() as u64;
    let mut settings: HashMap<i64, DunningSettings> = HashMap::new();
    for c in claimed {
        let id = c.message.id;
        let msg = &c.message.record;
        let now = clock.now();
        let s = match settings.entry(c.org) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(store.dunning_settings(c.org)?)
            }
        };

        // Paid (or voided) since it was queued: withdraw it.
        let open = cache.open_amounts(store, c.org, now, opts.ledger_max_age)?;
        if !msg.invoices.is_empty()
            && msg
                .invoices
                .iter()
                .all(|i| open.get(&i.number).is_none_or(|o| *o <= 0))
        {
            store.mark_cancelled(
                id,
                &opts.worker,
                "every invoice in it was paid or closed after it was queued",
                now,
            )?;
            report.cancelled += 1;
            continue;
        }

        // Never outside the window in the customer's zone (the worker may
        // have been down until after closing time).
        let tz = TimeZone::get(&msg.time_zone).unwrap_or(TimeZone::UTC);
        if !in_window(&s.send_window, &s.holidays, &tz, now) {
            let next = next_send_time(&s.send_window, &s.holidays, &tz, now).unwrap_or_else(|| {
                now.checked_add(SignedDuration::from_hours(24))
                    .unwrap_or(now)
            });
            store.mark_retry(id, &opts.worker, "outside the send window", next, now)?;
            report.outside_window += 1;
            continue;
        }

        store.mark_sending(id, &opts.worker, now)?;
        match courier.send(msg) {
            Ok(provider_id) => {
                store.mark_sent(id, &opts.worker, &provider_id, clock.now())?;
                report.sent += 1;
            }
            Err(SendError {
                kind: FailureKind::Transient,
                message,
            }) if msg.attempts < opts.max_attempts => {
                let at = clock.now();
                let next = at.checked_add(backoff(opts, msg.attempts)).unwrap_or(at);
                store.mark_retry(id, &opts.worker, &message, next, at)?;
                report.retried += 1;
            }
            Err(SendError { kind, message }) => {
                let at = clock.now();
                let why = match kind {
                    FailureKind::Transient => {
                        format!("gave up after {} attempts: {message}", msg.attempts)
                    }
                    FailureKind::Permanent => message,
                };
                store.mark_failed(id, &opts.worker, &why, at)?;
                if kind == FailureKind::Permanent && msg.channel == Channel::Email {
                    store.record_bounce(c.org, &msg.recipient, &why, at)?;
                }
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let opts = DeliveryOptions::default();
        let mins: Vec<i64> = (1..=9).map(|a| backoff(&opts, a).as_secs() / 60).collect();
        assert_eq!(mins, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
