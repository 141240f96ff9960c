//! Planner rules, one test per rule, plus a simulation property test.

use std::collections::HashMap;

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use proptest::prelude::*;

use super::planner::{Decision, Plan, PlanInput, PlannedAction, SkippedSteps, plan};
use super::policy::Channel;
use super::records::*;
use super::{Policy, parse_policy};
use crate::charges::Regime;
use crate::model::{ChannelPreferences, Contact, Customer, Invoice, InvoiceStatus, Stored};
use crate::money::{Currency, Money};

const DEFAULT: &str = include_str!("../../../../policies/default.toml");

/// A small world the planner runs against.
struct World {
    now: Timestamp,
    org_tz: TimeZone,
    settings: DunningSettings,
    policies: HashMap<String, Policy>,
    assignments: Vec<PolicyAssignment>,
    customers: Vec<Customer>,
    contacts: Vec<Contact>,
    invoices: Vec<Invoice>,
    open: Vec<i64>,
    allocations: Vec<Vec<(Date, i64)>>,
    holds: Vec<Stored<Hold>>,
    disputes: Vec<Stored<Dispute>>,
    promises: Vec<Stored<Promise>>,
    steps: Vec<StepRecord>,
    log: Vec<(String, Timestamp)>,
    bounces: Vec<Bounce>,
    charges: Vec<Stored<Charge>>,
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn customer(id: &str) -> Customer {
    Customer {
        external_id: id.into(),
        name: format!("Customer {id}"),
        segment: None,
        tags: vec![],
        country: None,
        time_zone: Some("Europe/Berlin".into()),
        locale: Some("de".into()),
        currency: Currency::EUR,
        payment_terms_days: None,
        credit_limit: None,
        collector: None,
        autopay: false,
    }
}

fn contact(customer: &str, email: Option<&str>, phone: Option<&str>) -> Contact {
    Contact {
        customer: customer.into(),
        external_id: format!("{customer}-{}", email.or(phone).unwrap_or("x")),
        name: "Ada".into(),
        email: email.map(Into::into),
        phone: phone.map(Into::into),
        role: None,
        is_primary: true,
        preferences: ChannelPreferences::default(),
    }
}

fn invoice(number: &str, customer: &str, due: Date, total: i64) -> Invoice {
    Invoice {
        number: number.into(),
        customer: customer.into(),
        external_id: None,
        source: "test".into(),
        issue_date: due.checked_sub(30.days()).unwrap(),
        due_date: due,
        currency: Currency::EUR,
        total,
        tax: 0,
        po_number: None,
        status: InvoiceStatus::Open,
        status_date: None,
        disputed: false,
        paperless: None,
    }
}

impl World {
    /// Tuesday 2026-12-01, 10:00 in Berlin; one customer with an email contact.
    fn new() -> World {
        let mut policies = HashMap::new();
        policies.insert(
            "default".to_string(),
            parse_policy(DEFAULT, "default.toml").unwrap(),
        );
        World {
            now: ts("2026-12-01T09:00:00Z"),
            org_tz: TimeZone::get("Europe/Berlin").unwrap(),
            // Dunning starts with the first recorded run, as in production.
            settings: DunningSettings::default(),
            policies,
            assignments: vec![],
            customers: vec![customer("C1")],
            contacts: vec![contact("C1", Some("ada@c1.example"), None)],
            invoices: vec![],
            open: vec![],
            allocations: vec![],
            holds: vec![],
            disputes: vec![],
            promises: vec![],
            steps: vec![],
            log: vec![],
            bounces: vec![],
            charges: vec![],
        }
    }

    fn add_invoice(&mut self, number: &str, customer: &str, due: Date, open: i64) {
        self.invoices.push(invoice(number, customer, due, open));
        self.open.push(open);
        self.allocations.push(vec![]);
    }

    fn plan(&self) -> Plan<'_> {
        plan(&PlanInput {
            now: self.now,
            org_time_zone: &self.org_tz,
            settings: &self.settings,
            policies: &self.policies,
            assignments: &self.assignments,
            customers: &self.customers,
            contacts: &self.contacts,
            invoices: &self.invoices,
            open: &self.open,
            allocations: &self.allocations,
            holds: &self.holds,
            disputes: &self.disputes,
            promises: &self.promises,
            steps_done: &self.steps,
            contact_log: &self.log,
            bounces: &self.bounces,
            charges: &self.charges,
        })
        .unwrap()
    }

