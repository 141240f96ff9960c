//! End-to-end dunning through the `arflow` binary: plan, run, deliver to the
//! local mail folder, holds, disputes, promises, policies, templates.
//! Runs on SQLite, or on a fresh PostgreSQL database with
//! ARFLOW_TEST_BACKEND=postgres.

mod support;

use serde_json::Value;
use support::{Env, s};

const CUSTOMERS: &str = "customer_id,name,currency,segment,country,time_zone,locale\n\
C1,Acme GmbH,EUR,enterprise,DE,Europe/Berlin,de-DE\n\
C2,Blue Harbor LLC,USD,small,US,America/New_York,en-US\n\
C3,Café Lumière,EUR,small,FR,Europe/Paris,fr\n";
const CONTACTS: &str = "customer_id,name,email,phone,primary,email_opt_out,sms_consent\n\
C1,Anna Schmidt,anna@acme.example,,true,false,false\n\
C2,Bob Stone,bob@blueharbor.example,+12125550123,true,false,true\n\
C3,Claire Martin,claire@lumiere.example,,true,true,false\n";
// Now is Tuesday 2026-12-01 10:00 in Berlin.
const NOW: &str = "2026-12-01T09:00:00Z";
const INVOICES: &str = "invoice_number,customer_id,issue_date,due_date,currency,total\n\
A-1,C1,2026-10-01,2026-11-16,EUR,1000.00\n\
A-2,C1,2026-10-20,2026-11-24,EUR,500.00\n\
B-1,C2,2026-11-01,2026-12-04,USD,250.50\n\
L-1,C3,2026-10-01,2026-11-24,EUR,80.00\n\
A-3,C1,2026-11-20,2026-12-20,EUR,300.00\n";

fn setup() -> Option<Env> {
    let env = Env::new()?;
    env.ok(&[
        "init",
        "--name",
        "Nordwind Supplies",
        "--time-zone",
        "Europe/Berlin",
        "--base-currency",
        "EUR",
    ]);
    for (kind, body) in [
        ("customers", CUSTOMERS),
        ("contacts", CONTACTS),
        ("invoices", INVOICES),
    ] {
        let p = env.write(&format!("{kind}.csv"), body);
        env.ok(&["import", kind, s(&p)]);
    }
    Some(env)
}

fn decision<'a>(plan: &'a Value, invoice: &str) -> &'a Value {
    plan["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["invoice"] == invoice)
        .unwrap_or_else(|| panic!("no decision for {invoice}: {plan:#}"))
}

