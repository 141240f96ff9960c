//! `arflow dunning plan|run|settings|pause|resume`.

use anyhow::{Context as _, Result, bail};
use arflow_domain::charges::Regime;
use arflow_domain::dunning::planner::Plan;
use arflow_domain::dunning::policy::Channel;
use arflow_domain::money::{Money, format_minor};
use arflow_dunning::Snapshot;
use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use serde_json::json;

use crate::args::{DunningArgs, DunningCommand, InterestArg, SettingsArgs};
use crate::context::{Context, parse_date_arg, parse_money_arg};
use crate::delivery;
use crate::output::Table;

pub fn run(ctx: &Context, args: &DunningArgs) -> Result<()> {
    match &args.command {
        DunningCommand::Plan {
            date,
            customer,
            json,
        } => plan(ctx, date.as_deref(), customer.as_deref(), *json),
        DunningCommand::Run { json } => run_once(ctx, *json),
        DunningCommand::Settings(a) => settings(ctx, a),
        DunningCommand::Pause => set_paused(ctx, true),
        DunningCommand::Resume => set_paused(ctx, false),
    }
}

/// `now`, or the same local time of day on `date` in the organization's zone.
fn plan_instant(ctx: &Context, date: Option<&str>) -> Result<Timestamp> {
    let now = ctx.clock.now();
    let Some(date) = date else { return Ok(now) };
    let date = parse_date_arg("--date", date)?;
    let tz = ctx.org_tz()?;
    let time = tz.to_datetime(now).time();
    tz.to_timestamp(date.to_datetime(time))
        .with_context(|| format!("--date {date} is out of range"))
}

fn plan(ctx: &Context, date: Option<&str>, customer: Option<&str>, json: bool) -> Result<()> {
    let now = plan_instant(ctx, date)?;
    let snapshot = Snapshot::load(ctx.store.as_ref(), &ctx.org, now)?;
    let mut plan = snapshot.plan()?;
    if let Some(c) = customer {
        anyhow::ensure!(snapshot.customer(c).is_some(), "unknown customer '{c}'");
        // Actions stay in place: decisions refer to them by position.
        plan.decisions.retain(|d| d.customer == c);
        plan.broken_promises.retain(|b| b.customer == c);
    }
    plan.decisions.sort_by(|a, b| {
        (a.customer, a.due_date, a.invoice).cmp(&(b.customer, b.due_date, b.invoice))
    });
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan_json(&plan, now, customer))?
        );
        return Ok(());
    }
    print_plan(&snapshot, &plan, now, customer);
    Ok(())
}

