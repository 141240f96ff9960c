//! Storage for dunning: settings, policies and their assignments, holds,
//! disputes, promises, step progress, the outbox, tasks, charges, bounces.
//!
//! Like the ledger, every method is scoped to one organization, except the
//! delivery-worker methods (`claim_messages`, `release_expired_leases`,
//! `mark_*`) which work on outbox row ids across organizations so one worker
//! serves every tenant; they never return another organization's row to a
//! caller that asked for one organization.
//!
//! Exactly-once rests on two unique constraints, checked inside the
//! transaction that records a run: `(org, invoice, policy, step)` on step
//! records and `(org, key)` on outbox messages and tasks. A second run that
//! planned the same step finds the rows taken and writes nothing for them.

use arflow_domain::dunning::records::{
    AssignmentScope, Bounce, Charge, Dispute, DunningSettings, Hold, MessageStatus, OutboxMessage,
    PolicyAssignment, Promise, StepRecord, StoredPolicy, Task,
};
use arflow_domain::model::Stored;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::StoreError;

/// One planned message (or task) and what it records, written atomically by
/// [`DunningStore::record_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWrite {
    /// The step records this action completes; the whole action is dropped
    /// if any of them already exists (another run did it).
    pub steps: Vec<StepRecord>,
    /// The message to enqueue, if the action sends one.
    pub message: Option<OutboxMessage>,
    /// The task to open, if the action is (or falls back to) a human task.
    pub task: Option<Task>,
    /// Fees (and interest/compensation) charged at this step.
    pub charges: Vec<Charge>,
}

/// What [`DunningStore::record_run`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    /// Actions written in full.
    pub actions: u64,
    /// Actions dropped because another run had already recorded one of their steps
    /// or their message/task key.
    pub already_done: u64,
    pub messages: u64,
    pub tasks: u64,
    pub charges: u64,
    pub step_records: u64,
}

/// Filters for listing the outbox.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub status: Option<MessageStatus>,
    pub customer: Option<String>,
    /// Newest first, at most this many.
    pub limit: Option<u32>,
}

/// A message claimed for delivery, with its organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub org: i64,
    pub message: Stored<OutboxMessage>,
}

/// What [`DunningStore::unsubscribe`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsubscribed {
    pub org: i64,
    /// The customer's external id.
    pub customer: String,
    /// The address that no longer receives reminder emails.
    pub address: String,
    /// False when it was already opted out (a repeated click changes nothing).
    pub changed: bool,
}

/// What [`DunningStore::release_expired_leases`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Released {
    /// `claimed` rows whose worker vanished before contacting the provider:
    /// safely back to `queued`.
    pub requeued: u64,
    /// `sending` rows whose worker vanished mid-attempt: now `in_doubt`, each
    /// with an open task for a person.
    pub in_doubt: u64,
}

pub trait DunningStore: Send + Sync {
    /// Every organization's id (for the worker, which serves them all).
    fn organization_ids(&self) -> Result<Vec<i64>, StoreError>;