#[test]
fn plan_explains_every_open_invoice_and_run_queues_each_message_once() {
    let Some(env) = setup() else { return };
    let plan = env.json_at(NOW, &["dunning", "plan", "--json"]);
    let actions = plan["actions"].as_array().unwrap();
    // C1: A-1 (+15) and A-2 (+7) in one consolidated email; C2: upcoming (due in 3 days);
    // C3 opted out of email and has no SMS: a task.
    assert_eq!(actions.len(), 3, "{plan:#}");
    let c1 = actions.iter().find(|a| a["customer"] == "C1").unwrap();
    assert_eq!(c1["channel"], "email");
    assert_eq!(c1["recipient"], "anna@acme.example");
    assert_eq!(c1["template"], "overdue_15");
    assert_eq!(c1["invoices"].as_array().unwrap().len(), 2);
    assert_eq!(c1["locale"], "de-DE");
    let c2 = actions.iter().find(|a| a["customer"] == "C2").unwrap();
    assert_eq!(c2["template"], "upcoming");
    // 04:00 in New York: waits for 08:00 local (13:00 UTC).
    assert_eq!(c2["send_at"], "2026-12-01T13:00:00Z");
    let c3 = actions.iter().find(|a| a["customer"] == "C3").unwrap();
    assert_eq!(c3["channel"], "task");
    assert!(
        c3["fallback_reason"]
            .as_str()
            .unwrap()
            .contains("opted out of email"),
        "{c3:#}"
    );
    // Every open invoice is explained, including the one not due yet.
    assert_eq!(plan["invoices"].as_array().unwrap().len(), 5);
    let a3 = decision(&plan, "A-3");
    assert_eq!(a3["state"], "waiting");
    assert!(a3["why"].as_str().unwrap().contains("2026-12-17"), "{a3:#}");

    // The human-readable plan says the same.
    let text = env.ok_at(NOW, &["dunning", "plan"]);
    assert!(text.contains("3 actions due"), "{text}");
    assert!(text.contains("A-3"), "{text}");

    let run = env.json_at(NOW, &["dunning", "run", "--json"]);
    assert_eq!(run["written"]["messages"], 2, "{run:#}");
    assert_eq!(run["written"]["tasks"], 1, "{run:#}");
    // Running again the same day writes nothing new.
    let again = env.json_at(NOW, &["dunning", "run", "--json"]);
    assert_eq!(again["written"]["messages"], 0, "{again:#}");
    assert_eq!(again["written"]["tasks"], 0, "{again:#}");
    let outbox = env.json(&["outbox", "list", "--json"]);
    assert_eq!(outbox.as_array().unwrap().len(), 2);
    let de = outbox
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["customer"] == "C1")
        .unwrap();
    assert!(de["body_text"].as_str().unwrap().contains("A-1"), "{de:#}");
    assert!(
        de["body_text"].as_str().unwrap().contains("1.000,00"),
        "German amounts: {de:#}"
    );
    let tasks = env.json(&["task", "list", "--json"]);
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    assert_eq!(tasks[0]["kind"], "unreachable");

    // The plan now shows the steps as done: nothing due until the next ones.
    let plan = env.json_at(NOW, &["dunning", "plan", "--json"]);
    assert!(plan["actions"].as_array().unwrap().is_empty(), "{plan:#}");
}

#[test]
fn the_worker_delivers_to_the_mail_folder_without_smtp_settings() {
    let Some(env) = setup() else { return };
    env.ok_at(NOW, &["dunning", "run"]);
    // 10:00 in Berlin: C1's message is inside its window; C2's waits for New York morning.
    env.ok_at(NOW, &["worker", "--once", "--deliver-only"]);
    let outbox = env.json(&["outbox", "list", "--json"]);
    let status = |c: &str| {
        outbox
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["customer"] == c)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("C1"), "sent");
    assert_eq!(status("C2"), "queued");
    let mail_dir = env.path().join("data").join("mail");
    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", mail_dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("anna@acme.example"), "{eml}");
    assert!(eml.contains("multipart/alternative"), "{eml}");
    // Later that day in New York the second goes out.
    env.ok_at(
        "2026-12-01T14:00:00Z",
        &["worker", "--once", "--deliver-only"],
    );
    assert_eq!(std::fs::read_dir(&mail_dir).unwrap().count(), 2);
}

