//! Planning tests: files → ChangeSet against given stored records (no database).

use std::path::{Path, PathBuf};

use arflow_domain::allocation::AllocationOrder;
use arflow_domain::model::{Invoice, InvoiceStatus, Organization, Stored};
use arflow_domain::money::Currency;
use arflow_import::{
    Existing, ImportError, Plan, PlanOptions, RecordKind, load_mapping, plan::plan,
};
use arflow_store::Change;
use jiff::civil::date;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn org() -> Organization {
    Organization {
        id: 1,
        slug: "default".into(),
        name: "Test".into(),
        base_currency: Currency::USD,
        time_zone: "UTC".into(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

fn run(
    bytes: &[u8],
    kind: RecordKind,
    ex: &Existing,
    mapping: Option<&arflow_import::Mapping>,
) -> Result<Plan, ImportError> {
    let opts = PlanOptions {
        kind,
        mapping,
        allocation_order: AllocationOrder::OldestDueFirst,
        today: date(2024, 6, 30),
    };
    plan(bytes, "test.csv", ex, &org(), &opts, &mut |_| {})
}

fn run_file(name: &str, kind: RecordKind, ex: &Existing) -> Plan {
    let bytes = std::fs::read(fixture(name)).unwrap();
    run(&bytes, kind, ex, None).unwrap()
}

/// Turns a plan's inserts into stored records, as a store would.
fn store_plan(ex: &mut Existing, p: &Plan) {
    let mut id =
        1000 + ex.customers.len() as i64 + ex.invoices.len() as i64 + ex.payments.len() as i64;
    let mut next = || {
        id += 1;
        id
    };
    for c in &p.changes.customers {
        if let Change::Insert(r) = c {
            ex.customers.push(Stored {
                id: next(),
                record: r.clone(),
            });
        }
    }
    for c in &p.changes.invoices {
        match c {
            Change::Insert(r) => ex.invoices.push(Stored {
                id: next(),
                record: r.clone(),
            }),
            Change::Update { id, after, .. } => {
                if let Some(s) = ex.invoices.iter_mut().find(|s| s.id == *id) {
                    s.record = after.clone();
                }
            }
        }
    }
    for c in &p.changes.payments {
        if let Change::Insert(r) = c {
            ex.payments.push(Stored {
                id: next(),
                record: r.clone(),
            });
        }
    }
    for c in &p.changes.credit_notes {
        if let Change::Insert(r) = c {
            ex.credit_notes.push(Stored {
                id: next(),
                record: r.clone(),
            });
        }
    }
    for a in &p.changes.allocations {
        ex.allocations.push(Stored {
            id: next(),
            record: a.clone(),
        });
    }
}

fn customers_stored() -> Existing {
    let mut ex = Existing::default();
    let p = run_file("native-customers.csv", RecordKind::Customers, &ex);
    assert_eq!(p.inserted, 2);
    store_plan(&mut ex, &p);
    ex
}

#[test]
fn native_files_import_and_reimport_is_a_no_op() {
    let mut ex = customers_stored();
    assert_eq!(ex.customers[1].record.name, "Globex, Inc.");
    assert_eq!(ex.customers[0].record.tags, vec!["key", "west"]);
    assert_eq!(ex.customers[0].record.credit_limit, Some(1_000_000));
    let p = run_file("native-invoices.csv", RecordKind::Invoices, &ex);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!((p.rows, p.inserted), (3, 3));
    let inv2 = p.changes.invoices[1].record();
    // Due date defaults to issue + the customer's 30 days.
    assert_eq!(inv2.due_date, date(2024, 3, 2));
    assert_eq!(inv2.tax, 5000);
    assert!(inv2.disputed);
    // paid_date → settle payment + allocation.
    assert_eq!(p.payments_created, 1);
    assert_eq!(p.changes.payments[0].record().external_id, "settle:INV-3");
    assert_eq!(p.changes.allocations[0].amount, 20000);
    store_plan(&mut ex, &p);
    let again = run_file("native-invoices.csv", RecordKind::Invoices, &ex);
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 3));
    assert!(again.changes.is_empty(), "{:?}", again.changes);

    // Credit note applied to INV-2, then payments oldest due first.
    let p = run_file("native-credit-notes.csv", RecordKind::CreditNotes, &ex);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.changes.allocations.len(), 1);
    assert_eq!(p.changes.allocations[0].invoice, "INV-2");
    store_plan(&mut ex, &p);
    let p = run_file("native-payments.csv", RecordKind::Payments, &ex);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let allocs: Vec<(String, i64)> = p
        .changes
        .allocations
        .iter()
        .map(|a| (a.invoice.clone(), a.amount))
        .collect();
    // P1 1200: INV-1 (due 02-09) 1000, INV-2 200; then 100 → INV-2 (open 450-200=250).
    assert_eq!(
        allocs,
        vec![
            ("INV-1".into(), 100_000),
            ("INV-2".into(), 20_000),
            ("INV-2".into(), 10_000)
        ]
    );
    assert!(
        p.changes.payments[1]
            .record()
            .external_id
            .starts_with("row:")
    );
    store_plan(&mut ex, &p);
    let again = run_file("native-payments.csv", RecordKind::Payments, &ex);
    assert!(again.changes.is_empty(), "{:?}", again.changes);
}

