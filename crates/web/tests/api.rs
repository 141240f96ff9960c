//! The REST API over HTTP against a real store (SQLite, or PostgreSQL with
//! ARFLOW_TEST_BACKEND=postgres), loaded with the demo ledger: pagination,
//! filters, organizations kept apart, roles and scopes, idempotency, problem
//! documents, ledger writes, collections work, reports, and the committed
//! OpenAPI document.

mod support;

use std::collections::{BTreeSet, HashSet};

use arflow_domain::analytics::summary::summary;
use arflow_domain::fx::FxTable;
use arflow_domain::ledger::{BaseConverter, Ledger};
use arflow_domain::money::Currency;
use serde_json::{Value, json};
use support::{Reply, TestApp, spawn_app};

fn ok(r: &Reply) -> Value {
    assert!(
        (200..300).contains(&r.status),
        "expected success, got {}: {}",
        r.status,
        r.body
    );
    r.json()
}

fn assert_problem(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/problem+json"),
        "{}",
        r.body
    );
    let p = r.json();
    assert_eq!(p["status"], json!(status), "{p}");
    assert!(
        p["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("/problems/")),
        "{p}"
    );
    assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{p}");
    p
}

fn field_errors(p: &Value) -> Vec<String> {
    p["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A request with any method, body and content type.
fn raw(
    app: &TestApp,
    method: &str,
    token: Option<&str>,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let url = app.url(path);
    let mut req = ureq::http::Request::builder().method(method).uri(&url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let req = req.body(body.to_vec()).expect("request");
    let mut r = agent.run(req).expect("HTTP request");
    let headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    Reply {
        status: r.status().as_u16(),
        location: find("location"),
        content_type: find("content-type"),
        body: r.body_mut().read_to_string().unwrap_or_default(),
        headers,
    }
}

/// Every item of a list, following cursors; checks each page's size.
fn all_pages(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = ok(&app.api_get(token, &url));
        let data = page["data"].as_array().expect("data").clone();
        assert!(data.len() <= limit);
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(data.len(), limit, "a page before the last is full");
                cursor = Some(c.to_string());
                out.extend(data);
            }
            None => {
                out.extend(data);
                return out;
            }
        }
    }
    panic!("pagination of {path} did not end");
}

fn minor(amount: &Value) -> i64 {
    let s = amount["amount"].as_str().expect("amount string");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let v = int.trim_start_matches('-').parse::<i64>().unwrap() * 10i64.pow(frac.len() as u32)
        + if frac.is_empty() {
            0
        } else {
            frac.parse::<i64>().unwrap()
        };
    if neg { -v } else { v }
}

// --- the OpenAPI document ------------------------------------------------------

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn openapi_document_is_committed() {
    let generated = arflow_web::api::openapi_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not the document the code generates. If the API change is \
         intended, update it with:\n\n    UPDATE_OPENAPI=1 cargo test -p arflow-web --test api openapi\n\n\
         and commit docs/openapi.json."
    );
    let doc: Value = serde_json::from_str(&generated).expect("JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ProblemBody"].is_object());
}

#[test]
fn openapi_lists_every_api_route_and_no_other() {
    let doc: Value = serde_json::from_str(&arflow_web::api::openapi_json()).expect("JSON");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = arflow_web::routes::table()
        .iter()
        .filter(|r| r.kind == arflow_web::access::Kind::Api)
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented operations with no route: {extra:?}"
    );
    assert!(routed.len() > 40, "{}", routed.len());
    // Every protected operation names the bearer scheme, or inherits it.
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    assert_eq!(
        doc["paths"]["/api/openapi.json"]["get"]["security"],
        json!([{}])
    );
}

#[test]
fn the_document_is_served_without_a_token() {
    let Some(app) = spawn_app() else { return };
    let r = raw(&app, "GET", None, "/api/openapi.json", None, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, arflow_web::api::openapi_json());
}

// --- reading --------------------------------------------------------------------

