//! The invoice list (`GET /invoices`): every invoice of the ledger view,
//! filtered (state, aging bucket, customer, segment, currency, disputed, on
//! hold, a search), sorted and paginated. The form is a plain GET form, so
//! every filtered list has an address and works without JavaScript.

use std::collections::{BTreeMap, BTreeSet};

use arflow_domain::money::Currency;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use serde::Serialize;

use super::common::{
    Fields, Pauses, customer_href, href, paginate, parse_page, sort_links, with_converter,
};
use crate::AppState;
use crate::access::Caller;
use crate::cache::{InvoiceRow, InvoiceState, LedgerView};
use crate::problem::{AppError, PageError};
use crate::routes::{Route, VIEWER};

pub fn routes() -> Vec<Route> {
    vec![Route::page(Method::GET, "/invoices", VIEWER, list)]
}

pub const PER_PAGE: usize = 50;

const ALL_STATES: [InvoiceState; 5] = [
    InvoiceState::Open,
    InvoiceState::Overdue,
    InvoiceState::Paid,
    InvoiceState::Void,
    InvoiceState::WrittenOff,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Due,
    Issue,
    Amount,
    Open,
    Days,
    Customer,
    Number,
}

/// (key, sort descending when first chosen)
const COLUMNS: [(&str, bool); 7] = [
    ("number", false),
    ("customer", false),
    ("issue", false),
    ("due", false),
    ("amount", true),
    ("open", true),
    ("days", true),
];

impl Sort {
    fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "due" => Sort::Due,
            "issue" => Sort::Issue,
            "amount" => Sort::Amount,
            "open" => Sort::Open,
            "days" => Sort::Days,
            "customer" => Sort::Customer,
            "number" => Sort::Number,
            _ => return None,
        })
    }

    fn key(self) -> &'static str {
        match self {
            Sort::Due => "due",
            Sort::Issue => "issue",
            Sort::Amount => "amount",
            Sort::Open => "open",
            Sort::Days => "days",
            Sort::Customer => "customer",
            Sort::Number => "number",
        }
    }

    fn default_desc(self) -> bool {
        matches!(self, Sort::Amount | Sort::Open | Sort::Days)
    }
}

/// The list's filters, as parsed from the query.
struct Filter {
    /// The `state` values as given ("" for the default open + overdue).
    state_param: String,
    states: Vec<InvoiceState>,
    bucket: String,
    customer: String,
    segment: String,
    currency: Option<Currency>,
    currency_param: String,
    disputed: bool,
    on_hold: bool,
    q: String,
    sort: Sort,
    desc: bool,
    page: usize,
}

