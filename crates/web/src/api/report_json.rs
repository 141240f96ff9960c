//! The JSON of `arflow report summary --json` and `arflow report aging
//! --json` (schema: docs/reports.md), shared by the command line and
//! `GET /api/v1/reports/summary|aging` so both always say the same thing.
//!
//! Amounts are decimal strings in major units of `currency` (the
//! organization's base currency), so no float ever carries money; ratios
//! are numbers rounded to 2 decimals, or null when undefined.

use arflow_domain::analytics::aging::{AgingBasis, AgingBucket, AgingReport};
use arflow_domain::analytics::summary::Summary;
use arflow_domain::money::{Currency, format_minor};
use serde_json::{Value, json};

/// Ratios in JSON: numbers rounded to 2 decimals, or null when undefined.
pub fn ratio_json(v: Option<f64>) -> Value {
    v.map(|x| json!((x * 100.0).round() / 100.0))
        .unwrap_or(Value::Null)
}

/// An amount: a decimal string in major units of `c`.
pub fn amount(minor: i64, c: Currency) -> Value {
    Value::String(format_minor(minor, c))
}

pub fn aging_json(r: &AgingReport) -> Value {
    let c = r.currency;
    json!({
        "report": "aging",
        "as_of": r.as_of.to_string(),
        "currency": c.code(),
        "segment": r.segment,
        "basis": match r.config.basis { AgingBasis::DueDate => "due-date", AgingBasis::IssueDate => "issue-date" },
        "buckets": buckets_json(&r.buckets, c),
        "total": amount(r.total, c),
        "current": amount(r.current, c),
        "overdue": amount(r.overdue, c),
        "percent_current": ratio_json(r.percent_current),
        "invoice_count": r.invoice_count,
        "overdue_invoice_count": r.overdue_invoice_count,
        "customers": r.customers.iter().map(|cu| json!({
            "customer_id": cu.external_id, "name": cu.name, "segment": cu.segment,
            "buckets": cu.buckets.iter().map(|&a| amount(a, c)).collect::<Vec<_>>(),
            "total": amount(cu.total, c), "overdue": amount(cu.overdue, c), "invoice_count": cu.invoice_count,
        })).collect::<Vec<_>>(),
    })
}

pub fn buckets_json(buckets: &[AgingBucket], c: Currency) -> Value {
    Value::Array(
        buckets
            .iter()
            .map(|b| {
                json!({
                    "label": b.label, "min_days": b.min_days, "max_days": b.max_days,
                    "amount": amount(b.amount, c), "invoice_count": b.invoice_count,
                })
            })
            .collect(),
    )
}

pub fn summary_json(s: &Summary) -> Value {
    let c = s.currency;
    json!({
        "report": "summary",
        "as_of": s.as_of.to_string(),
        "currency": c.code(),
        "segment": s.segment,
        "total_ar": amount(s.total_ar, c),
        "current_ar": amount(s.current_ar, c),
        "overdue_ar": amount(s.overdue_ar, c),
        "percent_current": ratio_json(s.percent_current),
        "open_invoice_count": s.open_invoice_count,
        "overdue_invoice_count": s.overdue_invoice_count,
        "customers_with_balance": s.customers_with_balance,
        "customers_overdue": s.customers_overdue,
        "credit_sales": amount(s.credit_sales, c),
        "dso_period_days": s.dso_period_days,
        "dso": ratio_json(s.dso),
        "count_back_dso": ratio_json(Some(s.count_back_dso)),
        "best_possible_dso": ratio_json(s.best_possible_dso),
        "average_days_delinquent": ratio_json(s.average_days_delinquent),
        "cei_period": {"start": s.cei_period.start.to_string(), "end": s.cei_period.end.to_string()},
        "cei_percent": ratio_json(s.cei),
        "aging": buckets_json(&s.aging, c),
    })
}
