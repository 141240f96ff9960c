//! Test support shared with other crates' tests: a throwaway PostgreSQL database.

use std::io::Write;

use postgres::{Client, NoTls};

/// The server tests use: `ARFLOW_TEST_POSTGRES_URL`, else the local default.
pub fn postgres_admin_url() -> String {
    std::env::var("ARFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Drops the test database when the test ends (even on panic).
pub struct DropGuard {
    admin_url: String,
    db: String,
}

impl DropGuard {
    pub fn database(&self) -> &str {
        &self.db
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        // Best effort: a leftover test database is harmless, a panic in drop is not.
        if let Ok(mut c) = Client::connect(&self.admin_url, NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db
            ));
        }
    }
}

/// Replaces the database name in a `postgres://…/db?params` URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

/// Creates a fresh database `arflow_test_<pid>_<nanos>` on the test server and
/// returns its URL plus a guard that drops it.
///
/// `Ok(None)`: no server could be reached and `ARFLOW_REQUIRE_POSTGRES` is not
/// `1`; a "SKIPPED: …" line has been printed to stderr and the caller should
/// return. `Err`: the server is required but unreachable, or creating the
/// database failed.
pub fn fresh_postgres_url() -> Result<Option<(String, DropGuard)>, String> {
    let admin_url = postgres_admin_url();
    let mut config: postgres::Config = admin_url
        .parse()
        .map_err(|e| format!("bad ARFLOW_TEST_POSTGRES_URL {admin_url}: {e}"))?;
    config.connect_timeout(std::time::Duration::from_secs(5));
    let mut client = match config.connect(NoTls) {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("ARFLOW_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                return Err(format!(
                    "PostgreSQL is required (ARFLOW_REQUIRE_POSTGRES=1) but {admin_url} cannot be reached: {e}"
                ));
            }
            // Written straight to stderr, not with eprintln!, which the test
            // harness captures and hides for passing tests: a skip must show.
            let test = std::thread::current()
                .name()
                .unwrap_or("a PostgreSQL test")
                .to_string();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test} needs PostgreSQL (no server at {admin_url}: {e}); set ARFLOW_REQUIRE_POSTGRES=1 to make this a failure"
            );
            return Ok(None);
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let db = format!("arflow_test_{}_{}", std::process::id(), nanos);
    client
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .map_err(|e| format!("could not create test database {db}: {e}"))?;
    let url = with_database(&admin_url, &db);
    Ok(Some((url, DropGuard { admin_url, db })))
}

/// The IBM accounts-receivable sample from `shared/data` beside the
/// repository, or `None` (skip reported on stderr) when it is not there.
pub fn ibm_ar_sample() -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/ibm-ar/WA_Fn-UseC_-Accounts-Receivable.csv");
    if p.exists() {
        return Some(p);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test} needs the IBM sample at {} (shared/data beside the repository)",
        p.display()
    );
    None
}

/// A store for a test, and the guard that drops its PostgreSQL database (if any).
pub type TestStore = (Box<dyn crate::Store>, Option<DropGuard>);

/// The store a test should run against: a SQLite file in `dir`, or a fresh
/// PostgreSQL database when `ARFLOW_TEST_BACKEND=postgres` (how `.ci/run`
/// runs the same suite on both backends). `Ok(None)`: PostgreSQL was asked
/// for but is not reachable and not required; the skip has been reported.
pub fn test_store(
    dir: &std::path::Path,
    now: jiff::Timestamp,
) -> Result<Option<TestStore>, String> {
    if std::env::var("ARFLOW_TEST_BACKEND").as_deref() == Ok("postgres") {
        let Some((url, guard)) = fresh_postgres_url()? else {
            return Ok(None);
        };
        let store = crate::open(&url, now).map_err(|e| format!("could not open {url}: {e}"))?;
        Ok(Some((store, Some(guard))))
    } else {
        let store = crate::open(&format!("sqlite://{}", dir.join("test.db").display()), now)
            .map_err(|e| format!("could not open a SQLite store in {}: {e}", dir.display()))?;
        Ok(Some((store, None)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgresql://h", "x"),
            "postgresql://h/x"
        );
    }
}
