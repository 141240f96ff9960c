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
    assert_eq!(
        first.applied_migrations().expect("migrations"),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    drop(first);
    let later = Timestamp::from_second(1_800_000_000).expect("timestamp");
    let second = SqliteStore::open(&path, later).expect("reopen");
    assert_eq!(
        second.applied_migrations().expect("migrations"),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
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

/// Concurrency that only PostgreSQL has (SQLite serialises writers): many
/// workers claiming at once never share a row, concurrent runs of one plan
/// write each action once, and concurrent disputes on one invoice leave one open.
#[test]
fn postgres_concurrent_dunning() {
    use arflow_domain::dunning::Channel;
    use arflow_domain::dunning::records::{Dispute, StepKey};
    use arflow_store::{OutboxFilter, PlannedWrite, StoreError};

    let (url, _guard) = match arflow_store::testing::fresh_postgres_url() {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => panic!("{e}"),
    };
    let store = arflow_store::open(&url, now()).expect("connect postgres");
    let store = store.as_ref();
    let org = conformance::seed_dunning_org(store, "concurrent");
    const N: usize = 500;
    let actions: Vec<PlannedWrite> = (0..N)
        .map(|i| PlannedWrite {
            steps: vec![conformance::step_record(
                "INV-1",
                StepKey::Repeat { n: i as u32 + 1 },
            )],
            message: Some(conformance::outbox_message(
                &format!("k{i}"),
                "C1",
                Channel::Email,
                &["INV-1"],
                now(),
            )),
            task: None,
            charges: vec![],
        })
        .collect();
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    store.record_run(org, &actions, jiff::civil::date(2023, 11, 14), "run", now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("run thread").expect("run"))
            .collect()
    });
    assert_eq!(runs.iter().map(|c| c.actions).sum::<u64>(), N as u64);
    assert_eq!(
        runs.iter().map(|c| c.already_done).sum::<u64>(),
        3 * N as u64
    );
    assert_eq!(
        store
            .outbox(org, &OutboxFilter::default())
            .expect("outbox")
            .len(),
        N
    );

    let lease = Timestamp::from_second(1_700_000_300).expect("timestamp");
    let claimed: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|w| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store
                            .claim_messages(&format!("w{w}"), now(), lease, 7)
                            .expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|c| c.message.id));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let mut unique = claimed.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), claimed.len(), "a message was claimed twice");
    assert_eq!(claimed.len(), N);

    let dispute = Dispute {
        invoice: "INV-2".into(),
        reason: "damaged".into(),
        opened_at: now(),
        opened_by: "alice".into(),
        resolved_at: None,
        resolved_by: None,
        resolution: None,
    };
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.open_dispute(org, &dispute, now())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("dispute thread"))
            .collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))),
        "{results:?}"
    );
}
