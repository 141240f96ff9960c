//! The dunning planner: a pure function from the ledger, the policies and
//! everything that pauses or shapes dunning, at one instant, to the actions
//! due now and, for every open invoice, why it is or is not being chased.
//!
//! Rules, in the order they are applied to each invoice:
//! 1. **Stops**: void or written off, fully paid, open balance under the
//!    organization's threshold for its currency.
//! 2. **Pauses**: sending paused by an admin, an open dispute (or the
//!    invoice's own `disputed` flag), an active hold on the invoice or its
//!    customer, an active promise to pay (until its date plus grace).
//! 3. **Progress**: the next step not yet recorded for the invoice under its
//!    policy. Its date is computed from its anchor, in the customer's local
//!    calendar. A step that came due while arflow was not running is sent
//!    once, late (catch-up); at most one step per invoice per run. Steps are
//!    *skipped* (and recorded as such, with the reason) when they make no
//!    sense any more: a pre-due reminder once the invoice is due, a pre-due
//!    reminder for an autopay customer, a step whose conditions do not hold,
//!    or, when dunning starts for the first time, the steps older than the
//!    most recent one that has come due (a new user is not flooded with a
//!    backlog of stale reminders).
//! 4. **Channel**: the step's channel if a contact can receive it (email
//!    not opted out or bounced; SMS with consent and not opted out), else
//!    the other channel, else a task for a person.
//! 5. **Contact hygiene**: messages to one customer keep a minimum gap and a
//!    weekly cap, counted over messages already queued or sent and those
//!    planned earlier in the same run; a message that would break them is
//!    deferred (not recorded, so the next run plans it again).
//! 6. **Send window**: each message carries the first instant inside the
//!    organization's send window in the customer's time zone (weekends and
//!    holidays skipped); delivery never sends before it.
//!
//! Consolidation groups the invoices of one customer, currency and policy
//! that are due the same run into one message (the most escalated step
//! decides the template), or one message per invoice.

use std::collections::{BTreeMap, HashMap, HashSet};

use rustc_hash::FxHashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::charges::{FeeRule, Regime, statutory_interest};
use crate::model::{Contact, Customer, Invoice, InvoiceStatus, Stored};
use crate::money::{Currency, Money};

use super::calendar::next_send_time;
use super::policy::{Anchor, Channel, Consolidation, Fee, Policy, Step, Tone};
use super::records::{
    AssignmentScope, Bounce, Charge, ChargeKind, Dispute, DunningSettings, Hold, MessageInvoice,
    PolicyAssignment, Promise, Scope, StepKey, StepOutcome, StepRecord,
};

/// One invoice as the planner sees it (a view over [`PlanInput`]'s columns).
#[derive(Debug, Clone, Copy)]
struct InvoiceState<'a> {
    pub invoice: &'a Invoice,
    /// Open amount now (minor units of the invoice currency).
    pub open: i64,
    /// Allocations to the invoice, `(applied_on, amount)`, in date order:
    /// used to tell whether a promise was kept.
    pub allocations: &'a [(Date, i64)],
}

/// Everything the planner reads. Slices are in any order.
pub struct PlanInput<'a> {
    pub now: Timestamp,
    /// The organization's zone: for customers without a (valid) zone of their own.
    pub org_time_zone: &'a TimeZone,
    pub settings: &'a DunningSettings,
    /// Policies by name.
    pub policies: &'a HashMap<String, Policy>,
    pub assignments: &'a [PolicyAssignment],
    pub customers: &'a [Customer],
    pub contacts: &'a [Contact],
    pub invoices: &'a [Invoice],
    /// Per invoice (same positions as `invoices`): the open amount now, in
    /// minor units of the invoice currency.
    pub open: &'a [i64],
    /// Per invoice: allocations `(applied_on, amount)` in date order (used to
    /// tell whether a promise was kept).
    pub allocations: &'a [Vec<(Date, i64)>],
    pub holds: &'a [Stored<Hold>],
    pub disputes: &'a [Stored<Dispute>],
    pub promises: &'a [Stored<Promise>],
    pub steps_done: &'a [StepRecord],
    /// Messages to customers already queued or sent: (customer, when).
    pub contact_log: &'a [(String, Timestamp)],
    pub bounces: &'a [Bounce],
    /// Charges recorded so far (interest is charged incrementally).
    pub charges: &'a [Stored<Charge>],
}

/// What a run should do for a group of invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    /// The idempotency key of the message or task.
    pub key: String,
    pub customer: String,
    pub currency: Currency,
    pub policy: String,
    /// The most escalated step in the group: its template and tone are used.
    pub step: StepKey,
    pub template: String,
    pub tone: Tone,
    /// The channel the step asked for.
    pub requested_channel: Channel,
    /// The channel used after opt-outs, consent and bounces.
    pub channel: Channel,
    /// Why the channel differs from the one requested.
    pub fallback_reason: Option<String>,
    /// Contact external id and address, for email and SMS.
    pub contact: Option<String>,
    pub contact_name: Option<String>,
    pub recipient: Option<String>,
    pub locale: String,
    pub time_zone: String,
    /// Not before this instant (the send window). Tasks: `now`.
    pub send_at: Timestamp,
    /// The customer's local date the step is done on.
    pub local_date: Date,
    pub invoices: Vec<MessageInvoice>,
    /// The step records this action completes (sent, and skipped ones passed on the way).
    pub steps: Vec<StepRecord>,
    pub charges: Vec<Charge>,
}

/// Step records with no message: steps passed over on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedSteps {
    pub customer: String,
    pub records: Vec<StepRecord>,
}

/// A promise found broken this run: a person should follow up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenPromise {
    pub promise: i64,
    pub customer: String,
    pub invoices: Vec<String>,
    pub promised_on: Date,
    pub amount: Option<Money>,
    pub broken_on: Date,
}

/// A policy step as a decision refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepRef<'a> {
    pub key: StepKey,
    pub template: &'a str,
    #[serde(skip)]
    pub step: &'a Step,
}

impl StepRef<'_> {
    /// "'overdue_7' (7 days after due)".
    fn describe(&self) -> String {
        match self.key {
            StepKey::Repeat { n } => format!("'{}' (repeat {n})", self.template),
            _ => format!("'{}' ({})", self.template, describe_step(self.step)),
        }
    }
}

