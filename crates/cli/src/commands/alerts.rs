//! `arflow alerts`: exception alerts, each opened as an `alert` task (once
//! per alert and ISO week; see `arflow_dunning::alerts`).

use anyhow::Result;
use arflow_domain::money::format_minor_grouped;
use arflow_dunning::alerts::{find_alerts, record_alerts};
use arflow_dunning::predict::PredictInputs;
use serde_json::json;

use crate::args::AlertsArgs;
use crate::context::Context;

use super::report::{amount, print_json};

pub fn run(ctx: &Context, args: &AlertsArgs) -> Result<()> {
    let now = ctx.clock.now();
    let today = ctx.today()?;
    let inputs = PredictInputs::load(ctx.store.as_ref(), &ctx.org, today)?;
    let alerts = find_alerts(ctx.store.as_ref(), &ctx.org, &inputs, now, today)?;
    let written = if args.dry_run {
        None
    } else {
        Some(record_alerts(
            ctx.store.as_ref(),
            ctx.org.id,
            &alerts,
            today,
            &ctx.actor(),
            now,
        )?)
    };
    let base = inputs.facts.base_currency;
    if args.json {
        return print_json(&json!({
            "as_of": today.to_string(),
            "currency": base.code(),
            "alerts": alerts.iter().map(|a| json!({
                "kind": a.kind.as_str(),
                "key": a.key,
                "customer": a.customer,
                "customer_name": a.customer_name,
                "invoice": a.invoice,
                "open_base": a.open_base.map(|v| amount(v, base)),
                "title": a.title,
                "detail": a.detail,
            })).collect::<Vec<_>>(),
            "tasks_opened": written.map(|w| w.tasks),
            "already_open": written.map(|w| w.already_done),
        }));
    }
    if alerts.is_empty() {
        println!("No alerts as of {today}.");
        return Ok(());
    }
    println!("{} alerts as of {today}:", alerts.len());
    for a in &alerts {
        let amount = a
            .open_base
            .map(|v| format!(" [{} {base}]", format_minor_grouped(v, base)))
            .unwrap_or_default();
        println!("- {} ({}){amount}: {}", a.title, a.kind.as_str(), a.detail);
    }
    if let Some(w) = written {
        println!(
            "{} tasks opened, {} already open from an earlier run this week (arflow task list).",
            w.tasks, w.already_done
        );
    }
    Ok(())
}