impl Filter {
    fn parse(q: &Fields, buckets: &[String]) -> Result<Filter, AppError> {
        let given = q.all("state");
        let mut states = Vec::new();
        for v in given.iter().flat_map(|v| v.split(',')).map(str::trim) {
            if v.is_empty() {
                continue;
            }
            if v == "all" {
                states.extend(ALL_STATES);
                continue;
            }
            let s = InvoiceState::parse(v).ok_or_else(|| {
                AppError::invalid(
                    "state",
                    Some(v),
                    "is not an invoice state (open, overdue, paid, void, written_off or all)",
                )
            })?;
            states.push(s);
        }
        if states.is_empty() {
            states = vec![InvoiceState::Open, InvoiceState::Overdue];
        }
        states.sort_by_key(|s| ALL_STATES.iter().position(|x| x == s));
        states.dedup();
        let state_param = if states.len() == ALL_STATES.len() {
            "all".to_string()
        } else if states == [InvoiceState::Open, InvoiceState::Overdue] {
            String::new()
        } else {
            states
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let bucket = q.get("bucket").unwrap_or("").to_string();
        if !bucket.is_empty() && !buckets.contains(&bucket) {
            return Err(AppError::invalid(
                "bucket",
                Some(&bucket),
                format!("is not an aging bucket ({})", buckets.join(", ")),
            ));
        }
        let currency_param = q.get("currency").unwrap_or("").to_uppercase();
        let currency =
            if currency_param.is_empty() {
                None
            } else {
                Some(Currency::parse(&currency_param).map_err(|e| {
                    AppError::invalid("currency", Some(&currency_param), e.to_string())
                })?)
            };
        let sort = match q.get("sort") {
            None => Sort::Due,
            Some(s) => Sort::parse(s).ok_or_else(|| {
                AppError::invalid(
                    "sort",
                    Some(s),
                    "is not a column (number, customer, issue, due, amount, open, days)",
                )
            })?,
        };
        let desc = match q.get("dir") {
            None => sort.default_desc(),
            Some("asc") => false,
            Some("desc") => true,
            Some(d) => return Err(AppError::invalid("dir", Some(d), "must be asc or desc")),
        };
        Ok(Filter {
            state_param,
            states,
            bucket,
            customer: q.get("customer").unwrap_or("").to_string(),
            segment: q.get("segment").unwrap_or("").to_string(),
            currency,
            currency_param,
            disputed: q.flag("disputed"),
            on_hold: q.flag("on_hold"),
            q: q.get("q").unwrap_or("").to_string(),
            sort,
            desc,
            page: parse_page(q.get("page"))?,
        })
    }

    /// The list's address with these filters, sorted by `sort`, on `page`.
    fn link(&self, sort: &str, desc: bool, page: usize) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        let dir = match (Sort::parse(sort).map(Sort::default_desc), desc) {
            (Some(d), x) if d == x => "",
            (_, true) => "desc",
            (_, false) => "asc",
        };
        let sort = if sort == "due" && dir.is_empty() {
            ""
        } else {
            sort
        };
        href(
            "/invoices",
            &[
                ("state", &self.state_param),
                ("bucket", &self.bucket),
                ("customer", &self.customer),
                ("segment", &self.segment),
                ("currency", &self.currency_param),
                ("disputed", if self.disputed { "1" } else { "" }),
                ("on_hold", if self.on_hold { "1" } else { "" }),
                ("q", &self.q),
                ("sort", sort),
                ("dir", dir),
                ("page", &page),
            ],
        )
    }
}

/// Case-insensitive substring test; `needle` is already lower-case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return h.len() >= n.len()
            && h.windows(n.len())
                .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b));
    }
    hay.to_lowercase().contains(needle)
}

#[derive(Serialize)]
struct Row {
    number: String,
    customer: String,
    customer_name: String,
    customer_href: String,
    issue_date: String,
    due_date: String,
    currency: &'static str,
    total: i64,
    open: i64,
    days_overdue: i64,
    state: &'static str,
    bucket: Option<String>,
    disputed: bool,
    on_hold: bool,
    promised: bool,
}

#[derive(Serialize)]
struct CurrencyTotal {
    currency: &'static str,
    count: usize,
    total: i64,
    open: i64,
}

#[derive(Serialize)]
struct Opt {
    value: String,
    label: String,
    selected: bool,
}

