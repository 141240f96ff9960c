//! The web application on a random port against a real store (SQLite in a
//! temporary directory, or a fresh PostgreSQL database with
//! `ARFLOW_TEST_BACKEND=postgres`), loaded with the demo ledger and one
//! user per role; and HTTP clients that log in like a browser (cookie,
//! CSRF token from the page) or call the API with a bearer token.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use arflow_demo::DemoParams;
use arflow_domain::clock::FixedClock;
use arflow_store::testing::{DropGuard, test_store};
use arflow_store::{NewApiToken, NewUser, Role, Scope, Store};
use arflow_web::{AppState, WebConfig, secrets};
use jiff::Timestamp;
use jiff::civil::date;

pub const PASSWORD: &str = "correct horse battery";
pub const ADMIN: &str = "admin@example.com";
pub const COLLECTOR: &str = "collector@example.com";
pub const VIEWER: &str = "viewer@example.com";

pub fn now() -> Timestamp {
    "2026-12-03T10:00:00Z".parse().expect("instant")
}

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub org: i64,
    /// Bearer tokens: "<role>:read" and "<role>:write" for each role.
    pub tokens: HashMap<String, String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
    _guard: Option<DropGuard>,
}

/// Options for [`spawn_app_with`].
pub struct Seed {
    pub customers: usize,
    pub invoices: usize,
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            customers: 25,
            invoices: 400,
        }
    }
}

/// `None` when the backend is unavailable and not required (the skip was
/// printed by `test_store`).
pub fn spawn_app() -> Option<TestApp> {
    spawn_app_with(Seed::default())
}

pub fn spawn_app_with(seed: Seed) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, guard) = test_store(dir.path(), now()).expect("test store")?;
    let store: Arc<dyn Store> = Arc::from(store);
    let org = store.default_organization().expect("organization").id;
    let mut params = DemoParams::new(date(2026, 12, 1));
    params.customers = seed.customers;
    params.invoices = seed.invoices;
    params.base_currency = store
        .default_organization()
        .expect("organization")
        .base_currency;
    store
        .apply(org, &arflow_dunning::demo::changes(&params), "demo", now())
        .expect("demo ledger");
    let tokens = add_users(store.as_ref(), org, "example.com");
    Some(start(store, org, tokens, dir, guard))
}

/// One user per role (`admin@DOMAIN`, `collector@DOMAIN`, `viewer@DOMAIN`),
/// each with a read and a write API token.
pub fn add_users(store: &dyn Store, org: i64, domain: &str) -> HashMap<String, String> {
    let hash = secrets::hash_password(PASSWORD).expect("hash");
    let mut tokens = HashMap::new();
    for (name, role) in [
        ("Ada Admin", Role::Admin),
        ("Cole Collector", Role::Collector),
        ("Vi Viewer", Role::Viewer),
    ] {
        let email = format!("{}@{domain}", role.as_str());
        let id = store
            .create_user(
                org,
                &NewUser {
                    email: email.clone(),
                    name: name.to_string(),
                    role,
                    password_hash: hash.clone(),
                },
                "test",
                now(),
            )
            .expect("user");
        for scopes in [vec![Scope::Read], vec![Scope::Read, Scope::Write]] {
            let secret = secrets::new_api_token().expect("token");
            store
                .create_api_token(
                    org,
                    &NewApiToken {
                        user_id: id,
                        name: format!("{} {:?}", role.as_str(), scopes),
                        token_hash: secrets::sha256_hex(&secret),
                        scopes: scopes.clone(),
                        expires_at: None,
                    },
                    "test",
                    now(),
                )
                .expect("api token");
            let key = format!(
                "{}:{}",
                role.as_str(),
                if scopes.contains(&Scope::Write) {
                    "write"
                } else {
                    "read"
                }
            );
            tokens.insert(key, secret);
        }
    }
    tokens
}

