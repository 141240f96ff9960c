//! The shared conformance suite: one story, run against every backend.
//!
//! It assumes a fresh store (new file or database) and panics with a
//! message on the first broken expectation, as tests do.

use arflow_domain::dunning::Channel;
use arflow_domain::dunning::records::{
    AssignmentScope, Bounce, Charge, ChargeKind, Dispute, DunningSettings, Hold, MessageInvoice,
    MessageStatus, OutboxMessage, PolicyAssignment, Promise, Scope, SendWindow, StepKey,
    StepOutcome, StepRecord, StoredPolicy, Task, TaskKind, TaskStatus,
};
use arflow_domain::fx::{FxRate, Rate};
use arflow_domain::ledger::Closure;
use arflow_domain::model::{
    Allocation, AllocationSource, ChannelPreferences, Contact, CreditNote, Customer, Event,
    Invoice, InvoiceStatus, Organization, Payment, Stored,
};
use arflow_domain::money::{Currency, Money};
use jiff::Timestamp;
use jiff::civil::{Date, date};

use crate::{
    ApiToken, Change, ChangeSet, Claimed, EventFilter, IdempotentReply, NewApiToken, NewUser, Note,
    OutboxFilter, PlannedWrite, Released, Role, RunCounts, Scope as TokenScope, Session, Store,
    StoreError, Unsubscribed, User,
};

const ACTOR: &str = "conformance";

fn now() -> Timestamp {
    Timestamp::from_second(1_718_000_000).expect("valid timestamp")
}

fn cur(code: &str) -> Currency {
    Currency::parse(code).expect("known currency")
}

fn records<T: Clone>(v: &[Stored<T>]) -> Vec<T> {
    v.iter().map(|s| s.record.clone()).collect()
}

pub fn customer(external_id: &str, name: &str, currency: Currency) -> Customer {
    Customer {
        external_id: external_id.into(),
        name: name.into(),
        segment: Some("enterprise".into()),
        tags: vec!["vip".into(), "ünïcødé;tag".into()],
        country: Some("DE".into()),
        time_zone: Some("Europe/Berlin".into()),
        locale: Some("de".into()),
        currency,
        payment_terms_days: Some(30),
        credit_limit: Some(1_000_000),
        collector: Some("anna".into()),
        autopay: false,
    }
}

pub fn invoice(
    number: &str,
    customer: &str,
    currency: Currency,
    total: i64,
    issue: Date,
    due: Date,
) -> Invoice {
    Invoice {
        number: number.into(),
        customer: customer.into(),
        external_id: Some(format!("ext-{number}")),
        source: "csv".into(),
        issue_date: issue,
        due_date: due,
        currency,
        total,
        tax: total / 10,
        po_number: None,
        status: InvoiceStatus::Open,
        status_date: None,
        disputed: false,
        paperless: Some(true),
    }
}

/// Everything, in order. Each step relies on the ones before it.
pub fn run_all(store: &dyn Store) {
    let org = default_organization_exists(store);
    let seeded = records_round_trip(store, org.id);
    updates_record_field_diffs(store, org.id, &seeded);
    failed_change_sets_write_nothing(store, org.id);
    ledger_facts_match_the_records(store, org.id);
    allocations_stay_within_totals(store, org.id);
    tenants_are_isolated(store, org.id);
    organization_can_be_updated(store, &org);
    dunning_works(store);
    models_are_versioned_per_org(store);
    accounts_work(store);
}

pub fn default_organization_exists(store: &dyn Store) -> Organization {
    let org = store.default_organization().expect("default organization");
    assert_eq!(org.slug, "default");
    assert_eq!(org.name, "My Company");
    assert_eq!(org.base_currency, Currency::USD);
    assert_eq!(org.time_zone, "UTC");
    org
}

/// What [`records_round_trip`] wrote, for the later steps.
pub struct Seeded {
    pub change_set: ChangeSet,
    pub invoices: Vec<Stored<Invoice>>,
}

pub fn seed_change_set() -> ChangeSet {
    let (jpy, bhd) = (cur("JPY"), cur("BHD"));
    let mut inv2 = invoice(
        "INV-2",
        "C2",
        jpy,
        123_456,
        date(2024, 1, 5),
        date(2024, 2, 4),
    );
    inv2.status = InvoiceStatus::Void;
    inv2.status_date = Some(date(2024, 3, 1));
    inv2.po_number = Some("PO-東京-1".into());
    let mut inv3 = invoice(
        "INV-3",
        "C3",
        bhd,
        1_234,
        date(2024, 1, 6),
        date(2024, 1, 6),
    );
    inv3.status = InvoiceStatus::WrittenOff;
    inv3.status_date = Some(date(2024, 6, 30));
    inv3.paperless = None;
    inv3.disputed = true;
    ChangeSet {
        customers: vec![
            Change::Insert(customer("C1", "Acme GmbH", Currency::USD)),
            Change::Insert(Customer {
                segment: None,
                tags: vec![],
                country: None,
                time_zone: None,
                locale: None,
                payment_terms_days: None,
                credit_limit: None,
                collector: None,
                autopay: true,
                ..customer("C2", "Café Ünïcødé 東京 🚀 «Zoë»", jpy)
            }),
            Change::Insert(customer("C3", "شركة البحرين", bhd)),
        ],
        contacts: vec![Change::Insert(Contact {
            customer: "C1".into(),
            external_id: "K1".into(),
            name: "Jürgen Groß".into(),
            email: Some("jurgen@example.com".into()),
            phone: None,
            role: Some("billing".into()),
            is_primary: true,
            preferences: ChannelPreferences {
                email_opt_out: false,
                sms_consent: true,
                sms_opt_out: false,
                call_opt_out: true,
            },
        })],
        invoices: vec![
            Change::Insert(invoice(
                "INV-1",
                "C1",
                Currency::USD,
                10_000,
                date(2024, 1, 1),
                date(2024, 1, 31),
            )),
            Change::Insert(inv2),
            Change::Insert(inv3),
            Change::Insert(invoice(
                "INV-4",
                "C1",
                Currency::USD,
                5_000,
                date(2024, 2, 1),
                date(2024, 3, 2),
            )),
        ],
        credit_notes: vec![Change::Insert(CreditNote {
            number: "CN-1".into(),
            customer: "C1".into(),
            external_id: None,
            source: "csv".into(),
            issue_date: date(2024, 1, 20),
            currency: Currency::USD,
            total: 2_000,
            reason: Some("damaged goods".into()),
        })],
        payments: vec![Change::Insert(Payment {
            external_id: "P1".into(),
            customer: "C1".into(),
            source: "bank".into(),
            received_on: date(2024, 2, 10),
            currency: Currency::USD,
            amount: 8_000,
            method: Some("wire".into()),
            reference: Some("REF 1".into()),
            payer_name: None,
        })],
        allocations: vec![
            Allocation {
                invoice: "INV-1".into(),
                source: AllocationSource::Payment("P1".into()),
                amount: 8_000,
                applied_on: date(2024, 2, 10),
            },
            Allocation {
                invoice: "INV-1".into(),
                source: AllocationSource::CreditNote("CN-1".into()),
                amount: 2_000,
                applied_on: date(2024, 1, 20),
            },
        ],
        fx_rates: vec![
            FxRate {
                from: Currency::EUR,
                to: Currency::USD,
                valid_on: date(2024, 1, 1),
                rate: Rate::parse("1.0842").expect("rate"),
            },
            FxRate {
                from: jpy,
                to: Currency::USD,
                valid_on: date(2024, 1, 1),
                rate: Rate::parse("0.0067").expect("rate"),
            },
        ],
    }
}

fn inserted<T: Clone>(v: &[Change<T>]) -> Vec<T> {
    v.iter().map(|c| c.record().clone()).collect()
}

pub fn records_round_trip(store: &dyn Store, org: i64) -> Seeded {
    let cs = seed_change_set();
    let counts = store
        .apply(org, &cs, ACTOR, now())
        .expect("seed change set applies");
    assert_eq!(counts.customers.inserted, 3);
    assert_eq!(counts.contacts.inserted, 1);
    assert_eq!(counts.invoices.inserted, 4);
    assert_eq!(counts.credit_notes.inserted, 1);
    assert_eq!(counts.payments.inserted, 1);
    assert_eq!(counts.allocations.inserted, 2);
    assert_eq!(counts.fx_rates.inserted, 2);
    assert_eq!(counts.events, 14);

    // Unicode names, tags with separators, JPY and BHD amounts all read back as written.
    assert_eq!(
        records(&store.customers(org).expect("customers")),
        inserted(&cs.customers)
    );
    assert_eq!(
        records(&store.contacts(org).expect("contacts")),
        inserted(&cs.contacts)
    );
    let invoices = store.invoices(org).expect("invoices");
    assert_eq!(records(&invoices), inserted(&cs.invoices));
    assert!(
        invoices.windows(2).all(|w| w[0].id < w[1].id),
        "invoices are ordered by id"
    );
    assert_eq!(
        records(&store.credit_notes(org).expect("credit notes")),
        inserted(&cs.credit_notes)
    );
    assert_eq!(
        records(&store.payments(org).expect("payments")),
        inserted(&cs.payments)
    );
    assert_eq!(
        records(&store.allocations(org).expect("allocations")),
        cs.allocations
    );
    let mut rates = cs.fx_rates.clone();
    rates.sort_by(|a, b| {
        (a.from.code(), a.to.code(), a.valid_on).cmp(&(b.from.code(), b.to.code(), b.valid_on))
    });
    assert_eq!(store.fx_rates(org).expect("fx rates"), rates);

    let events = store.events(org, &EventFilter::default()).expect("events");
    assert_eq!(events.len(), 14);
    assert!(
        events.windows(2).all(|w| w[0].id > w[1].id),
        "events are newest first"
    );
    assert!(
        events
            .iter()
            .all(|e| e.actor == ACTOR && e.recorded_at == now())
    );
    assert_eq!(
        events.last().map(|e| e.kind.as_str()),
        Some("customer.created")
    );
    let alloc = events
        .iter()
        .find(|e| e.kind == "allocation.created" && e.entity_key == "INV-1:P1")
        .expect("allocation event");
    assert_eq!(
        alloc.customer.as_deref(),
        Some("C1"),
        "allocation events join the invoice's customer timeline"
    );
    assert!(
        alloc.summary.contains("80.00 USD"),
        "human summary: {}",
        alloc.summary
    );

    let c2 = store
        .events(
            org,
            &EventFilter {
                customer: Some("C2".into()),
                ..EventFilter::default()
            },
        )
        .expect("customer events");
    assert_eq!(
        c2.iter().map(|e| e.entity_key.as_str()).collect::<Vec<_>>(),
        vec!["INV-2", "C2"]
    );
    let limited = store
        .events(
            org,
            &EventFilter {
                entity_type: Some("invoice".into()),
                limit: Some(2),
                ..EventFilter::default()
            },
        )
        .expect("limited events");
    assert_eq!(
        limited
            .iter()
            .map(|e| e.entity_key.as_str())
            .collect::<Vec<_>>(),
        vec!["INV-4", "INV-3"]
    );
    let one = store
        .events(
            org,
            &EventFilter {
                entity_type: Some("invoice".into()),
                entity_key: Some("INV-2".into()),
                ..EventFilter::default()
            },
        )
        .expect("entity events");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].kind, "invoice.created");
    // Created events carry no copy of the record (it is in its own table);
    // the summary describes it.
    assert_eq!(one[0].data, serde_json::json!({}));
    assert!(
        one[0].summary.contains("123456 JPY"),
        "human summary: {}",
        one[0].summary
    );

    Seeded {
        change_set: cs,
        invoices,
    }
}

fn event_count(store: &dyn Store, org: i64) -> usize {
    store
        .events(org, &EventFilter::default())
        .expect("events")
        .len()
}

pub fn updates_record_field_diffs(store: &dyn Store, org: i64, seeded: &Seeded) {
    let before = seeded.invoices[0].clone();
    let mut after = before.record.clone();
    after.po_number = Some("PO-99".into());
    after.disputed = true;
    let cs = ChangeSet {
        invoices: vec![Change::Update {
            id: before.id,
            before: before.record.clone(),
            after: after.clone(),
        }],
        ..ChangeSet::default()
    };
    let counts = store
        .apply(org, &cs, "alice", now())
        .expect("update applies");
    assert_eq!((counts.invoices.updated, counts.events), (1, 1));
    assert_eq!(store.invoices(org).expect("invoices")[0].record, after);
    let ev = &store.events(org, &EventFilter::default()).expect("events")[0];
    assert_eq!(ev.kind, "invoice.updated");
    assert_eq!(ev.actor, "alice");
    let changes = ev.data["changes"].as_object().expect("field diff");
    let mut fields: Vec<&str> = changes.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["disputed", "po_number"]);
    assert_eq!(changes["po_number"]["to"], "PO-99");

    // An update that changes nothing writes no event.
    let n = event_count(store, org);
    let same = ChangeSet {
        invoices: vec![Change::Update {
            id: before.id,
            before: after.clone(),
            after: after.clone(),
        }],
        ..ChangeSet::default()
    };
    let counts = store
        .apply(org, &same, "alice", now())
        .expect("no-op update applies");
    assert_eq!((counts.invoices.updated, counts.events), (0, 0));
    assert_eq!(event_count(store, org), n);

    // Customers, contacts, credit notes and payments update the same way.
    let customers = store.customers(org).expect("customers");
    let mut c1 = customers[0].record.clone();
    c1.tags.push("late-payer".into());
    let contacts = store.contacts(org).expect("contacts");
    let mut k1 = contacts[0].record.clone();
    k1.preferences.email_opt_out = true;
    let notes = store.credit_notes(org).expect("credit notes");
    let mut cn = notes[0].record.clone();
    cn.reason = None;
    let payments = store.payments(org).expect("payments");
    let mut p1 = payments[0].record.clone();
    p1.payer_name = Some("Acme Treasury".into());
    let cs = ChangeSet {
        customers: vec![Change::Update {
            id: customers[0].id,
            before: customers[0].record.clone(),
            after: c1.clone(),
        }],
        contacts: vec![Change::Update {
            id: contacts[0].id,
            before: contacts[0].record.clone(),
            after: k1.clone(),
        }],
        credit_notes: vec![Change::Update {
            id: notes[0].id,
            before: notes[0].record.clone(),
            after: cn.clone(),
        }],
        payments: vec![Change::Update {
            id: payments[0].id,
            before: payments[0].record.clone(),
            after: p1.clone(),
        }],
        // Same key, new rate: replaced, not duplicated.
        fx_rates: vec![FxRate {
            from: Currency::EUR,
            to: Currency::USD,
            valid_on: date(2024, 1, 1),
            rate: Rate::parse("1.1").expect("rate"),
        }],
        ..ChangeSet::default()
    };
    let counts = store.apply(org, &cs, "bob", now()).expect("updates apply");
    assert_eq!(
        (
            counts.customers.updated,
            counts.contacts.updated,
            counts.credit_notes.updated,
            counts.payments.updated,
            counts.fx_rates.updated
        ),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(counts.events, 5);
    assert_eq!(store.customers(org).expect("customers")[0].record, c1);
    assert_eq!(store.contacts(org).expect("contacts")[0].record, k1);
    assert_eq!(store.credit_notes(org).expect("credit notes")[0].record, cn);
    assert_eq!(store.payments(org).expect("payments")[0].record, p1);
    let rates = store.fx_rates(org).expect("fx rates");
    assert_eq!(rates.len(), 2);
    assert_eq!(rates[0].rate, Rate::parse("1.1").expect("rate"));

    // Updating an id that does not exist (in this organization) fails.
    let missing = ChangeSet {
        invoices: vec![Change::Update {
            id: 987_654_321,
            before: after.clone(),
            after: after.clone(),
        }],
        ..ChangeSet::default()
    };
    let err = store
        .apply(org, &missing, "alice", now())
        .expect_err("unknown id");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                id: 987_654_321,
                ..
            }
        ),
        "{err:?}"
    );
}

fn assert_nothing_written(store: &dyn Store, org: i64, counts: (usize, usize, usize, usize)) {
    let now = (
        store.customers(org).expect("customers").len(),
        store.invoices(org).expect("invoices").len(),
        store.payments(org).expect("payments").len(),
        event_count(store, org),
    );
    assert_eq!(
        now, counts,
        "a failed change set must write nothing (customers, invoices, payments, events)"
    );
}

fn expect_constraint(result: Result<crate::AppliedCounts, StoreError>, name: &str) {
    match result {
        Err(StoreError::Constraint { constraint, .. }) => assert_eq!(constraint, name),
        other => panic!("expected constraint {name}, got {other:?}"),
    }
}