/// Why dunning on an invoice is paused. Kept structured (and borrowed) so a
/// plan over a million invoices allocates no text; [`InvoiceDecision::why`]
/// words it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PauseReason<'a> {
    /// An admin paused all sending.
    Organization,
    Dispute {
        reason: &'a str,
    },
    /// The invoice's `disputed` flag from the ledger.
    LedgerDisputed,
    Hold {
        scope: &'a Scope,
        reason: &'a str,
    },
    Promise {
        promise: i64,
        amount: Option<Money>,
        promised_on: Date,
        last_day: Date,
    },
}

/// Why an invoice is or is not chased now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Decision<'a> {
    /// A step is done now: `action` indexes [`Plan::actions`].
    Due {
        step: StepRef<'a>,
        action: usize,
        /// Days the step is late because dunning did not run when it came
        /// due (catch-up); 0 when on time, and when the step's date is older
        /// than the first run (the invoice simply starts at this step).
        days_late: i64,
    },
    /// The next step is due but contact hygiene (or a window that never
    /// opens) holds it back; nothing is recorded.
    Deferred {
        step: StepRef<'a>,
        until: Timestamp,
        reason: String,
    },
    /// The next step comes later.
    Waiting {
        step: StepRef<'a>,
        on: Date,
    },
    /// Every step of the policy is done.
    Finished,
    Paused {
        reason: PauseReason<'a>,
        until: Option<Date>,
    },
    Stopped {
        reason: String,
    },
}

impl Decision<'_> {
    pub fn state(&self) -> &'static str {
        match self {
            Decision::Due { .. } => "due",
            Decision::Deferred { .. } => "deferred",
            Decision::Waiting { .. } => "waiting",
            Decision::Finished => "finished",
            Decision::Paused { .. } => "paused",
            Decision::Stopped { .. } => "stopped",
        }
    }

    /// The step the decision is about, if any.
    pub fn step(&self) -> Option<&StepRef<'_>> {
        match self {
            Decision::Due { step, .. }
            | Decision::Deferred { step, .. }
            | Decision::Waiting { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// One open invoice's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceDecision<'a> {
    pub invoice: &'a str,
    pub customer: &'a str,
    pub currency: Currency,
    pub open: i64,
    pub due_date: Date,
    pub policy: Option<&'a str>,
    /// Steps passed over now, with the reason (recorded by a run).
    pub skipped: Vec<(StepKey, String)>,
    pub decision: Decision<'a>,
    /// The customer's zone, for wording instants.
    #[serde(skip)]
    pub time_zone: TimeZone,
}

impl InvoiceDecision<'_> {
    /// The decision in plain words.
    pub fn why(&self, plan: &Plan<'_>) -> String {
        let local = |t: Timestamp| {
            t.to_zoned_datetime(self.time_zone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        match &self.decision {
            Decision::Due {
                step,
                action,
                days_late,
            } => {
                let late = if *days_late > 0 {
                    format!(", {days_late} days late (catch-up)")
                } else {
                    String::new()
                };
                let Some(a) = plan.actions.get(*action) else {
                    return format!("Due: {}{late}.", step.describe());
                };
                let how = match a.channel {
                    Channel::Task => "a task for a person".to_string(),
                    Channel::Email | Channel::Sms => format!(
                        "{} to {} at {}",
                        a.channel,
                        a.recipient.as_deref().unwrap_or("?"),
                        local(a.send_at)
                    ),
                };
                let fallback = a
                    .fallback_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                format!("Due: {}{late} → {how}{fallback}.", step.describe())
            }
            Decision::Deferred {
                step,
                until,
                reason,
            } => format!(
                "Due: {}, deferred until {}: {reason}.",
                step.describe(),
                local(*until)
            ),
            Decision::Waiting { step, on } => format!("Next: {} on {on}.", step.describe()),
            Decision::Finished => format!(
                "Every step of policy '{}' is done; no further reminders.",
                self.policy.unwrap_or("?")
            ),
            Decision::Paused { reason, until } => {
                let until = until.map(|d| format!(" until {d}")).unwrap_or_default();
                match reason {
                    PauseReason::Organization => {
                        "Paused: sending is paused for the organization.".to_string()
                    }
                    PauseReason::Dispute { reason } => {
                        format!("Paused: the invoice is disputed: {reason}.")
                    }
                    PauseReason::LedgerDisputed => {
                        "Paused: the invoice is marked disputed in the ledger.".to_string()
                    }
                    PauseReason::Hold { scope, reason } => {
                        format!("Paused: on hold ({scope}){until}: {reason}.")
                    }
                    PauseReason::Promise {
                        amount,
                        promised_on,
                        last_day,
                        ..
                    } => format!(
                        "Paused: promise to pay {}by {promised_on} (grace until {last_day}).",
                        amount
                            .map(|m| format!("{m} "))
                            .unwrap_or_else(|| "the balance ".to_string())
                    ),
                }
            }
            Decision::Stopped { reason } => format!("Not chased: {reason}."),
        }
    }
}

/// The planner's answer. Decisions borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Plan<'a> {
    pub actions: Vec<PlannedAction>,
    pub skipped: Vec<SkippedSteps>,
    pub broken_promises: Vec<BrokenPromise>,
    /// One per open invoice, in input order.
    pub decisions: Vec<InvoiceDecision<'a>>,
}

/// Why a plan could not be made at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "policy '{policy}' is assigned to {scope} but no such policy is stored (known: {known})"
    )]
    UnknownPolicy {
        policy: String,
        scope: String,
        known: String,
    },
}

struct CustomerCtx<'a> {
    customer: &'a Customer,
    tz: TimeZone,
    tz_name: String,
    today: Date,
    contacts: Vec<&'a Contact>,
    /// Open balance per currency, for `min_open_balance` conditions.
    open: Vec<(Currency, i64)>,
    /// Positions of the customer's invoices in the input.
    invoices: Vec<usize>,
}

impl CustomerCtx<'_> {
    fn open_in(&self, currency: Currency) -> i64 {
        self.open
            .iter()
            .find(|(c, _)| *c == currency)
            .map_or(0, |(_, v)| *v)
    }
}

/// A policy's steps split once: the ordinary sequence and the steps that
/// follow a broken promise.
struct PolicySteps<'a> {
    policy: &'a Policy,
    sequence: Vec<usize>,
    after_promise: Vec<usize>,
}

/// Per-invoice result before grouping.
struct Due<'a> {
    pos: usize,
    decision: usize,
    cust: usize,
    policy: &'a str,
    step_index: usize,
    key: StepKey,
    step: &'a Step,
    records: Vec<StepRecord>,
}

/// A step record as the planner's hot loop needs it.
#[derive(Debug, Clone, Copy)]
struct Done {
    /// Index of the record's policy name (see `policy_ids`).
    policy: u32,
    key: StepKey,
    on: Date,
}

