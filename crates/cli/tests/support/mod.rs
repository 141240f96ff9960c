//! What the end-to-end tests share: an isolated arflow installation.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arflow_store::testing::{DropGuard, fresh_postgres_url};
use serde_json::Value;

/// One isolated arflow installation: a data directory and, on PostgreSQL, its own database.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    _guard: Option<DropGuard>,
}

impl Env {
    /// `None` when the PostgreSQL backend was asked for but no server is there
    /// (the skip has been reported).
    pub fn new() -> Option<Env> {
        let dir = tempfile::tempdir().expect("tempdir");
        if std::env::var("ARFLOW_TEST_BACKEND").as_deref() == Ok("postgres") {
            match fresh_postgres_url() {
                Ok(Some((url, guard))) => Some(Env {
                    dir,
                    database_url: Some(url),
                    _guard: Some(guard),
                }),
                Ok(None) => None,
                Err(e) => panic!("{e}"),
            }
        } else {
            Some(Env {
                dir,
                database_url: None,
                _guard: None,
            })
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run arflow")
    }

    /// The `arflow` command for this installation, without arguments, for
    /// tests that add environment variables or spawn it.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arflow"));
        c.arg("--data-dir").arg(self.dir.path().join("data"));
        c.env_remove("ARFLOW_DATABASE_URL")
            .env_remove("ARFLOW_DATA_DIR")
            .env_remove("ARFLOW_CONFIG")
            .env("RUST_BACKTRACE", "1");
        c.env_remove("ARFLOW_NOW");
        if let Some(url) = &self.database_url {
            c.arg("--database-url").arg(url);
        }
        c
    }

    /// Runs with the clock stopped at `now` (RFC 3339) and expects success.
    pub fn ok_at(&self, now: &str, args: &[&str]) -> String {
        let out = self
            .command()
            .env("ARFLOW_NOW", now)
            .args(args)
            .output()
            .expect("run arflow");
        assert!(
            out.status.success(),
            "arflow {args:?} at {now} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    pub fn json_at(&self, now: &str, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok_at(now, args)).expect("JSON output")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "arflow {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs and expects failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            !out.status.success(),
            "arflow {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8(out.stderr).expect("utf-8 output");
        assert!(
            !err.contains("panicked") && !err.contains("stack backtrace"),
            "a user error must not panic:\n{err}"
        );
        err
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("JSON output")
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        let mut f = std::fs::File::create(&p).expect("create file");
        f.write_all(content.as_bytes()).expect("write file");
        p
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A real SMTP server (aiosmtpd, from PyPI) in a child process, storing what
/// it receives in a directory. `None` (with a visible skip) when python3 or
/// aiosmtpd is missing, unless ARFLOW_REQUIRE_SMTP=1 makes that a failure.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: String,
}

impl SmtpSink {
    pub fn start(test: &str, delay_ms: u32) -> Option<SmtpSink> {
        use std::io::BufRead;
        let available = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !available {
            if std::env::var("ARFLOW_REQUIRE_SMTP").as_deref() == Ok("1") {
                panic!(
                    "{test} needs aiosmtpd (python3 -m pip install aiosmtpd) and ARFLOW_REQUIRE_SMTP=1"
                );
            }
            eprintln!("SKIPPED: {test} needs aiosmtpd (python3 -m pip install aiosmtpd)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        // The notify crate's sink: aiosmtpd storing each message it accepts.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notify/tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .arg(delay_ms.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read from the SMTP server");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"));
        Some(SmtpSink { child, port, dir })
    }

    /// Every message accepted so far (the `.json` envelope is written last).
    pub fn messages(&self) -> Vec<Received> {
        let mut envelopes: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read the SMTP server's directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        envelopes.sort();
        envelopes
            .iter()
            .map(|p| {
                let meta: Value =
                    serde_json::from_str(&std::fs::read_to_string(p).expect("read envelope"))
                        .expect("envelope JSON");
                let raw = std::fs::read_to_string(p.with_extension("eml")).expect("read message");
                Received {
                    mail_from: meta["mail_from"].as_str().unwrap_or_default().to_string(),
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()
                        .expect("rcpt_tos")
                        .iter()
                        .map(|r| r.as_str().unwrap_or_default().to_string())
                        .collect(),
                    raw,
                }
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