#[test]
fn invoices_page_through_the_whole_ledger_without_gaps() {
    let Some(app) = spawn_app() else { return };
    let token = app.token("viewer", "read").to_string();
    let stored = app.store.invoices(app.org).expect("invoices");
    let listed = all_pages(&app, &token, "/api/v1/invoices", 37);
    assert_eq!(listed.len(), stored.len());
    let numbers: HashSet<&str> = listed
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), stored.len(), "no invoice is listed twice");
    for s in &stored {
        assert!(
            numbers.contains(s.number.as_str()),
            "{} is missing",
            s.number
        );
    }
    let keys: Vec<(String, String)> = listed
        .iter()
        .map(|i| {
            (
                i["due_date"].as_str().unwrap().to_string(),
                i["number"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "sorted by due date, then number");
    // Default and maximum page sizes.
    let first = ok(&app.api_get(&token, "/api/v1/invoices"));
    assert_eq!(first["data"].as_array().unwrap().len(), 50);
    let big = ok(&app.api_get(&token, "/api/v1/invoices?limit=500"));
    assert_eq!(big["data"].as_array().unwrap().len(), 400);
    assert!(big["next_cursor"].is_null());
    // Amounts are decimal strings with their currency.
    let inv = &first["data"][0];
    assert!(
        inv["total"]["amount"].is_string() && inv["total"]["currency"].is_string(),
        "{inv}"
    );
    assert!(
        inv["open"]["amount"].as_str().unwrap().contains('.'),
        "{inv}"
    );
}

#[test]
fn invoice_filters_agree_with_the_full_list() {
    let Some(app) = spawn_app() else { return };
    let token = app.token("viewer", "read").to_string();
    let everything = all_pages(&app, &token, "/api/v1/invoices", 500);
    let numbers = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|i| i["number"].as_str().unwrap().to_string())
            .collect()
    };
    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        numbers(
            &everything
                .iter()
                .filter(|i| pred(i))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };

    let overdue = all_pages(&app, &token, "/api/v1/invoices?status=overdue", 17);
    assert!(!overdue.is_empty());
    assert_eq!(numbers(&overdue), expect(&|i| i["state"] == "overdue"));
    for i in &overdue {
        assert!(
            i["days_overdue"].as_i64().unwrap() > 0 && minor(&i["open"]) > 0,
            "{i}"
        );
    }
    let paid_or_open = all_pages(&app, &token, "/api/v1/invoices?status=paid,open", 50);
    assert_eq!(
        numbers(&paid_or_open),
        expect(&|i| i["state"] == "paid" || i["state"] == "open")
    );
    let first = everything[0]["customer"].as_str().unwrap().to_string();
    let by_customer = all_pages(
        &app,
        &token,
        &format!("/api/v1/invoices?customer={first}&status=overdue,open"),
        5,
    );
    assert_eq!(
        numbers(&by_customer),
        expect(&|i| i["customer"] == first.as_str()
            && (i["state"] == "overdue" || i["state"] == "open"))
    );
    let eur = all_pages(&app, &token, "/api/v1/invoices?currency=eur", 50);
    assert_eq!(numbers(&eur), expect(&|i| i["total"]["currency"] == "EUR"));
    let window = all_pages(
        &app,
        &token,
        "/api/v1/invoices?due_after=2026-06-30&due_before=2026-10-01",
        20,
    );
    assert!(!window.is_empty());
    assert_eq!(
        numbers(&window),
        expect(&|i| {
            let d = i["due_date"].as_str().unwrap();
            d > "2026-06-30" && d < "2026-10-01"
        })
    );
    let needle = everything[7]["number"].as_str().unwrap().to_string();
    let found = ok(&app.api_get(
        &token,
        &format!("/api/v1/invoices?q={}", needle.to_lowercase()),
    ));
    assert!(numbers(found["data"].as_array().unwrap()).contains(&needle));
    let none = ok(&app.api_get(&token, "/api/v1/invoices?customer=NO-SUCH-CUSTOMER"));
    assert_eq!(none["data"], json!([]));
    assert!(none["next_cursor"].is_null());

    // Bad parameters are problems naming the parameter.
    for (url, field) in [
        ("/api/v1/invoices?status=late", "status"),
        ("/api/v1/invoices?limit=0", "limit"),
        ("/api/v1/invoices?limit=501", "limit"),
        ("/api/v1/invoices?due_before=2026-13-01", "due_before"),
        ("/api/v1/invoices?currency=XYZW", "currency"),
        ("/api/v1/invoices?cursor=bm9wZQ", "cursor"),
        ("/api/v1/invoices?colour=red", "colour"),
        ("/api/v1/invoices?limit=5&limit=6", "limit"),
    ] {
        let p = assert_problem(&app.api_get(&token, url), 422);
        assert_eq!(field_errors(&p), vec![field.to_string()], "{url}: {p}");
    }
    // A cursor of another list is refused.
    let holds_cursor = ok(&app.api_get(&token, "/api/v1/customers?limit=1"))["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    assert_problem(
        &app.api_get(&token, &format!("/api/v1/invoices?cursor={holds_cursor}")),
        422,
    );
}