    /// Records a plan's actions and skips as `dunning run` would.
    fn record(&mut self, actions: &[PlannedAction], skipped: &[SkippedSteps]) {
        if self.settings.started_on.is_none() {
            self.settings.started_on = Some(self.now.to_zoned_datetime(self.org_tz.clone()).date());
        }
        for a in actions {
            self.steps.extend(a.steps.iter().cloned());
            if a.channel != Channel::Task {
                self.log.push((a.customer.clone(), a.send_at));
            }
            for c in &a.charges {
                let id = self.charges.len() as i64;
                self.charges.push(Stored {
                    id,
                    record: c.clone(),
                });
            }
        }
        for s in skipped {
            self.steps.extend(s.records.iter().cloned());
        }
    }

    /// The plan's decision for an invoice, in words.
    fn why(plan: &Plan<'_>, invoice: &str) -> String {
        plan.decisions
            .iter()
            .find(|d| d.invoice == invoice)
            .unwrap_or_else(|| panic!("no decision for {invoice}"))
            .why(plan)
    }

    fn advance_days(&mut self, n: i64) {
        self.now = self
            .now
            .to_zoned_datetime(self.org_tz.clone())
            .checked_add(n.days())
            .unwrap()
            .timestamp();
    }

    fn decision<'p>(plan: &Plan<'p>, invoice: &str) -> Decision<'p> {
        plan.decisions
            .iter()
            .find(|d| d.invoice == invoice)
            .unwrap_or_else(|| panic!("no decision for {invoice}: {plan:#?}"))
            .decision
            .clone()
    }
}

fn template_of<'a>(d: &'a Decision<'_>) -> &'a str {
    d.step()
        .map(|s| s.template)
        .unwrap_or_else(|| panic!("no step in {d:?}"))
}

#[test]
fn a_pre_due_reminder_goes_three_days_before_due() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 12, 4), 10_000);
    let p = w.plan();
    assert_eq!(p.actions.len(), 1, "{p:#?}");
    let a = &p.actions[0];
    assert_eq!(a.template, "upcoming");
    assert_eq!(a.channel, Channel::Email);
    assert_eq!(a.recipient.as_deref(), Some("ada@c1.example"));
    assert_eq!(a.send_at, w.now, "inside the window: now");
    assert_eq!(a.locale, "de");
    assert_eq!(a.time_zone, "Europe/Berlin");
    assert_eq!(a.invoices[0].days_overdue, -3);
    assert_eq!(a.key, "m/c:C1:EUR/default/s0/2026-12-01");
    assert!(matches!(
        World::decision(&p, "I1"),
        Decision::Due { days_late: 0, .. }
    ));
}

#[test]
fn a_future_step_waits_and_says_when() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 12, 20), 10_000);
    let p = w.plan();
    assert!(p.actions.is_empty());
    match World::decision(&p, "I1") {
        Decision::Waiting { step, on } => {
            assert_eq!(step.key, StepKey::Sequence { step: 0 });
            assert_eq!(step.template, "upcoming");
            assert_eq!(on, date(2026, 12, 17));
        }
        d => panic!("{d:?}"),
    }
    let why = World::why(&p, "I1");
    assert!(
        why.contains("2026-12-17") && why.contains("3 days before due"),
        "{why}"
    );
}

#[test]
fn paid_void_and_written_off_invoices_are_never_chased() {
    let mut w = World::new();
    w.add_invoice("PAID", "C1", date(2026, 11, 1), 0);
    w.add_invoice("VOID", "C1", date(2026, 11, 1), 5_000);
    w.add_invoice("WO", "C1", date(2026, 11, 1), 5_000);
    w.invoices[1].status = InvoiceStatus::Void;
    w.invoices[2].status = InvoiceStatus::WrittenOff;
    let p = w.plan();
    assert!(p.actions.is_empty(), "{p:#?}");
    assert!(
        p.decisions.is_empty(),
        "closed invoices need no explanation"
    );
}

#[test]
fn a_balance_under_the_threshold_stops_dunning() {
    let mut w = World::new();
    w.settings.min_balance = vec![Money::new(1_000, Currency::EUR)];
    w.add_invoice("I1", "C1", date(2026, 11, 1), 999);
    let p = w.plan();
    assert!(p.actions.is_empty());
    match World::decision(&p, "I1") {
        Decision::Stopped { reason } => assert!(reason.contains("threshold"), "{reason}"),
        d => panic!("{d:?}"),
    }
}