fn start(
    store: Arc<dyn Store>,
    org: i64,
    tokens: HashMap<String, String>,
    dir: tempfile::TempDir,
    guard: Option<DropGuard>,
) -> TestApp {
    let state = AppState::new(
        Arc::clone(&store),
        Arc::new(FixedClock(now())),
        WebConfig::default(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            arflow_web::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
    });
    TestApp {
        base,
        store,
        org,
        tokens,
        stop: Some(stop),
        thread: Some(thread),
        _dir: dir,
        _guard: guard,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An answer: status, headers we look at, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("HTTP request");
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

/// A logged-in browser (or an anonymous one, before `login`).
pub struct Browser {
    pub base: String,
    agent: ureq::Agent,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn anonymous(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            agent: agent(),
            cookie: None,
            csrf: None,
        }
    }

    /// Logs in as `email` (one of the role constants) with [`PASSWORD`].
    pub fn login(&self, email: &str) -> Browser {
        let mut b = self.anonymous();
        let r = b.post_form_raw("/login", &[("email", email), ("password", PASSWORD)]);
        assert_eq!(r.status, 303, "login as {email} failed: {}", r.body);
        let cookie = r
            .headers
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("arflow_session="))
            .map(|(_, v)| v.split(';').next().unwrap_or("").to_string())
            .expect("session cookie");
        b.cookie = Some(cookie);
        let page = b.get("/");
        assert_eq!(page.status, 200, "{}", page.body);
        b.csrf = csrf_of(&page.body);
        b
    }

    /// GET with a bearer token (see [`TestApp::tokens`]).
    pub fn api_get(&self, token: &str, path: &str) -> Reply {
        reply(
            agent()
                .get(&self.url(path))
                .header("Authorization", &format!("Bearer {token}"))
                .call(),
        )
    }

    /// POST JSON with a bearer token and optional Idempotency-Key.
    pub fn api_post(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut req = agent()
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {token}"));
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        reply(req.send_json(body))
    }

    pub fn token(&self, role: &str, scope: &str) -> &str {
        &self.tokens[&format!("{role}:{scope}")]
    }
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> Option<String> {
    let i = html.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
    Some(html[i..].chars().take_while(|c| *c != '"').collect())
}

impl Browser {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> Reply {
        let mut req = self.agent.get(&self.url(path));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        reply(req.call())
    }

    /// POSTs a form with the session's CSRF token added.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        if let Some(t) = &self.csrf {
            all.push(("_csrf", t.as_str()));
        }
        self.post_form_raw(path, &all)
    }

    /// POSTs a form exactly as given (no CSRF token added).
    pub fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_form_with(path, &[], fields)
    }

    /// POSTs a form exactly as given, with extra request headers.
    pub fn post_form_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.agent.post(&self.url(path));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send_form(fields.iter().copied()))
    }

    /// POSTs a multipart body (file uploads); the CSRF token goes in the query.
    pub fn post_multipart(&self, path: &str, boundary: &str, body: Vec<u8>) -> Reply {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = match &self.csrf {
            Some(t) => format!("{path}{sep}_csrf={t}"),
            None => path.to_string(),
        };
        let mut req = self.agent.post(&self.url(&path)).header(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        );
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        reply(req.send(&body[..]))
    }
}

/// One of everything an organization can hold, for tests that walk every
/// route with real ids: the first customer and one of its open invoices, a
/// hold, a dispute, a promise, a task, a sent message, a note, the viewer
/// user and one of its API tokens.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub org: i64,
    pub customer: String,
    pub customer_name: String,
    pub invoice: String,
    pub hold: i64,
    pub dispute: i64,
    pub promise: i64,
    pub task: i64,
    pub message: i64,
    pub user: i64,
    pub api_token: i64,
    /// An allocation of a payment to one of this organization's invoices.
    pub allocation: i64,
    /// A policy only this organization has (`<tag>-policy`).
    pub policy: String,
}

