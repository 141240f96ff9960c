//! The shared conformance suite: one story, run against every backend.
//!
//! It assumes a fresh store (new file or database) and panics with a
//! message on the first broken expectation, as tests do.

use arflow_domain::fx::{FxRate, Rate};
use arflow_domain::ledger::Closure;
use arflow_domain::model::{
    Allocation, AllocationSource, ChannelPreferences, Contact, CreditNote, Customer, Invoice,
    InvoiceStatus, Organization, Payment, Stored,
};
use arflow_domain::money::Currency;
use jiff::Timestamp;
use jiff::civil::{Date, date};

use crate::{Change, ChangeSet, EventFilter, Store, StoreError};

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
    reads_are_scoped_to_the_organization(store, org.id);
    ledger_facts_match_the_records(store, org.id);
    organization_can_be_updated(store, &org);
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

pub fn reads_are_scoped_to_the_organization(store: &dyn Store, org: i64) {
    let other = org + 1_000_000;
    assert!(store.customers(other).expect("customers").is_empty());
    assert!(store.contacts(other).expect("contacts").is_empty());
    assert!(store.invoices(other).expect("invoices").is_empty());
    assert!(store.credit_notes(other).expect("credit notes").is_empty());
    assert!(store.payments(other).expect("payments").is_empty());
    assert!(store.allocations(other).expect("allocations").is_empty());
    assert!(store.fx_rates(other).expect("fx rates").is_empty());
    assert!(
        store
            .events(other, &EventFilter::default())
            .expect("events")
            .is_empty()
    );
    assert!(
        store.ledger_facts(other).is_err(),
        "ledger facts of an unknown organization"
    );

    // Another organization cannot update this one's rows by id.
    let inv = store.invoices(org).expect("invoices").remove(0);
    let mut after = inv.record.clone();
    after.total += 1;
    let cs = ChangeSet {
        invoices: vec![Change::Update {
            id: inv.id,
            before: inv.record.clone(),
            after,
        }],
        ..ChangeSet::default()
    };
    let err = store
        .apply(other, &cs, ACTOR, now())
        .expect_err("cross-organization update");
    assert!(
        matches!(
            err,
            StoreError::NotFound { .. } | StoreError::UnknownReference { .. }
        ),
        "{err:?}"
    );
    assert_eq!(store.invoices(org).expect("invoices")[0], inv);
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

pub fn organization_can_be_updated(store: &dyn Store, org: &Organization) {
    let changed = Organization {
        name: "Ünïcødé Holding ☕".into(),
        base_currency: Currency::EUR,
        time_zone: "Europe/Berlin".into(),
        ..org.clone()
    };
    store
        .update_organization(&changed)
        .expect("update organization");
    assert_eq!(store.default_organization().expect("org"), changed);
    assert_eq!(
        store.ledger_facts(org.id).expect("facts").base_currency,
        Currency::EUR
    );
    store
        .update_organization(org)
        .expect("restore organization");
    assert_eq!(store.default_organization().expect("org"), *org);
    let missing = Organization {
        id: org.id + 1_000_000,
        ..org.clone()
    };
    assert!(matches!(
        store.update_organization(&missing),
        Err(StoreError::NotFound { .. })
    ));
}
