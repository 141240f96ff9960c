//! Turning a planned reminder into something a person receives: templates
//! rendered per language and tone, email (SMTP or local files) and SMS.
//!
//! The dunning service renders a message when it is queued (so what was
//! sent can be shown later exactly) and hands it to a [`Mailer`] or an
//! [`SmsProvider`] when it is delivered.

pub mod email;
pub mod locale;
pub mod sms;
pub mod templates;

pub use email::{EmailInput, EmailSettings, FileMailer, Mailer, SmtpMailer};
pub use locale::Lang;
pub use sms::{SmsProvider, TwilioSms};
pub use templates::{MessageContext, TemplateError, Templates};

/// A rendered message: subject (empty for SMS), plain text and, for email, HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Whether a failed delivery is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Try again later (connection refused, 4xx SMTP reply, HTTP 429/5xx...).
    Transient,
    /// Retrying cannot help (5xx SMTP reply, invalid address, HTTP 4xx...).
    Permanent,
}

/// A delivery failure, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: FailureKind,
    pub message: String,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            kind: FailureKind::Transient,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Transient
    }
}
