//! `arflow report aging|dso|cei|summary|customers`: the domain's analytics,
//! rendered as a table, JSON (schema: docs/reports.md) or CSV.
//!
//! JSON amounts are decimal strings in major units of `currency` (the
//! organization's base currency), so no float ever carries money.

use anyhow::{Context as _, Result};
use arflow_domain::analytics::Period;
use arflow_domain::analytics::aging::{AgingBasis, AgingConfig, AgingReport, aging};
use arflow_domain::analytics::cei::{CeiReport, CeiVariant, cei};
use arflow_domain::analytics::customers::{CustomerBehaviorReport, customer_behavior};
use arflow_domain::analytics::dso::{DsoConfig, DsoReport, dso};
use arflow_domain::analytics::roll_rates::{RollRateReport, roll_rates};
use arflow_domain::analytics::segments::{
    CollectionRateReport, MovedToOverdueReport, collection_rate_by_segment, moved_to_overdue,
};
use arflow_domain::analytics::summary::{Summary, SummaryConfig, summary};
use arflow_domain::fx::FxTable;
use arflow_domain::ledger::{BaseConverter, Ledger};
use arflow_domain::money::{format_minor, format_minor_grouped};
use serde_json::{Value, json};

// Shared with the web API (`GET /api/v1/reports/summary|aging`), so both say the same thing.
use arflow_web::api::report_json::{aging_json, summary_json};
pub(crate) use arflow_web::api::report_json::{amount, ratio_json};

use crate::args::{ReportArgs, ReportName};
use crate::context::{Context, parse_date_arg};
use crate::output::{Table, print_csv};

