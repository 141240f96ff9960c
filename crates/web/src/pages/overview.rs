//! The overview (`GET /`): the organization's receivables as of today in
//! its time zone — the headline numbers of `arflow report summary`, the
//! count-back DSO of the last 12 month-ends, aging, expected inflows, and
//! what needs a person today.
//!
//! The heavy part (summary, trend, due-date inflows) is computed once per
//! ledger view and kept on it ([`OverviewNumbers`]); predictions are kept
//! per model version (`common::predicted`). A request after that reads a
//! few small store lists (tasks, messages needing attention, holds,
//! disputes) and renders.

use std::sync::Arc;

use arflow_domain::analytics::dso::{DsoPoint, dso_trend};
use arflow_domain::analytics::summary::{Summary, SummaryConfig, summary};
use arflow_domain::dunning::records::{MessageStatus, TaskStatus};
use arflow_domain::ledger::Ledger;
use arflow_domain::money::Currency;
use arflow_store::{OutboxFilter, Store};
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use super::common::{
    Fields, Pauses, Prediction, add_days, amount_text, cannot, customer_href, money, one_decimal,
    predicted, ratio_text, with_converter,
};
use crate::AppState;
use crate::access::Caller;
use crate::cache::{InvoiceState, LedgerView};
use crate::charts::{AGING_CLASSES, Bar, INFLOW_CLASS, Point, bar_chart, line_chart, sparkline};
use crate::problem::{AppError, PageError};
use crate::routes::{Route, VIEWER};

pub fn routes() -> Vec<Route> {
    vec![Route::page(Method::GET, "/", VIEWER, overview)]
}

/// Months in the DSO trend.
pub const TREND_MONTHS: u32 = 12;
/// The inflow horizons, in days.
pub const HORIZONS: [i64; 3] = [30, 60, 90];

/// The overview's numbers for one ledger view.
#[derive(Debug)]
pub struct OverviewNumbers {
    /// Exactly what `arflow report summary` computes for today.
    pub summary: Summary,
    /// Metrics at each of the last 12 month-ends, oldest first.
    pub trend: Vec<DsoPoint>,
    /// Open balance (base currency at today's rate) due within the next
    /// 30/60/90 days, overdue invoices counted tomorrow: the due-date
    /// baseline of `arflow forecast backtest`. Cumulative.
    pub due_inflows: [i64; 3],
    /// Invoices behind each of [`Self::due_inflows`].
    pub due_inflow_invoices: [u64; 3],
}

/// The view's overview numbers, computed on first use (blocking: call it on
/// the blocking pool). The API may reuse it.
pub fn overview_numbers(
    view: &LedgerView,
    config: &SummaryConfig,
) -> Result<Arc<OverviewNumbers>, AppError> {
    view.memo
        .overview
        .get_or_init(|| compute(view, config).map(Arc::new))
        .clone()
        .map_err(|e| cannot("the overview cannot be computed", e))
}

fn compute(view: &LedgerView, config: &SummaryConfig) -> Result<OverviewNumbers, String> {
    let ledger = Ledger::new(&view.facts);
    let today = view.today;
    with_converter(view, |conv| {
        let s = summary(&ledger, conv, today, None, config).map_err(|e| e.to_string())?;
        let trend = dso_trend(&ledger, conv, today, None, &config.dso, TREND_MONTHS)
            .map_err(|e| e.to_string())?
            .points;
        let mut due_inflows = [0i64; 3];
        let mut due_inflow_invoices = [0u64; 3];
        for row in &view.rows {
            if !matches!(row.state, InvoiceState::Open | InvoiceState::Overdue) || row.open <= 0 {
                continue;
            }
            let inv = &view.invoices[row.index];
            let days = if inv.due_date > today {
                (inv.due_date - today).get_days() as i64
            } else {
                1
            };
            if days > HORIZONS[2] {
                continue;
            }
            let base = conv
                .to_base(row.open, inv.currency, today)
                .map_err(|e| format!("invoice {}: {e}", inv.number))?;
            for (k, h) in HORIZONS.iter().enumerate() {
                if days <= *h {
                    due_inflows[k] += base;
                    due_inflow_invoices[k] += 1;
                }
            }
        }
        Ok(OverviewNumbers {
            summary: s,
            trend,
            due_inflows,
            due_inflow_invoices,
        })
    })
}

/// One headline number.
#[derive(Serialize)]
struct Kpi {
    id: &'static str,
    label: &'static str,
    value: String,
    /// Exactly as `arflow report summary --json` prints it.
    data_value: String,
    note: String,
    /// "", "good", "warn" or "bad".
    class: &'static str,
    /// An inline SVG (trusted: built by `charts`), or "".
    spark: String,
}