#[test]
fn holds_disputes_and_promises_pause_and_are_logged() {
    let Some(env) = setup() else { return };
    let out = env.ok_at(
        NOW,
        &[
            "hold",
            "add",
            "--customer",
            "C1",
            "--reason",
            "CFO on holiday",
            "--until",
            "2026-12-10",
        ],
    );
    assert!(out.contains("Hold #1"), "{out}");
    let plan = env.json_at(NOW, &["dunning", "plan", "--json"]);
    assert_eq!(decision(&plan, "A-1")["state"], "paused");
    assert!(
        decision(&plan, "A-1")["why"]
            .as_str()
            .unwrap()
            .contains("CFO on holiday")
    );
    let holds = env.json_at(NOW, &["hold", "list", "--json"]);
    assert_eq!(holds.as_array().unwrap().len(), 1);
    env.ok_at(NOW, &["hold", "end", "1"]);
    let err = env.fails(&["hold", "end", "1"]);
    assert!(err.contains("already"), "{err}");
    let plan = env.json_at("2026-12-01T09:30:00Z", &["dunning", "plan", "--json"]);
    assert_eq!(decision(&plan, "A-1")["state"], "due");

    env.ok_at(
        NOW,
        &["dispute", "open", "A-2", "--reason", "damaged goods"],
    );
    let err = env.fails(&["dispute", "open", "A-2", "--reason", "again"]);
    assert!(err.contains("A-2"), "{err}");
    let plan = env.json_at("2026-12-01T09:30:00Z", &["dunning", "plan", "--json"]);
    assert_eq!(decision(&plan, "A-2")["state"], "paused");
    assert_eq!(decision(&plan, "A-1")["state"], "due");
    env.ok_at(
        NOW,
        &[
            "dispute",
            "resolve",
            "1",
            "--resolution",
            "credit note issued",
        ],
    );

    env.ok_at(
        NOW,
        &[
            "promise",
            "add",
            "--invoice",
            "A-1",
            "--date",
            "2026-12-05",
            "--amount",
            "1000.00 EUR",
        ],
    );
    let plan = env.json_at("2026-12-01T09:30:00Z", &["dunning", "plan", "--json"]);
    assert_eq!(decision(&plan, "A-1")["state"], "paused");
    // Grace of 3 days by default: broken from 12-09.
    let plan = env.json_at("2026-12-09T09:30:00Z", &["dunning", "plan", "--json"]);
    assert_eq!(
        plan["broken_promises"].as_array().unwrap().len(),
        1,
        "{plan:#}"
    );

    let err = env.fails(&["hold", "add", "--invoice", "NOPE", "--reason", "x"]);
    assert!(err.contains("NOPE"), "{err}");
    let err = env.fails(&["promise", "add", "--customer", "C1", "--date", "2026-13-01"]);
    assert!(err.contains("--date"), "{err}");
}

#[test]
fn policies_are_validated_with_locations_stored_and_assigned() {
    let Some(env) = setup() else { return };
    let bad = env.write(
        "bad.toml",
        "name = \"x\"\n\n[[steps]]\nanchor = \"after_dew\"\noffset_days = 3\nchannel = \"email\"\ntemplate = \"upcoming\"\ntone = \"friendly\"\n",
    );
    let err = env.fails(&["policy", "validate", s(&bad)]);
    assert!(err.contains("bad.toml:4:10"), "{err}");
    assert!(err.contains("after_dew"), "{err}");
    let good = env.write(
        "gentle.toml",
        "name = \"gentle\"\nconsolidation = \"invoice\"\n\n[[steps]]\nanchor = \"after_due\"\noffset_days = 20\nchannel = \"email\"\ntemplate = \"overdue_15\"\ntone = \"neutral\"\n",
    );
    let out = env.ok(&["policy", "validate", s(&good)]);
    assert!(out.contains("ok"), "{out}");
    env.ok(&["policy", "set", s(&good)]);
    let err = env.fails(&["policy", "assign", "nope", "--customer", "C1"]);
    assert!(err.contains("nope"), "{err}");
    env.ok(&["policy", "assign", "gentle", "--customer", "C1"]);
    let list = env.ok(&["policy", "list"]);
    assert!(
        list.contains("gentle") && list.contains("customer C1"),
        "{list}"
    );
    let plan = env.json_at(NOW, &["dunning", "plan", "--json"]);
    // A-1 is 15 days overdue, the gentle policy waits until day 20.
    assert_eq!(decision(&plan, "A-1")["policy"], "gentle");
    assert_eq!(decision(&plan, "A-1")["state"], "waiting");
    env.ok(&["policy", "unassign", "--customer", "C1"]);
    let plan = env.json_at(NOW, &["dunning", "plan", "--json"]);
    assert_eq!(decision(&plan, "A-1")["policy"], "default");
}