pub fn run(ctx: &Context, args: &ReportArgs) -> Result<()> {
    let as_of = match &args.as_of {
        Some(d) => parse_date_arg("--as-of", d)?,
        None => ctx.today()?,
    };
    let facts = ctx.store.ledger_facts(ctx.org.id)?;
    let fx = FxTable::new(ctx.store.fx_rates(ctx.org.id)?);
    let ledger = Ledger::new(&facts);
    let conv = BaseConverter {
        base: facts.base_currency,
        table: &fx,
    };
    let segment = args.segment.as_deref();
    let aging_config = aging_config(ctx)?;
    let dso_config = dso_config(ctx);
    let fmt = args.format;
    match args.report {
        ReportName::Brief => crate::commands::brief::run(ctx, as_of, fmt.json),
        ReportName::Aging => {
            let r = aging(&ledger, &conv, as_of, segment, &aging_config)
                .context("could not compute the aging report")?;
            if fmt.json {
                print_json(&aging_json(&r))
            } else if fmt.csv {
                aging_csv(&r)
            } else {
                aging_table(&r);
                Ok(())
            }
        }
        ReportName::Dso => {
            let r = dso(&ledger, &conv, as_of, segment, &dso_config)
                .context("could not compute DSO")?;
            if fmt.json {
                print_json(&dso_json(&r))
            } else if fmt.csv {
                let m = |v| format_minor(v, r.currency);
                print_csv(
                    &[
                        "as_of",
                        "currency",
                        "period_days",
                        "ending_ar",
                        "current_ar",
                        "credit_sales",
                        "dso",
                        "count_back_dso",
                        "best_possible_dso",
                        "average_days_delinquent",
                    ],
                    &[vec![
                        r.as_of.to_string(),
                        r.currency.to_string(),
                        r.period_days.to_string(),
                        m(r.ending_ar),
                        m(r.current_ar),
                        m(r.credit_sales),
                        opt_days(r.dso),
                        days(r.count_back.days),
                        opt_days(r.best_possible_dso),
                        opt_days(r.average_days_delinquent),
                    ]],
                )
            } else {
                dso_table(&r);
                Ok(())
            }
        }
        ReportName::Cei => {
            // The same trailing period as DSO (and as the summary).
            let period = Period::days_ending(as_of, dso_config.period_days)?;
            let r = cei(
                &ledger,
                &conv,
                as_of,
                Some(period),
                segment,
                CeiVariant::PeriodSales,
            )
            .context("could not compute CEI")?;
            if fmt.json {
                print_json(&cei_json(&r))
            } else if fmt.csv {
                let m = |v| format_minor(v, r.currency);
                print_csv(
                    &[
                        "period_start",
                        "period_end",
                        "currency",
                        "beginning_ar",
                        "credit_sales",
                        "ending_ar",
                        "ending_current_ar",
                        "cei_percent",
                    ],
                    &[vec![
                        r.period.start.to_string(),
                        r.period.end.to_string(),
                        r.currency.to_string(),
                        m(r.beginning_ar),
                        m(r.credit_sales),
                        m(r.ending_ar),
                        m(r.ending_current_ar),
                        opt_pct(r.cei),
                    ]],
                )
            } else {
                cei_table(&r);
                Ok(())
            }
        }
        ReportName::Summary => {
            let config = SummaryConfig {
                aging: aging_config,
                dso: dso_config,
                cei_variant: CeiVariant::PeriodSales,
            };
            let s = summary(&ledger, &conv, as_of, segment, &config)
                .context("could not compute the summary")?;
            if fmt.json {
                print_json(&summary_json(&s))
            } else if fmt.csv {
                let m = |v| format_minor(v, s.currency);
                print_csv(
                    &["metric", "value"],
                    &[
                        vec!["as_of".into(), s.as_of.to_string()],
                        vec!["currency".into(), s.currency.to_string()],
                        vec!["total_ar".into(), m(s.total_ar)],
                        vec!["current_ar".into(), m(s.current_ar)],
                        vec!["overdue_ar".into(), m(s.overdue_ar)],
                        vec!["percent_current".into(), opt_pct(s.percent_current)],
                        vec!["dso".into(), opt_days(s.dso)],
                        vec!["count_back_dso".into(), days(s.count_back_dso)],
                        vec!["best_possible_dso".into(), opt_days(s.best_possible_dso)],
                        vec![
                            "average_days_delinquent".into(),
                            opt_days(s.average_days_delinquent),
                        ],
                        vec!["cei_percent".into(), opt_pct(s.cei)],
                    ],
                )
            } else {
                summary_table(ctx, &s);
                Ok(())
            }
        }
        ReportName::RollRates => {
            let r = roll_rates(&ledger, &conv, as_of, segment, &aging_config, args.months)
                .context("could not compute roll rates")?;
            if fmt.json {
                print_json(&roll_rates_json(&r))
            } else {
                roll_rates_output(&r, fmt.csv)
            }
        }
        ReportName::Collections => {
            let period = match &args.from {
                Some(d) => Period::new(parse_date_arg("--from", d)?, as_of)?,
                None => Period::days_ending(as_of, 30)?,
            };
            let rate = collection_rate_by_segment(&ledger, &conv, as_of, Some(period), segment)
                .context("could not compute collection rates")?;
            let moved = moved_to_overdue(&ledger, &conv, as_of, Some(period), segment)
                .context("could not count invoices that became overdue")?;
            if fmt.json {
                print_json(&collections_json(&rate, &moved))
            } else {
                collections_output(&rate, &moved, fmt.csv)
            }
        }
        ReportName::Customers => {
            let r = customer_behavior(&ledger, &conv, as_of, segment)
                .context("could not compute customer payment behaviour")?;
            if fmt.json {
                print_json(&customers_json(&r))
            } else {
                customers_output(&r, fmt.csv)
            }
        }
    }
}

pub(crate) fn dso_config(ctx: &Context) -> DsoConfig {
    DsoConfig {
        period_days: ctx
            .config
            .reports
            .dso_period_days
            .unwrap_or(DsoConfig::default().period_days),
        ..DsoConfig::default()
    }
}

pub(crate) fn aging_config(ctx: &Context) -> Result<AgingConfig> {
    let mut config = AgingConfig::default();
    if let Some(b) = &ctx.config.reports.aging_boundaries {
        // The config lists the upper bounds after "current"; the domain wants 0
        // first. A list that already starts with 0 means the same thing.
        let mut boundaries = vec![0];
        boundaries.extend(b.iter().copied().skip_while(|&d| d == 0));
        config.boundaries = boundaries;
    }
    config.basis = match ctx.config.reports.aging_basis.as_deref() {
        None | Some("due-date") => AgingBasis::DueDate,
        Some("issue-date") => AgingBasis::IssueDate,
        Some(other) => anyhow::bail!(
            "config [reports] aging_basis '{other}' is unknown (use due-date or issue-date)"
        ),
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("config [reports] aging_boundaries: {e}"))?;
    Ok(config)
}

