//! Email: building RFC 5322 messages with lettre and delivering them over
//! SMTP, or writing them to `.eml` files when no SMTP server is configured.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, Message, SmtpTransport, Transport};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::SendError;

/// The `[email]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub from: Sender,
    /// A fixed Reply-To address, used when `reply_to_domain` is not set.
    pub reply_to: Option<String>,
    /// Reply-To becomes `replies+TOKEN@DOMAIN`, so a reply can be matched to
    /// the message it answers.
    pub reply_to_domain: Option<String>,
    /// The SMTP envelope sender (MAIL FROM) becomes `bounces+TOKEN@DOMAIN`
    /// (VERP), so a bounce names the message that caused it. The receiving
    /// server turns it into Return-Path; we never write that header.
    pub bounce_domain: Option<String>,
    /// Adds `List-Unsubscribe: <BASE/u/TOKEN>` and RFC 8058 one-click
    /// unsubscribe. Mailbox providers only honour https URLs.
    pub unsubscribe_base_url: Option<String>,
    /// Also offered in List-Unsubscribe, with the token in the subject.
    pub unsubscribe_mailto: Option<String>,
    pub dkim: Option<DkimSettings>,
    /// Without it messages go to `.eml` files (see [`FileMailer`]).
    pub smtp: Option<SmtpSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    pub name: Option<String>,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    /// The signing domain (d=); align it with the From domain for DMARC.
    pub domain: String,
    pub selector: String,
    /// PEM file: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
    pub private_key_path: PathBuf,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// Defaults to 465 for `tls`, 587 for `starttls`, 25 for `plain`.
    pub port: Option<u16>,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connection and per-command timeout; 30 seconds if unset.
    pub timeout_seconds: Option<u64>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, required (port 587).
    Starttls,
    /// No encryption: only for a relay on localhost or a trusted network.
    Plain,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::Plain => 25,
        }
    }
}

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailInput {
    pub to: Recipient,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The outbox message's secret token (letters, digits, '-' and '_').
    pub token: String,
    /// The outbox message's key.
    pub message_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub name: Option<String>,
    pub address: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("{field}: '{value}' is not a valid email address ({reason})")]
    InvalidAddress {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "message token '{0}' cannot go into an address (1 to 56 letters, digits, '-' or '_' expected)"
    )]
    InvalidToken(String),
    #[error("unsubscribe_base_url '{0}' must start with https:// (or http:// for testing)")]
    InvalidUrl(String),
    #[error("cannot read DKIM key {}: {source}", path.display())]
    DkimKeyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("DKIM key {}: {reason}", path.display())]
    DkimKey { path: PathBuf, reason: String },
    #[error("smtp: username and password must be given together")]
    IncompleteCredentials,
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn parse_address(field: &'static str, value: &str) -> Result<Address, EmailError> {
    value
        .trim()
        .parse::<Address>()
        .map_err(|e| EmailError::InvalidAddress {
            field,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

enum ReplyTo {
    PerMessage(String),
    Fixed(Mailbox),
    None,
}

/// Settings checked and prepared once (addresses parsed, DKIM key loaded),
/// then used for every message.
pub struct Composer {
    from: Mailbox,
    from_domain: String,
    reply_to: ReplyTo,
    bounce_domain: Option<String>,
    unsubscribe_base_url: Option<String>,
    unsubscribe_mailto: Option<Address>,
    dkim: Option<DkimConfig>,
}

impl fmt::Debug for Composer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Composer")
            .field("from", &self.from.to_string())
            .field("dkim", &self.dkim.is_some())
            .finish_non_exhaustive()
    }
}

/// A built message and the Message-ID it carries.
#[derive(Debug, Clone)]
pub struct BuiltEmail {
    pub message: Message,
    pub message_id: String,
}

impl Composer {
    pub fn new(settings: &EmailSettings) -> Result<Composer, EmailError> {
        let from_address = parse_address("from.address", &settings.from.address)?;
        let from_domain = from_address.domain().to_string();
        let from = Mailbox::new(settings.from.name.clone(), from_address);
        // Check the domains now by building a sample address with them.
        for (field, domain) in [
            ("reply_to_domain", &settings.reply_to_domain),
            ("bounce_domain", &settings.bounce_domain),
        ] {
            if let Some(domain) = domain {
                parse_address(field, &format!("x@{domain}"))?;
            }
        }
        let reply_to = match (&settings.reply_to_domain, &settings.reply_to) {
            (Some(domain), _) => ReplyTo::PerMessage(domain.trim().to_string()),
            (None, Some(address)) => {
                ReplyTo::Fixed(Mailbox::new(None, parse_address("reply_to", address)?))
            }
            (None, None) => ReplyTo::None,
        };
        let unsubscribe_base_url = match &settings.unsubscribe_base_url {
            Some(url) => {
                let url = url.trim();
                let ok = (url.starts_with("https://") || url.starts_with("http://"))
                    && !url.contains(['<', '>', ' ', ',']);
                if !ok {
                    return Err(EmailError::InvalidUrl(url.to_string()));
                }
                Some(url.trim_end_matches('/').to_string())
            }
            None => None,
        };
        let unsubscribe_mailto = settings
            .unsubscribe_mailto
            .as_deref()
            .map(|a| parse_address("unsubscribe_mailto", a))
            .transpose()?;
        let dkim = settings.dkim.as_ref().map(load_dkim).transpose()?;
        Ok(Composer {
            from,
            from_domain,
            reply_to,
            bounce_domain: settings
                .bounce_domain
                .as_ref()
                .map(|d| d.trim().to_string()),
            unsubscribe_base_url,
            unsubscribe_mailto,
            dkim,
        })
    }

    /// Builds the message for `input`: headers, MIME body, envelope and
    /// (if configured) DKIM signature.
    pub fn build(&self, input: &EmailInput) -> Result<BuiltEmail, EmailError> {
        let token = input.token.as_str();
        let token_ok = (1..=56).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token_ok {
            return Err(EmailError::InvalidToken(input.token.clone()));
        }
        let to_address = parse_address("to", &input.to.address)?;
        let to = Mailbox::new(input.to.name.clone(), to_address.clone());
        let message_id = message_id(&input.message_key, token, &self.from_domain);

        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(input.subject.clone())
            .message_id(Some(message_id.clone()))
            .date_now();
        match &self.reply_to {
            ReplyTo::PerMessage(domain) => {
                let address =
                    parse_address("reply_to_domain", &format!("replies+{token}@{domain}"))?;
                builder = builder.reply_to(Mailbox::new(self.from.name.clone(), address));
            }
            ReplyTo::Fixed(mailbox) => builder = builder.reply_to(mailbox.clone()),
            ReplyTo::None => {}
        }
        let mut unsubscribe = Vec::new();
        if let Some(base) = &self.unsubscribe_base_url {
            unsubscribe.push(format!("<{base}/u/{token}>"));
        }
        if let Some(mailto) = &self.unsubscribe_mailto {
            unsubscribe.push(format!("<mailto:{mailto}?subject=unsubscribe%20{token}>"));
        }
        if !unsubscribe.is_empty() {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                unsubscribe.join(", "),
            ));
        }
        // RFC 8058: one-click applies to the HTTPS URI only, not to mailto.
        if self.unsubscribe_base_url.is_some() {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_string(),
            ));
        }
        let envelope_from = match &self.bounce_domain {
            Some(domain) => parse_address("bounce_domain", &format!("bounces+{token}@{domain}"))?,
            None => self.from.email.clone(),
        };
        let envelope = lettre::address::Envelope::new(Some(envelope_from), vec![to_address])?;
        builder = builder.envelope(envelope);

        let mut message = match &input.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                input.text.clone(),
                html.clone(),
            ))?,
            None => builder.singlepart(SinglePart::plain(input.text.clone()))?,
        };
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(BuiltEmail {
            message,
            message_id,
        })
    }
}