#[test]
fn an_open_dispute_pauses_only_that_invoice() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.add_invoice("I2", "C1", date(2026, 11, 24), 10_000);
    w.disputes.push(Stored {
        id: 1,
        record: Dispute {
            invoice: "I1".into(),
            reason: "goods damaged".into(),
            opened_at: ts("2026-11-25T10:00:00Z"),
            opened_by: "test".into(),
            resolved_at: None,
            resolved_by: None,
            resolution: None,
        },
    });
    let p = w.plan();
    assert!(matches!(World::decision(&p, "I1"), Decision::Paused { .. }));
    assert!(matches!(World::decision(&p, "I2"), Decision::Due { .. }));
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].invoices.len(), 1);
    assert_eq!(p.actions[0].invoices[0].number, "I2");

    // Resolved: chased again.
    w.disputes[0].record.resolved_at = Some(ts("2026-11-30T10:00:00Z"));
    let p = w.plan();
    assert!(matches!(World::decision(&p, "I1"), Decision::Due { .. }));
}

#[test]
fn the_ledgers_disputed_flag_also_pauses() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.invoices[0].disputed = true;
    assert!(matches!(
        World::decision(&w.plan(), "I1"),
        Decision::Paused { .. }
    ));
}

#[test]
fn a_customer_hold_pauses_until_it_expires_then_resumes_by_itself() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.holds.push(Stored {
        id: 1,
        record: Hold {
            scope: Scope::Customer("C1".into()),
            reason: "CFO on holiday".into(),
            created_at: ts("2026-11-20T10:00:00Z"),
            created_by: "test".into(),
            expires_on: Some(date(2026, 12, 3)),
            ended_at: None,
            ended_by: None,
        },
    });
    let p = w.plan();
    match World::decision(&p, "I1") {
        Decision::Paused { until, .. } => assert_eq!(until, Some(date(2026, 12, 3))),
        d => panic!("{d:?}"),
    }
    let why = World::why(&p, "I1");
    assert!(
        why.contains("CFO on holiday") && why.contains("customer C1"),
        "{why}"
    );
    w.advance_days(2); // Thursday 12-03: the hold has expired
    assert!(matches!(
        World::decision(&w.plan(), "I1"),
        Decision::Due { .. }
    ));
}

#[test]
fn an_invoice_hold_ended_early_stops_pausing() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.holds.push(Stored {
        id: 1,
        record: Hold {
            scope: Scope::Invoice("I1".into()),
            reason: "checking PO".into(),
            created_at: ts("2026-11-20T10:00:00Z"),
            created_by: "test".into(),
            expires_on: None,
            ended_at: None,
            ended_by: None,
        },
    });
    assert!(matches!(
        World::decision(&w.plan(), "I1"),
        Decision::Paused { until: None, .. }
    ));
    w.holds[0].record.ended_at = Some(ts("2026-11-30T10:00:00Z"));
    assert!(matches!(
        World::decision(&w.plan(), "I1"),
        Decision::Due { .. }
    ));
}

fn promise(scope: Scope, on: Date, amount: Option<Money>) -> Stored<Promise> {
    Stored {
        id: 7,
        record: Promise {
            scope,
            amount,
            promised_on: on,
            grace_days: 2,
            made_at: ts("2026-11-25T10:00:00Z"),
            made_by: "test".into(),
            note: None,
            cancelled_at: None,
            cancelled_by: None,
        },
    }
}

#[test]
fn an_active_promise_pauses_until_its_date_plus_grace() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.promises.push(promise(
        Scope::Invoice("I1".into()),
        date(2026, 12, 2),
        None,
    ));
    let p = w.plan();
    match World::decision(&p, "I1") {
        Decision::Paused { until, .. } => assert_eq!(until, Some(date(2026, 12, 5))),
        d => panic!("{d:?}"),
    }
    let why = World::why(&p, "I1");
    assert!(
        why.contains("promise") && why.contains("2026-12-04"),
        "{why}"
    );
}

