//! `arflow outbox|task|charge|bounce`: what dunning produced and its follow-up.

use anyhow::{Result, bail};
use arflow_domain::dunning::records::MessageStatus;
use arflow_domain::money::Money;
use arflow_store::OutboxFilter;

use crate::args::{
    BounceArgs, BounceCommand, ChargeArgs, ChargeCommand, OutboxArgs, OutboxCommand, StatusArg,
    TaskArgs, TaskCommand,
};
use crate::context::Context;
use crate::output::Table;

fn status(s: StatusArg) -> MessageStatus {
    match s {
        StatusArg::Queued => MessageStatus::Queued,
        StatusArg::Claimed => MessageStatus::Claimed,
        StatusArg::Sending => MessageStatus::Sending,
        StatusArg::Sent => MessageStatus::Sent,
        StatusArg::InDoubt => MessageStatus::InDoubt,
        StatusArg::Failed => MessageStatus::Failed,
        StatusArg::Cancelled => MessageStatus::Cancelled,
    }
}

pub fn outbox(ctx: &Context, args: &OutboxArgs) -> Result<()> {
    let org = ctx.org.id;
    match &args.command {
        OutboxCommand::List {
            status: s,
            customer,
            limit,
            json,
        } => {
            let filter = OutboxFilter {
                status: s.map(status),
                customer: customer.clone(),
                limit: Some(*limit),
            };
            let messages = ctx.store.outbox(org, &filter)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&messages)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                "id",
                "status",
                "channel",
                "to",
                "customer",
                "template",
                "subject",
                "not before",
                "sent",
            ]);
            for m in &messages {
                t.row(vec![
                    m.id.to_string(),
                    m.status.to_string(),
                    m.channel.to_string(),
                    m.recipient.clone(),
                    m.customer.clone(),
                    m.template.clone(),
                    m.subject.clone(),
                    m.not_before.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                    m.sent_at.map_or("-".to_string(), |t| {
                        t.strftime("%Y-%m-%d %H:%M UTC").to_string()
                    }),
                ]);
            }
            t.print();
            let doubt = messages
                .iter()
                .filter(|m| m.status == MessageStatus::InDoubt)
                .count();
            if doubt > 0 {
                println!(
                    "{doubt} messages are in doubt: check with the provider, then `arflow outbox confirm ID --delivered` or `--not-delivered`."
                );
            }
        }
        OutboxCommand::Show { id, json } => {
            let Some(m) = ctx.store.message(org, *id)? else {
                bail!("message #{id} was not found in this organization");
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&m)?);
                return Ok(());
            }
            println!("Message #{} ({})", m.id, m.key);
            println!(
                "Status:    {}{}",
                m.status,
                m.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            println!("Channel:   {} to {}", m.channel, m.recipient);
            println!("Customer:  {}", m.customer);
            println!(
                "Template:  {} ({}), policy {} step {}",
                m.template, m.locale, m.policy, m.step
            );
            println!(
                "Not before {} (customer zone {})",
                m.not_before, m.time_zone
            );
            println!("Attempts:  {}", m.attempts);
            if let Some(p) = &m.provider_id {
                println!("Provider:  {p}");
            }
            if let Some(s) = m.sent_at {
                println!("Sent at:   {s}");
            }
            if !m.subject.is_empty() {
                println!("Subject:   {}", m.subject);
            }
            println!();
            println!("{}", m.body_text);
            if m.body_html.is_some() {
                println!("\n(an HTML alternative is attached: `--json` shows it)");
            }
        }
        OutboxCommand::Confirm {
            id,
            delivered,
            not_delivered: _,
        } => {
            ctx.store
                .resolve_in_doubt(org, *id, *delivered, &ctx.actor(), ctx.clock.now())?;
            if *delivered {
                println!("Message #{id} confirmed delivered.");
            } else {
                println!(
                    "Message #{id} queued again; the worker sends it in the next send window."
                );
            }
        }
    }
    Ok(())
}

pub fn task(ctx: &Context, args: &TaskArgs) -> Result<()> {
    let org = ctx.org.id;
    match &args.command {
        TaskCommand::List { all, json } => {
            let tasks = ctx.store.tasks(org, *all)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&tasks)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                "id", "kind", "due", "customer", "task", "assignee", "status",
            ]);
            for task in &tasks {
                t.row(vec![
                    task.id.to_string(),
                    task.kind.as_str().to_string(),
                    task.due_on.to_string(),
                    task.customer.clone(),
                    format!("{}\n{}", task.title, task.detail),
                    task.assignee.clone().unwrap_or_else(|| "-".into()),
                    format!("{:?}", task.status).to_lowercase(),
                ]);
            }
            t.print();
        }
        TaskCommand::Done { id } => {
            ctx.store
                .complete_task(org, *id, &ctx.actor(), ctx.clock.now())?;
            println!("Task #{id} done.");
        }
    }
    Ok(())
}

pub fn charge(ctx: &Context, args: &ChargeArgs) -> Result<()> {
    let org = ctx.org.id;
    match &args.command {
        ChargeCommand::List { json } => {
            let charges = ctx.store.charges(org)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&charges)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                "id",
                "invoice",
                "kind",
                "amount",
                "on",
                "description",
                "waived",
            ])
            .numeric_from(3);
            for c in &charges {
                t.row(vec![
                    c.id.to_string(),
                    c.invoice.clone(),
                    c.kind.as_str().to_string(),
                    Money::new(c.amount.minor, c.amount.currency).to_string(),
                    c.charged_on.to_string(),
                    c.description.clone(),
                    c.waived_at.map_or("-".to_string(), |w| {
                        format!(
                            "{} ({})",
                            w.strftime("%Y-%m-%d"),
                            c.waive_reason.as_deref().unwrap_or("")
                        )
                    }),
                ]);
            }
            t.print();
        }
        ChargeCommand::Waive { id, reason } => {
            let reason = reason.trim();
            anyhow::ensure!(!reason.is_empty(), "--reason must not be empty");
            ctx.store
                .waive_charge(org, *id, reason, &ctx.actor(), ctx.clock.now())?;
            println!("Charge #{id} waived.");
        }
    }
    Ok(())
}

pub fn bounce(ctx: &Context, args: &BounceArgs) -> Result<()> {
    let org = ctx.org.id;
    match &args.command {
        BounceCommand::Add { address, reason } => {
            anyhow::ensure!(address.contains('@'), "'{address}' is not an email address");
            ctx.store
                .record_bounce(org, address, reason, ctx.clock.now())?;
            println!("Email to {address} stops; customers with that address get a task.");
        }
        BounceCommand::Clear { address } => {
            ctx.store
                .clear_bounce(org, address, &ctx.actor(), ctx.clock.now())?;
            println!("Email to {address} works again.");
        }
        BounceCommand::List => {
            let mut t = Table::new(&["address", "bounced", "reason", "cleared"]);
            for b in ctx.store.bounces(org)? {
                t.row(vec![
                    b.address,
                    b.at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                    b.reason,
                    b.cleared_at
                        .map_or("-".to_string(), |c| c.strftime("%Y-%m-%d").to_string()),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}