pub(crate) fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn days(v: f64) -> String {
    format!("{v:.1}")
}

fn opt_days(v: Option<f64>) -> String {
    v.map(days).unwrap_or_else(|| "n/a".into())
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.1}")).unwrap_or_else(|| "n/a".into())
}

fn aging_table(r: &AgingReport) {
    let c = r.currency;
    println!(
        "Aging as of {} ({}, by {}){}",
        r.as_of,
        c,
        basis_name(r.config.basis),
        segment_note(&r.segment)
    );
    let mut t = Table::new(&["bucket", "invoices", "open balance", "share"]).numeric_from(1);
    for b in &r.buckets {
        t.row(vec![
            b.label.clone(),
            b.invoice_count.to_string(),
            format_minor_grouped(b.amount, c),
            share(b.amount, r.total),
        ]);
    }
    t.row(vec![
        "Total".into(),
        r.invoice_count.to_string(),
        format_minor_grouped(r.total, c),
        share(r.total, r.total),
    ]);
    t.print();
    let mut header: Vec<String> = vec!["customer".into(), "name".into()];
    header.extend(r.buckets.iter().map(|b| b.label.clone()));
    header.push("total".into());
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header_refs).numeric_from(2);
    let shown = 15;
    for cu in r.customers.iter().take(shown) {
        let mut row = vec![cu.external_id.clone(), cu.name.clone()];
        row.extend(cu.buckets.iter().map(|&a| format_minor_grouped(a, c)));
        row.push(format_minor_grouped(cu.total, c));
        t.row(row);
    }
    println!("Largest balances");
    t.print();
    if r.customers.len() > shown {
        println!(
            "(and {} more customers with an open balance; --csv lists all)",
            r.customers.len() - shown
        );
    }
}

fn aging_csv(r: &AgingReport) -> Result<()> {
    let c = r.currency;
    let mut header: Vec<String> = vec!["customer_id".into(), "name".into(), "segment".into()];
    header.extend(r.buckets.iter().map(|b| b.label.clone()));
    header.extend(["total".into(), "overdue".into(), "invoice_count".into()]);
    let rows: Vec<Vec<String>> = r
        .customers
        .iter()
        .map(|cu| {
            let mut row = vec![
                cu.external_id.clone(),
                cu.name.clone(),
                cu.segment.clone().unwrap_or_default(),
            ];
            row.extend(cu.buckets.iter().map(|&a| format_minor(a, c)));
            row.extend([
                format_minor(cu.total, c),
                format_minor(cu.overdue, c),
                cu.invoice_count.to_string(),
            ]);
            row
        })
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    print_csv(&header_refs, &rows)
}

fn basis_name(b: AgingBasis) -> &'static str {
    match b {
        AgingBasis::DueDate => "days past due",
        AgingBasis::IssueDate => "days since issue",
    }
}

fn segment_note(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(", segment {s}"))
        .unwrap_or_default()
}

fn share(part: i64, total: i64) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / total as f64)
}

fn dso_json(r: &DsoReport) -> Value {
    let c = r.currency;
    json!({
        "report": "dso",
        "as_of": r.as_of.to_string(),
        "currency": c.code(),
        "segment": r.segment,
        "period": {"start": r.period.start.to_string(), "end": r.period.end.to_string(), "days": r.period_days},
        "ending_ar": amount(r.ending_ar, c),
        "current_ar": amount(r.current_ar, c),
        "overdue_ar": amount(r.overdue_ar, c),
        "credit_sales": amount(r.credit_sales, c),
        "dso": ratio_json(r.dso),
        "count_back_dso": ratio_json(Some(r.count_back.days)),
        "best_possible_dso": ratio_json(r.best_possible_dso),
        "average_days_delinquent": ratio_json(r.average_days_delinquent),
        "count_back": {
            "months": r.count_back.months.iter().map(|m| json!({
                "month": m.month.to_string(), "days": m.days, "sales": amount(m.sales, c),
                "absorbed": amount(m.absorbed, c), "days_counted": ratio_json(Some(m.days_counted)),
            })).collect::<Vec<_>>(),
            "unabsorbed": amount(r.count_back.unabsorbed, c),
        },
    })
}

