//! End-to-end tests of the `arflow` binary against a real store: a SQLite file
//! by default, or a fresh PostgreSQL database with ARFLOW_TEST_BACKEND=postgres.

mod support;

use std::path::{Path, PathBuf};

use support::{Env, s};

fn ibm_file() -> Option<PathBuf> {
    arflow_store::testing::ibm_ar_sample()
}

const CUSTOMERS: &str = "customer_id,name,currency,segment,country,time_zone\r\nC1,Acme GmbH,EUR,enterprise,DE,Europe/Berlin\r\nC2,\"Blue, Harbor\",USD,small,US,America/Chicago\r\n";
const INVOICES: &str = "\u{feff}invoice_number,customer_id,issue_date,due_date,currency,total,tax\n\
A-1,C1,2026-01-05,2026-02-04,EUR,1000.00,160.00\n\
A-2,C1,2026-02-01,2026-03-03,EUR,500.00,0\n\
B-1,C2,2026-01-10,2026-01-25,USD,250.50,0\n\n";

#[test]
fn demo_loads_once_and_prints_the_summary() {
    let Some(env) = Env::new() else { return };
    let out = env.ok(&[
        "demo",
        "--customers",
        "30",
        "--invoices",
        "400",
        "--today",
        "2026-11-30",
    ]);
    assert!(out.contains("loaded the demo ledger"), "{out}");
    assert!(
        out.contains("collections summary as of 2026-11-30"),
        "{out}"
    );
    assert!(out.contains("DSO, count-back"), "{out}");
    // Running it again keeps the ledger and still shows the summary.
    let second = env.cmd(&[
        "demo",
        "--customers",
        "30",
        "--invoices",
        "400",
        "--today",
        "2026-11-30",
    ]);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already has 400 invoices"));
    let summary = env.json(&["report", "summary", "--as-of", "2026-11-30", "--json"]);
    assert_eq!(summary["as_of"], "2026-11-30");
    let total: f64 = summary["total_ar"]
        .as_str()
        .expect("decimal string")
        .parse()
        .expect("number");
    assert!(total > 0.0);
}

