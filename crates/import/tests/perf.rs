//! `cargo test -p arflow-import --release --test perf -- --ignored --nocapture`: 1M invoice rows.

use arflow_domain::allocation::AllocationOrder;
use arflow_domain::model::{Customer, Organization, Stored};
use arflow_domain::money::Currency;
use arflow_import::{Existing, PlanOptions, RecordKind, plan::plan};
use jiff::civil::date;

#[test]
#[ignore = "performance check, run in release"]
fn million_invoice_rows() {
    let mut csv =
        String::from("invoice_number,customer_id,issue_date,due_date,currency,total,tax,status\n");
    for i in 0..1_000_000u32 {
        csv.push_str(&format!(
            "INV-{i:08},C{},2024-{:02}-{:02},2024-12-31,USD,{}.{:02},0.00,open\n",
            i % 1000,
            i % 12 + 1,
            i % 28 + 1,
            i % 90_000,
            i % 100
        ));
    }
    let ex = Existing {
        customers: (0..1000)
            .map(|i| Stored {
                id: i,
                record: Customer {
                    external_id: format!("C{i}"),
                    name: format!("Customer {i}"),
                    segment: None,
                    tags: vec![],
                    country: None,
                    time_zone: None,
                    locale: None,
                    currency: Currency::USD,
                    payment_terms_days: None,
                    credit_limit: None,
                    collector: None,
                    autopay: false,
                },
            })
            .collect(),
        ..Existing::default()
    };
    let org = Organization {
        id: 1,
        slug: "d".into(),
        name: "d".into(),
        base_currency: Currency::USD,
        time_zone: "UTC".into(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
    };
    let opts = PlanOptions {
        kind: RecordKind::Invoices,
        mapping: None,
        allocation_order: AllocationOrder::OldestDueFirst,
        today: date(2024, 6, 30),
    };
    let t = std::time::Instant::now();
    let p = plan(csv.as_bytes(), "big.csv", &ex, &org, &opts, &mut |_| {}).unwrap();
    eprintln!(
        "{} MB, {} rows planned in {:?}",
        csv.len() / 1_000_000,
        p.rows,
        t.elapsed()
    );
    assert_eq!(p.changes.invoices.len(), 1_000_000);
}
