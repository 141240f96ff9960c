//! Crash safety: the worker is killed with SIGKILL at random moments while it
//! plans and delivers to a real SMTP server, 50 times, then restarted to
//! finish. Every planned message must reach the server exactly once, or be
//! marked in doubt and surfaced as a task (the crash came between telling
//! the server and recording it): duplicates = 0, silent losses = 0.
//! Runs on SQLite, and on PostgreSQL with ARFLOW_TEST_BACKEND=postgres.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use support::{Env, SmtpSink, s};

const ITERATIONS: usize = 50;
const CUSTOMERS_PER_ITERATION: usize = 5;

/// A small deterministic generator (xorshift64*): the kill times are
/// reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn killing_the_worker_never_duplicates_or_loses_a_message() {
    let Some(env) = Env::new() else { return };
    let Some(smtp) = SmtpSink::start("killing_the_worker_never_duplicates_or_loses_a_message", 10)
    else {
        return;
    };
    let seed: u64 = std::env::var("ARFLOW_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234);
    eprintln!("crash test seed {seed} (set ARFLOW_CRASH_SEED to reproduce)");
    let mut rng = Rng(seed | 1);

    env.ok(&[
        "init",
        "--name",
        "Crash Test Ltd",
        "--time-zone",
        "UTC",
        "--base-currency",
        "EUR",
    ]);
    std::fs::write(
        env.path().join("data").join("arflow.toml"),
        format!(
            "[email]\nfrom = {{ name = \"Crash Test Ltd\", address = \"ar@crash.example\" }}\nreply_to_domain = \"replies.crash.example\"\nbounce_domain = \"bounces.crash.example\"\n\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\ntimeout_seconds = 10\n",
            smtp.port
        ),
    )
    .expect("write config");
    // Open all day, every day, so the test does not depend on when it runs.
    env.ok(&[
        "dunning",
        "settings",
        "--send-window",
        "00:00-23:59:59.999999999",
        "--send-days",
        "mon-sun",
    ]);
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let due = today.checked_sub(jiff::Span::new().days(20)).expect("date");
    let issued = due.checked_sub(jiff::Span::new().days(30)).expect("date");

    let mut planned_customers = 0;
    let mut killed_running = 0;
    for i in 0..ITERATIONS {
        // New work every iteration, so each kill can land in planning or delivery.
        let mut customers = String::from("customer_id,name,currency,time_zone,locale\n");
        let mut contacts = String::from("customer_id,name,email,primary\n");
        let mut invoices =
            String::from("invoice_number,customer_id,issue_date,due_date,currency,total\n");
        for j in 0..CUSTOMERS_PER_ITERATION {
            let c = format!("K{i:02}{j}");
            customers.push_str(&format!("{c},Customer {c},EUR,UTC,en\n"));
            contacts.push_str(&format!(
                "{c},Pat {c},{}@crash.example,true\n",
                c.to_lowercase()
            ));
            invoices.push_str(&format!("INV-{c},{c},{issued},{due},EUR,{}.00\n", 100 + j));
        }
        for (kind, body) in [
            ("customers", customers),
            ("contacts", contacts),
            ("invoices", invoices),
        ] {
            let p = env.write(&format!("{kind}-{i}.csv"), &body);
            env.ok(&["import", kind, s(&p)]);
        }
        planned_customers += CUSTOMERS_PER_ITERATION;

        let mut worker = env
            .command()
            .args([
                "worker",
                "--lease-seconds",
                "1",
                "--idle-seconds",
                "0",
                "--batch",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the worker");
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        if worker.try_wait().expect("worker state").is_none() {
            killed_running += 1;
        }
        // Child::kill sends SIGKILL on Unix: no cleanup code runs.
        let _ = worker.kill();
        let _ = worker.wait();
    }
    assert!(
        killed_running >= ITERATIONS / 2,
        "the worker should still be running when most kills land ({killed_running})"
    );

    // Let every lease run out, then one clean pass finishes the work.
    std::thread::sleep(Duration::from_millis(1500));
    env.ok(&[
        "worker",
        "--once",
        "--lease-seconds",
        "1",
        "--idle-seconds",
        "0",
    ]);

    let outbox = env.json(&["outbox", "list", "--json", "--limit", "100000"]);
    let messages = outbox.as_array().expect("outbox");
    let tasks = env.json(&["task", "list", "--json"]);
    let in_doubt_tasks: Vec<&str> = tasks
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["kind"] == "in_doubt")
        .filter_map(|t| t["message_key"].as_str())
        .collect();

    let mut received: HashMap<String, usize> = HashMap::new();
    for m in smtp.messages() {
        for r in m.rcpt_tos {
            *received.entry(r).or_default() += 1;
        }
    }
    let duplicates: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "delivered more than once: {duplicates:?}"
    );

    // Exactly one message per customer was planned, across all the crashed runs.
    let mut per_customer: HashMap<&str, usize> = HashMap::new();
    for m in messages {
        *per_customer
            .entry(m["customer"].as_str().expect("customer"))
            .or_default() += 1;
    }
    assert_eq!(
        per_customer.len(),
        planned_customers,
        "every customer got a message planned"
    );
    assert!(per_customer.values().all(|n| *n == 1), "{per_customer:?}");

    let (mut delivered, mut in_doubt, mut in_doubt_received) = (0, 0, 0);
    for m in messages {
        let to = m["recipient"].as_str().expect("recipient");
        let key = m["key"].as_str().expect("key");
        let got = received.get(to).copied().unwrap_or(0);
        match m["status"].as_str().expect("status") {
            "sent" => {
                assert_eq!(
                    got, 1,
                    "{key} is marked sent but the server has {got} copies"
                );
                delivered += 1;
            }
            "in_doubt" => {
                assert!(
                    in_doubt_tasks.contains(&key),
                    "{key} is in doubt but no task surfaces it"
                );
                in_doubt += 1;
                in_doubt_received += got;
            }
            other => panic!("{key} ended {other}: neither delivered nor surfaced"),
        }
    }
    assert_eq!(
        received.values().sum::<usize>(),
        delivered + in_doubt_received,
        "the server received mail no outbox row accounts for"
    );
    eprintln!(
        "crash test: {ITERATIONS} kills ({killed_running} while running), {} messages planned: {delivered} delivered once, {in_doubt} in doubt and surfaced ({in_doubt_received} of them had reached the server), 0 duplicates",
        messages.len()
    );
}

