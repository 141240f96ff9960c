//! The server on a random port against a real store (SQLite, or PostgreSQL
//! with ARFLOW_TEST_BACKEND=postgres): health, and RFC 8058 one-click
//! unsubscribe driven over HTTP.

use std::sync::Arc;

use arflow_domain::clock::FixedClock;
use arflow_domain::dunning::Channel;
use arflow_domain::dunning::records::{MessageStatus, OutboxMessage, StepKey};
use arflow_domain::model::{ChannelPreferences, Contact, Customer, Invoice, InvoiceStatus};
use arflow_domain::money::Currency;
use arflow_store::testing::test_store;
use arflow_store::{Change, ChangeSet, EventFilter, PlannedWrite, Store};
use arflow_web::{AppState, WebConfig, serve};
use jiff::Timestamp;
use jiff::civil::date;

const TOKEN: &str = "3f1c0a9e5b7d2c4e6a8b0c1d2e3f4a5b";

fn now() -> Timestamp {
    "2026-12-03T10:00:00Z".parse().expect("instant")
}

fn seed(store: &dyn Store) -> i64 {
    let org = store.default_organization().expect("organization").id;
    let contact = |id: &str, email: &str| {
        Change::Insert(Contact {
            customer: "C1".into(),
            external_id: id.into(),
            name: "Ana".into(),
            email: Some(email.into()),
            phone: None,
            role: None,
            is_primary: true,
            preferences: ChannelPreferences::default(),
        })
    };
    let changes = ChangeSet {
        customers: vec![Change::Insert(Customer {
            external_id: "C1".into(),
            name: "Acme <Ltd>".into(),
            segment: None,
            tags: vec![],
            country: None,
            time_zone: None,
            locale: None,
            currency: Currency::EUR,
            payment_terms_days: None,
            credit_limit: None,
            collector: None,
            autopay: false,
        })],
        contacts: vec![
            contact("K1", "ana@acme.example"),
            contact("K2", "ops@acme.example"),
        ],
        invoices: vec![Change::Insert(Invoice {
            number: "INV-1".into(),
            customer: "C1".into(),
            external_id: None,
            source: "test".into(),
            issue_date: date(2026, 10, 1),
            due_date: date(2026, 11, 1),
            currency: Currency::EUR,
            total: 10_000,
            tax: 0,
            po_number: None,
            status: InvoiceStatus::Open,
            status_date: None,
            disputed: false,
            paperless: None,
        })],
        ..ChangeSet::default()
    };
    store.apply(org, &changes, "test", now()).expect("seed");
    let message = OutboxMessage {
        key: "m/i:INV-1/default/s2".into(),
        customer: "C1".into(),
        channel: Channel::Email,
        contact: Some("K1".into()),
        recipient: "ana@acme.example".into(),
        policy: "default".into(),
        step: StepKey::Sequence { step: 2 },
        template: "overdue_7".into(),
        locale: "en".into(),
        currency: Currency::EUR,
        invoices: vec![],
        subject: "Overdue".into(),
        body_text: "Please pay.".into(),
        body_html: None,
        token: TOKEN.into(),
        time_zone: "UTC".into(),
        not_before: now(),
        created_at: now(),
        status: MessageStatus::Sent,
        attempts: 1,
        next_attempt_at: now(),
        claimed_by: None,
        lease_until: None,
        last_error: None,
        provider_id: Some("<x@acme.example>".into()),
        sent_at: Some(now()),
    };
    let write = PlannedWrite {
        steps: vec![],
        message: Some(message),
        task: None,
        charges: vec![],
    };
    store
        .record_run(org, &[write], date(2026, 12, 3), "test", now())
        .expect("queue a message");
    org
}

/// Starts the server on a random port; returns its base URL.
fn start(store: Arc<dyn Store>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let state = AppState::new(store, Arc::new(FixedClock(now())), WebConfig::default());
            serve(listener, state, std::future::pending())
                .await
                .expect("serve");
        });
    });
    format!("http://{addr}")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

fn opted_out(store: &dyn Store, org: i64, key: &str) -> bool {
    store
        .contacts(org)
        .expect("contacts")
        .into_iter()
        .find(|c| c.external_id == key)
        .expect("contact")
        .preferences
        .email_opt_out
}

#[test]
fn one_click_unsubscribe_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((store, _guard)) = test_store(dir.path(), now()).expect("store") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::from(store);
    let org = seed(store.as_ref());
    let base = start(Arc::clone(&store));
    let http = agent();

    let mut health = http.get(format!("{base}/healthz")).call().expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(health.body_mut().read_to_string().expect("body"), "ok\n");

    // GET shows a confirmation page and changes nothing.
    let mut page = http.get(format!("{base}/u/{TOKEN}")).call().expect("page");
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.body_mut().read_to_string().expect("body");
    assert!(html.contains(&format!("action=\"/u/{TOKEN}\"")), "{html}");
    assert!(html.contains("method=\"post\""), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!opted_out(store.as_ref(), org, "K1"));

    // The mail client's one-click POST: no cookies, answered directly.
    let mut done = http
        .post(format!("{base}/u/{TOKEN}"))
        .content_type("application/x-www-form-urlencoded")
        .send("List-Unsubscribe=One-Click")
        .expect("unsubscribe");
    assert_eq!(done.status(), 200, "no redirect");
    let html = done.body_mut().read_to_string().expect("body");
    assert!(html.contains("ana@acme.example"), "{html}");
    assert!(opted_out(store.as_ref(), org, "K1"));
    assert!(
        !opted_out(store.as_ref(), org, "K2"),
        "only the recipient's address"
    );

    // Clicking again is harmless, and logged once.
    let again = http
        .post(format!("{base}/u/{TOKEN}"))
        .send("List-Unsubscribe=One-Click")
        .expect("again");
    assert_eq!(again.status(), 200);
    let events = store
        .events(
            org,
            &EventFilter {
                entity_type: Some("contact".into()),
                entity_key: Some("K1".into()),
                ..EventFilter::default()
            },
        )
        .expect("events");
    let unsubscribed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "contact.unsubscribed")
        .collect();
    assert_eq!(unsubscribed.len(), 1, "{events:?}");

    // An unknown token is a plain 404 page.
    let unknown = http
        .post(format!("{base}/u/not-a-token"))
        .send("List-Unsubscribe=One-Click")
        .expect("unknown");
    assert_eq!(unknown.status(), 404);
}
