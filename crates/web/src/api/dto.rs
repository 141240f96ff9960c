//! What the API sends and accepts. Amounts are `{"amount": "1234.56",
//! "currency": "USD"}` (a decimal string in major units, never a float),
//! dates ISO 8601 (`2026-12-03`), instants RFC 3339 in UTC.

use arflow_domain::dunning::Channel;
use arflow_domain::dunning::records::{
    Dispute as DDispute, Hold as DHold, OutboxMessage, Promise as DPromise, Scope as DScope,
    Task as DTask, TaskStatus,
};
use arflow_domain::model::{
    Allocation as DAllocation, AllocationSource, Contact as DContact, CreditNote as DCreditNote,
    Customer as DCustomer, Invoice as DInvoice, Payment as DPayment, Stored,
};
use arflow_domain::money::{Currency, format_minor};
use arflow_store::Note as DNote;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::index::{ApiIndex, CustomerStats};
use crate::cache::{InvoiceRow, LedgerView};

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Decimal string in major units, as many decimals as the currency has.
    #[schema(example = "1234.56")]
    pub amount: String,
    /// ISO 4217 code.
    #[schema(example = "USD")]
    pub currency: String,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money {
            amount: format_minor(minor, currency),
            currency: currency.code().to_string(),
        }
    }
}

pub fn date(d: Date) -> String {
    d.to_string()
}

pub fn instant(t: Timestamp) -> String {
    t.to_string()
}

/// Open and overdue balance of a customer in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerBalance {
    pub open: Money,
    pub overdue: Money,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    /// The customer's key (external id): how every other record names it.
    pub key: String,
    pub name: String,
    pub segment: Option<String>,
    pub tags: Vec<String>,
    pub country: Option<String>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    pub currency: String,
    pub payment_terms_days: Option<u16>,
    pub credit_limit: Option<Money>,
    pub collector: Option<String>,
    pub autopay: bool,
    /// Open invoices today (unpaid, not void or written off).
    pub open_invoices: u64,
    pub overdue_invoices: u64,
    /// Open and overdue balance per invoice currency.
    pub balances: Vec<CustomerBalance>,
}

