//! What the overview, invoice, customer and worklist pages share: the
//! numbers memoized on a ledger view (see [`ViewMemo`]), payment predictions,
//! what pauses dunning (holds, disputes, promises), form and query fields,
//! links that keep their filters, pagination, dates and amounts as shown.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use arflow_domain::analytics::customers::{CustomerBehaviorReport, customer_behavior};
use arflow_domain::dunning::records::{Dispute, Hold, Promise, Scope};
use arflow_domain::fx::FxTable;
use arflow_domain::ledger::{BaseConverter, Ledger};
use arflow_domain::model::Stored;
use arflow_domain::money::{Currency, format_minor};
use arflow_domain::predict::priority::customer_priorities;
use arflow_domain::predict::{ForecastBucket, PriorityConfig, cash_forecast, prioritize};
use arflow_dunning::predict::{PredictInputs, latest_model};
use arflow_store::Store;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::cache::LedgerView;
use crate::problem::AppError;

/// Everything the pages compute from one ledger view, computed once on first
/// use and dropped with the view (when the ledger changes or the day turns).
#[derive(Default)]
pub struct ViewMemo {
    /// The overview's summary, DSO trend and due-date inflows.
    pub(crate) overview: OnceLock<Result<Arc<super::overview::OverviewNumbers>, String>>,
    /// Payment behaviour of every customer (`report customers`).
    pub(crate) behaviour: OnceLock<Result<Arc<CustomerBehaviorReport>, String>>,
    /// Predictions of the open book with the model version they used: kept
    /// while that version is the latest.
    pub(crate) predicted: Mutex<Option<Prediction>>,
}

/// How a conversion or analytics failure reads on a page: it is about the
/// data (a missing FX rate, typically), so the message is shown.
pub fn cannot(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Conflict(format!("{what}: {e}"))
}