#[derive(Serialize)]
struct TrendRow {
    month_end: String,
    label: String,
    value: String,
    data_value: String,
}

#[derive(Serialize)]
struct AgingRow {
    label: String,
    amount: i64,
    data_value: String,
    invoices: u64,
    share: String,
    href: String,
}

#[derive(Serialize)]
struct Inflow {
    days: i64,
    id: String,
    expected: i64,
    data_value: String,
    /// "P10–P90" band when predicted.
    band: Option<String>,
    /// Invoices (due-date basis).
    invoices: Option<u64>,
}

#[derive(Serialize)]
struct HumanTask {
    id: i64,
    kind: &'static str,
    title: String,
    customer: String,
    customer_name: String,
    customer_href: String,
    due_on: String,
    days_late: i64,
    assignee: Option<String>,
}

#[derive(Serialize)]
struct HumanMessage {
    id: i64,
    href: String,
    status: &'static str,
    channel: String,
    customer: String,
    customer_name: String,
    customer_href: String,
    subject: String,
    recipient: String,
    last_error: Option<String>,
}

/// What needs a person today.
struct NeedsHuman {
    task_count: usize,
    tasks: Vec<HumanTask>,
    in_doubt: usize,
    failed: usize,
    messages: Vec<HumanMessage>,
    open_disputes: usize,
    active_holds: usize,
}

const SHOWN: usize = 8;

impl NeedsHuman {
    fn load(store: &dyn Store, view: &LedgerView, now: Timestamp) -> Result<NeedsHuman, AppError> {
        let org = view.org.id;
        let today = view.today;
        let name = |key: &str| {
            view.customer(key)
                .map_or_else(|| key.to_string(), |c| c.name.clone())
        };
        let mut due: Vec<_> = store
            .tasks(org, false)?
            .into_iter()
            .filter(|t| {
                t.status == TaskStatus::Open
                    && t.due_on <= today
                    && t.snoozed_until.is_none_or(|s| s <= today)
            })
            .collect();
        due.sort_by_key(|t| (t.due_on, t.id));
        let tasks = due
            .iter()
            .take(SHOWN)
            .map(|t| HumanTask {
                id: t.id,
                kind: t.kind.as_str(),
                title: t.title.clone(),
                customer: t.customer.clone(),
                customer_name: name(&t.customer),
                customer_href: customer_href(&t.customer),
                due_on: t.due_on.to_string(),
                days_late: (today - t.due_on).get_days() as i64,
                assignee: t.assignee.clone(),
            })
            .collect();
        let mut messages = Vec::new();
        let mut counts = [0usize; 2];
        for (i, status) in [MessageStatus::InDoubt, MessageStatus::Failed]
            .into_iter()
            .enumerate()
        {
            let list = store.outbox(
                org,
                &OutboxFilter {
                    status: Some(status),
                    ..OutboxFilter::default()
                },
            )?;
            counts[i] = list.len();
            for m in list {
                if messages.len() >= SHOWN {
                    break;
                }
                messages.push(HumanMessage {
                    id: m.id,
                    href: format!("/dunning/outbox/{}", m.id),
                    status: m.status.as_str(),
                    channel: m.channel.as_str().to_string(),
                    customer: m.customer.clone(),
                    customer_name: name(&m.customer),
                    customer_href: customer_href(&m.customer),
                    subject: m.subject.clone(),
                    recipient: m.recipient.clone(),
                    last_error: m.last_error.clone(),
                });
            }
        }
        let pauses = Pauses::load(store, org, today, now)?;
        Ok(NeedsHuman {
            task_count: due.len(),
            tasks,
            in_doubt: counts[0],
            failed: counts[1],
            messages,
            open_disputes: pauses.open_dispute_count(),
            active_holds: pauses.active_hold_count(),
        })
    }
}

