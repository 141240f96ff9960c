//! `arflow user`: accounts of the web application and their API tokens,
//! through the binary. Runs on SQLite, or on a fresh PostgreSQL database
//! with ARFLOW_TEST_BACKEND=postgres.

mod support;

use std::io::Write;
use std::process::{Output, Stdio};

use arflow_store::{Role, Scope, Store};
use serde_json::Value;
use support::Env;

const NOW: &str = "2026-12-01T09:00:00Z";

fn setup() -> Option<Env> {
    let env = Env::new()?;
    env.ok(&["init", "--name", "Nordwind Supplies"]);
    Some(env)
}

/// Runs with `input` on standard input.
fn with_stdin(env: &Env, args: &[&str], input: &str) -> Output {
    let mut child = env
        .command()
        .env("ARFLOW_NOW", NOW)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run arflow");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for arflow")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The store the installation uses, opened directly.
fn open_store(env: &Env) -> Box<dyn Store> {
    let url = env.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            env.path().join("data").join("arflow.db").display()
        )
    });
    arflow_store::open(&url, NOW.parse().expect("timestamp")).expect("open the store")
}

/// The value after "Password: " in a command's output.
fn printed_password(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .unwrap_or_else(|| panic!("no password printed:\n{out}"))
        .trim()
        .to_string()
}

fn user<'a>(list: &'a Value, email: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no user {email}: {list:#}"))
}

