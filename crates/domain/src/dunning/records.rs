//! The records dunning keeps besides the ledger: holds, disputes, promises to
//! pay, the progress of each invoice through its policy, the outbox of
//! messages, human tasks, charges, and the organization's dunning settings.
//!
//! They are plain data; storage persists them and the planner reads them.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use serde::{Deserialize, Serialize};

use crate::charges::Regime;
use crate::money::{Currency, Money};

use super::policy::Channel;

/// What a hold, a promise or a policy assignment covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
pub enum Scope {
    /// Every invoice of the customer with this external id.
    Customer(String),
    /// The invoice with this number.
    Invoice(String),
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Customer(_) => "customer",
            Scope::Invoice(_) => "invoice",
        }
    }
    pub fn key(&self) -> &str {
        match self {
            Scope::Customer(k) | Scope::Invoice(k) => k,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.key())
    }
}

/// Dunning is paused for the scope until `expires_on` (exclusive: dunning
/// resumes on that day in the organization's zone) or until ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub scope: Scope,
    pub reason: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_on: Option<Date>,
    pub ended_at: Option<Timestamp>,
    pub ended_by: Option<String>,
}

impl Hold {
    /// Whether the hold pauses dunning on `today` at `now`.
    pub fn is_active(&self, today: Date, now: Timestamp) -> bool {
        self.created_at <= now
            && self.ended_at.is_none_or(|end| end > now)
            && self.expires_on.is_none_or(|exp| today < exp)
    }
}

/// The customer contests an invoice; dunning on it pauses until resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub invoice: String,
    pub reason: String,
    pub opened_at: Timestamp,
    pub opened_by: String,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

impl Dispute {
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.opened_at <= now && self.resolved_at.is_none_or(|r| r > now)
    }
}

/// The customer promised to pay (all or `amount` of) the scope by
/// `promised_on`. Dunning pauses until `promised_on + grace_days`; if the
/// promise is not kept by then it is broken, which can trigger
/// `after_broken_promise` steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    pub scope: Scope,
    /// `None`: the whole open balance of the scope.
    pub amount: Option<Money>,
    pub promised_on: Date,
    pub grace_days: u32,
    pub made_at: Timestamp,
    pub made_by: String,
    pub note: Option<String>,
    pub cancelled_at: Option<Timestamp>,
    pub cancelled_by: Option<String>,
}

impl Promise {
    /// The last day the promise protects; it is broken from the next day on
    /// if not kept.
    pub fn last_day(&self) -> Date {
        self.promised_on
            .checked_add(jiff::Span::new().days(i64::from(self.grace_days)))
            .unwrap_or(self.promised_on)
    }
}

/// Where an invoice is in its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKey {
    /// Step `step` (0-based) of the policy's ordinary sequence.
    Sequence { step: u32 },
    /// The `n`-th (1-based) repetition of the last step.
    Repeat { n: u32 },
    /// Step `step` (an `after_broken_promise` step) for promise `promise`.
    BrokenPromise { promise: i64, step: u32 },
}

impl fmt::Display for StepKey {
    /// The compact form used in idempotency keys and storage: `s3`, `r2`, `p17.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepKey::Sequence { step } => write!(f, "s{step}"),
            StepKey::Repeat { n } => write!(f, "r{n}"),
            StepKey::BrokenPromise { promise, step } => write!(f, "p{promise}.{step}"),
        }
    }
}

impl StepKey {
    /// Parses the compact form written by `Display`.
    pub fn parse(s: &str) -> Option<StepKey> {
        if let Some(rest) = s.strip_prefix('s') {
            return rest.parse().ok().map(|step| StepKey::Sequence { step });
        }
        if let Some(rest) = s.strip_prefix('r') {
            return rest.parse().ok().map(|n| StepKey::Repeat { n });
        }
        let rest = s.strip_prefix('p')?;
        let (promise, step) = rest.split_once('.')?;
        Some(StepKey::BrokenPromise {
            promise: promise.parse().ok()?,
            step: step.parse().ok()?,
        })
    }
}

/// What happened when a step was recorded for an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum StepOutcome {
    /// A message (or task) was written to the outbox under this key.
    Enqueued { message_key: String },
    /// The step was passed over on purpose (e.g. a pre-due reminder for an
    /// invoice that is already due, or steps dated before dunning began).
    Skipped { reason: String },
}

/// One step done for one invoice. Unique per (invoice, policy, step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub invoice: String,
    pub policy: String,
    pub step: StepKey,
    /// The customer's local date the step was done on.
    pub done_on: Date,
    pub done_at: Timestamp,
    pub outcome: StepOutcome,
}