impl Done {
    /// Fills the flat index before every slot is assigned (never read).
    const EMPTY: Done = Done {
        policy: u32::MAX,
        key: StepKey::Sequence { step: 0 },
        on: Date::MIN,
    };
}

/// Holds and promises by what they cover, without allocating a key per lookup.
fn scope_key(scope: &Scope) -> (bool, &str) {
    match scope {
        Scope::Invoice(k) => (true, k.as_str()),
        Scope::Customer(k) => (false, k.as_str()),
    }
}

pub fn plan<'a>(input: &PlanInput<'a>) -> Result<Plan<'a>, PlanError> {
    let now = input.now;
    let no_allocations: &'a [(Date, i64)] = &[];
    let states: Vec<InvoiceState<'a>> = input
        .invoices
        .iter()
        .enumerate()
        .map(|(i, invoice)| InvoiceState {
            invoice,
            open: input.open.get(i).copied().unwrap_or(invoice.total),
            allocations: input
                .allocations
                .get(i)
                .map_or(no_allocations, Vec::as_slice),
        })
        .collect();
    let settings = input.settings;
    let mut out = Plan::default();

    // Indexes, built once: the planner must handle a million invoices a second.
    let mut tz_cache: HashMap<&str, Option<TimeZone>> = HashMap::new();
    let mut customers: Vec<CustomerCtx<'a>> = Vec::with_capacity(input.customers.len());
    let mut customer_index: FxHashMap<&str, usize> =
        FxHashMap::with_capacity_and_hasher(input.customers.len(), Default::default());
    for c in input.customers {
        let (tz, tz_name) = c
            .time_zone
            .as_deref()
            .and_then(|name| {
                tz_cache
                    .entry(name)
                    .or_insert_with(|| TimeZone::get(name).ok())
                    .clone()
                    .map(|tz| (tz, name.to_string()))
            })
            .unwrap_or_else(|| {
                (
                    input.org_time_zone.clone(),
                    input.org_time_zone.iana_name().unwrap_or("UTC").to_string(),
                )
            });
        let today = now.to_zoned_datetime(tz.clone()).date();
        customer_index.insert(c.external_id.as_str(), customers.len());
        customers.push(CustomerCtx {
            customer: c,
            tz,
            tz_name,
            today,
            contacts: Vec::new(),
            open: Vec::new(),
            invoices: Vec::new(),
        });
    }
    for contact in input.contacts {
        if let Some(&i) = customer_index.get(contact.customer.as_str()) {
            customers[i].contacts.push(contact);
        }
    }
    for ctx in &mut customers {
        // Primary contacts first, then by external id: the choice is stable.
        ctx.contacts
            .sort_by(|a, b| (!a.is_primary, &a.external_id).cmp(&(!b.is_primary, &b.external_id)));
    }
    let mut invoice_customer: Vec<Option<usize>> = Vec::with_capacity(input.invoices.len());
    for (pos, s) in states.iter().enumerate() {
        let ci = customer_index.get(s.invoice.customer.as_str()).copied();
        if let Some(ci) = ci {
            let cust = &mut customers[ci];
            cust.invoices.push(pos);
            if s.invoice.status == InvoiceStatus::Open && s.open > 0 {
                match cust.open.iter_mut().find(|(c, _)| *c == s.invoice.currency) {
                    Some((_, v)) => *v += s.open,
                    None => cust.open.push((s.invoice.currency, s.open)),
                }
            }
        }
        invoice_customer.push(ci);
    }

    let mut assigned: HashMap<(u8, &str), &str> = HashMap::new();
    for a in input.assignments {
        let (kind, key) = match &a.scope {
            AssignmentScope::Invoice(k) => (0, k.as_str()),
            AssignmentScope::Customer(k) => (1, k.as_str()),
            AssignmentScope::Segment(k) => (2, k.as_str()),
        };
        if !input.policies.contains_key(&a.policy) {
            let mut known: Vec<&str> = input.policies.keys().map(String::as_str).collect();
            known.sort_unstable();
            let kind = ["invoice", "customer", "segment"][usize::from(kind)];
            return Err(PlanError::UnknownPolicy {
                policy: a.policy.clone(),
                scope: format!("{kind} {key}"),
                known: known.join(", "),
            });
        }
        assigned.insert((kind, key), a.policy.as_str());
    }
    let policy_steps: HashMap<&str, PolicySteps<'a>> = input
        .policies
        .iter()
        .map(|(name, policy)| {
            let (after_promise, sequence): (Vec<usize>, Vec<usize>) = (0..policy.steps.len())
                .partition(|i| policy.steps[*i].anchor == Anchor::AfterBrokenPromise);
            (
                name.as_str(),
                PolicySteps {
                    policy,
                    sequence,
                    after_promise,
                },
            )
        })
        .collect();

    // Step records per invoice as one flat index of compact entries
    // (counting sort by invoice position): millions of records, no
    // per-invoice allocation, and the hot loop never follows a record's
    // heap strings.
    let mut invoice_pos: FxHashMap<&str, u32> =
        FxHashMap::with_capacity_and_hasher(states.len(), Default::default());
    for (pos, s) in states.iter().enumerate() {
        invoice_pos.insert(s.invoice.number.as_str(), pos as u32);
    }
    let mut policy_ids: FxHashMap<&str, u32> = FxHashMap::default();
    // Records come grouped by invoice and mostly under one policy: reusing
    // the previous lookup when the key repeats skips most hashing.
    let mut last_invoice: (&str, u32) = ("", u32::MAX);
    let mut last_policy: (&str, u32) = ("", u32::MAX);
    let located: Vec<(u32, Done)> = input
        .steps_done
        .iter()
        .map(|r| {
            if r.invoice != last_invoice.0 || last_invoice.1 == u32::MAX {
                let pos = invoice_pos
                    .get(r.invoice.as_str())
                    .copied()
                    .unwrap_or(u32::MAX);
                last_invoice = (r.invoice.as_str(), pos);
            }
            if r.policy != last_policy.0 || last_policy.1 == u32::MAX {
                let next_id = policy_ids.len() as u32;
                let id = *policy_ids.entry(r.policy.as_str()).or_insert(next_id);
                last_policy = (r.policy.as_str(), id);
            }
            (
                last_invoice.1,
                Done {
                    policy: last_policy.1,
                    key: r.step,
                    on: r.done_on,
                },
            )
        })
        .collect();
    drop(invoice_pos);
    let mut step_start = vec![0u32; states.len() + 1];
    for (p, _) in &located {
        if *p != u32::MAX {
            step_start[*p as usize + 1] += 1;
        }
    }
    for i in 0..states.len() {
        step_start[i + 1] += step_start[i];
    }
    let mut fill = step_start.clone();
    let mut step_index: Vec<Done> = vec![Done::EMPTY; located.len()];
    for (p, d) in located {
        if p != u32::MAX {
            step_index[fill[p as usize] as usize] = d;
            fill[p as usize] += 1;
        }
    }
    drop(fill);
    let mut open_disputes: HashMap<&str, &Dispute> = HashMap::new();
    for d in input.disputes {
        if d.is_open(now) {
            open_disputes.insert(d.invoice.as_str(), &d.record);
        }
    }
    let mut holds_by_scope: HashMap<(bool, &str), Vec<&Hold>> = HashMap::new();
    for h in input.holds {
        holds_by_scope
            .entry(scope_key(&h.scope))
            .or_default()
            .push(&h.record);
    }
    let mut promises_by_scope: HashMap<(bool, &str), Vec<&Stored<Promise>>> = HashMap::new();
    for p in input.promises {
        if p.cancelled_at.is_none_or(|c| c > now) && p.made_at <= now {
            promises_by_scope
                .entry(scope_key(&p.scope))
                .or_default()
                .push(p);
        }
    }
    let bounced: HashSet<String> = input
        .bounces
        .iter()
        .filter(|b| b.cleared_at.is_none_or(|c| c > now))
        .map(|b| b.address.to_lowercase())
        .collect();
    let mut last_interest: HashMap<&str, Date> = HashMap::new();
    let mut compensated: HashSet<&str> = HashSet::new();
    for c in input.charges {
        match c.kind {
            ChargeKind::Interest => {
                let e = last_interest
                    .entry(c.invoice.as_str())
                    .or_insert(c.charged_on);
                *e = (*e).max(c.charged_on);
            }
            ChargeKind::Compensation => {
                compensated.insert(c.invoice.as_str());
            }
            ChargeKind::LateFee => {}
        }
    }

    // Sized up front: a million decisions must not be copied while growing.
    out.decisions = Vec::with_capacity(
        states
            .iter()
            .filter(|s| s.invoice.status == InvoiceStatus::Open && s.open > 0)
            .count(),
    );
    let mut due: Vec<Due<'a>> = Vec::new();
    let mut reported_promises: HashSet<i64> = HashSet::new();

    // In input order: sequential memory access matters more than grouping
    // at a million invoices; callers sort decisions for display.
    let invoice_assignments = assigned.keys().any(|(kind, _)| *kind == 0);
    let customer_policy: Vec<&'a str> = customers
        .iter()
        .map(|cust| {
            assigned
                .get(&(1, cust.customer.external_id.as_str()))
                .or_else(|| {
                    cust.customer
                        .segment
                        .as_deref()
                        .and_then(|s| assigned.get(&(2, s)))
                })
                .copied()
                .unwrap_or(settings.default_policy.as_str())
        })
        .collect();
    for (pos, state) in states.iter().enumerate() {
        let inv = state.invoice;
        // Closed and paid invoices are done; only open ones are explained.
        if inv.status != InvoiceStatus::Open || state.open <= 0 {
            continue;
        }
        let Some(ci) = invoice_customer[pos] else {
            continue;
        };
        let cust = &customers[ci];
        let today = cust.today;
        let customer_policy = customer_policy[ci];
        let mut decision = InvoiceDecision {
            invoice: inv.number.as_str(),
            customer: inv.customer.as_str(),
            currency: inv.currency,
            open: state.open,
            due_date: inv.due_date,
            policy: None,
            skipped: Vec::new(),
            decision: Decision::Finished,
            time_zone: cust.tz.clone(),
        };

        // 1. Stops.
        let min = settings.min_balance_for(inv.currency);
        if state.open < min {
            decision.decision = Decision::Stopped {
                reason: format!(
                    "the open balance {} is under the {} threshold",
                    Money::new(state.open, inv.currency),
                    Money::new(min, inv.currency)
                ),
            };
            out.decisions.push(decision);
            continue;
        }

        let policy_name: &'a str = if invoice_assignments {
            assigned
                .get(&(0, inv.number.as_str()))
                .copied()
                .unwrap_or(customer_policy)
        } else {
            customer_policy
        };
        decision.policy = Some(policy_name);
        let Some(steps) = policy_steps.get(policy_name) else {
            decision.decision = Decision::Stopped {
                reason: format!(
                    "its policy '{policy_name}' is not stored; add it with `arflow policy set`"
                ),
            };
            out.decisions.push(decision);
            continue;
        };

        // 2. Pauses.
        let mut pause: Option<(PauseReason<'a>, Option<Date>)> = None;
        if settings.paused {
            pause = Some((PauseReason::Organization, None));
        } else if let Some(d) = (!open_disputes.is_empty())
            .then(|| open_disputes.get(inv.number.as_str()))
            .flatten()
        {
            pause = Some((
                PauseReason::Dispute {
                    reason: d.reason.as_str(),
                },
                None,
            ));
        } else if inv.disputed {
            pause = Some((PauseReason::LedgerDisputed, None));
        } else if !holds_by_scope.is_empty() {
            for key in [(true, inv.number.as_str()), (false, inv.customer.as_str())] {
                if let Some(h) = holds_by_scope
                    .get(&key)
                    .and_then(|hs| hs.iter().find(|h| h.is_active(today, now)))
                {
                    pause = Some((
                        PauseReason::Hold {
                            scope: &h.scope,
                            reason: h.reason.as_str(),
                        },
                        h.expires_on,
                    ));
                    break;
                }
            }
        }
        // Promises: active ones pause; broken ones trigger their steps.
        let mut broken: Vec<(&Stored<Promise>, Date)> = Vec::new();
        if pause.is_none() && !promises_by_scope.is_empty() {
            for key in [(true, inv.number.as_str()), (false, inv.customer.as_str())] {
                for p in promises_by_scope.get(&key).into_iter().flatten() {
                    let last = p.last_day();
                    if today <= last {
                        if pause.is_none() {
                            pause = Some((
                                PauseReason::Promise {
                                    promise: p.id,
                                    amount: p.amount,
                                    promised_on: p.promised_on,
                                    last_day: last,
                                },
                                last.checked_add(1.day()).ok(),
                            ));
                        }
                        continue;
                    }
                    let members: Vec<&InvoiceState<'_>> = if key.0 {
                        vec![state]
                    } else {
                        cust.invoices.iter().map(|i| &states[*i]).collect()
                    };
                    if promise_kept(p, &members) {
                        continue;
                    }
                    let broken_on = last.checked_add(1.day()).unwrap_or(last);
                    broken.push((p, broken_on));
                    if reported_promises.insert(p.id) {
                        out.broken_promises.push(BrokenPromise {
                            promise: p.id,
                            customer: inv.customer.clone(),
                            invoices: members
                                .iter()
                                .filter(|s| s.open > 0)
                                .map(|s| s.invoice.number.clone())
                                .collect(),
                            promised_on: p.promised_on,
                            amount: p.amount,
                            broken_on,
                        });
                    }
                }
            }
        }
        if let Some((reason, until)) = pause {
            decision.decision = Decision::Paused { reason, until };
            out.decisions.push(decision);
            continue;
        }

        // 3. Progress through the policy.
        let done = &step_index[step_start[pos] as usize..step_start[pos + 1] as usize];
        // Records of another policy (the invoice was reassigned) do not count.
        let policy_id = policy_ids.get(policy_name).copied().unwrap_or(u32::MAX);
        let next = next_step(
            steps,
            policy_name,
            inv,
            cust,
            done,
            policy_id,
            &broken,
            settings.started_on.unwrap_or(today),
            now,
        );
        decision.skipped = next
            .skipped
            .iter()
            .map(|r| match &r.outcome {
                StepOutcome::Skipped { reason } => (r.step, reason.clone()),
                StepOutcome::Enqueued { .. } => (r.step, String::new()),
            })
            .collect();
        match next.outcome {
            NextOutcome::Finished | NextOutcome::Waiting { .. } => {
                if let NextOutcome::Waiting { key, step, on } = next.outcome {
                    decision.decision = Decision::Waiting {
                        step: StepRef {
                            key,
                            template: step.template.as_str(),
                            step,
                        },
                        on,
                    };
                }
                if !next.skipped.is_empty() {
                    out.skipped.push(SkippedSteps {
                        customer: inv.customer.clone(),
                        records: next.skipped,
                    });
                }
                out.decisions.push(decision);
            }
            NextOutcome::Due {
                key,
                step_index,
                step,
                days_late,
            } => {
                decision.decision = Decision::Due {
                    step: StepRef {
                        key,
                        template: step.template.as_str(),
                        step,
                    },
                    action: usize::MAX, // set when the action is made
                    days_late,
                };
                due.push(Due {
                    pos,
                    decision: out.decisions.len(),
                    cust: ci,
                    policy: policy_name,
                    step_index,
                    key,
                    step,
                    records: next.skipped,
                });
                out.decisions.push(decision);
            }
        }
    }

    // 4–6. Group, choose channels, apply hygiene and the send window.
    let mut groups: BTreeMap<GroupKey<'a>, Vec<Due<'a>>> = BTreeMap::new();
    for d in due {
        let consolidation = input
            .policies
            .get(d.policy)
            .map_or(Consolidation::Customer, |p| p.consolidation);
        let inv = states[d.pos].invoice;
        let key = GroupKey {
            customer: d.cust,
            currency: inv.currency.code(),
            policy: d.policy,
            task: d.step.channel == Channel::Task,
            invoice: match consolidation {
                Consolidation::Invoice => Some(inv.number.as_str()),
                Consolidation::Customer => None,
            },
        };
        groups.entry(key).or_default().push(d);
    }

    let mut log: HashMap<&str, Vec<Timestamp>> = HashMap::new();
    for (c, t) in input.contact_log {
        log.entry(c.as_str()).or_default().push(*t);
    }
    let mut planned: HashMap<&str, Vec<Timestamp>> = HashMap::new();
    // The window opens at the same instant for every customer in a zone.
    let mut window_opens: HashMap<&str, Option<Timestamp>> = HashMap::new();
    let gap = i64::from(settings.min_gap_days);
    let week = 7.days();

    for (gk, members) in groups {
        let cust = &customers[gk.customer];
        let customer = cust.customer;
        // The most escalated step leads: highest tone, then the latest step.
        let Some(lead) = members
            .iter()
            .max_by_key(|d| (d.step.tone, d.step_index, d.key))
        else {
            continue;
        };
        let requested = lead.step.channel;
        let (channel, contact, fallback_reason) = choose_channel(requested, cust, &bounced);
        let local_date = cust.today;

        let mut send_at = now;
        let mut deferred: Option<(Timestamp, String)> = None;
        if channel != Channel::Task {
            let opens = *window_opens
                .entry(cust.tz_name.as_str())
                .or_insert_with(|| {
                    next_send_time(&settings.send_window, &settings.holidays, &cust.tz, now)
                });
            match opens {
                Some(t) => send_at = t,
                None => {
                    deferred = Some((
                        now,
                        "the send window never opens (no send days configured)".to_string(),
                    ))
                }
            }
            if deferred.is_none() {
                let earlier = log.get(customer.external_id.as_str());
                // The gap is kept from earlier runs; messages of this run (one per
                // currency) go out together and count only against the weekly cap.
                if let Some(last) = earlier.and_then(|t| t.iter().max()).copied() {
                    let earliest = last
                        .to_zoned_datetime(cust.tz.clone())
                        .checked_add(gap.days())
                        .map(|z| z.timestamp())
                        .unwrap_or(last);
                    if send_at < earliest {
                        deferred = Some((
                            earliest,
                            format!(
                                "the customer was contacted at {}; the minimum gap is {gap} days",
                                last.to_zoned_datetime(cust.tz.clone())
                                    .strftime("%Y-%m-%d %H:%M %Z")
                            ),
                        ));
                    }
                }
                if deferred.is_none() && settings.weekly_cap > 0 {
                    let window_start = send_at
                        .to_zoned_datetime(cust.tz.clone())
                        .checked_sub(week)
                        .map(|z| z.timestamp())
                        .unwrap_or(send_at);
                    let mut recent: Vec<Timestamp> = earlier
                        .into_iter()
                        .flatten()
                        .chain(
                            planned
                                .get(customer.external_id.as_str())
                                .into_iter()
                                .flatten(),
                        )
                        .copied()
                        .filter(|t| *t > window_start)
                        .collect();
                    let cap = settings.weekly_cap as usize;
                    if recent.len() >= cap {
                        recent.sort_unstable();
                        let oldest = recent[recent.len() - cap];
                        let until = oldest
                            .to_zoned_datetime(cust.tz.clone())
                            .checked_add(week)
                            .map(|z| z.timestamp())
                            .unwrap_or(oldest);
                        deferred = Some((
                            until,
                            format!(
                                "{} messages in the last 7 days reach the weekly cap of {cap}",
                                recent.len()
                            ),
                        ));
                    }
                }
            }
        }

        if let Some((until, reason)) = deferred {
            for m in members {
                let d = &mut out.decisions[m.decision];
                d.decision = Decision::Deferred {
                    step: StepRef {
                        key: m.key,
                        template: m.step.template.as_str(),
                        step: m.step,
                    },
                    until,
                    reason: reason.clone(),
                };
                if !m.records.is_empty() {
                    out.skipped.push(SkippedSteps {
                        customer: customer.external_id.clone(),
                        records: m.records,
                    });
                }
            }
            continue;
        }
        if channel != Channel::Task {
            planned
                .entry(customer.external_id.as_str())
                .or_default()
                .push(send_at);
        }

        let scope = match gk.invoice {
            Some(n) => format!("i:{n}"),
            None => format!("c:{}:{}", customer.external_id, gk.currency),
        };
        let kind = if channel == Channel::Task { "t" } else { "m" };
        let action_key = match gk.invoice {
            Some(_) => format!("{kind}/{scope}/{}/{}", gk.policy, lead.key),
            None => format!("{kind}/{scope}/{}/{}/{local_date}", gk.policy, lead.key),
        };
        let lead_key = lead.key;
        let lead_template = lead.step.template.clone();
        let lead_tone = lead.step.tone;
        let action_index = out.actions.len();

        let mut invoices = Vec::with_capacity(members.len());
        let mut steps = Vec::new();
        let mut charges = Vec::new();
        let currency = states[members[0].pos].invoice.currency;
        for m in members {
            let state = &states[m.pos];
            let inv = state.invoice;
            let days_overdue = days_between(inv.due_date, local_date);
            let mut line = MessageInvoice {
                number: inv.number.clone(),
                issue_date: inv.issue_date,
                due_date: inv.due_date,
                open: state.open,
                days_overdue,
                fee: 0,
                interest: 0,
                compensation: 0,
            };
            let charge_base = format!("{}/{}/{}", inv.number, m.policy, m.key);
            if let Some(fee) = m.step.fee
                && let Some(amount) = fee_amount(fee, state.open, inv.currency, days_overdue)
                && amount > 0
            {
                line.fee = amount;
                charges.push(Charge {
                    key: format!("fee:{charge_base}"),
                    invoice: inv.number.clone(),
                    kind: ChargeKind::LateFee,
                    amount: Money::new(amount, inv.currency),
                    charged_on: local_date,
                    description: format!(
                        "Late fee at step '{}' ({})",
                        m.step.template,
                        describe_fee(fee)
                    ),
                    created_at: now,
                    waived_at: None,
                    waived_by: None,
                    waive_reason: None,
                });
            }
            if let Some(regime) = settings.interest_regime
                && days_overdue > 0
            {
                add_statutory(
                    regime,
                    state,
                    local_date,
                    last_interest.get(inv.number.as_str()).copied(),
                    compensated.contains(inv.number.as_str()),
                    &charge_base,
                    now,
                    &mut line,
                    &mut charges,
                );
            }
            steps.extend(m.records);
            steps.push(StepRecord {
                invoice: inv.number.clone(),
                policy: m.policy.to_string(),
                step: m.key,
                done_on: local_date,
                done_at: now,
                outcome: StepOutcome::Enqueued {
                    message_key: action_key.clone(),
                },
            });
            invoices.push(line);
            if let Decision::Due { action, .. } = &mut out.decisions[m.decision].decision {
                *action = action_index;
            }
        }
        invoices.sort_by(|a, b| (a.due_date, &a.number).cmp(&(b.due_date, &b.number)));
        out.actions.push(PlannedAction {
            key: action_key,
            customer: customer.external_id.clone(),
            currency,
            policy: gk.policy.to_string(),
            step: lead_key,
            template: lead_template,
            tone: lead_tone,
            requested_channel: requested,
            channel,
            fallback_reason,
            contact: contact.as_ref().map(|c| c.0.external_id.clone()),
            contact_name: contact.as_ref().map(|c| c.0.name.clone()),
            recipient: contact.as_ref().map(|c| c.1.clone()),
            locale: customer.locale.clone().unwrap_or_else(|| "en".to_string()),
            time_zone: cust.tz_name.clone(),
            send_at,
            local_date,
            invoices,
            steps,
            charges,
        });
    }
    // Grouped by customer in input order, then by due date; integer keys
    // keep the sort cheap.
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey<'a> {
    customer: usize,
    currency: &'static str,
    policy: &'a str,
    task: bool,
    invoice: Option<&'a str>,
}