fn dso_table(r: &DsoReport) {
    let c = r.currency;
    println!(
        "Days sales outstanding as of {} ({}){}",
        r.as_of,
        c,
        segment_note(&r.segment)
    );
    let mut t = Table::new(&["measure", "value"]).numeric_from(1);
    t.row(vec![
        "Ending receivables".into(),
        format_minor_grouped(r.ending_ar, c),
    ]);
    t.row(vec![
        format!(
            "Credit sales, {} days {}..{}",
            r.period_days, r.period.start, r.period.end
        ),
        format_minor_grouped(r.credit_sales, c),
    ]);
    t.row(vec!["DSO (standard)".into(), opt_days(r.dso)]);
    t.row(vec!["DSO (count-back)".into(), days(r.count_back.days)]);
    t.row(vec![
        "Best possible DSO".into(),
        opt_days(r.best_possible_dso),
    ]);
    t.row(vec![
        "Average days delinquent".into(),
        opt_days(r.average_days_delinquent),
    ]);
    t.print();
    if r.count_back.unabsorbed > 0 {
        println!(
            "(count-back ran out of sales history: {} of receivables were not absorbed)",
            format_minor_grouped(r.count_back.unabsorbed, c)
        );
    }
}

fn cei_json(r: &CeiReport) -> Value {
    let c = r.currency;
    json!({
        "report": "cei",
        "as_of": r.as_of.to_string(),
        "currency": c.code(),
        "segment": r.segment,
        "variant": "period-sales",
        "period": {"start": r.period.start.to_string(), "end": r.period.end.to_string()},
        "beginning_ar": amount(r.beginning_ar, c),
        "credit_sales": amount(r.credit_sales, c),
        "ending_ar": amount(r.ending_ar, c),
        "ending_current_ar": amount(r.ending_current_ar, c),
        "cei_percent": ratio_json(r.cei),
    })
}

fn cei_table(r: &CeiReport) {
    let c = r.currency;
    println!(
        "Collection effectiveness index {}..{} ({}){}",
        r.period.start,
        r.period.end,
        c,
        segment_note(&r.segment)
    );
    let mut t = Table::new(&["measure", "value"]).numeric_from(1);
    t.row(vec![
        "Beginning receivables".into(),
        format_minor_grouped(r.beginning_ar, c),
    ]);
    t.row(vec![
        "Credit sales".into(),
        format_minor_grouped(r.credit_sales, c),
    ]);
    t.row(vec![
        "Ending receivables".into(),
        format_minor_grouped(r.ending_ar, c),
    ]);
    t.row(vec![
        "Ending current receivables".into(),
        format_minor_grouped(r.ending_current_ar, c),
    ]);
    t.row(vec![
        "CEI".into(),
        r.cei
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| "n/a".into()),
    ]);
    t.print();
    println!("CEI = (beginning + sales - ending) / (beginning + sales - ending current) x 100");
}

fn summary_table(ctx: &Context, s: &Summary) {
    let c = s.currency;
    println!(
        "{}: collections summary as of {} ({}){}",
        ctx.org.name,
        s.as_of,
        c,
        segment_note(&s.segment)
    );
    let mut t = Table::new(&["measure", "value"]).numeric_from(1);
    t.row(vec![
        "Total receivables".into(),
        format_minor_grouped(s.total_ar, c),
    ]);
    t.row(vec![
        "Overdue".into(),
        format!(
            "{} ({} invoices, {} customers)",
            format_minor_grouped(s.overdue_ar, c),
            s.overdue_invoice_count,
            s.customers_overdue
        ),
    ]);
    t.row(vec![
        "Percent current".into(),
        s.percent_current
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| "n/a".into()),
    ]);
    t.row(vec![
        "Open invoices".into(),
        format!(
            "{} ({} customers)",
            s.open_invoice_count, s.customers_with_balance
        ),
    ]);
    t.row(vec![
        format!("DSO, standard ({} days)", s.dso_period_days),
        opt_days(s.dso),
    ]);
    t.row(vec!["DSO, count-back".into(), days(s.count_back_dso)]);
    t.row(vec![
        "Best possible DSO".into(),
        opt_days(s.best_possible_dso),
    ]);
    t.row(vec![
        "Average days delinquent".into(),
        opt_days(s.average_days_delinquent),
    ]);
    t.row(vec![
        format!("CEI ({}..{})", s.cei_period.start, s.cei_period.end),
        s.cei
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| "n/a".into()),
    ]);
    t.print();
    let mut t = Table::new(&["aging", "invoices", "open balance", "share"]).numeric_from(1);
    for b in &s.aging {
        t.row(vec![
            b.label.clone(),
            b.invoice_count.to_string(),
            format_minor_grouped(b.amount, c),
            share(b.amount, s.total_ar),
        ]);
    }
    t.print();
}

