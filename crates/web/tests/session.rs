//! Logging in and out over HTTP: cookie attributes, wrong passwords,
//! the per-email lockout, server-side logout, disabled users, security
//! headers, request ids, /healthz and /metrics.

mod support;

use support::{ADMIN, PASSWORD, VIEWER, spawn_app};

#[test]
fn login_sets_a_strict_cookie_and_logout_ends_the_session_on_the_server() {
    let Some(app) = spawn_app() else { return };
    let anon = app.anonymous();
    // Anonymous pages go to the login form, keeping where they were going.
    let r = anon.get("/invoices?state=overdue");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/login?next=/invoices%3Fstate%3Doverdue")
    );
    let form = anon.get("/login");
    assert_eq!(form.status, 200);
    assert!(form.body.contains("id=\"email\"") && form.body.contains("id=\"password\""));

    let r = anon.post_form_raw(
        "/login",
        &[
            ("email", "Admin@Example.com "),
            ("password", PASSWORD),
            ("next", "/invoices"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/invoices"));
    let cookie = r.header("set-cookie").expect("cookie").to_string();
    assert!(cookie.starts_with("arflow_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );

    let b = app.login(ADMIN);
    assert_eq!(b.get("/").status, 200);
    let r = b.post_form("/logout", &[]);
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/login"));
    // The old cookie is dead on the server, not only in the browser.
    let again = b.get("/");
    assert_eq!(again.status, 303, "a logged-out session must not work");
}

#[test]
fn login_never_redirects_off_site() {
    let Some(app) = spawn_app() else { return };
    let r = app.anonymous().post_form_raw(
        "/login",
        &[
            ("email", VIEWER),
            ("password", PASSWORD),
            ("next", "//evil.example/x"),
        ],
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/"));
}

#[test]
fn login_next_with_a_tab_stays_on_site() {
    // Browsers drop the tab, which would make "//evil.example".
    let Some(app) = spawn_app() else { return };
    let r = app.anonymous().post_form_raw(
        "/login",
        &[
            ("email", VIEWER),
            ("password", PASSWORD),
            ("next", "/\t/evil.example"),
        ],
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/"));
}

#[test]
fn another_site_cannot_log_a_visitor_in() {
    let Some(app) = spawn_app() else { return };
    let fields = [("email", VIEWER), ("password", PASSWORD)];
    let anon = app.anonymous();
    let r = anon.post_form_with("/login", &[("Sec-Fetch-Site", "cross-site")], &fields);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.header("set-cookie").is_none());
    let r = anon.post_form_with("/login", &[("Origin", "https://evil.example")], &fields);
    assert_eq!(r.status, 403, "{}", r.body);
    // The login form itself (same origin) still works.
    let r = anon.post_form_with("/login", &[("Sec-Fetch-Site", "same-origin")], &fields);
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn wrong_passwords_are_refused_and_an_email_is_locked_after_five() {
    let Some(app) = spawn_app() else { return };
    let anon = app.anonymous();
    for i in 0..5 {
        let r = anon.post_form_raw(
            "/login",
            &[("email", ADMIN), ("password", "wrong password!")],
        );
        assert_eq!(r.status, 401, "attempt {i}");
        assert!(r.body.contains("not right"), "{}", r.body);
        assert!(r.header("set-cookie").is_none());
    }
    // Even the right password is refused while the email is locked.
    let r = anon.post_form_raw("/login", &[("email", ADMIN), ("password", PASSWORD)]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // Another account is not affected.
    let r = anon.post_form_raw("/login", &[("email", VIEWER), ("password", PASSWORD)]);
    assert_eq!(r.status, 303);
    // Unknown emails are refused like wrong passwords (no enumeration).
    let r = anon.post_form_raw(
        "/login",
        &[("email", "nobody@example.com"), ("password", PASSWORD)],
    );
    assert_eq!(r.status, 401);
    let metrics = anon.get("/metrics").body;
    assert!(
        metrics.contains("arflow_logins_failed_total 6"),
        "{metrics}"
    );
}

#[test]
fn disabling_a_user_ends_their_sessions() {
    let Some(app) = spawn_app() else { return };
    let b = app.login(VIEWER);
    assert_eq!(b.get("/").status, 200);
    let user = app.store.user_by_email(VIEWER).unwrap().unwrap();
    app.store
        .set_disabled(app.org, user.id, true, "test", support::now())
        .unwrap();
    assert_eq!(b.get("/").status, 303);
    let r = app
        .anonymous()
        .post_form_raw("/login", &[("email", VIEWER), ("password", PASSWORD)]);
    assert_eq!(r.status, 401);
}

#[test]
fn every_answer_carries_security_headers_and_a_request_id() {
    let Some(app) = spawn_app() else { return };
    let b = app.login(ADMIN);
    for path in ["/", "/login", "/healthz", "/nowhere", "/assets/app.css"] {
        let r = b.get(path);
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(
            r.header("x-request-id").is_some_and(|v| v.len() >= 8),
            "{path}"
        );
    }
    // An incoming request id is kept (for tracing across proxies).
    let mut r = ureq::get(&app.url("/healthz"))
        .header("X-Request-Id", "trace-abc-123")
        .call()
        .expect("healthz");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-abc-123")
    );
    assert_eq!(r.body_mut().read_to_string().unwrap(), "ok\n");
    let metrics = b.get("/metrics");
    assert!(
        metrics
            .body
            .contains("arflow_http_requests_total{method=\"GET\",route=\"/\",status=\"200\"}"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("arflow_http_request_duration_seconds_bucket")
    );
}
