//! What every command needs: the config, the store, the organization and the clock.

use anyhow::{Context as _, Result};
use arflow_domain::clock::Clock;
use arflow_domain::model::Organization;
use arflow_store::Store;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::args::GlobalArgs;
use crate::config::{self, Config};

/// The real clock; the only place arflow reads the system time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// `ARFLOW_NOW` (an RFC 3339 instant) stops the clock there: for tests,
/// demos and "what would happen on that day" runs. Unset: the system clock.
pub(crate) fn clock_from_env() -> Result<Box<dyn Clock>> {
    match std::env::var("ARFLOW_NOW") {
        Ok(v) if !v.trim().is_empty() => {
            let now: Timestamp = v.trim().parse().map_err(|e| {
                anyhow::anyhow!(
                    "ARFLOW_NOW '{v}' is not an instant (expected e.g. 2026-12-03T09:00:00Z): {e}"
                )
            })?;
            Ok(Box::new(arflow_domain::clock::FixedClock(now)))
        }
        _ => Ok(Box::new(SystemClock)),
    }
}

pub struct Context {
    pub config: Config,
    pub data_dir: std::path::PathBuf,
    pub store: Box<dyn Store>,
    pub org: Organization,
    pub clock: Box<dyn Clock>,
}

/// Where the database is: the flag/env, else the config file, else SQLite in the data dir.
pub fn database_url(global: &GlobalArgs, config: &Config) -> String {
    global
        .database_url
        .clone()
        .or_else(|| config.database_url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", global.data_dir.join("arflow.db").display()))
}

impl Context {
    pub fn open(global: &GlobalArgs) -> Result<Context> {
        let (config, _path) = config::load(global.config.as_deref(), &global.data_dir)?;
        let url = database_url(global, &config);
        let clock = clock_from_env()?;
        let store = arflow_store::open(&url, clock.now())
            .with_context(|| format!("could not open the database at {}", redact(&url)))?;
        let org = store.default_organization()?;
        Ok(Context {
            config,
            data_dir: global.data_dir.clone(),
            store,
            org,
            clock,
        })
    }

    /// Today's date in the organization's time zone.
    pub fn today(&self) -> Result<Date> {
        Ok(self.org_tz()?.to_datetime(self.clock.now()).date())
    }

    pub fn org_tz(&self) -> Result<TimeZone> {
        TimeZone::get(&self.org.time_zone).with_context(|| {
            format!(
                "the organization's time zone '{}' is unknown",
                self.org.time_zone
            )
        })
    }

    pub fn actor(&self) -> String {
        std::env::var("USER")
            .map(|u| format!("cli:{u}"))
            .unwrap_or_else(|_| "cli".to_string())
    }
}

/// Hides a password in a database URL before printing it.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Parses a YYYY-MM-DD date given on the command line.
pub fn parse_date_arg(flag: &str, value: &str) -> Result<Date> {
    value
        .trim()
        .parse::<Date>()
        .map_err(|e| anyhow::anyhow!("{flag} '{value}' is not a date (expected YYYY-MM-DD): {e}"))
}

/// Parses "1200.00 EUR" (a decimal point, then an ISO 4217 code) given on the command line.
pub fn parse_money_arg(flag: &str, value: &str) -> Result<arflow_domain::money::Money> {
    arflow_domain::money::Money::parse_tagged(value).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            super::redact("sqlite://data/arflow.db"),
            "sqlite://data/arflow.db"
        );
    }
}