pub fn failed_change_sets_write_nothing(store: &dyn Store, org: i64) {
    let snapshot = (
        store.customers(org).expect("customers").len(),
        store.invoices(org).expect("invoices").len(),
        store.payments(org).expect("payments").len(),
        event_count(store, org),
    );
    let good_customer = Change::Insert(customer("C9", "Nine", Currency::USD));
    let good_invoice = Change::Insert(invoice(
        "INV-9",
        "C9",
        Currency::USD,
        100,
        date(2024, 5, 1),
        date(2024, 5, 31),
    ));

    // Unknown customer reference, after valid inserts in the same set.
    let cs = ChangeSet {
        customers: vec![good_customer.clone()],
        invoices: vec![
            good_invoice.clone(),
            Change::Insert(invoice(
                "INV-10",
                "NOPE",
                Currency::USD,
                100,
                date(2024, 5, 1),
                date(2024, 5, 31),
            )),
        ],
        ..ChangeSet::default()
    };
    let err = store
        .apply(org, &cs, ACTOR, now())
        .expect_err("unknown customer");
    assert!(
        matches!(&err, StoreError::UnknownReference { entity: "customer", key } if key == "NOPE"),
        "{err:?}"
    );
    assert_nothing_written(store, org, snapshot);

    // Unknown invoice / payment in an allocation.
    let cs = ChangeSet {
        customers: vec![good_customer.clone()],
        allocations: vec![Allocation {
            invoice: "INV-404".into(),
            source: AllocationSource::Payment("P1".into()),
            amount: 1,
            applied_on: date(2024, 5, 1),
        }],
        ..ChangeSet::default()
    };
    let err = store
        .apply(org, &cs, ACTOR, now())
        .expect_err("unknown invoice");
    assert!(
        matches!(
            err,
            StoreError::UnknownReference {
                entity: "invoice",
                ..
            }
        ),
        "{err:?}"
    );
    assert_nothing_written(store, org, snapshot);

    // Duplicate invoice number (already stored).
    let cs = ChangeSet {
        customers: vec![good_customer.clone()],
        invoices: vec![
            good_invoice.clone(),
            Change::Insert(invoice(
                "INV-1",
                "C9",
                Currency::USD,
                1,
                date(2024, 5, 1),
                date(2024, 5, 1),
            )),
        ],
        ..ChangeSet::default()
    };
    expect_constraint(
        store.apply(org, &cs, ACTOR, now()),
        "invoices_org_number_key",
    );
    assert_nothing_written(store, org, snapshot);

    // Duplicate customer within one change set.
    let cs = ChangeSet {
        customers: vec![good_customer.clone(), good_customer.clone()],
        ..ChangeSet::default()
    };
    expect_constraint(
        store.apply(org, &cs, ACTOR, now()),
        "customers_org_external_id_key",
    );
    assert_nothing_written(store, org, snapshot);

    // Due before issue.
    let cs = ChangeSet {
        customers: vec![good_customer.clone()],
        invoices: vec![Change::Insert(invoice(
            "INV-11",
            "C9",
            Currency::USD,
            100,
            date(2024, 5, 2),
            date(2024, 5, 1),
        ))],
        ..ChangeSet::default()
    };
    expect_constraint(
        store.apply(org, &cs, ACTOR, now()),
        "invoices_due_after_issue",
    );
    assert_nothing_written(store, org, snapshot);

    // Tax above total, negative total, non-positive payment.
    let mut bad_tax = invoice(
        "INV-12",
        "C9",
        Currency::USD,
        100,
        date(2024, 5, 1),
        date(2024, 5, 1),
    );
    bad_tax.tax = 101;
    let cs = ChangeSet {
        customers: vec![good_customer.clone()],
        invoices: vec![Change::Insert(bad_tax)],
        ..ChangeSet::default()
    };
    expect_constraint(
        store.apply(org, &cs, ACTOR, now()),
        "invoices_tax_within_total",
    );
    let mut negative = invoice(
        "INV-13",
        "C1",
        Currency::USD,
        -5,
        date(2024, 5, 1),
        date(2024, 5, 1),
    );
    negative.tax = 0;
    let cs = ChangeSet {
        invoices: vec![Change::Insert(negative)],
        ..ChangeSet::default()
    };
    expect_constraint(
        store.apply(org, &cs, ACTOR, now()),
        "invoices_total_nonnegative",
    );
    let cs = ChangeSet {
        payments: vec![Change::Insert(Payment {
            external_id: "P0".into(),
            customer: "C1".into(),
            source: "bank".into(),
            received_on: date(2024, 5, 1),
            currency: Currency::USD,
            amount: 0,
            method: None,
            reference: None,
            payer_name: None,
        })],
        ..ChangeSet::default()
    };
    expect_constraint(
        store.apply(org, &cs, ACTOR, now()),
        "payments_amount_positive",
    );
    let cs = ChangeSet {
        allocations: vec![Allocation {
            invoice: "INV-4".into(),
            source: AllocationSource::Payment("P1".into()),
            amount: 0,
            applied_on: date(2024, 5, 1),
        }],
        ..ChangeSet::default()
    };
    expect_constraint(
        store.apply(org, &cs, ACTOR, now()),
        "allocations_amount_positive",
    );
    assert_nothing_written(store, org, snapshot);
}

/// Every read of every kind for one organization, to compare before/after.
#[derive(Debug, PartialEq)]
struct Snapshot {
    customers: Vec<Stored<Customer>>,
    contacts: Vec<Stored<Contact>>,
    invoices: Vec<Stored<Invoice>>,
    credit_notes: Vec<Stored<CreditNote>>,
    payments: Vec<Stored<Payment>>,
    allocations: Vec<Stored<Allocation>>,
    fx_rates: Vec<FxRate>,
    events: Vec<Event>,
}

fn snapshot(store: &dyn Store, org: i64) -> Snapshot {
    Snapshot {
        customers: store.customers(org).expect("customers"),
        contacts: store.contacts(org).expect("contacts"),
        invoices: store.invoices(org).expect("invoices"),
        credit_notes: store.credit_notes(org).expect("credit notes"),
        payments: store.payments(org).expect("payments"),
        allocations: store.allocations(org).expect("allocations"),
        fx_rates: store.fx_rates(org).expect("fx rates"),
        events: store.events(org, &EventFilter::default()).expect("events"),
    }
}

/// Two organizations with the same natural keys (customer C1, invoice INV-1,
/// payment P1, credit note CN-1, contact K1): every read, write and ledger
/// read of one never sees or touches the other's rows.
pub fn tenants_are_isolated(store: &dyn Store, org: i64) {
    let a_before = snapshot(store, org);
    let facts_before = store.ledger_facts(org).expect("ledger facts");

    let b = store
        .create_organization(
            "globex",
            "Globex SARL",
            Currency::EUR,
            "Europe/Paris",
            now(),
        )
        .expect("create organization");
    assert_ne!(b.id, org);
    assert_eq!(
        (
            b.slug.as_str(),
            b.name.as_str(),
            b.base_currency,
            b.time_zone.as_str(),
            b.created_at
        ),
        (
            "globex",
            "Globex SARL",
            Currency::EUR,
            "Europe/Paris",
            now()
        )
    );
    for slug in ["globex", "default"] {
        match store.create_organization(slug, "Dup", Currency::USD, "UTC", now()) {
            Err(StoreError::Constraint {
                constraint,
                message,
            }) => {
                assert_eq!(constraint, "organizations_slug_key");
                assert_eq!(message, "an organization with this slug already exists");
            }
            other => panic!("duplicate slug {slug}: expected a constraint error, got {other:?}"),
        }
    }
    assert_eq!(store.default_organization().expect("org").id, org);

    // The new organization starts empty, whatever the other one holds.
    let empty = snapshot(store, b.id);
    assert!(
        empty.customers.is_empty()
            && empty.contacts.is_empty()
            && empty.invoices.is_empty()
            && empty.credit_notes.is_empty()
            && empty.payments.is_empty()
            && empty.allocations.is_empty()
            && empty.fx_rates.is_empty()
            && empty.events.is_empty(),
        "a new organization has no rows: {empty:?}"
    );
    let facts = store.ledger_facts(b.id).expect("ledger facts of B");
    assert_eq!(facts.base_currency, Currency::EUR);
    assert!(
        facts.customers.is_empty() && facts.invoices.is_empty() && facts.allocations.is_empty()
    );

    // Organization B gets records with exactly A's natural keys.
    let eur = Currency::EUR;
    let cs = ChangeSet {
        customers: vec![Change::Insert(customer("C1", "Globex Kunde", eur))],
        contacts: vec![Change::Insert(Contact {
            customer: "C1".into(),
            external_id: "K1".into(),
            name: "Marie Curie".into(),
            email: Some("marie@example.fr".into()),
            phone: None,
            role: None,
            is_primary: true,
            preferences: ChannelPreferences::default(),
        })],
        invoices: vec![Change::Insert(invoice(
            "INV-1",
            "C1",
            eur,
            77_700,
            date(2024, 4, 1),
            date(2024, 5, 1),
        ))],
        credit_notes: vec![Change::Insert(CreditNote {
            number: "CN-1".into(),
            customer: "C1".into(),
            external_id: None,
            source: "csv".into(),
            issue_date: date(2024, 4, 2),
            currency: eur,
            total: 700,
            reason: None,
        })],
        payments: vec![Change::Insert(Payment {
            external_id: "P1".into(),
            customer: "C1".into(),
            source: "bank".into(),
            received_on: date(2024, 4, 20),
            currency: eur,
            amount: 50_000,
            method: None,
            reference: None,
            payer_name: None,
        })],
        allocations: vec![
            Allocation {
                invoice: "INV-1".into(),
                source: AllocationSource::Payment("P1".into()),
                amount: 50_000,
                applied_on: date(2024, 4, 20),
            },
            Allocation {
                invoice: "INV-1".into(),
                source: AllocationSource::CreditNote("CN-1".into()),
                amount: 700,
                applied_on: date(2024, 4, 2),
            },
        ],
        fx_rates: vec![FxRate {
            from: Currency::USD,
            to: eur,
            valid_on: date(2024, 1, 1),
            rate: Rate::parse("0.92").expect("rate"),
        }],
    };
    let counts = store
        .apply(b.id, &cs, "globex", now())
        .expect("B's change set");
    assert_eq!(counts.events, 8);

    // Every read of A is exactly what it was.
    assert_eq!(
        snapshot(store, org),
        a_before,
        "B's writes changed A's reads"
    );
    let facts_a = store.ledger_facts(org).expect("ledger facts of A");
    assert_eq!(facts_a.customers, facts_before.customers);
    assert_eq!(facts_a.invoices, facts_before.invoices);
    assert_eq!(facts_a.allocations, facts_before.allocations);

    // Every read of B holds only B's rows.
    let b_now = snapshot(store, b.id);
    assert_eq!(records(&b_now.customers), inserted(&cs.customers));
    assert_eq!(records(&b_now.contacts), inserted(&cs.contacts));
    assert_eq!(records(&b_now.invoices), inserted(&cs.invoices));
    assert_eq!(records(&b_now.credit_notes), inserted(&cs.credit_notes));
    assert_eq!(records(&b_now.payments), inserted(&cs.payments));
    assert_eq!(records(&b_now.allocations), cs.allocations);
    assert_eq!(b_now.fx_rates, cs.fx_rates);
    assert_eq!(b_now.events.len(), 8);
    assert!(b_now.events.iter().all(|e| e.actor == "globex"));
    let a_ids: Vec<i64> = a_before.events.iter().map(|e| e.id).collect();
    assert!(
        b_now.events.iter().all(|e| !a_ids.contains(&e.id)),
        "events are per organization"
    );
    let c1_events = |o: i64| {
        store
            .events(
                o,
                &EventFilter {
                    customer: Some("C1".into()),
                    ..EventFilter::default()
                },
            )
            .expect("customer events")
    };
    assert!(c1_events(b.id).iter().all(|e| e.actor == "globex"));
    assert!(c1_events(org).iter().all(|e| e.actor != "globex"));

    // Ledger facts of each organization hold only its own rows.
    let facts_b = store.ledger_facts(b.id).expect("ledger facts of B");
    assert_eq!(facts_b.base_currency, Currency::EUR);
    let b_invoice = b_now.invoices[0].id;
    assert_eq!(
        facts_b.invoices.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![b_invoice]
    );
    assert!(
        facts_b
            .allocations
            .iter()
            .all(|f| f.invoice_id == b_invoice)
    );
    assert_eq!(facts_b.customers.len(), 1);
    assert!(facts_a.invoices.iter().all(|f| f.id != b_invoice));
    let a_invoice_ids: Vec<i64> = a_before.invoices.iter().map(|i| i.id).collect();
    assert_eq!(
        facts_a.invoices.iter().map(|f| f.id).collect::<Vec<_>>(),
        a_invoice_ids
    );
    assert!(
        facts_a
            .allocations
            .iter()
            .all(|f| a_invoice_ids.contains(&f.invoice_id))
    );

    // A change set applied under A cannot update B's rows by id, even
    // though every natural key in it (customer C1) resolves in A too.
    let b_inv = b_now.invoices[0].clone();
    let mut after = b_inv.record.clone();
    after.total += 1;
    let cs = ChangeSet {
        invoices: vec![Change::Update {
            id: b_inv.id,
            before: b_inv.record.clone(),
            after,
        }],
        ..ChangeSet::default()
    };
    let err = store
        .apply(org, &cs, ACTOR, now())
        .expect_err("cross-organization update");
    assert!(
        matches!(err, StoreError::NotFound { entity: "invoice", id } if id == b_inv.id),
        "{err:?}"
    );
    let b_customer = b_now.customers[0].clone();
    let cs = ChangeSet {
        customers: vec![Change::Update {
            id: b_customer.id,
            before: b_customer.record.clone(),
            after: Customer {
                name: "Hijacked".into(),
                ..b_customer.record.clone()
            },
        }],
        ..ChangeSet::default()
    };
    let err = store
        .apply(org, &cs, ACTOR, now())
        .expect_err("cross-organization customer update");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(snapshot(store, b.id), b_now, "A's change sets changed B");
    assert_eq!(snapshot(store, org), a_before);

    // An organization id that does not exist reads as empty, and has no facts.
    let missing = b.id.max(org) + 1_000_000;
    let none = snapshot(store, missing);
    assert!(none.customers.is_empty() && none.invoices.is_empty() && none.events.is_empty());
    assert!(
        store.ledger_facts(missing).is_err(),
        "ledger facts of an unknown organization"
    );
}

pub fn ledger_facts_match_the_records(store: &dyn Store, org: i64) {
    let facts = store.ledger_facts(org).expect("ledger facts");
    assert_eq!(facts.base_currency, Currency::USD);
    let customers = store.customers(org).expect("customers");
    assert_eq!(
        facts
            .customers
            .iter()
            .map(|c| (c.id, c.external_id.as_str(), c.name.as_str()))
            .collect::<Vec<_>>(),
        customers
            .iter()
            .map(|c| (c.id, c.external_id.as_str(), c.name.as_str()))
            .collect::<Vec<_>>()
    );
    let invoices = store.invoices(org).expect("invoices");
    assert_eq!(facts.invoices.len(), invoices.len());
    for (f, i) in facts.invoices.iter().zip(&invoices) {
        assert_eq!(
            (f.id, f.issue_date, f.due_date, f.currency, f.total),
            (i.id, i.issue_date, i.due_date, i.currency, i.total)
        );
        let customer = customers
            .iter()
            .find(|c| c.id == f.customer_id)
            .expect("invoice customer");
        assert_eq!(customer.external_id, i.customer);
    }
    assert_eq!(facts.invoices[0].closed, None);
    assert_eq!(
        facts.invoices[1].closed,
        Some((date(2024, 3, 1), Closure::Void))
    );
    assert_eq!(
        facts.invoices[2].closed,
        Some((date(2024, 6, 30), Closure::WrittenOff))
    );
    assert_eq!(facts.invoices[2].currency, cur("BHD"));
    let mut allocs: Vec<_> = facts
        .allocations
        .iter()
        .map(|a| (a.invoice_id, a.applied_on, a.amount, a.from_credit_note))
        .collect();
    allocs.sort();
    let inv1 = invoices[0].id;
    assert_eq!(
        allocs,
        vec![
            (inv1, date(2024, 1, 20), 2_000, true),
            (inv1, date(2024, 2, 10), 8_000, false)
        ]
    );
}

fn payment(external_id: &str, customer: &str, currency: Currency, amount: i64) -> Payment {
    Payment {
        external_id: external_id.into(),
        customer: customer.into(),
        source: "bank".into(),
        received_on: date(2024, 3, 1),
        currency,
        amount,
        method: None,
        reference: None,
        payer_name: None,
    }
}

fn alloc(invoice: &str, source: AllocationSource, amount: i64) -> Allocation {
    Allocation {
        invoice: invoice.into(),
        source,
        amount,
        applied_on: date(2024, 3, 1),
    }
}

fn expect_over_allocated(
    result: Result<crate::AppliedCounts, StoreError>,
    entity: &str,
    key: &str,
    allocated: i64,
    limit: i64,
) -> String {
    match result {
        Err(
            ref e @ StoreError::OverAllocated {
                entity: ent,
                key: ref k,
                currency,
                allocated: a,
                limit: l,
            },
        ) => {
            assert_eq!(
                (ent, k.as_str(), currency, a, l),
                (entity, key, Currency::USD, allocated, limit),
                "{e}"
            );
            e.to_string()
        }
        other => panic!("expected {entity} {key} to be over-allocated, got {other:?}"),
    }
}

/// Allocations never exceed the invoice total, nor the payment amount or
/// credit note total they draw on, and are in the invoice's currency; a
/// change set that would break that fails whole. Runs on the seeded ledger:
/// INV-1 (100.00 USD) is fully allocated from P1 (80.00) and CN-1 (20.00),
/// INV-4 (50.00 USD) is open.
pub fn allocations_stay_within_totals(store: &dyn Store, org: i64) {
    let before = snapshot(store, org);
    let unchanged = |what: &str| {
        assert_eq!(
            snapshot(store, org),
            before,
            "a change set that fails the allocation check must write nothing ({what})"
        );
    };
    let usd = Currency::USD;
    let p = |k: &str| AllocationSource::Payment(k.into());
    let cn = |k: &str| AllocationSource::CreditNote(k.into());

    // More than the invoice's total, after valid inserts in the same set.
    let cs = ChangeSet {
        payments: vec![Change::Insert(payment("P2", "C1", usd, 10_000))],
        allocations: vec![alloc("INV-4", p("P2"), 6_000)],
        ..ChangeSet::default()
    };
    let msg = expect_over_allocated(
        store.apply(org, &cs, ACTOR, now()),
        "invoice",
        "INV-4",
        6_000,
        5_000,
    );
    assert_eq!(
        msg,
        "allocations to invoice INV-4 would total 60.00 USD but it is only 50.00 USD"
    );
    unchanged("invoice");

    // Each allocation fits, together they do not.
    let cs = ChangeSet {
        payments: vec![Change::Insert(payment("P2", "C1", usd, 10_000))],
        allocations: vec![
            alloc("INV-4", p("P2"), 3_000),
            alloc("INV-4", p("P2"), 2_001),
        ],
        ..ChangeSet::default()
    };
    expect_over_allocated(
        store.apply(org, &cs, ACTOR, now()),
        "invoice",
        "INV-4",
        5_001,
        5_000,
    );
    unchanged("invoice, two allocations");

    // A fully allocated payment and credit note cannot give more.
    let cs = ChangeSet {
        allocations: vec![alloc("INV-4", p("P1"), 1)],
        ..ChangeSet::default()
    };
    let msg = expect_over_allocated(
        store.apply(org, &cs, ACTOR, now()),
        "payment",
        "P1",
        8_001,
        8_000,
    );
    assert_eq!(
        msg,
        "allocations from payment P1 would total 80.01 USD but it is only 80.00 USD"
    );
    let cs = ChangeSet {
        allocations: vec![alloc("INV-4", cn("CN-1"), 1)],
        ..ChangeSet::default()
    };
    expect_over_allocated(
        store.apply(org, &cs, ACTOR, now()),
        "credit note",
        "CN-1",
        2_001,
        2_000,
    );
    unchanged("payment, credit note");

    // Lowering an invoice's total or a payment's amount below what is
    // already allocated fails the same way.
    let invoices = store.invoices(org).expect("invoices");
    let inv1 = invoices
        .iter()
        .find(|i| i.record.number == "INV-1")
        .expect("INV-1");
    let mut lower = inv1.record.clone();
    lower.total = 9_000;
    let cs = ChangeSet {
        invoices: vec![Change::Update {
            id: inv1.id,
            before: inv1.record.clone(),
            after: lower,
        }],
        ..ChangeSet::default()
    };
    expect_over_allocated(
        store.apply(org, &cs, ACTOR, now()),
        "invoice",
        "INV-1",
        10_000,
        9_000,
    );
    let payments = store.payments(org).expect("payments");
    let p1 = payments
        .iter()
        .find(|p| p.record.external_id == "P1")
        .expect("P1");
    let mut less = p1.record.clone();
    less.amount = 7_999;
    let cs = ChangeSet {
        payments: vec![Change::Update {
            id: p1.id,
            before: p1.record.clone(),
            after: less,
        }],
        ..ChangeSet::default()
    };
    expect_over_allocated(
        store.apply(org, &cs, ACTOR, now()),
        "payment",
        "P1",
        8_000,
        7_999,
    );
    unchanged("updates");

    // A payment in another currency than the invoice.
    let cs = ChangeSet {
        payments: vec![Change::Insert(payment("P3", "C1", Currency::EUR, 1_000))],
        allocations: vec![alloc("INV-4", p("P3"), 1_000)],
        ..ChangeSet::default()
    };
    match store.apply(org, &cs, ACTOR, now()) {
        Err(
            ref e @ StoreError::CurrencyMismatch {
                ref invoice,
                invoice_currency,
                entity,
                ref key,
                currency,
            },
        ) => {
            assert_eq!(
                (
                    invoice.as_str(),
                    invoice_currency,
                    entity,
                    key.as_str(),
                    currency
                ),
                ("INV-4", usd, "payment", "P3", Currency::EUR)
            );
            let msg = e.to_string();
            assert!(
                msg.contains("INV-4") && msg.contains("P3") && msg.contains("EUR"),
                "{msg}"
            );
        }
        other => panic!("expected a currency mismatch, got {other:?}"),
    }
    unchanged("currency");
    // ...or an invoice, or credit note, whose currency changes under its allocations.
    let mut eur = inv1.record.clone();
    eur.currency = Currency::EUR;
    let cs = ChangeSet {
        invoices: vec![Change::Update {
            id: inv1.id,
            before: inv1.record.clone(),
            after: eur,
        }],
        ..ChangeSet::default()
    };
    let err = store
        .apply(org, &cs, ACTOR, now())
        .expect_err("invoice currency");
    assert!(
        matches!(&err, StoreError::CurrencyMismatch { invoice, entity: "payment", key, .. } if invoice == "INV-1" && key == "P1"),
        "{err:?}"
    );
    let notes = store.credit_notes(org).expect("credit notes");
    let mut note = notes[0].record.clone();
    note.currency = Currency::EUR;
    let cs = ChangeSet {
        credit_notes: vec![Change::Update {
            id: notes[0].id,
            before: notes[0].record.clone(),
            after: note,
        }],
        ..ChangeSet::default()
    };
    let err = store
        .apply(org, &cs, ACTOR, now())
        .expect_err("credit note currency");
    assert!(
        matches!(&err, StoreError::CurrencyMismatch { invoice, entity: "credit note", key, .. } if invoice == "INV-1" && key == "CN-1"),
        "{err:?}"
    );
    unchanged("currency updates");

    // Two change sets planned against the same open balance (as two
    // concurrent imports would): the first fits and applies, the second
    // no longer does.
    let first = ChangeSet {
        payments: vec![Change::Insert(payment("P2", "C1", usd, 3_000))],
        allocations: vec![alloc("INV-4", p("P2"), 3_000)],
        ..ChangeSet::default()
    };
    let second = ChangeSet {
        payments: vec![Change::Insert(payment("P4", "C1", usd, 3_000))],
        allocations: vec![alloc("INV-4", p("P4"), 3_000)],
        ..ChangeSet::default()
    };
    store.apply(org, &first, ACTOR, now()).expect("first fits");
    let after_first = snapshot(store, org);
    expect_over_allocated(
        store.apply(org, &second, ACTOR, now()),
        "invoice",
        "INV-4",
        6_000,
        5_000,
    );
    assert_eq!(
        snapshot(store, org),
        after_first,
        "the second change set wrote nothing"
    );
    // Exactly the rest is fine.
    let rest = ChangeSet {
        payments: vec![Change::Insert(payment("P4", "C1", usd, 2_000))],
        allocations: vec![alloc("INV-4", p("P4"), 2_000)],
        ..ChangeSet::default()
    };
    store
        .apply(org, &rest, ACTOR, now())
        .expect("the exact open balance fits");
}