#[test]
fn changed_rows_become_updates_and_payments_cannot_change_amount() {
    let mut ex = customers_stored();
    let p = run_file("native-invoices.csv", RecordKind::Invoices, &ex);
    store_plan(&mut ex, &p);
    let text = std::fs::read_to_string(fixture("native-invoices.csv"))
        .unwrap()
        .replace("1000.00", "1100.00");
    let p = run(text.as_bytes(), RecordKind::Invoices, &ex, None).unwrap();
    assert_eq!((p.inserted, p.updated, p.unchanged), (0, 1, 2));
    assert!(
        matches!(&p.changes.invoices[0], Change::Update { before, after, .. } if before.total == 100_000 && after.total == 110_000)
    );

    let p = run_file("native-payments.csv", RecordKind::Payments, &ex);
    store_plan(&mut ex, &p);
    let text = std::fs::read_to_string(fixture("native-payments.csv"))
        .unwrap()
        .replace("1200.00", "1300.00");
    let p = run(text.as_bytes(), RecordKind::Payments, &ex, None).unwrap();
    assert_eq!(p.errors.len(), 1);
    assert!(
        p.errors[0].message.contains("cannot change amount"),
        "{}",
        p.errors[0]
    );
}

#[test]
fn quickbooks_exports_import_as_they_come() {
    let mut ex = Existing::default();
    let p = run_file("qbo-customers.csv", RecordKind::Customers, &ex);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(
        p.changes.customers[0].record().external_id,
        "Amy's Bird Sanctuary"
    );
    store_plan(&mut ex, &p);
    let p = run_file("qbo-invoices.csv", RecordKind::Invoices, &ex);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!((p.rows, p.inserted, p.skipped), (4, 3, 1));
    let inv = p.changes.invoices[0].record();
    assert_eq!(
        (
            inv.number.as_str(),
            inv.total,
            inv.source.as_str(),
            inv.issue_date
        ),
        ("1001", 125_000, "quickbooks", date(2024, 1, 15))
    );
    // Open balance 250 of 1250 → a 1000 payment keyed balance:1001, dated the as-of date.
    let pays: Vec<(String, i64, jiff::civil::Date)> = p
        .changes
        .payments
        .iter()
        .map(|c| {
            (
                c.record().external_id.clone(),
                c.record().amount,
                c.record().received_on,
            )
        })
        .collect();
    assert_eq!(
        pays,
        vec![
            ("balance:1001".into(), 100_000, date(2024, 6, 30)),
            ("balance:1003".into(), 8_000, date(2024, 6, 30))
        ]
    );
    store_plan(&mut ex, &p);
    assert!(
        run_file("qbo-invoices.csv", RecordKind::Invoices, &ex)
            .changes
            .is_empty()
    );
}

#[test]
fn xero_exports_import_as_they_come() {
    let mut ex = Existing::default();
    let p = run_file("xero-contacts.csv", RecordKind::Customers, &ex);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(
        p.changes.customers[0].record().currency,
        Currency::parse("NZD").unwrap()
    );
    assert_eq!(
        p.ignored_columns,
        vec!["AccountNumber", "EmailAddress", "FirstName", "LastName"]
    );
    store_plan(&mut ex, &p);
    let c = run_file("xero-contacts.csv", RecordKind::Contacts, &ex);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.changes.contacts[0].record().name, "Rita Way");
    assert_eq!(
        c.changes.contacts[1].record().external_id,
        "City Limousines:Chris Lim"
    );
    let p = run_file("xero-invoices.csv", RecordKind::Invoices, &ex);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    // 5 rows: a repeated line-item row and a draft are skipped.
    assert_eq!((p.rows, p.inserted, p.skipped), (5, 3, 2));
    let first = p.changes.invoices[0].record();
    assert_eq!(
        (first.issue_date, first.due_date, first.tax),
        (date(2024, 3, 5), date(2024, 4, 4), 7_500)
    );
    assert_eq!(p.changes.invoices[2].record().status, InvoiceStatus::Void);
    assert_eq!(p.changes.payments.len(), 1);
    assert_eq!(
        p.changes.payments[0].record().external_id,
        "balance:INV-0002"
    );
}