fn opts(values: impl IntoIterator<Item = (String, String)>, current: &str) -> Vec<Opt> {
    values
        .into_iter()
        .map(|(value, label)| Opt {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let q = Fields(q);
    let buckets: Vec<String> = app
        .config
        .summary
        .aging
        .buckets()
        .into_iter()
        .map(|b| b.0)
        .collect();
    let f = Filter::parse(&q, &buckets)?;
    let view = super::ledger_view(&app, &caller).await?;
    let now = app.clock.now();
    let (view, pauses) = app
        .blocking(move |store| {
            let p = Pauses::load(store, view.org.id, view.today, now)?;
            Ok((view, p))
        })
        .await?;

    let matching = filter_rows(&view, &pauses, &f);
    let mut by_currency: BTreeMap<&'static str, CurrencyTotal> = BTreeMap::new();
    for r in &matching {
        let inv = &view.invoices[r.index];
        let t = by_currency
            .entry(inv.currency.code())
            .or_insert(CurrencyTotal {
                currency: inv.currency.code(),
                count: 0,
                total: 0,
                open: 0,
            });
        t.count += 1;
        t.total += inv.total;
        t.open += r.open;
    }
    let sorted = sort_rows(&view, matching, f.sort, f.desc);
    let (range, pager) = paginate(sorted.len(), f.page, PER_PAGE, "invoices", |n| {
        f.link(f.sort.key(), f.desc, n)
    });
    let rows: Vec<Row> = sorted[range]
        .iter()
        .map(|r| {
            let inv = &view.invoices[r.index];
            let cust = &view.customers[r.customer];
            Row {
                number: inv.number.clone(),
                customer: inv.customer.clone(),
                customer_name: cust.name.clone(),
                customer_href: customer_href(&inv.customer),
                issue_date: inv.issue_date.to_string(),
                due_date: inv.due_date.to_string(),
                currency: inv.currency.code(),
                total: inv.total,
                open: r.open,
                days_overdue: r.days_overdue,
                state: r.state.as_str(),
                bucket: r.bucket.clone(),
                disputed: inv.disputed || pauses.disputed(&inv.number),
                on_hold: pauses.on_hold(&inv.number, &inv.customer),
                promised: pauses.promised(&inv.number, &inv.customer),
            }
        })
        .collect();

    let heads = sort_links(&COLUMNS, f.sort.key(), f.desc, |k, d| f.link(k, d, 1));
    let segments: BTreeSet<String> = view
        .customers
        .iter()
        .filter_map(|c| c.segment.clone())
        .collect();
    let currencies: BTreeSet<&'static str> =
        view.invoices.iter().map(|i| i.currency.code()).collect();
    let state_options = opts(
        [
            ("", "Open and overdue"),
            ("open", "Open (not yet due)"),
            ("overdue", "Overdue"),
            ("paid", "Paid"),
            ("void", "Void"),
            ("written_off", "Written off"),
            ("all", "All states"),
        ]
        .into_iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .chain(
            // A combination given in the address stays selectable.
            (!matches!(
                f.state_param.as_str(),
                "" | "open" | "overdue" | "paid" | "void" | "written_off" | "all"
            ))
            .then(|| (f.state_param.clone(), f.state_param.replace(',', " + "))),
        ),
        &f.state_param,
    );
    let filtered = !(f.state_param.is_empty()
        && f.bucket.is_empty()
        && f.customer.is_empty()
        && f.segment.is_empty()
        && f.currency.is_none()
        && !f.disputed
        && !f.on_hold
        && f.q.is_empty());
    let customer_name = view.customer(&f.customer).map(|c| c.name.clone());
    let ctx = minijinja::context! {
        rows => rows,
        count => sorted.len(),
        totals => by_currency.into_values().collect::<Vec<_>>(),
        pager => pager,
        heads => heads,
        filtered => filtered,
        today => view.today.to_string(),
        f => minijinja::context! {
            state => f.state_param,
            bucket => f.bucket,
            customer => f.customer,
            customer_name => customer_name,
            customer_href => customer_href(&f.customer),
            segment => f.segment,
            currency => f.currency_param,
            disputed => f.disputed,
            on_hold => f.on_hold,
            q => f.q,
            sort => f.sort.key(),
            dir => if f.desc { "desc" } else { "asc" },
        },
        state_options => state_options,
        bucket_options => opts(
            std::iter::once((String::new(), "Any bucket".to_string()))
                .chain(buckets.iter().map(|b| (b.clone(), b.clone()))),
            &f.bucket,
        ),
        segment_options => opts(
            std::iter::once((String::new(), "Any segment".to_string()))
                .chain(segments.into_iter().map(|s| (s.clone(), s))),
            &f.segment,
        ),
        currency_options => opts(
            std::iter::once((String::new(), "Any currency".to_string()))
                .chain(currencies.into_iter().map(|c| (c.to_string(), c.to_string()))),
            &f.currency_param,
        ),
    };
    Ok(app.views.render(
        "invoices.html",
        super::chrome(
            &caller,
            &view.org.name,
            "invoices",
            "Invoices",
            super::flash(q.get("ok")),
            ctx,
        ),
    )?)
}

/// The rows passing the filter, in the view's order (due date, number).
fn filter_rows<'a>(view: &'a LedgerView, pauses: &Pauses, f: &Filter) -> Vec<&'a InvoiceRow> {
    let needle = f.q.to_lowercase();
    // Customers matching the search by key or name, once each.
    let customer_hit: Vec<bool> = view
        .customers
        .iter()
        .map(|c| {
            !needle.is_empty()
                && (contains_ci(&c.external_id, &needle) || contains_ci(&c.name, &needle))
        })
        .collect();
    let segment_ok: Vec<bool> = view
        .customers
        .iter()
        .map(|c| f.segment.is_empty() || c.segment.as_deref() == Some(f.segment.as_str()))
        .collect();
    view.rows
        .iter()
        .filter(|r| {
            let inv = &view.invoices[r.index];
            f.states.contains(&r.state)
                && (f.bucket.is_empty() || r.bucket.as_deref() == Some(f.bucket.as_str()))
                && (f.customer.is_empty() || inv.customer == f.customer)
                && segment_ok.get(r.customer).copied().unwrap_or(false)
                && f.currency.is_none_or(|c| inv.currency == c)
                && (!f.disputed || inv.disputed || pauses.disputed(&inv.number))
                && (!f.on_hold || pauses.on_hold(&inv.number, &inv.customer))
                && (needle.is_empty()
                    || customer_hit.get(r.customer).copied().unwrap_or(false)
                    || contains_ci(&inv.number, &needle))
        })
        .collect()
}