async fn overview(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let q = Fields(q);
    let view = super::ledger_view(&app, &caller).await?;
    let config = app.config.summary.clone();
    let now = app.clock.now();
    let (view, numbers, prediction, human) = app
        .blocking(move |store| {
            let numbers = overview_numbers(&view, &config)?;
            let prediction = predicted(store, &view)?;
            let human = NeedsHuman::load(store, &view, now)?;
            Ok((view, numbers, prediction, human))
        })
        .await?;
    let s = &numbers.summary;
    let c = s.currency;
    let ctx = minijinja::context! {
        as_of => s.as_of.to_string(),
        time_zone => view.org.time_zone.clone(),
        currency => c.code(),
        kpis => kpis(&numbers),
        trend_chart => trend_chart(&numbers.trend),
        trend => trend_rows(&numbers.trend),
        aging_chart => aging_chart(s),
        aging => aging_rows(s),
        aging_total => s.total_ar,
        inflows => inflows_context(&numbers, &prediction, c, view.today)?,
        human => minijinja::context! {
            task_count => human.task_count,
            tasks => human.tasks,
            in_doubt => human.in_doubt,
            failed => human.failed,
            messages => human.messages,
            open_disputes => human.open_disputes,
            active_holds => human.active_holds,
            nothing => human.task_count + human.in_doubt + human.failed + human.open_disputes + human.active_holds == 0,
        },
    };
    Ok(app.views.render(
        "overview.html",
        super::chrome(
            &caller,
            &view.org.name,
            "overview",
            "Overview",
            super::flash(q.get("ok")),
            ctx,
        ),
    )?)
}

fn days_text(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.1} days"),
        _ => "—".to_string(),
    }
}

fn pct_text(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.1} %"),
        _ => "—".to_string(),
    }
}

fn kpis(n: &OverviewNumbers) -> Vec<Kpi> {
    let s = &n.summary;
    let c = s.currency;
    let spark_values: Vec<Option<f64>> = n.trend.iter().map(|p| Some(p.count_back_dso)).collect();
    let overdue_share = if s.total_ar > 0 {
        s.overdue_ar as f64 / s.total_ar as f64
    } else {
        0.0
    };
    vec![
        Kpi {
            id: "kpi-total-ar",
            label: "Total receivables",
            value: money(s.total_ar, c),
            data_value: amount_text(s.total_ar, c),
            note: format!(
                "{} open invoices · {} customers",
                s.open_invoice_count, s.customers_with_balance
            ),
            class: "",
            spark: String::new(),
        },
        Kpi {
            id: "kpi-overdue-ar",
            label: "Overdue",
            value: money(s.overdue_ar, c),
            data_value: amount_text(s.overdue_ar, c),
            note: format!(
                "{} invoices · {} customers",
                s.overdue_invoice_count, s.customers_overdue
            ),
            class: if overdue_share > 0.5 {
                "bad"
            } else if overdue_share > 0.25 {
                "warn"
            } else {
                ""
            },
            spark: String::new(),
        },
        Kpi {
            id: "kpi-percent-current",
            label: "Percent current",
            value: pct_text(s.percent_current),
            data_value: ratio_text(s.percent_current),
            note: format!("{} not yet due", money(s.current_ar, c)),
            class: "",
            spark: String::new(),
        },
        Kpi {
            id: "kpi-count-back-dso",
            label: "DSO (count-back)",
            value: days_text(Some(s.count_back_dso)),
            data_value: ratio_text(Some(s.count_back_dso)),
            note: format!("last {} month-ends below", n.trend.len()),
            class: "",
            spark: sparkline(&spark_values),
        },
        Kpi {
            id: "kpi-dso",
            label: "DSO (standard)",
            value: days_text(s.dso),
            data_value: ratio_text(s.dso),
            note: format!(
                "{} days; credit sales {}",
                s.dso_period_days,
                money(s.credit_sales, c)
            ),
            class: "",
            spark: String::new(),
        },
        Kpi {
            id: "kpi-best-possible-dso",
            label: "Best possible DSO",
            value: days_text(s.best_possible_dso),
            data_value: ratio_text(s.best_possible_dso),
            note: "if every invoice were paid on its due date".to_string(),
            class: "",
            spark: String::new(),
        },
        Kpi {
            id: "kpi-average-days-delinquent",
            label: "Average days delinquent",
            value: days_text(s.average_days_delinquent),
            data_value: ratio_text(s.average_days_delinquent),
            note: "DSO − best possible DSO".to_string(),
            class: match s.average_days_delinquent {
                Some(d) if d > 30.0 => "bad",
                Some(d) if d > 10.0 => "warn",
                _ => "",
            },
            spark: String::new(),
        },
        Kpi {
            id: "kpi-cei",
            label: "Collection effectiveness",
            value: pct_text(s.cei),
            data_value: ratio_text(s.cei),
            note: format!("CEI, {} to {}", s.cei_period.start, s.cei_period.end),
            class: match s.cei {
                Some(v) if v >= 80.0 => "good",
                Some(v) if v < 50.0 => "bad",
                Some(v) if v < 70.0 => "warn",
                _ => "",
            },
            spark: String::new(),
        },
    ]
}