/// The base-currency converter of a view.
pub fn with_converter<T>(view: &LedgerView, f: impl FnOnce(&BaseConverter<'_>) -> T) -> T {
    let fx: FxTable = view.fx();
    let conv = BaseConverter {
        base: view.facts.base_currency,
        table: &fx,
    };
    f(&conv)
}

/// Payment behaviour of every customer with an invoice, as of the view's
/// day, in the base currency (the numbers of `arflow report customers`).
pub fn behaviour(view: &LedgerView) -> Result<Arc<CustomerBehaviorReport>, AppError> {
    view.memo
        .behaviour
        .get_or_init(|| {
            with_converter(view, |conv| {
                customer_behavior(&Ledger::new(&view.facts), conv, view.today, None)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
        })
        .clone()
        .map_err(|e| cannot("payment behaviour cannot be computed", e))
}

// ---------------------------------------------------------------------------
// Predictions

/// One open invoice as the payment model sees it.
#[derive(Debug, Clone)]
pub struct InvoiceScore {
    /// Expected cost of waiting, base minor units (a score, not money owed).
    pub score: f64,
    /// The reasons in one sentence.
    pub explanation: String,
    pub expected_pay_date: Date,
}

/// The open book scored by the organization's latest model, as
/// `arflow forecast` and `arflow worklist` compute it.
#[derive(Debug)]
pub struct Predicted {
    pub version: i64,
    pub as_of: Date,
    pub currency: Currency,
    pub open_total: i64,
    /// Cumulative expected receipts over the next 30, 60 and 90 days.
    pub totals: Vec<ForecastBucket>,
    pub beyond: i64,
    /// By invoice number.
    pub invoices: HashMap<String, InvoiceScore>,
    /// Sum of the invoice scores, by customer key.
    pub customers: HashMap<String, f64>,
}

/// Whether predictions are available.
#[derive(Debug, Clone)]
pub enum Prediction {
    /// No model was trained yet.
    NoModel,
    Ready(Arc<Predicted>),
    /// The latest model could not score the book (shown, with the fallback).
    Failed {
        version: i64,
        error: String,
    },
}

impl Prediction {
    fn version(&self) -> Option<i64> {
        match self {
            Prediction::NoModel => None,
            Prediction::Ready(p) => Some(p.version),
            Prediction::Failed { version, .. } => Some(*version),
        }
    }

    pub fn ready(&self) -> Option<&Arc<Predicted>> {
        match self {
            Prediction::Ready(p) => Some(p),
            _ => None,
        }
    }
}

/// The predictions for the view's day with the latest model: computed on
/// first use after the ledger, the day or the model changed. Runs store
/// calls: call it on the blocking pool. Predictions also read the dunning
/// history (reminders sent, promises, disputes), which does not change the
/// ledger version: a new dispute reaches the scores with the next ledger
/// change, the next day or the next model.
pub fn predicted(store: &dyn Store, view: &LedgerView) -> Result<Prediction, AppError> {
    let org = view.org.id;
    let Some(latest) = store.models(org)?.into_iter().map(|m| m.version).max() else {
        return Ok(Prediction::NoModel);
    };
    let mut slot = view
        .memo
        .predicted
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = slot.as_ref()
        && p.version() == Some(latest)
    {
        return Ok(p.clone());
    }
    let p = match score(store, view) {
        Ok(Some(p)) => Prediction::Ready(Arc::new(p)),
        Ok(None) => Prediction::NoModel,
        Err(error) => {
            tracing::warn!(org, version = latest, %error, "payment predictions failed");
            Prediction::Failed {
                version: latest,
                error,
            }
        }
    };
    *slot = Some(p.clone());
    Ok(p)
}

fn score(store: &dyn Store, view: &LedgerView) -> Result<Option<Predicted>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let Some(m) = latest_model(store, view.org.id).map_err(|e| err(&e))? else {
        return Ok(None);
    };
    let today = view.today;
    let inputs = PredictInputs::load(store, &view.org, today).map_err(|e| err(&e))?;
    let data = inputs.data().map_err(|e| err(&e))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let preds = m
        .model
        .score_open_threads(&data, today, threads)
        .map_err(|e| err(&e))?;
    let priorities = prioritize(&preds, &PriorityConfig::default());
    let forecast = cash_forecast(&m.model, &preds, &inputs.conv(), today).map_err(|e| err(&e))?;
    let expected: HashMap<i64, Date> = preds
        .iter()
        .map(|p| (p.invoice_id, p.expected_pay_date))
        .collect();
    let invoices = priorities
        .iter()
        .map(|pr| {
            (
                inputs.invoice_number(pr.invoice_id).to_string(),
                InvoiceScore {
                    score: pr.score,
                    explanation: pr.explanation.clone(),
                    expected_pay_date: expected.get(&pr.invoice_id).copied().unwrap_or(today),
                },
            )
        })
        .collect();
    let customers = customer_priorities(&priorities)
        .into_iter()
        .map(|(id, s)| (inputs.customer_key(id).to_string(), s))
        .collect();
    Ok(Some(Predicted {
        version: m.version,
        as_of: today,
        currency: forecast.currency,
        open_total: forecast.open_total,
        totals: forecast.totals,
        beyond: forecast.beyond,
        invoices,
        customers,
    }))
}

// ---------------------------------------------------------------------------
// What pauses dunning

/// The organization's holds, disputes and promises, with what is in force
/// today indexed by invoice and customer.
pub struct Pauses {
    pub holds: Vec<Stored<Hold>>,
    pub disputes: Vec<Stored<Dispute>>,
    pub promises: Vec<Stored<Promise>>,
    pub today: Date,
    pub now: Timestamp,
    held_customers: HashSet<String>,
    held_invoices: HashSet<String>,
    disputed_invoices: HashSet<String>,
    promised_customers: HashSet<String>,
    promised_invoices: HashSet<String>,
}

impl Pauses {
    /// Reads them from the store (blocking pool).
    pub fn load(
        store: &dyn Store,
        org: i64,
        today: Date,
        now: Timestamp,
    ) -> Result<Pauses, AppError> {
        let holds = store.holds(org)?;
        let disputes = store.disputes(org)?;
        let promises = store.promises(org)?;
        let mut p = Pauses {
            holds,
            disputes,
            promises,
            today,
            now,
            held_customers: HashSet::new(),
            held_invoices: HashSet::new(),
            disputed_invoices: HashSet::new(),
            promised_customers: HashSet::new(),
            promised_invoices: HashSet::new(),
        };
        for h in &p.holds {
            if h.is_active(today, now) {
                match &h.scope {
                    Scope::Customer(k) => p.held_customers.insert(k.clone()),
                    Scope::Invoice(n) => p.held_invoices.insert(n.clone()),
                };
            }
        }
        for d in &p.disputes {
            if d.is_open(now) {
                p.disputed_invoices.insert(d.invoice.clone());
            }
        }
        for pr in &p.promises {
            if promise_active(pr, today) {
                match &pr.scope {
                    Scope::Customer(k) => p.promised_customers.insert(k.clone()),
                    Scope::Invoice(n) => p.promised_invoices.insert(n.clone()),
                };
            }
        }
        Ok(p)
    }

    pub fn hold_active(&self, h: &Hold) -> bool {
        h.is_active(self.today, self.now)
    }

    /// An open dispute on the invoice (the ledger's own flag is separate).
    pub fn disputed(&self, invoice: &str) -> bool {
        self.disputed_invoices.contains(invoice)
    }

    /// An active hold on the invoice or its customer.
    pub fn on_hold(&self, invoice: &str, customer: &str) -> bool {
        self.held_invoices.contains(invoice) || self.held_customers.contains(customer)
    }

    /// An active promise on the invoice or its customer.
    pub fn promised(&self, invoice: &str, customer: &str) -> bool {
        self.promised_invoices.contains(invoice) || self.promised_customers.contains(customer)
    }

    pub fn active_hold_count(&self) -> usize {
        self.holds.iter().filter(|h| self.hold_active(h)).count()
    }

    pub fn open_dispute_count(&self) -> usize {
        self.disputes.iter().filter(|d| d.is_open(self.now)).count()
    }
}

/// A promise in force: not cancelled and its last day (promised date plus
/// grace) not past, as `arflow promise list` shows "active".
pub fn promise_active(p: &Promise, today: Date) -> bool {
    p.cancelled_at.is_none() && today <= p.last_day()
}

// ---------------------------------------------------------------------------
// Fields of queries and forms

/// The fields of a query string or a form, in order, repeated names kept
/// (`Query<Vec<(String, String)>>`, `Form<Vec<(String, String)>>`).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value, trimmed; `None` when missing or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first value as typed ("" when missing), to show it again.
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every non-blank value, trimmed.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// A checkbox or flag: present with 1/on/true/yes.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "on" | "true" | "yes"))
    }

    /// The values a form showed again after an error, by name (first value),
    /// without the CSRF token.
    pub fn echo(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        for (k, v) in &self.0 {
            if k != crate::access::CSRF_FIELD {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        m
    }
}

/// A `YYYY-MM-DD` field.
pub fn parse_date(field: &str, value: &str) -> Result<Date, AppError> {
    value.trim().parse::<Date>().map_err(|_| {
        AppError::invalid(
            field,
            Some(value),
            "is not a date (expected YYYY-MM-DD, e.g. 2026-12-31)",
        )
    })
}

/// A positive whole number (`page=`, ids).
pub fn parse_page(value: Option<&str>) -> Result<usize, AppError> {
    match value {
        None => Ok(1),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(AppError::invalid(
                "page",
                Some(v),
                "must be a whole number from 1",
            )),
        },
    }
}

// ---------------------------------------------------------------------------
// Links

/// Percent-encodes one URL component (path segment or query value).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `path?name=value&...`, blank values left out.
pub fn href(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// The customer page's address.
pub fn customer_href(key: &str) -> String {
    format!("/customers/{}", encode(key))
}

/// 303 to `path` with the confirmation `code` (see `pages::flash`).
pub fn done(path: &str, code: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}ok={code}")).into_response()
}

/// Pagination links for [`crate::pages`]' `pager` macro.
#[derive(Debug, Clone, Serialize)]
pub struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
    pub summary: String,
    pub page: usize,
    pub pages: usize,
}