pub fn organization_can_be_updated(store: &dyn Store, org: &Organization) {
    let changed = Organization {
        name: "Ünïcødé Holding ☕".into(),
        base_currency: Currency::EUR,
        time_zone: "Europe/Berlin".into(),
        ..org.clone()
    };
    let events_before = event_count(store, org.id);
    store
        .update_organization(&changed, "carol", now())
        .expect("update organization");
    assert_eq!(store.default_organization().expect("org"), changed);
    assert_eq!(
        store.ledger_facts(org.id).expect("facts").base_currency,
        Currency::EUR
    );
    // Logged in the organization's own log, with the field diff.
    let events = store
        .events(org.id, &EventFilter::default())
        .expect("events");
    assert_eq!(events.len(), events_before + 1);
    let ev = &events[0];
    assert_eq!(
        (
            ev.kind.as_str(),
            ev.entity_type.as_str(),
            ev.entity_key.as_str(),
            ev.actor.as_str(),
            ev.recorded_at,
            ev.customer.as_deref()
        ),
        (
            "organization.updated",
            "organization",
            "default",
            "carol",
            now(),
            None
        )
    );
    let changes = ev.data["changes"].as_object().expect("field diff");
    let mut fields: Vec<&str> = changes.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["base_currency", "name", "time_zone"]);
    assert_eq!(changes["name"]["from"], "My Company");
    assert_eq!(changes["name"]["to"], "Ünïcødé Holding ☕");
    assert_eq!(changes["base_currency"]["to"], "EUR");

    // Setting the same values again changes and logs nothing.
    store
        .update_organization(&changed, "carol", now())
        .expect("no-op update");
    assert_eq!(event_count(store, org.id), events_before + 1);

    // Only name, base currency and time zone change; slug and creation time stay.
    let sneaky = Organization {
        slug: "renamed".into(),
        created_at: Timestamp::from_second(0).expect("timestamp"),
        ..changed.clone()
    };
    store
        .update_organization(&sneaky, "carol", now())
        .expect("slug is ignored");
    assert_eq!(store.default_organization().expect("org"), changed);
    assert_eq!(event_count(store, org.id), events_before + 1);

    store
        .update_organization(org, "carol", now())
        .expect("restore organization");
    assert_eq!(store.default_organization().expect("org"), *org);
    let events = store
        .events(org.id, &EventFilter::default())
        .expect("events");
    assert_eq!(events.len(), events_before + 2);
    assert_eq!(events[0].kind, "organization.updated");
    assert_eq!(events[0].data["changes"]["name"]["to"], "My Company");
    // Another organization's log is untouched.
    if let Ok(other) = store.create_organization("initech", "Initech", Currency::USD, "UTC", now())
    {
        store
            .update_organization(
                &Organization {
                    name: "Initech Inc".into(),
                    ..other.clone()
                },
                "dave",
                now(),
            )
            .expect("update other organization");
        assert_eq!(event_count(store, other.id), 1);
        assert_eq!(event_count(store, org.id), events_before + 2);
        assert_eq!(store.default_organization().expect("org"), *org);
    }
    let missing = Organization {
        id: org.id + 1_000_000,
        ..org.clone()
    };
    assert!(matches!(
        store.update_organization(&missing, "carol", now()),
        Err(StoreError::NotFound { .. })
    ));
}

// ---- Dunning ----
//
// The dunning story runs in organizations of its own ("dunning-a", "-b",
// "-c"), so it does not depend on what the ledger story left behind. Claims
// serve every organization at once; each step leaves no message of an earlier
// one due, so every claim's result is known exactly.

fn at(seconds: i64) -> Timestamp {
    now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .expect("timestamp in range")
}

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn today() -> Date {
    date(2024, 6, 10)
}

/// A dunning organization with customers C1 and C2, contacts (one address
/// shared by both customers, in different case) and invoices INV-1, INV-2
/// (C1) and INV-3 (C2).
pub fn seed_dunning_org(store: &dyn Store, slug: &str) -> i64 {
    let org = store
        .create_organization(slug, "Dunning GmbH", Currency::EUR, "Europe/Berlin", now())
        .expect("create dunning organization");
    let contact = |customer: &str, id: &str, email: &str| {
        Change::Insert(Contact {
            customer: customer.into(),
            external_id: id.into(),
            name: format!("Contact {id}"),
            email: Some(email.into()),
            phone: Some("+4915112345678".into()),
            role: None,
            is_primary: true,
            preferences: ChannelPreferences::default(),
        })
    };
    let eur = Currency::EUR;
    let cs = ChangeSet {
        customers: vec![
            Change::Insert(customer("C1", "Acme GmbH", eur)),
            Change::Insert(customer("C2", "Zoë & Söhne", eur)),
        ],
        contacts: vec![
            contact("C1", "K1", "Ana@Example.com"),
            contact("C2", "K2", "billing@c2.example"),
            contact("C2", "K3", "ANA@example.com"),
        ],
        invoices: vec![
            Change::Insert(invoice(
                "INV-1",
                "C1",
                eur,
                10_000,
                date(2024, 4, 1),
                date(2024, 5, 1),
            )),
            Change::Insert(invoice(
                "INV-2",
                "C1",
                eur,
                20_000,
                date(2024, 4, 2),
                date(2024, 5, 2),
            )),
            Change::Insert(invoice(
                "INV-3",
                "C2",
                eur,
                30_000,
                date(2024, 4, 3),
                date(2024, 5, 3),
            )),
        ],
        ..ChangeSet::default()
    };
    store
        .apply(org.id, &cs, ACTOR, now())
        .expect("seed dunning organization");
    org.id
}

pub fn outbox_message(
    key: &str,
    customer: &str,
    channel: Channel,
    invoices: &[&str],
    not_before: Timestamp,
) -> OutboxMessage {
    OutboxMessage {
        key: key.into(),
        customer: customer.into(),
        channel,
        contact: Some("K1".into()),
        recipient: match channel {
            Channel::Sms => "+4915112345678".into(),
            _ => "ana@example.com".into(),
        },
        policy: "default".into(),
        step: StepKey::Sequence { step: 1 },
        template: "reminder".into(),
        locale: "de".into(),
        currency: Currency::EUR,
        invoices: invoices
            .iter()
            .map(|n| MessageInvoice {
                number: (*n).into(),
                issue_date: date(2024, 4, 1),
                due_date: date(2024, 5, 1),
                open: 10_000,
                days_overdue: 40,
                fee: 4_000,
                interest: 123,
                compensation: 4_000,
            })
            .collect(),
        subject: format!("Zahlungserinnerung {key}"),
        body_text: "Sehr geehrte Damen und Herren, bitte zahlen Sie 100,00 € — «merci» 🙏".into(),
        body_html: (channel == Channel::Email)
            .then(|| "<p>Bitte zahlen Sie 100,00&nbsp;€</p>".into()),
        token: format!("tok-{key}"),
        time_zone: "Europe/Berlin".into(),
        not_before,
        created_at: now(),
        status: MessageStatus::Queued,
        attempts: 0,
        next_attempt_at: not_before,
        claimed_by: None,
        lease_until: None,
        last_error: None,
        provider_id: None,
        sent_at: None,
    }
}

pub fn step_record(invoice: &str, step: StepKey) -> StepRecord {
    StepRecord {
        invoice: invoice.into(),
        policy: "default".into(),
        step,
        done_on: today(),
        done_at: now(),
        outcome: StepOutcome::Enqueued {
            message_key: format!("{invoice}:{step}"),
        },
    }
}

fn seq(step: u32) -> StepKey {
    StepKey::Sequence { step }
}

fn step_task(key: &str, customer: &str, invoices: &[&str]) -> Task {
    Task {
        key: key.into(),
        kind: TaskKind::Step,
        customer: customer.into(),
        invoices: invoices.iter().map(|n| (*n).to_string()).collect(),
        title: format!("Call {customer} about {}", invoices.join(", ")),
        detail: "Second reminder went unanswered; call the billing contact.".into(),
        due_on: today(),
        created_at: now(),
        status: TaskStatus::Open,
        assignee: Some("anna".into()),
        snoozed_until: Some(date(2024, 6, 12)),
        completed_at: None,
        completed_by: None,
        message_key: None,
    }
}

fn late_fee(key: &str, invoice: &str, minor: i64) -> Charge {
    Charge {
        key: key.into(),
        invoice: invoice.into(),
        kind: ChargeKind::LateFee,
        amount: Money::new(minor, Currency::EUR),
        charged_on: today(),
        description: "Late fee at the second reminder".into(),
        created_at: now(),
        waived_at: None,
        waived_by: None,
        waive_reason: None,
    }
}

fn planned(
    steps: Vec<StepRecord>,
    message: Option<OutboxMessage>,
    task: Option<Task>,
    charges: Vec<Charge>,
) -> PlannedWrite {
    PlannedWrite {
        steps,
        message,
        task,
        charges,
    }
}

fn expect_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(message)) => assert!(!message.is_empty(), "{what}"),
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

fn expect_unknown<T: std::fmt::Debug>(result: Result<T, StoreError>, entity: &str, key: &str) {
    match result {
        Err(StoreError::UnknownReference { entity: e, key: k }) => {
            assert_eq!((e, k.as_str()), (entity, key));
        }
        other => panic!("expected unknown {entity} '{key}', got {other:?}"),
    }
}

fn expect_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, entity: &str) {
    match result {
        Err(StoreError::NotFound { entity: e, .. }) => assert_eq!(e, entity),
        other => panic!("expected {entity} not found, got {other:?}"),
    }
}

fn expect_dunning_constraint<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    name: &str,
    rule: &str,
) {
    match result {
        Err(StoreError::Constraint {
            constraint,
            message,
        }) => assert_eq!((constraint.as_str(), message.as_str()), (name, rule)),
        other => panic!("expected constraint {name}, got {other:?}"),
    }
}

fn newest_event(store: &dyn Store, org: i64) -> Event {
    store
        .events(
            org,
            &EventFilter {
                limit: Some(1),
                ..EventFilter::default()
            },
        )
        .expect("events")
        .into_iter()
        .next()
        .expect("an event")
}

fn events_of(store: &dyn Store, org: i64, kind: &str) -> Vec<Event> {
    store
        .events(org, &EventFilter::default())
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

fn message_by_key(store: &dyn Store, org: i64, key: &str) -> Stored<OutboxMessage> {
    store
        .outbox(org, &OutboxFilter::default())
        .expect("outbox")
        .into_iter()
        .find(|m| m.record.key == key)
        .unwrap_or_else(|| panic!("message {key} in the outbox"))
}

fn claim(store: &dyn Store, worker: &str, when: Timestamp) -> Vec<Claimed> {
    store
        .claim_messages(worker, when, at_after(when, 5 * MIN), 100)
        .expect("claim messages")
}

fn at_after(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(jiff::SignedDuration::from_secs(seconds))
        .expect("timestamp in range")
}

fn claimed_keys(claimed: &[Claimed]) -> Vec<&str> {
    claimed
        .iter()
        .map(|c| c.message.record.key.as_str())
        .collect()
}

/// The dunning story, in order; each step relies on the ones before it.
pub fn dunning_works(store: &dyn Store) {
    let a = seed_dunning_org(store, "dunning-a");
    dunning_settings_round_trip(store, a);
    policies_and_assignments(store, a);
    holds_pause_until_ended(store, a);
    one_open_dispute_per_invoice(store, a);
    promises_cancel_once(store, a);
    let first_run = runs_are_recorded_exactly_once(store, a);
    delivery_claims_and_marks(store, a);
    expired_leases_are_released(store, a);
    contact_log_counts_messages_to_customers(store, a);
    tasks_and_charges_close_once(store, a);
    bounces_open_tasks(store, a);
    dunning_tenants_are_isolated(store, a, &first_run);
    one_click_unsubscribe(store, a);
    concurrent_workers_and_runs(store);
}

pub fn dunning_settings_round_trip(store: &dyn Store, org: i64) {
    assert_eq!(
        store.dunning_settings(org).expect("settings"),
        DunningSettings::default(),
        "settings default until saved"
    );
    let settings = DunningSettings {
        default_policy: "gentle".into(),
        send_window: SendWindow {
            start: jiff::civil::time(9, 30, 0, 0),
            end: jiff::civil::time(17, 0, 0, 0),
            days: vec![
                jiff::civil::Weekday::Monday,
                jiff::civil::Weekday::Wednesday,
                jiff::civil::Weekday::Saturday,
            ],
        },
        holidays: vec![date(2024, 12, 25), date(2024, 12, 26)],
        min_gap_days: 5,
        weekly_cap: 1,
        min_balance: vec![
            Money::new(500, Currency::EUR),
            Money::new(1_000, cur("JPY")),
        ],
        interest_regime: Some(arflow_domain::charges::Regime::DeBgb288),
        promise_grace_days: 2,
        paused: false,
        started_on: None,
    };
    store
        .set_dunning_settings(org, &settings, "alice", now())
        .expect("save settings");
    assert_eq!(store.dunning_settings(org).expect("settings"), settings);
    let ev = newest_event(store, org);
    assert_eq!(
        (ev.kind.as_str(), ev.entity_type.as_str(), ev.actor.as_str()),
        ("dunning_settings.updated", "dunning_settings", "alice")
    );
    let mut fields: Vec<&str> = ev.data["changes"]
        .as_object()
        .expect("field diff")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        vec![
            "default_policy",
            "holidays",
            "interest_regime",
            "min_balance",
            "min_gap_days",
            "promise_grace_days",
            "send_window",
            "weekly_cap"
        ]
    );
    assert_eq!(ev.data["changes"]["min_gap_days"]["from"], 3);
    assert_eq!(ev.data["changes"]["min_gap_days"]["to"], 5);

    // Saving the same settings again writes and logs nothing.
    let n = event_count(store, org);
    store
        .set_dunning_settings(org, &settings, "alice", now())
        .expect("same settings");
    assert_eq!(event_count(store, org), n);

    // Back to the defaults (the rest of the story assumes them).
    store
        .set_dunning_settings(org, &DunningSettings::default(), "alice", now())
        .expect("restore defaults");
    assert_eq!(
        store.dunning_settings(org).expect("settings"),
        DunningSettings::default()
    );
    expect_not_found(
        store.set_dunning_settings(org + 1_000_000, &settings, "alice", now()),
        "organization",
    );
}