/// Builds the message for `input` with `settings` (loading the DKIM key, if
/// any, each call: mailers hold a [`Composer`] instead).
pub fn build_email(settings: &EmailSettings, input: &EmailInput) -> Result<Message, EmailError> {
    Ok(Composer::new(settings)?.build(input)?.message)
}

/// `<arflow.HASH@from-domain>`: the same for every attempt at one outbox
/// message (so a retry is recognisably the same email) and unique across
/// messages, without exposing the message key or token.
fn message_id(key: &str, token: &str, domain: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update([0u8]);
    hasher.update(token.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<arflow.{hex}@{domain}>")
}

/// Headers the DKIM signature covers. RFC 8058 requires List-Unsubscribe and
/// List-Unsubscribe-Post to be signed; listing a header a message lacks is
/// allowed (RFC 6376 §5.4) and stops it being added later. Content-Type is
/// left out: lettre keeps it with the MIME body, not the message headers it
/// signs, so signing it would produce a signature that never verifies.
const DKIM_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

fn load_dkim(settings: &DkimSettings) -> Result<DkimConfig, EmailError> {
    let path = &settings.private_key_path;
    let pem = std::fs::read_to_string(path).map_err(|source| EmailError::DkimKeyRead {
        path: path.clone(),
        source,
    })?;
    let key = dkim_key(&pem).map_err(|reason| EmailError::DkimKey {
        path: path.clone(),
        reason,
    })?;
    Ok(DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        DKIM_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// lettre takes RSA keys as PKCS#1 PEM and Ed25519 keys as base64 of the
/// raw 32-byte seed; `openssl genpkey` writes PKCS#8 for both, so convert.
fn dkim_key(pem: &str) -> Result<DkimSigningKey, String> {
    // One trait (from the `pkcs8` crate) serves both key types.
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;

    let pem = pem.trim();
    if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        return DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa)
            .map_err(|e| format!("not a valid PKCS#1 RSA key: {e}"));
    }
    if !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        return Err(
            "expected a PEM private key ('BEGIN RSA PRIVATE KEY' or 'BEGIN PRIVATE KEY')".into(),
        );
    }
    if let Ok(rsa) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
        let pkcs1 = rsa
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| format!("cannot convert the RSA key: {e}"))?;
        return DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
            .map_err(|e| format!("not a valid RSA key: {e}"));
    }
    match ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        Ok(ed) => {
            let seed = base64::engine::general_purpose::STANDARD.encode(ed.to_bytes());
            DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
                .map_err(|e| format!("not a valid Ed25519 key: {e}"))
        }
        Err(_) => Err("a PKCS#8 key that is neither RSA nor Ed25519".into()),
    }
}