/// Sorted by the column (ascending or descending), ties in the view's order
/// (due date, number).
fn sort_rows<'a>(
    view: &LedgerView,
    rows: Vec<&'a InvoiceRow>,
    sort: Sort,
    desc: bool,
) -> Vec<&'a InvoiceRow> {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Key<'k> {
        Date(jiff::civil::Date, &'k str),
        Text(&'k str, &'k str),
        Num(i64),
    }
    let base = view.facts.base_currency;
    let lower_names: Vec<String> = if sort == Sort::Customer {
        view.customers
            .iter()
            .map(|c| c.name.to_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    let mut keyed: Vec<(Key<'_>, &'a InvoiceRow)> = with_converter(view, |conv| {
        rows.into_iter()
            .map(|r| {
                let inv = &view.invoices[r.index];
                // Amounts of several currencies compare in the base currency.
                let in_base = |minor: i64| {
                    if inv.currency == base {
                        minor
                    } else {
                        conv.to_base(minor, inv.currency, view.today)
                            .unwrap_or(minor)
                    }
                };
                let key = match sort {
                    Sort::Due => Key::Date(inv.due_date, &inv.number),
                    Sort::Issue => Key::Date(inv.issue_date, ""),
                    Sort::Number => Key::Text("", &inv.number),
                    Sort::Customer => Key::Text(
                        &lower_names[r.customer],
                        &view.customers[r.customer].external_id,
                    ),
                    Sort::Days => Key::Num(r.days_overdue),
                    Sort::Amount => Key::Num(in_base(inv.total)),
                    Sort::Open => Key::Num(in_base(r.open)),
                };
                (key, r)
            })
            .collect()
    });
    keyed.sort_by(|a, b| {
        let o = a.0.cmp(&b.0);
        if desc { o.reverse() } else { o }
    });
    keyed.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_search() {
        assert!(contains_ci("INV-00042", "inv-000"));
        assert!(contains_ci("Müller GmbH", "müller"));
        assert!(!contains_ci("Acme", "acne"));
        assert!(contains_ci("x", ""));
    }
}