#[test]
fn one_invoice_and_customer_lists() {
    let Some(app) = spawn_app() else { return };
    let token = app.token("viewer", "read").to_string();
    let stored = app.store.invoices(app.org).expect("invoices");
    let one = &stored[3];
    let got = ok(&app.api_get(&token, &format!("/api/v1/invoices/{}", one.number)));
    assert_eq!(got["number"], json!(one.number));
    assert_eq!(got["customer"], json!(one.customer));
    assert_eq!(minor(&got["total"]), one.total);
    assert_eq!(got["due_date"], json!(one.due_date.to_string()));
    assert_problem(&app.api_get(&token, "/api/v1/invoices/NOPE-1"), 404);

    let customers = all_pages(&app, &token, "/api/v1/customers", 7);
    assert_eq!(customers.len(), app.store.customers(app.org).unwrap().len());
    let c = &customers[2];
    let key = c["key"].as_str().unwrap();
    let detail = ok(&app.api_get(&token, &format!("/api/v1/customers/{key}")));
    assert_eq!(&detail, c);
    // Balances add up to the customer's open invoices.
    let open: i64 = all_pages(
        &app,
        &token,
        &format!("/api/v1/invoices?customer={key}&status=open,overdue"),
        100,
    )
    .iter()
    .filter(|i| i["open"]["currency"] == detail["currency"])
    .map(|i| minor(&i["open"]))
    .sum();
    let listed: i64 = detail["balances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["open"]["currency"] == detail["currency"])
        .map(|b| minor(&b["open"]))
        .sum();
    assert_eq!(open, listed, "{detail}");
    let name_part = c["name"].as_str().unwrap()[..4].to_uppercase();
    let found = ok(&app.api_get(
        &token,
        &format!("/api/v1/customers?q={}", name_part.replace(' ', "%20")),
    ));
    assert!(
        found["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["key"] == c["key"])
    );
    if let Some(seg) = c["segment"].as_str() {
        let seg_list = all_pages(
            &app,
            &token,
            &format!("/api/v1/customers?segment={seg}"),
            50,
        );
        assert!(seg_list.iter().all(|x| x["segment"] == seg));
        assert!(seg_list.iter().any(|x| x["key"] == c["key"]));
    }
    let contacts = all_pages(
        &app,
        &token,
        &format!("/api/v1/contacts?customer={key}"),
        50,
    );
    let stored_contacts = app.store.contacts(app.org).unwrap();
    assert_eq!(
        contacts.len(),
        stored_contacts.iter().filter(|k| k.customer == key).count()
    );
    assert_eq!(
        all_pages(&app, &token, "/api/v1/contacts", 11).len(),
        stored_contacts.len()
    );
    assert_eq!(
        all_pages(&app, &token, "/api/v1/payments", 50).len(),
        app.store.payments(app.org).unwrap().len()
    );
    assert_eq!(
        all_pages(&app, &token, "/api/v1/allocations", 200).len(),
        app.store.allocations(app.org).unwrap().len()
    );
    assert_eq!(
        all_pages(&app, &token, "/api/v1/credit-notes", 5).len(),
        app.store.credit_notes(app.org).unwrap().len()
    );
    assert_problem(&app.api_get(&token, "/api/v1/customers/NO-SUCH"), 404);
}

// --- organizations, roles and scopes -------------------------------------------------

/// A second organization with one customer, one invoice, one hold and one
/// message; returns its id and tokens.
fn second_org(app: &TestApp) -> (i64, std::collections::HashMap<String, String>, i64, i64) {
    use arflow_domain::dunning::Channel;
    use arflow_domain::dunning::records::{Hold, MessageStatus, OutboxMessage, Scope, StepKey};
    use arflow_domain::model::{Customer, Invoice, InvoiceStatus};
    use arflow_store::{Change, ChangeSet, PlannedWrite};
    use jiff::civil::date;
    let store = app.store.as_ref();
    let org = store
        .create_organization(
            "other",
            "Other Ltd",
            Currency::EUR,
            "Europe/Berlin",
            support::now(),
        )
        .expect("organization")
        .id;
    let tokens = support::add_users(store, org, "other.example");
    let changes = ChangeSet {
        customers: vec![Change::Insert(Customer {
            external_id: "OTHER-CUST".into(),
            name: "Other customer".into(),
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
        invoices: vec![Change::Insert(Invoice {
            number: "OTHER-INV-1".into(),
            customer: "OTHER-CUST".into(),
            external_id: None,
            source: "test".into(),
            issue_date: date(2026, 9, 1),
            due_date: date(2026, 10, 1),
            currency: Currency::EUR,
            total: 50_000,
            tax: 0,
            po_number: None,
            status: InvoiceStatus::Open,
            status_date: None,
            disputed: false,
            paperless: None,
        })],
        ..ChangeSet::default()
    };
    store
        .apply(org, &changes, "test", support::now())
        .expect("ledger");
    let hold = store
        .create_hold(
            org,
            &Hold {
                scope: Scope::Customer("OTHER-CUST".into()),
                reason: "theirs".into(),
                created_at: support::now(),
                created_by: "test".into(),
                expires_on: None,
                ended_at: None,
                ended_by: None,
            },
            support::now(),
        )
        .expect("hold");
    let message = OutboxMessage {
        key: "m/other/1".into(),
        customer: "OTHER-CUST".into(),
        channel: Channel::Email,
        contact: None,
        recipient: "ap@other.example".into(),
        policy: "default".into(),
        step: StepKey::Sequence { step: 0 },
        template: "overdue_7".into(),
        locale: "en".into(),
        currency: Currency::EUR,
        invoices: vec![],
        subject: "Their reminder".into(),
        body_text: "Secret body".into(),
        body_html: None,
        token: "0123456789abcdef0123456789abcdef".into(),
        time_zone: "UTC".into(),
        not_before: support::now(),
        created_at: support::now(),
        status: MessageStatus::Queued,
        attempts: 0,
        next_attempt_at: support::now(),
        claimed_by: None,
        lease_until: None,
        last_error: None,
        provider_id: None,
        sent_at: None,
    };
    store
        .record_run(
            org,
            &[PlannedWrite {
                steps: vec![],
                message: Some(message),
                task: None,
                charges: vec![],
            }],
            date(2026, 12, 3),
            "test",
            support::now(),
        )
        .expect("message");
    let message_id = store
        .outbox(org, &Default::default())
        .expect("outbox")
        .first()
        .expect("message")
        .id;
    (org, tokens, hold, message_id)
}

#[test]
fn another_organizations_records_are_not_found() {
    let Some(app) = spawn_app() else { return };
    let (_, other_tokens, other_hold, other_message) = second_org(&app);
    let mine = app.token("admin", "write").to_string();
    let theirs = other_tokens["viewer:read"].clone();

    // They see their own.
    let inv = ok(&app.api_get(&theirs, "/api/v1/invoices/OTHER-INV-1"));
    assert_eq!(minor(&inv["open"]), 50_000);
    let listed = ok(&app.api_get(&theirs, "/api/v1/invoices"));
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(&app.api_get(&theirs, &format!("/api/v1/messages/{other_message}")))["subject"],
        "Their reminder"
    );

    // We do not.
    for path in [
        "/api/v1/invoices/OTHER-INV-1".to_string(),
        "/api/v1/customers/OTHER-CUST".to_string(),
        "/api/v1/customers/OTHER-CUST/notes".to_string(),
        format!("/api/v1/messages/{other_message}"),
        format!("/api/v1/holds/{other_hold}"),
    ] {
        assert_problem(&app.api_get(&mine, &path), 404);
    }
    let ours = all_pages(&app, &mine, "/api/v1/invoices?q=OTHER", 50);
    assert!(ours.is_empty());
    let holds = ok(&app.api_get(&mine, "/api/v1/holds"));
    assert!(
        holds["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["id"] != json!(other_hold))
    );
    // Nor can we change them.
    let r = app.api_post(
        &mine,
        &format!("/api/v1/holds/{other_hold}/end"),
        &json!({}),
        None,
    );
    assert_problem(&r, 404);
    let r = app.api_post(
        &mine,
        "/api/v1/customers/OTHER-CUST/notes",
        &json!({"body": "hi"}),
        None,
    );
    assert_problem(&r, 404);
    let r = app.api_post(
        &mine,
        "/api/v1/disputes",
        &json!({"invoice": "OTHER-INV-1", "reason": "x"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/invoice"]);
    let r = app.api_post(
        &mine,
        "/api/v1/payments",
        &json!({"customer": "OTHER-CUST", "received_on": "2026-12-01", "amount": "10.00"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/customer"]);
    assert!(
        app.store.holds(app.org).unwrap().is_empty(),
        "nothing was written to our organization"
    );
}

#[test]
fn roles_and_scopes_decide_who_may_write() {
    let Some(app) = spawn_app() else { return };
    let customer = app.store.customers(app.org).unwrap()[0].external_id.clone();
    let hold = json!({"customer": customer, "reason": "Customer on vacation"});
    // No token, a bad token.
    assert_problem(&raw(&app, "GET", None, "/api/v1/invoices", None, b""), 401);
    assert_problem(&app.api_get("not-a-token", "/api/v1/invoices"), 401);
    // A read-only token cannot POST, whatever its user's role.
    assert_problem(
        &app.api_post(app.token("viewer", "read"), "/api/v1/holds", &hold, None),
        403,
    );
    for role in ["collector", "admin"] {
        let r = app.api_post(app.token(role, "read"), "/api/v1/holds", &hold, None);
        let p = assert_problem(&r, 403);
        assert!(p["detail"].as_str().unwrap().contains("write scope"), "{p}");
    }
    // A viewer cannot create a hold even with a write token.
    assert_problem(
        &app.api_post(app.token("viewer", "write"), "/api/v1/holds", &hold, None),
        403,
    );
    assert!(app.store.holds(app.org).unwrap().is_empty());
    // A collector can, but cannot write the ledger.
    let r = app.api_post(
        app.token("collector", "write"),
        "/api/v1/holds",
        &hold,
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(created["created_by"], "api:collector@example.com");
    assert_eq!(created["active"], true);
    assert_eq!(
        r.location.as_deref(),
        Some(format!("/api/v1/holds/{}", created["id"]).as_str())
    );
    assert_eq!(app.store.holds(app.org).unwrap().len(), 1);
    let r = app.api_post(
        app.token("collector", "write"),
        "/api/v1/customers",
        &json!({"key": "NEW-1", "name": "New"}),
        None,
    );
    assert_problem(&r, 403);
    // Viewers read everything.
    let listed = ok(&app.api_get(app.token("viewer", "read"), "/api/v1/holds?active=true"));
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

// --- idempotency and problems ---------------------------------------------------------

#[test]
fn idempotency_key_replays_and_refuses_reuse() {
    let Some(app) = spawn_app() else { return };
    let token = app.token("collector", "write").to_string();
    let invoice = app.store.invoices(app.org).unwrap()[10].number.clone();
    let body = json!({"invoice": invoice, "reason": "Parts missing", "until": "2027-01-15"});
    let first = app.api_post(&token, "/api/v1/holds", &body, Some("key-123"));
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.header("Idempotent-Replayed"), None);
    let second = app.api_post(&token, "/api/v1/holds", &body, Some("key-123"));
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(second.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(second.json(), first.json());
    assert_eq!(second.location, first.location);
    assert_eq!(
        app.store.holds(app.org).unwrap().len(),
        1,
        "one hold, not two"
    );

    // The same key with another request is refused, and changes nothing.
    let other = json!({"invoice": invoice, "reason": "Something else"});
    let p = assert_problem(
        &app.api_post(&token, "/api/v1/holds", &other, Some("key-123")),
        422,
    );
    assert_eq!(field_errors(&p), vec!["Idempotency-Key"]);
    let p = assert_problem(
        &app.api_post(&token, "/api/v1/disputes", &body, Some("key-123")),
        422,
    );
    assert_eq!(field_errors(&p), vec!["Idempotency-Key"]);
    assert_eq!(app.store.holds(app.org).unwrap().len(), 1);

    // A failed request is not remembered: corrected, the same key works.
    let bad = json!({"invoice": invoice, "reason": " "});
    assert_problem(
        &app.api_post(&token, "/api/v1/disputes", &bad, Some("key-456")),
        422,
    );
    let good = json!({"invoice": invoice, "reason": "Wrong quantity"});
    let r = app.api_post(&token, "/api/v1/disputes", &good, Some("key-456"));
    assert_eq!(r.status, 201, "{}", r.body);
    // Keys are per organization: another organization's same key is its own.
    let (_, other_tokens, _, _) = second_org(&app);
    let r = app.api_post(
        &other_tokens["collector:write"],
        "/api/v1/holds",
        &json!({"invoice": "OTHER-INV-1", "reason": "Theirs"}),
        Some("key-123"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("Idempotent-Replayed"), None);
    // Without a key, every POST acts.
    let plain =
        json!({"customer": app.store.customers(app.org).unwrap()[1].external_id, "reason": "x"});
    assert_eq!(
        app.api_post(&token, "/api/v1/holds", &plain, None).status,
        201
    );
    assert_eq!(
        app.api_post(&token, "/api/v1/holds", &plain, None).status,
        201
    );
    assert_eq!(app.store.holds(app.org).unwrap().len(), 3);
    let p = assert_problem(
        &app.api_post(&token, "/api/v1/holds", &plain, Some("has space")),
        422,
    );
    assert_eq!(field_errors(&p), vec!["Idempotency-Key"]);
}

#[test]
fn malformed_requests_are_problems() {
    let Some(app) = spawn_app() else { return };
    let token = app.token("admin", "write").to_string();
    let json_ct = Some("application/json");
    // Not JSON at all.
    let p = assert_problem(
        &raw(
            &app,
            "POST",
            Some(&token),
            "/api/v1/holds",
            json_ct,
            b"{\"reason\": ",
        ),
        400,
    );
    assert_eq!(p["type"], "/problems/malformed-request");
    assert_problem(
        &raw(
            &app,
            "POST",
            Some(&token),
            "/api/v1/customers",
            json_ct,
            b"[1,2",
        ),
        400,
    );
    assert_problem(
        &raw(
            &app,
            "POST",
            Some(&token),
            "/api/v1/customers",
            json_ct,
            b"",
        ),
        400,
    );
    // Not declared as JSON.
    let p = assert_problem(
        &raw(
            &app,
            "POST",
            Some(&token),
            "/api/v1/customers",
            Some("text/plain"),
            b"{\"key\": \"A\"}",
        ),
        415,
    );
    assert_eq!(field_errors(&p), vec!["Content-Type"]);
    // JSON of the wrong shape: the field is named as a JSON pointer.
    let r = app.api_post(&token, "/api/v1/customers", &json!({"key": 5}), None);
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/key"]);
    let r = app.api_post(
        &token,
        "/api/v1/customers",
        &json!({"name": "No key"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/key"]);
    let r = app.api_post(
        &token,
        "/api/v1/customers",
        &json!({"key": "K", "colour": "red"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/colour"]);
    let r = app.api_post(
        &token,
        "/api/v1/payments",
        &json!({"customer": "X", "received_on": "2026-12-01", "amount": "1", "allocations": [{"invoice": "A"}]}),
        None,
    );
    assert_eq!(
        field_errors(&assert_problem(&r, 422)),
        vec!["/allocations/0/amount"]
    );
    // A path id that cannot exist.
    assert_problem(
        &app.api_post(&token, "/api/v1/holds/abc/end", &json!({}), None),
        404,
    );
    assert_problem(&app.api_get(&token, "/api/v1/tasks/999999"), 404);
}

// --- writing the ledger ------------------------------------------------------------------

#[test]
fn customer_invoice_and_payment_change_the_balance() {
    let Some(app) = spawn_app() else { return };
    let admin = app.token("admin", "write").to_string();
    let viewer = app.token("viewer", "read").to_string();

    let r = app.api_post(
        &admin,
        "/api/v1/customers",
        &json!({"key": "API-C1", "name": "Api Customer GmbH", "currency": "EUR", "segment": "smb",
                "tags": ["new", "api"], "payment_terms_days": 14, "credit_limit": "5000.00"}),
        Some("cust-1"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/api/v1/customers/API-C1"));
    let c = r.json();
    assert_eq!(c["currency"], "EUR");
    assert_eq!(
        c["credit_limit"],
        json!({"amount": "5000.00", "currency": "EUR"})
    );
    assert_eq!(c["tags"], json!(["new", "api"]));
    assert_eq!(
        ok(&app.api_get(&viewer, "/api/v1/customers/API-C1"))["name"],
        "Api Customer GmbH"
    );
    // A duplicate is a conflict.
    let p = assert_problem(
        &app.api_post(&admin, "/api/v1/customers", &json!({"key": "API-C1"}), None),
        409,
    );
    assert!(
        p["detail"].as_str().unwrap().contains("already exists"),
        "{p}"
    );
    // Validation follows the importer's rules, every bad field reported.
    let r = app.api_post(
        &admin,
        "/api/v1/customers",
        &json!({"key": "API-C2", "currency": "XXQ", "payment_terms_days": 99999, "credit_limit": "-5"}),
        None,
    );
    let p = assert_problem(&r, 422);
    let fields: BTreeSet<String> = field_errors(&p).into_iter().collect();
    assert_eq!(
        fields,
        ["/credit_limit", "/currency", "/payment_terms_days"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );

    let r = app.api_post(
        &admin,
        "/api/v1/contacts",
        &json!({"customer": "API-C1", "name": "Ana", "email": "ana@api.example", "is_primary": true}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.location.as_deref(),
        Some("/api/v1/contacts/ana%40api.example")
    );
    assert_eq!(
        ok(&app.api_get(&viewer, "/api/v1/contacts/ana@api.example"))["customer"],
        "API-C1"
    );

    // Terms from the customer: due 14 days after issue.
    let r = app.api_post(
        &admin,
        "/api/v1/invoices",
        &json!({"number": "API-INV-1", "customer": "API-C1", "issue_date": "2026-11-01",
                "total": "1190.00", "tax": "190.00", "po_number": "PO-7"}),
        Some("inv-1"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/api/v1/invoices/API-INV-1"));
    let created = r.json();
    assert_eq!(created["due_date"], "2026-11-15");
    assert_eq!(created["state"], "overdue");
    assert_eq!(created["source"], "api");
    let got = ok(&app.api_get(&viewer, "/api/v1/invoices/API-INV-1"));
    assert_eq!(got, created, "the reply is what a read shows");
    assert_eq!(got["open"], json!({"amount": "1190.00", "currency": "EUR"}));
    assert_eq!(got["days_overdue"], 18);

    let bad = app.api_post(
        &admin,
        "/api/v1/invoices",
        &json!({"number": "API-INV-2", "customer": "API-C1", "issue_date": "2026-11-01",
                "due_date": "2026-10-01", "total": "10.005"}),
        None,
    );
    let fields: BTreeSet<String> = field_errors(&assert_problem(&bad, 422))
        .into_iter()
        .collect();
    assert!(
        fields.contains("/total") && fields.contains("/due_date"),
        "{fields:?}"
    );
    let bad = app.api_post(
        &admin,
        "/api/v1/invoices",
        &json!({"number": "API-INV-2", "customer": "NOBODY", "issue_date": "2026-11-01", "total": "10"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&bad, 422)), vec!["/customer"]);
    assert_problem(
        &app.api_post(
            &admin,
            "/api/v1/invoices",
            &json!({"number": "API-INV-1", "customer": "API-C1", "issue_date": "2026-11-01", "total": "1"}),
            None,
        ),
        409,
    );

    // A payment applied in part.
    let r = app.api_post(
        &admin,
        "/api/v1/payments",
        &json!({"key": "API-PAY-1", "customer": "API-C1", "received_on": "2026-12-02", "amount": "500.00",
                "method": "wire", "allocations": [{"invoice": "API-INV-1", "amount": "400.00"}]}),
        Some("pay-1"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.json();
    assert_eq!(p["applied"]["amount"], "400.00");
    assert_eq!(p["unapplied"]["amount"], "100.00");
    let got = ok(&app.api_get(&viewer, "/api/v1/invoices/API-INV-1"));
    assert_eq!(got["open"], json!({"amount": "790.00", "currency": "EUR"}));
    assert_eq!(ok(&app.api_get(&viewer, "/api/v1/payments/API-PAY-1")), p);
    let allocs = ok(&app.api_get(&viewer, "/api/v1/allocations?invoice=API-INV-1"));
    assert_eq!(
        allocs["data"][0]["source"],
        json!({"kind": "payment", "key": "API-PAY-1"})
    );
    assert_eq!(allocs["data"][0]["applied_on"], "2026-12-02");

    // Too much for what is left of the payment, or of the invoice.
    let r = app.api_post(
        &admin,
        "/api/v1/allocations",
        &json!({"invoice": "API-INV-1", "payment": "API-PAY-1", "amount": "100.01"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/amount"]);
    let r = app.api_post(
        &admin,
        "/api/v1/credit-notes",
        &json!({"number": "API-CN-1", "customer": "API-C1", "issue_date": "2026-12-01", "total": "900.00",
                "allocations": [{"invoice": "API-INV-1", "amount": "800.00"}]}),
        None,
    );
    assert_eq!(
        field_errors(&assert_problem(&r, 422)),
        vec!["/allocations/0/amount"]
    );
    assert_problem(&app.api_get(&viewer, "/api/v1/credit-notes/API-CN-1"), 404);

    // The rest of the payment, then a credit note, settle the invoice.
    let r = app.api_post(
        &admin,
        "/api/v1/allocations",
        &json!({"invoice": "API-INV-1", "payment": "API-PAY-1", "amount": "100.00", "applied_on": "2026-12-03"}),
        Some("alloc-1"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let a = r.json();
    assert_eq!(r.location, Some(format!("/api/v1/allocations/{}", a["id"])));
    assert_eq!(ok(&app.api_get(&viewer, r.location.as_deref().unwrap())), a);
    let r = app.api_post(
        &admin,
        "/api/v1/credit-notes",
        &json!({"number": "API-CN-1", "customer": "API-C1", "issue_date": "2026-12-01", "total": "690.00",
                "reason": "goodwill", "allocations": [{"invoice": "API-INV-1", "amount": "690.00"}]}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["unapplied"]["amount"], "0.00");
    let got = ok(&app.api_get(&viewer, "/api/v1/invoices/API-INV-1"));
    assert_eq!(got["open"]["amount"], "0.00");
    assert_eq!(got["state"], "paid");
    assert_eq!(got["settled_on"], "2026-12-03");
    // The store logged who did it.
    let events = app
        .store
        .events(
            app.org,
            &arflow_store::EventFilter {
                entity_key: Some("API-INV-1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        events.iter().any(|e| e.actor == "api:admin@example.com"),
        "{events:?}"
    );
}

// --- collections work ---------------------------------------------------------------------

fn run_dunning(app: &TestApp) {
    let org = app.store.organization(app.org).unwrap().unwrap();
    let renderer = arflow_dunning::render::TemplateRenderer {
        templates: arflow_notify::Templates::builtin(),
        sender_email: Some("ar@example.com".into()),
        sender_phone: None,
        unsubscribe_base_url: None,
    };
    arflow_dunning::run(app.store.as_ref(), &org, support::now(), &renderer, "test")
        .expect("dunning run");
}

#[test]
fn disputes_promises_tasks_notes_and_messages() {
    let Some(app) = spawn_app() else { return };
    run_dunning(&app);
    let collector = app.token("collector", "write").to_string();
    let viewer = app.token("viewer", "read").to_string();
    let invoices = app.store.invoices(app.org).unwrap();
    let inv = &invoices[20];

    // Disputes.
    let r = app.api_post(
        &collector,
        "/api/v1/disputes",
        &json!({"invoice": inv.number, "reason": "Wrong price"}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let d = r.json();
    assert_eq!(d["status"], "open");
    assert_problem(
        &app.api_post(
            &collector,
            "/api/v1/disputes",
            &json!({"invoice": inv.number, "reason": "Again"}),
            None,
        ),
        409,
    );
    let id = d["id"].as_i64().unwrap();
    let r = app.api_post(
        &collector,
        &format!("/api/v1/disputes/{id}/resolve"),
        &json!({"resolution": "Credit issued"}),
        None,
    );
    let resolved = ok(&r);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolution"], "Credit issued");
    assert_problem(
        &app.api_post(
            &collector,
            &format!("/api/v1/disputes/{id}/resolve"),
            &json!({"resolution": "x"}),
            None,
        ),
        409,
    );
    assert_eq!(
        ok(&app.api_get(&viewer, "/api/v1/disputes?status=resolved"))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok(&app.api_get(&viewer, "/api/v1/disputes?status=open"))["data"],
        json!([])
    );

    // Promises.
    let r = app.api_post(
        &collector,
        "/api/v1/promises",
        &json!({"customer": inv.customer, "promised_on": "2026-12-10",
                "amount": {"amount": "250.00", "currency": inv.currency.code()}, "note": "Called"}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.json();
    assert_eq!(p["status"], "active");
    assert_eq!(p["grace_days"], 3, "the organization's default grace");
    assert_eq!(p["last_day"], "2026-12-13");
    let r = app.api_post(
        &collector,
        "/api/v1/promises",
        &json!({"customer": inv.customer, "invoice": inv.number, "promised_on": "2026-12-10"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/customer"]);
    // The customer page's rules: not in the past, in the currency of what
    // is promised, at most 90 days' grace, notes of sane length.
    let customer = app
        .store
        .customers(app.org)
        .unwrap()
        .into_iter()
        .find(|c| c.record.external_id == inv.customer)
        .unwrap();
    let other = if customer.record.currency.code() == "EUR" {
        "USD"
    } else {
        "EUR"
    };
    let r = app.api_post(
        &collector,
        "/api/v1/promises",
        &json!({"customer": inv.customer, "promised_on": "2020-01-01", "grace_days": 120,
                "amount": {"amount": "1.00", "currency": other}, "note": "x".repeat(10_001)}),
        None,
    );
    assert_eq!(
        field_errors(&assert_problem(&r, 422)),
        vec!["/promised_on", "/amount/currency", "/note", "/grace_days"]
    );
    // Nothing is left to promise on a paid invoice.
    let paid =
        ok(&app.api_get(&viewer, "/api/v1/invoices?status=paid&limit=1"))["data"][0]["number"]
            .as_str()
            .expect("the fixture has a paid invoice")
            .to_string();
    let r = app.api_post(
        &collector,
        "/api/v1/promises",
        &json!({"invoice": paid, "promised_on": "2026-12-10"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/invoice"]);
    let pid = p["id"].as_i64().unwrap();
    let cancelled = ok(&app.api_post(
        &collector,
        &format!("/api/v1/promises/{pid}/cancel"),
        &json!({}),
        None,
    ));
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancelled_by"], "api:collector@example.com");
    assert_eq!(
        app.store.promises(app.org).unwrap()[0].cancelled_at,
        Some(support::now())
    );

    // Holds end.
    let h = ok(&app.api_post(
        &collector,
        "/api/v1/holds",
        &json!({"customer": inv.customer, "reason": "Vacation"}),
        None,
    ));
    let hid = h["id"].as_i64().unwrap();
    let ended = ok(&app.api_post(
        &collector,
        &format!("/api/v1/holds/{hid}/end"),
        &json!({}),
        None,
    ));
    assert_eq!(ended["active"], false);
    assert_problem(
        &app.api_post(
            &collector,
            &format!("/api/v1/holds/{hid}/end"),
            &json!({}),
            None,
        ),
        409,
    );
    assert_eq!(
        ok(&app.api_get(&viewer, "/api/v1/holds?active=false"))["data"][0]["id"],
        json!(hid)
    );
    let r = app.api_post(
        &collector,
        "/api/v1/holds",
        &json!({"customer": inv.customer, "reason": "x", "until": "2026-12-03"}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/until"]);

    // Tasks from the dunning run (and messages).
    let stored_tasks = app.store.tasks(app.org, true).unwrap();
    let tasks = all_pages(&app, &viewer, "/api/v1/tasks?status=open", 10);
    assert_eq!(tasks.len(), stored_tasks.len());
    let messages = all_pages(&app, &viewer, "/api/v1/messages", 25);
    let stored_messages = app.store.outbox(app.org, &Default::default()).unwrap();
    assert_eq!(messages.len(), stored_messages.len());
    assert!(!messages.is_empty(), "the dunning run queued reminders");
    let ids: Vec<i64> = messages.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(messages[0].get("body_text").is_none() && messages[0].get("token").is_none());
    let m = ok(&app.api_get(&viewer, &format!("/api/v1/messages/{}", ids[0])));
    assert!(
        m["body_text"].as_str().is_some_and(|b| !b.is_empty()),
        "{m}"
    );
    assert!(m.get("token").is_none());
    let queued = all_pages(&app, &viewer, "/api/v1/messages?status=queued", 500);
    assert_eq!(
        queued.len(),
        stored_messages
            .iter()
            .filter(|m| m.status.as_str() == "queued")
            .count()
    );
    assert_problem(&app.api_get(&viewer, "/api/v1/messages?status=lost"), 422);

    if let Some(t) = tasks.first() {
        let tid = t["id"].as_i64().unwrap();
        let assigned = ok(&app.api_post(
            &collector,
            &format!("/api/v1/tasks/{tid}/assign"),
            &json!({"assignee": "Collector@Example.com"}),
            None,
        ));
        assert_eq!(assigned["assignee"], "collector@example.com");
        let r = app.api_post(
            &collector,
            &format!("/api/v1/tasks/{tid}/assign"),
            &json!({"assignee": "admin@other.example"}),
            None,
        );
        assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/assignee"]);
        let mine = all_pages(
            &app,
            &viewer,
            "/api/v1/tasks?assignee=collector@example.com",
            50,
        );
        assert_eq!(mine.len(), 1);
        let snoozed = ok(&app.api_post(
            &collector,
            &format!("/api/v1/tasks/{tid}/snooze"),
            &json!({"until": "2026-12-20"}),
            None,
        ));
        assert_eq!(snoozed["snoozed_until"], "2026-12-20");
        let done = ok(&app.api_post(
            &collector,
            &format!("/api/v1/tasks/{tid}/complete"),
            &json!({}),
            None,
        ));
        assert_eq!(done["status"], "done");
        assert_problem(
            &app.api_post(
                &collector,
                &format!("/api/v1/tasks/{tid}/complete"),
                &json!({}),
                None,
            ),
            409,
        );
        assert_eq!(
            ok(&app.api_get(&viewer, &format!("/api/v1/tasks/{tid}")))["completed_by"],
            "api:collector@example.com"
        );
    }

    // Notes.
    let path = format!("/api/v1/customers/{}/notes", inv.customer);
    let r = app.api_post(
        &collector,
        &path,
        &json!({"body": "Promised to call back", "invoice": inv.number}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some(path.as_str()));
    let notes = ok(&app.api_get(&viewer, &path));
    assert_eq!(notes["data"][0]["body"], "Promised to call back");
    assert_eq!(notes["data"][0]["invoice"], json!(inv.number));
    let other_customers_invoice = invoices
        .iter()
        .find(|i| i.customer != inv.customer)
        .unwrap();
    let r = app.api_post(
        &collector,
        &path,
        &json!({"body": "x", "invoice": other_customers_invoice.number}),
        None,
    );
    assert_eq!(field_errors(&assert_problem(&r, 422)), vec!["/invoice"]);
    assert_problem(
        &app.api_post(&collector, &path, &json!({"body": "  "}), None),
        422,
    );
}

// --- reports ----------------------------------------------------------------------------------

#[test]
fn reports_are_the_command_lines_json() {
    let Some(app) = spawn_app() else { return };
    let token = app.token("viewer", "read").to_string();
    let got = ok(&app.api_get(&token, "/api/v1/reports/summary"));
    let facts = app.store.ledger_facts(app.org).unwrap();
    let fx = FxTable::new(app.store.fx_rates(app.org).unwrap());
    let ledger = Ledger::new(&facts);
    let conv = BaseConverter {
        base: facts.base_currency,
        table: &fx,
    };
    let today = jiff::civil::date(2026, 12, 3);
    let config = arflow_web::WebConfig::default().summary;
    let s = summary(&ledger, &conv, today, None, &config).unwrap();
    assert_eq!(got, arflow_web::api::report_json::summary_json(&s));
    let keys: Vec<&str> = got
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "report",
            "as_of",
            "currency",
            "segment",
            "total_ar",
            "current_ar",
            "overdue_ar",
            "percent_current",
            "open_invoice_count",
            "overdue_invoice_count",
            "customers_with_balance",
            "customers_overdue",
            "credit_sales",
            "dso_period_days",
            "dso",
            "count_back_dso",
            "best_possible_dso",
            "average_days_delinquent",
            "cei_period",
            "cei_percent",
            "aging"
        ]
    );
    assert!(got["total_ar"].is_string());
    // The open invoices the summary counts are those the invoice list shows as open or overdue.
    let open = all_pages(&app, &token, "/api/v1/invoices?status=open,overdue", 500);
    assert_eq!(got["open_invoice_count"], json!(open.len()));

    let earlier = ok(&app.api_get(&token, "/api/v1/reports/summary?as_of=2026-10-31"));
    assert_eq!(earlier["as_of"], "2026-10-31");
    let aging = ok(&app.api_get(&token, "/api/v1/reports/aging"));
    assert_eq!(aging["report"], "aging");
    assert_eq!(aging["total"], got["total_ar"]);
    assert_problem(
        &app.api_get(&token, "/api/v1/reports/summary?as_of=yesterday"),
        422,
    );
}

// --- throughput --------------------------------------------------------------------------------

/// `GET /api/v1/invoices?status=overdue` on 100k invoices, measured with
/// several keep-alive clients for a few seconds. Heavy: run with
/// `cargo test --release -p arflow-web --test api throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn overdue_invoices_throughput() {
    let Some(app) = support::spawn_app_with(support::Seed {
        customers: 2_000,
        invoices: 100_000,
    }) else {
        return;
    };
    let token = app.token("viewer", "read").to_string();
    let url = app.url("/api/v1/invoices?status=overdue");
    // Warm the ledger view and the index.
    let first = ok(&app.api_get(&token, "/api/v1/invoices?status=overdue"));
    assert_eq!(first["data"].as_array().unwrap().len(), 50);
    let secs = 5.0;
    let start = std::time::Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, token) = (url.clone(), token.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                let mut n = 0u64;
                let t0 = std::time::Instant::now();
                while t0.elapsed().as_secs_f64() < secs {
                    let mut r = agent
                        .get(&url)
                        .header("Authorization", &format!("Bearer {token}"))
                        .call()
                        .expect("request");
                    let _ = r.body_mut().read_to_vec().expect("body");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let rps = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "GET /api/v1/invoices?status=overdue: {rps:.0} requests/s (clients on the same cores)"
    );
}
