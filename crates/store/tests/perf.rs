//! Throughput sanity check; prints timings, asserts only on results.
//! `ARFLOW_PERF_N=1000000 cargo test --release -p arflow-store --test perf -- --ignored --nocapture`

use std::time::Instant;

use arflow_domain::ledger::Ledger;
use arflow_domain::model::{Allocation, AllocationSource, Payment};
use arflow_domain::money::Currency;
use arflow_store::conformance::{customer, invoice};
use arflow_store::sqlite::SqliteStore;
use arflow_store::{Change, ChangeSet, Store};
use jiff::Timestamp;
use jiff::civil::date;

#[test]
#[ignore = "slow; run explicitly to measure"]
fn sqlite_bulk_apply_and_ledger_facts() {
    let n: usize = std::env::var("ARFLOW_PERF_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let now = Timestamp::from_second(1_700_000_000).expect("timestamp");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("perf.db"), now).expect("open");
    let org = store.default_organization().expect("org").id;
    let customers = 1000;
    let mut cs = ChangeSet {
        customers: (0..customers)
            .map(|i| Change::Insert(customer(&format!("C{i}"), "Perf", Currency::USD)))
            .collect(),
        payments: vec![Change::Insert(Payment {
            external_id: "P".into(),
            customer: "C0".into(),
            source: "bank".into(),
            received_on: date(2024, 1, 1),
            currency: Currency::USD,
            // Enough for every allocation below (100 to each invoice).
            amount: 100 * n as i64,
            method: None,
            reference: None,
            payer_name: None,
        })],
        ..ChangeSet::default()
    };
    let issue = date(2024, 1, 1);
    cs.invoices = (0..n)
        .map(|i| {
            Change::Insert(invoice(
                &format!("INV-{i}"),
                &format!("C{}", i % customers),
                Currency::USD,
                10_000,
                issue,
                date(2024, 1, 31),
            ))
        })
        .collect();
    let t = Instant::now();
    let counts = store.apply(org, &cs, "perf", now).expect("apply invoices");
    eprintln!(
        "apply {n} invoices (+{} events): {:?}",
        counts.events,
        t.elapsed()
    );
    assert_eq!(counts.invoices.inserted, n as u64);
    let db_size = || {
        std::fs::read_dir(dir.path())
            .map(|d| {
                d.flatten()
                    .map(|e| e.metadata().map_or(0, |m| m.len()))
                    .sum::<u64>()
            })
            .unwrap_or(0)
            / (1 << 20)
    };
    eprintln!("database + WAL: {} MiB", db_size());

    let allocs = ChangeSet {
        allocations: (0..n)
            .map(|i| Allocation {
                invoice: format!("INV-{i}"),
                source: AllocationSource::Payment("P".into()),
                amount: 100,
                applied_on: date(2024, 1, 15),
            })
            .collect(),
        ..ChangeSet::default()
    };
    let t = Instant::now();
    store
        .apply(org, &allocs, "perf", now)
        .expect("apply allocations");
    eprintln!("apply {n} allocations (+events): {:?}", t.elapsed());
    eprintln!("database + WAL: {} MiB", db_size());

    let t = Instant::now();
    let facts = store.ledger_facts(org).expect("facts");
    eprintln!(
        "ledger_facts of {} invoices + {} allocations: {:?}",
        facts.invoices.len(),
        facts.allocations.len(),
        t.elapsed()
    );
    assert_eq!((facts.invoices.len(), facts.allocations.len()), (n, n));

    let t = Instant::now();
    let ledger = Ledger::new(&facts);
    eprintln!("Ledger::new: {:?}", t.elapsed());
    assert_eq!(ledger.allocations_of(n - 1).len(), 1);
}

/// `record_run` of many messages (the benchmark target: 100k in well under
/// 3 s on SQLite, release build), then the same run again (all already done).
/// `ARFLOW_PERF_RUN_N=100000 cargo test --release -p arflow-store --test perf record_run -- --ignored --nocapture`
#[test]
#[ignore = "slow; run explicitly to measure"]
fn sqlite_record_run() {
    let now = Timestamp::from_second(1_718_000_000).expect("timestamp");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("perf.db"), now).expect("open");
    record_run_timing(&store, now);
}

#[test]
#[ignore = "slow; run explicitly to measure"]
fn postgres_record_run() {
    let (url, _guard) = match arflow_store::testing::fresh_postgres_url() {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => panic!("{e}"),
    };
    let now = Timestamp::from_second(1_718_000_000).expect("timestamp");
    let store = arflow_store::open(&url, now).expect("connect");
    record_run_timing(store.as_ref(), now);
}

fn record_run_timing(store: &dyn Store, now: Timestamp) {
    use arflow_domain::dunning::Channel;
    use arflow_domain::dunning::records::{Charge, ChargeKind, StepKey};
    use arflow_domain::money::Money;
    use arflow_store::PlannedWrite;
    use arflow_store::conformance::{outbox_message, step_record};

    let n: usize = std::env::var("ARFLOW_PERF_RUN_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let org = store.default_organization().expect("org").id;
    let customers = 1000;
    let cs = ChangeSet {
        customers: (0..customers)
            .map(|i| Change::Insert(customer(&format!("C{i}"), "Perf", Currency::EUR)))
            .collect(),
        invoices: (0..n)
            .map(|i| {
                Change::Insert(invoice(
                    &format!("INV-{i}"),
                    &format!("C{}", i % customers),
                    Currency::EUR,
                    10_000,
                    date(2024, 1, 1),
                    date(2024, 1, 31),
                ))
            })
            .collect(),
        ..ChangeSet::default()
    };
    store.apply(org, &cs, "perf", now).expect("apply invoices");
    let actions: Vec<PlannedWrite> = (0..n)
        .map(|i| {
            let number = format!("INV-{i}");
            let customer = format!("C{}", i % customers);
            PlannedWrite {
                steps: vec![step_record(&number, StepKey::Sequence { step: 1 })],
                message: Some(outbox_message(
                    &format!("{number}:s1"),
                    &customer,
                    Channel::Email,
                    &[&number],
                    now,
                )),
                task: None,
                // A late fee on every tenth invoice.
                charges: if i % 10 == 0 {
                    vec![Charge {
                        key: format!("fee:{number}:s1"),
                        invoice: number.clone(),
                        kind: ChargeKind::LateFee,
                        amount: Money::new(4_000, Currency::EUR),
                        charged_on: date(2024, 6, 10),
                        description: "Late fee".into(),
                        created_at: now,
                        waived_at: None,
                        waived_by: None,
                        waive_reason: None,
                    }]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    let t = Instant::now();
    let counts = store
        .record_run(org, &actions, date(2024, 6, 10), "perf", now)
        .expect("record run");
    eprintln!(
        "{:?} record_run of {n} messages: {:?} ({counts:?})",
        store.backend(),
        t.elapsed()
    );
    assert_eq!(counts.messages, n as u64);
    let t = Instant::now();
    let again = store
        .record_run(org, &actions, date(2024, 6, 10), "perf", now)
        .expect("record run again");
    eprintln!("the same run again: {:?} ({again:?})", t.elapsed());
    assert_eq!(again.already_done, n as u64);
}
