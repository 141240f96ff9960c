//! The optional config file (`DATA_DIR/arflow.toml`). Command-line flags and
//! environment variables win over it; it wins over built-in defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `postgres://…` or `sqlite://PATH`; default: the SQLite file in the data directory.
    pub database_url: Option<String>,
    #[serde(default)]
    pub import: ImportConfig,
    #[serde(default)]
    pub reports: ReportsConfig,
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

[reports]
# Aging buckets after "current", as upper bounds in days past due.
# aging_boundaries = [30, 60, 90]
# aging_basis = "due-date"   # or "issue-date"
# Standard DSO looks back over this many days.
# dso_period_days = 90
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
