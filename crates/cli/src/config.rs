//! The optional config file (`DATA_DIR/arflow.toml`). Command-line flags and
//! environment variables win over it; it wins over built-in defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `postgres://…` or `sqlite://PATH`; default: the SQLite file in the data directory.
    pub database_url: Option<String>,
    #[serde(default)]
    pub import: ImportConfig,
    #[serde(default)]
    pub reports: ReportsConfig,
    /// How customers reach the organization, shown in reminders.
    #[serde(default)]
    pub sender: SenderConfig,
    /// Outgoing email; without it messages are written to DATA_DIR/mail.
    pub email: Option<arflow_notify::email::EmailSettings>,
    pub sms: Option<SmsConfig>,
    /// A directory of templates overriding the shipped ones (same layout).
    pub templates_dir: Option<PathBuf>,
    /// `arflow serve`.
    #[serde(default)]
    pub web: WebSection,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// Address to listen on; default 127.0.0.1 (this machine only).
    pub bind: Option<String>,
    /// Port; default 8080.
    pub port: Option<u16>,
    /// Mark session cookies Secure: set when users reach arflow over HTTPS
    /// (directly or through a proxy). Default: false.
    pub secure_cookies: Option<bool>,
    /// A session ends after this many hours without a request; default 12.
    pub session_idle_hours: Option<u32>,
    /// Largest accepted upload in megabytes (CSV imports); default 20.
    pub max_upload_mb: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub twilio: Option<arflow_notify::sms::TwilioSettings>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// oldest-due-first (default), oldest-issued-first or exact-amount-only.
    pub allocation_order: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Upper bounds (days past due) of the aging buckets after "current"; default [30, 60, 90].
    pub aging_boundaries: Option<Vec<u32>>,
    /// "due-date" (default) or "issue-date".
    pub aging_basis: Option<String>,
    /// Length of the period standard DSO looks back over; default 90 days.
    pub dso_period_days: Option<u32>,
}

pub const DEFAULT_FILE: &str = "arflow.toml";

/// Reads the config: an explicit path must exist; the default one may be absent.
pub fn load(explicit: Option<&Path>, data_dir: &Path) -> Result<(Config, Option<PathBuf>)> {
    let (path, required) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => (data_dir.join(DEFAULT_FILE), false),
    };
    if !path.exists() {
        if required {
            anyhow::bail!("config file {} does not exist", path.display());
        }
        return Ok((Config::default(), None));
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read config file {}", path.display()))?;
    let config: Config = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("config file {} is invalid: {e}", path.display()))?;
    Ok((config, Some(path)))
}

/// The commented config `arflow init` writes.
pub fn template() -> &'static str {
    r#"# arflow configuration. Command-line flags and ARFLOW_* environment variables override it.

# Use PostgreSQL instead of the embedded SQLite file in this directory:
# database_url = "postgres://arflow@localhost/arflow"

[import]
# How payments without explicit invoices are applied:
# oldest-due-first (default), oldest-issued-first or exact-amount-only.
# allocation_order = "oldest-due-first"

[web]
# arflow serve: where to listen (flags --bind/--port and ARFLOW_BIND/ARFLOW_PORT override).
# bind = "127.0.0.1"
# port = 8080
# Set when users reach arflow over HTTPS (cookies are then marked Secure):
# secure_cookies = true
# session_idle_hours = 12
# max_upload_mb = 20

[reports]
# Aging buckets after "current", as upper bounds in days past due.
# aging_boundaries = [30, 60, 90]
# aging_basis = "due-date"   # or "issue-date"
# Standard DSO looks back over this many days.
# dso_period_days = 90

# How customers reach you; shown in reminders.
[sender]
# email = "accounts@example.com"
# phone = "+44 20 7946 0000"

# Outgoing email. Without an [email.smtp] section, messages are written as
# .eml files to DATA_DIR/mail so you can read what would have been sent.
# [email]
# from = { name = "Example Ltd Accounts", address = "accounts@example.com" }
# reply_to_domain = "replies.example.com"     # Reply-To: replies+TOKEN@...
# bounce_domain = "bounces.example.com"       # envelope sender bounces+TOKEN@...
# unsubscribe_base_url = "https://ar.example.com"
# [email.smtp]
# host = "smtp.example.com"
# port = 587
# security = "starttls"                       # "tls", "starttls" or "plain"
# username = "accounts@example.com"
# password = "..."
# [email.dkim]
# domain = "example.com"
# selector = "arflow"
# private_key_path = "/etc/arflow/dkim.pem"

# SMS through Twilio (or a Twilio-compatible API).
# [sms.twilio]
# account_sid = "AC..."
# auth_token = "..."
# from = "+15005550006"
# base_url = "https://api.twilio.com"

# Override the shipped reminder templates (same layout as crates/notify/templates).
# templates_dir = "templates"
"#
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_unknown_keys_are_errors() {
        let c: Config = toml::from_str(template()).unwrap();
        assert!(c.database_url.is_none());
        let err = toml::from_str::<Config>("[reports]\naging_bondaries = [10]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("aging_bondaries"), "{err}");
    }
}