/// The rows of page `page` (1-based, clamped to the last page) of `total`
/// rows, `per_page` each, and the links; `link(n)` is page n's address.
pub fn paginate(
    total: usize,
    page: usize,
    per_page: usize,
    what: &str,
    link: impl Fn(usize) -> String,
) -> (Range<usize>, Pager) {
    let pages = total.div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    let start = (page - 1) * per_page;
    let end = (start + per_page).min(total);
    let summary = if total == 0 {
        format!("No {what}")
    } else {
        format!(
            "{}–{} of {total} {what} · page {page} of {pages}",
            start + 1,
            end
        )
    };
    (
        start..end,
        Pager {
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            summary,
            page,
            pages,
        },
    )
}

/// A sortable column header: its link (toggling the direction when it is
/// the current sort) and its `aria-sort` state.
#[derive(Debug, Clone, Serialize)]
pub struct SortLink {
    pub href: String,
    /// "ascending", "descending" or "none".
    pub aria: &'static str,
    /// "asc", "desc" or "" (CSS class of the link).
    pub class: &'static str,
}

/// Builds the header links of `columns` (key, default direction when first
/// chosen) for the current `sort`/`desc`; `link(key, desc)` is the address.
pub fn sort_links(
    columns: &[(&'static str, bool)],
    sort: &str,
    desc: bool,
    link: impl Fn(&str, bool) -> String,
) -> HashMap<&'static str, SortLink> {
    columns
        .iter()
        .map(|&(key, first_desc)| {
            let current = key == sort;
            let next_desc = if current { !desc } else { first_desc };
            (
                key,
                SortLink {
                    href: link(key, next_desc),
                    aria: match (current, desc) {
                        (false, _) => "none",
                        (true, true) => "descending",
                        (true, false) => "ascending",
                    },
                    class: match (current, desc) {
                        (false, _) => "",
                        (true, true) => "desc",
                        (true, false) => "asc",
                    },
                },
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Dates, times and amounts as shown

/// `d + days`.
pub fn add_days(d: Date, days: i64) -> Result<Date, AppError> {
    d.checked_add(jiff::Span::new().days(days))
        .map_err(|e| AppError::Internal(format!("{d} + {days} days: {e}")))
}

/// "2026-12-03 10:00" in the organization's zone.
pub fn local_time(ts: Timestamp, tz: &TimeZone) -> String {
    tz.to_datetime(ts).strftime("%Y-%m-%d %H:%M").to_string()
}

/// The day of an instant in the organization's zone.
pub fn local_date(ts: Timestamp, tz: &TimeZone) -> Date {
    tz.to_datetime(ts).date()
}

/// The instant a day starts in the organization's zone (to order dated
/// ledger records among timestamped ones).
pub fn start_of(d: Date, tz: &TimeZone) -> Timestamp {
    d.to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// An amount exactly as `arflow report … --json` prints it: a plain decimal
/// string in major units.
pub fn amount_text(minor: i64, c: Currency) -> String {
    format_minor(minor, c)
}

/// A ratio (days, percent) exactly as `arflow report … --json` prints it:
/// the JSON number rounded to 2 decimals (`ratio_json` in the CLI), or
/// `null` when undefined.
pub fn ratio_text(v: Option<f64>) -> String {
    match v {
        Some(x) => serde_json::json!((x * 100.0).round() / 100.0).to_string(),
        None => "null".to_string(),
    }
}

/// "1,234.56 USD".
pub fn money(minor: i64, c: Currency) -> String {
    format!(
        "{} {}",
        arflow_domain::money::format_minor_grouped(minor, c),
        c.code()
    )
}

/// A ratio for people: one decimal, "—" when undefined.
pub fn one_decimal(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.1}"),
        _ => "—".to_string(),
    }
}

/// A record's numeric id from the last path segment (`/holds/{id}/end`):
/// anything else names no record, so it answers the 404 page rather than
/// axum's plain-text 400.
pub struct RecordId(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RecordId {
    type Rejection = crate::problem::PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<RecordId, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| AppError::NotFound(format!("no such record: {e}")))?;
        raw.parse::<i64>()
            .map(RecordId)
            .map_err(|_| AppError::NotFound(format!("there is no record '{raw}'")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_print_like_the_cli() {
        assert_eq!(ratio_text(Some(45.678)), "45.68");
        assert_eq!(ratio_text(Some(45.0)), "45.0");
        assert_eq!(ratio_text(None), "null");
        assert_eq!(amount_text(123456, Currency::USD), "1234.56");
    }

    #[test]
    fn links_keep_filters_and_encode() {
        assert_eq!(
            href(
                "/invoices",
                &[("bucket", "90+"), ("q", ""), ("q2", "a b&c")]
            ),
            "/invoices?bucket=90%2B&q2=a%20b%26c"
        );
        assert_eq!(customer_href("C 1/x"), "/customers/C%201%2Fx");
    }

    #[test]
    fn pages_clamp_and_link() {
        let (r, p) = paginate(120, 3, 50, "invoices", |n| format!("/i?page={n}"));
        assert_eq!(r, 100..120);
        assert_eq!(p.prev.as_deref(), Some("/i?page=2"));
        assert_eq!(p.next, None);
        let (r, p) = paginate(120, 9, 50, "invoices", |n| format!("/i?page={n}"));
        assert_eq!((r, p.page), (100..120, 3));
        let (r, p) = paginate(0, 1, 50, "invoices", |n| format!("/i?page={n}"));
        assert_eq!((r, p.pages, p.summary.as_str()), (0..0, 1, "No invoices"));
    }

    #[test]
    fn fields_trim_and_repeat() {
        let f = Fields(vec![
            ("state".into(), "open".into()),
            ("state".into(), " overdue ".into()),
            ("q".into(), "  ".into()),
            ("disputed".into(), "1".into()),
        ]);
        assert_eq!(f.all("state"), vec!["open", "overdue"]);
        assert_eq!(f.get("q"), None);
        assert!(f.flag("disputed"));
        assert!(!f.flag("on_hold"));
    }
}