#[test]
fn concurrent_workers_plan_and_deliver_each_message_once() {
    let Some(env) = Env::new() else { return };
    let Some(smtp) = SmtpSink::start("concurrent_workers_plan_and_deliver_each_message_once", 2)
    else {
        return;
    };
    env.ok(&[
        "init",
        "--name",
        "Many Ltd",
        "--time-zone",
        "UTC",
        "--base-currency",
        "EUR",
    ]);
    std::fs::write(
        env.path().join("data").join("arflow.toml"),
        format!(
            "[email]\nfrom = {{ address = \"ar@many.example\" }}\n\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\n",
            smtp.port
        ),
    )
    .expect("write config");
    env.ok(&[
        "dunning",
        "settings",
        "--send-window",
        "00:00-23:59:59.999999999",
        "--send-days",
        "mon-sun",
    ]);
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let due = today.checked_sub(jiff::Span::new().days(10)).expect("date");
    let issued = due.checked_sub(jiff::Span::new().days(30)).expect("date");
    let n = 60;
    let mut customers = String::from("customer_id,name,currency,time_zone\n");
    let mut contacts = String::from("customer_id,name,email,primary\n");
    let mut invoices =
        String::from("invoice_number,customer_id,issue_date,due_date,currency,total\n");
    for i in 0..n {
        customers.push_str(&format!("B{i},Customer {i},EUR,UTC\n"));
        contacts.push_str(&format!("B{i},Pat,b{i}@many.example,true\n"));
        invoices.push_str(&format!("INV-B{i},B{i},{issued},{due},EUR,99.00\n"));
    }
    for (kind, body) in [
        ("customers", customers),
        ("contacts", contacts),
        ("invoices", invoices),
    ] {
        let p = env.write(&format!("{kind}.csv"), &body);
        env.ok(&["import", kind, s(&p)]);
    }
    // Three workers start together: all plan the same run, all deliver.
    let workers: Vec<_> = (0..3)
        .map(|_| {
            env.command()
                .args(["worker", "--once", "--idle-seconds", "0", "--batch", "3"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    for w in workers {
        let out = w.wait_with_output().expect("worker");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A straggler pass in case one worker finished while another still held rows.
    env.ok(&["worker", "--once", "--idle-seconds", "0"]);
    let outbox = env.json(&["outbox", "list", "--json", "--limit", "1000"]);
    let messages = outbox.as_array().expect("outbox");
    assert_eq!(messages.len(), n, "one message per customer");
    assert!(messages.iter().all(|m| m["status"] == "sent"), "{outbox:#}");
    let mut received: HashMap<String, usize> = HashMap::new();
    for m in smtp.messages() {
        for r in m.rcpt_tos {
            *received.entry(r).or_default() += 1;
        }
    }
    assert_eq!(received.len(), n);
    assert!(received.values().all(|c| *c == 1), "{received:?}");
}