/// Delivers an email; returns the provider's id for it.
pub trait Mailer: Send + Sync {
    /// On success: the Message-ID and what the provider answered (the SMTP
    /// reply, the file written).
    fn send(&self, email: &EmailInput) -> Result<String, SendError>;
}

/// A message that cannot be built (bad recipient address, bad token) will
/// never be sendable.
fn build_failure(err: EmailError) -> SendError {
    SendError::permanent(err.to_string())
}

/// Sends over SMTP with lettre (a new connection per message).
pub struct SmtpMailer {
    composer: Composer,
    transport: SmtpTransport,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("composer", &self.composer)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub fn new(settings: &EmailSettings, smtp: &SmtpSettings) -> Result<SmtpMailer, EmailError> {
        let composer = Composer::new(settings)?;
        let host = smtp.host.trim();
        let tls = match smtp.security {
            Security::Plain => Tls::None,
            Security::Starttls => Tls::Required(TlsParameters::new(host.to_string())?),
            Security::Tls => Tls::Wrapper(TlsParameters::new(host.to_string())?),
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(smtp.port.unwrap_or(smtp.security.default_port()))
            .tls(tls)
            .timeout(Some(Duration::from_secs(
                smtp.timeout_seconds.unwrap_or(30),
            )));
        match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err(EmailError::IncompleteCredentials),
        }
        Ok(SmtpMailer {
            composer,
            transport: builder.build(),
        })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, email: &EmailInput) -> Result<String, SendError> {
        let built = self.composer.build(email).map_err(build_failure)?;
        match self.transport.send(&built.message) {
            Ok(response) => {
                let reply: Vec<&str> = response.message().collect();
                Ok(format!(
                    "{} {} {}",
                    built.message_id,
                    response.code(),
                    reply.join(" ")
                )
                .trim_end()
                .to_string())
            }
            Err(err) => Err(classify_smtp(&err)),
        }
    }
}