pub fn customer(c: &DCustomer, stats: Option<&CustomerStats>) -> Customer {
    Customer {
        key: c.external_id.clone(),
        name: c.name.clone(),
        segment: c.segment.clone(),
        tags: c.tags.clone(),
        country: c.country.clone(),
        time_zone: c.time_zone.clone(),
        locale: c.locale.clone(),
        currency: c.currency.code().to_string(),
        payment_terms_days: c.payment_terms_days,
        credit_limit: c.credit_limit.map(|l| Money::new(l, c.currency)),
        collector: c.collector.clone(),
        autopay: c.autopay,
        open_invoices: stats.map_or(0, |s| s.open_invoices),
        overdue_invoices: stats.map_or(0, |s| s.overdue_invoices),
        balances: stats
            .map(|s| {
                s.balances
                    .iter()
                    .map(|(c, b)| CustomerBalance {
                        open: Money::new(b.open, *c),
                        overdue: Money::new(b.overdue, *c),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPreferences {
    pub email_opt_out: bool,
    pub sms_consent: bool,
    pub sms_opt_out: bool,
    pub call_opt_out: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Contact {
    /// The contact's key (external id).
    pub key: String,
    /// The customer's key.
    pub customer: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub role: Option<String>,
    pub is_primary: bool,
    pub preferences: ContactPreferences,
}

pub fn contact(c: &DContact) -> Contact {
    Contact {
        key: c.external_id.clone(),
        customer: c.customer.clone(),
        name: c.name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        role: c.role.clone(),
        is_primary: c.is_primary,
        preferences: ContactPreferences {
            email_opt_out: c.preferences.email_opt_out,
            sms_consent: c.preferences.sms_consent,
            sms_opt_out: c.preferences.sms_opt_out,
            call_opt_out: c.preferences.call_opt_out,
        },
    }
}

/// Where an invoice stands today.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStateName {
    Open,
    Overdue,
    Paid,
    Void,
    WrittenOff,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Invoice {
    pub number: String,
    /// The customer's key.
    pub customer: String,
    pub customer_name: String,
    pub external_id: Option<String>,
    /// Where the record came from ("csv", "api", "quickbooks"...).
    pub source: String,
    #[schema(format = Date)]
    pub issue_date: String,
    #[schema(format = Date)]
    pub due_date: String,
    /// Gross total, tax included.
    pub total: Money,
    pub tax: Money,
    /// Open balance today.
    pub open: Money,
    /// Today's state: open (not yet due), overdue, paid, void or written_off.
    #[schema(value_type = InvoiceStateName)]
    pub state: String,
    /// Days past due today (0 unless overdue).
    pub days_overdue: i64,
    /// Aging bucket of an open invoice ("Current", "1-30", ...).
    pub aging_bucket: Option<String>,
    /// The day the balance reached zero, for a paid invoice.
    #[schema(format = Date)]
    pub settled_on: Option<String>,
    pub po_number: Option<String>,
    /// The day it was voided or written off.
    #[schema(format = Date)]
    pub status_date: Option<String>,
    pub disputed: bool,
    pub paperless: Option<bool>,
}

pub fn invoice(view: &LedgerView, inv: &DInvoice, row: &InvoiceRow) -> Invoice {
    let c = inv.currency;
    Invoice {
        number: inv.number.clone(),
        customer: inv.customer.clone(),
        customer_name: view
            .customer(&inv.customer)
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        external_id: inv.external_id.clone(),
        source: inv.source.clone(),
        issue_date: date(inv.issue_date),
        due_date: date(inv.due_date),
        total: Money::new(inv.total, c),
        tax: Money::new(inv.tax, c),
        open: Money::new(row.open, c),
        state: row.state.as_str().to_string(),
        days_overdue: row.days_overdue,
        aging_bucket: row.bucket.clone(),
        settled_on: row.settled_on.map(date),
        po_number: inv.po_number.clone(),
        status_date: inv.status_date.map(date),
        disputed: inv.disputed,
        paperless: inv.paperless,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreditNote {
    pub number: String,
    pub customer: String,
    pub external_id: Option<String>,
    pub source: String,
    #[schema(format = Date)]
    pub issue_date: String,
    pub total: Money,
    /// How much of the credit is applied to invoices.
    pub applied: Money,
    pub unapplied: Money,
    pub reason: Option<String>,
}

pub fn credit_note(n: &DCreditNote, index: &ApiIndex) -> CreditNote {
    let applied = index.credit_applied.get(&n.number).copied().unwrap_or(0);
    credit_note_with(n, applied)
}

pub fn credit_note_with(n: &DCreditNote, applied: i64) -> CreditNote {
    let c = n.currency;
    CreditNote {
        number: n.number.clone(),
        customer: n.customer.clone(),
        external_id: n.external_id.clone(),
        source: n.source.clone(),
        issue_date: date(n.issue_date),
        total: Money::new(n.total, c),
        applied: Money::new(applied, c),
        unapplied: Money::new(n.total - applied, c),
        reason: n.reason.clone(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Payment {
    /// The payment's key (external id).
    pub key: String,
    pub customer: String,
    pub source: String,
    #[schema(format = Date)]
    pub received_on: String,
    pub amount: Money,
    /// How much of the payment is applied to invoices.
    pub applied: Money,
    pub unapplied: Money,
    pub method: Option<String>,
    pub reference: Option<String>,
    pub payer_name: Option<String>,
}

pub fn payment(p: &DPayment, index: &ApiIndex) -> Payment {
    let applied = index
        .payment_applied
        .get(&p.external_id)
        .copied()
        .unwrap_or(0);
    payment_with(p, applied)
}

pub fn payment_with(p: &DPayment, applied: i64) -> Payment {
    let c = p.currency;
    Payment {
        key: p.external_id.clone(),
        customer: p.customer.clone(),
        source: p.source.clone(),
        received_on: date(p.received_on),
        amount: Money::new(p.amount, c),
        applied: Money::new(applied, c),
        unapplied: Money::new(p.amount - applied, c),
        method: p.method.clone(),
        reference: p.reference.clone(),
        payer_name: p.payer_name.clone(),
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationSourceKind {
    Payment,
    CreditNote,
}

/// What an allocation draws on.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationSourceRef {
    #[schema(value_type = AllocationSourceKind)]
    pub kind: String,
    /// The payment's key or the credit note's number.
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Allocation {
    pub id: i64,
    pub invoice: String,
    pub source: AllocationSourceRef,
    /// In the invoice's currency.
    pub amount: Money,
    #[schema(format = Date)]
    pub applied_on: String,
}

pub fn allocation(view: &LedgerView, a: &Stored<DAllocation>) -> Allocation {
    let currency = view
        .invoice_index
        .get(&a.invoice)
        .map(|&i| view.invoices[i].currency)
        .unwrap_or(view.org.base_currency);
    allocation_in(a.id, a, currency)
}

pub fn allocation_in(id: i64, a: &DAllocation, currency: Currency) -> Allocation {
    let (kind, key) = match &a.source {
        AllocationSource::Payment(k) => ("payment", k),
        AllocationSource::CreditNote(k) => ("credit_note", k),
    };
    Allocation {
        id,
        invoice: a.invoice.clone(),
        source: AllocationSourceRef {
            kind: kind.to_string(),
            key: key.clone(),
        },
        amount: Money::new(a.amount, currency),
        applied_on: date(a.applied_on),
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Customer,
    Invoice,
}

/// What a hold or a promise covers: every invoice of a customer, or one invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scope {
    #[schema(value_type = ScopeKind)]
    pub kind: String,
    /// The customer's key or the invoice number.
    pub key: String,
}

pub fn scope(s: &DScope) -> Scope {
    Scope {
        kind: s.kind().to_string(),
        key: s.key().to_string(),
    }
}

/// A hold: dunning paused for a customer or an invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hold {
    pub id: i64,
    pub scope: Scope,
    pub reason: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub created_by: String,
    /// Dunning resumes on this day (exclusive end); null: until ended.
    #[schema(format = Date)]
    pub expires_on: Option<String>,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    pub ended_by: Option<String>,
    /// Whether it pauses dunning now.
    pub active: bool,
}

pub fn hold(h: &Stored<DHold>, today: Date, now: Timestamp) -> Hold {
    Hold {
        id: h.id,
        scope: scope(&h.scope),
        reason: h.reason.clone(),
        created_at: instant(h.created_at),
        created_by: h.created_by.clone(),
        expires_on: h.expires_on.map(date),
        ended_at: h.ended_at.map(instant),
        ended_by: h.ended_by.clone(),
        active: h.is_active(today, now),
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    Open,
    Resolved,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dispute {
    pub id: i64,
    pub invoice: String,
    pub reason: String,
    #[schema(value_type = DisputeStatus)]
    pub status: String,
    #[schema(format = DateTime)]
    pub opened_at: String,
    pub opened_by: String,
    #[schema(format = DateTime)]
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

pub fn dispute(d: &Stored<DDispute>, now: Timestamp) -> Dispute {
    Dispute {
        id: d.id,
        invoice: d.invoice.clone(),
        reason: d.reason.clone(),
        status: if d.is_open(now) { "open" } else { "resolved" }.to_string(),
        opened_at: instant(d.opened_at),
        opened_by: d.opened_by.clone(),
        resolved_at: d.resolved_at.map(instant),
        resolved_by: d.resolved_by.clone(),
        resolution: d.resolution.clone(),
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromiseStatus {
    /// Dunning is paused until `last_day`.
    Active,
    /// `last_day` has passed.
    Lapsed,
    Cancelled,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Promise {
    pub id: i64,
    pub scope: Scope,
    /// Null: the whole open balance of the scope.
    pub amount: Option<Money>,
    #[schema(format = Date)]
    pub promised_on: String,
    pub grace_days: u32,
    /// The last day the promise protects (promised_on + grace_days).
    #[schema(format = Date)]
    pub last_day: String,
    #[schema(value_type = PromiseStatus)]
    pub status: String,
    #[schema(format = DateTime)]
    pub made_at: String,
    pub made_by: String,
    pub note: Option<String>,
    #[schema(format = DateTime)]
    pub cancelled_at: Option<String>,
    pub cancelled_by: Option<String>,
}

pub fn promise_status(p: &DPromise, today: Date) -> &'static str {
    if p.cancelled_at.is_some() {
        "cancelled"
    } else if today <= p.last_day() {
        "active"
    } else {
        "lapsed"
    }
}

pub fn promise(p: &Stored<DPromise>, today: Date) -> Promise {
    Promise {
        id: p.id,
        scope: scope(&p.scope),
        amount: p.amount.map(|m| Money::new(m.minor, m.currency)),
        promised_on: date(p.promised_on),
        grace_days: p.grace_days,
        last_day: date(p.last_day()),
        status: promise_status(p, today).to_string(),
        made_at: instant(p.made_at),
        made_by: p.made_by.clone(),
        note: p.note.clone(),
        cancelled_at: p.cancelled_at.map(instant),
        cancelled_by: p.cancelled_by.clone(),
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatusName {
    Open,
    Done,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKindName {
    Step,
    Unreachable,
    Bounce,
    BrokenPromise,
    InDoubt,
    DeliveryFailed,
    Alert,
}

/// Work for a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct Task {
    pub id: i64,
    pub key: String,
    #[schema(value_type = TaskKindName)]
    pub kind: String,
    pub customer: String,
    pub invoices: Vec<String>,
    pub title: String,
    pub detail: String,
    #[schema(value_type = TaskStatusName)]
    pub status: String,
    #[schema(format = Date)]
    pub due_on: String,
    /// A user's email.
    pub assignee: Option<String>,
    /// Hidden from the worklist until this day.
    #[schema(format = Date)]
    pub snoozed_until: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    pub completed_by: Option<String>,
    /// The outbox message the task is about, if any.
    pub message_key: Option<String>,
}

pub fn task(t: &Stored<DTask>) -> Task {
    Task {
        id: t.id,
        key: t.key.clone(),
        kind: t.kind.as_str().to_string(),
        customer: t.customer.clone(),
        invoices: t.invoices.clone(),
        title: t.title.clone(),
        detail: t.detail.clone(),
        status: match t.status {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
        }
        .to_string(),
        due_on: date(t.due_on),
        assignee: t.assignee.clone(),
        snoozed_until: t.snoozed_until.map(date),
        created_at: instant(t.created_at),
        completed_at: t.completed_at.map(instant),
        completed_by: t.completed_by.clone(),
        message_key: t.message_key.clone(),
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelName {
    Email,
    Sms,
    Task,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatusName {
    Queued,
    Claimed,
    Sending,
    Sent,
    InDoubt,
    Failed,
    Cancelled,
}

/// One invoice as a message listed it when it was planned.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageInvoice {
    pub number: String,
    #[schema(format = Date)]
    pub issue_date: String,
    #[schema(format = Date)]
    pub due_date: String,
    pub open: Money,
    pub days_overdue: i64,
    pub fee: Money,
    pub interest: Money,
    pub compensation: Money,
}

/// A reminder in the outbox (email or SMS).
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub id: i64,
    pub key: String,
    pub customer: String,
    #[schema(value_type = ChannelName)]
    pub channel: String,
    /// The contact's key.
    pub contact: Option<String>,
    /// Email address or E.164 phone number.
    pub recipient: String,
    pub policy: String,
    /// The policy step ("s0", "r2", "p17.1").
    pub step: String,
    pub template: String,
    pub locale: String,
    pub currency: String,
    pub invoices: Vec<MessageInvoice>,
    pub subject: String,
    #[schema(value_type = MessageStatusName)]
    pub status: String,
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub not_before: String,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The text body (only on `GET /api/v1/messages/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// The HTML body, for email (only on `GET /api/v1/messages/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
}

pub fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Task => "task",
    }
}

/// The message without its bodies, or with them (`full`). Its secret token
/// (unsubscribe link, reply threading) is never sent.
pub fn message(m: &Stored<OutboxMessage>, full: bool) -> Message {
    let c = m.currency;
    Message {
        id: m.id,
        key: m.key.clone(),
        customer: m.customer.clone(),
        channel: channel_name(m.channel).to_string(),
        contact: m.contact.clone(),
        recipient: m.recipient.clone(),
        policy: m.policy.clone(),
        step: m.step.to_string(),
        template: m.template.clone(),
        locale: m.locale.clone(),
        currency: c.code().to_string(),
        invoices: m
            .invoices
            .iter()
            .map(|i| MessageInvoice {
                number: i.number.clone(),
                issue_date: date(i.issue_date),
                due_date: date(i.due_date),
                open: Money::new(i.open, c),
                days_overdue: i.days_overdue,
                fee: Money::new(i.fee, c),
                interest: Money::new(i.interest, c),
                compensation: Money::new(i.compensation, c),
            })
            .collect(),
        subject: m.subject.clone(),
        status: m.status.as_str().to_string(),
        attempts: m.attempts,
        not_before: instant(m.not_before),
        next_attempt_at: instant(m.next_attempt_at),
        last_error: m.last_error.clone(),
        provider_id: m.provider_id.clone(),
        sent_at: m.sent_at.map(instant),
        created_at: instant(m.created_at),
        body_text: full.then(|| m.body_text.clone()),
        body_html: if full { m.body_html.clone() } else { None },
    }
}

/// A free-text note on a customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Note {
    pub id: i64,
    pub customer: String,
    /// The invoice the note is about, if any.
    pub invoice: Option<String>,
    pub author: String,
    pub body: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

pub fn note(id: i64, n: &DNote) -> Note {
    Note {
        id,
        customer: n.customer.clone(),
        invoice: n.invoice.clone(),
        author: n.author.clone(),
        body: n.body.clone(),
        created_at: instant(n.created_at),
    }
}

// --- requests ----------------------------------------------------------

/// A new customer. Validated like a row of `arflow import customers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// The customer's key (external id), unique in the organization.
    pub key: String,
    /// Defaults to the key.
    pub name: Option<String>,
    /// ISO 4217; defaults to the organization's base currency.
    pub currency: Option<String>,
    pub segment: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub country: Option<String>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    /// Net days for invoices sent without a due date (0 to 3650).
    pub payment_terms_days: Option<i64>,
    /// Decimal string in the customer's currency.
    #[schema(example = "5000.00")]
    pub credit_limit: Option<String>,
    pub collector: Option<String>,
    #[serde(default)]
    pub autopay: bool,
}

/// A new contact of a customer. Validated like a row of `arflow import contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// The customer's key.
    pub customer: String,
    /// The contact's key; defaults to the email, else `customer:name`.
    pub key: Option<String>,
    /// Defaults to the email.
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub role: Option<String>,
    #[serde(default)]
    pub is_primary: bool,
    #[serde(default)]
    pub email_opt_out: bool,
    #[serde(default)]
    pub sms_consent: bool,
    #[serde(default)]
    pub sms_opt_out: bool,
    #[serde(default)]
    pub call_opt_out: bool,
}

/// A new open invoice. Validated like a row of `arflow import invoices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvoice {
    /// Unique in the organization.
    pub number: String,
    /// The customer's key (the customer must exist).
    pub customer: String,
    #[schema(format = Date, example = "2026-12-01")]
    pub issue_date: String,
    /// Defaults to the issue date plus the customer's payment terms (else 30 days).
    #[schema(format = Date, example = "2026-12-31")]
    pub due_date: Option<String>,
    /// ISO 4217; defaults to the customer's currency.
    pub currency: Option<String>,
    /// Gross total, tax included: a decimal string.
    #[schema(example = "1190.00")]
    pub total: String,
    /// Tax part of the total (default 0).
    #[schema(example = "190.00")]
    pub tax: Option<String>,
    pub po_number: Option<String>,
    pub external_id: Option<String>,
    #[serde(default)]
    pub disputed: bool,
    pub paperless: Option<bool>,
}

/// Part of a payment or credit note to apply to one invoice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    pub invoice: String,
    /// A decimal string in the invoice's currency.
    #[schema(example = "100.00")]
    pub amount: String,
    /// Defaults to the later of the payment's (credit note's) date and the
    /// invoice's issue date.
    #[schema(format = Date)]
    pub applied_on: Option<String>,
}

/// A new credit note. Validated like a row of `arflow import credit-notes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCreditNote {
    pub number: String,
    pub customer: String,
    #[schema(format = Date)]
    pub issue_date: String,
    /// Defaults to the customer's currency.
    pub currency: Option<String>,
    /// Positive decimal string.
    pub total: String,
    pub reason: Option<String>,
    pub external_id: Option<String>,
    /// Apply the credit to these invoices of the customer.
    #[serde(default)]
    pub allocations: Vec<NewApplication>,
}

/// A new payment. Validated like a row of `arflow import payments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    /// The payment's key, unique in the organization; generated when absent.
    pub key: Option<String>,
    pub customer: String,
    #[schema(format = Date)]
    pub received_on: String,
    /// Defaults to the customer's currency.
    pub currency: Option<String>,
    /// Positive decimal string.
    pub amount: String,
    pub method: Option<String>,
    pub reference: Option<String>,
    pub payer_name: Option<String>,
    /// Apply the payment to these invoices of the customer.
    #[serde(default)]
    pub allocations: Vec<NewApplication>,
}

/// Applies part of a stored payment or credit note to an invoice: give
/// exactly one of `payment` and `credit_note`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAllocation {
    pub invoice: String,
    /// The payment's key.
    pub payment: Option<String>,
    /// The credit note's number.
    pub credit_note: Option<String>,
    /// A decimal string in the invoice's currency.
    pub amount: String,
    #[schema(format = Date)]
    pub applied_on: Option<String>,
}

/// Pauses dunning for one customer or one invoice: give exactly one of
/// `customer` and `invoice`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    pub customer: Option<String>,
    pub invoice: Option<String>,
    pub reason: String,
    /// Dunning resumes on this day (must be after today); absent: until ended.
    #[schema(format = Date)]
    pub until: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDispute {
    pub invoice: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveDispute {
    pub resolution: String,
}

/// A promise to pay: give exactly one of `customer` and `invoice`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPromise {
    pub customer: Option<String>,
    pub invoice: Option<String>,
    #[schema(format = Date)]
    pub promised_on: String,
    /// Absent: the whole open balance of the scope.
    pub amount: Option<Money>,
    /// Days after `promised_on` before the promise counts as broken;
    /// defaults to the organization's dunning setting.
    pub grace_days: Option<u32>,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignTask {
    /// A user's email; null unassigns.
    pub assignee: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeTask {
    /// Hide the task until this day (after today); null wakes it now.
    #[schema(format = Date)]
    pub until: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub body: String,
    /// An invoice of the customer the note is about.
    pub invoice: Option<String>,
}

/// Concrete page types for the OpenAPI document (the handlers return
/// `Page<T>`, which serializes the same).
macro_rules! page_schemas {
    ($($name:ident => $item:ty),* $(,)?) => {
        $(
            #[derive(Debug, Serialize, ToSchema)]
            pub struct $name {
                pub data: Vec<$item>,
                /// Pass as `cursor` to get the next page; null on the last page.
                pub next_cursor: Option<String>,
            }
        )*
    };
}

page_schemas! {
    CustomerPage => Customer,
    ContactPage => Contact,
    InvoicePage => Invoice,
    CreditNotePage => CreditNote,
    PaymentPage => Payment,
    AllocationPage => Allocation,
    HoldPage => Hold,
    DisputePage => Dispute,
    PromisePage => Promise,
    TaskPage => Task,
    MessagePage => Message,
    NotePage => Note,
}
