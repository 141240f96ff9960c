//! End to end against a real store: a temporary SQLite file, or a fresh
//! PostgreSQL database with ARFLOW_TEST_BACKEND=postgres.

use std::path::{Path, PathBuf};

use arflow_domain::model::Organization;
use arflow_import::{ImportError, ImportOptions, RecordKind, import_file};
use arflow_store::testing::{TestStore, test_store};
use arflow_store::{EventFilter, Store};
use jiff::civil::date;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The store for this run; failing to open it is a test failure. `None` only
/// when PostgreSQL was asked for, is absent and not required (skip reported).
fn open(dir: &Path) -> Option<(TestStore, Organization)> {
    let t = test_store(dir, jiff::Timestamp::UNIX_EPOCH).expect("open the test store")?;
    let org = t.0.default_organization().expect("default organization");
    Some((t, org))
}

fn import(
    store: &dyn Store,
    org: &Organization,
    path: &Path,
    kind: RecordKind,
    skip: bool,
) -> Result<arflow_import::ImportReport, ImportError> {
    let mut opts = ImportOptions::new(kind, date(2024, 6, 30));
    opts.skip_invalid = skip;
    import_file(
        store,
        org,
        path,
        &opts,
        "import:test",
        jiff::Timestamp::UNIX_EPOCH,
        &|_, _| {},
    )
}

#[test]
fn atomic_skip_invalid_idempotent_and_updates() {
    let dir = tempfile::tempdir().unwrap();
    let Some(((store, _guard), org)) = open(dir.path()) else {
        return;
    };
    let store = store.as_ref();
    import(
        store,
        &org,
        &fixture("native-customers.csv"),
        RecordKind::Customers,
        false,
    )
    .unwrap();
    // Atomic: a bad file writes nothing.
    let err = import(
        store,
        &org,
        &fixture("bad-invoices.csv"),
        RecordKind::Invoices,
        false,
    )
    .unwrap_err();
    assert!(
        matches!(err, ImportError::InvalidRows { total: 8, .. }),
        "{err}"
    );
    assert!(store.invoices(org.id).unwrap().is_empty());
    // Skip-invalid: the good row lands, the rest go to the rejects file.
    let bad = dir.path().join("bad.csv");
    std::fs::copy(fixture("bad-invoices.csv"), &bad).unwrap();
    let r = import(store, &org, &bad, RecordKind::Invoices, true).unwrap();
    assert_eq!((r.inserted, r.rejected), (1, 8));
    let rejects = std::fs::read_to_string(r.rejects_file.unwrap()).unwrap();
    assert!(
        rejects.starts_with("invoice_number,customer_id,issue_date,due_date,currency,total,error")
    );
    assert_eq!(store.invoices(org.id).unwrap().len(), 1);

    let r = import(
        store,
        &org,
        &fixture("native-invoices.csv"),
        RecordKind::Invoices,
        false,
    )
    .unwrap();
    assert_eq!((r.inserted, r.payments_created), (3, 1));
    let again = import(
        store,
        &org,
        &fixture("native-invoices.csv"),
        RecordKind::Invoices,
        false,
    )
    .unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 3));

    let changed = dir.path().join("changed.csv");
    std::fs::write(
        &changed,
        std::fs::read_to_string(fixture("native-invoices.csv"))
            .unwrap()
            .replace("1000.00", "1100.00"),
    )
    .unwrap();
    let r = import(store, &org, &changed, RecordKind::Invoices, false).unwrap();
    assert_eq!(r.updated, 1);
    let ev = store
        .events(
            org.id,
            &EventFilter {
                entity_key: Some("INV-1".into()),
                ..EventFilter::default()
            },
        )
        .unwrap();
    assert!(ev.iter().any(|e| e.kind == "invoice.updated"), "{ev:?}");
}

#[test]
fn quickbooks_and_xero_fixtures_import() {
    let dir = tempfile::tempdir().unwrap();
    let Some(((store, _guard), org)) = open(dir.path()) else {
        return;
    };
    let store = store.as_ref();
    import(
        store,
        &org,
        &fixture("qbo-customers.csv"),
        RecordKind::Customers,
        false,
    )
    .unwrap();
    let r = import(
        store,
        &org,
        &fixture("qbo-invoices.csv"),
        RecordKind::Invoices,
        false,
    )
    .unwrap();
    assert_eq!((r.inserted, r.payments_created), (3, 2));
    import(
        store,
        &org,
        &fixture("xero-contacts.csv"),
        RecordKind::Customers,
        false,
    )
    .unwrap();
    import(
        store,
        &org,
        &fixture("xero-contacts.csv"),
        RecordKind::Contacts,
        false,
    )
    .unwrap();
    let r = import(
        store,
        &org,
        &fixture("xero-invoices.csv"),
        RecordKind::Invoices,
        false,
    )
    .unwrap();
    assert_eq!(r.inserted, 3);
    let again = import(
        store,
        &org,
        &fixture("xero-invoices.csv"),
        RecordKind::Invoices,
        false,
    )
    .unwrap();
    assert_eq!((again.inserted, again.updated), (0, 0));
}

#[test]
fn ibm_file_imports_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(data) = arflow_store::testing::ibm_ar_sample() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(((store, _guard), org)) = open(dir.path()) else {
        return;
    };
    let store = store.as_ref();
    let mut opts = ImportOptions::new(RecordKind::Invoices, date(2024, 6, 30));
    opts.mapping = Some(arflow_import::load_mapping(&root.join("examples/ibm-ar.toml")).unwrap());
    let r = import_file(
        store,
        &org,
        &data,
        &opts,
        "import:ibm",
        jiff::Timestamp::UNIX_EPOCH,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(
        (r.inserted, r.customers_created, r.payments_created),
        (2466, 100, 2466)
    );
    assert_eq!(store.invoices(org.id).unwrap().len(), 2466);
    assert_eq!(store.customers(org.id).unwrap().len(), 100);
    assert_eq!(store.payments(org.id).unwrap().len(), 2466);
    let allocs: i64 = store
        .allocations(org.id)
        .unwrap()
        .iter()
        .map(|a| a.amount)
        .sum();
    let totals: i64 = store
        .invoices(org.id)
        .unwrap()
        .iter()
        .map(|i| i.total)
        .sum();
    assert_eq!(allocs, totals, "all settled");
}
