//! `arflow report brief`: a short plain-language summary for owners. Every
//! number comes from the same functions as `report summary`, `report
//! collections` and `forecast`, so the brief always agrees with them.

use anyhow::{Context as _, Result};
use arflow_domain::analytics::Period;
use arflow_domain::analytics::cei::CeiVariant;
use arflow_domain::analytics::segments::moved_to_overdue;
use arflow_domain::analytics::summary::{Summary, SummaryConfig, summary};
use arflow_domain::dunning::records::TaskKind;
use arflow_domain::ledger::Ledger;
use arflow_domain::money::format_minor_grouped;
use arflow_domain::predict::priority::money_words;
use arflow_store::OutboxFilter;
use jiff::civil::Date;
use serde_json::json;

use crate::context::Context;

use super::predict::{forecast_json, forecast_of, row_json, rows, score_book};
use super::report::{aging_config, amount, dso_config, print_json, ratio_json};

fn days_before(d: Date, n: i64) -> Result<Date> {
    d.checked_sub(jiff::Span::new().days(n))
        .with_context(|| format!("{d} − {n} days is out of range"))
}

pub fn run(ctx: &Context, as_of: Date, json: bool) -> Result<()> {
    let s = score_book(ctx, as_of)?;
    let facts = &s.book.inputs.facts;
    let ledger = Ledger::new(facts);
    let conv = s.book.inputs.conv();
    let config = SummaryConfig {
        aging: aging_config(ctx)?,
        dso: dso_config(ctx),
        cei_variant: CeiVariant::PeriodSales,
    };
    let now_s: Summary =
        summary(&ledger, &conv, as_of, None, &config).context("could not compute the summary")?;
    let month_ago = days_before(as_of, 30)?;
    let then_s: Summary = summary(&ledger, &conv, month_ago, None, &config)
        .context("could not compute the summary 30 days earlier")?;
    let moved = moved_to_overdue(
        &ledger,
        &conv,
        as_of,
        Some(Period::days_ending(as_of, 7)?),
        None,
    )
    .context("could not count invoices that became overdue")?;
    let forecast = forecast_of(&s, as_of)?;
    let risks = rows(&s)?;
    let risks: Vec<_> = risks.iter().take(3).collect();

    // What the automation did in the 7 days ending with the as-of date.
    let tz = ctx.org_tz()?;
    let midnight = |d: Date| tz.to_timestamp(d.to_datetime(jiff::civil::Time::midnight()));
    let end = midnight(as_of.tomorrow()?)?;
    let start = midnight(days_before(as_of, 6)?)?;
    let within = |t: jiff::Timestamp| t >= start && t < end;
    let store = ctx.store.as_ref();
    let org = ctx.org.id;
    let messages_sent = store
        .outbox(org, &OutboxFilter::default())?
        .iter()
        .filter(|m| m.record.sent_at.is_some_and(within))
        .count();
    let tasks = store.tasks(org, true)?;
    let tasks_opened = tasks.iter().filter(|t| within(t.record.created_at)).count();
    let tasks_done = tasks
        .iter()
        .filter(|t| t.record.completed_at.is_some_and(within))
        .count();
    let broken = tasks
        .iter()
        .filter(|t| t.record.kind == TaskKind::BrokenPromise && within(t.record.created_at))
        .count();
    let alerts = tasks
        .iter()
        .filter(|t| t.record.kind == TaskKind::Alert && within(t.record.created_at))
        .count();
    let promises_made = store
        .promises(org)?
        .iter()
        .filter(|p| within(p.record.made_at))
        .count();

    let c = now_s.currency;
    let change = now_s.count_back_dso - then_s.count_back_dso;
    let fc = forecast_json(&forecast, s.version);
    if json {
        return print_json(&json!({
            "report": "brief",
            "as_of": as_of.to_string(),
            "currency": c.code(),
            "total_ar": amount(now_s.total_ar, c),
            "overdue_ar": amount(now_s.overdue_ar, c),
            "percent_current": ratio_json(now_s.percent_current),
            "dso": {
                "count_back_dso": ratio_json(Some(now_s.count_back_dso)),
                "count_back_dso_30_days_earlier": ratio_json(Some(then_s.count_back_dso)),
                "change": ratio_json(Some(change)),
                "compared_with": month_ago.to_string(),
            },
            "moved_to_overdue": {
                "period": {"start": moved.period.start.to_string(), "end": moved.period.end.to_string()},
                "invoice_count": moved.invoice_count,
                "amount": amount(moved.amount, c),
            },
            "largest_risks": risks.iter().map(|r| row_json(r, c)).collect::<Vec<_>>(),
            "forecast": {"model_version": s.version, "totals": fc["totals"].clone()},
            "automation_last_7_days": {
                "messages_sent": messages_sent,
                "tasks_opened": tasks_opened,
                "tasks_done": tasks_done,
                "promises_made": promises_made,
                "broken_promises": broken,
                "alerts": alerts,
            },
        }));
    }
    let m = |v: i64| money_words(v, c);
    println!("{}: the receivables brief for {as_of}", ctx.org.name);
    println!();
    let trend = if change.abs() < 0.05 {
        "unchanged from".to_string()
    } else if change > 0.0 {
        format!("{:.1} days longer than", change)
    } else {
        format!("{:.1} days shorter than", -change)
    };
    println!(
        "Customers owe you {} in total, {} of it overdue. Cash takes {:.1} days to come in (count-back DSO), {trend} 30 days earlier ({:.1}).",
        m(now_s.total_ar),
        m(now_s.overdue_ar),
        now_s.count_back_dso,
        then_s.count_back_dso
    );
    if moved.invoice_count == 0 {
        println!("No invoice became overdue in the last 7 days.");
    } else {
        println!(
            "In the last 7 days {} invoices worth {} went from current to overdue.",
            moved.invoice_count,
            m(moved.amount)
        );
    }
    println!();
    println!("The largest risks:");
    for r in &risks {
        println!(
            "- {} ({}), invoice {}: {}",
            r.customer_name, r.customer, r.invoice, r.reasons
        );
    }
    println!();
    let t = &forecast.totals;
    if t.len() == 3 {
        println!(
            "Expected cash in: {} in the next 30 days (likely between {} and {}), {} within 60 days, {} within 90 days.",
            m(t[0].expected),
            m(t[0].p10),
            m(t[0].p90),
            m(t[1].expected),
            m(t[2].expected)
        );
    }
    println!();
    println!(
        "The automation this week: {messages_sent} reminders sent, {tasks_opened} tasks opened ({tasks_done} done), {promises_made} promises to pay recorded, {broken} broken promises followed up, {alerts} alerts raised."
    );
    println!(
        "(Amounts in {}; exact figures: arflow report brief --json, {} open.)",
        c,
        format_minor_grouped(now_s.total_ar, c)
    );
    Ok(())
}
