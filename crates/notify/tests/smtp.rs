//! SmtpMailer against a real SMTP server we did not write: aiosmtpd, run by
//! `tests/smtp_sink.py`, which only stores what the server received.
//!
//! Without python3 and aiosmtpd these tests print `SKIPPED: ...` and pass,
//! unless ARFLOW_REQUIRE_SMTP=1, which makes a missing server a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arflow_notify::FailureKind;
use arflow_notify::email::{
    DkimSettings, EmailInput, EmailSettings, Mailer, Recipient, Security, Sender, SmtpMailer,
    SmtpSettings,
};
use mail_parser::MimeHeaders;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn aiosmtpd_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One received message: the envelope and the raw DATA.
#[derive(Debug)]
struct Received {
    mail_from: String,
    rcpt_tos: Vec<String>,
    raw: Vec<u8>,
    path: PathBuf,
}

/// A running aiosmtpd; stopped (stdin closed, then killed) on drop.
struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    /// `None` (after printing why) when aiosmtpd is not installed.
    fn start(test: &str) -> Option<Sink> {
        if !aiosmtpd_available() {
            let required = std::env::var("ARFLOW_REQUIRE_SMTP").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{test}: ARFLOW_REQUIRE_SMTP=1 but python3 with aiosmtpd is not available (python3 -m pip install aiosmtpd)"
            );
            eprintln!("SKIPPED: {test} needs aiosmtpd (python3 -m pip install aiosmtpd)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new("python3")
            .arg(manifest_dir().join("tests/smtp_sink.py"))
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 smtp_sink.py");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("{test}: aiosmtpd did not start within 30 s");
            }
        };
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{test}: unexpected output from smtp_sink.py: {line:?}"));
        Some(Sink { child, port, dir })
    }

    /// Waits for `n` messages (10 s at most).
    fn received(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut metas: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
                .expect("sink dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            if metas.len() >= n || Instant::now() > deadline {
                metas.sort();
                return metas
                    .into_iter()
                    .map(|meta| {
                        let json: serde_json::Value =
                            serde_json::from_slice(&std::fs::read(&meta).expect("meta"))
                                .expect("meta json");
                        let path = meta.with_extension("eml");
                        Received {
                            mail_from: json["mail_from"].as_str().unwrap_or_default().to_string(),
                            rcpt_tos: json["rcpt_tos"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|v| v.as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default(),
                            raw: std::fs::read(&path).expect("eml"),
                            path,
                        }
                    })
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(port: u16) -> EmailSettings {
    EmailSettings {
        from: Sender {
            name: Some("Nordwind Forderungsmanagement".into()),
            address: "billing@nordwind.example".into(),
        },
        reply_to: None,
        reply_to_domain: Some("reply.nordwind.example".into()),
        bounce_domain: Some("bounce.nordwind.example".into()),
        unsubscribe_base_url: Some("https://ar.nordwind.example".into()),
        unsubscribe_mailto: Some("unsubscribe@nordwind.example".into()),
        dkim: None,
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: Some(port),
            security: Security::Plain,
            username: None,
            password: None,
            timeout_seconds: Some(10),
        }),
    }
}

fn mailer(settings: &EmailSettings) -> SmtpMailer {
    let smtp = settings.smtp.as_ref().expect("smtp settings");
    SmtpMailer::new(settings, smtp).expect("mailer")
}

fn input(to: &str) -> EmailInput {
    EmailInput {
        to: Recipient {
            name: Some("Zoë Müller".into()),
            address: to.into(),
        },
        subject: "Zahlungserinnerung: Rechnung INV-7 über 1.234,56\u{a0}€".into(),
        text: "Guten Tag Zoë Müller,\n\nbitte überweisen Sie 1.234,56\u{a0}€.\n".into(),
        html: Some(
            "<p>Guten Tag Zoë Müller,</p><p>bitte überweisen Sie 1.234,56&nbsp;€.</p>".into(),
        ),
        token: "t0k3n_Xy-9".into(),
        message_key: "C-1042:s2:2026-12-03".into(),
    }
}

fn header(msg: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    msg.header_raw(name).map(|v| {
        v.replace("\r\n ", " ")
            .replace("\r\n\t", " ")
            .trim()
            .to_string()
    })
}

#[test]
fn delivers_multipart_with_threading_and_unsubscribe_headers() {
    let Some(sink) = Sink::start("delivers_multipart_with_threading_and_unsubscribe_headers")
    else {
        return;
    };
    let provider_id = mailer(&settings(sink.port))
        .send(&input("zoe@customer.example"))
        .expect("sent");
    assert!(provider_id.starts_with("<arflow."), "{provider_id}");
    assert!(
        provider_id.contains("@nordwind.example> 250"),
        "{provider_id}"
    );
    assert!(
        provider_id.ends_with("queued as ARFLOW0001"),
        "{provider_id}"
    );

    let received = sink.received(1);
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.mail_from, "bounces+t0k3n_Xy-9@bounce.nordwind.example");
    assert_eq!(r.rcpt_tos, ["zoe@customer.example"]);

    let msg = mail_parser::MessageParser::default()
        .parse(&r.raw)
        .expect("parses");
    let from = msg.from().and_then(|a| a.first()).expect("from");
    assert_eq!(from.address(), Some("billing@nordwind.example"));
    assert_eq!(from.name(), Some("Nordwind Forderungsmanagement"));
    let to = msg.to().and_then(|a| a.first()).expect("to");
    assert_eq!(to.address(), Some("zoe@customer.example"));
    assert_eq!(to.name(), Some("Zoë Müller"));
    let reply_to = msg.reply_to().and_then(|a| a.first()).expect("reply-to");
    assert_eq!(
        reply_to.address(),
        Some("replies+t0k3n_Xy-9@reply.nordwind.example")
    );
    assert_eq!(
        msg.subject(),
        Some("Zahlungserinnerung: Rechnung INV-7 über 1.234,56\u{a0}€")
    );
    let message_id = header(&msg, "Message-ID").expect("message-id");
    assert!(
        provider_id.starts_with(&message_id),
        "{message_id} / {provider_id}"
    );
    assert!(msg.date().is_some());
    assert_eq!(
        header(&msg, "List-Unsubscribe").as_deref(),
        Some(
            "<https://ar.nordwind.example/u/t0k3n_Xy-9>, <mailto:unsubscribe@nordwind.example?subject=unsubscribe%20t0k3n_Xy-9>"
        )
    );
    assert_eq!(
        header(&msg, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    // The receiving MTA writes Return-Path from MAIL FROM; we never do.
    assert!(header(&msg, "Return-Path").is_none());

    let content_type = msg.content_type().expect("content type");
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("alternative"));
    let text = msg.body_text(0).expect("text part").replace("\r\n", "\n");
    assert_eq!(
        text,
        "Guten Tag Zoë Müller,\n\nbitte überweisen Sie 1.234,56\u{a0}€.\n"
    );
    let html = msg.body_html(0).expect("html part");
    assert!(
        html.contains("<p>bitte überweisen Sie 1.234,56&nbsp;€.</p>"),
        "{html}"
    );
    let raw = String::from_utf8_lossy(&r.raw);
    let plain_at = raw.find("Content-Type: text/plain").expect("plain part");
    let html_at = raw.find("Content-Type: text/html").expect("html part");
    assert!(plain_at < html_at, "text/plain comes first");
}

#[test]
fn rejected_recipient_is_permanent_and_busy_is_transient() {
    let Some(sink) = Sink::start("rejected_recipient_is_permanent_and_busy_is_transient") else {
        return;
    };
    let mailer = mailer(&settings(sink.port));
    let err = mailer
        .send(&input("reject-me@customer.example"))
        .expect_err("550");
    assert_eq!(err.kind, FailureKind::Permanent, "{}", err.message);
    assert!(
        err.message.contains("550") || err.message.contains("User unknown"),
        "{}",
        err.message
    );

    let err = mailer
        .send(&input("busy@customer.example"))
        .expect_err("451");
    assert_eq!(err.kind, FailureKind::Transient, "{}", err.message);

    // The server is still fine for a good recipient, and got nothing else.
    mailer.send(&input("ok@customer.example")).expect("sent");
    let received = sink.received(1);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_tos, ["ok@customer.example"]);
}