enum NextOutcome<'a> {
    Finished,
    Waiting {
        key: StepKey,
        step: &'a Step,
        on: Date,
    },
    Due {
        key: StepKey,
        step_index: usize,
        step: &'a Step,
        days_late: i64,
    },
}

struct Next<'a> {
    skipped: Vec<StepRecord>,
    outcome: NextOutcome<'a>,
}

/// The invoice's next step: first any broken-promise step that has come
/// due, then the ordinary sequence, then repetitions of the last step.
#[allow(clippy::too_many_arguments)]
fn next_step<'a>(
    steps: &PolicySteps<'a>,
    policy_name: &str,
    inv: &Invoice,
    cust: &CustomerCtx<'_>,
    done: &[Done],
    policy_id: u32,
    broken: &[(&Stored<Promise>, Date)],
    started_on: Date,
    now: Timestamp,
) -> Next<'a> {
    let policy = steps.policy;
    let today = cust.today;
    let customer_open = cust.open_in(inv.currency);
    let mut skipped: Vec<StepRecord> = Vec::new();
    let done_on = |key: StepKey, skipped: &[StepRecord]| -> Option<Date> {
        done.iter()
            .find(|d| d.key == key && d.policy == policy_id)
            .map(|d| d.on)
            .or_else(|| skipped.iter().find(|r| r.step == key).map(|r| r.done_on))
    };
    let skip = |key: StepKey, reason: String| StepRecord {
        invoice: inv.number.clone(),
        policy: policy_name.to_string(),
        step: key,
        done_on: today,
        done_at: now,
        outcome: StepOutcome::Skipped { reason },
    };

    // Broken-promise steps come first: a broken promise is the most urgent news.
    for (p, broken_on) in broken {
        let mut prev_done: Option<Date> = None;
        for &i in &steps.after_promise {
            let step = &policy.steps[i];
            let key = StepKey::BrokenPromise {
                promise: p.id,
                step: i as u32,
            };
            if let Some(d) = done_on(key, &skipped) {
                prev_done = Some(d);
                continue;
            }
            let base = prev_done.unwrap_or(*broken_on);
            let on = add_days(base, i64::from(step.offset_days));
            if on > today {
                break;
            }
            if let Some(reason) = condition_failure(step, inv, cust.customer, customer_open) {
                skipped.push(skip(key, reason));
                prev_done = Some(today);
                continue;
            }
            return Next {
                skipped,
                outcome: NextOutcome::Due {
                    key,
                    step_index: i,
                    step,
                    days_late: days_between(on.max(started_on), today),
                },
            };
        }
    }

    // The ordinary sequence.
    let sequence = &steps.sequence;
    let mut prev_done: Option<Date> = None;
    let mut pos = 0;
    while pos < sequence.len() {
        let i = sequence[pos];
        let step = &policy.steps[i];
        let key = StepKey::Sequence { step: i as u32 };
        if let Some(d) = done_on(key, &skipped) {
            prev_done = Some(d);
            pos += 1;
            continue;
        }
        let on = step_date(step, inv.due_date, prev_done);
        if on > today {
            return Next {
                skipped,
                outcome: NextOutcome::Waiting { key, step, on },
            };
        }
        // Due (today or earlier). Decide whether it still makes sense.
        let reason = if step.anchor == Anchor::BeforeDue && today >= inv.due_date {
            Some(format!(
                "a reminder before the due date ({}) no longer applies: the invoice is due",
                inv.due_date
            ))
        } else if step.anchor == Anchor::BeforeDue && cust.customer.autopay {
            Some("the customer pays by autopay: no reminders before the due date".to_string())
        } else if let Some(r) = condition_failure(step, inv, cust.customer, customer_open) {
            Some(r)
        } else if on < started_on
            && sequence
                .get(pos + 1)
                .is_some_and(|&n| step_date(&policy.steps[n], inv.due_date, Some(today)) <= today)
        {
            Some(format!(
                "dunning began on {started_on}, after this step's date {on}; the invoice starts at a later step that is already due"
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            skipped.push(skip(key, reason));
            prev_done = Some(today);
            pos += 1;
            continue;
        }
        return Next {
            skipped,
            outcome: NextOutcome::Due {
                key,
                step_index: i,
                step,
                days_late: days_between(on.max(started_on), today),
            },
        };
    }

    // Repetitions of the last step.
    if let Some(repeat) = policy.repeat
        && let Some(&last_index) = sequence.last()
    {
        let last_step = &policy.steps[last_index];
        let mut n = 1;
        loop {
            if repeat.max_times.is_some_and(|max| n > max) {
                break;
            }
            let key = StepKey::Repeat { n };
            if let Some(d) = done_on(key, &skipped) {
                prev_done = Some(d);
                n += 1;
                continue;
            }
            let base = prev_done.unwrap_or(today);
            let on = add_days(base, i64::from(repeat.every_days));
            if on > today {
                return Next {
                    skipped,
                    outcome: NextOutcome::Waiting {
                        key,
                        step: last_step,
                        on,
                    },
                };
            }
            return Next {
                skipped,
                outcome: NextOutcome::Due {
                    key,
                    step_index: last_index,
                    step: last_step,
                    days_late: days_between(on.max(started_on), today),
                },
            };
        }
    }
    Next {
        skipped,
        outcome: NextOutcome::Finished,
    }
}

fn step_date(step: &Step, due: Date, prev_done: Option<Date>) -> Date {
    let offset = i64::from(step.offset_days);
    match step.anchor {
        Anchor::BeforeDue => add_days(due, -offset),
        Anchor::AfterDue => add_days(due, offset),
        // The policy parser forbids this as the first step, so a previous step exists.
        Anchor::AfterPreviousStep => add_days(prev_done.unwrap_or(due), offset),
        Anchor::AfterBrokenPromise => add_days(due, offset),
    }
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
fn days_between(from: Date, to: Date) -> i64 {
    i64::from((to - from).get_days())
}

fn add_days(d: Date, n: i64) -> Date {
    d.checked_add(n.days()).unwrap_or(d)
}

fn condition_failure(
    step: &Step,
    inv: &Invoice,
    customer: &Customer,
    customer_open: i64,
) -> Option<String> {
    let c = &step.conditions;
    if let Some(min) = c.min_open_balance {
        if min.currency != inv.currency {
            return Some(format!(
                "the step applies from {min} open, and the invoice is in {}",
                inv.currency
            ));
        }
        if customer_open < min.minor {
            return Some(format!(
                "the customer's open balance {} is under the step's minimum {min}",
                Money::new(customer_open, inv.currency)
            ));
        }
    }
    if !c.segments.is_empty()
        && !customer
            .segment
            .as_ref()
            .is_some_and(|s| c.segments.contains(s))
    {
        return Some(format!(
            "the step is for segments {} and the customer is in {}",
            c.segments.join(", "),
            customer.segment.as_deref().unwrap_or("no segment")
        ));
    }
    if !c.tags.is_empty() && !customer.tags.iter().any(|t| c.tags.contains(t)) {
        return Some(format!(
            "the step is for customers tagged {}",
            c.tags.join(", ")
        ));
    }
    if !c.currencies.is_empty() && !c.currencies.contains(&inv.currency) {
        let codes: Vec<&str> = c.currencies.iter().map(|c| c.code()).collect();
        return Some(format!(
            "the step is for invoices in {}, this one is in {}",
            codes.join(", "),
            inv.currency
        ));
    }
    None
}

/// The contact and address for a channel, falling back as the rules say.
fn choose_channel<'a>(
    requested: Channel,
    cust: &'a CustomerCtx<'a>,
    bounced: &std::collections::HashSet<String>,
) -> (Channel, Option<(&'a Contact, String)>, Option<String>) {
    let email = || {
        cust.contacts.iter().find_map(|c| {
            let addr = c.email.as_deref()?.trim();
            (!addr.is_empty()
                && !c.preferences.email_opt_out
                && !bounced.contains(&addr.to_lowercase()))
            .then(|| (*c, addr.to_string()))
        })
    };
    let sms = || {
        cust.contacts.iter().find_map(|c| {
            let phone = c.phone.as_deref()?.trim();
            (!phone.is_empty() && c.preferences.sms_consent && !c.preferences.sms_opt_out)
                .then(|| (*c, phone.to_string()))
        })
    };
    let why_not_email = || {
        if cust.contacts.iter().all(|c| c.email.is_none()) {
            "no contact has an email address".to_string()
        } else if cust.contacts.iter().any(|c| {
            c.email
                .as_deref()
                .is_some_and(|a| bounced.contains(&a.trim().to_lowercase()))
        }) {
            "email bounced or opted out".to_string()
        } else {
            "every contact opted out of email".to_string()
        }
    };
    let why_not_sms = || {
        if cust.contacts.iter().all(|c| c.phone.is_none()) {
            "no contact has a phone number".to_string()
        } else if cust.contacts.iter().any(|c| c.preferences.sms_opt_out) {
            "SMS opted out".to_string()
        } else {
            "no contact consented to SMS".to_string()
        }
    };
    match requested {
        Channel::Task => (Channel::Task, None, None),
        Channel::Email => match email() {
            Some(c) => (Channel::Email, Some(c), None),
            None => match sms() {
                Some(c) => (
                    Channel::Sms,
                    Some(c),
                    Some(format!("{}; sent by SMS instead", why_not_email())),
                ),
                None => (
                    Channel::Task,
                    None,
                    Some(format!(
                        "{}, and {}: a person must reach the customer",
                        why_not_email(),
                        why_not_sms()
                    )),
                ),
            },
        },
        Channel::Sms => match sms() {
            Some(c) => (Channel::Sms, Some(c), None),
            None => match email() {
                Some(c) => (
                    Channel::Email,
                    Some(c),
                    Some(format!("{}; sent by email instead", why_not_sms())),
                ),
                None => (
                    Channel::Task,
                    None,
                    Some(format!(
                        "{}, and {}: a person must reach the customer",
                        why_not_sms(),
                        why_not_email()
                    )),
                ),
            },
        },
    }
}

/// Whether a promise whose grace ended was kept: the whole scope (`members`)
/// paid by the last day, or at least the promised amount allocated to it
/// between the day it was made and the last day.
fn promise_kept(p: &Promise, members: &[&InvoiceState<'_>]) -> bool {
    let last = p.last_day();
    let made = p.made_at.to_zoned_datetime(TimeZone::UTC).date();
    match p.amount {
        Some(m) => {
            let paid: i64 = members
                .iter()
                .filter(|s| s.invoice.currency == m.currency)
                .flat_map(|s| s.allocations.iter())
                .filter(|(d, _)| *d >= made && *d <= last)
                .map(|(_, a)| *a)
                .sum();
            paid >= m.minor
        }
        None => members.iter().all(|s| {
            // Settled by the last day: nothing open once later payments are taken back.
            let after: i64 = s
                .allocations
                .iter()
                .filter(|(d, _)| *d > last)
                .map(|(_, a)| *a)
                .sum();
            s.open + after <= 0 || s.invoice.status != InvoiceStatus::Open
        }),
    }
}

fn fee_amount(fee: Fee, open: i64, currency: Currency, days_overdue: i64) -> Option<i64> {
    let rule = match fee {
        Fee::Fixed(m) if m.currency == currency => FeeRule::Fixed(m),
        // A fixed fee in another currency is not converted: it is not charged.
        Fee::Fixed(_) => return None,
        Fee::Percent { basis_points } => FeeRule::PercentOfOverdue {
            bp: i64::from(basis_points),
            min: None,
            max: None,
        },
        Fee::MonthlyRate { basis_points } => FeeRule::MonthlyRate {
            bp: i64::from(basis_points),
        },
    };
    rule.apply(Money::new(open, currency), days_overdue.max(0))
        .ok()
        .map(|m| m.minor)
}

fn describe_fee(fee: Fee) -> String {
    match fee {
        Fee::Fixed(m) => format!("fixed {m}"),
        Fee::Percent { basis_points } => {
            format!(
                "{}.{:02} % of the open amount",
                basis_points / 100,
                basis_points % 100
            )
        }
        Fee::MonthlyRate { basis_points } => format!(
            "{}.{:02} % a month, pro rata",
            basis_points / 100,
            basis_points % 100
        ),
    }
}

/// Statutory interest accrued since the last recorded interest charge, and
/// the fixed compensation once per invoice. A regime that does not apply to
/// the invoice's currency adds nothing.
#[allow(clippy::too_many_arguments)]
fn add_statutory(
    regime: Regime,
    state: &InvoiceState<'_>,
    today: Date,
    last_charged: Option<Date>,
    compensated: bool,
    charge_base: &str,
    now: Timestamp,
    line: &mut MessageInvoice,
    charges: &mut Vec<Charge>,
) {
    let inv = state.invoice;
    let principal = Money::new(state.open, inv.currency);
    let Ok(total) = statutory_interest(regime, principal, inv.due_date, today) else {
        return;
    };
    let before = last_charged
        .and_then(|d| statutory_interest(regime, principal, inv.due_date, d).ok())
        .map_or(0, |c| c.interest.minor);
    let increment = total.interest.minor - before;
    line.interest = total.interest.minor;
    if increment > 0 {
        charges.push(Charge {
            key: format!("interest:{charge_base}"),
            invoice: inv.number.clone(),
            kind: ChargeKind::Interest,
            amount: Money::new(increment, inv.currency),
            charged_on: today,
            description: format!(
                "{regime} interest on {principal} from {} to {today}",
                last_charged.unwrap_or(inv.due_date)
            ),
            created_at: now,
            waived_at: None,
            waived_by: None,
            waive_reason: None,
        });
    }
    line.compensation = total.compensation.minor;
    if !compensated && total.compensation.minor > 0 {
        charges.push(Charge {
            key: format!("compensation:{}", inv.number),
            invoice: inv.number.clone(),
            kind: ChargeKind::Compensation,
            amount: total.compensation,
            charged_on: today,
            description: format!("{regime} fixed compensation for recovery costs"),
            created_at: now,
            waived_at: None,
            waived_by: None,
            waive_reason: None,
        });
    }
}

/// "3 days before due", "on the due date", "15 days after due"...
pub fn describe_step(step: &Step) -> String {
    let n = step.offset_days;
    let days = if n == 1 { "day" } else { "days" };
    match step.anchor {
        Anchor::BeforeDue if n == 0 => "on the due date".to_string(),
        Anchor::BeforeDue => format!("{n} {days} before due"),
        Anchor::AfterDue if n == 0 => "on the due date".to_string(),
        Anchor::AfterDue => format!("{n} {days} after due"),
        Anchor::AfterPreviousStep => format!("{n} {days} after the previous step"),
        Anchor::AfterBrokenPromise => format!("{n} {days} after a broken promise"),
    }
}