pub fn policies_and_assignments(store: &dyn Store, org: i64) {
    assert!(store.policies(org).expect("policies").is_empty());
    let gentle = "[[steps]]\nanchor = \"after_due\"\noffset_days = 3\n";
    store
        .put_policy(org, "gentle", gentle, "alice", now())
        .expect("put gentle");
    store
        .put_policy(org, "firm", "# firm\n", "alice", now())
        .expect("put firm");
    let names = |store: &dyn Store| -> Vec<String> {
        store
            .policies(org)
            .expect("policies")
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(names(store), vec!["firm", "gentle"], "sorted by name");
    assert_eq!(events_of(store, org, "policy.created").len(), 2);

    // Replacing the text updates it and logs the diff; the same text again is a no-op.
    let changed = "[[steps]]\nanchor = \"after_due\"\noffset_days = 5\n";
    store
        .put_policy(org, "gentle", changed, "bob", at(MIN))
        .expect("update gentle");
    let stored = store.policies(org).expect("policies");
    assert_eq!(
        stored[1],
        StoredPolicy {
            name: "gentle".into(),
            source: changed.into(),
            updated_at: at(MIN),
        }
    );
    let ev = newest_event(store, org);
    assert_eq!(
        (ev.kind.as_str(), ev.entity_key.as_str()),
        ("policy.updated", "gentle")
    );
    assert_eq!(ev.data["changes"]["source"]["from"], gentle);
    assert_eq!(ev.data["changes"]["source"]["to"], changed);
    let n = event_count(store, org);
    store
        .put_policy(org, "gentle", changed, "bob", at(2 * MIN))
        .expect("same text");
    assert_eq!(event_count(store, org), n);
    assert_eq!(
        store.policies(org).expect("policies")[1].updated_at,
        at(MIN)
    );

    // Assignments to an invoice, a customer and a segment.
    let inv = AssignmentScope::Invoice("INV-2".into());
    let c1 = AssignmentScope::Customer("C1".into());
    let seg = AssignmentScope::Segment("enterprise".into());
    for (scope, policy) in [(&c1, "gentle"), (&inv, "firm"), (&seg, "gentle")] {
        store
            .assign_policy(org, scope, Some(policy), "alice", now())
            .expect("assign");
    }
    let assignment = |scope: &AssignmentScope, policy: &str| PolicyAssignment {
        scope: scope.clone(),
        policy: policy.into(),
    };
    assert_eq!(
        store.policy_assignments(org).expect("assignments"),
        vec![
            assignment(&c1, "gentle"),
            assignment(&inv, "firm"),
            assignment(&seg, "gentle")
        ]
    );
    let assigned = events_of(store, org, "policy.assigned");
    assert_eq!(assigned.len(), 3);
    // Newest first: segment (no customer), invoice INV-2 (its customer C1), customer C1.
    assert_eq!(
        assigned
            .iter()
            .map(|e| (e.entity_key.as_str(), e.customer.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            ("segment:enterprise", None),
            ("invoice:INV-2", Some("C1")),
            ("customer:C1", Some("C1"))
        ]
    );
    assert_eq!(assigned[1].summary, "Policy firm assigned to invoice INV-2");

    // Reassigning replaces; assigning the same policy again changes nothing.
    store
        .assign_policy(org, &c1, Some("firm"), "alice", now())
        .expect("reassign");
    assert_eq!(
        newest_event(store, org).summary,
        "Policy firm assigned to customer C1 (was gentle)"
    );
    let n = event_count(store, org);
    store
        .assign_policy(org, &c1, Some("firm"), "alice", now())
        .expect("same assignment");
    assert_eq!(event_count(store, org), n);

    // Unknown policy, invoice or customer: refused, nothing written.
    expect_unknown(
        store.assign_policy(org, &c1, Some("nope"), "alice", now()),
        "policy",
        "nope",
    );
    expect_unknown(
        store.assign_policy(
            org,
            &AssignmentScope::Invoice("INV-404".into()),
            Some("firm"),
            "alice",
            now(),
        ),
        "invoice",
        "INV-404",
    );
    expect_unknown(
        store.assign_policy(
            org,
            &AssignmentScope::Customer("C404".into()),
            Some("firm"),
            "alice",
            now(),
        ),
        "customer",
        "C404",
    );
    assert_eq!(event_count(store, org), n);

    // Unassigning removes; unassigning again is a no-op.
    store
        .assign_policy(org, &seg, None, "alice", now())
        .expect("unassign");
    let ev = newest_event(store, org);
    assert_eq!(ev.kind, "policy.unassigned");
    assert_eq!(ev.data["changes"]["policy"]["from"], "gentle");
    assert_eq!(ev.data["changes"]["policy"]["to"], serde_json::Value::Null);
    let n = event_count(store, org);
    store
        .assign_policy(org, &seg, None, "alice", now())
        .expect("unassign again");
    assert_eq!(event_count(store, org), n);
    assert_eq!(
        store.policy_assignments(org).expect("assignments"),
        vec![assignment(&c1, "firm"), assignment(&inv, "firm")]
    );
}

pub fn holds_pause_until_ended(store: &dyn Store, org: i64) {
    let hold = Hold {
        scope: Scope::Invoice("INV-1".into()),
        reason: "customer asked for a copy".into(),
        created_at: now(),
        created_by: "alice".into(),
        expires_on: Some(date(2024, 6, 20)),
        ended_at: None,
        ended_by: None,
    };
    let id = store.create_hold(org, &hold, now()).expect("create hold");
    let ev = newest_event(store, org);
    assert_eq!(
        (
            ev.kind.as_str(),
            ev.entity_key.clone(),
            ev.customer.as_deref(),
            ev.actor.as_str(),
            ev.summary.as_str()
        ),
        (
            "hold.created",
            id.to_string(),
            Some("C1"),
            "alice",
            "Hold on invoice INV-1 until 2024-06-20: customer asked for a copy"
        )
    );
    let customer_hold = Hold {
        scope: Scope::Customer("C2".into()),
        expires_on: None,
        reason: "talking to their CFO".into(),
        ..hold.clone()
    };
    let id2 = store
        .create_hold(org, &customer_hold, now())
        .expect("customer hold");
    // Expired before today (2024-06-10 in Berlin).
    let expired = Hold {
        expires_on: Some(date(2024, 6, 5)),
        created_at: at(-30 * 24 * HOUR),
        ..hold.clone()
    };
    let id3 = store.create_hold(org, &expired, now()).expect("old hold");
    assert_eq!(
        store.holds(org).expect("holds"),
        vec![
            Stored {
                id,
                record: hold.clone()
            },
            Stored {
                id: id2,
                record: customer_hold.clone()
            },
            Stored {
                id: id3,
                record: expired.clone()
            },
        ]
    );
    expect_unknown(
        store.create_hold(
            org,
            &Hold {
                scope: Scope::Invoice("INV-404".into()),
                ..hold.clone()
            },
            now(),
        ),
        "invoice",
        "INV-404",
    );
    expect_unknown(
        store.create_hold(
            org,
            &Hold {
                scope: Scope::Customer("C404".into()),
                ..hold.clone()
            },
            now(),
        ),
        "customer",
        "C404",
    );

    store.end_hold(org, id, "bob", at(HOUR)).expect("end hold");
    let ended = &store.holds(org).expect("holds")[0].record;
    assert_eq!(
        (ended.ended_at, ended.ended_by.as_deref()),
        (Some(at(HOUR)), Some("bob"))
    );
    assert!(!ended.is_active(today(), at(HOUR)));
    let ev = newest_event(store, org);
    assert_eq!((ev.kind.as_str(), ev.actor.as_str()), ("hold.ended", "bob"));
    assert_eq!(ev.data["changes"]["ended_by"]["to"], "bob");
    let n = event_count(store, org);
    expect_conflict(store.end_hold(org, id, "bob", at(HOUR)), "ending twice");
    expect_conflict(
        store.end_hold(org, id3, "bob", at(HOUR)),
        "ending an expired hold",
    );
    expect_not_found(store.end_hold(org, id + 1_000_000, "bob", at(HOUR)), "hold");
    assert_eq!(event_count(store, org), n, "refused changes log nothing");
    // The customer hold stays active; end it so later steps are unaffected.
    store
        .end_hold(org, id2, "bob", at(HOUR))
        .expect("end customer hold");
}

pub fn one_open_dispute_per_invoice(store: &dyn Store, org: i64) {
    let dispute = Dispute {
        invoice: "INV-2".into(),
        reason: "goods arrived damaged".into(),
        opened_at: now(),
        opened_by: "alice".into(),
        resolved_at: None,
        resolved_by: None,
        resolution: None,
    };
    let id = store
        .open_dispute(org, &dispute, now())
        .expect("open dispute");
    let ev = newest_event(store, org);
    assert_eq!(
        (
            ev.kind.as_str(),
            ev.customer.as_deref(),
            ev.summary.as_str()
        ),
        (
            "dispute.opened",
            Some("C1"),
            "Dispute opened on invoice INV-2: goods arrived damaged"
        )
    );
    expect_conflict(
        store.open_dispute(org, &dispute, now()),
        "a second open dispute on one invoice",
    );
    expect_unknown(
        store.open_dispute(
            org,
            &Dispute {
                invoice: "INV-404".into(),
                ..dispute.clone()
            },
            now(),
        ),
        "invoice",
        "INV-404",
    );
    // Another invoice may have its own.
    let other = store
        .open_dispute(
            org,
            &Dispute {
                invoice: "INV-3".into(),
                ..dispute.clone()
            },
            now(),
        )
        .expect("dispute on another invoice");

    store
        .resolve_dispute(org, id, "credit note issued", "bob", at(HOUR))
        .expect("resolve");
    expect_conflict(
        store.resolve_dispute(org, id, "again", "bob", at(HOUR)),
        "resolving twice",
    );
    expect_not_found(
        store.resolve_dispute(org, id + 1_000_000, "x", "bob", at(HOUR)),
        "dispute",
    );
    let ev = newest_event(store, org);
    assert_eq!(ev.kind, "dispute.resolved");
    assert_eq!(ev.data["changes"]["resolution"]["to"], "credit note issued");
    // Once resolved, the invoice can be disputed again.
    let again = store
        .open_dispute(
            org,
            &Dispute {
                opened_at: at(2 * HOUR),
                reason: "wrong quantity".into(),
                ..dispute.clone()
            },
            at(2 * HOUR),
        )
        .expect("dispute after resolution");
    let disputes = store.disputes(org).expect("disputes");
    assert_eq!(
        disputes.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![id, other, again]
    );
    assert_eq!(
        disputes[0].record,
        Dispute {
            resolved_at: Some(at(HOUR)),
            resolved_by: Some("bob".into()),
            resolution: Some("credit note issued".into()),
            ..dispute.clone()
        }
    );
    assert!(disputes[2].record.is_open(at(2 * HOUR)));
    for id in [other, again] {
        store
            .resolve_dispute(org, id, "settled", "bob", at(3 * HOUR))
            .expect("resolve the rest");
    }
}

pub fn promises_cancel_once(store: &dyn Store, org: i64) {
    let promise = Promise {
        scope: Scope::Customer("C1".into()),
        amount: Some(Money::new(12_000, Currency::EUR)),
        promised_on: date(2024, 6, 15),
        grace_days: 3,
        made_at: now(),
        made_by: "alice".into(),
        note: Some("on the phone with Ana".into()),
        cancelled_at: None,
        cancelled_by: None,
    };
    let id = store.create_promise(org, &promise, now()).expect("promise");
    assert_eq!(
        newest_event(store, org).summary,
        "Promise to pay 120.00 EUR of customer C1 by 2024-06-15"
    );
    let whole = Promise {
        scope: Scope::Invoice("INV-3".into()),
        amount: None,
        note: None,
        ..promise.clone()
    };
    let id2 = store.create_promise(org, &whole, now()).expect("promise");
    let ev = newest_event(store, org);
    assert_eq!(ev.customer.as_deref(), Some("C2"));
    assert_eq!(
        ev.summary,
        "Promise to pay the open balance of invoice INV-3 by 2024-06-15"
    );
    expect_unknown(
        store.create_promise(
            org,
            &Promise {
                scope: Scope::Invoice("INV-404".into()),
                ..promise.clone()
            },
            now(),
        ),
        "invoice",
        "INV-404",
    );
    assert_eq!(
        store.promises(org).expect("promises"),
        vec![
            Stored {
                id,
                record: promise.clone()
            },
            Stored {
                id: id2,
                record: whole.clone()
            }
        ]
    );
    let n = event_count(store, org);
    expect_dunning_constraint(
        store.create_promise(
            org,
            &Promise {
                amount: Some(Money::new(0, Currency::EUR)),
                ..promise.clone()
            },
            now(),
        ),
        "promises_amount_positive",
        "a promised amount must be positive",
    );
    assert_eq!(event_count(store, org), n);
    assert_eq!(store.promises(org).expect("promises").len(), 2);
    store
        .cancel_promise(org, id, "bob", at(HOUR))
        .expect("cancel");
    assert_eq!(newest_event(store, org).kind, "promise.cancelled");
    expect_conflict(
        store.cancel_promise(org, id, "bob", at(HOUR)),
        "cancelling twice",
    );
    expect_not_found(
        store.cancel_promise(org, id + 1_000_000, "bob", at(HOUR)),
        "promise",
    );
    let cancelled = &store.promises(org).expect("promises")[0].record;
    assert_eq!(
        (cancelled.cancelled_at, cancelled.cancelled_by.as_deref()),
        (Some(at(HOUR)), Some("bob"))
    );

    // Several promises at once: all or none.
    let n = event_count(store, org);
    let on = |invoice: &str| Promise {
        scope: Scope::Invoice(invoice.into()),
        amount: None,
        ..promise.clone()
    };
    expect_unknown(
        store.create_promises(org, &[on("INV-1"), on("INV-404")], now()),
        "invoice",
        "INV-404",
    );
    assert_eq!(store.promises(org).expect("promises").len(), 2, "none kept");
    assert_eq!(event_count(store, org), n);
    let ids = store
        .create_promises(org, &[on("INV-1"), on("INV-2")], now())
        .expect("promises");
    assert_eq!(ids.len(), 2);
    let kept = store.promises(org).expect("promises");
    assert_eq!(
        kept.iter().rev().take(2).map(|p| p.id).collect::<Vec<_>>(),
        vec![ids[1], ids[0]]
    );
    assert_eq!(event_count(store, org), n + 2);
}

/// The first run's actions, for the isolation step.
pub struct FirstRun {
    pub actions: Vec<PlannedWrite>,
    pub counts: RunCounts,
}

pub fn runs_are_recorded_exactly_once(store: &dyn Store, org: i64) -> FirstRun {
    let m1 = outbox_message("m1", "C1", Channel::Email, &["INV-1"], now());
    let m2 = outbox_message("m2", "C1", Channel::Sms, &["INV-2"], at(2 * HOUR));
    let t1 = step_task("task:INV-3:s0", "C2", &["INV-3"]);
    let fee = late_fee("fee:INV-1:s0", "INV-1", 4_000);
    let skipped = StepRecord {
        outcome: StepOutcome::Skipped {
            reason: "already due when dunning began".into(),
        },
        ..step_record("INV-2", seq(0))
    };
    let actions = vec![
        planned(
            vec![step_record("INV-1", seq(0))],
            Some(m1.clone()),
            None,
            vec![fee.clone()],
        ),
        planned(
            vec![step_record("INV-3", seq(0))],
            None,
            Some(t1.clone()),
            vec![],
        ),
        planned(vec![skipped.clone()], None, None, vec![]),
        planned(
            vec![
                step_record("INV-2", seq(1)),
                step_record(
                    "INV-2",
                    StepKey::BrokenPromise {
                        promise: 17,
                        step: 2,
                    },
                ),
            ],
            Some(m2.clone()),
            None,
            vec![],
        ),
    ];
    let events_before = event_count(store, org);
    let counts = store
        .record_run(org, &actions, today(), "runner", now())
        .expect("record run");
    assert_eq!(
        counts,
        RunCounts {
            actions: 4,
            already_done: 0,
            messages: 2,
            tasks: 1,
            charges: 1,
            step_records: 5,
        }
    );
    let all_steps: Vec<StepRecord> = actions.iter().flat_map(|a| a.steps.clone()).collect();
    assert_eq!(store.step_records(org).expect("steps"), all_steps);
    let outbox = store.outbox(org, &OutboxFilter::default()).expect("outbox");
    assert_eq!(
        records(&outbox),
        vec![m2.clone(), m1.clone()],
        "newest first"
    );
    assert_eq!(
        store.message(org, outbox[1].id).expect("message"),
        Some(outbox[1].clone())
    );
    assert_eq!(
        records(&store.tasks(org, false).expect("tasks")),
        vec![t1.clone()]
    );
    assert_eq!(
        records(&store.charges(org).expect("charges")),
        vec![fee.clone()]
    );
    assert_eq!(
        store.dunning_settings(org).expect("settings").started_on,
        Some(today()),
        "the first run marks the day dunning began"
    );
    // Filters: by status, by customer, limited.
    let by = |status: Option<MessageStatus>, customer: Option<&str>, limit: Option<u32>| {
        store
            .outbox(
                org,
                &OutboxFilter {
                    status,
                    customer: customer.map(str::to_owned),
                    limit,
                },
            )
            .expect("filtered outbox")
            .len()
    };
    assert_eq!(by(Some(MessageStatus::Queued), None, None), 2);
    assert_eq!(by(Some(MessageStatus::Sent), None, None), 0);
    assert_eq!(by(None, Some("C1"), None), 2);
    assert_eq!(by(None, Some("C2"), None), 0);
    assert_eq!(by(None, None, Some(1)), 1);

    // Logged: one event per message, task and charge, the settings change
    // and the run itself (newest).
    let events = store.events(org, &EventFilter::default()).expect("events");
    assert_eq!(events.len(), events_before + 6);
    let mut kinds: Vec<&str> = events[..6].iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[0], "dunning.run");
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        vec![
            "charge.created",
            "dunning.run",
            "dunning_settings.updated",
            "message.queued",
            "message.queued",
            "task.created"
        ]
    );
    assert!(
        events[..6]
            .iter()
            .all(|e| e.actor == "runner" && e.recorded_at == now())
    );
    assert_eq!(events[0].data["messages"], 2);
    assert_eq!(events[0].data["today"], "2024-06-10");
    let queued = events
        .iter()
        .find(|e| e.kind == "message.queued" && e.entity_key == "m1")
        .expect("m1 queued");
    assert_eq!(queued.customer.as_deref(), Some("C1"));
    assert_eq!(
        queued.summary,
        "Email to ana@example.com about invoice INV-1 queued (policy default, step s1)"
    );
    let charged = events
        .iter()
        .find(|e| e.kind == "charge.created")
        .expect("charge event");
    assert_eq!(
        charged.summary,
        "Late fee of 40.00 EUR on invoice INV-1: Late fee at the second reminder"
    );

    // The same run again writes nothing but its own log line.
    let snapshot_before = dunning_snapshot(store, org);
    let n = event_count(store, org);
    let again = store
        .record_run(org, &actions, date(2024, 6, 11), "runner", at(HOUR))
        .expect("second run");
    assert_eq!(
        again,
        RunCounts {
            actions: 0,
            already_done: 4,
            ..RunCounts::default()
        }
    );
    assert_eq!(dunning_snapshot(store, org), snapshot_before);
    assert_eq!(event_count(store, org), n + 1);
    assert_eq!(newest_event(store, org).kind, "dunning.run");
    assert_eq!(
        store.dunning_settings(org).expect("settings").started_on,
        Some(today()),
        "started_on is set once"
    );

    // An action is all or nothing: one taken step, message key, task key or
    // charge key drops it, including what it would have written new.
    let n = event_count(store, org);
    let partial = vec![
        // A taken step record alongside a new one.
        planned(
            vec![step_record("INV-1", seq(1)), step_record("INV-1", seq(0))],
            Some(outbox_message(
                "m3",
                "C1",
                Channel::Email,
                &["INV-1"],
                now(),
            )),
            None,
            vec![],
        ),
        // A taken message key.
        planned(
            vec![step_record("INV-1", seq(2))],
            Some(outbox_message(
                "m1",
                "C1",
                Channel::Email,
                &["INV-1"],
                now(),
            )),
            None,
            vec![],
        ),
        // A taken task key.
        planned(
            vec![step_record("INV-1", seq(3))],
            None,
            Some(t1.clone()),
            vec![],
        ),
        // A taken charge key.
        planned(
            vec![step_record("INV-1", seq(4))],
            None,
            None,
            vec![fee.clone()],
        ),
        // Two actions of one run with the same step: the first takes it.
        planned(
            vec![step_record("INV-2", seq(5))],
            None,
            None,
            vec![late_fee("fee:INV-2:s5", "INV-2", 500)],
        ),
        planned(
            vec![step_record("INV-2", seq(5))],
            None,
            Some(step_task("task:INV-2:s5", "C1", &["INV-2"])),
            vec![],
        ),
    ];
    let counts = store
        .record_run(org, &partial, today(), "runner", at(HOUR))
        .expect("partial run");
    assert_eq!(
        counts,
        RunCounts {
            actions: 1,
            already_done: 5,
            charges: 1,
            step_records: 1,
            ..RunCounts::default()
        }
    );
    let steps = store.step_records(org).expect("steps");
    assert_eq!(steps.len(), all_steps.len() + 1);
    assert_eq!(
        steps.last().map(|s| (s.invoice.as_str(), s.step)),
        Some(("INV-2", seq(5)))
    );
    assert_eq!(
        store
            .outbox(org, &OutboxFilter::default())
            .expect("outbox")
            .len(),
        2
    );
    assert_eq!(store.tasks(org, true).expect("tasks").len(), 1);
    assert_eq!(store.charges(org).expect("charges").len(), 2);
    assert_eq!(
        event_count(store, org),
        n + 2,
        "charge.created and dunning.run"
    );

    // An unknown invoice or customer anywhere fails the whole run.
    let snapshot_before = dunning_snapshot(store, org);
    let n = event_count(store, org);
    for (bad, entity, key) in [
        (
            planned(vec![step_record("INV-404", seq(0))], None, None, vec![]),
            "invoice",
            "INV-404",
        ),
        (
            planned(
                vec![step_record("INV-3", seq(9))],
                Some(outbox_message(
                    "m404",
                    "C404",
                    Channel::Email,
                    &["INV-3"],
                    now(),
                )),
                None,
                vec![],
            ),
            "customer",
            "C404",
        ),
        (
            planned(
                vec![],
                None,
                Some(step_task("task:404", "C404", &[])),
                vec![],
            ),
            "customer",
            "C404",
        ),
        (
            planned(vec![], None, None, vec![late_fee("fee:404", "INV-404", 1)]),
            "invoice",
            "INV-404",
        ),
    ] {
        let run = vec![
            planned(vec![step_record("INV-3", seq(7))], None, None, vec![]),
            bad,
        ];
        expect_unknown(
            store.record_run(org, &run, today(), "runner", at(HOUR)),
            entity,
            key,
        );
    }
    assert_eq!(dunning_snapshot(store, org), snapshot_before);
    assert_eq!(event_count(store, org), n);

    // A named constraint says which rule a bad record broke; nothing is written.
    let negative = planned(
        vec![step_record("INV-3", seq(8))],
        None,
        None,
        vec![late_fee("fee:negative", "INV-3", -1)],
    );
    expect_dunning_constraint(
        store.record_run(org, &[negative], today(), "runner", at(HOUR)),
        "charges_amount_nonnegative",
        "a charge amount cannot be negative",
    );
    assert_eq!(dunning_snapshot(store, org), snapshot_before);
    assert_eq!(event_count(store, org), n);

    FirstRun {
        actions,
        counts: RunCounts {
            actions: 4,
            already_done: 0,
            messages: 2,
            tasks: 1,
            charges: 1,
            step_records: 5,
        },
    }
}