#[test]
fn users_are_added_listed_and_changed() {
    let Some(env) = setup() else { return };

    // A generated password, printed once.
    let out = env.ok_at(
        NOW,
        &[
            "user",
            "add",
            "Anna@Example.com",
            "--role",
            "admin",
            "--name",
            "Anna Schmidt",
        ],
    );
    assert!(out.contains("anna@example.com"), "{out}");
    assert!(out.contains("will not be shown again"), "{out}");
    let generated = printed_password(&out);
    assert_eq!(generated.chars().count(), 16, "{out}");

    // A password given on standard input.
    let added = with_stdin(
        &env,
        &[
            "user",
            "add",
            "bob@example.com",
            "--role",
            "collector",
            "--password-stdin",
        ],
        "correct horse battery staple\n",
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(
        !text(&added.stdout).contains("Password:"),
        "{}",
        text(&added.stdout)
    );

    let list = env.json(&["user", "list", "--json"]);
    assert_eq!(list.as_array().expect("list").len(), 2);
    let anna = user(&list, "anna@example.com");
    assert_eq!(anna["name"], "Anna Schmidt");
    assert_eq!(anna["role"], "admin");
    assert_eq!(anna["disabled"], false);
    assert_eq!(
        user(&list, "bob@example.com")["name"],
        "bob",
        "name defaults to the local part"
    );
    let raw = serde_json::to_string(&list).expect("json");
    assert!(
        !raw.contains("argon2") && !raw.contains("password"),
        "{raw}"
    );
    let table = env.ok(&["user", "list"]);
    assert!(
        table.contains("anna@example.com") && table.contains("collector"),
        "{table}"
    );
    assert!(!table.contains("argon2"), "{table}");

    // Stored as Argon2id PHC strings that verify against the passwords.
    let store = open_store(&env);
    let org = store.default_organization().expect("org").id;
    let stored = store
        .user_by_email("anna@example.com")
        .expect("read")
        .expect("anna is stored");
    assert_eq!((stored.org, stored.role), (org, Role::Admin));
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "{}",
        stored.password_hash
    );
    assert!(arflow_web::secrets::verify_password(
        &generated,
        &stored.password_hash
    ));
    let bob = store
        .user_by_email("bob@example.com")
        .expect("read")
        .expect("bob");
    assert!(arflow_web::secrets::verify_password(
        "correct horse battery staple",
        &bob.password_hash
    ));

    // passwd: a new generated password replaces the old one.
    let out = env.ok_at(NOW, &["user", "passwd", "anna@example.com"]);
    let newer = printed_password(&out);
    assert_ne!(newer, generated);
    let stored = store
        .user_by_email("anna@example.com")
        .expect("read")
        .expect("anna");
    assert!(arflow_web::secrets::verify_password(
        &newer,
        &stored.password_hash
    ));
    assert!(!arflow_web::secrets::verify_password(
        &generated,
        &stored.password_hash
    ));
    let passwd = with_stdin(
        &env,
        &["user", "passwd", "BOB@example.com", "--password-stdin"],
        "another long passphrase\r\n",
    );
    assert!(passwd.status.success(), "{}", text(&passwd.stderr));
    let bob = store
        .user_by_email("bob@example.com")
        .expect("read")
        .expect("bob");
    assert!(arflow_web::secrets::verify_password(
        "another long passphrase",
        &bob.password_hash
    ));

    // role, disable, enable.
    let out = env.ok_at(NOW, &["user", "role", "bob@example.com", "viewer"]);
    assert!(out.contains("viewer"), "{out}");
    assert_eq!(
        user(&env.json(&["user", "list", "--json"]), "bob@example.com")["role"],
        "viewer"
    );
    let err = env.fails(&["user", "role", "bob@example.com", "owner"]);
    assert!(err.contains("admin, collector or viewer"), "{err}");
    env.ok_at(NOW, &["user", "disable", "bob@example.com"]);
    assert_eq!(
        user(&env.json(&["user", "list", "--json"]), "bob@example.com")["disabled"],
        true
    );
    let again = env.ok_at(NOW, &["user", "disable", "bob@example.com"]);
    assert!(again.contains("already disabled"), "{again}");
    env.ok_at(NOW, &["user", "enable", "bob@example.com"]);
    assert_eq!(
        user(&env.json(&["user", "list", "--json"]), "bob@example.com")["disabled"],
        false
    );

    // Every change is in the log, by "cli", without a hash.
    let events = store
        .events(
            org,
            &arflow_store::EventFilter {
                kind_prefix: Some("user.".into()),
                ..Default::default()
            },
        )
        .expect("events");
    let kinds: Vec<&str> = events.iter().rev().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "user.created",
            "user.created",
            "user.password_changed",
            "user.password_changed",
            "user.updated",
            "user.disabled",
            "user.enabled",
        ]
    );
    assert!(events.iter().all(|e| e.actor == "cli"));
    assert!(
        !serde_json::to_string(&events)
            .expect("json")
            .contains("argon2")
    );

    let err = env.fails(&["user", "passwd", "nobody@example.com"]);
    assert!(err.contains("no user nobody@example.com"), "{err}");
}