#[test]
fn a_broken_promise_is_reported_and_fires_its_steps() {
    let policy = r#"
name = "with-promise"

[[steps]]
anchor = "after_due"
offset_days = 0
channel = "email"
template = "due_today"
tone = "friendly"

[[steps]]
anchor = "after_broken_promise"
offset_days = 1
channel = "task"
template = "call_customer"
tone = "firm"
"#;
    let mut w = World::new();
    w.policies
        .insert("default".into(), parse_policy(policy, "p.toml").unwrap());
    w.add_invoice("I1", "C1", date(2026, 11, 10), 10_000);
    w.steps.push(StepRecord {
        invoice: "I1".into(),
        policy: "default".into(),
        step: StepKey::Sequence { step: 0 },
        done_on: date(2026, 11, 10),
        done_at: ts("2026-11-10T09:00:00Z"),
        outcome: StepOutcome::Enqueued {
            message_key: "x".into(),
        },
    });
    // Promised 11-26 + 2 days grace → broken from 11-29; step 1 day later = 11-30.
    w.promises.push(promise(
        Scope::Invoice("I1".into()),
        date(2026, 11, 26),
        None,
    ));
    let p = w.plan();
    assert_eq!(p.broken_promises.len(), 1, "{p:#?}");
    assert_eq!(p.broken_promises[0].broken_on, date(2026, 11, 29));
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].channel, Channel::Task);
    assert_eq!(
        p.actions[0].step,
        StepKey::BrokenPromise {
            promise: 7,
            step: 1
        }
    );
    let (actions, skipped) = (p.actions.clone(), p.skipped.clone());
    w.record(&actions, &skipped);
    w.advance_days(1);
    let p = w.plan();
    assert!(
        p.actions.is_empty(),
        "the broken-promise step runs once: {p:#?}"
    );
}

#[test]
fn a_kept_promise_is_not_broken() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 10), 10_000);
    // Promised 4,000 by 11-26; 4,000 arrived on 11-27 (within grace); 6,000 still open.
    w.open[0] = 6_000;
    w.allocations[0] = vec![(date(2026, 11, 27), 4_000)];
    w.promises.push(promise(
        Scope::Invoice("I1".into()),
        date(2026, 11, 26),
        Some(Money::new(4_000, Currency::EUR)),
    ));
    let p = w.plan();
    assert!(p.broken_promises.is_empty(), "{p:#?}");
}

#[test]
fn autopay_customers_get_no_pre_due_reminder() {
    let mut w = World::new();
    w.customers[0].autopay = true;
    w.add_invoice("I1", "C1", date(2026, 12, 4), 10_000);
    let p = w.plan();
    assert!(p.actions.is_empty(), "{p:#?}");
    assert_eq!(p.skipped.len(), 1);
    let d = &p.decisions[0];
    assert!(d.skipped[0].1.contains("autopay"), "{d:?}");
    assert_eq!(template_of(&d.decision), "due_today");
}

#[test]
fn catch_up_sends_a_missed_step_once_late_and_one_step_per_run() {
    let mut w = World::new();
    w.settings.started_on = Some(date(2026, 1, 1));
    // Due 11-11; upcoming (11-08) and due_today (11-11) were done on time.
    w.add_invoice("I1", "C1", date(2026, 11, 11), 10_000);
    for (i, day) in [(0u32, 8), (1, 11)] {
        w.steps.push(StepRecord {
            invoice: "I1".into(),
            policy: "default".into(),
            step: StepKey::Sequence { step: i },
            done_on: date(2026, 11, day),
            done_at: ts("2026-11-08T09:00:00Z"),
            outcome: StepOutcome::Enqueued {
                message_key: format!("k{i}"),
            },
        });
    }
    w.log.push(("C1".into(), ts("2026-11-11T09:00:00Z")));
    // Down until 12-01 (20 days after due): +7 (11-18) and +15 (11-26) both passed.
    let p = w.plan();
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].template, "overdue_7");
    assert!(matches!(
        World::decision(&p, "I1"),
        Decision::Due { days_late: 13, .. }
    ));
    let (actions, skipped) = (p.actions.clone(), p.skipped.clone());
    w.record(&actions, &skipped);
    // Next day: +15 is due but the 3-day gap defers it.
    w.advance_days(1);
    let p = w.plan();
    assert!(p.actions.is_empty());
    match World::decision(&p, "I1") {
        Decision::Deferred { step, reason, .. } => {
            assert_eq!(step.template, "overdue_15");
            assert!(reason.contains("minimum gap"), "{reason}");
        }
        d => panic!("{d:?}"),
    }
    w.advance_days(2);
    let p = w.plan();
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].template, "overdue_15");
    let (actions, skipped) = (p.actions.clone(), p.skipped.clone());
    w.record(&actions, &skipped);
    // Run twice the same day: nothing new.
    assert!(w.plan().actions.is_empty());
}