pub fn fixture(store: &dyn Store, org: i64, tag: &str) -> Fixture {
    use arflow_domain::dunning::Channel;
    use arflow_domain::dunning::records::{
        Dispute, Hold, MessageStatus, OutboxMessage, Promise, Scope as PauseScope, StepKey, Task,
        TaskKind,
    };
    use arflow_store::{OutboxFilter, PlannedWrite};

    let customers = store.customers(org).expect("customers");
    let customer = customers.first().expect("a customer").record.clone();
    let invoices = store.invoices(org).expect("invoices");
    let mut numbers: Vec<&str> = invoices
        .iter()
        .filter(|i| i.customer == customer.external_id)
        .map(|i| i.number.as_str())
        .collect();
    numbers.sort();
    let invoice = numbers.first().expect("an invoice").to_string();
    let second = numbers.get(1).unwrap_or(&numbers[0]).to_string();
    let key = customer.external_id.clone();
    let hold = store
        .create_hold(
            org,
            &Hold {
                scope: PauseScope::Customer(key.clone()),
                reason: format!("{tag} hold"),
                created_at: now(),
                created_by: "test".into(),
                expires_on: None,
                ended_at: None,
                ended_by: None,
            },
            now(),
        )
        .expect("hold");
    let dispute = store
        .open_dispute(
            org,
            &Dispute {
                invoice: invoice.clone(),
                reason: format!("{tag} dispute"),
                opened_at: now(),
                opened_by: "test".into(),
                resolved_at: None,
                resolved_by: None,
                resolution: None,
            },
            now(),
        )
        .expect("dispute");
    let promise = store
        .create_promise(
            org,
            &Promise {
                scope: PauseScope::Invoice(second),
                amount: None,
                promised_on: date(2026, 12, 20),
                grace_days: 2,
                made_at: now(),
                made_by: "test".into(),
                note: Some(format!("{tag} promise")),
                cancelled_at: None,
                cancelled_by: None,
            },
            now(),
        )
        .expect("promise");
    let message = OutboxMessage {
        key: format!("m/i:{invoice}/default/s2"),
        customer: key.clone(),
        channel: Channel::Email,
        contact: None,
        recipient: format!("billing@{tag}.example"),
        policy: "default".into(),
        step: StepKey::Sequence { step: 2 },
        template: "overdue_7".into(),
        locale: "en".into(),
        currency: customer.currency,
        invoices: vec![],
        subject: format!("{tag} reminder"),
        body_text: format!("Dear {tag}, please pay."),
        body_html: Some(format!("<p>Dear {tag}, please pay.</p>")),
        token: format!("{tag}-token-0123456789abcdef"),
        time_zone: "UTC".into(),
        not_before: now(),
        created_at: now(),
        status: MessageStatus::Sent,
        attempts: 1,
        next_attempt_at: now(),
        claimed_by: None,
        lease_until: None,
        last_error: None,
        provider_id: Some(format!("<{tag}@example>")),
        sent_at: Some(now()),
    };
    let task = Task::open(
        format!("t/{tag}/call"),
        TaskKind::Step,
        &key,
        format!("Call {tag}"),
        format!("{tag} task detail"),
        date(2026, 12, 3),
        now(),
    );
    store
        .record_run(
            org,
            &[PlannedWrite {
                steps: vec![],
                message: Some(message),
                task: Some(task),
                charges: vec![],
            }],
            date(2026, 12, 3),
            "test",
            now(),
        )
        .expect("message and task");
    let message = store
        .outbox(org, &OutboxFilter::default())
        .expect("outbox")
        .first()
        .expect("a message")
        .id;
    let task = store
        .tasks(org, false)
        .expect("tasks")
        .first()
        .expect("a task")
        .id;
    // A user and a token of their own, so routes that change users or
    // revoke tokens never touch the accounts the tests log in with.
    let user = store
        .create_user(
            org,
            &NewUser {
                email: format!("fixture@{tag}.example"),
                name: format!("{tag} fixture"),
                role: Role::Viewer,
                password_hash: secrets::hash_password(PASSWORD).expect("hash"),
            },
            "test",
            now(),
        )
        .expect("fixture user");
    let api_token = store
        .create_api_token(
            org,
            &NewApiToken {
                user_id: user,
                name: format!("{tag} fixture token"),
                token_hash: secrets::sha256_hex(&format!("{tag}-fixture-secret")),
                scopes: vec![Scope::Read],
                expires_at: None,
            },
            "test",
            now(),
        )
        .expect("fixture token");
    let allocation = store
        .allocations(org)
        .expect("allocations")
        .first()
        .expect("the demo ledger has an allocation")
        .id;
    let policy = format!("{tag}-policy");
    let source = include_str!("../../../../policies/default.toml")
        .replace("name = \"default\"", &format!("name = \"{policy}\""));
    store
        .put_policy(org, &policy, &source, "test", now())
        .expect("policy");
    Fixture {
        allocation,
        policy,
        org,
        customer: key,
        customer_name: customer.name,
        invoice,
        hold,
        dispute,
        promise,
        task,
        message,
        user,
        api_token,
    }
}