/// 5xx replies are permanent, except authentication failures: those mean
/// the configuration is wrong, and every message would fail until an
/// operator fixes it, so retrying later is right. Everything else (4xx,
/// refused connections, timeouts, TLS trouble) is transient.
fn classify_smtp(err: &lettre::transport::smtp::Error) -> SendError {
    let message = smtp_error_text(err);
    let auth_failure = err
        .status()
        .is_some_and(|code| matches!(code.to_string().as_str(), "530" | "534" | "535" | "538"));
    if err.is_permanent() && !auth_failure {
        SendError::permanent(message)
    } else {
        SendError::transient(message)
    }
}

/// lettre's Display omits the cause ("Connection error"); add it.
fn smtp_error_text(err: &lettre::transport::smtp::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Writes each message as an RFC 5322 `.eml` file named after its message
/// key: the default without SMTP, so nothing is dropped and a new user can
/// open what would have been sent in any mail client.
pub struct FileMailer {
    composer: Composer,
    dir: PathBuf,
}

impl fmt::Debug for FileMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileMailer")
            .field("dir", &self.dir)
            .finish()
    }
}

impl FileMailer {
    /// Creates `dir` if needed.
    pub fn new(settings: &EmailSettings, dir: &Path) -> Result<FileMailer, EmailError> {
        let composer = Composer::new(settings)?;
        std::fs::create_dir_all(dir).map_err(|source| EmailError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(FileMailer {
            composer,
            dir: dir.to_path_buf(),
        })
    }

    /// The file a message key is written to.
    pub fn path_for(&self, message_key: &str) -> PathBuf {
        self.dir.join(format!("{}.eml", file_name_for(message_key)))
    }
}

impl Mailer for FileMailer {
    fn send(&self, email: &EmailInput) -> Result<String, SendError> {
        let built = self.composer.build(email).map_err(build_failure)?;
        let path = self.path_for(&email.message_key);
        // Write then rename, so a reader never sees half a message.
        let tmp = path.with_extension("eml.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&built.message.formatted())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        // A full disk or a permission problem can be fixed; retry later.
        write().map_err(|e| SendError::transient(format!("{}: {e}", path.display())))?;
        Ok(format!("{} file {}", built.message_id, path.display()))
    }
}

/// A file name for a message key: letters, digits, '-', '_' and inner '.'
/// are kept, every other byte becomes `%XX`, so distinct keys never share a
/// file and no key can escape the directory or hide as a dotfile.
fn file_name_for(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, b) in key.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00empty");
    }
    out
}

