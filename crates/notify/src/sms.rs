//! SMS: sending through Twilio's Messages API (or anything speaking it),
//! segment counting per GSM 03.38, and the opt-out line.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use crate::SendError;
use crate::locale::Lang;

/// Sends an SMS; returns the provider's message id.
pub trait SmsProvider: Send + Sync {
    fn send(&self, to: &str, body: &str) -> Result<String, SendError>;
}

pub const TWILIO_API: &str = "https://api.twilio.com";

/// The `[sms.twilio]` section of the configuration.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// Defaults to https://api.twilio.com.
    pub base_url: Option<String>,
    pub account_sid: String,
    pub auth_token: String,
    /// The sending number (E.164) or alphanumeric sender id...
    pub from: Option<String>,
    /// ...or a Messaging Service that picks the sender. Exactly one of the two.
    pub messaging_service_sid: Option<String>,
    /// 30 seconds if unset.
    pub timeout_seconds: Option<u64>,
}

impl fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSettings")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsConfigError {
    #[error("twilio: set exactly one of 'from' and 'messaging_service_sid'")]
    Sender,
    #[error("twilio: account_sid '{0}' must be letters and digits only")]
    AccountSid(String),
    #[error("twilio: auth_token is empty")]
    AuthToken,
    #[error("twilio: base_url '{0}' must start with https:// (or http:// for testing)")]
    BaseUrl(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sender {
    From(String),
    MessagingService(String),
}

/// Twilio's Programmable Messaging: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`.
pub struct TwilioSms {
    base_url: String,
    account_sid: String,
    auth_token: String,
    sender: Sender,
    agent: ureq::Agent,
}

impl fmt::Debug for TwilioSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSms")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// Twilio's reply to a created message (only what we use).
#[derive(Debug, Deserialize)]
struct Created {
    sid: Option<String>,
    status: Option<String>,
}

/// Twilio's error body: https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions
#[derive(Debug, Deserialize)]
struct ApiError {
    code: Option<i64>,
    message: Option<String>,
    more_info: Option<String>,
}

/// Twilio error 21610: the recipient replied STOP. Never retry.
pub const TWILIO_UNSUBSCRIBED: i64 = 21610;

impl TwilioSms {
    pub fn new(settings: &TwilioSettings) -> Result<TwilioSms, SmsConfigError> {
        let sender = match (&settings.from, &settings.messaging_service_sid) {
            (Some(from), None) if !from.trim().is_empty() => Sender::From(from.trim().to_string()),
            (None, Some(sid)) if !sid.trim().is_empty() => {
                Sender::MessagingService(sid.trim().to_string())
            }
            _ => return Err(SmsConfigError::Sender),
        };
        let account_sid = settings.account_sid.trim();
        // The SID goes into the URL path.
        if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SmsConfigError::AccountSid(account_sid.to_string()));
        }
        if settings.auth_token.is_empty() {
            return Err(SmsConfigError::AuthToken);
        }
        let base_url = settings.base_url.as_deref().unwrap_or(TWILIO_API).trim();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(SmsConfigError::BaseUrl(base_url.to_string()));
        }
        let timeout = Duration::from_secs(settings.timeout_seconds.unwrap_or(30));
        let config = ureq::Agent::config_builder()
            // Error statuses carry Twilio's explanation in the body: read it.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("arflow/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        Ok(TwilioSms {
            base_url: base_url.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token: settings.auth_token.clone(),
            sender,
            agent,
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, self.account_sid
        )
    }
}

impl SmsProvider for TwilioSms {
    fn send(&self, to: &str, body: &str) -> Result<String, SendError> {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.account_sid, self.auth_token));
        let mut form = vec![("To", to), ("Body", body)];
        match &self.sender {
            Sender::From(from) => form.push(("From", from)),
            Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        let mut response = self
            .agent
            .post(&self.url())
            .header("Authorization", &format!("Basic {credentials}"))
            .header("Accept", "application/json")
            .send_form(form)
            // No HTTP answer (refused, reset, DNS, timeout): try again later.
            .map_err(|e| SendError::transient(format!("twilio: {e}")))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string();

        if (200..300).contains(&status) {
            // Twilio has accepted the message: if we cannot read its id, a
            // retry could send it twice, so this needs a person, not a retry.
            let in_doubt = |why: String| {
                SendError::permanent(format!(
                    "twilio accepted the message (HTTP {status}) but {why}; it may have been sent: check the Twilio console before sending again"
                ))
            };
            let text = text.map_err(|e| in_doubt(format!("its reply could not be read ({e})")))?;
            let created: Created = serde_json::from_str(&text)
                .map_err(|e| in_doubt(format!("its reply is not the expected JSON ({e})")))?;
            return match created.sid {
                Some(sid) if !sid.is_empty() => {
                    // "failed" at creation would be unusual; keep the sid either way.
                    if created.status.as_deref() == Some("failed") {
                        Err(SendError::permanent(format!(
                            "twilio: message {sid} failed at creation"
                        )))
                    } else {
                        Ok(sid)
                    }
                }
                _ => Err(in_doubt("its reply has no message sid".to_string())),
            };
        }

        let api: Option<ApiError> = text.ok().and_then(|t| serde_json::from_str(&t).ok());
        let code = api.as_ref().and_then(|a| a.code);
        let mut message = format!("twilio: HTTP {status}");
        if let Some(api) = &api {
            if let Some(code) = api.code {
                message.push_str(&format!(" error {code}"));
            }
            if let Some(text) = &api.message {
                message.push_str(&format!(": {text}"));
            }
            if let Some(info) = &api.more_info {
                message.push_str(&format!(" ({info})"));
            }
        }
        Err(SendError {
            kind: classify_http(status, code),
            message,
        })
    }
}