#[test]
fn settings_pause_and_send_windows() {
    let Some(env) = setup() else { return };
    env.ok(&[
        "dunning",
        "settings",
        "--send-window",
        "09:00-17:00",
        "--send-days",
        "mon-sat",
        "--holiday",
        "2026-12-24",
        "--interest",
        "eu",
    ]);
    let s = env.json(&["dunning", "settings", "--json"]);
    assert_eq!(
        s["send_window"]["days"],
        serde_json::json!([1, 2, 3, 4, 5, 6])
    );
    assert_eq!(s["holidays"], serde_json::json!(["2026-12-24"]));
    let err = env.fails(&["dunning", "settings", "--send-window", "18:00-09:00"]);
    assert!(err.contains("open before it closes"), "{err}");
    let err = env.fails(&["dunning", "settings", "--send-days", "mon-funday"]);
    assert!(err.contains("funday"), "{err}");
    // Statutory interest now appears on the plan.
    let plan = env.json_at(NOW, &["dunning", "plan", "--json"]);
    let c1 = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["customer"] == "C1")
        .unwrap();
    assert_eq!(c1["invoices"][0]["compensation"], "40.00", "{c1:#}");
    env.ok(&["dunning", "pause"]);
    let plan = env.json_at(NOW, &["dunning", "plan", "--json"]);
    assert!(plan["actions"].as_array().unwrap().is_empty());
    assert_eq!(decision(&plan, "A-1")["state"], "paused");
    env.ok(&["dunning", "resume"]);
}

#[test]
fn template_preview_renders_for_a_customer() {
    let Some(env) = setup() else { return };
    let out = env.ok_at(
        NOW,
        &["template", "preview", "overdue_7", "--customer", "C1"],
    );
    assert!(out.contains("A-1") && out.contains("A-2"), "{out}");
    let html = env.ok_at(
        NOW,
        &[
            "template",
            "preview",
            "overdue_7",
            "--customer",
            "C1",
            "--html",
        ],
    );
    assert!(html.contains("<table"), "{html}");
    let sms = env.ok_at(
        NOW,
        &[
            "template",
            "preview",
            "due_today",
            "--customer",
            "C2",
            "--channel",
            "sms",
        ],
    );
    assert!(!sms.trim().is_empty());
    let err = env.fails(&["template", "preview", "nope", "--customer", "C1"]);
    assert!(err.contains("nope"), "{err}");
    let err = env.fails(&["template", "preview", "overdue_7", "--customer", "ZZ"]);
    assert!(err.contains("ZZ"), "{err}");
}

#[test]
fn serve_answers_one_click_unsubscribe_and_stops_on_sigterm() {
    use std::io::BufRead;
    let Some(env) = setup() else { return };
    env.ok_at(NOW, &["dunning", "run"]);
    let outbox = env.json(&["outbox", "list", "--json"]);
    let message = outbox
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["customer"] == "C1")
        .unwrap();
    let token = message["token"].as_str().unwrap().to_string();

    let mut server = env
        .command()
        .args(["serve", "--port", "0", "--no-worker"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start arflow serve");
    let mut lines = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("a line from the server")
            .expect("utf-8");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    assert_eq!(
        http.get(format!("{base}/healthz")).call().unwrap().status(),
        200
    );
    let done = http
        .post(format!("{base}/u/{token}"))
        .content_type("application/x-www-form-urlencoded")
        .send("List-Unsubscribe=One-Click")
        .unwrap();
    assert_eq!(done.status(), 200);

    // The next plan treats the address as opted out: a task instead of email.
    let plan = env.json_at("2026-12-20T09:00:00Z", &["dunning", "plan", "--json"]);
    let c1 = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["customer"] == "C1")
        .unwrap_or_else(|| panic!("{plan:#}"));
    assert_eq!(c1["channel"], "task", "{c1:#}");
    assert!(
        c1["fallback_reason"]
            .as_str()
            .unwrap()
            .contains("opted out of email"),
        "{c1:#}"
    );

    // SIGTERM: a clean stop.
    let pid = i32::try_from(server.id()).expect("pid");
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = server.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}