#[test]
fn when_dunning_starts_an_old_invoice_begins_at_its_latest_due_step() {
    let mut w = World::new(); // first run ever: nothing recorded yet
    w.add_invoice("I1", "C1", date(2026, 11, 11), 10_000); // 20 days overdue
    let p = w.plan();
    assert_eq!(p.actions.len(), 1, "{p:#?}");
    assert_eq!(p.actions[0].template, "overdue_15");
    // Starting at a step is not catching up on it.
    assert!(matches!(
        World::decision(&p, "I1"),
        Decision::Due { days_late: 0, .. }
    ));
    let steps: Vec<_> = p.actions[0]
        .steps
        .iter()
        .map(|s| (s.step, matches!(s.outcome, StepOutcome::Skipped { .. })))
        .collect();
    assert_eq!(
        steps,
        vec![
            (StepKey::Sequence { step: 0 }, true),
            (StepKey::Sequence { step: 1 }, true),
            (StepKey::Sequence { step: 2 }, true),
            (StepKey::Sequence { step: 3 }, false),
        ]
    );
}

#[test]
fn a_pre_due_step_that_came_due_during_downtime_is_not_sent_after_due() {
    let mut w = World::new();
    w.settings.started_on = Some(date(2026, 1, 1));
    // Dunning started long ago; the invoice came due yesterday and nothing ran.
    w.add_invoice("I1", "C1", date(2026, 11, 30), 10_000);
    let p = w.plan();
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].template, "due_today");
    let d = &p.decisions[0];
    assert!(d.skipped[0].1.contains("no longer applies"), "{d:?}");
}

#[test]
fn customer_consolidation_lists_every_due_invoice_in_one_message() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000); // +7
    w.add_invoice("I2", "C1", date(2026, 11, 16), 20_000); // +15
    let p = w.plan();
    assert_eq!(p.actions.len(), 1, "{p:#?}");
    let a = &p.actions[0];
    assert_eq!(a.invoices.len(), 2);
    assert_eq!(a.template, "overdue_15", "the most escalated step leads");
    assert_eq!(
        a.steps
            .iter()
            .filter(|s| matches!(s.outcome, StepOutcome::Enqueued { .. }))
            .count(),
        2
    );
}

#[test]
fn invoice_consolidation_sends_one_message_per_invoice() {
    let mut w = World::new();
    let mut policy = w.policies["default"].clone();
    policy.consolidation = super::Consolidation::Invoice;
    w.policies.insert("default".into(), policy);
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.add_invoice("I2", "C1", date(2026, 11, 16), 20_000);
    let p = w.plan();
    assert_eq!(p.actions.len(), 2, "{p:#?}");
    assert!(p.actions.iter().all(|a| a.invoices.len() == 1));
    assert!(p.actions.iter().any(|a| a.key == "m/i:I1/default/s2"));
}

#[test]
fn each_currency_gets_its_own_message() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.add_invoice("I2", "C1", date(2026, 11, 24), 10_000);
    w.invoices[1].currency = Currency::USD;
    let p = w.plan();
    assert_eq!(p.actions.len(), 2, "{p:#?}");
    assert_ne!(p.actions[0].currency, p.actions[1].currency);
}

#[test]
fn an_email_opt_out_falls_back_to_sms_with_consent_else_a_task() {
    let mut w = World::new();
    w.contacts = vec![contact(
        "C1",
        Some("ada@c1.example"),
        Some("+4915112345678"),
    )];
    w.contacts[0].preferences.email_opt_out = true;
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    // No SMS consent: a task.
    let p = w.plan();
    assert_eq!(p.actions[0].channel, Channel::Task);
    assert!(
        p.actions[0]
            .fallback_reason
            .as_deref()
            .unwrap()
            .contains("opted out of email")
    );
    // With consent: SMS.
    w.contacts[0].preferences.sms_consent = true;
    let p = w.plan();
    assert_eq!(p.actions[0].channel, Channel::Sms);
    assert_eq!(p.actions[0].recipient.as_deref(), Some("+4915112345678"));
    // SMS opted out too: a task again.
    w.contacts[0].preferences.sms_opt_out = true;
    assert_eq!(w.plan().actions[0].channel, Channel::Task);
}

#[test]
fn a_bounced_address_is_not_emailed() {
    let mut w = World::new();
    w.bounces.push(Bounce {
        address: "ADA@c1.example".into(),
        at: ts("2026-11-20T10:00:00Z"),
        reason: "550 no such user".into(),
        cleared_at: None,
    });
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    let p = w.plan();
    assert_eq!(p.actions[0].channel, Channel::Task);
    assert!(
        p.actions[0]
            .fallback_reason
            .as_deref()
            .unwrap()
            .contains("bounced"),
        "{:?}",
        p.actions[0].fallback_reason
    );
}

