//! The admin and dunning pages over HTTP against a real store (SQLite, or
//! PostgreSQL with ARFLOW_TEST_BACKEND=postgres): the pause switch, policies,
//! the dunning plan, the outbox, CSV import, settings (organization, dunning,
//! users, API tokens) and the audit log.

mod support;

use std::collections::BTreeMap;

use arflow_domain::dunning::Channel;
use arflow_domain::dunning::records::{MessageStatus, OutboxMessage, StepKey};
use arflow_domain::model::{ChannelPreferences, Contact, Customer, Invoice, InvoiceStatus};
use arflow_domain::money::Currency;
use arflow_dunning::Snapshot;
use arflow_dunning::render::TemplateRenderer;
use arflow_store::{Change, ChangeSet, EventFilter, OutboxFilter, PlannedWrite, Role};
use arflow_web::secrets;
use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;
use support::{ADMIN, Browser, COLLECTOR, PASSWORD, Reply, TestApp, VIEWER, spawn_app};

// ---------------------------------------------------------------------------
// Helpers.

/// The page with the entities MiniJinja writes in text and attributes decoded.
fn text(r: &Reply) -> String {
    r.body
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every value of attribute `attr` in the page, in order.
fn attrs(page: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    page.match_indices(&needle)
        .map(|(i, _)| {
            page[i + needle.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect()
}

/// The `data-count` of the element with this id.
fn count_of(page: &str, id: &str) -> usize {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let rest = &page[at..];
    let tag_end = rest.find('>').expect("tag end");
    attrs(&rest[..tag_end], "data-count")
        .first()
        .unwrap_or_else(|| panic!("#{id} has no data-count"))
        .parse()
        .expect("a number")
}

/// The text content of the element with this id (up to the next tag).
fn content_of(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let rest = &page[at..];
    let start = rest.find('>').expect("tag end") + 1;
    rest[start..].chars().take_while(|c| *c != '<').collect()
}

/// Logs in with any email and password, like a browser.
fn login_as(app: &TestApp, email: &str, password: &str) -> Option<Browser> {
    let mut b = app.anonymous();
    let r = b.post_form_raw("/login", &[("email", email), ("password", password)]);
    if r.status != 303 {
        return None;
    }
    let cookie = r
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("arflow_session="))
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_string())?;
    b.cookie = Some(cookie);
    let page = b.get("/dunning");
    assert_eq!(page.status, 200, "{}", page.body);
    b.csrf = support::csrf_of(&page.body);
    Some(b)
}

fn user_id(app: &TestApp, email: &str) -> i64 {
    app.store
        .user_by_email(email)
        .expect("user")
        .expect("exists")
        .id
}

fn events(app: &TestApp, filter: EventFilter) -> Vec<arflow_domain::model::Event> {
    app.store.events(app.org, &filter).expect("events")
}

fn multipart(boundary: &str, fields: &[(&str, &str)], file: Option<(&str, &str)>) -> Vec<u8> {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    if let Some((name, content)) = file {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n{content}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

/// The value of the hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let i = page
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} field"))
        + needle.len();
    page[i..].chars().take_while(|c| *c != '"').collect()
}

/// Runs dunning once as the CLI does, with the shipped templates.
fn run_dunning(app: &TestApp) -> arflow_dunning::RunReport {
    let org = app.store.organization(app.org).unwrap().unwrap();
    let renderer = TemplateRenderer {
        templates: arflow_notify::Templates::builtin(),
        sender_email: Some("ar@example.com".into()),
        sender_phone: None,
        unsubscribe_base_url: Some("https://ar.example.com".into()),
    };
    arflow_dunning::run(app.store.as_ref(), &org, support::now(), &renderer, "test").expect("run")
}

// ---------------------------------------------------------------------------
// The pause switch.

#[test]
fn only_admins_pause_and_resume_all_sending() {
    let Some(app) = spawn_app() else { return };
    let admin = app.login(ADMIN);
    let page = admin.get("/dunning");
    assert_eq!(page.status, 200, "{}", page.body);
    let t = text(&page);
    assert!(t.contains("id=\"pause-switch\""));
    assert!(t.contains("data-paused=\"false\""));
    assert!(t.contains("Pause all sending"));
    assert!(
        t.contains("data-confirm=\"Pause ALL sending?"),
        "the switch asks first"
    );
    for id in [
        "setting-send-window",
        "setting-weekly-cap",
        "setting-interest",
        "policy-table",
    ] {
        assert!(t.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(t.contains("Monday to Friday"), "the send window in words");

    // Viewers see the state, not the switch; collectors and viewers cannot flip it.
    let viewer = app.login(VIEWER);
    let vpage = text(&viewer.get("/dunning"));
    assert!(vpage.contains("id=\"sending-state\"") && !vpage.contains("id=\"pause-switch\""));
    for who in [&viewer, &app.login(COLLECTOR)] {
        let r = who.post_form("/dunning/pause", &[("paused", "true")]);
        assert_eq!(r.status, 403, "{}", r.body);
    }
    // And nobody without the form's CSRF token.
    assert_eq!(
        admin
            .post_form_raw("/dunning/pause", &[("paused", "true")])
            .status,
        403
    );
    assert!(!app.store.dunning_settings(app.org).unwrap().paused);

    let r = admin.post_form("/dunning/pause", &[("paused", "true")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/dunning?ok=paused"));
    assert!(app.store.dunning_settings(app.org).unwrap().paused);
    let logged = events(
        &app,
        EventFilter {
            kind_prefix: Some("dunning_settings.updated".into()),
            ..EventFilter::default()
        },
    );
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].actor, ADMIN);
    assert!(
        logged[0].data.to_string().contains("paused"),
        "{}",
        logged[0].data
    );

    let t = text(&admin.get("/dunning?ok=paused"));
    assert!(t.contains("All sending is paused."), "the flash");
    assert!(t.contains("data-paused=\"true\"") && t.contains("Resume sending"));
    // The plan says so too.
    assert!(text(&viewer.get("/dunning/plan")).contains("id=\"plan-paused\""));

    let r = admin.post_form("/dunning/pause", &[("paused", "false")]);
    assert_eq!(r.location.as_deref(), Some("/dunning?ok=resumed"));
    assert!(!app.store.dunning_settings(app.org).unwrap().paused);
    assert_eq!(
        admin
            .post_form("/dunning/pause", &[("paused", "maybe")])
            .status,
        422
    );
}

// ---------------------------------------------------------------------------
// Policies.

const VALID_POLICY: &str = "name = \"default\"\nconsolidation = \"customer\"\n\n[[steps]]\nanchor = \"after_due\"\noffset_days = 5\nchannel = \"email\"\ntemplate = \"overdue_7\"\ntone = \"neutral\"\n\n[[steps]]\nanchor = \"after_due\"\noffset_days = 20\nchannel = \"task\"\ntemplate = \"call\"\ntone = \"firm\"\n";

#[test]
fn policies_are_shown_validated_with_locations_and_saved() {
    let Some(app) = spawn_app() else { return };
    let viewer = app.login(VIEWER);
    let page = viewer.get("/dunning/policies/default");
    assert_eq!(page.status, 200, "{}", page.body);
    let t = text(&page);
    assert!(t.contains("id=\"steps-table\"") && t.contains("id=\"policy-source\""));
    assert!(t.contains("[[steps]]"), "the TOML source");
    assert!(!t.contains("<textarea"), "viewers do not edit");
    assert_eq!(viewer.get("/dunning/policies/nope").status, 404);

    let admin = app.login(ADMIN);
    let t = text(&admin.get("/dunning/policies/default"));
    assert!(t.contains("id=\"policy-form\"") && t.contains("id=\"policy-source-input\""));

    // A mistake on line 6: nothing is stored, the text is kept, the error located.
    let bad = VALID_POLICY.replacen("after_due", "after_dew", 1);
    let r = admin.post_form("/dunning/policies/default", &[("source", bad.as_str())]);
    assert_eq!(r.status, 422, "{}", r.body);
    let t = text(&r);
    assert!(t.contains("id=\"policy-errors\""));
    assert!(t.contains("data-line=\"5\""), "{t}");
    assert!(t.contains("Line 5, column"), "{t}");
    assert!(t.contains("'after_dew' is not an anchor"), "{t}");
    assert!(
        t.contains("anchor = \"after_dew\""),
        "what was typed is kept"
    );
    assert!(
        app.store.policies(app.org).unwrap().is_empty(),
        "nothing saved"
    );
    // Collectors cannot save at all.
    let collector = app.login(COLLECTOR);
    assert_eq!(
        collector
            .post_form("/dunning/policies/default", &[("source", VALID_POLICY)])
            .status,
        403
    );
    // The name in the text must be the page's.
    let renamed = VALID_POLICY.replace("name = \"default\"", "name = \"other\"");
    let r = admin.post_form("/dunning/policies/default", &[("source", renamed.as_str())]);
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("Line 1, column 1 (name)"));

    // A valid policy (sent with CRLF like a browser) is stored as the user sees it.
    let crlf = VALID_POLICY.replace('\n', "\r\n");
    let r = admin.post_form("/dunning/policies/default", &[("source", crlf.as_str())]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.location.as_deref(),
        Some("/dunning/policies/default?ok=policy_saved")
    );
    let stored = app.store.policies(app.org).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].source, VALID_POLICY);
    let t = text(&viewer.get("/dunning/policies/default"));
    assert!(t.contains("data-step=\"2\"") && !t.contains("data-step=\"3\""));
    assert!(t.contains("20 days after due"));
    assert_eq!(
        events(
            &app,
            EventFilter {
                kind_prefix: Some("policy.".into()),
                actor: Some(ADMIN.into()),
                ..EventFilter::default()
            }
        )
        .len(),
        1
    );

    // New policies: named like a slug, not taken, copied from another.
    for (name, why) in [
        ("Big Customers", "lower-case letters"),
        ("default", "already exists"),
        ("", "give the new policy a name"),
    ] {
        let r = admin.post_form("/dunning/policies", &[("name", name), ("from", "default")]);
        assert_eq!(r.status, 422, "{name}");
        let t = text(&r);
        assert!(
            t.contains("id=\"new-policy-error\"") && t.contains(why),
            "{name}: {t}"
        );
    }
    let r = admin.post_form(
        "/dunning/policies",
        &[("name", "enterprise"), ("from", "default")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.location.as_deref(),
        Some("/dunning/policies/enterprise?ok=policy_created")
    );
    let created = app
        .store
        .policies(app.org)
        .unwrap()
        .into_iter()
        .find(|p| p.name == "enterprise")
        .expect("stored");
    let parsed = arflow_domain::dunning::parse_policy(&created.source, "x").expect("valid");
    assert_eq!(
        (parsed.name.as_str(), parsed.steps.len()),
        ("enterprise", 2)
    );
    let t = text(&viewer.get("/dunning"));
    assert!(t.contains("data-policy=\"enterprise\""));
    assert_eq!(attrs(&t, "data-steps"), vec!["2", "2"]);
}

// ---------------------------------------------------------------------------
// The plan.

/// The planner's decision counts for the instant the page plans for.
fn expected_counts(app: &TestApp, at: Timestamp) -> BTreeMap<String, usize> {
    let org = app.store.organization(app.org).unwrap().unwrap();
    let snapshot = Snapshot::load(app.store.as_ref(), &org, at).expect("snapshot");
    let plan = snapshot.plan().expect("plan");
    let mut counts = BTreeMap::new();
    for d in &plan.decisions {
        *counts.entry(d.decision.state().to_string()).or_insert(0) += 1;
    }
    counts
}

fn page_counts(page: &str) -> BTreeMap<String, usize> {
    [
        "due", "deferred", "waiting", "finished", "paused", "stopped",
    ]
    .iter()
    .map(|s| (s.to_string(), count_of(page, &format!("plan-count-{s}"))))
    .filter(|(_, n)| *n > 0)
    .collect()
}

#[test]
fn the_plan_explains_every_open_invoice_and_follows_the_date() {
    let Some(app) = spawn_app() else { return };
    let viewer = app.login(VIEWER);
    let r = viewer.get("/dunning/plan");
    assert_eq!(r.status, 200, "{}", r.body);
    let t = text(&r);
    let expected = expected_counts(&app, support::now());
    assert_eq!(page_counts(&t), expected);
    let total: usize = expected.values().sum();
    assert!(total > 10, "the demo has open invoices ({total})");
    assert_eq!(count_of(&t, "plan-count-all"), total);
    // Up to 50 rows per page, each with its decision and the reason in words.
    let decisions = attrs(&t, "data-decision");
    assert_eq!(decisions.len(), total.min(50));
    assert!(t.contains("id=\"plan-table\""));
    assert!(t.contains("class=\"reason\">Next:") || t.contains("class=\"reason\">Due:"));
    assert_eq!(t.contains("rel=\"next\""), total > 50);
    // What a run would send, with the channel, recipient and time in the customer's zone.
    if expected.get("due").copied().unwrap_or(0) > 0 {
        assert!(t.contains("id=\"plan-actions\""));
        assert!(!attrs(&t, "data-channel").is_empty());
    }

    // Filters: by decision ...
    let waiting = expected.get("waiting").copied().unwrap_or(0);
    assert!(waiting > 0);
    let t = text(&viewer.get("/dunning/plan?decision=waiting"));
    let shown = attrs(&t, "data-decision");
    assert_eq!(shown.len(), waiting.min(50));
    assert!(shown.iter().all(|d| d == "waiting"));
    // ... and by customer.
    let customer = app.store.customers(app.org).unwrap()[0].external_id.clone();
    let t = text(&viewer.get(&format!("/dunning/plan?customer={customer}")));
    let rows = attrs(&t, "data-customer");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|c| *c == customer), "{rows:?}");

    // Another day: the same local time on that date in the organization's zone.
    let org = app.store.organization(app.org).unwrap().unwrap();
    let tz = TimeZone::get(&org.time_zone).unwrap();
    let time = tz.to_datetime(support::now()).time();
    let later = tz
        .to_timestamp(date(2027, 2, 15).to_datetime(time))
        .unwrap();
    let expected_later = expected_counts(&app, later);
    assert_ne!(expected_later, expected, "the date matters");
    let t = text(&viewer.get("/dunning/plan?date=2027-02-15"));
    assert_eq!(page_counts(&t), expected_later);
    assert!(t.contains("data-date=\"2027-02-15\""));
    assert!(t.contains("2027-02-15"));

    // Mistakes are named, not guessed around.
    let r = viewer.get("/dunning/plan?date=2027-13-01");
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("is not a date"));
    assert_eq!(viewer.get("/dunning/plan?decision=soon").status, 422);
    assert_eq!(viewer.get("/dunning/plan?customer=NOPE").status, 422);
}

