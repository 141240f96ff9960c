//! `arflow init`: data directory, config file, database and organization settings.

use anyhow::{Context as _, Result};
use arflow_domain::Currency;
use jiff::tz::TimeZone;

use crate::args::{GlobalArgs, InitArgs};
use crate::config;
use crate::context::{Context, redact};

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<()> {
    std::fs::create_dir_all(&global.data_dir).with_context(|| {
        format!(
            "could not create the data directory {}",
            global.data_dir.display()
        )
    })?;
    let config_path = global
        .config
        .clone()
        .unwrap_or_else(|| global.data_dir.join(config::DEFAULT_FILE));
    if !config_path.exists() {
        std::fs::write(&config_path, config::template())
            .with_context(|| format!("could not write {}", config_path.display()))?;
        println!("wrote {}", config_path.display());
    }
    let ctx = Context::open(global)?;
    let mut org = ctx.org.clone();
    if let Some(name) = &args.name {
        anyhow::ensure!(!name.trim().is_empty(), "--name cannot be empty");
        org.name = name.trim().to_string();
    }
    if let Some(code) = &args.base_currency {
        org.base_currency =
            Currency::parse(code).map_err(|e| anyhow::anyhow!("--base-currency: {e}"))?;
    }
    if let Some(tz) = &args.time_zone {
        TimeZone::get(tz).map_err(|_| {
            anyhow::anyhow!(
                "--time-zone '{tz}' is not an IANA time zone (e.g. Europe/Berlin, America/New_York)"
            )
        })?;
        org.time_zone = tz.clone();
    }
    if org != ctx.org {
        ctx.store
            .update_organization(&org, &ctx.actor(), ctx.clock.now())?;
    }
    let url = crate::context::database_url(global, &ctx.config);
    println!("database: {}", redact(&url));
    println!(
        "organization: {} (base currency {}, time zone {})",
        org.name, org.base_currency, org.time_zone
    );
    Ok(())
}