/// Every dunning read of one organization.
#[derive(Debug, PartialEq)]
pub struct DunningSnapshot {
    pub settings: DunningSettings,
    pub policies: Vec<StoredPolicy>,
    pub assignments: Vec<PolicyAssignment>,
    pub holds: Vec<Stored<Hold>>,
    pub disputes: Vec<Stored<Dispute>>,
    pub promises: Vec<Stored<Promise>>,
    pub steps: Vec<StepRecord>,
    pub outbox: Vec<Stored<OutboxMessage>>,
    pub tasks: Vec<Stored<Task>>,
    pub charges: Vec<Stored<Charge>>,
    pub bounces: Vec<Bounce>,
    pub contact_log: Vec<(String, Timestamp)>,
}

pub fn dunning_snapshot(store: &dyn Store, org: i64) -> DunningSnapshot {
    DunningSnapshot {
        settings: store.dunning_settings(org).expect("settings"),
        policies: store.policies(org).expect("policies"),
        assignments: store.policy_assignments(org).expect("assignments"),
        holds: store.holds(org).expect("holds"),
        disputes: store.disputes(org).expect("disputes"),
        promises: store.promises(org).expect("promises"),
        steps: store.step_records(org).expect("steps"),
        outbox: store.outbox(org, &OutboxFilter::default()).expect("outbox"),
        tasks: store.tasks(org, true).expect("tasks"),
        charges: store.charges(org).expect("charges"),
        bounces: store.bounces(org).expect("bounces"),
        contact_log: store
            .contact_log(org, at(-365 * 24 * HOUR))
            .expect("contact log"),
    }
}

pub fn delivery_claims_and_marks(store: &dyn Store, org: i64) {
    let m1 = message_by_key(store, org, "m1");
    let m2 = message_by_key(store, org, "m2");

    // Only m1 is due (m2 waits for its send window).
    let claimed = store
        .claim_messages("w1", now(), at(5 * MIN), 10)
        .expect("claim");
    assert_eq!(claimed_keys(&claimed), vec!["m1"]);
    assert_eq!(claimed[0].org, org);
    let c = &claimed[0].message;
    assert_eq!(c.id, m1.id);
    assert_eq!(
        c.record,
        OutboxMessage {
            status: MessageStatus::Claimed,
            claimed_by: Some("w1".into()),
            lease_until: Some(at(5 * MIN)),
            attempts: 1,
            ..m1.record.clone()
        }
    );
    assert!(
        claim(store, "w2", now()).is_empty(),
        "a claimed message is not claimed again"
    );

    // Only the claiming worker moves it on, one state at a time.
    expect_conflict(
        store.mark_sending(m1.id, "w2", now()),
        "another worker's message",
    );
    expect_conflict(
        store.mark_sent(m1.id, "w1", "p", now()),
        "sent before sending",
    );
    expect_not_found(
        store.mark_sending(m1.id + 1_000_000, "w1", now()),
        "message",
    );
    store.mark_sending(m1.id, "w1", now()).expect("sending");
    expect_conflict(store.mark_sending(m1.id, "w1", now()), "sending twice");
    store
        .mark_sent(m1.id, "w1", "provider-1", at(MIN))
        .expect("sent");
    expect_conflict(
        store.mark_sent(m1.id, "w1", "provider-1", at(MIN)),
        "sent twice",
    );
    let sent = store.message(org, m1.id).expect("message").expect("m1");
    assert_eq!(
        (
            sent.record.status,
            sent.record.provider_id.as_deref(),
            sent.record.sent_at
        ),
        (MessageStatus::Sent, Some("provider-1"), Some(at(MIN)))
    );
    let ev = newest_event(store, org);
    assert_eq!(
        (
            ev.kind.as_str(),
            ev.entity_key.as_str(),
            ev.actor.as_str(),
            ev.customer.as_deref()
        ),
        ("message.sent", "m1", "w1", Some("C1"))
    );
    assert_eq!(ev.data["changes"]["status"]["from"], "sending");
    assert_eq!(ev.data["changes"]["status"]["to"], "sent");

    // m2: claimed when due, retried later, not claimable before then.
    let t = at(3 * HOUR);
    assert_eq!(claimed_keys(&claim(store, "w1", t)), vec!["m2"]);
    store
        .mark_retry(m2.id, "w1", "connection refused", at_after(t, 10 * MIN), t)
        .expect("retry");
    let retried = store.message(org, m2.id).expect("message").expect("m2");
    assert_eq!(
        retried.record,
        OutboxMessage {
            attempts: 1,
            next_attempt_at: at_after(t, 10 * MIN),
            last_error: Some("connection refused".into()),
            ..m2.record.clone()
        }
    );
    assert_eq!(newest_event(store, org).kind, "message.retry");
    assert!(
        claim(store, "w1", at_after(t, 5 * MIN)).is_empty(),
        "not before next_attempt_at"
    );

    // A paused organization's messages wait.
    let settings = store.dunning_settings(org).expect("settings");
    store
        .set_dunning_settings(
            org,
            &DunningSettings {
                paused: true,
                ..settings.clone()
            },
            "alice",
            t,
        )
        .expect("pause");
    assert!(
        claim(store, "w1", at_after(t, 11 * MIN)).is_empty(),
        "paused"
    );
    store
        .set_dunning_settings(org, &settings, "alice", t)
        .expect("resume");
    let again = claim(store, "w1", at_after(t, 11 * MIN));
    assert_eq!(claimed_keys(&again), vec!["m2"]);
    assert_eq!(again[0].message.record.attempts, 2);

    // Cancelled before sending.
    expect_conflict(
        store.mark_cancelled(m2.id, "w2", "paid", at_after(t, 12 * MIN)),
        "another worker cancels",
    );
    store
        .mark_cancelled(
            m2.id,
            "w1",
            "every invoice in it was paid",
            at_after(t, 12 * MIN),
        )
        .expect("cancel");
    let ev = newest_event(store, org);
    assert_eq!(ev.kind, "message.cancelled");
    assert!(
        ev.summary
            .ends_with("cancelled: every invoice in it was paid"),
        "{}",
        ev.summary
    );
    assert_eq!(
        store
            .message(org, m2.id)
            .expect("m2")
            .map(|m| m.record.status),
        Some(MessageStatus::Cancelled)
    );
    expect_conflict(
        store.mark_retry(m2.id, "w1", "x", t, t),
        "retrying a cancelled message",
    );

    // A permanent failure opens a task for a person.
    let m4 = outbox_message("m4", "C2", Channel::Email, &["INV-3"], now());
    store
        .record_run(
            org,
            &[planned(
                vec![step_record("INV-3", seq(1))],
                Some(m4),
                None,
                vec![],
            )],
            today(),
            "runner",
            t,
        )
        .expect("run with m4");
    let claimed = claim(store, "w2", at_after(t, 20 * MIN));
    assert_eq!(claimed_keys(&claimed), vec!["m4"]);
    let id4 = claimed[0].message.id;
    store.mark_sending(id4, "w2", t).expect("sending");
    store
        .mark_failed(id4, "w2", "550 mailbox unavailable", at_after(t, 21 * MIN))
        .expect("failed");
    let failed = store.message(org, id4).expect("m4").expect("m4");
    assert_eq!(failed.record.status, MessageStatus::Failed);
    assert_eq!(
        failed.record.last_error.as_deref(),
        Some("550 mailbox unavailable")
    );
    let task = store
        .tasks(org, false)
        .expect("tasks")
        .into_iter()
        .find(|t| t.record.kind == TaskKind::DeliveryFailed)
        .expect("delivery_failed task");
    assert_eq!(
        (
            task.record.key.as_str(),
            task.record.customer.as_str(),
            task.record.message_key.as_deref(),
            task.record.invoices.clone(),
            task.record.status
        ),
        (
            "delivery_failed:m4",
            "C2",
            Some("m4"),
            vec!["INV-3".to_string()],
            TaskStatus::Open
        )
    );
    assert!(task.record.detail.contains("550 mailbox unavailable"));
    let kinds: Vec<String> = store
        .events(
            org,
            &EventFilter {
                limit: Some(2),
                ..EventFilter::default()
            },
        )
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["task.created", "message.failed"]);
    expect_conflict(store.mark_failed(id4, "w2", "again", t), "failing twice");
}

pub fn expired_leases_are_released(store: &dyn Store, org: i64) {
    let t = at(4 * HOUR);
    store
        .record_run(
            org,
            &[
                planned(
                    vec![step_record("INV-1", seq(6))],
                    Some(outbox_message(
                        "m5",
                        "C1",
                        Channel::Email,
                        &["INV-1"],
                        now(),
                    )),
                    None,
                    vec![],
                ),
                planned(
                    vec![step_record("INV-1", seq(7))],
                    Some(outbox_message(
                        "m6",
                        "C1",
                        Channel::Sms,
                        &["INV-1", "INV-2"],
                        now(),
                    )),
                    None,
                    vec![],
                ),
            ],
            today(),
            "runner",
            t,
        )
        .expect("run with m5, m6");
    let claimed = store
        .claim_messages("w1", t, at_after(t, MIN), 10)
        .expect("claim");
    assert_eq!(claimed_keys(&claimed), vec!["m5", "m6"]);
    let (id5, id6) = (claimed[0].message.id, claimed[1].message.id);
    store.mark_sending(id6, "w1", t).expect("sending");

    // Leases still running: nothing happens.
    assert_eq!(
        store
            .release_expired_leases(at_after(t, 30))
            .expect("release"),
        Released::default()
    );
    // The worker vanished: the claimed one goes back to the queue, the one
    // it was sending is in doubt and a person is asked to check.
    let n = event_count(store, org);
    assert_eq!(
        store
            .release_expired_leases(at_after(t, 2 * MIN))
            .expect("release"),
        Released {
            requeued: 1,
            in_doubt: 1
        }
    );
    let m5 = store.message(org, id5).expect("m5").expect("m5").record;
    assert_eq!(
        (m5.status, m5.claimed_by, m5.lease_until, m5.attempts),
        (MessageStatus::Queued, None, None, 1)
    );
    let m6 = store.message(org, id6).expect("m6").expect("m6").record;
    assert_eq!(m6.status, MessageStatus::InDoubt);
    let doubt = store
        .tasks(org, false)
        .expect("tasks")
        .into_iter()
        .find(|t| t.record.kind == TaskKind::InDoubt)
        .expect("in-doubt task");
    assert_eq!(doubt.record.key, "in_doubt:m6:1");
    assert_eq!(doubt.record.message_key.as_deref(), Some("m6"));
    assert_eq!(doubt.record.customer, "C1");
    assert_eq!(doubt.record.invoices, vec!["INV-1", "INV-2"]);
    assert!(
        doubt
            .record
            .detail
            .contains(&format!("arflow outbox confirm {id6} --delivered"))
            && doubt.record.detail.contains("--not-delivered")
            && doubt.record.detail.contains("may or may not"),
        "{}",
        doubt.record.detail
    );
    assert_eq!(event_count(store, org), n + 1, "task.created");
    assert_eq!(newest_event(store, org).kind, "task.created");
    // The vanished worker comes back: too late, a person decides now.
    expect_conflict(
        store.mark_sent(id6, "w1", "p", at_after(t, 3 * MIN)),
        "sent while in doubt",
    );
    assert!(
        store
            .claim_messages("w2", at_after(t, 2 * MIN), at_after(t, 3 * MIN), 10)
            .expect("claim")
            .iter()
            .all(|c| c.message.id != id6),
        "an in-doubt message is never claimed"
    );

    // Confirmed delivered: sent, and its task is done.
    expect_conflict(
        store.resolve_in_doubt(org, id5, true, "carol", at_after(t, 3 * MIN)),
        "m5 is not in doubt",
    );
    store
        .resolve_in_doubt(org, id6, true, "carol", at_after(t, 3 * MIN))
        .expect("confirm delivered");
    let m6 = store.message(org, id6).expect("m6").expect("m6").record;
    assert_eq!(
        (m6.status, m6.sent_at),
        (MessageStatus::Sent, Some(at_after(t, 3 * MIN)))
    );
    let done = store
        .tasks(org, true)
        .expect("tasks")
        .into_iter()
        .find(|x| x.id == doubt.id)
        .expect("task");
    assert_eq!(
        (done.record.status, done.record.completed_by.as_deref()),
        (TaskStatus::Done, Some("carol"))
    );
    let kinds: Vec<String> = store
        .events(
            org,
            &EventFilter {
                limit: Some(2),
                ..EventFilter::default()
            },
        )
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["task.completed", "message.confirmed"]);
    expect_conflict(
        store.resolve_in_doubt(org, id6, true, "carol", at_after(t, 3 * MIN)),
        "confirming twice",
    );

    // m5 was requeued, then claimed by w2 above, whose lease has run out
    // too: queued again. Now it ends in doubt in turn, and is confirmed not
    // delivered: queued again right away.
    let t2 = at_after(t, 10 * MIN);
    assert_eq!(
        store.release_expired_leases(t2).expect("release"),
        Released {
            requeued: 1,
            in_doubt: 0
        }
    );
    let claimed = store
        .claim_messages("w3", t2, at_after(t2, MIN), 10)
        .expect("claim");
    assert_eq!(claimed_keys(&claimed), vec!["m5"]);
    store.mark_sending(id5, "w3", t2).expect("sending");
    assert_eq!(
        store
            .release_expired_leases(at_after(t2, 2 * MIN))
            .expect("release"),
        Released {
            requeued: 0,
            in_doubt: 1
        }
    );
    store
        .resolve_in_doubt(org, id5, false, "carol", at_after(t2, 3 * MIN))
        .expect("confirm not delivered");
    let m5 = store.message(org, id5).expect("m5").expect("m5").record;
    assert_eq!(
        (m5.status, m5.claimed_by, m5.next_attempt_at, m5.sent_at),
        (MessageStatus::Queued, None, at_after(t2, 3 * MIN), None)
    );
    assert!(
        store
            .tasks(org, false)
            .expect("tasks")
            .iter()
            .all(|x| x.record.kind != TaskKind::InDoubt),
        "every in-doubt task is done"
    );
    assert!(
        store
            .tasks(org, true)
            .expect("tasks")
            .iter()
            .any(|x| x.record.key == "in_doubt:m5:3"),
        "one task per in-doubt episode"
    );
    let claimed = claim(store, "w3", at_after(t2, 3 * MIN));
    assert_eq!(claimed_keys(&claimed), vec!["m5"]);
    assert_eq!(claimed[0].message.record.attempts, 4);
    store.mark_sending(id5, "w3", t2).expect("sending");
    store
        .mark_sent(id5, "w3", "provider-5", at_after(t2, 4 * MIN))
        .expect("sent");
}