#[test]
fn bad_emails_duplicates_and_short_passwords_are_refused() {
    let Some(env) = setup() else { return };
    env.ok(&["user", "add", "anna@example.com", "--role", "viewer"]);

    let err = env.fails(&["user", "add", "ANNA@example.com", "--role", "admin"]);
    assert!(
        err.contains("a user with email anna@example.com already exists"),
        "{err}"
    );

    for bad in [
        "anna.example.com",
        "anna@@example.com",
        "an na@example.com",
        "@example.com",
        "anna@",
    ] {
        let err = env.fails(&["user", "add", bad, "--role", "viewer"]);
        assert!(err.contains("is not an email address"), "{bad}: {err}");
    }

    let short = with_stdin(
        &env,
        &[
            "user",
            "add",
            "carl@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!short.status.success());
    let err = text(&short.stderr);
    assert!(err.contains("at least 10 characters"), "{err}");
    let empty = with_stdin(
        &env,
        &[
            "user",
            "add",
            "carl@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "",
    );
    assert!(!empty.status.success());
    assert!(text(&empty.stderr).contains("no password on standard input"));
    let short = with_stdin(
        &env,
        &["user", "passwd", "anna@example.com", "--password-stdin"],
        "123456789\n",
    );
    assert!(!short.status.success());
    assert!(text(&short.stderr).contains("at least 10 characters"));

    // Nothing was created by the refused commands.
    let list = env.json(&["user", "list", "--json"]);
    assert_eq!(list.as_array().expect("list").len(), 1, "{list:#}");
}

#[test]
fn api_tokens_are_created_listed_and_revoked() {
    let Some(env) = setup() else { return };
    env.ok(&["user", "add", "anna@example.com", "--role", "admin"]);

    let out = env.ok_at(
        NOW,
        &[
            "user",
            "token",
            "create",
            "anna@example.com",
            "--name",
            "nightly export",
            "--scope",
            "write",
            "--scope",
            "read",
            "--expires-in-days",
            "30",
        ],
    );
    assert!(out.contains("will not be shown again"), "{out}");
    assert!(out.contains("expires 2026-12-31"), "{out}");
    let secret = out
        .lines()
        .find(|l| l.starts_with(arflow_web::secrets::API_TOKEN_PREFIX))
        .unwrap_or_else(|| panic!("no secret printed:\n{out}"))
        .trim()
        .to_string();
    let out = env.ok_at(
        NOW,
        &[
            "user",
            "token",
            "create",
            "anna@example.com",
            "--name",
            "dashboard",
        ],
    );
    assert!(
        out.contains("scopes: read;") && out.contains("does not expire"),
        "{out}"
    );

    let list = env.json(&["user", "token", "list", "--json"]);
    let tokens = list.as_array().expect("tokens");
    assert_eq!(tokens.len(), 2, "{list:#}");
    let export = &tokens[0];
    assert_eq!(export["name"], "nightly export");
    assert_eq!(export["user"], "anna@example.com");
    assert_eq!(export["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(export["expires_at"], "2026-12-31T09:00:00Z");
    assert_eq!(export["revoked_at"], Value::Null);
    assert_eq!(export["last_used_at"], Value::Null);
    assert_eq!(tokens[1]["scopes"], serde_json::json!(["read"]));
    let raw = serde_json::to_string(&list).expect("json");
    let hash = arflow_web::secrets::sha256_hex(&secret);
    assert!(!raw.contains(&hash) && !raw.contains(&secret), "{raw}");
    let table = env.ok(&["user", "token", "list"]);
    assert!(
        table.contains("nightly export") && table.contains("read, write"),
        "{table}"
    );
    assert!(
        !table.contains(&hash) && !table.contains(&secret),
        "{table}"
    );

    // The store knows the token by the secret's hash only.
    let store = open_store(&env);
    let (found, owner) = store
        .api_token_by_hash(&hash, NOW.parse().expect("timestamp"))
        .expect("lookup")
        .expect("the token works");
    assert_eq!(owner.email, "anna@example.com");
    assert_eq!(found.scopes, vec![Scope::Read, Scope::Write]);

    let id = export["id"].as_i64().expect("id").to_string();
    let out = env.ok_at(NOW, &["user", "token", "revoke", &id]);
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(
        store
            .api_token_by_hash(&hash, NOW.parse().expect("timestamp"))
            .expect("lookup"),
        None
    );
    let list = env.json(&["user", "token", "list", "--json"]);
    assert_eq!(list[0]["revoked_at"], NOW);
    let err = env.fails(&["user", "token", "revoke", &id]);
    assert!(err.contains("already revoked"), "{err}");
    let err = env.fails(&["user", "token", "revoke", "999999"]);
    assert!(err.contains("not found"), "{err}");
    let err = env.fails(&[
        "user",
        "token",
        "create",
        "nobody@example.com",
        "--name",
        "x",
    ]);
    assert!(err.contains("no user nobody@example.com"), "{err}");
    let err = env.fails(&[
        "user",
        "token",
        "create",
        "anna@example.com",
        "--name",
        "x",
        "--scope",
        "admin",
    ]);
    assert!(err.contains("use read or write"), "{err}");
}