// ---------------------------------------------------------------------------
// The outbox.

/// A second organization with one message of its own.
fn other_org_message(app: &TestApp) -> i64 {
    let store = app.store.as_ref();
    let org = store
        .create_organization(
            "other",
            "Other Co",
            Currency::EUR,
            "Europe/Paris",
            support::now(),
        )
        .expect("organization")
        .id;
    let changes = ChangeSet {
        customers: vec![Change::Insert(Customer {
            external_id: "X1".into(),
            name: "Secret Corp".into(),
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
        contacts: vec![Change::Insert(Contact {
            customer: "X1".into(),
            external_id: "XK1".into(),
            name: "Eve".into(),
            email: Some("eve@secret.example".into()),
            phone: None,
            role: None,
            is_primary: true,
            preferences: ChannelPreferences::default(),
        })],
        invoices: vec![Change::Insert(Invoice {
            number: "X-INV-1".into(),
            customer: "X1".into(),
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
    store
        .apply(org, &changes, "test", support::now())
        .expect("seed");
    let message = OutboxMessage {
        key: "m/other".into(),
        customer: "X1".into(),
        channel: Channel::Email,
        contact: Some("XK1".into()),
        recipient: "eve@secret.example".into(),
        policy: "default".into(),
        step: StepKey::Sequence { step: 1 },
        template: "overdue_7".into(),
        locale: "en".into(),
        currency: Currency::EUR,
        invoices: vec![],
        subject: "Secret subject".into(),
        body_text: "Secret text".into(),
        body_html: None,
        token: "0123456789abcdef0123456789abcdef".into(),
        time_zone: "Europe/Paris".into(),
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
    let write = PlannedWrite {
        steps: vec![],
        message: Some(message),
        task: None,
        charges: vec![],
    };
    store
        .record_run(org, &[write], date(2026, 12, 3), "test", support::now())
        .expect("record");
    store
        .outbox(org, &OutboxFilter::default())
        .unwrap()
        .first()
        .expect("message")
        .id
}

#[test]
fn the_outbox_lists_messages_and_shows_one_safely() {
    let Some(app) = spawn_app() else { return };
    let viewer = app.login(VIEWER);
    let empty = text(&viewer.get("/dunning/outbox"));
    assert!(empty.contains("id=\"outbox-table\"") && attrs(&empty, "data-message").is_empty());

    let report = run_dunning(&app);
    assert!(report.written.messages > 0, "{report:?}");
    let stored = app.store.outbox(app.org, &OutboxFilter::default()).unwrap();
    let r = viewer.get("/dunning/outbox");
    assert_eq!(r.status, 200, "{}", r.body);
    let t = text(&r);
    let ids = attrs(&t, "data-message");
    assert_eq!(ids.len(), stored.len().min(50));
    // Newest first, like the store lists them.
    assert_eq!(ids[0], stored[0].id.to_string());
    assert!(attrs(&t, "data-status").iter().all(|s| s == "queued"));
    assert!(t.contains(&stored[0].recipient));
    // Filters.
    let t = text(&viewer.get("/dunning/outbox?status=sent"));
    assert!(attrs(&t, "data-message").is_empty());
    let customer = stored[0].customer.clone();
    let t = text(&viewer.get(&format!(
        "/dunning/outbox?customer={customer}&status=queued"
    )));
    let shown = attrs(&t, "data-customer");
    assert!(!shown.is_empty() && shown.iter().all(|c| *c == customer));
    assert_eq!(viewer.get("/dunning/outbox?status=lost").status, 422);

    // One email: headers, history from the events, the text part, the HTML only as source.
    let m = stored
        .iter()
        .find(|m| m.body_html.is_some())
        .expect("an email with an HTML part");
    let r = viewer.get(&format!("/dunning/outbox/{}", m.id));
    assert_eq!(r.status, 200, "{}", r.body);
    let t = text(&r);
    assert_eq!(content_of(&t, "message-key"), m.key);
    assert!(t.contains(&m.subject));
    assert!(t.contains(&m.recipient));
    assert!(attrs(&t, "data-kind").contains(&"message.queued".to_string()));
    assert!(t.contains("id=\"message-text\""));
    let first_line = m.body_text.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(t.contains(first_line.trim()), "the text part");
    assert!(t.contains("id=\"message-html-source\""));
    let html = m.body_html.as_deref().unwrap();
    assert!(html.contains('<'));
    // The stored HTML is escaped in our page, never markup of ours.
    assert!(!r.body.contains(html), "the HTML part must not be injected");
    assert!(t.contains(html), "it is shown as source");
    assert!(!r.body.to_lowercase().contains("<style"));

    // Another organization's message, an unknown id, not a number: 404.
    let other = other_org_message(&app);
    let r = viewer.get(&format!("/dunning/outbox/{other}"));
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("Secret"));
    assert!(!text(&viewer.get("/dunning/outbox")).contains("Secret Corp"));
    assert_eq!(viewer.get("/dunning/outbox/999999").status, 404);
    assert_eq!(viewer.get("/dunning/outbox/abc").status, 404);
}

// ---------------------------------------------------------------------------
// Import.

#[test]
fn import_previews_without_writing_and_commits_atomically() {
    let Some(app) = spawn_app() else { return };
    for who in [VIEWER, COLLECTOR] {
        assert_eq!(app.login(who).get("/import").status, 403);
    }
    let admin = app.login(ADMIN);
    let t = text(&admin.get("/import"));
    assert!(t.contains("id=\"import-form\""));
    assert!(
        t.contains("action=\"/import/preview?_csrf="),
        "multipart forms carry the token in the URL"
    );

    let existing = app.store.customers(app.org).unwrap()[0].clone();
    let csv = format!(
        "customer_id,name,currency,payment_terms_days,notes\n\
         NEW-1,Alpha GmbH,EUR,30,first\n\
         NEW-2,Beta Ltd,GBP,forty,second\n\
         {},Renamed Customer,{},14,third\n\
         NEW-3,Gamma SA,EUR,14,fourth\n",
        existing.external_id,
        existing.currency.code()
    );
    let before = app.store.customers(app.org).unwrap().len();
    let body = multipart(
        "XyZ",
        &[
            ("kind", "customers"),
            ("allocation_order", "oldest-due-first"),
        ],
        Some(("customers.csv", &csv)),
    );
    // Without the CSRF token in the URL the upload is refused.
    let mut no_csrf = app.login(ADMIN);
    no_csrf.csrf = None;
    assert_eq!(
        no_csrf
            .post_multipart("/import/preview", "XyZ", body.clone())
            .status,
        403
    );
    let events_before = events(&app, EventFilter::default()).len();

    let r = admin.post_multipart("/import/preview", "XyZ", body.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    let t = text(&r);
    assert_eq!(count_of(&t, "import-count-new"), 2);
    assert_eq!(count_of(&t, "import-count-changed"), 1);
    assert_eq!(count_of(&t, "import-count-invalid"), 1);
    // The mapping found: notes is not imported.
    assert!(t.contains("data-header=\"customer_id\" data-field=\"customer_id\""));
    assert!(t.contains("data-header=\"notes\" data-field=\"\""));
    // The sample rows with their outcome.
    assert_eq!(
        attrs(&t, "data-status"),
        vec!["new", "invalid", "changed", "new"]
    );
    // The bad cell, located.
    assert!(t.contains("id=\"import-errors\""));
    assert!(
        t.contains("data-line=\"3\" data-column=\"payment_terms_days\""),
        "{t}"
    );
    assert!(t.contains("<code>forty</code>"));
    assert!(t.contains("not a number of days"));
    // Nothing was written.
    assert_eq!(app.store.customers(app.org).unwrap().len(), before);
    assert_eq!(events(&app, EventFilter::default()).len(), events_before);

    // Committing with an invalid row and without skipping: refused, nothing written.
    let token = hidden(&t, "token");
    let r = admin.post_form("/import/commit", &[("token", &token)]);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(text(&r).contains("Nothing was imported: 1 row is invalid"));
    assert_eq!(app.store.customers(app.org).unwrap().len(), before);
    // Another admin cannot use this admin's preview.
    let other_admin_id = {
        let hash = secrets::hash_password(PASSWORD).unwrap();
        app.store
            .create_user(
                app.org,
                &arflow_store::NewUser {
                    email: "admin2@example.com".into(),
                    name: "Second Admin".into(),
                    role: Role::Admin,
                    password_hash: hash,
                },
                "test",
                support::now(),
            )
            .unwrap()
    };
    assert!(other_admin_id > 0);
    let admin2 = login_as(&app, "admin2@example.com", PASSWORD).expect("login");
    let r = admin2.post_form(
        "/import/commit",
        &[("token", &token), ("skip_invalid", "true")],
    );
    assert_eq!(r.status, 410);
    assert_eq!(app.store.customers(app.org).unwrap().len(), before);

    // Skipping the invalid row writes the others, in one go, as the admin.
    let r = admin.post_form(
        "/import/commit",
        &[("token", &token), ("skip_invalid", "true")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.location.clone().unwrap();
    assert!(
        location.starts_with("/import?ok=imported&kind=customers&new=2&changed=1"),
        "{location}"
    );
    let customers = app.store.customers(app.org).unwrap();
    assert_eq!(customers.len(), before + 2);
    assert!(customers.iter().any(|c| c.external_id == "NEW-3"));
    assert!(!customers.iter().any(|c| c.external_id == "NEW-2"));
    assert_eq!(
        customers
            .iter()
            .find(|c| c.external_id == existing.external_id)
            .unwrap()
            .name,
        "Renamed Customer"
    );
    let written = events(
        &app,
        EventFilter {
            actor: Some(format!("web:{ADMIN}")),
            ..EventFilter::default()
        },
    );
    assert_eq!(written.len(), 3, "two created, one updated");
    let t = text(&admin.get(&location));
    assert_eq!(attrs(&t, "data-new"), vec!["2"]);
    assert!(t.contains("Import committed."));
    // A preview commits once.
    let r = admin.post_form(
        "/import/commit",
        &[("token", &token), ("skip_invalid", "true")],
    );
    assert_eq!(r.status, 410);
    assert_eq!(app.store.customers(app.org).unwrap().len(), before + 2);

    // File-level problems: a missing required column, a broken mapping.
    let body = multipart(
        "b1",
        &[("kind", "payments")],
        Some(("p.csv", "customer_id,amount\nC1,10\n")),
    );
    let r = admin.post_multipart("/import/preview", "b1", body);
    assert_eq!(r.status, 422);
    let t = text(&r);
    assert!(
        t.contains("id=\"import-error\"") && t.contains("received_on"),
        "{t}"
    );
    let body = multipart(
        "b2",
        &[
            ("kind", "customers"),
            ("mapping", "[columns]\ncustomer_id = \"Kundennr\"\n"),
        ],
        Some(("c.csv", "Kundennummer,name\nK1,Anna\n")),
    );
    let r = admin.post_multipart("/import/preview", "b2", body);
    assert_eq!(r.status, 422);
    let t = text(&r);
    assert!(t.contains("Kundennr"), "{t}");
    assert!(
        t.contains("customer_id = \"Kundennr\""),
        "the mapping is kept"
    );
    let body = multipart("b3", &[("kind", "customers")], None);
    assert_eq!(
        admin.post_multipart("/import/preview", "b3", body).status,
        422
    );
    // A clean file with a mapping commits without any box to tick.
    let body = multipart(
        "b4",
        &[
            ("kind", "customers"),
            (
                "mapping",
                "[columns]\ncustomer_id = \"Kundennr\"\nname = \"Firma\"\n",
            ),
        ],
        Some(("k.csv", "Kundennr,Firma\nK-9,Kappa AG\n")),
    );
    let t = text(&admin.post_multipart("/import/preview", "b4", body));
    assert_eq!(count_of(&t, "import-count-invalid"), 0);
    assert!(!t.contains("id=\"import-skip-invalid\""));
    let r = admin.post_form("/import/commit", &[("token", &hidden(&t, "token"))]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        app.store
            .customers(app.org)
            .unwrap()
            .iter()
            .any(|c| c.external_id == "K-9" && c.name == "Kappa AG")
    );
}

// ---------------------------------------------------------------------------
// Settings.

#[test]
fn settings_change_the_organization_and_dunning_with_located_mistakes() {
    let Some(app) = spawn_app() else { return };
    assert_eq!(app.login(COLLECTOR).get("/settings").status, 403);
    let admin = app.login(ADMIN);
    let page = admin.get("/settings");
    assert_eq!(page.status, 200, "{}", page.body);
    let t = text(&page);
    for id in [
        "org-form",
        "dunning-settings-form",
        "users-table",
        "tokens-table",
        "new-user-form",
        "new-token-form",
    ] {
        assert!(t.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(
        t.contains("id=\"delivery-none\""),
        "nothing configured in the tests"
    );
    let org = app.store.organization(app.org).unwrap().unwrap();

    let r = admin.post_form(
        "/settings/organization",
        &[
            ("name", "  "),
            ("base_currency", "EURO"),
            ("time_zone", "Mars/Olympus"),
        ],
    );
    assert_eq!(r.status, 422);
    let t = text(&r);
    assert!(
        t.contains("data-field=\"name\"")
            && t.contains("data-field=\"base_currency\"")
            && t.contains("data-field=\"time_zone\"")
    );
    assert!(
        t.contains("value=\"Mars/Olympus\""),
        "what was typed is kept"
    );
    // Another base currency needs a confirmation.
    let other = if org.base_currency == Currency::EUR {
        "GBP"
    } else {
        "EUR"
    };
    let r = admin.post_form(
        "/settings/organization",
        &[
            ("name", "Renamed Org"),
            ("base_currency", other),
            ("time_zone", "Europe/Berlin"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("restates every report"));
    let r = admin.post_form(
        "/settings/organization",
        &[
            ("name", "Renamed Org"),
            ("base_currency", org.base_currency.code()),
            ("time_zone", "Europe/Berlin"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let now_org = app.store.organization(app.org).unwrap().unwrap();
    assert_eq!(
        (now_org.name.as_str(), now_org.time_zone.as_str()),
        ("Renamed Org", "Europe/Berlin")
    );
    assert_eq!(now_org.base_currency, org.base_currency);
    assert_eq!(
        events(
            &app,
            EventFilter {
                kind_prefix: Some("organization.".into()),
                ..EventFilter::default()
            }
        )[0]
        .actor,
        ADMIN
    );

    let dunning = |holidays: &str, cap: &str| {
        vec![
            ("window_start", "09:00".to_string()),
            ("window_end", "17:00".to_string()),
            ("day_mon", "on".to_string()),
            ("day_tue", "on".to_string()),
            ("day_thu", "on".to_string()),
            ("holidays", holidays.to_string()),
            ("min_gap_days", "4".to_string()),
            ("weekly_cap", cap.to_string()),
            ("promise_grace_days", "5".to_string()),
            ("default_policy", "default".to_string()),
            ("min_balance", "25.00 EUR".to_string()),
            ("interest", "eu".to_string()),
        ]
    };
    let form = dunning("2026-12-25\n2026-12-32", "0");
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = admin.post_form("/settings/dunning", &fields);
    assert_eq!(r.status, 422);
    let t = text(&r);
    assert!(
        t.contains("holidays '2026-12-32': line 2: not a date"),
        "{t}"
    );
    assert!(t.contains("data-field=\"weekly_cap\""));
    assert_eq!(
        app.store.dunning_settings(app.org).unwrap().weekly_cap,
        2,
        "unchanged"
    );
    let form = dunning("2026-12-25\r\n2026-12-24", "3");
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = admin.post_form("/settings/dunning", &fields);
    assert_eq!(r.status, 303, "{}", r.body);
    let s = app.store.dunning_settings(app.org).unwrap();
    assert_eq!(s.weekly_cap, 3);
    assert_eq!(s.min_gap_days, 4);
    assert_eq!(s.holidays, vec![date(2026, 12, 24), date(2026, 12, 25)]);
    assert_eq!(s.send_window.days.len(), 3);
    assert_eq!(s.min_balance[0].to_string(), "25.00 EUR");
    // The dunning page words it.
    let t = text(&app.login(VIEWER).get("/dunning"));
    assert!(
        t.contains("09:00 to 17:00, Monday, Tuesday and Thursday"),
        "{t}"
    );
    assert!(t.contains("At most 3 messages"));
    assert!(t.contains("2026-12-24, 2026-12-25"));
}

#[test]
fn admins_manage_users_but_not_themselves() {
    let Some(app) = spawn_app() else { return };
    let admin = app.login(ADMIN);
    // A typed password: the new user can log in with it.
    let r = admin.post_form(
        "/settings/users",
        &[
            ("email", " Nora@Example.com "),
            ("name", "Nora"),
            ("role", "collector"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let nora = app
        .store
        .user_by_email("nora@example.com")
        .unwrap()
        .expect("created");
    assert_eq!(nora.role, Role::Collector);
    assert!(login_as(&app, "nora@example.com", PASSWORD).is_some());
    // A generated password, shown once.
    let r = admin.post_form(
        "/settings/users",
        &[
            ("email", "otto@example.com"),
            ("role", "viewer"),
            ("password", ""),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t = text(&r);
    let password = content_of(&t, "new-password");
    assert_eq!(password.len(), 16, "{password}");
    let otto = login_as(&app, "otto@example.com", &password).expect("the generated password works");
    assert!(
        !text(&admin.get("/settings")).contains(&password),
        "shown once"
    );
    // Mistakes and duplicates.
    let r = admin.post_form(
        "/settings/users",
        &[
            ("email", "nora@example.com"),
            ("role", "viewer"),
            ("password", ""),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("already has an account"));
    let r = admin.post_form(
        "/settings/users",
        &[("email", "bad"), ("role", "boss"), ("password", "short")],
    );
    assert_eq!(r.status, 422);
    let t = text(&r);
    for f in ["email", "role", "password"] {
        assert!(t.contains(&format!("data-field=\"{f}\"")), "{f}");
    }
    assert_eq!(
        app.login(COLLECTOR)
            .post_form(
                "/settings/users",
                &[("email", "x@example.com"), ("role", "admin")]
            )
            .status,
        403
    );

    // Change a role.
    let r = admin.post_form(
        &format!("/settings/users/{}", nora.id),
        &[("action", "role"), ("role", "admin")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        app.store.user(app.org, nora.id).unwrap().unwrap().role,
        Role::Admin
    );
    // An admin cannot demote or disable themselves.
    let me = user_id(&app, ADMIN);
    let r = admin.post_form(
        &format!("/settings/users/{me}"),
        &[("action", "role"), ("role", "viewer")],
    );
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("id=\"users-error\""));
    let r = admin.post_form(&format!("/settings/users/{me}"), &[("action", "disable")]);
    assert_eq!(r.status, 422);
    let mine = app.store.user(app.org, me).unwrap().unwrap();
    assert_eq!((mine.role, mine.disabled), (Role::Admin, false));

    // Disabling ends the user's session at once.
    assert_eq!(otto.get("/dunning").status, 200);
    let r = admin.post_form(
        &format!("/settings/users/{}", user_id(&app, "otto@example.com")),
        &[("action", "disable")],
    );
    assert_eq!(r.status, 303);
    let r = otto.get("/dunning");
    assert_eq!(r.status, 303, "back to the login form");
    assert!(r.location.unwrap().starts_with("/login"));
    assert!(login_as(&app, "otto@example.com", &password).is_none());
    let t = text(&admin.get("/settings"));
    assert!(
        t.contains("data-user=\"otto@example.com\" data-user-id")
            && t.contains("data-disabled=\"true\"")
    );
    // And enabling lets them in again.
    let r = admin.post_form(
        &format!("/settings/users/{}", user_id(&app, "otto@example.com")),
        &[("action", "enable")],
    );
    assert_eq!(r.status, 303);
    assert!(login_as(&app, "otto@example.com", &password).is_some());
    // Users of another organization are not found.
    let other = app
        .store
        .create_organization(
            "elsewhere",
            "Elsewhere",
            Currency::EUR,
            "UTC",
            support::now(),
        )
        .unwrap()
        .id;
    let stranger = app
        .store
        .create_user(
            other,
            &arflow_store::NewUser {
                email: "stranger@elsewhere.example".into(),
                name: "Stranger".into(),
                role: Role::Viewer,
                password_hash: secrets::hash_password(PASSWORD).unwrap(),
            },
            "test",
            support::now(),
        )
        .unwrap();
    let r = admin.post_form(
        &format!("/settings/users/{stranger}"),
        &[("action", "disable")],
    );
    assert_eq!(r.status, 404);
    assert!(!app.store.user(other, stranger).unwrap().unwrap().disabled);
    let logged: Vec<String> = events(
        &app,
        EventFilter {
            kind_prefix: Some("user.".into()),
            actor: Some(ADMIN.into()),
            ..EventFilter::default()
        },
    )
    .into_iter()
    .map(|e| e.kind)
    .collect();
    assert!(
        logged.contains(&"user.created".to_string())
            && logged.contains(&"user.disabled".to_string()),
        "{logged:?}"
    );
}

#[test]
fn api_tokens_are_created_once_and_revoked() {
    let Some(app) = spawn_app() else { return };
    let admin = app.login(ADMIN);
    let viewer_id = user_id(&app, VIEWER);
    let r = admin.post_form(
        "/settings/tokens",
        &[
            ("user_id", &viewer_id.to_string()),
            ("name", "ERP sync"),
            ("access", "read"),
            ("expires_on", "2027-06-30"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t = text(&r);
    let secret = content_of(&t, "new-token-secret");
    assert!(secret.starts_with("arf_"), "{secret}");
    let (token, user) = app
        .store
        .api_token_by_hash(&secrets::sha256_hex(&secret), support::now())
        .unwrap()
        .expect("the secret works");
    assert_eq!(
        (user.email.as_str(), token.name.as_str()),
        (VIEWER, "ERP sync")
    );
    assert_eq!(token.scopes, vec![arflow_store::Scope::Read]);
    assert!(token.expires_at.is_some());
    // Listed without the secret.
    let page = text(&admin.get("/settings"));
    assert!(page.contains(&format!(
        "data-token=\"{}\" data-state=\"active\"",
        token.id
    )));
    assert!(!page.contains(&secret));
    assert!(!page.contains(&token.token_hash));
    // Mistakes are named.
    let r = admin.post_form(
        "/settings/tokens",
        &[
            ("user_id", "999999"),
            ("name", ""),
            ("access", "all"),
            ("expires_on", "2020-01-01"),
        ],
    );
    assert_eq!(r.status, 422);
    let t = text(&r);
    for f in ["user_id", "name", "access", "expires_on"] {
        assert!(t.contains(&format!("data-field=\"{f}\"")), "{f}");
    }
    // Revoke: once; the secret stops working.
    let r = admin.post_form(&format!("/settings/tokens/{}/revoke", token.id), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        app.store
            .api_token_by_hash(&secrets::sha256_hex(&secret), support::now())
            .unwrap()
            .is_none()
    );
    assert!(text(&admin.get("/settings")).contains(&format!(
        "data-token=\"{}\" data-state=\"revoked\"",
        token.id
    )));
    assert_eq!(
        admin
            .post_form(&format!("/settings/tokens/{}/revoke", token.id), &[])
            .status,
        409
    );
    assert_eq!(
        admin
            .post_form("/settings/tokens/999999/revoke", &[])
            .status,
        404
    );
    assert_eq!(
        app.login(COLLECTOR)
            .post_form(&format!("/settings/tokens/{}/revoke", token.id), &[])
            .status,
        403
    );
}

// ---------------------------------------------------------------------------
// The audit log.

#[test]
fn the_audit_log_filters_and_pages_newest_first() {
    let Some(app) = spawn_app() else { return };
    let admin = app.login(ADMIN);
    assert_eq!(
        admin
            .post_form("/dunning/pause", &[("paused", "true")])
            .status,
        303
    );
    let viewer = app.login(VIEWER);
    let r = viewer.get("/audit");
    assert_eq!(r.status, 200, "{}", r.body);
    let t = text(&r);
    let ids: Vec<i64> = attrs(&t, "data-event")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 50);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let all = events(&app, EventFilter::default());
    assert_eq!(ids[0], all[0].id);
    assert!(
        t.contains("dunning_settings.updated"),
        "the pause is the newest change"
    );
    // Keyset paging: the next page starts below this one's oldest.
    let older = t
        .split("id=\"audit-older\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .map(|s| s.chars().take_while(|c| *c != '"').collect::<String>())
        .expect("an older link");
    assert_eq!(older, format!("/audit?before={}", ids[49]));
    let t2 = text(&viewer.get(&older));
    let ids2: Vec<i64> = attrs(&t2, "data-event")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ids2.first().copied(), all.get(50).map(|e| e.id));
    assert!(t2.contains("id=\"audit-newest\""));

    // By actor.
    let t = text(&viewer.get(&format!("/audit?actor={ADMIN}")));
    let actors = attrs(&t, "data-actor");
    assert!(
        !actors.is_empty() && actors.iter().all(|a| a == ADMIN),
        "{actors:?}"
    );
    // By kind prefix.
    let t = text(&viewer.get("/audit?kind=user."));
    let kinds = attrs(&t, "data-kind");
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k.starts_with("user.")),
        "{kinds:?}"
    );
    // By customer, with the customer linked.
    let customer = app.store.customers(app.org).unwrap()[0].external_id.clone();
    let t = text(&viewer.get(&format!("/audit?customer={customer}&entity_type=customer")));
    let shown = attrs(&t, "data-event");
    assert_eq!(shown.len(), 1, "one customer.created");
    assert!(t.contains(&format!("href=\"/customers/{customer}\"")));
    // By entity, with the data shown.
    let t = text(&viewer.get("/audit?entity_type=dunning_settings&kind=dunning_settings.updated"));
    assert_eq!(attrs(&t, "data-event").len(), 1);
    assert!(t.contains("<summary>Details</summary>") && t.contains("\"paused\""));
    let t = text(&viewer.get("/audit?actor=nobody"));
    assert!(attrs(&t, "data-event").is_empty() && t.contains("No event matches these filters"));
}