impl EmailSettings {
    /// The mailer these settings call for: SMTP when configured, otherwise
    /// `.eml` files in `fallback_dir`.
    pub fn mailer(&self, fallback_dir: &Path) -> Result<Box<dyn Mailer>, EmailError> {
        match &self.smtp {
            Some(smtp) => Ok(Box::new(SmtpMailer::new(self, smtp)?)),
            None => Ok(Box::new(FileMailer::new(self, fallback_dir)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn settings() -> EmailSettings {
        EmailSettings {
            from: Sender {
                name: Some("Nordwind Buchhaltung".into()),
                address: "billing@nordwind.example".into(),
            },
            reply_to: None,
            reply_to_domain: Some("reply.nordwind.example".into()),
            bounce_domain: Some("bounce.nordwind.example".into()),
            unsubscribe_base_url: Some("https://ar.nordwind.example/".into()),
            unsubscribe_mailto: Some("unsubscribe@nordwind.example".into()),
            dkim: None,
            smtp: None,
        }
    }

    fn input(html: bool) -> EmailInput {
        EmailInput {
            to: Recipient {
                name: Some("Jürgen Groß".into()),
                address: "jg@customer.example".into(),
            },
            subject: "Zahlungserinnerung: Rechnung 42 über 1.234,56\u{a0}€".into(),
            text: "Grüße\n".into(),
            html: html.then(|| "<p>Grüße</p>".to_string()),
            token: "tok_AbC-123".into(),
            message_key: "c42:s3:2026-12-03".into(),
        }
    }

    fn header(raw: &str, name: &str) -> Option<String> {
        let msg = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
        // Unfold (RFC 5322 §2.2.3) long headers.
        msg.header_raw(name)
            .map(|v| v.replace("\r\n ", " ").trim().to_string())
    }

    #[test]
    fn builds_headers_envelope_and_alternative_body() {
        let built = Composer::new(&settings())
            .expect("settings")
            .build(&input(true))
            .expect("builds");
        let raw = String::from_utf8(built.message.formatted()).expect("utf-8 message");
        assert_eq!(
            header(&raw, "List-Unsubscribe").as_deref(),
            Some(
                "<https://ar.nordwind.example/u/tok_AbC-123>, <mailto:unsubscribe@nordwind.example?subject=unsubscribe%20tok_AbC-123>"
            )
        );
        assert_eq!(
            header(&raw, "List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(header(&raw, "Return-Path").is_none());
        assert!(header(&raw, "Date").is_some());
        assert_eq!(header(&raw, "Message-ID"), Some(built.message_id.clone()));
        assert!(built.message_id.ends_with("@nordwind.example>"));
        assert!(!built.message_id.contains("tok_AbC"));
        let envelope = built.message.envelope();
        assert_eq!(
            envelope.from().map(|a| a.to_string()).as_deref(),
            Some("bounces+tok_AbC-123@bounce.nordwind.example")
        );
        assert_eq!(envelope.to().len(), 1);

        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        assert_eq!(
            parsed.subject(),
            Some("Zahlungserinnerung: Rechnung 42 über 1.234,56\u{a0}€")
        );
        let reply_to = parsed.reply_to().and_then(|r| r.first()).expect("reply-to");
        assert_eq!(
            reply_to.address(),
            Some("replies+tok_AbC-123@reply.nordwind.example")
        );
        let to = parsed.to().and_then(|r| r.first()).expect("to");
        assert_eq!(to.name(), Some("Jürgen Groß"));
        let text = parsed.body_text(0).map(|t| t.replace("\r\n", "\n"));
        assert_eq!(text.as_deref(), Some("Grüße\n"));
        assert_eq!(parsed.body_html(0).as_deref(), Some("<p>Grüße</p>"));
        assert!(raw.contains("multipart/alternative"));
        let plain_at = raw.find("Content-Type: text/plain").expect("text part");
        let html_at = raw.find("Content-Type: text/html").expect("html part");
        assert!(plain_at < html_at, "text/plain comes first");
    }

    #[test]
    fn text_only_and_minimal_settings() {
        let minimal = EmailSettings {
            from: Sender {
                name: None,
                address: "ar@org.example".into(),
            },
            reply_to: Some("collections@org.example".into()),
            reply_to_domain: None,
            bounce_domain: None,
            unsubscribe_base_url: None,
            unsubscribe_mailto: None,
            dkim: None,
            smtp: None,
        };
        let message = build_email(&minimal, &input(false)).expect("builds");
        let raw = String::from_utf8(message.formatted()).expect("utf-8");
        assert!(!raw.contains("multipart"));
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(header(&raw, "List-Unsubscribe").is_none());
        assert!(header(&raw, "List-Unsubscribe-Post").is_none());
        assert_eq!(
            header(&raw, "Reply-To").as_deref(),
            Some("collections@org.example")
        );
        assert_eq!(
            message.envelope().from().map(|a| a.to_string()).as_deref(),
            Some("ar@org.example")
        );
    }

    #[test]
    fn message_id_is_stable_per_message_and_unique() {
        let a = message_id("k1", "t1", "d.example");
        assert_eq!(a, message_id("k1", "t1", "d.example"));
        assert_ne!(a, message_id("k2", "t1", "d.example"));
        assert_ne!(a, message_id("k1", "t2", "d.example"));
        assert_eq!(a.len(), "<arflow.@d.example>".len() + 32);
    }

    #[test]
    fn rejects_bad_tokens_addresses_and_urls() {
        let composer = Composer::new(&settings()).expect("settings");
        let mut bad = input(false);
        bad.token = "a b".into();
        assert!(matches!(
            composer.build(&bad),
            Err(EmailError::InvalidToken(_))
        ));
        bad.token = "x".repeat(57);
        assert!(matches!(
            composer.build(&bad),
            Err(EmailError::InvalidToken(_))
        ));
        let mut bad = input(false);
        bad.to.address = "not an address".into();
        assert!(matches!(
            composer.build(&bad),
            Err(EmailError::InvalidAddress { field: "to", .. })
        ));

        let mut s = settings();
        s.unsubscribe_base_url = Some("ftp://x".into());
        assert!(matches!(Composer::new(&s), Err(EmailError::InvalidUrl(_))));
        let mut s = settings();
        s.bounce_domain = Some("not a domain".into());
        assert!(matches!(
            Composer::new(&s),
            Err(EmailError::InvalidAddress {
                field: "bounce_domain",
                ..
            })
        ));
    }

    #[test]
    fn settings_from_toml() {
        let s: EmailSettings = toml::from_str(
            r#"
            reply_to_domain = "r.example"
            [from]
            name = "AR"
            address = "ar@example.com"
            [dkim]
            domain = "example.com"
            selector = "arflow"
            private_key_path = "/etc/arflow/dkim.pem"
            [smtp]
            host = "smtp.example.com"
            security = "starttls"
            username = "u"
            password = "secret"
            "#,
        )
        .expect("parses");
        let smtp = s.smtp.as_ref().expect("smtp");
        assert_eq!(smtp.security, Security::Starttls);
        assert_eq!(smtp.port, None);
        assert!(!format!("{smtp:?}").contains("secret"));
        assert_eq!(s.dkim.as_ref().map(|d| d.selector.as_str()), Some("arflow"));
        let bad = toml::from_str::<EmailSettings>("[from]\naddress = \"a@b.c\"\nnmae = \"x\"\n");
        assert!(bad.is_err());
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name_for("c42.s3.2026-12-03"), "c42.s3.2026-12-03");
        assert_eq!(file_name_for("a:b"), "a%3Ab");
        assert_ne!(file_name_for("a/b"), file_name_for("a_b"));
        assert_eq!(file_name_for("../x"), "%2E.%2Fx");
        assert_eq!(file_name_for(""), "%00empty");
    }

    #[test]
    fn file_mailer_writes_eml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mailer = settings()
            .mailer(&dir.path().join("outbox"))
            .expect("file mailer");
        let id = mailer.send(&input(true)).expect("written");
        let path = dir.path().join("outbox").join("c42%3As3%3A2026-12-03.eml");
        assert!(id.contains("file") && id.contains("c42%3As3"), "{id}");
        let raw = std::fs::read(&path).expect("eml exists");
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parses");
        let text = parsed.body_text(0).map(|t| t.replace("\r\n", "\n"));
        assert_eq!(text.as_deref(), Some("Grüße\n"));
        assert!(
            raw.windows(2).any(|w| w == b"\r\n"),
            "RFC 5322 line endings"
        );
        let entries = std::fs::read_dir(dir.path().join("outbox"))
            .expect("dir")
            .count();
        assert_eq!(entries, 1, "no temporary file left behind");

        let mut bad = input(false);
        bad.to.address = "nope".into();
        let err = mailer.send(&bad).expect_err("bad address");
        assert_eq!(err.kind, crate::FailureKind::Permanent);
    }

    #[test]
    fn dkim_keys_in_every_accepted_form() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for file in [
            "dkim_test_rsa.pem",
            "dkim_test_rsa_pkcs1.pem",
            "dkim_test_ed25519.pem",
        ] {
            let pem = std::fs::read_to_string(fixtures.join(file)).expect("fixture");
            assert!(dkim_key(&pem).is_ok(), "{file}");
        }
        assert!(dkim_key("-----BEGIN CERTIFICATE-----\n").is_err());
        let mut s = settings();
        s.dkim = Some(DkimSettings {
            domain: "nordwind.example".into(),
            selector: "s1".into(),
            private_key_path: fixtures.join("dkim_test_ed25519.pem"),
        });
        let message = build_email(&s, &input(true)).expect("signed");
        let raw = String::from_utf8(message.formatted()).expect("utf-8");
        let sig = header(&raw, "DKIM-Signature").expect("signature header");
        assert!(sig.contains("a=ed25519-sha256") && sig.contains("d=nordwind.example"));
        assert!(sig.contains("list-unsubscribe-post"), "{sig}");
    }
}