/// 429 and 5xx are worth retrying; so is 401 (wrong credentials: an
/// operator fixes the configuration and every queued message is still
/// good). Any other 4xx is about this message, e.g. 21211 invalid number,
/// 21610 recipient unsubscribed: permanent.
fn classify_http(status: u16, code: Option<i64>) -> crate::FailureKind {
    use crate::FailureKind::{Permanent, Transient};
    if code == Some(TWILIO_UNSUBSCRIBED) {
        return Permanent;
    }
    match status {
        429 | 401 => Transient,
        500..=599 => Transient,
        400..=499 => Permanent,
        // 1xx/3xx: not an answer Twilio gives; treat as a passing problem.
        _ => Transient,
    }
}

/// How an SMS body is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// GSM 03.38 7-bit default alphabet.
    Gsm7,
    /// UCS-2 (UTF-16): needed as soon as one character is outside GSM-7.
    Ucs2,
}

/// What an SMS body costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: SmsEncoding,
    /// Number of segments (0 for an empty body).
    pub count: usize,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
}

/// GSM 03.38 basic character set (one septet each; ESC excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table: ESC plus the character, two septets each.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Splits `text` into segments as handsets and carriers do: a single
/// segment holds 160 septets (GSM-7) or 70 UTF-16 units (UCS-2); a longer
/// text needs a 6-byte concatenation header per segment, leaving 153 or 67,
/// and neither an escape pair nor a surrogate pair is split across two.
pub fn sms_segments(text: &str) -> Segments {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    let (encoding, sizes, single, multi) = match gsm {
        Some(sizes) => (SmsEncoding::Gsm7, sizes, 160, 153),
        None => (
            SmsEncoding::Ucs2,
            text.chars().map(char::len_utf16).collect(),
            70,
            67,
        ),
    };
    let units: usize = sizes.iter().sum();
    let count = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        let mut count = 1;
        let mut used = 0;
        for size in sizes {
            if used + size > multi {
                count += 1;
                used = 0;
            }
            used += size;
        }
        count
    };
    Segments {
        encoding,
        count,
        units,
    }
}

/// The opt-out instruction in `locale`'s language. "STOP" is the keyword
/// carriers and Twilio act on in every language.
pub fn opt_out_line(locale: &str) -> &'static str {
    match Lang::from_tag(locale) {
        Lang::En => "Reply STOP to opt out.",
        Lang::De => "Antworten Sie STOP, um keine SMS mehr zu erhalten.",
        Lang::Fr => "Répondez STOP pour ne plus recevoir de SMS.",
        Lang::Es => "Responda STOP para darse de baja.",
    }
}