fn month_label(d: Date) -> String {
    d.strftime("%b %y").to_string()
}

fn trend_chart(points: &[DsoPoint]) -> String {
    let pts: Vec<Point> = points
        .iter()
        .map(|p| Point {
            label: month_label(p.date),
            value: Some(p.count_back_dso),
            display: format!("{}: {:.1} days", p.date, p.count_back_dso),
        })
        .collect();
    line_chart(
        "Count-back DSO, last 12 month-ends",
        "Days sales outstanding by the count-back method at the end of each of the last twelve months.",
        &pts,
    )
}

fn trend_rows(points: &[DsoPoint]) -> Vec<TrendRow> {
    points
        .iter()
        .map(|p| TrendRow {
            month_end: p.date.to_string(),
            label: month_label(p.date),
            value: one_decimal(Some(p.count_back_dso)),
            data_value: ratio_text(Some(p.count_back_dso)),
        })
        .collect()
}

fn aging_chart(s: &Summary) -> String {
    let c = s.currency;
    let bars: Vec<Bar> = s
        .aging
        .iter()
        .enumerate()
        .map(|(i, b)| Bar {
            label: b.label.clone(),
            value: b.amount,
            display: money(b.amount, c),
            class: AGING_CLASSES.get(i).copied(),
        })
        .collect();
    bar_chart(
        "Aging of open receivables",
        &format!(
            "Open balance by days past due as of {}, in {}.",
            s.as_of,
            c.code()
        ),
        &bars,
    )
}

fn aging_rows(s: &Summary) -> Vec<AgingRow> {
    let c = s.currency;
    s.aging
        .iter()
        .map(|b| AgingRow {
            label: b.label.clone(),
            amount: b.amount,
            data_value: amount_text(b.amount, c),
            invoices: b.invoice_count,
            share: if s.total_ar > 0 {
                format!("{:.1} %", b.amount as f64 * 100.0 / s.total_ar as f64)
            } else {
                "—".to_string()
            },
            href: super::common::href("/invoices", &[("bucket", &b.label)]),
        })
        .collect()
}

fn inflows_context(
    n: &OverviewNumbers,
    prediction: &Prediction,
    base: Currency,
    today: Date,
) -> Result<minijinja::Value, AppError> {
    let (basis, label, version, warning, rows, beyond) = match prediction {
        Prediction::Ready(p) => {
            let rows: Vec<Inflow> = p
                .totals
                .iter()
                .zip(HORIZONS)
                .map(|(b, days)| Inflow {
                    days,
                    id: format!("inflow-{days}"),
                    expected: b.expected,
                    data_value: amount_text(b.expected, p.currency),
                    band: Some(format!(
                        "{} – {}",
                        money(b.p10, p.currency),
                        money(b.p90, p.currency)
                    )),
                    invoices: None,
                })
                .collect();
            (
                "predicted",
                format!("predicted pay dates (model v{})", p.version),
                Some(p.version),
                None,
                rows,
                Some(p.beyond),
            )
        }
        other => {
            let rows: Vec<Inflow> = HORIZONS
                .iter()
                .enumerate()
                .map(|(k, &days)| Inflow {
                    days,
                    id: format!("inflow-{days}"),
                    expected: n.due_inflows[k],
                    data_value: amount_text(n.due_inflows[k], base),
                    band: None,
                    invoices: Some(n.due_inflow_invoices[k]),
                })
                .collect();
            let (label, warning) = match other {
                Prediction::Failed { version, error } => (
                    "by due date (the payment model could not be used)".to_string(),
                    Some(format!(
                        "Payment model version {version} could not score the open invoices: {error}"
                    )),
                ),
                _ => (
                    "by due date (no payment model trained yet)".to_string(),
                    None,
                ),
            };
            ("due_date", label, None, warning, rows, None)
        }
    };
    let currency = match prediction {
        Prediction::Ready(p) => p.currency,
        _ => base,
    };
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar {
            label: format!("Next {} days", r.days),
            value: r.expected,
            display: money(r.expected, currency),
            class: Some(INFLOW_CLASS),
        })
        .collect();
    let chart = bar_chart(
        "Expected inflows",
        &format!(
            "Receipts expected within 30, 60 and 90 days after {today}, {label}, in {}.",
            currency.code()
        ),
        &bars,
    );
    Ok(minijinja::context! {
        basis => basis,
        label => label,
        model_version => version,
        warning => warning,
        rows => rows,
        beyond => beyond,
        currency => currency.code(),
        chart => chart,
        horizon_end => add_days(today, HORIZONS[2])?.to_string(),
    })
}
