//! The shared conformance suite: one story, run against every backend.
//!
//! It assumes a fresh store (new file or database) and panics with a
//! message on the first broken expectation, as tests do.

use arflow_domain::fx::{FxRate, Rate};
use arflow_domain::ledger::Closure;
use arflow_domain::model::{
    Allocation, AllocationSource, ChannelPreferences, Contact, CreditNote, Customer, Event,
    Invoice, InvoiceStatus, Organization, Payment, Stored,
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
    ledger_facts_match_the_records(store, org.id);
    allocations_stay_within_totals(store, org.id);
    tenants_are_isolated(store, org.id);
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