/// Delivery state of an outbox message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for its time (`not_before`, `next_attempt_at`).
    Queued,
    /// Taken by a worker that has not yet contacted the provider.
    Claimed,
    /// The worker is talking to the provider; written before the attempt.
    Sending,
    /// The provider accepted it.
    Sent,
    /// A worker died while `Sending`: the provider may or may not have it.
    /// Never re-sent automatically; a person confirms.
    InDoubt,
    /// Permanently failed (or out of retries).
    Failed,
    /// Withdrawn before sending (e.g. the invoices were paid meanwhile).
    Cancelled,
}

impl MessageStatus {
    pub const ALL: &'static [MessageStatus] = &[
        MessageStatus::Queued,
        MessageStatus::Claimed,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::InDoubt,
        MessageStatus::Failed,
        MessageStatus::Cancelled,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Claimed => "claimed",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::InDoubt => "in_doubt",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<MessageStatus> {
        MessageStatus::ALL.iter().copied().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invoice as listed in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageInvoice {
    pub number: String,
    pub issue_date: Date,
    pub due_date: Date,
    /// Open amount (minor units of the message currency) when planned.
    pub open: i64,
    pub days_overdue: i64,
    /// Late fee charged at this step, if any (minor units).
    pub fee: i64,
    /// Statutory interest accrued to the planning date (minor units).
    pub interest: i64,
    /// Statutory fixed compensation claimable (minor units).
    pub compensation: i64,
}

/// A message (email or SMS) waiting for, or past, delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Unique per organization; a second insert with the same key is a no-op.
    pub key: String,
    pub customer: String,
    pub channel: Channel,
    /// Contact external id and address (email or E.164 phone).
    pub contact: Option<String>,
    pub recipient: String,
    pub policy: String,
    pub step: StepKey,
    pub template: String,
    pub locale: String,
    pub currency: Currency,
    pub invoices: Vec<MessageInvoice>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// Secret token for threading replies and one-click unsubscribe.
    pub token: String,
    /// The customer's zone: the send window is checked in it.
    pub time_zone: String,
    /// Not before this instant (the start of the send window).
    pub not_before: Timestamp,
    pub created_at: Timestamp,
    pub status: MessageStatus,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub claimed_by: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    pub sent_at: Option<Timestamp>,
}

/// Why a human task exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A policy step with channel `task` (e.g. call the customer).
    Step,
    /// No channel can reach the customer (all opted out, no consent, bounced).
    Unreachable,
    /// An email to this address bounced.
    Bounce,
    /// A promise to pay was broken.
    BrokenPromise,
    /// A message may or may not have been delivered; confirm with the provider.
    InDoubt,
    /// A message failed permanently.
    DeliveryFailed,
    /// An exception alert from prediction (`arflow alerts`): an invoice past
    /// its customer's usual pay time, a shift in behaviour, a large invoice
    /// nobody has contacted, a dunning step that did not fire, a bounce spike.
    Alert,
}

impl TaskKind {
    pub const ALL: &'static [TaskKind] = &[
        TaskKind::Step,
        TaskKind::Unreachable,
        TaskKind::Bounce,
        TaskKind::BrokenPromise,
        TaskKind::InDoubt,
        TaskKind::DeliveryFailed,
        TaskKind::Alert,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskKind::Step => "step",
            TaskKind::Unreachable => "unreachable",
            TaskKind::Bounce => "bounce",
            TaskKind::BrokenPromise => "broken_promise",
            TaskKind::InDoubt => "in_doubt",
            TaskKind::DeliveryFailed => "delivery_failed",
            TaskKind::Alert => "alert",
        }
    }
    pub fn parse(s: &str) -> Option<TaskKind> {
        TaskKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
}

/// Work for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Unique per organization, like an outbox key.
    pub key: String,
    pub kind: TaskKind,
    pub customer: String,
    pub invoices: Vec<String>,
    /// Plain words: what to do and why.
    pub title: String,
    pub detail: String,
    pub due_on: Date,
    pub created_at: Timestamp,
    pub status: TaskStatus,
    pub assignee: Option<String>,
    pub snoozed_until: Option<Date>,
    pub completed_at: Option<Timestamp>,
    pub completed_by: Option<String>,
    /// The outbox message the task is about (in-doubt, failed), if any.
    pub message_key: Option<String>,
}