#[test]
fn on_a_saturday_the_message_waits_for_monday_morning_local_time() {
    let mut w = World::new();
    w.customers[0].time_zone = Some("America/New_York".into());
    w.now = ts("2026-12-05T15:00:00Z"); // Saturday 10:00 in New York
    w.add_invoice("I1", "C1", date(2026, 12, 5), 10_000);
    let p = w.plan();
    assert_eq!(p.actions.len(), 1);
    // Monday 2026-12-07 08:00 EST = 13:00 UTC.
    assert_eq!(p.actions[0].send_at, ts("2026-12-07T13:00:00Z"));
    assert_eq!(p.actions[0].local_date, date(2026, 12, 5));
}

#[test]
fn the_customers_local_date_decides_when_a_step_is_due() {
    let mut w = World::new();
    // 23:30 UTC on 11-30 is already 12-01 in Tokyo but still 11-30 in New York.
    w.now = ts("2026-11-30T23:30:00Z");
    w.customers = vec![customer("TOKYO"), customer("NY")];
    w.customers[0].time_zone = Some("Asia/Tokyo".into());
    w.customers[1].time_zone = Some("America/New_York".into());
    w.contacts = vec![
        contact("TOKYO", Some("t@example.com"), None),
        contact("NY", Some("n@example.com"), None),
    ];
    w.add_invoice("T1", "TOKYO", date(2026, 12, 4), 10_000);
    w.add_invoice("N1", "NY", date(2026, 12, 4), 10_000);
    let p = w.plan();
    assert!(matches!(World::decision(&p, "T1"), Decision::Due { .. }));
    assert!(matches!(
        World::decision(&p, "N1"),
        Decision::Waiting { .. }
    ));
}

