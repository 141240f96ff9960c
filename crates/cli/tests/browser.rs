//! End to end in a real headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini), against `arflow serve --demo` started on a
//! random port exactly as the README tells a new user to start it.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `ARFLOW_CHROMIUM` /
//! `ARFLOW_CHROMEDRIVER` pointing at them). Without them the test says
//! SKIPPED; `ARFLOW_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::Env;

/// The instant the server's and the CLI's clocks are stopped at.
const NOW: &str = "2026-12-03T10:00:00Z";

fn find(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(var) {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Chromium and chromedriver, or `None` after printing why the test is skipped.
fn browser(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = find(
        "ARFLOW_CHROMIUM",
        &[
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ],
    );
    let driver = find("ARFLOW_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let why = format!(
                "{test} needs Chromium and ChromeDriver (apt-get install chromium chromium-driver)"
            );
            if std::env::var("ARFLOW_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("{why}, and ARFLOW_REQUIRE_BROWSER=1");
            }
            // Straight to stderr: the harness hides eprintln! of passing tests.
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
            None
        }
    }
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `arflow serve --demo --port 0`: returns the process, its URL and the demo login.
fn serve(env: &Env) -> (Killed, String, String, String) {
    let mut child = env
        .command()
        .args(["serve", "--demo", "--port", "0", "--no-worker"])
        .env("ARFLOW_NOW", NOW)
        .env("ARFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start arflow serve");
    let stderr = child.stderr.take().expect("stderr");
    let child = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut url, mut login) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while url.is_none() || login.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("arflow serve printed its URL and demo login");
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.split("demo login: ").nth(1) {
            login = Some(rest.trim().to_string());
        }
    }
    let login = login.unwrap_or_default();
    let (email, password) = login.split_once(" / ").expect("EMAIL / PASSWORD");
    (
        child,
        url.unwrap_or_default(),
        email.to_string(),
        password.to_string(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// chromedriver on a free port, ready to accept sessions.
fn chromedriver(driver: &PathBuf) -> (Killed, String) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = ureq::get(&format!("{url}/status")).call()
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Killed(child), url)
}

async fn connect(driver_url: &str, chromium: &PathBuf, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver_url)
        .await
        .expect("WebDriver session")
}

/// How long any one page or element may take to show up.
const PATIENCE: Duration = Duration::from_secs(30);

/// The element matching `css`, waiting for it to appear.
async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let source = c.source().await.unwrap_or_default();
            let tail: String = source.chars().take(3000).collect();
            panic!("no element {css} on {url}: {e}\n{tail}")
        }
    }
}

