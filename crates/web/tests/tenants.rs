//! Strict tenant isolation: a second organization's records, named by
//! their real ids and keys, are walked through every route by the first
//! organization's admin (browser session and API token). Nothing of the
//! second organization may show in any answer, and nothing of it may
//! change.

mod support;

use arflow_domain::model::{
    Allocation, AllocationSource, Customer, Invoice, InvoiceStatus, Payment,
};
use arflow_domain::money::Currency;
use arflow_store::{Change, ChangeSet, EventFilter, OutboxFilter, Store};
use arflow_web::access::{Access, Kind};
use arflow_web::routes::table;
use jiff::civil::date;
use support::{ADMIN, Fixture, add_users, fixture, now, spawn_app};

const SECRET_NAME: &str = "Zebra Secret Holdings";
const SECRET_KEY: &str = "ORGB-ONLY";
const SECRET_INVOICE: &str = "ORGB-INV-1";

/// The second organization: its own customer and invoice (keys unknown to
/// the first), every kind of record, and its own users.
fn other_org(store: &dyn Store) -> Fixture {
    let org = store
        .create_organization("other", "Other Org", Currency::USD, "Europe/Berlin", now())
        .expect("second organization")
        .id;
    let changes = ChangeSet {
        customers: vec![Change::Insert(Customer {
            external_id: SECRET_KEY.into(),
            name: SECRET_NAME.into(),
            segment: Some("orgb-segment".into()),
            tags: vec![],
            country: None,
            time_zone: None,
            locale: None,
            currency: Currency::USD,
            payment_terms_days: None,
            credit_limit: None,
            collector: None,
            autopay: false,
        })],
        invoices: [SECRET_INVOICE, "ORGB-INV-2"]
            .iter()
            .map(|n| {
                Change::Insert(Invoice {
                    number: (*n).into(),
                    customer: SECRET_KEY.into(),
                    external_id: None,
                    source: "test".into(),
                    issue_date: date(2026, 9, 1),
                    due_date: date(2026, 10, 1),
                    currency: Currency::USD,
                    total: 987_654,
                    tax: 0,
                    po_number: None,
                    status: InvoiceStatus::Open,
                    status_date: None,
                    disputed: false,
                    paperless: None,
                })
            })
            .collect(),
        payments: vec![Change::Insert(Payment {
            external_id: "ORGB-PAY-1".into(),
            customer: SECRET_KEY.into(),
            source: "test".into(),
            received_on: date(2026, 10, 15),
            currency: Currency::USD,
            amount: 100_000,
            method: None,
            reference: Some(SECRET_INVOICE.into()),
            payer_name: None,
        })],
        allocations: vec![Allocation {
            invoice: "ORGB-INV-2".into(),
            source: AllocationSource::Payment("ORGB-PAY-1".into()),
            amount: 100_000,
            applied_on: date(2026, 10, 15),
        }],
        ..ChangeSet::default()
    };
    store
        .apply(org, &changes, "test", now())
        .expect("second ledger");
    add_users(store, org, "other.example");
    fixture(store, org, "orgb")
}

/// Everything of an organization a route could change, as comparable text.
fn fingerprint(store: &dyn Store, org: i64) -> String {
    let events = store
        .events(org, &EventFilter::default())
        .expect("events")
        .len();
    format!(
        "customers {:?}\ninvoices {:?}\nholds {:?}\ndisputes {:?}\npromises {:?}\ntasks {:?}\noutbox {:?}\nusers {:?}\ntokens {:?}\nnotes {:?}\nsettings {:?}\npolicies {}\nevents {events}",
        store.customers(org).expect("customers"),
        store.invoices(org).expect("invoices"),
        store.holds(org).expect("holds"),
        store.disputes(org).expect("disputes"),
        store.promises(org).expect("promises"),
        store.tasks(org, true).expect("tasks"),
        store.outbox(org, &OutboxFilter::default()).expect("outbox"),
        store.users(org).expect("users"),
        store.api_tokens(org).expect("tokens"),
        store.notes(org, SECRET_KEY).expect("notes"),
        store.dunning_settings(org).expect("settings"),
        store.policies(org).expect("policies").len(),
    )
}

#[test]
fn one_organization_never_reads_or_changes_another_through_any_route() {
    let Some(app) = spawn_app() else { return };
    // The first organization has records of its own too, so "not found"
    // cannot come from an empty database.
    fixture(app.store.as_ref(), app.org, "acme");
    let other = other_org(app.store.as_ref());
    let before = fingerprint(app.store.as_ref(), other.org);
    let secrets = [
        SECRET_NAME,
        SECRET_KEY,
        SECRET_INVOICE,
        "orgb",
        "other.example",
        "9,876.54",
    ];
    let b = app.browser_for(ADMIN);
    let cookie = b.cookie.clone().unwrap_or_default();
    let csrf = b.csrf.clone().unwrap_or_default();
    let token = app.token("admin", "write").to_string();
    let mut leaks = Vec::new();
    for route in table() {
        // Logging out would end the session the walk uses; it touches no
        // organization's records.
        if route.access == Access::Public || route.path == "/logout" {
            continue;
        }
        let method = route.method.as_str();
        let mut paths = vec![support::concrete(route.path, &other)];
        if method == "GET" && !route.path.contains('{') {
            // Lists and searches naming the other organization's records.
            paths.push(format!(
                "{}?customer={SECRET_KEY}&q=Zebra&invoice={SECRET_INVOICE}",
                route.path
            ));
        }
        for path in paths {
            let r = match (route.kind, method) {
                (Kind::Page, "GET") => app.request(method, &path, Some(&cookie), None, None),
                (Kind::Page, _) => app.request(
                    method,
                    &path,
                    Some(&cookie),
                    None,
                    Some(&[
                        ("_csrf", csrf.as_str()),
                        ("customer", SECRET_KEY),
                        ("invoice", SECRET_INVOICE),
                        ("reason", "cross-tenant attempt"),
                        ("body", "cross-tenant attempt"),
                    ]),
                ),
                (Kind::Api, _) => app.request(method, &path, None, Some(&token), None),
            };
            let what = format!("{method} {path}");
            if route.path.contains('{') && r.status < 400 && method != "GET" {
                leaks.push(format!(
                    "{what}: succeeded with {} on the other organization",
                    r.status
                ));
            }
            if route.path.contains('{') && method == "GET" && r.status != 404 {
                leaks.push(format!("{what}: expected 404, got {}", r.status));
            }
            for s in secrets {
                // An answer may name what was asked for (a "not found", a
                // filter shown back in its input); the name, amounts and
                // tags of the other organization were never asked for, so
                // they show up only through a leak.
                let echoed = path.contains(s);
                if r.body.contains(s) && !echoed {
                    let mut at = r.body.find(s).unwrap_or(0).saturating_sub(80);
                    while !r.body.is_char_boundary(at) {
                        at -= 1;
                    }
                    let around: String = r.body[at..].chars().take(160).collect();
                    leaks.push(format!("{what}: the answer contains '{s}': …{around}…"));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    assert_eq!(
        before,
        fingerprint(app.store.as_ref(), other.org),
        "the other organization changed"
    );
}