pub fn contact_log_counts_messages_to_customers(store: &dyn Store, org: i64) {
    let outbox = store.outbox(org, &OutboxFilter::default()).expect("outbox");
    let counted = |since: Timestamp| -> Vec<(String, Timestamp)> {
        let mut v: Vec<(i64, String, Timestamp)> = outbox
            .iter()
            .filter(|m| {
                matches!(m.record.channel, Channel::Email | Channel::Sms)
                    && matches!(
                        m.record.status,
                        MessageStatus::Queued
                            | MessageStatus::Claimed
                            | MessageStatus::Sending
                            | MessageStatus::Sent
                            | MessageStatus::InDoubt
                    )
            })
            .map(|m| {
                (
                    m.id,
                    m.record.customer.clone(),
                    m.record.sent_at.unwrap_or(m.record.not_before),
                )
            })
            .filter(|(_, _, t)| *t >= since)
            .collect();
        v.sort_by_key(|(id, _, _)| *id);
        v.into_iter().map(|(_, c, t)| (c, t)).collect()
    };
    let all = store.contact_log(org, at(-HOUR)).expect("contact log");
    assert_eq!(all, counted(at(-HOUR)));
    // m1 (sent), m5 and m6 (sent); not m2 (cancelled) nor m4 (failed).
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all.contains(&("C1".to_string(), at(MIN))),
        "m1 counts at its sent_at"
    );
    assert!(all.iter().all(|(c, _)| c == "C1"));
    assert_eq!(
        store.contact_log(org, at(4 * HOUR)).expect("contact log"),
        counted(at(4 * HOUR))
    );
    assert!(
        store
            .contact_log(org, at(100 * HOUR))
            .expect("contact log")
            .is_empty()
    );
}

pub fn tasks_and_charges_close_once(store: &dyn Store, org: i64) {
    let open = store.tasks(org, false).expect("tasks");
    let step_task = open
        .iter()
        .find(|t| t.record.kind == TaskKind::Step)
        .expect("step task")
        .clone();
    store
        .complete_task(org, step_task.id, "dave", at(5 * HOUR))
        .expect("complete");
    let ev = newest_event(store, org);
    assert_eq!(
        (ev.kind.as_str(), ev.customer.as_deref(), ev.actor.as_str()),
        ("task.completed", Some("C2"), "dave")
    );
    expect_conflict(
        store.complete_task(org, step_task.id, "dave", at(5 * HOUR)),
        "twice",
    );
    expect_not_found(
        store.complete_task(org, step_task.id + 1_000_000, "dave", now()),
        "task",
    );
    assert!(
        store
            .tasks(org, false)
            .expect("tasks")
            .iter()
            .all(|t| t.id != step_task.id),
        "done tasks are hidden unless asked for"
    );
    let done = store
        .tasks(org, true)
        .expect("tasks")
        .into_iter()
        .find(|t| t.id == step_task.id)
        .expect("done task");
    assert_eq!(
        done.record,
        Task {
            status: TaskStatus::Done,
            completed_at: Some(at(5 * HOUR)),
            completed_by: Some("dave".into()),
            ..step_task.record.clone()
        }
    );

    let fee = store.charges(org).expect("charges")[0].clone();
    store
        .waive_charge(org, fee.id, "goodwill", "erin", at(5 * HOUR))
        .expect("waive");
    let ev = newest_event(store, org);
    assert_eq!(
        (
            ev.kind.as_str(),
            ev.customer.as_deref(),
            ev.summary.as_str()
        ),
        (
            "charge.waived",
            Some("C1"),
            "Late fee of 40.00 EUR on invoice INV-1 waived: goodwill"
        )
    );
    expect_conflict(
        store.waive_charge(org, fee.id, "again", "erin", now()),
        "waiving twice",
    );
    expect_not_found(
        store.waive_charge(org, fee.id + 1_000_000, "x", "erin", now()),
        "charge",
    );
    assert_eq!(
        store.charges(org).expect("charges")[0].record,
        Charge {
            waived_at: Some(at(5 * HOUR)),
            waived_by: Some("erin".into()),
            waive_reason: Some("goodwill".into()),
            ..fee.record.clone()
        }
    );
}

/// RFC 8058 one-click unsubscribe by a message's token: the customer's
/// contacts at the recipient address (whatever its case) stop getting email,
/// once, logged; other contacts and customers are untouched.
pub fn one_click_unsubscribe(store: &dyn Store, org: i64) {
    // The link is clicked in an email that has gone out.
    let msg = OutboxMessage {
        contact: Some("K2".into()),
        recipient: "Billing@C2.example".into(),
        status: MessageStatus::Sent,
        sent_at: Some(now()),
        provider_id: Some("<sent@example>".into()),
        ..outbox_message("unsub-1", "C2", Channel::Email, &["INV-3"], now())
    };
    let write = PlannedWrite {
        steps: Vec::new(),
        message: Some(msg),
        task: None,
        charges: Vec::new(),
    };
    store
        .record_run(org, &[write], today(), ACTOR, now())
        .expect("queue a message to unsubscribe from");
    assert_eq!(
        store
            .unsubscribe("no-such-token", now())
            .expect("unknown token"),
        None
    );
    let opted_out = |key: &str| {
        store
            .contacts(org)
            .expect("contacts")
            .into_iter()
            .find(|c| c.external_id == key)
            .map(|c| c.preferences.email_opt_out)
            .expect("contact")
    };
    assert!(!opted_out("K2"));
    let t = at(7 * HOUR);
    let done = store
        .unsubscribe("tok-unsub-1", t)
        .expect("unsubscribe")
        .expect("a known token");
    assert_eq!(
        done,
        Unsubscribed {
            org,
            customer: "C2".into(),
            address: "Billing@C2.example".into(),
            changed: true,
        }
    );
    assert!(opted_out("K2"));
    assert!(
        !opted_out("K3"),
        "another address of the same customer keeps email"
    );
    assert!(!opted_out("K1"), "another customer keeps email");
    let again = store
        .unsubscribe("tok-unsub-1", at(8 * HOUR))
        .expect("unsubscribe again")
        .expect("a known token");
    assert!(!again.changed, "a repeated click changes nothing");
    let events: Vec<Event> = store
        .events(
            org,
            &EventFilter {
                entity_type: Some("contact".into()),
                entity_key: Some("K2".into()),
                ..EventFilter::default()
            },
        )
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == "contact.unsubscribed")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].customer.as_deref(), Some("C2"));
    assert!(
        events[0].summary.contains("Billing@C2.example"),
        "{}",
        events[0].summary
    );
}

pub fn bounces_open_tasks(store: &dyn Store, org: i64) {
    let bounce_tasks = |store: &dyn Store| -> Vec<Stored<Task>> {
        store
            .tasks(org, true)
            .expect("tasks")
            .into_iter()
            .filter(|t| t.record.kind == TaskKind::Bounce)
            .collect()
    };
    let t = at(6 * HOUR);
    store
        .record_bounce(org, "  Ana@EXAMPLE.com ", "550 no such user", t)
        .expect("bounce");
    assert_eq!(
        store.bounces(org).expect("bounces"),
        vec![Bounce {
            address: "ana@example.com".into(),
            at: t,
            reason: "550 no such user".into(),
            cleared_at: None,
        }]
    );
    // Both customers with a contact at the address (whatever its case) get a task.
    let tasks = bounce_tasks(store);
    assert_eq!(
        tasks
            .iter()
            .map(|t| t.record.customer.as_str())
            .collect::<Vec<_>>(),
        vec!["C1", "C2"]
    );
    assert!(tasks.iter().all(|x| x.record.status == TaskStatus::Open
        && x.record.title == "Email to ana@example.com bounced"
        && x.record.due_on == today()));
    assert!(
        tasks[1].record.detail.contains("Contact K3"),
        "{}",
        tasks[1].record.detail
    );
    let recorded = events_of(store, org, "bounce.recorded");
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].summary,
        "Email to ana@example.com bounced: 550 no such user"
    );

    // A repeat report while bouncing updates the bounce, no new tasks.
    store
        .record_bounce(org, "ana@example.com", "mailbox full", at_after(t, MIN))
        .expect("bounce again");
    assert_eq!(
        store.bounces(org).expect("bounces")[0].reason,
        "mailbox full"
    );
    assert_eq!(bounce_tasks(store).len(), 2);

    expect_unknown(
        store.clear_bounce(org, "nobody@example.com", "alice", t),
        "bounce",
        "nobody@example.com",
    );
    store
        .clear_bounce(org, "ANA@example.com", "alice", at_after(t, 2 * MIN))
        .expect("clear");
    assert_eq!(
        store.bounces(org).expect("bounces")[0].cleared_at,
        Some(at_after(t, 2 * MIN))
    );
    assert_eq!(newest_event(store, org).kind, "bounce.cleared");
    expect_conflict(
        store.clear_bounce(org, "ana@example.com", "alice", t),
        "clearing twice",
    );

    // Bouncing again after a clear: active again, new tasks.
    store
        .record_bounce(org, "ana@example.com", "550 gone", at_after(t, 3 * MIN))
        .expect("bounce after clear");
    assert_eq!(store.bounces(org).expect("bounces")[0].cleared_at, None);
    assert_eq!(bounce_tasks(store).len(), 4);
    // An address no contact uses is recorded, with no task.
    store
        .record_bounce(org, "stranger@example.org", "550", at_after(t, 4 * MIN))
        .expect("unknown address");
    assert_eq!(store.bounces(org).expect("bounces").len(), 2);
    assert_eq!(bounce_tasks(store).len(), 4);
}

pub fn dunning_tenants_are_isolated(store: &dyn Store, a: i64, first: &FirstRun) {
    let a_before = dunning_snapshot(store, a);
    let b = seed_dunning_org(store, "dunning-b");

    // B starts with nothing, whatever A holds under the same keys.
    let empty = dunning_snapshot(store, b);
    assert_eq!(empty.settings, DunningSettings::default());
    assert!(
        empty.policies.is_empty()
            && empty.assignments.is_empty()
            && empty.holds.is_empty()
            && empty.disputes.is_empty()
            && empty.promises.is_empty()
            && empty.steps.is_empty()
            && empty.outbox.is_empty()
            && empty.tasks.is_empty()
            && empty.charges.is_empty()
            && empty.bounces.is_empty()
            && empty.contact_log.is_empty(),
        "{empty:?}"
    );

    // B's org-scoped methods cannot reach A's rows by id or name.
    let hold = a_before.holds[0].id;
    let dispute = a_before.disputes[0].id;
    let promise = a_before.promises[1].id;
    let message = a_before.outbox[0].id;
    let task = a_before
        .tasks
        .iter()
        .find(|t| t.record.status == TaskStatus::Open)
        .expect("open task")
        .id;
    let charge = a_before.charges[1].id;
    expect_not_found(store.end_hold(b, hold, "mallory", now()), "hold");
    expect_not_found(
        store.resolve_dispute(b, dispute, "x", "mallory", now()),
        "dispute",
    );
    expect_not_found(
        store.cancel_promise(b, promise, "mallory", now()),
        "promise",
    );
    expect_not_found(store.complete_task(b, task, "mallory", now()), "task");
    expect_not_found(
        store.waive_charge(b, charge, "x", "mallory", now()),
        "charge",
    );
    expect_not_found(
        store.resolve_in_doubt(b, message, true, "mallory", now()),
        "message",
    );
    assert_eq!(store.message(b, message).expect("message"), None);
    expect_unknown(
        store.clear_bounce(b, "ana@example.com", "mallory", now()),
        "bounce",
        "ana@example.com",
    );
    expect_unknown(
        store.assign_policy(
            b,
            &AssignmentScope::Customer("C1".into()),
            Some("firm"),
            "mallory",
            now(),
        ),
        "policy",
        "firm",
    );

    // B runs exactly A's first run: keys are per organization, so all of it is written.
    let counts = store
        .record_run(b, &first.actions, today(), "runner-b", now())
        .expect("B's run");
    assert_eq!(counts, first.counts);
    store
        .put_policy(b, "firm", "# B's own firm policy\n", "bob", now())
        .expect("B's policy");
    store
        .record_bounce(b, "ana@example.com", "550", now())
        .expect("B's bounce");
    assert_eq!(
        dunning_snapshot(store, a),
        a_before,
        "B's writes changed A's reads"
    );
    let b_now = dunning_snapshot(store, b);
    let mut planned_messages: Vec<OutboxMessage> = first
        .actions
        .iter()
        .filter_map(|a| a.message.clone())
        .collect();
    planned_messages.reverse();
    assert_eq!(records(&b_now.outbox), planned_messages, "newest first");
    assert_eq!(b_now.steps.len(), 5);
    assert!(
        b_now
            .outbox
            .iter()
            .all(|m| a_before.outbox.iter().all(|x| x.id != m.id)),
        "ids are never shared"
    );
    assert!(
        store
            .events(b, &EventFilter::default())
            .expect("events")
            .iter()
            .all(|e| e.actor != "runner" && e.actor != "w1")
    );

    // Workers serve every organization and say which one a message belongs to.
    let claimed = claim(store, "wb", at(3 * HOUR));
    assert_eq!(claimed_keys(&claimed), vec!["m1", "m2"]);
    assert!(claimed.iter().all(|c| c.org == b));
    for c in &claimed {
        store
            .mark_sending(c.message.id, "wb", at(3 * HOUR))
            .expect("sending");
        store
            .mark_sent(c.message.id, "wb", "provider-b", at(3 * HOUR))
            .expect("sent");
    }
    assert_eq!(dunning_snapshot(store, a), a_before);
    assert!(
        store
            .events(a, &EventFilter::default())
            .expect("events")
            .iter()
            .all(|e| e.actor != "wb" && e.actor != "runner-b")
    );
    let orgs = store.organization_ids().expect("organization ids");
    assert!(orgs.contains(&a) && orgs.contains(&b));
    assert!(orgs.windows(2).all(|w| w[0] < w[1]));
}