/// Polls until `check` holds for the page's source, or fails with `what`.
async fn until(c: &Client, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let source = c.source().await.unwrap_or_default();
        if check(&source) {
            return;
        }
        if Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!("{what}: not seen on {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn attr(c: &Client, css: &str, name: &str) -> String {
    wait_for(c, css)
        .await
        .attr(name)
        .await
        .expect("attribute")
        .unwrap_or_else(|| panic!("{css} has no {name}"))
}

async fn path_of(c: &Client) -> String {
    let u = c.current_url().await.expect("url");
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

async fn log_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/")).await.expect("open the site");
    // Anonymous visitors land on the login form, told where they will return.
    wait_for(c, "#login-form").await;
    assert!(
        path_of(c).await.starts_with("/login?next="),
        "sent to the login form with the page asked for"
    );
    wait_for(c, "#email")
        .await
        .send_keys(email)
        .await
        .expect("email");
    wait_for(c, "#password")
        .await
        .send_keys(password)
        .await
        .expect("password");
    wait_for(c, "#login").await.click().await.expect("log in");
}

/// A JSON number or null as the page writes it into `data-value`.
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn a_collector_day_in_the_browser_and_a_viewer_refused() {
    let Some((chromium, driver)) = browser("browser test") else {
        return;
    };
    let Some(env) = Env::new() else { return };
    let (_server, base, email, password) = serve(&env);
    // The numbers the command line reports for the same data and day.
    let out = env
        .command()
        .args(["report", "summary", "--json"])
        .env("ARFLOW_NOW", NOW)
        .output()
        .expect("arflow report summary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    // A viewer, created the way an admin would.
    let mut add = env
        .command()
        .args([
            "user",
            "add",
            "viewer@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("arflow user add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(b"viewer pass phrase 1\n")
        .expect("password");
    let added = add.wait_with_output().expect("user add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let (_driver, driver_url) = chromedriver(&driver);
    let profile = tempfile::tempdir().expect("profile dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let c = connect(&driver_url, &chromium, profile.path()).await;
        collector_day(&c, &base, &email, &password, &summary).await;
        viewer_refused(&c, &base).await;
        c.close().await.expect("close the browser");
    });
}

async fn collector_day(c: &Client, base: &str, email: &str, password: &str, summary: &Value) {
    // Log in: straight on to the overview.
    log_in(c, base, email, password).await;
    wait_for(c, "#kpis").await;
    assert_eq!(path_of(c).await, "/");

    // The overview shows exactly what `arflow report summary --json` says.
    for (kpi, key) in [
        ("kpi-total-ar", "total_ar"),
        ("kpi-overdue-ar", "overdue_ar"),
        ("kpi-percent-current", "percent_current"),
        ("kpi-count-back-dso", "count_back_dso"),
        ("kpi-dso", "dso"),
        ("kpi-best-possible-dso", "best_possible_dso"),
        ("kpi-average-days-delinquent", "average_days_delinquent"),
        ("kpi-cei", "cei_percent"),
    ] {
        let shown = attr(c, &format!("#{kpi}"), "data-value").await;
        assert_eq!(
            shown,
            json_text(&summary[key]),
            "{kpi} against summary.{key}"
        );
    }
    assert_eq!(
        attr(c, "#kpis", "data-as-of").await,
        json_text(&summary["as_of"])
    );
    for bucket in summary["aging"].as_array().expect("aging buckets") {
        let label = bucket["label"].as_str().expect("label");
        let shown = attr(c, &format!("tr[data-bucket='{label}']"), "data-value").await;
        assert_eq!(shown, json_text(&bucket["amount"]), "aging bucket {label}");
    }

    // Invoices: choosing "Overdue" filters at once (no button needed).
    c.goto(&format!("{base}/invoices")).await.expect("invoices");
    wait_for(c, "#filter-state")
        .await
        .select_by_value("overdue")
        .await
        .expect("choose overdue");
    let deadline = Instant::now() + PATIENCE;
    while !path_of(c).await.contains("state=overdue") {
        assert!(
            Instant::now() < deadline,
            "the filter did not submit itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = attr(c, "#invoice-totals", "data-count").await;
    assert_eq!(count, summary["overdue_invoice_count"].to_string());
    let rows = c
        .find_all(Locator::Css("#invoice-table tbody tr"))
        .await
        .expect("rows");
    assert!(
        !rows.is_empty() && rows.len() <= 50,
        "one page of rows: {}",
        rows.len()
    );
    for r in &rows {
        assert_eq!(
            r.attr("data-state").await.expect("state").as_deref(),
            Some("overdue")
        );
    }
    // Search narrows to one invoice by its number.
    let number = rows[0]
        .attr("data-invoice")
        .await
        .expect("number")
        .expect("number");
    let customer = rows[0]
        .attr("data-customer")
        .await
        .expect("key")
        .expect("key");
    let q = wait_for(c, "#filter-q").await;
    q.send_keys(&number).await.expect("type");
    wait_for(c, "#filter-apply")
        .await
        .click()
        .await
        .expect("filter");
    until(c, "the search applied", |s| {
        s.contains("id=\"invoice-totals\" data-count=\"1\"")
    })
    .await;
    let only = wait_for(c, "#invoice-table tbody tr").await;
    assert_eq!(
        only.attr("data-invoice").await.expect("n").as_deref(),
        Some(number.as_str())
    );

    // Open the customer and add a note: it heads the timeline.
    only.find(Locator::Css("td a"))
        .await
        .expect("customer link")
        .click()
        .await
        .expect("open the customer");
    wait_for(c, "#customer-name").await;
    assert_eq!(path_of(c).await, format!("/customers/{customer}"));
    let note = "Called their AP desk: payment run on Friday";
    wait_for(c, "#note-body")
        .await
        .send_keys(note)
        .await
        .expect("note");
    wait_for(c, "#note-submit")
        .await
        .click()
        .await
        .expect("add note");
    until(c, "the note in the timeline", |s| s.contains(note)).await;
    let first = wait_for(c, "#timeline li").await;
    assert_eq!(
        first.attr("class").await.expect("class").as_deref(),
        Some("kind-note")
    );
    assert!(first.text().await.expect("text").contains(note));

    // Create a hold on the whole customer.
    wait_for(c, "#hold-details summary")
        .await
        .click()
        .await
        .expect("open hold form");
    let reason = "Disputing the October delivery; waiting for their buyer";
    wait_for(c, "#hold-reason")
        .await
        .send_keys(reason)
        .await
        .expect("reason");
    wait_for(c, "#hold-scope")
        .await
        .select_by_value("customer")
        .await
        .expect("scope");
    wait_for(c, "#hold-submit")
        .await
        .click()
        .await
        .expect("create hold");
    until(c, "the hold listed", |s| s.contains(reason)).await;
    let hold_li = {
        let mut found = None;
        for li in c
            .find_all(Locator::Css("#active-holds li"))
            .await
            .expect("holds")
        {
            if li.text().await.expect("text").contains(reason) {
                found = Some(li);
            }
        }
        found.expect("the new hold in the list")
    };
    let hold_id = hold_li.attr("data-hold").await.expect("id").expect("id");

    // The plan preview for this customer: every open invoice paused by the hold.
    c.goto(&format!("{base}/dunning")).await.expect("dunning");
    wait_for(c, "#link-plan").await.click().await.expect("plan");
    wait_for(c, "#plan-table").await;
    wait_for(c, "#plan-customer")
        .await
        .send_keys(&customer)
        .await
        .expect("customer");
    wait_for(c, "#plan-apply")
        .await
        .click()
        .await
        .expect("show");
    until(c, "the plan for one customer", |s| {
        s.contains(&format!("value=\"{customer}\""))
    })
    .await;
    let planned = c
        .find_all(Locator::Css("#plan-table tbody tr"))
        .await
        .expect("plan rows");
    assert!(
        !planned.is_empty(),
        "the customer has open invoices in the plan"
    );
    for r in &planned {
        assert_eq!(
            r.attr("data-customer").await.expect("c").as_deref(),
            Some(customer.as_str())
        );
        assert_eq!(
            r.attr("data-decision").await.expect("d").as_deref(),
            Some("paused"),
            "held invoices are paused: {}",
            r.text().await.unwrap_or_default()
        );
    }

    // Lift the hold (the page asks first).
    c.goto(&format!("{base}/customers/{customer}"))
        .await
        .expect("customer");
    wait_for(c, &format!("#hold-end-{hold_id}"))
        .await
        .click()
        .await
        .expect("lift");
    c.accept_alert().await.expect("confirm lifting the hold");
    until(c, "the hold gone", |s| {
        !s.contains(reason) || s.contains("Hold lifted")
    })
    .await;
    until(c, "the hold gone from the list", |s| {
        !s.contains(&format!("data-hold=\"{hold_id}\""))
    })
    .await;

    // Log out: back at the login form, and the overview is closed again.
    wait_for(c, "#logout").await.click().await.expect("log out");
    wait_for(c, "#login-form").await;
    c.goto(&format!("{base}/")).await.expect("overview");
    wait_for(c, "#login-form").await;
}

async fn viewer_refused(c: &Client, base: &str) {
    log_in(c, base, "viewer@example.com", "viewer pass phrase 1").await;
    wait_for(c, "#kpis").await;
    // The dunning page shows the state of sending but no switch.
    c.goto(&format!("{base}/dunning")).await.expect("dunning");
    assert_eq!(attr(c, "#sending-state", "data-paused").await, "false");
    assert!(
        c.find(Locator::Css("#pause-switch")).await.is_err(),
        "a viewer sees no pause switch"
    );
    // Posting the admin's form anyway (with the viewer's own CSRF token,
    // from this same page) is refused, and nothing changes.
    let status = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=_csrf]').value;
             fetch('/dunning/pause', {
               method: 'POST',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: '_csrf=' + encodeURIComponent(csrf) + '&paused=true',
               redirect: 'manual'
             }).then(r => done(r.status), e => done(String(e)));",
            vec![],
        )
        .await
        .expect("post the pause form");
    assert_eq!(status, json!(403), "a viewer pausing all sending");
    c.refresh().await.expect("reload");
    assert_eq!(attr(c, "#sending-state", "data-paused").await, "false");
    // Admin pages answer with a refusal page.
    c.goto(&format!("{base}/settings")).await.expect("settings");
    until(c, "the refusal", |s| s.contains("<h1>Forbidden</h1>")).await;
    assert!(
        c.find(Locator::Css("form[action='/settings/organization']"))
            .await
            .is_err()
    );
    c.goto(&format!("{base}/")).await.expect("overview");
    wait_for(c, "#logout").await.click().await.expect("log out");
    wait_for(c, "#login-form").await;
}