/// A session for `email` made directly in the store (no password check, no
/// rate limit): for tests that need many independent sessions.
pub fn session_for(store: &dyn Store, email: &str) -> (String, String) {
    let user = store
        .user_by_email(email)
        .expect("user lookup")
        .expect("user exists");
    let cookie = secrets::random_token().expect("token");
    let csrf = secrets::random_token().expect("token");
    store
        .create_session(
            &arflow_store::Session {
                id_hash: secrets::sha256_hex(&cookie),
                user_id: user.id,
                org: user.org,
                csrf_token: csrf.clone(),
                created_at: now(),
                expires_at: now() + jiff::SignedDuration::from_hours(1),
            },
            now(),
        )
        .expect("session");
    (format!("arflow_session={cookie}"), csrf)
}

impl TestApp {
    /// A browser holding a fresh session for `email` (see [`session_for`]).
    pub fn browser_for(&self, email: &str) -> Browser {
        let (cookie, csrf) = session_for(self.store.as_ref(), email);
        Browser {
            base: self.base.clone(),
            agent: agent(),
            cookie: Some(cookie),
            csrf: Some(csrf),
        }
    }

    /// Any request, raw: method, path, optional cookie/bearer, form or JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        bearer: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let url = self.url(path);
        let a = agent();
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        if let Some(t) = bearer {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let body = match form {
            Some(fields) => {
                req = req.header("Content-Type", "application/x-www-form-urlencoded");
                fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                    .collect::<Vec<_>>()
                    .join("&")
            }
            None if bearer.is_some() && method != "GET" => {
                req = req.header("Content-Type", "application/json");
                "{}".to_string()
            }
            None => String::new(),
        };
        reply(a.run(req.body(body).expect("request")))
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The route's path with its parameters replaced by real values.
pub fn concrete(path: &str, fx: &Fixture) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let Some(param) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push(seg.to_string());
            continue;
        };
        let before = if i > 0 { segments[i - 1] } else { "" };
        let value = match (param, before) {
            ("key", _) => fx.customer.clone(),
            ("number", _) => fx.invoice.clone(),
            ("token", _) => "not-a-real-token".to_string(),
            ("file", _) => "app.css".to_string(),
            ("name", _) => fx.policy.clone(),
            ("id", "holds") => fx.hold.to_string(),
            ("id", "disputes") => fx.dispute.to_string(),
            ("id", "promises") => fx.promise.to_string(),
            ("id", "tasks") => fx.task.to_string(),
            ("id", "outbox" | "messages") => fx.message.to_string(),
            ("id", "users") => fx.user.to_string(),
            ("id", "tokens") => fx.api_token.to_string(),
            ("id", "allocations") => fx.allocation.to_string(),
            _ => panic!("the access test has no value for {{{param}}} in {path}: add one"),
        };
        out.push(value);
    }
    out.join("/")
}