/// Concurrent workers never claim the same message, and concurrent runs of
/// the same plan write each action once.
pub fn concurrent_workers_and_runs(store: &dyn Store) {
    const N: usize = 60;
    let c = seed_dunning_org(store, "dunning-c");
    let actions: Vec<PlannedWrite> = (0..N)
        .map(|i| {
            let invoice = ["INV-1", "INV-2", "INV-3"][i % 3];
            let customer = if invoice == "INV-3" { "C2" } else { "C1" };
            planned(
                vec![step_record(invoice, StepKey::Repeat { n: i as u32 + 1 })],
                Some(outbox_message(
                    &format!("c{i}"),
                    customer,
                    Channel::Email,
                    &[invoice],
                    now(),
                )),
                None,
                vec![],
            )
        })
        .collect();
    let counts: Vec<RunCounts> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| store.record_run(c, &actions, today(), "runner-c", now())))
            .collect();
        runs.into_iter()
            .map(|h| h.join().expect("run thread").expect("concurrent run"))
            .collect()
    });
    assert_eq!(counts.iter().map(|c| c.actions).sum::<u64>(), N as u64);
    assert_eq!(counts.iter().map(|c| c.already_done).sum::<u64>(), N as u64);
    assert_eq!(
        store
            .outbox(c, &OutboxFilter::default())
            .expect("outbox")
            .len(),
        N
    );
    assert_eq!(store.step_records(c).expect("steps").len(), N);

    let t = at(7 * HOUR);
    let claimed: Vec<Vec<i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|w| {
                s.spawn(move || {
                    let worker = format!("cw{w}");
                    let mut mine = Vec::new();
                    loop {
                        let batch = store
                            .claim_messages(&worker, t, at_after(t, 5 * MIN), 4)
                            .expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        for m in batch {
                            assert_eq!(m.org, c);
                            assert_eq!(
                                m.message.record.claimed_by.as_deref(),
                                Some(worker.as_str())
                            );
                            mine.push(m.message.id);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let mut all: Vec<i64> = claimed.into_iter().flatten().collect();
    all.sort_unstable();
    let total = all.len();
    all.dedup();
    assert_eq!(all.len(), total, "a message was claimed twice");
    assert_eq!(total, N);
}

/// Prediction models: versions increase per organization, the latest is read
/// back byte for byte, each save logs `model.trained`, organizations never
/// see each other's models; alert tasks (kind `alert`) are written once per key.
pub fn models_are_versioned_per_org(store: &dyn Store) {
    let a = seed_dunning_org(store, "models-a");
    let b = store
        .create_organization("models-b", "Models B", Currency::USD, "UTC", now())
        .expect("create organization")
        .id;
    assert_eq!(store.latest_model(a).expect("latest"), None);
    assert!(store.models(a).expect("models").is_empty());
    let card1 = r#"{"version":"arflow-predict/1","invoices":120}"#;
    let card2 = r#"{"version":"arflow-predict/1","invoices":150}"#;
    let model2 = r#"{"card":{"invoices":150},"trees":[1.5,-2.25e-7,"ünïcødé"]}"#;
    assert_eq!(
        store
            .save_model(a, card1, "{\"m\":1}", ACTOR, now())
            .expect("save 1"),
        1
    );
    let later = at_after(now(), 86_400);
    assert_eq!(
        store
            .save_model(a, card2, model2, ACTOR, later)
            .expect("save 2"),
        2
    );
    assert_eq!(
        store
            .save_model(b, card1, "{\"m\":\"b\"}", ACTOR, now())
            .expect("save b"),
        1
    );
    let latest = store.latest_model(a).expect("latest").expect("a model");
    assert_eq!(latest.version, 2);
    assert_eq!(latest.created_at, later);
    assert_eq!(latest.card, card2);
    assert_eq!(latest.model, model2);
    let listed = store.models(a).expect("models");
    assert_eq!(
        listed.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(listed[1].card, card1);
    assert_eq!(listed[1].created_at, now());
    // Tenant isolation: b sees only its own model.
    let in_b = store.latest_model(b).expect("latest b").expect("b's model");
    assert_eq!((in_b.version, in_b.model.as_str()), (1, "{\"m\":\"b\"}"));
    assert_eq!(store.models(b).expect("models b").len(), 1);
    let trained = events_of(store, a, "model.trained");
    assert_eq!(trained.len(), 2, "one event per saved model");
    assert!(trained.iter().any(|e| e.entity_key == "2"));
    assert!(events_of(store, b, "model.trained").len() == 1);
    // An unknown organization is an error, not a new tenant.
    expect_not_found(
        store.save_model(i64::MAX, card1, "{}", ACTOR, now()),
        "organization",
    );

    // Alert tasks go through record_run and are deduplicated by key.
    let task = Task {
        kind: TaskKind::Alert,
        title: "INV-1 unpaid past the customer's usual time".into(),
        ..step_task("alert:late_vs_usual:INV-1:2024-W24", "C1", &["INV-1"])
    };
    let write = planned(Vec::new(), None, Some(task.clone()), Vec::new());
    let first = store
        .record_run(a, std::slice::from_ref(&write), today(), ACTOR, now())
        .expect("record alert");
    assert_eq!((first.tasks, first.already_done), (1, 0));
    let again = store
        .record_run(a, &[write], today(), ACTOR, now())
        .expect("record alert again");
    assert_eq!((again.tasks, again.already_done), (0, 1));
    let alerts: Vec<Task> = store
        .tasks(a, true)
        .expect("tasks")
        .into_iter()
        .map(|t| t.record)
        .filter(|t| t.kind == TaskKind::Alert)
        .collect();
    assert_eq!(alerts, vec![task]);
    assert!(
        store
            .tasks(b, true)
            .expect("tasks b")
            .iter()
            .all(|t| t.record.kind != TaskKind::Alert)
    );
}

// ---- Accounts -------------------------------------------------------------
// Users, sessions, failed logins, API tokens, notes, task assignment and
// snoozing, Idempotency-Key replies, the ledger version and the audit-log
// filters, on two fresh organizations of their own ("accounts-a" and
// "accounts-b", seeded like the dunning story).

/// A stand-in Argon2id PHC string (the store never looks inside it).
fn phc(tag: &str) -> String {
    format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${tag}")
}

fn new_user(email: &str, name: &str, role: Role) -> NewUser {
    NewUser {
        email: email.into(),
        name: name.into(),
        role,
        password_hash: phc(name),
    }
}

fn session_for(user: &User, id_hash: &str, expires_at: Timestamp) -> Session {
    Session {
        id_hash: id_hash.into(),
        user_id: user.id,
        org: user.org,
        csrf_token: format!("csrf-{id_hash}"),
        created_at: now(),
        expires_at,
    }
}

fn token_for(user: &User, name: &str, hash: &str, scopes: &[TokenScope]) -> NewApiToken {
    NewApiToken {
        user_id: user.id,
        name: name.into(),
        token_hash: hash.into(),
        scopes: scopes.to_vec(),
        expires_at: None,
    }
}

fn user_by_id(store: &dyn Store, org: i64, id: i64) -> User {
    store.user(org, id).expect("user").expect("the user exists")
}

/// Every event of the organization, as text: what must never hold a secret.
fn log_text(store: &dyn Store, org: i64) -> String {
    serde_json::to_string(&store.events(org, &EventFilter::default()).expect("events"))
        .expect("events as JSON")
}

/// The account story, in order; each step relies on the ones before it.
pub fn accounts_work(store: &dyn Store) {
    let a = seed_dunning_org(store, "accounts-a");
    let b = seed_dunning_org(store, "accounts-b");
    let (alice, bob) = users_are_managed(store, a, b);
    sessions_expire_and_end(store, a, alice, bob);
    login_failures_are_counted(store);
    api_tokens_are_checked(store, a, alice, bob);
    notes_join_the_customer_timeline(store, a);
    tasks_are_assigned_and_snoozed(store, a);
    idempotent_replies_keep_the_first(store, a);
    ledger_version_grows_with_ledger_changes(store);
    audit_log_filters_and_pages(store, a);
    accounts_tenants_are_isolated(store, a, b);
}

/// Returns the ids of alice (admin) and bob (collector) in `a`.
pub fn users_are_managed(store: &dyn Store, a: i64, b: i64) -> (i64, i64) {
    assert!(store.users(a).expect("users").is_empty());
    let alice = store
        .create_user(
            a,
            &new_user(" Alice@Example.COM ", "Alice", Role::Admin),
            ACTOR,
            now(),
        )
        .expect("create alice");
    let bob = store
        .create_user(
            a,
            &new_user("bob@example.com", "Bob", Role::Collector),
            ACTOR,
            at(1),
        )
        .expect("create bob");
    let stored = user_by_id(store, a, alice);
    assert_eq!(
        stored,
        User {
            id: alice,
            org: a,
            email: "alice@example.com".into(),
            name: "Alice".into(),
            role: Role::Admin,
            password_hash: phc("Alice"),
            created_at: now(),
            disabled: false,
        }
    );
    assert_eq!(
        store.user_by_email("ALICE@example.com").expect("by email"),
        Some(stored.clone())
    );
    assert_eq!(
        store.user_by_email("nobody@example.com").expect("by email"),
        None
    );
    assert_eq!(
        store
            .users(a)
            .expect("users")
            .iter()
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>(),
        vec!["alice@example.com", "bob@example.com"],
        "sorted by email"
    );

    // An email is unique across the database, whatever its case.
    let events = event_count(store, b);
    match store.create_user(
        b,
        &new_user("ALICE@example.com", "Other", Role::Viewer),
        ACTOR,
        now(),
    ) {
        Err(StoreError::Conflict(m)) => {
            assert_eq!(m, "a user with email alice@example.com already exists");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(store.users(b).expect("users b").is_empty());
    assert_eq!(event_count(store, b), events, "a refused user logs nothing");
    expect_not_found(
        store.create_user(
            i64::MAX,
            &new_user("x@example.com", "X", Role::Viewer),
            ACTOR,
            now(),
        ),
        "organization",
    );

    let created = events_of(store, a, "user.created");
    assert_eq!(created.len(), 2);
    let ev = created
        .iter()
        .find(|e| e.entity_key == "alice@example.com")
        .expect("alice's event");
    assert_eq!(
        (ev.entity_type.as_str(), ev.actor.as_str()),
        ("user", ACTOR)
    );
    assert_eq!(
        ev.data,
        serde_json::json!({"name": "Alice", "role": "admin"})
    );

    // Role changes are logged with the diff; setting the same role is no change.
    store
        .set_role(a, bob, Role::Viewer, "alice@example.com", at(2))
        .expect("demote bob");
    assert_eq!(user_by_id(store, a, bob).role, Role::Viewer);
    let ev = newest_event(store, a);
    assert_eq!(
        (ev.kind.as_str(), ev.entity_key.as_str(), ev.actor.as_str()),
        ("user.updated", "bob@example.com", "alice@example.com")
    );
    assert_eq!(
        ev.data,
        serde_json::json!({"changes": {"role": {"from": "collector", "to": "viewer"}}})
    );
    let events = event_count(store, a);
    store
        .set_role(a, bob, Role::Viewer, ACTOR, at(3))
        .expect("same role");
    assert_eq!(event_count(store, a), events, "no change, no event");
    store
        .set_role(a, bob, Role::Collector, ACTOR, at(3))
        .expect("promote bob");

    // Disable and enable, each logged once.
    store
        .set_disabled(a, bob, true, ACTOR, at(4))
        .expect("disable");
    assert!(user_by_id(store, a, bob).disabled);
    assert_eq!(newest_event(store, a).kind, "user.disabled");
    let events = event_count(store, a);
    store
        .set_disabled(a, bob, true, ACTOR, at(5))
        .expect("disable again");
    assert_eq!(event_count(store, a), events);
    store
        .set_disabled(a, bob, false, ACTOR, at(6))
        .expect("enable");
    assert!(!user_by_id(store, a, bob).disabled);
    assert_eq!(newest_event(store, a).kind, "user.enabled");

    store
        .set_password(a, alice, &phc("new"), ACTOR, at(7))
        .expect("set password");
    assert_eq!(user_by_id(store, a, alice).password_hash, phc("new"));
    assert_eq!(newest_event(store, a).kind, "user.password_changed");

    let missing = alice + bob + 1_000;
    expect_not_found(
        store.set_password(a, missing, &phc("x"), ACTOR, now()),
        "user",
    );
    expect_not_found(
        store.set_role(a, missing, Role::Admin, ACTOR, now()),
        "user",
    );
    expect_not_found(store.set_disabled(a, missing, true, ACTOR, now()), "user");
    assert_eq!(store.user(a, missing).expect("user"), None);

    let log = log_text(store, a);
    assert!(
        !log.contains("argon2"),
        "a password hash reached the log: {log}"
    );
    (alice, bob)
}

pub fn sessions_expire_and_end(store: &dyn Store, a: i64, alice: i64, bob: i64) {
    let alice_user = user_by_id(store, a, alice);
    let s1 = session_for(&alice_user, "hash-s1", at(HOUR));
    store.create_session(&s1, now()).expect("create session");
    let ev = newest_event(store, a);
    assert_eq!(
        (ev.kind.as_str(), ev.actor.as_str(), ev.entity_key.as_str()),
        ("user.logged_in", "alice@example.com", "alice@example.com")
    );
    assert_eq!(
        store.session("hash-s1", at(HOUR - 1)).expect("session"),
        Some((s1.clone(), alice_user.clone()))
    );
    assert_eq!(
        store.session("hash-s1", at(HOUR)).expect("session"),
        None,
        "expired"
    );
    assert_eq!(store.session("no-such-hash", now()).expect("session"), None);
    expect_dunning_constraint(
        store.create_session(&s1, now()),
        "sessions_id_hash_key",
        "a session with this id already exists",
    );

    // Sliding expiry.
    store
        .extend_session("hash-s1", at(2 * HOUR))
        .expect("extend");
    let (extended, _) = store
        .session("hash-s1", at(HOUR))
        .expect("session")
        .expect("extended session");
    assert_eq!(extended.expires_at, at(2 * HOUR));
    store
        .extend_session("no-such-hash", at(2 * HOUR))
        .expect("extending nothing is harmless");

    // A password change ends every session of the user, not others'.
    let bob_user = user_by_id(store, a, bob);
    store
        .create_session(&session_for(&alice_user, "hash-s2", at(HOUR)), now())
        .expect("second session");
    store
        .create_session(&session_for(&bob_user, "hash-bob", at(HOUR)), now())
        .expect("bob's session");
    store
        .set_password(a, alice, &phc("newer"), ACTOR, at(10))
        .expect("set password");
    assert_eq!(store.session("hash-s1", at(11)).expect("session"), None);
    assert_eq!(store.session("hash-s2", at(11)).expect("session"), None);
    assert!(
        store
            .session("hash-bob", at(11))
            .expect("session")
            .is_some()
    );
    assert_eq!(
        newest_event(store, a).data,
        serde_json::json!({"sessions_ended": 2})
    );

    // Disabling ends the sessions (enabling again does not bring them back)
    // and refuses new ones.
    store
        .set_disabled(a, bob, true, ACTOR, at(12))
        .expect("disable bob");
    assert_eq!(store.session("hash-bob", at(13)).expect("session"), None);
    expect_conflict(
        store.create_session(&session_for(&bob_user, "hash-bob-2", at(HOUR)), now()),
        "session of a disabled user",
    );
    store
        .set_disabled(a, bob, false, ACTOR, at(14))
        .expect("enable bob");
    assert_eq!(store.session("hash-bob", at(15)).expect("session"), None);

    // Logging out deletes and logs once.
    let alice_user = user_by_id(store, a, alice);
    store
        .create_session(&session_for(&alice_user, "hash-s3", at(HOUR)), now())
        .expect("third session");
    store.delete_session("hash-s3", at(20)).expect("log out");
    assert_eq!(store.session("hash-s3", at(21)).expect("session"), None);
    let ev = newest_event(store, a);
    assert_eq!(
        (ev.kind.as_str(), ev.actor.as_str()),
        ("user.logged_out", "alice@example.com")
    );
    let events = event_count(store, a);
    store
        .delete_session("hash-s3", at(22))
        .expect("log out again");
    assert_eq!(event_count(store, a), events, "nothing to log out");

    // Expired sessions are swept; live ones stay.
    store
        .create_session(&session_for(&alice_user, "hash-old", at(HOUR)), now())
        .expect("old session");
    store
        .create_session(&session_for(&alice_user, "hash-new", at(3 * HOUR)), now())
        .expect("new session");
    assert_eq!(
        store.delete_expired_sessions(at(2 * HOUR)).expect("sweep"),
        1
    );
    assert_eq!(
        store
            .delete_expired_sessions(at(2 * HOUR))
            .expect("sweep again"),
        0
    );
    assert!(
        store
            .session("hash-new", at(2 * HOUR))
            .expect("session")
            .is_some()
    );
    store.delete_session("hash-new", at(30)).expect("log out");

    // Sessions name an existing user of their organization.
    let mut stray = session_for(&alice_user, "hash-stray", at(HOUR));
    stray.user_id = alice + bob + 1_000;
    expect_not_found(store.create_session(&stray, now()), "user");
}

pub fn login_failures_are_counted(store: &dyn Store) {
    let window = jiff::SignedDuration::from_mins(15);
    for (i, ip) in ["203.0.113.1", "203.0.113.2", "203.0.113.1"]
        .iter()
        .enumerate()
    {
        store
            .record_login_failure("Mallory@Example.com", ip, at(60 * i as i64))
            .expect("record failure");
    }
    assert_eq!(
        store
            .login_failures("mallory@example.com", at(120), window)
            .expect("count"),
        3
    );
    assert_eq!(
        store
            .login_failures(
                "MALLORY@example.com",
                at(120),
                jiff::SignedDuration::from_secs(90)
            )
            .expect("count"),
        2,
        "only the failures within the window"
    );
    assert_eq!(
        store
            .login_failures("alice@example.com", at(120), window)
            .expect("count"),
        0
    );
    store
        .clear_login_failures("mallory@example.com")
        .expect("clear");
    assert_eq!(
        store
            .login_failures("mallory@example.com", at(120), window)
            .expect("count"),
        0
    );

    // Failures are kept for a day.
    store
        .record_login_failure("eve@example.com", "198.51.100.7", now())
        .expect("record");
    store
        .record_login_failure("eve@example.com", "198.51.100.7", at(25 * HOUR))
        .expect("record a day later");
    assert_eq!(
        store
            .login_failures(
                "eve@example.com",
                at(25 * HOUR),
                jiff::SignedDuration::from_hours(48)
            )
            .expect("count"),
        1
    );
    store
        .clear_login_failures("eve@example.com")
        .expect("clear");
}

pub fn api_tokens_are_checked(store: &dyn Store, a: i64, alice: i64, bob: i64) {
    let alice_user = user_by_id(store, a, alice);
    let id = store
        .create_api_token(
            a,
            &token_for(
                &alice_user,
                "CI export",
                "tok-hash-1",
                &[TokenScope::Write, TokenScope::Read, TokenScope::Write],
            ),
            "alice@example.com",
            now(),
        )
        .expect("create token");
    let listed = store.api_tokens(a).expect("tokens");
    assert_eq!(
        listed,
        vec![ApiToken {
            id,
            org: a,
            user_id: alice,
            name: "CI export".into(),
            token_hash: "tok-hash-1".into(),
            scopes: vec![TokenScope::Read, TokenScope::Write],
            created_at: now(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        }]
    );
    let ev = newest_event(store, a);
    assert_eq!(
        (
            ev.kind.as_str(),
            ev.entity_type.as_str(),
            ev.entity_key.clone()
        ),
        ("api_token.created", "api_token", id.to_string())
    );
    assert_eq!(ev.data["name"], "CI export");
    assert_eq!(ev.data["scopes"], serde_json::json!(["read", "write"]));
    assert!(
        !log_text(store, a).contains("tok-hash-1"),
        "a token hash reached the log"
    );

    // Lookup, with the last use written at most once a minute.
    let (found, owner) = store
        .api_token_by_hash("tok-hash-1", at(100))
        .expect("lookup")
        .expect("a live token");
    assert_eq!((found.id, owner.id), (id, alice));
    assert_eq!(found.last_used_at, Some(at(100)));
    let (again, _) = store
        .api_token_by_hash("tok-hash-1", at(130))
        .expect("lookup")
        .expect("a live token");
    assert_eq!(
        again.last_used_at,
        Some(at(100)),
        "not written again within a minute"
    );
    assert_eq!(
        store.api_tokens(a).expect("tokens")[0].last_used_at,
        Some(at(100))
    );
    let (later, _) = store
        .api_token_by_hash("tok-hash-1", at(160))
        .expect("lookup")
        .expect("a live token");
    assert_eq!(later.last_used_at, Some(at(160)));
    assert_eq!(
        store
            .api_token_by_hash("no-such-hash", now())
            .expect("lookup"),
        None
    );

    // Expiry.
    let expiring = store
        .create_api_token(
            a,
            &NewApiToken {
                expires_at: Some(at(HOUR)),
                ..token_for(&alice_user, "short", "tok-hash-2", &[TokenScope::Read])
            },
            ACTOR,
            now(),
        )
        .expect("expiring token");
    assert!(
        store
            .api_token_by_hash("tok-hash-2", at(HOUR - 1))
            .expect("lookup")
            .is_some()
    );
    assert_eq!(
        store
            .api_token_by_hash("tok-hash-2", at(HOUR))
            .expect("lookup"),
        None
    );

    // A disabled owner's tokens are refused until the owner is enabled.
    let bob_user = user_by_id(store, a, bob);
    store
        .create_api_token(
            a,
            &token_for(&bob_user, "bob's", "tok-hash-3", &[TokenScope::Read]),
            ACTOR,
            now(),
        )
        .expect("bob's token");
    store
        .set_disabled(a, bob, true, ACTOR, at(200))
        .expect("disable bob");
    assert_eq!(
        store
            .api_token_by_hash("tok-hash-3", at(201))
            .expect("lookup"),
        None
    );
    store
        .set_disabled(a, bob, false, ACTOR, at(202))
        .expect("enable bob");
    assert!(
        store
            .api_token_by_hash("tok-hash-3", at(203))
            .expect("lookup")
            .is_some()
    );

    // Revoking: once, then refused.
    store
        .revoke_api_token(a, id, "alice@example.com", at(300))
        .expect("revoke");
    assert_eq!(
        store
            .api_token_by_hash("tok-hash-1", at(301))
            .expect("lookup"),
        None
    );
    let revoked = store
        .api_tokens(a)
        .expect("tokens")
        .into_iter()
        .find(|t| t.id == id)
        .expect("still listed");
    assert_eq!(revoked.revoked_at, Some(at(300)));
    let ev = newest_event(store, a);
    assert_eq!(
        (ev.kind.as_str(), ev.entity_key.clone()),
        ("api_token.revoked", id.to_string())
    );
    expect_conflict(
        store.revoke_api_token(a, id, ACTOR, at(301)),
        "revoking twice",
    );
    expect_not_found(
        store.revoke_api_token(a, id + expiring + 1_000, ACTOR, now()),
        "API token",
    );

    // A token needs an owner in the organization and at least one scope.
    let mut orphan = token_for(&alice_user, "orphan", "tok-hash-4", &[TokenScope::Read]);
    orphan.user_id = alice + bob + 1_000;
    expect_not_found(store.create_api_token(a, &orphan, ACTOR, now()), "user");
    expect_dunning_constraint(
        store.create_api_token(
            a,
            &token_for(&alice_user, "none", "tok-hash-5", &[]),
            ACTOR,
            now(),
        ),
        "api_tokens_scopes_known",
        "an API token's scopes must be read, write or both",
    );
    assert_eq!(store.api_tokens(a).expect("tokens").len(), 3);
}

pub fn notes_join_the_customer_timeline(store: &dyn Store, a: i64) {
    let note = |customer: &str, invoice: Option<&str>, body: &str, t: Timestamp| Note {
        customer: customer.into(),
        invoice: invoice.map(str::to_owned),
        author: "alice@example.com".into(),
        body: body.into(),
        created_at: t,
    };
    assert!(store.notes(a, "C1").expect("notes").is_empty());
    expect_unknown(
        store.add_note(a, &note("C9", None, "hello", now())),
        "customer",
        "C9",
    );
    expect_unknown(
        store.add_note(a, &note("C1", Some("INV-9"), "hello", now())),
        "invoice",
        "INV-9",
    );
    expect_conflict(
        store.add_note(a, &note("C1", Some("INV-3"), "hello", now())),
        "another customer's invoice",
    );
    expect_dunning_constraint(
        store.add_note(a, &note("C1", None, "  ", now())),
        "notes_body_nonempty",
        "a note cannot be empty",
    );
    let later = note(
        "C1",
        Some("INV-2"),
        "Promised to pay Friday — «sicher» 🙏",
        at(10 * MIN),
    );
    let earlier = note("C1", None, "Called, left a voicemail.", at(5 * MIN));
    let later_id = store.add_note(a, &later).expect("add note");
    let earlier_id = store.add_note(a, &earlier).expect("add note");
    assert_eq!(
        store.notes(a, "C1").expect("notes"),
        vec![
            Stored {
                id: earlier_id,
                record: earlier
            },
            Stored {
                id: later_id,
                record: later.clone()
            },
        ],
        "oldest first"
    );
    assert!(store.notes(a, "C2").expect("notes").is_empty());
    let timeline = store
        .events(
            a,
            &EventFilter {
                customer: Some("C1".into()),
                kind_prefix: Some("note.".into()),
                ..EventFilter::default()
            },
        )
        .expect("timeline");
    assert_eq!(timeline.len(), 2);
    let ev = timeline
        .iter()
        .find(|e| e.entity_key == later_id.to_string())
        .expect("event");
    assert_eq!(
        (ev.kind.as_str(), ev.actor.as_str(), ev.recorded_at),
        ("note.added", "alice@example.com", at(10 * MIN))
    );
    assert_eq!(
        ev.data,
        serde_json::json!({"body": later.body, "invoice": "INV-2"})
    );
}

pub fn tasks_are_assigned_and_snoozed(store: &dyn Store, a: i64) {
    let write = planned(
        Vec::new(),
        None,
        Some(step_task("acct-task-1", "C1", &["INV-1"])),
        Vec::new(),
    );
    store
        .record_run(a, &[write], today(), ACTOR, now())
        .expect("open a task");
    let task = |store: &dyn Store| {
        store
            .tasks(a, true)
            .expect("tasks")
            .into_iter()
            .find(|t| t.record.key == "acct-task-1")
            .expect("the task")
    };
    let id = task(store).id;
    store
        .assign_task(
            a,
            id,
            Some("bob@example.com"),
            "alice@example.com",
            at(HOUR),
        )
        .expect("assign");
    assert_eq!(
        task(store).record.assignee.as_deref(),
        Some("bob@example.com")
    );
    let ev = newest_event(store, a);
    assert_eq!(
        (ev.kind.as_str(), ev.customer.as_deref(), ev.actor.as_str()),
        ("task.assigned", Some("C1"), "alice@example.com")
    );
    assert_eq!(
        ev.data,
        serde_json::json!({"changes": {"assignee": {"from": "anna", "to": "bob@example.com"}}})
    );
    let events = event_count(store, a);
    store
        .assign_task(a, id, Some("bob@example.com"), ACTOR, at(HOUR))
        .expect("same assignee");
    assert_eq!(event_count(store, a), events, "no change, no event");
    store
        .assign_task(a, id, None, ACTOR, at(HOUR))
        .expect("unassign");
    assert_eq!(task(store).record.assignee, None);

    store
        .snooze_task(
            a,
            id,
            Some(date(2024, 6, 20)),
            "bob@example.com",
            at(2 * HOUR),
        )
        .expect("snooze");
    assert_eq!(task(store).record.snoozed_until, Some(date(2024, 6, 20)));
    let ev = newest_event(store, a);
    assert_eq!(
        (ev.kind.as_str(), ev.customer.as_deref()),
        ("task.snoozed", Some("C1"))
    );
    assert_eq!(
        ev.data,
        serde_json::json!({"changes": {"snoozed_until": {"from": "2024-06-12", "to": "2024-06-20"}}})
    );
    store
        .snooze_task(a, id, None, ACTOR, at(2 * HOUR))
        .expect("wake");
    assert_eq!(task(store).record.snoozed_until, None);

    expect_not_found(
        store.assign_task(a, id + 1_000_000, None, ACTOR, now()),
        "task",
    );
    expect_not_found(
        store.snooze_task(a, id + 1_000_000, None, ACTOR, now()),
        "task",
    );
    // Completing with a note is one change: a note that cannot be kept
    // leaves the task open, and a done task gets no second note.
    let done_note = |invoice: &str| Note {
        customer: "C1".into(),
        invoice: Some(invoice.into()),
        author: ACTOR.into(),
        body: "Task done: called Ana.".into(),
        created_at: at(3 * HOUR),
    };
    let notes_before = store.notes(a, "C1").expect("notes").len();
    expect_unknown(
        store.complete_task_with_note(a, id, ACTOR, at(3 * HOUR), &done_note("INV-9")),
        "invoice",
        "INV-9",
    );
    assert_eq!(task(store).record.status, TaskStatus::Open, "rolled back");
    assert_eq!(store.notes(a, "C1").expect("notes").len(), notes_before);
    let note_id = store
        .complete_task_with_note(a, id, ACTOR, at(3 * HOUR), &done_note("INV-1"))
        .expect("complete with a note");
    assert_eq!(task(store).record.status, TaskStatus::Done);
    let notes = store.notes(a, "C1").expect("notes");
    assert_eq!(notes.len(), notes_before + 1);
    assert_eq!(notes.last().map(|n| n.id), Some(note_id));
    expect_conflict(
        store.complete_task_with_note(a, id, ACTOR, at(3 * HOUR), &done_note("INV-1")),
        "completing twice",
    );
    assert_eq!(store.notes(a, "C1").expect("notes").len(), notes_before + 1);
    expect_conflict(
        store.assign_task(a, id, Some("x"), ACTOR, now()),
        "assigning a done task",
    );
    expect_conflict(
        store.snooze_task(a, id, Some(date(2024, 7, 1)), ACTOR, now()),
        "snoozing a done task",
    );
}

pub fn idempotent_replies_keep_the_first(store: &dyn Store, a: i64) {
    assert_eq!(store.idempotent_reply(a, "key-1").expect("reply"), None);
    let first = IdempotentReply {
        request_hash: "req-hash-1".into(),
        status: 201,
        body: r#"{"id":7,"note":"ünïcødé"}"#.into(),
        created_at: now(),
    };
    assert!(
        store
            .save_idempotent_reply(a, "key-1", &first)
            .expect("save")
    );
    let second = IdempotentReply {
        request_hash: "req-hash-2".into(),
        status: 409,
        body: "{}".into(),
        created_at: at(1),
    };
    assert!(
        !store
            .save_idempotent_reply(a, "key-1", &second)
            .expect("save again")
    );
    assert_eq!(
        store.idempotent_reply(a, "key-1").expect("reply"),
        Some(first)
    );
    expect_not_found(
        store.save_idempotent_reply(i64::MAX, "key-1", &second),
        "organization",
    );
    expect_dunning_constraint(
        store.save_idempotent_reply(
            a,
            "key-2",
            &IdempotentReply {
                status: 42,
                ..second
            },
        ),
        "idempotency_replies_status_known",
        "a stored reply's status must be an HTTP status (100-599)",
    );
}

pub fn ledger_version_grows_with_ledger_changes(store: &dyn Store) {
    let org = store
        .create_organization(
            "ledger-version",
            "Version AG",
            Currency::EUR,
            "Europe/Berlin",
            now(),
        )
        .expect("create organization");
    let v = |store: &dyn Store| store.ledger_version(org.id).expect("ledger version");
    assert_eq!(v(store), 0);
    let cs = ChangeSet {
        customers: vec![Change::Insert(customer(
            "V1",
            "Version Kunde",
            Currency::EUR,
        ))],
        contacts: vec![Change::Insert(Contact {
            customer: "V1".into(),
            external_id: "VK1".into(),
            name: "Vera".into(),
            email: Some("vera@example.com".into()),
            phone: None,
            role: None,
            is_primary: true,
            preferences: ChannelPreferences::default(),
        })],
        invoices: vec![Change::Insert(invoice(
            "V-INV-1",
            "V1",
            Currency::EUR,
            5_000,
            date(2024, 5, 1),
            date(2024, 5, 31),
        ))],
        ..ChangeSet::default()
    };
    store.apply(org.id, &cs, ACTOR, now()).expect("apply");
    assert_eq!(v(store), 1);

    // Reads, empty and failed change sets, and non-ledger writes leave it.
    store.customers(org.id).expect("customers");
    store.invoices(org.id).expect("invoices");
    store.ledger_facts(org.id).expect("facts");
    store
        .events(org.id, &EventFilter::default())
        .expect("events");
    store
        .apply(org.id, &ChangeSet::default(), ACTOR, now())
        .expect("empty apply");
    let bad = ChangeSet {
        invoices: vec![Change::Insert(invoice(
            "V-INV-2",
            "NOPE",
            Currency::EUR,
            1,
            date(2024, 5, 1),
            date(2024, 5, 31),
        ))],
        ..ChangeSet::default()
    };
    assert!(store.apply(org.id, &bad, ACTOR, now()).is_err());
    store
        .create_hold(
            org.id,
            &Hold {
                scope: Scope::Customer("V1".into()),
                reason: "talking".into(),
                created_at: now(),
                created_by: ACTOR.into(),
                expires_on: None,
                ended_at: None,
                ended_by: None,
            },
            now(),
        )
        .expect("hold");
    assert_eq!(v(store), 1);

    // Another organization's changes are its own.
    let other = seed_dunning_org(store, "ledger-version-other");
    assert_eq!(v(store), 1);
    assert_eq!(store.ledger_version(other).expect("other version"), 1);

    let payment = ChangeSet {
        payments: vec![Change::Insert(payment(
            "V-PAY-1",
            "V1",
            Currency::EUR,
            5_000,
        ))],
        allocations: vec![alloc(
            "V-INV-1",
            AllocationSource::Payment("V-PAY-1".into()),
            5_000,
        )],
        ..ChangeSet::default()
    };
    store.apply(org.id, &payment, ACTOR, at(1)).expect("pay");
    assert_eq!(v(store), 2);

    // Changing the organization changes what reports say.
    let mut changed = org.clone();
    changed.time_zone = "America/New_York".into();
    store
        .update_organization(&changed, ACTOR, at(2))
        .expect("update organization");
    assert_eq!(v(store), 3);
    store
        .update_organization(&changed, ACTOR, at(3))
        .expect("same organization");
    assert_eq!(v(store), 3);

    // An unsubscribe opts a contact out: a ledger change.
    let msg = OutboxMessage {
        contact: Some("VK1".into()),
        recipient: "vera@example.com".into(),
        status: MessageStatus::Sent,
        sent_at: Some(now()),
        ..outbox_message("v-unsub", "V1", Channel::Email, &["V-INV-1"], now())
    };
    store
        .record_run(
            org.id,
            &[planned(Vec::new(), Some(msg), None, Vec::new())],
            today(),
            ACTOR,
            now(),
        )
        .expect("queue a message");
    assert_eq!(v(store), 3, "a dunning run is not a ledger change");
    store
        .unsubscribe("tok-v-unsub", at(4))
        .expect("unsubscribe");
    assert_eq!(v(store), 4);
    store
        .unsubscribe("tok-v-unsub", at(5))
        .expect("unsubscribe again");
    assert_eq!(v(store), 4, "nothing changed");

    expect_not_found(store.ledger_version(i64::MAX), "organization");
}

pub fn audit_log_filters_and_pages(store: &dyn Store, a: i64) {
    let all = store.events(a, &EventFilter::default()).expect("events");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    // Kind prefix and actor.
    let users = store
        .events(
            a,
            &EventFilter {
                kind_prefix: Some("user.".into()),
                ..EventFilter::default()
            },
        )
        .expect("user events");
    let expected: Vec<i64> = all
        .iter()
        .filter(|e| e.kind.starts_with("user."))
        .map(|e| e.id)
        .collect();
    assert_eq!(users.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
    assert!(users.iter().any(|e| e.kind == "user.logged_in"));
    let invoices = store
        .events(
            a,
            &EventFilter {
                kind_prefix: Some("invoice".into()),
                ..EventFilter::default()
            },
        )
        .expect("invoice events");
    assert_eq!(invoices.len(), 3, "the seed's three invoices");
    assert!(invoices.iter().all(|e| e.kind == "invoice.created"));
    let by_alice = store
        .events(
            a,
            &EventFilter {
                actor: Some("alice@example.com".into()),
                ..EventFilter::default()
            },
        )
        .expect("alice's events");
    let expected: Vec<i64> = all
        .iter()
        .filter(|e| e.actor == "alice@example.com")
        .map(|e| e.id)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(by_alice.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
    assert!(
        store
            .events(
                a,
                &EventFilter {
                    actor: Some("alice".into()),
                    ..EventFilter::default()
                },
            )
            .expect("events")
            .is_empty(),
        "the actor matches exactly"
    );
    let combined = store
        .events(
            a,
            &EventFilter {
                actor: Some("alice@example.com".into()),
                kind_prefix: Some("user.".into()),
                ..EventFilter::default()
            },
        )
        .expect("events");
    assert!(!combined.is_empty());
    assert!(
        combined
            .iter()
            .all(|e| e.actor == "alice@example.com" && e.kind.starts_with("user."))
    );

    // Keyset paging: pages of 4, each before the oldest id of the last.
    let mut paged: Vec<i64> = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .events(
                a,
                &EventFilter {
                    before_id,
                    limit: Some(4),
                    ..EventFilter::default()
                },
            )
            .expect("page");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        paged.extend(page.iter().map(|e| e.id));
    }
    assert_eq!(paged, all.iter().map(|e| e.id).collect::<Vec<_>>());
    let oldest_users = store
        .events(
            a,
            &EventFilter {
                kind_prefix: Some("user.".into()),
                before_id: Some(users[1].id),
                ..EventFilter::default()
            },
        )
        .expect("events");
    assert_eq!(oldest_users.len(), users.len() - 2);
}

#[derive(Debug, PartialEq)]
struct AccountSnapshot {
    users: Vec<User>,
    tokens: Vec<ApiToken>,
    notes: Vec<Stored<Note>>,
    tasks: Vec<Stored<Task>>,
    reply: Option<IdempotentReply>,
    ledger_version: i64,
    events: usize,
}

fn account_snapshot(store: &dyn Store, org: i64) -> AccountSnapshot {
    AccountSnapshot {
        users: store.users(org).expect("users"),
        tokens: store.api_tokens(org).expect("tokens"),
        notes: store.notes(org, "CB").expect("notes"),
        tasks: store.tasks(org, true).expect("tasks"),
        reply: store.idempotent_reply(org, "key-b").expect("reply"),
        ledger_version: store.ledger_version(org).expect("ledger version"),
        events: event_count(store, org),
    }
}

pub fn accounts_tenants_are_isolated(store: &dyn Store, a: i64, b: i64) {
    // B's own user, token, customer, note, task and reply.
    let carol = store
        .create_user(
            b,
            &new_user("carol@example.com", "Carol", Role::Admin),
            ACTOR,
            now(),
        )
        .expect("create carol");
    let carol_user = user_by_id(store, b, carol);
    let token = store
        .create_api_token(
            b,
            &token_for(&carol_user, "b", "tok-hash-b", &[TokenScope::Read]),
            ACTOR,
            now(),
        )
        .expect("b's token");
    let cs = ChangeSet {
        customers: vec![Change::Insert(customer("CB", "Only in B", Currency::EUR))],
        ..ChangeSet::default()
    };
    store.apply(b, &cs, ACTOR, now()).expect("b's customer");
    let note = Note {
        customer: "CB".into(),
        invoice: None,
        author: "carol@example.com".into(),
        body: "B's note".into(),
        created_at: now(),
    };
    store.add_note(b, &note).expect("b's note");
    let write = planned(
        Vec::new(),
        None,
        Some(step_task("task-b", "C1", &["INV-1"])),
        Vec::new(),
    );
    store
        .record_run(b, &[write], today(), ACTOR, now())
        .expect("b's task");
    let task = store
        .tasks(b, true)
        .expect("tasks")
        .into_iter()
        .find(|t| t.record.key == "task-b")
        .expect("b's task")
        .id;
    let reply = IdempotentReply {
        request_hash: "b".into(),
        status: 200,
        body: "b".into(),
        created_at: now(),
    };
    assert!(
        store
            .save_idempotent_reply(b, "key-b", &reply)
            .expect("b's reply")
    );

    let b_before = account_snapshot(store, b);
    let a_version = store.ledger_version(a).expect("a's version");

    // Every org-scoped method, asked in A about B's ids and keys.
    assert_eq!(store.user(a, carol).expect("user"), None);
    assert!(store.users(a).expect("users").iter().all(|u| u.org == a));
    expect_not_found(
        store.set_password(a, carol, &phc("x"), ACTOR, at(1)),
        "user",
    );
    expect_not_found(store.set_role(a, carol, Role::Viewer, ACTOR, at(1)), "user");
    expect_not_found(store.set_disabled(a, carol, true, ACTOR, at(1)), "user");
    expect_not_found(
        store.create_session(
            &Session {
                org: a,
                ..session_for(&carol_user, "hash-cross", at(HOUR))
            },
            at(1),
        ),
        "user",
    );
    assert_eq!(store.session("hash-cross", at(2)).expect("session"), None);
    expect_not_found(
        store.create_api_token(
            a,
            &token_for(&carol_user, "x", "tok-hash-cross", &[TokenScope::Read]),
            ACTOR,
            at(1),
        ),
        "user",
    );
    assert!(
        store
            .api_tokens(a)
            .expect("tokens")
            .iter()
            .all(|t| t.org == a)
    );
    expect_not_found(store.revoke_api_token(a, token, ACTOR, at(1)), "API token");
    assert!(store.notes(a, "CB").expect("notes").is_empty());
    expect_unknown(store.add_note(a, &note), "customer", "CB");
    expect_not_found(store.assign_task(a, task, Some("x"), ACTOR, at(1)), "task");
    expect_not_found(
        store.snooze_task(a, task, Some(date(2024, 7, 1)), ACTOR, at(1)),
        "task",
    );
    assert_eq!(store.idempotent_reply(a, "key-b").expect("reply"), None);
    // The same key in A is A's own.
    let a_reply = IdempotentReply {
        request_hash: "a".into(),
        ..reply.clone()
    };
    assert!(
        store
            .save_idempotent_reply(a, "key-b", &a_reply)
            .expect("a's reply")
    );
    assert_eq!(
        store.idempotent_reply(a, "key-b").expect("reply"),
        Some(a_reply)
    );
    // A's ledger changes are not B's.
    let cs = ChangeSet {
        customers: vec![Change::Insert(customer("CA", "Only in A", Currency::EUR))],
        ..ChangeSet::default()
    };
    store.apply(a, &cs, ACTOR, at(1)).expect("a's customer");
    assert_eq!(store.ledger_version(a).expect("a's version"), a_version + 1);

    assert_eq!(account_snapshot(store, b), b_before, "B changed through A");
    assert!(
        store
            .events(
                a,
                &EventFilter {
                    kind_prefix: Some("user.".into()),
                    ..EventFilter::default()
                },
            )
            .expect("events")
            .iter()
            .all(|e| e.entity_key != "carol@example.com"),
        "B's users in A's log"
    );
    // B's secrets still work where they belong.
    let (found, owner) = store
        .api_token_by_hash("tok-hash-b", at(5))
        .expect("lookup")
        .expect("b's token");
    assert_eq!((found.org, owner.id), (b, carol));
}