#[test]
fn connection_refused_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let err = mailer(&settings(port))
        .send(&input("zoe@customer.example"))
        .expect_err("nothing listens");
    assert_eq!(err.kind, FailureKind::Transient, "{}", err.message);
}

#[test]
fn dkim_signature_arrives_and_verifies() {
    let Some(sink) = Sink::start("dkim_signature_arrives_and_verifies") else {
        return;
    };
    let fixtures = manifest_dir().join("tests/fixtures");
    let keys = [
        ("dkim_test_rsa.pem", "dkim_test_rsa.dns.txt", "rsa-sha256"),
        (
            "dkim_test_ed25519.pem",
            "dkim_test_ed25519.dns.txt",
            "ed25519-sha256",
        ),
    ];
    for (i, (key, _, _)) in keys.iter().enumerate() {
        let mut s = settings(sink.port);
        s.dkim = Some(DkimSettings {
            domain: "nordwind.example".into(),
            selector: "arflow".into(),
            private_key_path: fixtures.join(key),
        });
        let mut email = input("zoe@customer.example");
        email.message_key = format!("dkim-{i}");
        mailer(&s).send(&email).expect("sent");
    }
    let received = sink.received(2);
    assert_eq!(received.len(), 2);
    for (r, (key, dns, algorithm)) in received.iter().zip(keys) {
        let msg = mail_parser::MessageParser::default()
            .parse(&r.raw)
            .expect("parses");
        let signature = header(&msg, "DKIM-Signature").expect("DKIM-Signature header");
        assert!(
            signature.contains(&format!("a={algorithm}")),
            "{key}: {signature}"
        );
        assert!(signature.contains("d=nordwind.example") && signature.contains("s=arflow"));
        assert!(signature.contains("list-unsubscribe"), "{signature}");

        // Verify with dkimpy when it is installed (an independent implementation).
        let status = Command::new("python3")
            .arg(manifest_dir().join("tests/dkim_verify.py"))
            .arg(&r.path)
            .arg(fixtures.join(dns))
            .stdout(Stdio::null())
            .status()
            .expect("run dkim_verify.py");
        match status.code() {
            Some(0) => {}
            Some(3) => eprintln!(
                "NOTE: {key}: signature present but not verified: dkimpy missing (python3 -m pip install dkimpy pynacl)"
            ),
            other => panic!("{key}: DKIM signature did not verify ({other:?})"),
        }
    }
}