    /// The settings, or the defaults when none were saved.
    fn dunning_settings(&self, org: i64) -> Result<DunningSettings, StoreError>;
    /// Saves the settings and logs `dunning_settings.updated` with the diff.
    fn set_dunning_settings(
        &self,
        org: i64,
        settings: &DunningSettings,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    fn policies(&self, org: i64) -> Result<Vec<StoredPolicy>, StoreError>;
    /// Inserts or replaces the policy `name` (the caller validated `source`);
    /// logs `policy.created` or `policy.updated`.
    fn put_policy(
        &self,
        org: i64,
        name: &str,
        source: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    fn policy_assignments(&self, org: i64) -> Result<Vec<PolicyAssignment>, StoreError>;
    /// Assigns `policy` to the scope (`None` removes the assignment). The
    /// policy must be stored and invoice and customer scopes must exist
    /// ([`StoreError::UnknownReference`]: a policy is named, not numbered).
    /// Logs `policy.assigned` / `policy.unassigned`.
    fn assign_policy(
        &self,
        org: i64,
        scope: &AssignmentScope,
        policy: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    fn holds(&self, org: i64) -> Result<Vec<Stored<Hold>>, StoreError>;
    /// The scope's customer or invoice must exist. Logs `hold.created`.
    fn create_hold(&self, org: i64, hold: &Hold, now: Timestamp) -> Result<i64, StoreError>;
    /// Ends an active hold (`ended_at = now`); logs `hold.ended`. Ending a
    /// hold that already ended or expired is [`StoreError::Conflict`].
    fn end_hold(&self, org: i64, id: i64, actor: &str, now: Timestamp) -> Result<(), StoreError>;

    fn disputes(&self, org: i64) -> Result<Vec<Stored<Dispute>>, StoreError>;
    /// Opens a dispute on an existing invoice; at most one open dispute per
    /// invoice ([`StoreError::Conflict`]). Logs `dispute.opened`.
    fn open_dispute(&self, org: i64, dispute: &Dispute, now: Timestamp) -> Result<i64, StoreError>;
    /// Logs `dispute.resolved`; resolving a resolved dispute is a conflict.
    fn resolve_dispute(
        &self,
        org: i64,
        id: i64,
        resolution: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    fn promises(&self, org: i64) -> Result<Vec<Stored<Promise>>, StoreError>;
    /// Logs `promise.created`.
    fn create_promise(
        &self,
        org: i64,
        promise: &Promise,
        now: Timestamp,
    ) -> Result<i64, StoreError>;
    /// Several promises (one per invoice, say) in one transaction: all are
    /// recorded or, on the first error, none.
    fn create_promises(
        &self,
        org: i64,
        promises: &[Promise],
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError>;
    /// Logs `promise.cancelled`; cancelling twice is a conflict.
    fn cancel_promise(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Every step record of the organization.
    fn step_records(&self, org: i64) -> Result<Vec<StepRecord>, StoreError>;

    /// Writes every action in one transaction: for each action, its step
    /// records, message, task and charges, or nothing of it when one of its
    /// step records or keys already exists. Also sets
    /// `DunningSettings::started_on` to `today` if it was unset and the run
    /// recorded at least one step, and logs one
    /// `dunning.run` event with the counts plus a `message.queued` /
    /// `task.created` / `charge.created` event per record.
    fn record_run(
        &self,
        org: i64,
        actions: &[PlannedWrite],
        today: Date,
        actor: &str,
        now: Timestamp,
    ) -> Result<RunCounts, StoreError>;

    fn outbox(
        &self,
        org: i64,
        filter: &OutboxFilter,
    ) -> Result<Vec<Stored<OutboxMessage>>, StoreError>;
    fn message(&self, org: i64, id: i64) -> Result<Option<Stored<OutboxMessage>>, StoreError>;
    /// Messages (not tasks) sent or being sent to each customer since `since`
    /// (status queued, claimed, sending, sent or in doubt), as (customer,
    /// `not_before` or `sent_at`): what contact hygiene counts.
    fn contact_log(
        &self,
        org: i64,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError>;

    /// Claims up to `limit` queued messages whose `not_before` and
    /// `next_attempt_at` have passed, in any organization not paused: sets
    /// them `claimed` by `worker` until `lease_until`. On PostgreSQL rows are
    /// picked `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the
    /// same row.
    fn claim_messages(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// `claimed` → `sending`, committed before the provider is contacted.
    /// Fails with [`StoreError::Conflict`] if the row is no longer claimed by
    /// `worker` (its lease expired and someone else took it).
    fn mark_sending(&self, id: i64, worker: &str, now: Timestamp) -> Result<(), StoreError>;
    /// `sending` → `sent` with the provider's id; logs `message.sent`.
    fn mark_sent(
        &self,
        id: i64,
        worker: &str,
        provider_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// `claimed`/`sending` → `queued` for another attempt at `next_attempt_at`
    /// (a transient failure, or the send window closed); logs `message.retry`.
    fn mark_retry(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        next_attempt_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// → `failed` (permanent), opening a `delivery_failed` task; logs `message.failed`.
    fn mark_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// → `cancelled` before sending (e.g. the invoices were paid since it was
    /// queued); logs `message.cancelled`.
    fn mark_cancelled(
        &self,
        id: i64,
        worker: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Rows whose lease ended before `now`: `claimed` → `queued`,
    /// `sending` → `in_doubt` with an `in_doubt` task each.
    fn release_expired_leases(&self, now: Timestamp) -> Result<Released, StoreError>;
    /// A person settles an in-doubt message: `delivered` → `sent`, else
    /// `queued` again for a fresh attempt now. Logs `message.confirmed`.
    fn resolve_in_doubt(
        &self,
        org: i64,
        id: i64,
        delivered: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    fn tasks(&self, org: i64, include_done: bool) -> Result<Vec<Stored<Task>>, StoreError>;
    /// Logs `task.completed`.
    fn complete_task(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    fn charges(&self, org: i64) -> Result<Vec<Stored<Charge>>, StoreError>;
    /// Logs `charge.waived`; waiving twice is a conflict.
    fn waive_charge(
        &self,
        org: i64,
        id: i64,
        reason: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// One-click unsubscribe (RFC 8058) by an email's secret token: every
    /// contact of the message's customer whose address is the message's
    /// recipient is opted out of email, each logged as `contact.unsubscribed`
    /// with the diff. Works across organizations (the token is the only key a
    /// recipient has); `None` for a token no email carries. Repeating it
    /// changes nothing and logs nothing.
    fn unsubscribe(&self, token: &str, now: Timestamp) -> Result<Option<Unsubscribed>, StoreError>;

    fn bounces(&self, org: i64) -> Result<Vec<Bounce>, StoreError>;
    /// Records a bounce for `address` (case-insensitive) and opens a
    /// `bounce` task for the customer(s) with a contact at that address.
    fn record_bounce(
        &self,
        org: i64,
        address: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    fn clear_bounce(
        &self,
        org: i64,
        address: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}