fn plan_json(plan: &Plan<'_>, now: Timestamp, customer: Option<&str>) -> serde_json::Value {
    let actions: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| customer.is_none_or(|c| a.customer == c))
        .map(|a| {
            json!({
                "key": a.key,
                "customer": a.customer,
                "channel": a.channel,
                "requested_channel": a.requested_channel,
                "fallback_reason": a.fallback_reason,
                "recipient": a.recipient,
                "policy": a.policy,
                "step": a.step.to_string(),
                "template": a.template,
                "tone": a.tone,
                "locale": a.locale,
                "time_zone": a.time_zone,
                "send_at": a.send_at.to_string(),
                "currency": a.currency,
                "invoices": a.invoices.iter().map(|i| json!({
                    "number": i.number,
                    "due_date": i.due_date.to_string(),
                    "open": format_minor(i.open, a.currency),
                    "days_overdue": i.days_overdue,
                    "fee": format_minor(i.fee, a.currency),
                    "interest": format_minor(i.interest, a.currency),
                    "compensation": format_minor(i.compensation, a.currency),
                })).collect::<Vec<_>>(),
                "charges": a.charges.iter().map(|c| json!({
                    "invoice": c.invoice,
                    "kind": c.kind,
                    "amount": format_minor(c.amount.minor, c.amount.currency),
                    "currency": c.amount.currency,
                    "description": c.description,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let invoices: Vec<_> = plan
        .decisions
        .iter()
        .map(|d| {
            json!({
                "invoice": d.invoice,
                "customer": d.customer,
                "currency": d.currency,
                "open": format_minor(d.open, d.currency),
                "due_date": d.due_date.to_string(),
                "policy": d.policy,
                "state": d.decision.state(),
                "why": d.why(plan),
                "decision": d.decision,
                "skipped_steps": d.skipped.iter().map(|(k, r)| json!({"step": k.to_string(), "reason": r})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "as_of": now.to_string(),
        "actions": actions,
        "broken_promises": plan.broken_promises,
        "invoices": invoices,
    })
}

fn print_plan(snapshot: &Snapshot, plan: &Plan<'_>, now: Timestamp, customer: Option<&str>) {
    let actions: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| customer.is_none_or(|c| a.customer == c))
        .collect();
    let tz = &snapshot.org_tz;
    println!(
        "Dunning plan as of {}",
        now.to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
    );
    if snapshot.settings.paused {
        println!("Sending is PAUSED for the organization (`arflow dunning resume` to resume).");
    }
    println!();
    if actions.is_empty() {
        println!("Nothing to send now.");
    } else {
        let mut t = Table::new(&[
            "customer",
            "channel",
            "to",
            "template",
            "invoices",
            "open",
            "send at (customer time)",
        ]);
        for a in &actions {
            let open: i64 = a.invoices.iter().map(|i| i.open).sum();
            let name = snapshot
                .customer(&a.customer)
                .map_or(a.customer.clone(), |c| {
                    format!("{} ({})", c.name, c.external_id)
                });
            let channel = match &a.fallback_reason {
                Some(_) => format!("{} (asked {})", a.channel, a.requested_channel),
                None => a.channel.to_string(),
            };
            let when = match a.channel {
                Channel::Task => "task now".to_string(),
                _ => jiff::tz::TimeZone::get(&a.time_zone)
                    .map(|z| {
                        a.send_at
                            .to_zoned_datetime(z)
                            .strftime("%a %Y-%m-%d %H:%M %Z")
                            .to_string()
                    })
                    .unwrap_or_else(|_| a.send_at.to_string()),
            };
            t.row(vec![
                name,
                channel,
                a.recipient.clone().unwrap_or_else(|| "-".into()),
                a.template.clone(),
                a.invoices
                    .iter()
                    .map(|i| i.number.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                Money::new(open, a.currency).to_string(),
                when,
            ]);
        }
        println!("{} actions due:", actions.len());
        t.print();
    }
    for b in &plan.broken_promises {
        println!(
            "Broken promise #{} by {}: promised {} by {}; a task will be opened.",
            b.promise,
            b.customer,
            b.amount
                .map_or("the balance".to_string(), |m| m.to_string()),
            b.promised_on
        );
    }
    println!();
    let mut counts = std::collections::BTreeMap::new();
    for d in &plan.decisions {
        *counts.entry(d.decision.state()).or_insert(0usize) += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "{} open invoices: {}",
        plan.decisions.len(),
        if summary.is_empty() {
            "none".to_string()
        } else {
            summary.join(", ")
        }
    );
    if plan.decisions.is_empty() {
        return;
    }
    let mut t = Table::new(&["invoice", "customer", "due", "open", "state", "why"]);
    for d in &plan.decisions {
        t.row(vec![
            d.invoice.to_string(),
            d.customer.to_string(),
            d.due_date.to_string(),
            Money::new(d.open, d.currency).to_string(),
            d.decision.state().to_string(),
            d.why(plan),
        ]);
    }
    t.print();
}

fn run_once(ctx: &Context, json: bool) -> Result<()> {
    let renderer = delivery::renderer(ctx)?;
    let report = arflow_dunning::run(
        ctx.store.as_ref(),
        &ctx.org,
        ctx.clock.now(),
        renderer.as_ref(),
        &ctx.actor(),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let w = &report.written;
    println!(
        "Queued {} messages and opened {} tasks ({} actions planned; {} already done by an earlier run; {} charges recorded).",
        w.messages, w.tasks, report.planned_actions, w.already_done, w.charges
    );
    if w.messages > 0 {
        println!(
            "`arflow worker` delivers them inside the send window; `arflow outbox list` shows them."
        );
    }
    Ok(())
}

fn parse_window(s: &str) -> Result<(Time, Time)> {
    let (a, b) = s
        .split_once('-')
        .with_context(|| format!("--send-window '{s}' must look like 08:00-21:00"))?;
    let parse = |t: &str| -> Result<Time> {
        t.trim()
            .parse::<Time>()
            .map_err(|e| anyhow::anyhow!("--send-window '{s}': '{t}' is not a time of day: {e}"))
    };
    let (start, end) = (parse(a)?, parse(b)?);
    anyhow::ensure!(
        start < end,
        "--send-window '{s}': the window must open before it closes (windows across midnight are not supported)"
    );
    Ok((start, end))
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn parse_days(s: &str) -> Result<Vec<Weekday>> {
    let find = |d: &str| -> Result<usize> {
        let d = d.trim().to_lowercase();
        DAYS.iter()
            .position(|(n, _)| d.starts_with(n) && d.len() >= 3)
            .with_context(|| {
                format!("--send-days '{s}': '{d}' is not a day (mon, tue, wed, thu, fri, sat, sun)")
            })
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (find(a)?, find(b)?);
            anyhow::ensure!(a <= b, "--send-days '{s}': range '{part}' runs backwards");
            out.extend(DAYS[a..=b].iter().map(|(_, d)| *d));
        } else {
            out.push(DAYS[find(part)?].1);
        }
    }
    out.dedup();
    Ok(out)
}

fn settings(ctx: &Context, a: &SettingsArgs) -> Result<()> {
    let org = ctx.org.id;
    let before = ctx.store.dunning_settings(org)?;
    let mut s = before.clone();
    if let Some(w) = &a.send_window {
        let (start, end) = parse_window(w)?;
        s.send_window.start = start;
        s.send_window.end = end;
    }
    if let Some(d) = &a.send_days {
        s.send_window.days = parse_days(d)?;
    }
    for h in &a.holiday {
        let d = parse_date_arg("--holiday", h)?;
        if !s.holidays.contains(&d) {
            s.holidays.push(d);
        }
    }
    for h in &a.remove_holiday {
        let d = parse_date_arg("--remove-holiday", h)?;
        s.holidays.retain(|x| *x != d);
    }
    s.holidays.sort_unstable();
    if let Some(g) = a.min_gap_days {
        s.min_gap_days = g;
    }
    if let Some(c) = a.weekly_cap {
        s.weekly_cap = c;
    }
    for m in &a.min_balance {
        let money = parse_money_arg("--min-balance", m)?;
        anyhow::ensure!(money.minor >= 0, "--min-balance '{m}' must not be negative");
        s.min_balance.retain(|x| x.currency != money.currency);
        s.min_balance.push(money);
    }
    if let Some(i) = a.interest {
        s.interest_regime = match i {
            InterestArg::None => None,
            InterestArg::Eu => Some(Regime::Eu2011_7),
            InterestArg::Uk => Some(Regime::UkLatePayment1998),
            InterestArg::De => Some(Regime::DeBgb288),
            InterestArg::Fr => Some(Regime::FrL441_10),
        };
    }
    if let Some(g) = a.promise_grace_days {
        s.promise_grace_days = g;
    }
    if let Some(p) = &a.default_policy {
        let policies = arflow_dunning::snapshot::load_policies(ctx.store.as_ref(), org)?;
        if !policies.contains_key(p) {
            let mut known: Vec<&String> = policies.keys().collect();
            known.sort();
            bail!(
                "no policy named '{p}' is stored (known: {})",
                known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        s.default_policy = p.clone();
    }
    if s != before {
        ctx.store
            .set_dunning_settings(org, &s, &ctx.actor(), ctx.clock.now())?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let days: Vec<&str> = DAYS
        .iter()
        .filter(|(_, d)| s.send_window.days.contains(d))
        .map(|(n, _)| *n)
        .collect();
    println!("default policy      {}", s.default_policy);
    println!(
        "send window         {}-{} customer local time, on {}",
        s.send_window.start.strftime("%H:%M"),
        s.send_window.end.strftime("%H:%M"),
        days.join(",")
    );
    let holidays: Vec<String> = s.holidays.iter().map(ToString::to_string).collect();
    println!(
        "holidays            {}",
        if holidays.is_empty() {
            "none".to_string()
        } else {
            holidays.join(", ")
        }
    );
    println!(
        "minimum gap         {} days between messages to a customer",
        s.min_gap_days
    );
    println!(
        "weekly cap          {} messages per customer per 7 days",
        s.weekly_cap
    );
    let mins: Vec<String> = s.min_balance.iter().map(ToString::to_string).collect();
    println!(
        "minimum balance     {}",
        if mins.is_empty() {
            "none".to_string()
        } else {
            mins.join(", ")
        }
    );
    println!(
        "statutory interest  {}",
        s.interest_regime
            .map_or("none".to_string(), |r| r.to_string())
    );
    println!("promise grace       {} days", s.promise_grace_days);
    println!(
        "paused              {}",
        if s.paused { "yes" } else { "no" }
    );
    println!(
        "started on          {}",
        s.started_on
            .map_or("not yet (first `dunning run`)".to_string(), |d| d
                .to_string())
    );
    Ok(())
}

fn set_paused(ctx: &Context, paused: bool) -> Result<()> {
    let mut s = ctx.store.dunning_settings(ctx.org.id)?;
    if s.paused == paused {
        println!(
            "Sending is already {}.",
            if paused { "paused" } else { "running" }
        );
        return Ok(());
    }
    s.paused = paused;
    ctx.store
        .set_dunning_settings(ctx.org.id, &s, &ctx.actor(), ctx.clock.now())?;
    println!(
        "{}",
        if paused {
            "Paused: nothing is planned or delivered until `arflow dunning resume`."
        } else {
            "Resumed: the next run plans what is due."
        }
    );
    Ok(())
}
