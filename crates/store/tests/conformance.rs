use arflow_store::sqlite::SqliteStore;
use arflow_store::{Store, conformance};
use jiff::Timestamp;

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).expect("timestamp")
}

#[test]
fn sqlite_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A nested path: open creates the parent directories.
    let store =
        SqliteStore::open(&dir.path().join("nested/dir/arflow.db"), now()).expect("open sqlite");
    conformance::run_all(&store);
}

#[test]
fn sqlite_reopen_does_not_rerun_migrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arflow.db");
    let first = SqliteStore::open(&path, now()).expect("open");
    let org = first.default_organization().expect("org");
    assert_eq!(first.applied_migrations().expect("migrations"), vec![1, 2]);
    drop(first);
    let later = Timestamp::from_second(1_800_000_000).expect("timestamp");
    let second = SqliteStore::open(&path, later).expect("reopen");
    assert_eq!(second.applied_migrations().expect("migrations"), vec![1, 2]);
    // Same organization, same creation time: not re-created.
    assert_eq!(second.default_organization().expect("org"), org);
    // And through the URL-based opener.
    let third =
        arflow_store::open(&format!("sqlite://{}", path.display()), later).expect("open by url");
    assert_eq!(third.default_organization().expect("org"), org);
}

#[test]
fn postgres_conformance() {
    let (url, _guard) = match arflow_store::testing::fresh_postgres_url() {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => panic!("{e}"),
    };
    let store = arflow_store::open(&url, now()).expect("connect postgres");
    assert_eq!(store.backend(), arflow_store::Backend::Postgres);
    conformance::run_all(store.as_ref());
    drop(store);
    // Reconnecting does not re-run migrations or duplicate the default org.
    let org = arflow_store::open(&url, now())
        .expect("reconnect")
        .default_organization()
        .expect("org");
    assert_eq!(org.slug, "default");
}