fn customers_json(r: &CustomerBehaviorReport) -> Value {
    let c = r.currency;
    json!({
        "report": "customers",
        "as_of": r.as_of.to_string(),
        "currency": c.code(),
        "segment": r.segment,
        "customers": r.customers.iter().map(|cu| json!({
            "customer_id": cu.external_id, "name": cu.name, "segment": cu.segment,
            "invoice_count": cu.invoice_count, "settled_count": cu.settled_count,
            "avg_days_to_pay": ratio_json(cu.avg_days_to_pay), "weighted_avg_days_to_pay": ratio_json(cu.weighted_avg_days_to_pay),
            "avg_days_late": ratio_json(cu.avg_days_late), "weighted_avg_days_late": ratio_json(cu.weighted_avg_days_late),
            "open_invoice_count": cu.open_invoice_count, "open_balance": amount(cu.open_balance, c), "overdue_balance": amount(cu.overdue_balance, c),
        })).collect::<Vec<_>>(),
    })
}

fn customers_output(r: &CustomerBehaviorReport, csv: bool) -> Result<()> {
    let c = r.currency;
    let header = [
        "customer_id",
        "name",
        "segment",
        "invoices",
        "settled",
        "avg_days_to_pay",
        "weighted_days_to_pay",
        "avg_days_late",
        "weighted_days_late",
        "open_invoices",
        "open_balance",
        "overdue_balance",
    ];
    let rows: Vec<Vec<String>> = r
        .customers
        .iter()
        .map(|cu| {
            let money = |v| {
                if csv {
                    format_minor(v, c)
                } else {
                    format_minor_grouped(v, c)
                }
            };
            vec![
                cu.external_id.clone(),
                cu.name.clone(),
                cu.segment.clone().unwrap_or_default(),
                cu.invoice_count.to_string(),
                cu.settled_count.to_string(),
                opt_days(cu.avg_days_to_pay),
                opt_days(cu.weighted_avg_days_to_pay),
                opt_days(cu.avg_days_late),
                opt_days(cu.weighted_avg_days_late),
                cu.open_invoice_count.to_string(),
                money(cu.open_balance),
                money(cu.overdue_balance),
            ]
        })
        .collect();
    if csv {
        return print_csv(&header, &rows);
    }
    println!(
        "Customer payment behaviour as of {} ({}){}",
        r.as_of,
        c,
        segment_note(&r.segment)
    );
    let mut t = Table::new(&header).numeric_from(3);
    for row in rows {
        t.row(row);
    }
    t.print();
    Ok(())
}

fn rate_pct(v: Option<f64>) -> String {
    v.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "n/a".into())
}