#[test]
fn import_is_atomic_idempotent_and_reports_as_of_past_dates() {
    let Some(env) = Env::new() else { return };
    env.ok(&[
        "init",
        "--base-currency",
        "USD",
        "--name",
        "Test Co",
        "--time-zone",
        "America/New_York",
    ]);
    let customers = env.write("customers.csv", CUSTOMERS);
    let invoices = env.write("invoices.csv", INVOICES);
    env.ok(&["import", "customers", s(&customers)]);

    // A file with one bad row writes nothing and names the line, column, value and reason.
    let bad = env.write("bad.csv", "invoice_number,customer_id,issue_date,due_date,currency,total\nX-1,C1,2026-01-05,2026-02-04,EUR,10.00\nX-2,NOPE,2026-01-05,2026-01-01,EUR,-3\n");
    let err = env.fails(&["import", "invoices", s(&bad)]);
    assert!(
        err.contains("line 3") && err.contains("NOPE") && err.contains("unknown customer"),
        "{err}"
    );
    let aging = env.json(&["report", "aging", "--as-of", "2026-12-31", "--json"]);
    assert_eq!(
        aging["invoice_count"], 0,
        "a failed import must write nothing"
    );

    let first = env.json(&["import", "invoices", s(&invoices), "--json"]);
    assert_eq!(first["inserted"], 3);
    let again = env.json(&["import", "invoices", s(&invoices), "--json"]);
    assert_eq!(
        (
            again["inserted"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(3))
    );

    // EUR needs a rate to be totalled in USD; without one the report says which.
    let err = env.fails(&["report", "aging", "--as-of", "2026-02-10"]);
    assert!(err.contains("EUR") && err.contains("USD"), "{err}");
    env.ok(&["fx", "set", "EUR", "USD", "1.10", "--on", "2026-01-01"]);
    assert!(env.ok(&["fx", "list"]).contains("1.1"));

    let payments = env.write(
        "payments.csv",
        "customer_id,received_on,amount,currency,reference\nC1,2026-02-20,1200.00,EUR,wire 1\n",
    );
    let paid = env.json(&["import", "payments", s(&payments), "--json"]);
    assert_eq!(paid["inserted"], 1);

    // As of 2026-02-10 nothing was paid: A-1 (1000 EUR = 1100 USD) is 6 days
    // past due, A-2 (500 EUR = 550 USD) is current, B-1 (250.50 USD) 16 days past due.
    let before = env.json(&["report", "aging", "--as-of", "2026-02-10", "--json"]);
    assert_eq!(before["total"], "1900.50", "{before}");
    assert_eq!(before["buckets"][0]["amount"], "550.00");
    assert_eq!(before["buckets"][1]["amount"], "1350.50");
    // As of 2026-02-28 the 1200 EUR payment settled A-1 (oldest due first) and 200 of A-2.
    let after = env.json(&["report", "aging", "--as-of", "2026-02-28", "--json"]);
    assert_eq!(after["total"], "580.50", "{after}"); // 300 EUR x 1.10 + 250.50
    // Re-importing the payments file changes nothing.
    let paid_again = env.json(&["import", "payments", s(&payments), "--json"]);
    assert_eq!(paid_again["inserted"], 0);

    // CSV output parses, one row per customer with a balance.
    let csv = env.ok(&["report", "aging", "--as-of", "2026-02-28", "--csv"]);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(rows.records().count(), 2);
}

#[test]
fn skip_invalid_writes_rejects_beside_the_input() {
    let Some(env) = Env::new() else { return };
    env.ok(&[
        "import",
        "customers",
        s(&env.write("customers.csv", CUSTOMERS)),
    ]);
    let file = env.write("mixed.csv", "invoice_number,customer_id,issue_date,total\nM-1,C2,2026-03-01,10.00\nM-2,C2,not-a-date,5.00\n");
    let report = env.json(&["import", "invoices", s(&file), "--skip-invalid", "--json"]);
    assert_eq!(
        (report["inserted"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    let rejects =
        std::fs::read_to_string(env.path().join("mixed.rejects.csv")).expect("rejects file");
    assert!(
        rejects.contains("M-2") && rejects.contains("not-a-date"),
        "{rejects}"
    );
}

#[test]
fn ibm_sample_imports_whole_with_its_mapping() {
    let Some(env) = Env::new() else { return };
    let Some(file) = ibm_file() else { return };
    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ibm-ar.toml");
    let r = env.json(&[
        "import",
        "invoices",
        s(&file),
        "--mapping",
        s(&mapping),
        "--json",
    ]);
    assert_eq!(r["inserted"], 2466);
    assert_eq!(r["customers_created"], 100);
    assert_eq!(r["payments_created"], 2466);
    // Every invoice is settled by the end of the data.
    let end = env.json(&["report", "summary", "--as-of", "2014-12-31", "--json"]);
    assert_eq!(end["total_ar"], "0.00");
    // Mid-2013 the ledger had open invoices again, rebuilt from the dates.
    let mid = env.json(&["report", "summary", "--as-of", "2013-06-30", "--json"]);
    assert!(mid["open_invoice_count"].as_u64().expect("count") > 0);
    let customers = env.json(&["report", "customers", "--as-of", "2014-12-31", "--json"]);
    assert_eq!(customers["customers"].as_array().map(Vec::len), Some(100));
    // The data card says DaysLate averages 3.44 days over all 2466 invoices.
    let (mut late, mut n) = (0.0, 0.0);
    for c in customers["customers"].as_array().expect("array") {
        let settled = c["settled_count"].as_f64().expect("count");
        late += c["avg_days_late"].as_f64().expect("days") * settled;
        n += settled;
    }
    assert_eq!(n, 2466.0);
    assert!(
        (late / n - 3.44).abs() < 0.01,
        "mean days late {}",
        late / n
    );
    // A mapping written for invoices cannot drive a payments import.
    let err = env.fails(&["import", "payments", s(&file), "--mapping", s(&mapping)]);
    assert!(err.contains("written for invoices"), "{err}");
    // A second import of the same file changes nothing.
    let again = env.json(&[
        "import",
        "invoices",
        s(&file),
        "--mapping",
        s(&mapping),
        "--json",
    ]);
    assert_eq!(
        (again["inserted"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn user_errors_are_one_clear_message() {
    let Some(env) = Env::new() else { return };
    let err = env.fails(&["report", "aging", "--as-of", "2026-13-01"]);
    assert!(
        err.starts_with("error: --as-of '2026-13-01' is not a date"),
        "{err}"
    );
    let err = env.fails(&["import", "invoices", s(&env.path().join("missing.csv"))]);
    assert!(err.contains("missing.csv"), "{err}");
    let err = env.fails(&["init", "--base-currency", "EURO"]);
    assert!(err.contains("EURO"), "{err}");
    let err = env.fails(&["init", "--time-zone", "Mars/Olympus"]);
    assert!(err.contains("Mars/Olympus"), "{err}");
    let cfg = env.write("bad.toml", "[reports]\naging_bondaries = [10]\n");
    let err = env.fails(&["--config", s(&cfg), "report", "summary"]);
    assert!(err.contains("aging_bondaries"), "{err}");
}