#[test]
fn bad_rows_are_all_reported_with_location() {
    let ex = customers_stored();
    let bytes = std::fs::read(fixture("bad-invoices.csv")).unwrap();
    let p = run(&bytes, RecordKind::Invoices, &ex, None).unwrap();
    let report = ImportError::InvalidRows {
        file: "bad-invoices.csv".into(),
        total: p.errors.len(),
        errors: p.errors.clone(),
    }
    .to_string();
    insta::assert_snapshot!(report);
    // The valid row B-7 (first) survives for skip-invalid.
    assert_eq!(p.changes.invoices.len(), 1);
    assert_eq!(p.rejected.len(), 8);
}

#[test]
fn missing_columns_are_a_file_level_error() {
    let e = run(
        b"number,customer\nX,Y\n",
        RecordKind::Invoices,
        &Existing::default(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("missing required column(s) issue_date, total"),
        "{e}"
    );
    assert!(e.contains("found: number, customer"), "{e}");
    let e = run(b"", RecordKind::Invoices, &Existing::default(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn invalid_utf8_is_a_located_error() {
    let ex = customers_stored();
    let p = run(
        b"invoice_number,customer_id,issue_date,total\nA\xff,C1,2024-01-01,1\n",
        RecordKind::Invoices,
        &ex,
        None,
    )
    .unwrap();
    assert_eq!(p.errors[0].line, 2);
    assert!(p.errors[0].message.contains("UTF-8"));
}

#[test]
fn explicit_settlement_larger_than_open_balance_is_refused() {
    let mut ex = customers_stored();
    ex.invoices.push(Stored {
        id: 1,
        record: Invoice {
            number: "I1".into(),
            customer: "C1".into(),
            external_id: None,
            source: "csv".into(),
            issue_date: date(2024, 1, 1),
            due_date: date(2024, 1, 31),
            currency: Currency::USD,
            total: 1000,
            tax: 0,
            po_number: None,
            status: InvoiceStatus::Open,
            status_date: None,
            disputed: false,
            paperless: None,
        },
    });
    let p = run(b"credit_note_number,customer_id,issue_date,total,invoice_number\nCN,C1,2024-02-01,20.00,I1\n", RecordKind::CreditNotes, &ex, None).unwrap();
    assert!(
        p.errors[0]
            .message
            .contains("larger than invoice I1's open balance"),
        "{:?}",
        p.errors
    );
    assert!(p.changes.is_empty());
}

#[test]
fn ibm_sample_imports_with_the_example_mapping() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(data) = arflow_store::testing::ibm_ar_sample() else {
        return;
    };
    let mapping = load_mapping(&root.join("examples/ibm-ar.toml")).unwrap();
    let bytes = std::fs::read(&data).unwrap();
    let mut ex = Existing::default();
    let p = run(&bytes, RecordKind::Invoices, &ex, Some(&mapping)).unwrap();
    assert!(
        p.errors.is_empty(),
        "{:?}",
        &p.errors[..p.errors.len().min(5)]
    );
    assert_eq!(p.changes.invoices.len(), 2466);
    assert_eq!(p.customers_created, 100);
    assert_eq!(p.changes.payments.len(), 2466);
    assert_eq!(p.changes.allocations.len(), 2466);
    for (i, a) in p.changes.invoices.iter().zip(&p.changes.allocations) {
        assert_eq!(
            (&i.record().number, i.record().total),
            (&a.invoice, a.amount),
            "every invoice settled in full"
        );
    }
    let first = p.changes.invoices[0].record();
    assert_eq!(
        (
            first.issue_date,
            first.due_date,
            first.paperless,
            first.disputed
        ),
        (date(2013, 1, 2), date(2013, 2, 1), Some(false), false)
    );
    assert_eq!(
        p.changes.customers[0].record().country.as_deref(),
        Some("391")
    );
    assert_eq!(
        p.ignored_columns,
        vec!["PaperlessDate", "DaysToSettle", "DaysLate"]
    );
    store_plan(&mut ex, &p);
    let again = run(&bytes, RecordKind::Invoices, &ex, Some(&mapping)).unwrap();
    assert!(again.changes.is_empty());
    assert_eq!(again.unchanged, 2466);
}

/// Invoices INV-A (issued 2024-01-05) and INV-B (issued 2024-03-01) of C1, stored.
fn two_invoices_stored() -> Existing {
    let mut ex = customers_stored();
    let csv = "invoice_number,customer_id,issue_date,due_date,total\nINV-A,C1,2024-01-05,2024-02-04,100.00\nINV-B,C1,2024-03-01,2024-03-31,100.00\n";
    let p = run(csv.as_bytes(), RecordKind::Invoices, &ex, None).unwrap();
    store_plan(&mut ex, &p);
    ex
}

fn only_error(r: Result<Plan, ImportError>) -> String {
    match r {
        Err(ImportError::InvalidRows { errors, .. }) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            let e = &errors[0];
            format!("line {} {} '{}': {}", e.line, e.column, e.value, e.message)
        }
        Ok(p) if p.errors.len() == 1 => {
            let e = &p.errors[0];
            format!("line {} {} '{}': {}", e.line, e.column, e.value, e.message)
        }
        other => panic!("expected exactly one row error, got {other:?}"),
    }
}

#[test]
fn a_decimal_comma_in_a_decimal_point_file_is_an_error_not_a_hundredfold_amount() {
    let ex = customers_stored();
    let csv = "invoice_number,customer_id,issue_date,total\nX-1,C1,2024-01-05,\"12,50\"\n";
    let e = only_error(run(csv.as_bytes(), RecordKind::Invoices, &ex, None));
    assert!(e.contains("misplaced thousands separator"), "{e}");
    let ok = "invoice_number,customer_id,issue_date,total\nX-1,C1,2024-01-05,\"1,250.00\"\n";
    let p = run(ok.as_bytes(), RecordKind::Invoices, &ex, None).unwrap();
    assert_eq!(p.changes.invoices[0].record().total, 125_000);
}

#[test]
fn a_prepayment_is_applied_when_the_invoice_is_issued() {
    let ex = two_invoices_stored();
    let csv = "payment_id,customer_id,received_on,amount\nP1,C1,2024-02-01,200.00\n";
    let p = run(csv.as_bytes(), RecordKind::Payments, &ex, None).unwrap();
    let a: Vec<(String, jiff::civil::Date)> = p
        .changes
        .allocations
        .iter()
        .map(|a| (a.invoice.clone(), a.applied_on))
        .collect();
    assert_eq!(
        a,
        vec![
            ("INV-A".to_string(), date(2024, 2, 1)),
            ("INV-B".to_string(), date(2024, 3, 1))
        ]
    );
}

#[test]
fn an_invoice_with_money_applied_keeps_its_currency_and_customer_and_cannot_be_voided() {
    let mut ex = two_invoices_stored();
    let pay = "payment_id,customer_id,received_on,amount\nP1,C1,2024-02-10,40.00\n";
    let p = run(pay.as_bytes(), RecordKind::Payments, &ex, None).unwrap();
    store_plan(&mut ex, &p);
    let header = "invoice_number,customer_id,issue_date,due_date,currency,total,status\n";
    let moved = format!("{header}INV-A,C2,2024-01-05,2024-02-04,EUR,100.00,open\n");
    let e = only_error(run(moved.as_bytes(), RecordKind::Invoices, &ex, None));
    assert!(e.contains("cannot change"), "{e}");
    let voided = format!("{header}INV-A,C1,2024-01-05,2024-02-04,USD,100.00,void\n");
    let e = only_error(run(voided.as_bytes(), RecordKind::Invoices, &ex, None));
    assert!(e.contains("cannot be voided"), "{e}");
    // Without money applied, voiding is fine.
    let other = format!("{header}INV-B,C1,2024-03-01,2024-03-31,USD,100.00,void\n");
    let p = run(other.as_bytes(), RecordKind::Invoices, &ex, None).unwrap();
    assert!(p.errors.is_empty() && p.updated == 1, "{:?}", p.errors);
}

#[test]
fn a_recorded_credit_note_cannot_move_in_time() {
    let mut ex = two_invoices_stored();
    let header = "credit_note_number,customer_id,issue_date,total,invoice_number\n";
    let p = run(
        format!("{header}CN-1,C1,2024-01-10,10.00,INV-A\n").as_bytes(),
        RecordKind::CreditNotes,
        &ex,
        None,
    )
    .unwrap();
    store_plan(&mut ex, &p);
    let e = only_error(run(
        format!("{header}CN-1,C1,2024-03-01,10.00,INV-A\n").as_bytes(),
        RecordKind::CreditNotes,
        &ex,
        None,
    ));
    assert!(
        e.contains("cannot change amount, currency, customer or date"),
        "{e}"
    );
}

#[test]
fn control_characters_and_implausible_years_are_row_errors() {
    let ex = customers_stored();
    let nul = "invoice_number,customer_id,issue_date,total\nX\u{0}1,C1,2024-01-05,1.00\n";
    let e = only_error(run(nul.as_bytes(), RecordKind::Invoices, &ex, None));
    assert!(e.contains("control character"), "{e}");
    let year0 = "invoice_number,customer_id,issue_date,total\nX-2,C1,0000-01-15,1.00\n";
    let e = only_error(run(year0.as_bytes(), RecordKind::Invoices, &ex, None));
    assert!(e.contains("year 0 is outside"), "{e}");
    let huge =
        "invoice_number,customer_id,issue_date,total\nX-3,C1,2024-01-15,50000000000000000.00\n";
    let e = only_error(run(huge.as_bytes(), RecordKind::Invoices, &ex, None));
    assert!(e.contains("amount too large"), "{e}");
}