fn roll_rates_json(r: &RollRateReport) -> Value {
    let c = r.currency;
    json!({
        "report": "roll-rates",
        "as_of": r.as_of.to_string(),
        "currency": c.code(),
        "segment": r.segment,
        "buckets": r.buckets,
        "months": r.months.iter().map(|m| json!({
            "from": m.from.to_string(), "to": m.to.to_string(),
            "rolls": m.rolls.iter().map(|b| json!({
                "from_bucket": b.from_bucket, "to_bucket": b.to_bucket,
                "from_amount": amount(b.from_amount, c), "from_count": b.from_count,
                "rolled_amount": amount(b.rolled_amount, c), "rolled_count": b.rolled_count,
                "rate": b.rate.map(|x| json!((x * 10_000.0).round() / 10_000.0)),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "average": r.average.iter().map(|a| a.map(|x| json!((x * 10_000.0).round() / 10_000.0))).collect::<Vec<_>>(),
    })
}

fn roll_rates_output(r: &RollRateReport, csv: bool) -> Result<()> {
    let mut header: Vec<String> = vec!["from".into(), "to".into()];
    let pairs: Vec<String> = r
        .buckets
        .windows(2)
        .map(|w| format!("{} -> {}", w[0], w[1]))
        .collect();
    header.extend(pairs.iter().cloned());
    let mut rows: Vec<Vec<String>> = r
        .months
        .iter()
        .map(|m| {
            let mut row = vec![m.from.to_string(), m.to.to_string()];
            row.extend(m.rolls.iter().map(|b| rate_pct(b.rate)));
            row
        })
        .collect();
    let mut avg = vec!["average".to_string(), String::new()];
    avg.extend(r.average.iter().map(|a| rate_pct(*a)));
    rows.push(avg);
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    if csv {
        return print_csv(&header_refs, &rows);
    }
    println!(
        "Roll rates: share of each bucket's balance that rolled into the next one a month later{}",
        segment_note(&r.segment)
    );
    let mut t = Table::new(&header_refs).numeric_from(2);
    for row in rows {
        t.row(row);
    }
    t.print();
    Ok(())
}

fn collections_json(rate: &CollectionRateReport, moved: &MovedToOverdueReport) -> Value {
    let c = rate.currency;
    let seg = |s: &arflow_domain::analytics::segments::SegmentCollection| {
        json!({
            "segment": s.segment, "beginning_ar": amount(s.beginning_ar, c), "invoiced": amount(s.invoiced, c),
            "cash_applied": amount(s.cash_applied, c), "credits_applied": amount(s.credits_applied, c),
            "collected": amount(s.collected, c), "collectible": amount(s.collectible, c),
            "collection_rate_percent": ratio_json(s.collection_rate.map(|x| x * 100.0)), "ending_ar": amount(s.ending_ar, c),
        })
    };
    json!({
        "report": "collections",
        "as_of": rate.as_of.to_string(),
        "currency": c.code(),
        "period": {"start": rate.period.start.to_string(), "end": rate.period.end.to_string()},
        "segments": rate.segments.iter().map(seg).collect::<Vec<_>>(),
        "total": seg(&rate.total),
        "moved_to_overdue": {
            "invoice_count": moved.invoice_count,
            "amount": amount(moved.amount, c),
            "segments": moved.segments.iter().map(|m| json!({"segment": m.segment, "invoice_count": m.invoice_count, "amount": amount(m.amount, c)})).collect::<Vec<_>>(),
        },
    })
}

fn collections_output(
    rate: &CollectionRateReport,
    moved: &MovedToOverdueReport,
    csv: bool,
) -> Result<()> {
    let c = rate.currency;
    let header = [
        "segment",
        "beginning_ar",
        "invoiced",
        "collected",
        "collection_rate",
        "ending_ar",
        "moved_to_overdue",
        "moved_amount",
    ];
    let money = |v| {
        if csv {
            format_minor(v, c)
        } else {
            format_minor_grouped(v, c)
        }
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for s in rate.segments.iter().chain(std::iter::once(&rate.total)) {
        let is_total = std::ptr::eq(s, &rate.total);
        let (count, amt) = if is_total {
            (moved.invoice_count, moved.amount)
        } else {
            moved
                .segments
                .iter()
                .find(|m| m.segment == s.segment)
                .map_or((0, 0), |m| (m.invoice_count, m.amount))
        };
        let name = if is_total {
            "all".to_string()
        } else {
            s.segment.clone().unwrap_or_else(|| "(none)".into())
        };
        rows.push(vec![
            name,
            money(s.beginning_ar),
            money(s.invoiced),
            money(s.collected),
            rate_pct(s.collection_rate),
            money(s.ending_ar),
            count.to_string(),
            money(amt),
        ]);
    }
    if csv {
        return print_csv(&header, &rows);
    }
    println!(
        "Collections {}..{} ({}): collected / (AR at the start + invoiced); invoices whose due date passed unpaid in the period",
        rate.period.start, rate.period.end, c
    );
    let mut t = Table::new(&header).numeric_from(1);
    for row in rows {
        t.row(row);
    }
    t.print();
    Ok(())
}
