//! `arflow hold|dispute|promise`: what pauses dunning, each change logged.

use anyhow::{Result, bail};
use arflow_domain::dunning::records::{Dispute, Hold, Promise, Scope};

use crate::args::{
    DisputeArgs, DisputeCommand, HoldArgs, HoldCommand, PromiseArgs, PromiseCommand, ScopeArgs,
};
use crate::context::{Context, parse_date_arg, parse_money_arg};
use crate::output::Table;

fn scope(a: &ScopeArgs) -> Result<Scope> {
    match (&a.customer, &a.invoice) {
        (Some(c), None) => Ok(Scope::Customer(c.clone())),
        (None, Some(i)) => Ok(Scope::Invoice(i.clone())),
        _ => bail!("give exactly one of --customer or --invoice"),
    }
}

fn non_empty(flag: &str, v: &str) -> Result<String> {
    let t = v.trim();
    anyhow::ensure!(!t.is_empty(), "{flag} must not be empty");
    Ok(t.to_string())
}

pub fn hold(ctx: &Context, args: &HoldArgs) -> Result<()> {
    let org = ctx.org.id;
    let now = ctx.clock.now();
    match &args.command {
        HoldCommand::Add {
            scope: s,
            reason,
            until,
        } => {
            let expires_on = until
                .as_deref()
                .map(|u| parse_date_arg("--until", u))
                .transpose()?;
            if let Some(d) = expires_on {
                anyhow::ensure!(
                    d > ctx.today()?,
                    "--until {d} is not in the future: a hold ends on that day"
                );
            }
            let hold = Hold {
                scope: scope(s)?,
                reason: non_empty("--reason", reason)?,
                created_at: now,
                created_by: ctx.actor(),
                expires_on,
                ended_at: None,
                ended_by: None,
            };
            let id = ctx.store.create_hold(org, &hold, now)?;
            println!(
                "Hold #{id} on {}{}: dunning paused.",
                hold.scope,
                expires_on
                    .map(|d| format!(" until {d}"))
                    .unwrap_or_else(|| " until ended".to_string())
            );
        }
        HoldCommand::End { id } => {
            ctx.store.end_hold(org, *id, &ctx.actor(), now)?;
            println!("Hold #{id} ended: dunning resumes with the next run.");
        }
        HoldCommand::List { all, json } => {
            let today = ctx.today()?;
            let holds: Vec<_> = ctx
                .store
                .holds(org)?
                .into_iter()
                .filter(|h| *all || h.is_active(today, now))
                .collect();
            if *json {
                println!("{}", serde_json::to_string_pretty(&holds)?);
                return Ok(());
            }
            let mut t = Table::new(&["id", "scope", "reason", "until", "state", "by"]);
            for h in holds {
                let state = if h.is_active(today, now) {
                    "active".to_string()
                } else if let Some(e) = h.ended_at {
                    format!("ended {}", e.strftime("%Y-%m-%d"))
                } else {
                    "expired".to_string()
                };
                t.row(vec![
                    h.id.to_string(),
                    h.scope.to_string(),
                    h.reason.clone(),
                    h.expires_on.map_or("-".to_string(), |d| d.to_string()),
                    state,
                    h.created_by.clone(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

pub fn dispute(ctx: &Context, args: &DisputeArgs) -> Result<()> {
    let org = ctx.org.id;
    let now = ctx.clock.now();
    match &args.command {
        DisputeCommand::Open { invoice, reason } => {
            let d = Dispute {
                invoice: invoice.clone(),
                reason: non_empty("--reason", reason)?,
                opened_at: now,
                opened_by: ctx.actor(),
                resolved_at: None,
                resolved_by: None,
                resolution: None,
            };
            let id = ctx.store.open_dispute(org, &d, now)?;
            println!("Dispute #{id} opened on invoice {invoice}: dunning on it paused.");
        }
        DisputeCommand::Resolve { id, resolution } => {
            let r = non_empty("--resolution", resolution)?;
            ctx.store.resolve_dispute(org, *id, &r, &ctx.actor(), now)?;
            println!("Dispute #{id} resolved: {r}.");
        }
        DisputeCommand::List { all, json } => {
            let disputes: Vec<_> = ctx
                .store
                .disputes(org)?
                .into_iter()
                .filter(|d| *all || d.is_open(now))
                .collect();
            if *json {
                println!("{}", serde_json::to_string_pretty(&disputes)?);
                return Ok(());
            }
            let mut t = Table::new(&["id", "invoice", "reason", "opened", "state"]);
            for d in disputes {
                t.row(vec![
                    d.id.to_string(),
                    d.invoice.clone(),
                    d.reason.clone(),
                    d.opened_at.strftime("%Y-%m-%d").to_string(),
                    match (&d.resolved_at, &d.resolution) {
                        (Some(at), r) => format!(
                            "resolved {}: {}",
                            at.strftime("%Y-%m-%d"),
                            r.as_deref().unwrap_or("")
                        ),
                        (None, _) => "open".to_string(),
                    },
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

pub fn promise(ctx: &Context, args: &PromiseArgs) -> Result<()> {
    let org = ctx.org.id;
    let now = ctx.clock.now();
    match &args.command {
        PromiseCommand::Add {
            scope: s,
            date,
            amount,
            grace,
            note,
        } => {
            let promised_on = parse_date_arg("--date", date)?;
            let amount = amount
                .as_deref()
                .map(|a| parse_money_arg("--amount", a))
                .transpose()?;
            if let Some(m) = amount {
                anyhow::ensure!(m.minor > 0, "--amount must be more than zero");
            }
            let grace_days = match grace {
                Some(g) => *g,
                None => ctx.store.dunning_settings(org)?.promise_grace_days,
            };
            let p = Promise {
                scope: scope(s)?,
                amount,
                promised_on,
                grace_days,
                made_at: now,
                made_by: ctx.actor(),
                note: note.clone(),
                cancelled_at: None,
                cancelled_by: None,
            };
            let id = ctx.store.create_promise(org, &p, now)?;
            println!(
                "Promise #{id}: {} to pay {} by {promised_on}; dunning paused until {} (grace {grace_days} days).",
                p.scope,
                amount.map_or("the open balance".to_string(), |m| m.to_string()),
                p.last_day()
            );
        }
        PromiseCommand::Cancel { id } => {
            ctx.store.cancel_promise(org, *id, &ctx.actor(), now)?;
            println!("Promise #{id} cancelled: dunning resumes with the next run.");
        }
        PromiseCommand::List { all, json } => {
            let today = ctx.today()?;
            let promises: Vec<_> = ctx
                .store
                .promises(org)?
                .into_iter()
                .filter(|p| *all || (p.cancelled_at.is_none() && today <= p.last_day()))
                .collect();
            if *json {
                println!("{}", serde_json::to_string_pretty(&promises)?);
                return Ok(());
            }
            let mut t = Table::new(&["id", "scope", "amount", "by", "grace until", "state"]);
            for p in promises {
                let state = if p.cancelled_at.is_some() {
                    "cancelled"
                } else if today <= p.last_day() {
                    "active"
                } else {
                    "due date passed"
                };
                t.row(vec![
                    p.id.to_string(),
                    p.scope.to_string(),
                    p.amount.map_or("balance".to_string(), |m| m.to_string()),
                    p.promised_on.to_string(),
                    p.last_day().to_string(),
                    state.to_string(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}