#[test]
fn the_weekly_cap_defers_a_third_message() {
    let mut w = World::new();
    w.settings.min_gap_days = 1;
    w.log.push(("C1".into(), ts("2026-11-26T09:00:00Z")));
    w.log.push(("C1".into(), ts("2026-11-28T09:00:00Z")));
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    match World::decision(&w.plan(), "I1") {
        Decision::Deferred { reason, until, .. } => {
            assert!(reason.contains("weekly cap"), "{reason}");
            assert_eq!(until, ts("2026-12-03T09:00:00Z"));
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn an_admin_pause_stops_all_planning() {
    let mut w = World::new();
    w.settings.paused = true;
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    let p = w.plan();
    assert!(p.actions.is_empty());
    assert!(matches!(World::decision(&p, "I1"), Decision::Paused { .. }));
}

#[test]
fn repeat_runs_the_last_step_again_up_to_max_times() {
    let policy = r#"
name = "short"
[[steps]]
anchor = "after_due"
offset_days = 0
channel = "email"
template = "due_today"
tone = "firm"
[repeat]
every_days = 7
max_times = 2
"#;
    let mut w = World::new();
    w.policies
        .insert("default".into(), parse_policy(policy, "p.toml").unwrap());
    w.add_invoice("I1", "C1", date(2026, 12, 1), 10_000);
    let mut sent = Vec::new();
    for _ in 0..40 {
        let p = w.plan();
        for a in &p.actions {
            sent.push((a.local_date, a.step));
        }
        let (actions, skipped) = (p.actions.clone(), p.skipped.clone());
        w.record(&actions, &skipped);
        w.advance_days(1);
    }
    assert_eq!(
        sent,
        vec![
            (date(2026, 12, 1), StepKey::Sequence { step: 0 }),
            (date(2026, 12, 8), StepKey::Repeat { n: 1 }),
            (date(2026, 12, 15), StepKey::Repeat { n: 2 }),
        ]
    );
}

#[test]
fn after_previous_step_counts_from_the_day_the_previous_step_ran() {
    let policy = r#"
name = "chain"
[[steps]]
anchor = "after_due"
offset_days = 0
channel = "email"
template = "due_today"
tone = "friendly"
[[steps]]
anchor = "after_previous_step"
offset_days = 10
channel = "email"
template = "overdue_7"
tone = "firm"
"#;
    let mut w = World::new();
    w.policies
        .insert("default".into(), parse_policy(policy, "p.toml").unwrap());
    w.add_invoice("I1", "C1", date(2026, 11, 25), 10_000);
    // The first step ran late, on 11-27.
    w.steps.push(StepRecord {
        invoice: "I1".into(),
        policy: "default".into(),
        step: StepKey::Sequence { step: 0 },
        done_on: date(2026, 11, 27),
        done_at: ts("2026-11-27T09:00:00Z"),
        outcome: StepOutcome::Enqueued {
            message_key: "k".into(),
        },
    });
    match World::decision(&w.plan(), "I1") {
        Decision::Waiting { on, .. } => assert_eq!(on, date(2026, 12, 7)),
        d => panic!("{d:?}"),
    }
}

#[test]
fn step_conditions_skip_steps_that_do_not_apply() {
    let policy = r#"
name = "big-only"
[[steps]]
anchor = "after_due"
offset_days = 0
channel = "email"
template = "due_today"
tone = "friendly"
conditions = { min_open_balance = "500.00 EUR" }
[[steps]]
anchor = "after_due"
offset_days = 5
channel = "email"
template = "overdue_7"
tone = "firm"
conditions = { segments = ["enterprise"] }
"#;
    let mut w = World::new();
    w.policies
        .insert("default".into(), parse_policy(policy, "p.toml").unwrap());
    w.add_invoice("I1", "C1", date(2026, 11, 30), 10_000); // 100.00 EUR < 500
    let p = w.plan();
    assert!(p.actions.is_empty());
    let d = &p.decisions[0];
    assert!(d.skipped[0].1.contains("minimum"), "{d:?}");
}

#[test]
fn assignment_precedence_is_invoice_then_customer_then_segment_then_default() {
    let mut w = World::new();
    let mut other = w.policies["default"].clone();
    other.name = "other".into();
    for n in ["inv", "cust", "seg"] {
        let mut p = other.clone();
        p.name = n.into();
        w.policies.insert(n.into(), p);
    }
    w.customers.push(customer("C2"));
    w.customers[0].segment = Some("smb".into());
    w.customers[1].segment = Some("smb".into());
    w.contacts.push(contact("C2", Some("c2@example.com"), None));
    w.add_invoice("I1", "C1", date(2026, 12, 20), 1);
    w.add_invoice("I2", "C1", date(2026, 12, 20), 1);
    w.add_invoice("I3", "C2", date(2026, 12, 20), 1);
    w.assignments = vec![
        PolicyAssignment {
            scope: AssignmentScope::Invoice("I1".into()),
            policy: "inv".into(),
        },
        PolicyAssignment {
            scope: AssignmentScope::Customer("C1".into()),
            policy: "cust".into(),
        },
        PolicyAssignment {
            scope: AssignmentScope::Segment("smb".into()),
            policy: "seg".into(),
        },
    ];
    let p = w.plan();
    let policy = |n: &str| {
        p.decisions
            .iter()
            .find(|d| d.invoice == n)
            .unwrap()
            .policy
            .unwrap()
    };
    assert_eq!(policy("I1"), "inv");
    assert_eq!(policy("I2"), "cust");
    assert_eq!(policy("I3"), "seg");
    w.assignments.clear();
    let p = w.plan();
    assert_eq!(p.decisions[0].policy, Some("default"));
}

#[test]
fn fees_and_statutory_interest_are_charged_incrementally() {
    let mut w = World::new();
    let mut policy = w.policies["default"].clone();
    policy.steps[2].fee = Some(super::Fee::Fixed(Money::new(1_500, Currency::EUR)));
    w.policies.insert("default".into(), policy);
    w.settings.interest_regime = Some(Regime::Eu2011_7);
    w.add_invoice("I1", "C1", date(2026, 11, 24), 100_000); // +7 today
    let p = w.plan();
    let a = &p.actions[0];
    let line = &a.invoices[0];
    assert_eq!(line.fee, 1_500);
    assert!(line.interest > 0, "{line:?}");
    assert_eq!(line.compensation, 4_000, "€40 per invoice");
    let kinds: Vec<_> = a.charges.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChargeKind::LateFee,
            ChargeKind::Interest,
            ChargeKind::Compensation
        ]
    );
    let first_interest = a.charges[1].amount.minor;
    let (actions, skipped) = (p.actions.clone(), p.skipped.clone());
    w.record(&actions, &skipped);
    w.advance_days(8); // +15 on 12-09
    let p = w.plan();
    let a = &p.actions[0];
    let interest: Vec<_> = a
        .charges
        .iter()
        .filter(|c| c.kind == ChargeKind::Interest)
        .collect();
    assert_eq!(interest.len(), 1);
    assert_eq!(
        interest[0].amount.minor + first_interest,
        a.invoices[0].interest,
        "the increment plus what was charged equals the interest to date"
    );
    assert!(
        a.charges.iter().all(|c| c.kind != ChargeKind::Compensation),
        "compensation is charged once"
    );
}

#[test]
fn the_same_input_gives_the_same_plan_and_keys() {
    let mut w = World::new();
    w.add_invoice("I1", "C1", date(2026, 11, 24), 10_000);
    w.add_invoice("I2", "C1", date(2026, 11, 16), 20_000);
    assert_eq!(w.plan(), w.plan());
}

#[test]
fn an_unknown_assigned_policy_is_an_error() {
    let mut w = World::new();
    w.assignments.push(PolicyAssignment {
        scope: AssignmentScope::Customer("C1".into()),
        policy: "nope".into(),
    });
    let err = plan(&PlanInput {
        now: w.now,
        org_time_zone: &w.org_tz,
        settings: &w.settings,
        policies: &w.policies,
        assignments: &w.assignments,
        customers: &w.customers,
        contacts: &w.contacts,
        invoices: &[],
        open: &[],
        allocations: &[],
        holds: &[],
        disputes: &[],
        promises: &[],
        steps_done: &[],
        contact_log: &[],
        bounces: &[],
        charges: &[],
    })
    .unwrap_err();
    assert!(err.to_string().contains("'nope'"), "{err}");
    w.assignments.clear();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Simulates daily runs over two months for random invoices and payments
    /// and checks the planner's promises: no two messages to a customer
    /// across runs closer than the minimum gap, at most one step per invoice
    /// per run, never a step twice, never a message about a paid invoice.
    #[test]
    fn daily_runs_respect_the_gap_and_never_repeat_a_step(
        invoices in proptest::collection::vec((0usize..3, -20i64..40, 1i64..100_000, proptest::option::of(0i64..60)), 1..12),
        skip_days in proptest::collection::vec(any::<bool>(), 60),
        run_hour in 0i64..24,
    ) {
        let mut w = World::new();
        w.customers = vec![customer("A"), customer("B"), customer("C")];
        w.customers[1].time_zone = Some("America/Los_Angeles".into());
        w.customers[2].time_zone = Some("Asia/Kolkata".into());
        w.contacts = vec![
            contact("A", Some("a@example.com"), None),
            contact("B", Some("b@example.com"), None),
            contact("C", None, Some("+911234567890")),
        ];
        w.contacts[2].preferences.sms_consent = true;
        w.now = ts("2026-10-01T00:00:00Z").checked_add(run_hour.hours()).unwrap();
        let names = ["A", "B", "C"];
        let start = date(2026, 10, 1);
        let mut pay_on = Vec::new();
        for (i, (c, due_offset, amount, paid_after)) in invoices.iter().enumerate() {
            let due = start.checked_add(due_offset.days()).unwrap();
            w.add_invoice(&format!("I{i}"), names[*c], due, *amount);
            pay_on.push(paid_after.map(|d| start.checked_add(d.days()).unwrap()));
        }
        let mut seen_steps = std::collections::HashSet::new();
        for skip_today in skip_days.iter().copied() {
            let today = w.now.to_zoned_datetime(w.org_tz.clone()).date();
            for (i, paid) in pay_on.iter().enumerate() {
                if paid.is_some_and(|p| p <= today) {
                    w.open[i] = 0;
                }
            }
            if !skip_today {
                let p = w.plan();
                let mut per_invoice = std::collections::HashMap::new();
                for a in &p.actions {
                    for line in &a.invoices {
                        let idx = w.invoices.iter().position(|inv| inv.number == line.number).unwrap();
                        prop_assert!(w.open[idx] > 0, "message about a paid invoice {}", line.number);
                    }
                    if a.channel != Channel::Task {
                        let earlier: Vec<_> = w.log.iter().filter(|(c, _)| c == &a.customer).map(|(_, t)| *t).collect();
                        for t in earlier {
                            let gap = a.send_at.duration_since(t).as_secs();
                            prop_assert!(gap >= 3 * 24 * 3600 - 3600, "gap {}s for {} ", gap, a.customer);
                        }
                    }
                    for s in &a.steps {
                        if matches!(s.outcome, StepOutcome::Enqueued { .. }) {
                            *per_invoice.entry(s.invoice.clone()).or_insert(0) += 1;
                        }
                        prop_assert!(seen_steps.insert((s.invoice.clone(), s.step)), "step {:?} of {} twice", s.step, s.invoice);
                    }
                }
                for s in p.skipped.iter().flat_map(|s| &s.records) {
                    prop_assert!(seen_steps.insert((s.invoice.clone(), s.step)), "skipped step {:?} of {} twice", s.step, s.invoice);
                }
                prop_assert!(per_invoice.values().all(|n| *n == 1));
                let (actions, skipped) = (p.actions.clone(), p.skipped.clone());
    w.record(&actions, &skipped);
            }
            w.advance_days(1);
        }
    }
}