/// `body` with the localized opt-out line on its own last line (not added
/// twice).
pub fn with_opt_out_line(body: &str, locale: &str) -> String {
    let line = opt_out_line(locale);
    let body = body.trim_end();
    if body.ends_with(line) {
        return body.to_string();
    }
    if body.is_empty() {
        return line.to_string();
    }
    format!("{body}\n{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_single_and_multi_segment() {
        assert_eq!(
            sms_segments(""),
            Segments {
                encoding: SmsEncoding::Gsm7,
                count: 0,
                units: 0
            }
        );
        let s160 = "a".repeat(160);
        assert_eq!(
            sms_segments(&s160),
            Segments {
                encoding: SmsEncoding::Gsm7,
                count: 1,
                units: 160
            }
        );
        let s161 = "a".repeat(161);
        assert_eq!(sms_segments(&s161).count, 2);
        assert_eq!(sms_segments(&"a".repeat(306)).count, 2);
        assert_eq!(sms_segments(&"a".repeat(307)).count, 3);
        // German and French letters in the basic set stay GSM-7.
        let s = sms_segments("Grüße, é è à ù Ä Ö Ñ ß ¿¡");
        assert_eq!(s.encoding, SmsEncoding::Gsm7);
    }

    #[test]
    fn extension_characters_take_two_septets() {
        let euro = sms_segments("€");
        assert_eq!(
            (euro.encoding, euro.units, euro.count),
            (SmsEncoding::Gsm7, 2, 1)
        );
        assert_eq!(sms_segments("{[~]}|^\\").units, 16);
        // 159 + 2 = 161 septets: two segments.
        let text = format!("{}€", "a".repeat(159));
        assert_eq!(sms_segments(&text).units, 161);
        assert_eq!(sms_segments(&text).count, 2);
        // 80 euro signs = 160 septets fit one segment.
        assert_eq!(sms_segments(&"€".repeat(80)).count, 1);
        // An escape pair is not split: 152 septets then '€' starts segment 2,
        // so 152 + 2 + 152 = 306 septets still need 3 segments.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(sms_segments(&text).units, 306);
        assert_eq!(sms_segments(&text).count, 3);
    }

    #[test]
    fn one_character_outside_gsm_switches_to_ucs2() {
        let s = sms_segments("Payment received 🙂");
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        assert_eq!(s.units, 19); // the emoji is a surrogate pair
        assert_eq!(s.count, 1);
        let text = format!("{}🙂", "a".repeat(69));
        assert_eq!(sms_segments(&text).count, 2);
        assert_eq!(sms_segments(&"á".repeat(70)).count, 1);
        assert_eq!(sms_segments(&"á".repeat(71)).count, 2);
        assert_eq!(sms_segments(&"á".repeat(134)).count, 2);
        assert_eq!(sms_segments(&"á".repeat(135)).count, 3);
        // Lowercase ç and the narrow no-break space are not GSM-7.
        assert_eq!(sms_segments("reçu").encoding, SmsEncoding::Ucs2);
        assert_eq!(sms_segments("1\u{202f}234").encoding, SmsEncoding::Ucs2);
        // A surrogate pair is not split: 66 units, then the emoji opens segment 2.
        let text = format!("{}🙂{}", "á".repeat(66), "á".repeat(66));
        assert_eq!(sms_segments(&text).count, 3);
    }

    #[test]
    fn opt_out_lines() {
        assert_eq!(
            with_opt_out_line("Hello\n", "en-US"),
            "Hello\nReply STOP to opt out."
        );
        let once = with_opt_out_line("Hallo", "de-AT");
        assert_eq!(
            once,
            "Hallo\nAntworten Sie STOP, um keine SMS mehr zu erhalten."
        );
        assert_eq!(with_opt_out_line(&once, "de"), once);
        assert!(
            with_opt_out_line("x", "fr").ends_with("Répondez STOP pour ne plus recevoir de SMS.")
        );
        assert!(with_opt_out_line("x", "es-MX").ends_with("Responda STOP para darse de baja."));
        assert_eq!(with_opt_out_line("x", "zz"), "x\nReply STOP to opt out.");
        // The opt-out lines stay within GSM-7, so they never force UCS-2.
        for locale in ["en", "de", "fr", "es"] {
            assert_eq!(
                sms_segments(opt_out_line(locale)).encoding,
                SmsEncoding::Gsm7,
                "{locale}"
            );
        }
    }

    #[test]
    fn http_classification() {
        use crate::FailureKind::{Permanent, Transient};
        assert_eq!(classify_http(400, Some(21211)), Permanent);
        assert_eq!(classify_http(400, Some(TWILIO_UNSUBSCRIBED)), Permanent);
        assert_eq!(classify_http(404, None), Permanent);
        assert_eq!(classify_http(401, Some(20003)), Transient);
        assert_eq!(classify_http(429, Some(20429)), Transient);
        assert_eq!(classify_http(500, None), Transient);
        assert_eq!(classify_http(503, None), Transient);
    }

    #[test]
    fn config_validation() {
        let ok = TwilioSettings {
            base_url: None,
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: "token".into(),
            from: Some("+15005550006".into()),
            messaging_service_sid: None,
            timeout_seconds: None,
        };
        let sms = TwilioSms::new(&ok).expect("valid");
        assert_eq!(
            sms.url(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert!(!format!("{ok:?}").contains("token\""));
        let mut both = ok.clone();
        both.messaging_service_sid = Some("MG1".into());
        assert_eq!(TwilioSms::new(&both).err(), Some(SmsConfigError::Sender));
        let mut neither = ok.clone();
        neither.from = None;
        assert_eq!(TwilioSms::new(&neither).err(), Some(SmsConfigError::Sender));
        let mut bad_sid = ok.clone();
        bad_sid.account_sid = "AC/../x".into();
        assert!(matches!(
            TwilioSms::new(&bad_sid),
            Err(SmsConfigError::AccountSid(_))
        ));
        let mut bad_url = ok;
        bad_url.base_url = Some("api.twilio.com".into());
        assert!(matches!(
            TwilioSms::new(&bad_url),
            Err(SmsConfigError::BaseUrl(_))
        ));
    }
}