impl Task {
    /// A new open task: unassigned, about no invoice or message (set those
    /// with struct update syntax where they apply).
    pub fn open(
        key: String,
        kind: TaskKind,
        customer: &str,
        title: String,
        detail: String,
        due_on: Date,
        created_at: Timestamp,
    ) -> Task {
        Task {
            key,
            kind,
            customer: customer.to_owned(),
            invoices: Vec::new(),
            title,
            detail,
            due_on,
            created_at,
            status: TaskStatus::Open,
            assignee: None,
            snoozed_until: None,
            completed_at: None,
            completed_by: None,
            message_key: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    /// A policy step's late fee.
    LateFee,
    /// Statutory late-payment interest.
    Interest,
    /// Statutory fixed compensation (e.g. €40).
    Compensation,
}

impl ChargeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChargeKind::LateFee => "late_fee",
            ChargeKind::Interest => "interest",
            ChargeKind::Compensation => "compensation",
        }
    }
    pub fn parse(s: &str) -> Option<ChargeKind> {
        [
            ChargeKind::LateFee,
            ChargeKind::Interest,
            ChargeKind::Compensation,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A fee or interest claimed on an invoice. Kept apart from the invoice
/// total (aging and DSO stay about what was invoiced); can be waived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Unique per organization (e.g. the step that charged it).
    pub key: String,
    pub invoice: String,
    pub kind: ChargeKind,
    pub amount: Money,
    pub charged_on: Date,
    pub description: String,
    pub created_at: Timestamp,
    pub waived_at: Option<Timestamp>,
    pub waived_by: Option<String>,
    pub waive_reason: Option<String>,
}

/// When messages may go out, in the customer's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendWindow {
    /// Local opening time (inclusive).
    pub start: Time,
    /// Local closing time (exclusive); after `start`.
    pub end: Time,
    /// Days messages may go out on (serialized as ISO numbers, Monday = 1).
    #[serde(with = "weekday_numbers")]
    pub days: Vec<Weekday>,
}

impl Default for SendWindow {
    fn default() -> Self {
        SendWindow {
            start: Time::constant(8, 0, 0, 0),
            end: Time::constant(21, 0, 0, 0),
            days: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
        }
    }
}

/// The organization's dunning settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningSettings {
    /// Policy used when no invoice, customer or segment assignment applies.
    pub default_policy: String,
    pub send_window: SendWindow,
    /// Days no message goes out (the organization's calendar).
    pub holidays: Vec<Date>,
    /// Minimum days between two messages to the same customer.
    pub min_gap_days: u32,
    /// At most this many messages to one customer in any 7 days.
    pub weekly_cap: u32,
    /// Invoices whose open balance is below the threshold for their
    /// currency are not chased.
    pub min_balance: Vec<Money>,
    /// Statutory interest and compensation shown on reminders, if any.
    pub interest_regime: Option<Regime>,
    /// Default grace days after a promised date.
    pub promise_grace_days: u32,
    /// An admin switch: nothing is planned or delivered while paused.
    pub paused: bool,
    /// The first day `dunning run` ran; steps dated before it (or before the
    /// invoice entered arflow) are not caught up.
    pub started_on: Option<Date>,
}

impl Default for DunningSettings {
    fn default() -> Self {
        DunningSettings {
            default_policy: "default".to_string(),
            send_window: SendWindow::default(),
            holidays: Vec::new(),
            min_gap_days: 3,
            weekly_cap: 2,
            min_balance: Vec::new(),
            interest_regime: None,
            promise_grace_days: 3,
            paused: false,
            started_on: None,
        }
    }
}

impl DunningSettings {
    /// The minimum balance worth chasing in `currency` (0 if none set).
    pub fn min_balance_for(&self, currency: Currency) -> i64 {
        self.min_balance
            .iter()
            .find(|m| m.currency == currency)
            .map_or(0, |m| m.minor)
    }
}

/// Which policy an invoice, customer or segment uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
pub enum AssignmentScope {
    Invoice(String),
    Customer(String),
    Segment(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAssignment {
    pub scope: AssignmentScope,
    pub policy: String,
}

/// A policy as stored: its name, the TOML the user wrote, when it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub name: String,
    pub source: String,
    pub updated_at: Timestamp,
}

/// An email address that bounced: email to it stops until cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    pub address: String,
    pub at: Timestamp,
    pub reason: String,
    pub cleared_at: Option<Timestamp>,
}

mod weekday_numbers {
    use jiff::civil::Weekday;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(days.iter().map(|d| d.to_monday_one_offset()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        let numbers = Vec::<i8>::deserialize(d)?;
        numbers
            .into_iter()
            .map(|n| {
                Weekday::from_monday_one_offset(n).map_err(|_| {
                    D::Error::custom(format!(
                        "{n} is not a weekday number (1 = Monday .. 7 = Sunday)"
                    ))
                })
            })
            .collect()
    }
}
