//! TwilioSms against a local HTTP server that answers as Twilio's Messages
//! API documents (201 with the message resource, JSON errors with code,
//! message and more_info) and records what it was sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arflow_notify::FailureKind;
use arflow_notify::sms::{SmsProvider, TwilioSettings, TwilioSms};

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    form: BTreeMap<String, String>,
}

struct FakeTwilio {
    base_url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeTwilio {
    /// Answers each request with the next (status, JSON body) in `replies`.
    fn start(replies: Vec<(u16, String)>) -> FakeTwilio {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let port = server.server_addr().to_ip().expect("ip address").port();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&recorded);
        let thread = std::thread::spawn(move || {
            for (status, body) in replies {
                let Ok(mut request) = server.recv() else {
                    return;
                };
                let headers: Vec<(String, String)> = request
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            h.value.to_string(),
                        )
                    })
                    .collect();
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                };
                let authorization = header("authorization");
                let content_type = header("content-type");
                let mut raw = Vec::new();
                request.as_reader().read_to_end(&mut raw).expect("body");
                let form = form_urlencoded::parse(&raw).into_owned().collect();
                log.lock().expect("lock").push(Recorded {
                    method: request.method().to_string(),
                    path: request.url().to_string(),
                    authorization,
                    content_type,
                    form,
                });
                let json = tiny_http::Header::from_bytes("Content-Type", "application/json")
                    .expect("header");
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(json);
                request.respond(response).expect("respond");
            }
        });
        FakeTwilio {
            base_url: format!("http://127.0.0.1:{port}"),
            recorded,
            thread: Some(thread),
        }
    }

    fn requests(&mut self) -> Vec<Recorded> {
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
        self.recorded.lock().expect("lock").clone()
    }
}

fn settings(base_url: &str) -> TwilioSettings {
    TwilioSettings {
        base_url: Some(base_url.to_string()),
        account_sid: "AC00000000000000000000000000000001".into(),
        auth_token: "s3cret".into(),
        from: Some("+15005550006".into()),
        messaging_service_sid: None,
        timeout_seconds: Some(10),
    }
}

/// The message resource Twilio returns on 201 Created (abridged from its docs).
fn created(sid: &str) -> String {
    format!(
        r#"{{"account_sid":"AC00000000000000000000000000000001","api_version":"2010-04-01","body":"x","date_created":"Thu, 03 Dec 2026 09:00:00 +0000","date_sent":null,"direction":"outbound-api","error_code":null,"error_message":null,"from":"+15005550006","messaging_service_sid":null,"num_media":"0","num_segments":"1","price":null,"price_unit":"USD","sid":"{sid}","status":"queued","to":"+4915112345678","uri":"/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/{sid}.json"}}"#
    )
}

fn error(status: u16, code: i64, message: &str) -> (u16, String) {
    (
        status,
        format!(
            r#"{{"code":{code},"message":"{message}","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
        ),
    )
}

#[test]
fn posts_the_form_with_basic_auth_and_returns_the_sid() {
    let sid = "SM0123456789abcdef0123456789abcdef";
    let mut server = FakeTwilio::start(vec![(201, created(sid))]);
    let sms = TwilioSms::new(&settings(&server.base_url)).expect("config");
    let body = "Nordwind: 1.234,56 € offen & fällig + Gebühr?";
    let id = sms.send("+4915112345678", body).expect("sent");
    assert_eq!(id, sid);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json"
    );
    // `echo -n AC00000000000000000000000000000001:s3cret | base64`
    assert_eq!(
        r.authorization.as_deref(),
        Some("Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMTpzM2NyZXQ=")
    );
    assert!(
        r.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")),
        "{:?}",
        r.content_type
    );
    let expected: BTreeMap<String, String> = [
        ("To", "+4915112345678"),
        ("From", "+15005550006"),
        ("Body", body),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(r.form, expected);
}

#[test]
fn messaging_service_replaces_from() {
    let mut server = FakeTwilio::start(vec![(201, created("SM1"))]);
    let mut s = settings(&server.base_url);
    s.from = None;
    s.messaging_service_sid = Some("MG0123".into());
    let sms = TwilioSms::new(&s).expect("config");
    sms.send("+15558675310", "hi").expect("sent");
    let form = &server.requests()[0].form;
    assert_eq!(
        form.get("MessagingServiceSid").map(String::as_str),
        Some("MG0123")
    );
    assert!(!form.contains_key("From"));
}

#[test]
fn errors_are_classified() {
    let replies = vec![
        error(
            400,
            21211,
            "The 'To' number +1555 is not a valid phone number.",
        ),
        error(400, 21610, "Attempt to send to unsubscribed recipient"),
        error(429, 20429, "Too Many Requests"),
        (500, "Internal Server Error".to_string()),
        (503, String::new()),
        error(401, 20003, "Authenticate"),
        error(404, 20404, "The requested resource was not found"),
    ];
    let mut server = FakeTwilio::start(replies);
    let sms = TwilioSms::new(&settings(&server.base_url)).expect("config");
    let mut results = Vec::new();
    for _ in 0..7 {
        results.push(sms.send("+1555", "x").expect_err("fails"));
    }
    let kinds: Vec<FailureKind> = results.iter().map(|e| e.kind).collect();
    use FailureKind::{Permanent, Transient};
    assert_eq!(
        kinds,
        [
            Permanent, Permanent, Transient, Transient, Transient, Transient, Permanent
        ]
    );
    assert_eq!(
        results[0].message,
        "twilio: HTTP 400 error 21211: The 'To' number +1555 is not a valid phone number. (https://www.twilio.com/docs/errors/21211)"
    );
    assert!(results[1].message.contains("21610"));
    assert_eq!(results[3].message, "twilio: HTTP 500");
    assert_eq!(server.requests().len(), 7);
}

#[test]
fn accepted_without_a_sid_is_not_retried() {
    let mut server =
        FakeTwilio::start(vec![(201, "{}".to_string()), (200, "not json".to_string())]);
    let sms = TwilioSms::new(&settings(&server.base_url)).expect("config");
    for _ in 0..2 {
        let err = sms.send("+1555", "x").expect_err("no sid");
        assert_eq!(err.kind, FailureKind::Permanent);
        assert!(
            err.message.contains("may have been sent"),
            "{}",
            err.message
        );
    }
    server.requests();
}

#[test]
fn connection_refused_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let sms = TwilioSms::new(&settings(&format!("http://127.0.0.1:{port}"))).expect("config");
    let err = sms.send("+1555", "x").expect_err("refused");
    assert_eq!(err.kind, FailureKind::Transient, "{}", err.message);
}
