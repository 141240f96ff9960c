//! The overview, invoice, customer and worklist pages over HTTP against a
//! real store (SQLite, or PostgreSQL with ARFLOW_TEST_BACKEND=postgres)
//! loaded with the demo ledger: the numbers equal the domain's, filters and
//! sorting select what they say, and every action changes the store (and
//! nothing else, for a viewer or without the CSRF token).

mod support;

use std::collections::HashMap;

use arflow_domain::analytics::dso::{DsoConfig, dso_trend};
use arflow_domain::analytics::summary::{SummaryConfig, summary};
use arflow_domain::dunning::records::{Hold, Scope, Task, TaskKind, TaskStatus};
use arflow_domain::fx::FxTable;
use arflow_domain::ledger::{BaseConverter, Ledger};
use arflow_domain::model::{Customer, InvoiceStatus};
use arflow_domain::money::{Currency, DecimalStyle, Money, format_minor};
use arflow_store::{Change, ChangeSet, EventFilter, PlannedWrite, Store};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use support::{Browser, COLLECTOR, TestApp, VIEWER, spawn_app};

// ---------------------------------------------------------------------------
// Reading pages

/// Minimal entity decoding for attribute values and text.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The opening tag of the element with this id.
fn tag_with_id<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let i = html.find(&format!("id=\"{id}\""))?;
    let start = html[..i].rfind('<')?;
    let end = i + html[i..].find('>')?;
    Some(&html[start..=end])
}

fn attr_in(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let len = tag[i..].find('"')?;
    Some(unescape(&tag[i..i + len]))
}

/// An attribute of the element with this id.
fn attr(html: &str, id: &str, name: &str) -> String {
    tag_with_id(html, id)
        .and_then(|t| attr_in(t, name))
        .unwrap_or_else(|| panic!("no element #{id} with {name} in the page"))
}

/// The text between the element with this id and the next `end`.
fn section<'a>(html: &'a str, id: &str, end: &str) -> &'a str {
    let i = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[i..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// `(data-invoice, data-state)` of each row of the invoice table.
fn invoice_rows(html: &str) -> Vec<(String, String)> {
    if !html.contains("id=\"invoice-table\"") {
        return Vec::new();
    }
    let table = section(html, "invoice-table", "</table>");
    table
        .match_indices("<tr data-invoice=")
        .map(|(i, _)| {
            let tag = &table[i..i + table[i..].find('>').unwrap()];
            (
                attr_in(tag, "data-invoice").unwrap(),
                attr_in(tag, "data-state").unwrap(),
            )
        })
        .collect()
}

fn rel_link(html: &str, rel: &str) -> Option<String> {
    let i = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..i].rfind('<')?;
    attr_in(&html[start..i + 10], "href")
}

fn get_ok(b: &Browser, path: &str) -> String {
    let r = b.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.body
}

/// A POST answered with a redirect to `to` (prefix).
fn post_redirects(b: &Browser, path: &str, fields: &[(&str, &str)], to: &str) -> String {
    let r = b.post_form(path, fields);
    assert_eq!(r.status, 303, "POST {path}: {}", r.body);
    let location = r.location.expect("a redirect");
    assert!(location.starts_with(to), "{location} is not {to}");
    location
}

// ---------------------------------------------------------------------------
// Ground truth from the store

struct Truth {
    today: Date,
}

fn truth(app: &TestApp) -> Truth {
    let org = app.store.organization(app.org).unwrap().unwrap();
    let tz = TimeZone::get(&org.time_zone).unwrap();
    Truth {
        today: tz.to_datetime(support::now()).date(),
    }
}

/// Open balance today of every invoice, by number.
fn open_balances(app: &TestApp, today: Date) -> HashMap<String, i64> {
    let facts = app.store.ledger_facts(app.org).unwrap();
    let ledger = Ledger::new(&facts);
    let pos: HashMap<i64, usize> = ledger.invoices().map(|(i, f)| (f.id, i)).collect();
    app.store
        .invoices(app.org)
        .unwrap()
        .into_iter()
        .map(|inv| {
            let open = pos
                .get(&inv.id)
                .and_then(|&i| ledger.as_of(i, today))
                .map_or(0, |a| a.open);
            (inv.number.clone(), open)
        })
        .collect()
}

fn ratio(v: Option<f64>) -> String {
    match v {
        Some(x) => serde_json::json!((x * 100.0).round() / 100.0).to_string(),
        None => "null".to_string(),
    }
}

/// A customer with an overdue invoice: (customer key, invoice number).
fn overdue_invoice(app: &TestApp, today: Date) -> (String, String) {
    let open = open_balances(app, today);
    let mut invoices = app.store.invoices(app.org).unwrap();
    invoices.sort_by(|a, b| a.number.cmp(&b.number));
    let inv = invoices
        .into_iter()
        .find(|i| i.status == InvoiceStatus::Open && open[&i.number] > 0 && i.due_date < today)
        .expect("the demo has an overdue invoice");
    (inv.customer.clone(), inv.number.clone())
}

fn open_task(app: &TestApp, key: &str, customer: &str, invoices: Vec<String>, today: Date) {
    let task = Task {
        invoices,
        ..Task::open(
            key.to_string(),
            TaskKind::Step,
            customer,
            format!("Call {customer} about the overdue balance"),
            "The policy's call step: ask when they will pay.".to_string(),
            today,
            support::now(),
        )
    };
    app.store
        .record_run(
            app.org,
            &[PlannedWrite {
                steps: vec![],
                message: None,
                task: Some(task),
                charges: vec![],
            }],
            today,
            "test",
            support::now(),
        )
        .expect("open a task");
}

// ---------------------------------------------------------------------------
// Overview

#[test]
fn overview_numbers_are_the_summary_numbers() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let facts = app.store.ledger_facts(app.org).unwrap();
    let fx = FxTable::new(app.store.fx_rates(app.org).unwrap());
    let conv = BaseConverter {
        base: facts.base_currency,
        table: &fx,
    };
    let ledger = Ledger::new(&facts);
    let s = summary(&ledger, &conv, t.today, None, &SummaryConfig::default()).unwrap();
    let c = s.currency;

    let b = app.login(VIEWER);
    let html = get_ok(&b, "/");
    assert_eq!(attr(&html, "kpis", "data-as-of"), t.today.to_string());
    assert_eq!(attr(&html, "kpis", "data-currency"), c.code());
    let expect = [
        ("kpi-total-ar", format_minor(s.total_ar, c)),
        ("kpi-overdue-ar", format_minor(s.overdue_ar, c)),
        ("kpi-percent-current", ratio(s.percent_current)),
        ("kpi-count-back-dso", ratio(Some(s.count_back_dso))),
        ("kpi-dso", ratio(s.dso)),
        ("kpi-best-possible-dso", ratio(s.best_possible_dso)),
        (
            "kpi-average-days-delinquent",
            ratio(s.average_days_delinquent),
        ),
        ("kpi-cei", ratio(s.cei)),
    ];
    for (id, value) in &expect {
        assert_eq!(&attr(&html, id, "data-value"), value, "{id}");
    }
    assert!(
        s.total_ar > 0 && s.overdue_ar > 0,
        "the demo has receivables"
    );

    // The aging chart and its data, bucket by bucket.
    let aging = section(&html, "aging-chart", "</figure>");
    assert!(aging.contains("<svg"), "{aging}");
    for bucket in &s.aging {
        let table = section(&html, "aging-table", "</table>");
        assert!(
            table.contains(&format!(
                "data-bucket=\"{}\" data-value=\"{}\"",
                bucket.label,
                format_minor(bucket.amount, c)
            )),
            "bucket {} in {table}",
            bucket.label
        );
    }

    // The DSO trend: count-back DSO at each of the last 12 month-ends.
    let trend = dso_trend(&ledger, &conv, t.today, None, &DsoConfig::default(), 12).unwrap();
    let table = section(&html, "dso-trend-table", "</table>");
    assert_eq!(table.matches("data-month-end=").count(), 12);
    for p in &trend.points {
        assert!(
            table.contains(&format!(
                "data-month-end=\"{}\" data-value=\"{}\"",
                p.date,
                ratio(Some(p.count_back_dso))
            )),
            "{} in {table}",
            p.date
        );
    }
    assert!(section(&html, "dso-trend-chart", "</figure>").contains("<svg"));

    // Inflows by due date: no model yet.
    assert_eq!(attr(&html, "inflows", "data-basis"), "due_date");
    assert!(html.contains("by due date (no payment model trained yet)"));
    let open = open_balances(&app, t.today);
    let mut due = [0i64; 3];
    for inv in app.store.invoices(app.org).unwrap() {
        let o = open[&inv.number];
        if inv.status != InvoiceStatus::Open || o <= 0 {
            continue;
        }
        let day = inv.due_date.max(t.today.tomorrow().unwrap());
        let days = (day - t.today).get_days();
        for (k, h) in [30, 60, 90].into_iter().enumerate() {
            if days <= h {
                due[k] += conv.to_base(o, inv.currency, t.today).unwrap();
            }
        }
    }
    for (k, h) in [30, 60, 90].into_iter().enumerate() {
        assert_eq!(
            attr(&html, &format!("inflow-{h}"), "data-value"),
            format_minor(due[k], c),
            "inflow {h}"
        );
    }

    // Nothing needs a person in a fresh demo ledger; a task due today does.
    assert_eq!(attr(&html, "human-tasks", "data-count"), "0");
    let (customer, number) = overdue_invoice(&app, t.today);
    open_task(&app, "t/overview", &customer, vec![number], t.today);
    let html = get_ok(&b, "/");
    assert_eq!(attr(&html, "human-tasks", "data-count"), "1");
    assert!(html.contains(&format!("Call {customer} about the overdue balance")));
    // Reading the page twice gives the same numbers (memoized per view).
    assert_eq!(attr(&html, "kpi-total-ar", "data-value"), expect[0].1);
}

#[test]
fn overview_uses_the_payment_model_once_trained() {
    use arflow_domain::predict::cash_forecast;
    use arflow_dunning::predict::{PredictInputs, save_model, train_as_of};

    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let b = app.login(VIEWER);
    // The first view is computed without a model ...
    let html = get_ok(&b, "/");
    assert_eq!(attr(&html, "inflows", "data-basis"), "due_date");
    // ... a model trained afterwards is used on the next request.
    let org = app.store.organization(app.org).unwrap().unwrap();
    let inputs = PredictInputs::load(app.store.as_ref(), &org, t.today).unwrap();
    let data = inputs.data().unwrap();
    let model = train_as_of(&data, t.today).unwrap();
    let version = save_model(app.store.as_ref(), app.org, &model, "test", support::now()).unwrap();
    let preds = model.score_open(&data, t.today).unwrap();
    let f = cash_forecast(&model, &preds, &inputs.conv(), t.today).unwrap();

    let html = get_ok(&b, "/");
    assert_eq!(attr(&html, "inflows", "data-basis"), "predicted");
    assert_eq!(
        attr(&html, "inflows", "data-model-version"),
        version.to_string()
    );
    assert!(html.contains(&format!("predicted pay dates (model v{version})")));
    for (k, h) in [30, 60, 90].into_iter().enumerate() {
        assert_eq!(
            attr(&html, &format!("inflow-{h}"), "data-value"),
            format_minor(f.totals[k].expected, f.currency),
            "inflow {h}"
        );
    }

    // The worklist ranks by the model's priority too.
    let (customer, number) = overdue_invoice(&app, t.today);
    open_task(&app, "t/model", &customer, vec![number], t.today);
    let html = get_ok(&b, "/worklist");
    assert_eq!(attr(&html, "worklist-basis", "data-basis"), "predicted");
    assert!(html.contains(&format!("model v{version}")), "{html}");
}

// ---------------------------------------------------------------------------
// Invoices

#[test]
fn invoice_filters_search_sort_and_pages() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let open = open_balances(&app, t.today);
    let invoices = app.store.invoices(app.org).unwrap();
    let overdue: Vec<&str> = invoices
        .iter()
        .filter(|i| i.status == InvoiceStatus::Open && open[&i.number] > 0 && i.due_date < t.today)
        .map(|i| i.number.as_str())
        .collect();
    let open_or_overdue = invoices
        .iter()
        .filter(|i| i.status == InvoiceStatus::Open && open[&i.number] > 0)
        .count();
    assert!(!overdue.is_empty());
    let b = app.login(VIEWER);

    // Default: open and overdue.
    let html = get_ok(&b, "/invoices");
    assert_eq!(
        attr(&html, "invoice-totals", "data-count"),
        open_or_overdue.to_string()
    );
    let rows = invoice_rows(&html);
    assert_eq!(rows.len(), open_or_overdue.min(50));
    assert!(rows.iter().all(|(_, s)| s == "open" || s == "overdue"));

    // Overdue only.
    let html = get_ok(&b, "/invoices?state=overdue");
    assert_eq!(
        attr(&html, "invoice-totals", "data-count"),
        overdue.len().to_string()
    );
    let rows = invoice_rows(&html);
    assert_eq!(rows.len(), overdue.len().min(50));
    assert!(rows.iter().all(|(_, s)| s == "overdue"), "{rows:?}");

    // Every state, page by page: the pager keeps the filter and the pages
    // list every invoice once.
    let mut seen = Vec::new();
    let mut path = "/invoices?state=all".to_string();
    let mut pages = 0;
    loop {
        let html = get_ok(&b, &path);
        pages += 1;
        assert_eq!(
            attr(&html, "invoice-totals", "data-count"),
            invoices.len().to_string()
        );
        let rows = invoice_rows(&html);
        assert!(rows.len() <= 50);
        seen.extend(rows.into_iter().map(|r| r.0));
        match rel_link(&html, "next") {
            Some(next) => {
                assert!(next.contains("state=all"), "{next}");
                assert!(next.contains(&format!("page={}", pages + 1)), "{next}");
                path = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, invoices.len().div_ceil(50));
    let mut expected: Vec<String> = invoices.iter().map(|i| i.number.clone()).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected, "the pages list every invoice once");
    // Back from the last page.
    let html = get_ok(&b, &path);
    let prev = rel_link(&html, "prev").expect("a previous page");
    assert!(prev.contains("state=all"), "{prev}");

    // Search by number, case-insensitive.
    let one = overdue[0];
    let html = get_ok(&b, &format!("/invoices?state=all&q={}", one.to_lowercase()));
    let rows = invoice_rows(&html);
    assert_eq!(rows, vec![(one.to_string(), "overdue".to_string())]);

    // Search by customer name.
    let first = invoices.iter().find(|i| i.number == one).unwrap();
    let customer = app
        .store
        .customers(app.org)
        .unwrap()
        .into_iter()
        .find(|c| c.external_id == first.customer)
        .unwrap();
    let html = get_ok(
        &b,
        &format!(
            "/invoices?state=all&q={}",
            support_encode(&customer.name.to_uppercase())
        ),
    );
    let rows = invoice_rows(&html);
    let of_customer = invoices
        .iter()
        .filter(|i| i.customer == customer.external_id)
        .count();
    assert_eq!(
        attr(&html, "invoice-totals", "data-count"),
        of_customer.to_string(),
        "every invoice of {}",
        customer.name
    );
    assert!(!rows.is_empty());

    // Sort by days overdue, descending: non-increasing.
    let html = get_ok(&b, "/invoices?state=overdue&sort=days&dir=desc");
    let table = section(&html, "invoice-table", "</table>");
    let days: Vec<i64> = table
        .split("class=\"num days-late\">")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].trim().parse().unwrap())
        .collect();
    assert_eq!(days.len(), overdue.len().min(50));
    assert!(days.windows(2).all(|w| w[0] >= w[1]), "{days:?}");
    // The header link toggles the direction and keeps the filter.
    let link = attr(&html, "sort-days", "href");
    assert!(
        link.contains("state=overdue") && link.contains("dir=asc"),
        "{link}"
    );
    assert_eq!(attr(&html, "sort-days", "class"), "sort desc");

    // Sort by number ascending.
    let html = get_ok(&b, "/invoices?state=all&sort=number&dir=asc");
    let numbers: Vec<String> = invoice_rows(&html).into_iter().map(|r| r.0).collect();
    let mut sorted = numbers.clone();
    sorted.sort();
    assert_eq!(numbers, sorted);

    // Paid only.
    let html = get_ok(&b, "/invoices?state=paid");
    assert!(invoice_rows(&html).iter().all(|(_, s)| s == "paid"));

    // A bad filter is a clear 422.
    let r = b.get("/invoices?state=late");
    assert_eq!(r.status, 422);
    assert!(r.body.contains("state"), "{}", r.body);
}

fn support_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn disputed_and_on_hold_filters() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let (customer, number) = overdue_invoice(&app, t.today);
    let b = app.login(COLLECTOR);
    let href = format!("/customers/{}", support_encode(&customer));
    post_redirects(
        &b,
        &format!("{href}/disputes"),
        &[("invoice", &number), ("reason", "wrong quantity")],
        &href,
    );
    let html = get_ok(&b, "/invoices?disputed=1");
    let rows = invoice_rows(&html);
    assert!(rows.iter().any(|(n, _)| *n == number), "{rows:?}");
    let ledger_flagged = app
        .store
        .invoices(app.org)
        .unwrap()
        .iter()
        .filter(|i| i.disputed && i.number != number)
        .count();
    assert!(rows.len() <= 1 + ledger_flagged);

    post_redirects(
        &b,
        &format!("{href}/holds"),
        &[("scope", "customer"), ("reason", "talks")],
        &href,
    );
    let html = get_ok(&b, "/invoices?state=all&on_hold=1");
    let rows = invoice_rows(&html);
    let count: usize = attr(&html, "invoice-totals", "data-count").parse().unwrap();
    let of_customer = app
        .store
        .invoices(app.org)
        .unwrap()
        .iter()
        .filter(|i| i.customer == customer)
        .count();
    assert_eq!(
        count, of_customer,
        "a customer hold covers all its invoices"
    );
    assert!(rows.iter().any(|(n, _)| *n == number));
}

// ---------------------------------------------------------------------------
// Customers

#[test]
fn customer_list_and_page_with_timeline() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let (customer, number) = overdue_invoice(&app, t.today);
    let b = app.login(VIEWER);

    let html = get_ok(&b, "/customers");
    assert_eq!(attr(&html, "customer-totals", "data-count"), "25");
    assert!(html.contains(&format!("data-customer=\"{customer}\"")));
    let name = app
        .store
        .customers(app.org)
        .unwrap()
        .into_iter()
        .find(|c| c.external_id == customer)
        .unwrap()
        .name
        .clone();
    let html = get_ok(
        &b,
        &format!("/customers?q={}", support_encode(&name.to_lowercase())),
    );
    assert!(html.contains(&format!("data-customer=\"{customer}\"")));
    let html = get_ok(&b, "/customers?sort=open&dir=desc");
    let table = section(&html, "customer-table", "</table>");
    let opens: Vec<i64> = table
        .split("data-open=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect();
    assert!(opens.windows(2).all(|w| w[0] >= w[1]), "{opens:?}");

    open_task(&app, "t/page", &customer, vec![number.clone()], t.today);
    let page = get_ok(&b, &format!("/customers/{}", support_encode(&customer)));
    assert!(page.contains(&unescape_html_name(&name)) || page.contains(&name));
    let open_table = section(&page, "open-invoices", "</table>");
    assert!(open_table.contains(&format!("data-invoice=\"{number}\"")));
    let timeline = section(&page, "timeline", "</ol>");
    assert!(timeline.contains("kind-invoice"), "{timeline}");
    assert!(timeline.contains(&format!("Invoice {number} issued")));
    assert!(
        timeline.contains("kind-payment"),
        "payments and allocations"
    );
    assert!(timeline.contains("kind-task"), "the task");
    // Newest first.
    let times: Vec<&str> = timeline
        .split("<time class=\"when\" datetime=\"")
        .skip(1)
        .map(|s| &s[..10])
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    // A viewer sees no forms.
    assert!(!page.contains("id=\"note-form\""));
    assert!(page.contains("id=\"customer-policy\""));

    // Another organization's customer is not found.
    let other = app
        .store
        .create_organization("other", "Other Org", Currency::EUR, "UTC", support::now())
        .unwrap();
    seed_customer(app.store.as_ref(), other.id, "OTHER-1");
    let r = b.get("/customers/OTHER-1");
    assert_eq!(r.status, 404);
    let r = b.get("/customers/NO-SUCH");
    assert_eq!(r.status, 404);
}

fn unescape_html_name(name: &str) -> String {
    name.replace('&', "&amp;").replace('\'', "&#x27;")
}

fn seed_customer(store: &dyn Store, org: i64, key: &str) {
    store
        .apply(
            org,
            &ChangeSet {
                customers: vec![Change::Insert(Customer {
                    external_id: key.into(),
                    name: "Other Ltd".into(),
                    segment: None,
                    tags: vec![],
                    country: None,
                    time_zone: None,
                    locale: None,
                    currency: Currency::EUR,
                    payment_terms_days: None,
                    credit_limit: None,
                    collector: None,
                    autopay: false,
                })],
                ..ChangeSet::default()
            },
            "test",
            support::now(),
        )
        .unwrap();
}

#[test]
fn collector_adds_a_note_and_it_is_logged() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let (customer, number) = overdue_invoice(&app, t.today);
    let href = format!("/customers/{}", support_encode(&customer));
    let b = app.login(COLLECTOR);
    let page = get_ok(&b, &href);
    assert!(page.contains("id=\"note-form\""));

    let to = post_redirects(
        &b,
        &format!("{href}/notes"),
        &[
            ("body", "Spoke to <Ana>: pays Friday"),
            ("invoice", &number),
        ],
        &href,
    );
    assert!(to.ends_with("ok=note_added"), "{to}");
    let notes = app.store.notes(app.org, &customer).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "Spoke to <Ana>: pays Friday");
    assert_eq!(notes[0].author, COLLECTOR);
    assert_eq!(notes[0].invoice.as_deref(), Some(number.as_str()));
    let events = app
        .store
        .events(
            app.org,
            &EventFilter {
                customer: Some(customer.clone()),
                kind_prefix: Some("note.".into()),
                ..EventFilter::default()
            },
        )
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor, COLLECTOR);

    let page = get_ok(&b, &to);
    assert!(page.contains("Note added."));
    let timeline = section(&page, "timeline", "</ol>");
    assert!(
        timeline.contains("Spoke to &lt;Ana&gt;: pays Friday"),
        "escaped in the timeline"
    );
    assert!(timeline.contains(&format!("tl-note-{}", notes[0].id)));

    // An empty note: 422, the page again with the message and the choice kept.
    let r = b.post_form(
        &format!("{href}/notes"),
        &[("body", "   "), ("invoice", &number)],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("id=\"note-error\""), "{}", r.body);
    assert!(r.body.contains("The note is empty"));
    assert!(
        r.body
            .contains(&format!("<option value=\"{number}\" selected>"))
    );
    // An invoice of another customer: 422 too.
    let other_invoice = app
        .store
        .invoices(app.org)
        .unwrap()
        .into_iter()
        .find(|i| i.customer != customer)
        .unwrap();
    let r = b.post_form(
        &format!("{href}/notes"),
        &[("body", "x"), ("invoice", &other_invoice.number)],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("is not one of this customer"));
    assert_eq!(app.store.notes(app.org, &customer).unwrap().len(), 1);
}

#[test]
fn viewers_and_forged_forms_change_nothing() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let (customer, _) = overdue_invoice(&app, t.today);
    let href = format!("/customers/{}", support_encode(&customer));

    let viewer = app.login(VIEWER);
    let r = viewer.post_form(&format!("{href}/notes"), &[("body", "hello")]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = viewer.post_form(&format!("{href}/holds"), &[("reason", "x")]);
    assert_eq!(r.status, 403);

    let collector = app.login(COLLECTOR);
    let r = collector.post_form_raw(&format!("{href}/notes"), &[("body", "no token")]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = collector.post_form_raw(
        &format!("{href}/notes"),
        &[("body", "wrong token"), ("_csrf", "0000")],
    );
    assert_eq!(r.status, 403);
    assert!(app.store.notes(app.org, &customer).unwrap().is_empty());
    assert!(app.store.holds(app.org).unwrap().is_empty());
}

#[test]
fn holds_disputes_and_promises_from_the_customer_page() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let (customer, number) = overdue_invoice(&app, t.today);
    let href = format!("/customers/{}", support_encode(&customer));
    let b = app.login(COLLECTOR);

    // Hold: a past end date is refused, with what was typed kept.
    let r = b.post_form(
        &format!("{href}/holds"),
        &[
            ("scope", &number),
            ("reason", "customer on holiday"),
            ("until", "2020-01-01"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("id=\"hold-error\""));
    assert!(r.body.contains("value=\"customer on holiday\""));
    assert!(app.store.holds(app.org).unwrap().is_empty());
    // A missing reason too.
    let r = b.post_form(
        &format!("{href}/holds"),
        &[("scope", "customer"), ("reason", "")],
    );
    assert_eq!(r.status, 422);

    let until = t
        .today
        .checked_add(jiff::Span::new().days(14))
        .unwrap()
        .to_string();
    post_redirects(
        &b,
        &format!("{href}/holds"),
        &[
            ("scope", &number),
            ("reason", "customer on holiday"),
            ("until", &until),
        ],
        &format!("{href}?ok=hold_created"),
    );
    let holds = app.store.holds(app.org).unwrap();
    assert_eq!(holds.len(), 1);
    let h = &holds[0];
    assert_eq!(h.scope, Scope::Invoice(number.clone()));
    assert_eq!(h.created_by, COLLECTOR);
    assert_eq!(h.expires_on.map(|d| d.to_string()), Some(until.clone()));
    let page = get_ok(&b, &href);
    assert!(page.contains(&format!("id=\"hold-end-{}\"", h.id)));
    post_redirects(
        &b,
        &format!("/holds/{}/end", h.id),
        &[],
        &format!("{href}?ok=hold_ended"),
    );
    let h = &app.store.holds(app.org).unwrap()[0];
    assert!(h.ended_at.is_some());
    assert_eq!(h.ended_by.as_deref(), Some(COLLECTOR));
    // Lifting twice: the page explains, 409.
    let r = b.post_form(&format!("/holds/{}/end", h.id), &[]);
    assert_eq!(r.status, 409);
    assert!(r.body.contains("id=\"pause-error\""), "{}", r.body);

    // Another organization's hold is not found, and stays.
    let other = app
        .store
        .create_organization("other", "Other Org", Currency::EUR, "UTC", support::now())
        .unwrap();
    seed_customer(app.store.as_ref(), other.id, "OTHER-1");
    let foreign = app
        .store
        .create_hold(
            other.id,
            &Hold {
                scope: Scope::Customer("OTHER-1".into()),
                reason: "theirs".into(),
                created_at: support::now(),
                created_by: "them".into(),
                expires_on: None,
                ended_at: None,
                ended_by: None,
            },
            support::now(),
        )
        .unwrap();
    let r = b.post_form(&format!("/holds/{foreign}/end"), &[]);
    assert_eq!(r.status, 404);
    assert!(app.store.holds(other.id).unwrap()[0].ended_at.is_none());

    // Dispute: open, a second one is refused, resolve needs a resolution.
    post_redirects(
        &b,
        &format!("{href}/disputes"),
        &[("invoice", &number), ("reason", "goods damaged")],
        &format!("{href}?ok=dispute_opened"),
    );
    let disputes = app.store.disputes(app.org).unwrap();
    assert_eq!(disputes.len(), 1);
    assert_eq!(disputes[0].invoice, number);
    assert_eq!(disputes[0].opened_by, COLLECTOR);
    let r = b.post_form(
        &format!("{href}/disputes"),
        &[("invoice", &number), ("reason", "again")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("already has an open dispute"));
    let id = disputes[0].id;
    let r = b.post_form(&format!("/disputes/{id}/resolve"), &[("resolution", " ")]);
    assert_eq!(r.status, 422);
    assert!(r.body.contains("id=\"resolve-error\""));
    post_redirects(
        &b,
        &format!("/disputes/{id}/resolve"),
        &[("resolution", "credit note issued")],
        &format!("{href}?ok=dispute_resolved"),
    );
    let d = &app.store.disputes(app.org).unwrap()[0];
    assert_eq!(d.resolution.as_deref(), Some("credit note issued"));
    assert_eq!(d.resolved_by.as_deref(), Some(COLLECTOR));

    // Promise: an amount for two invoices is ambiguous; a past date refused.
    let invoices = app.store.invoices(app.org).unwrap();
    let open = open_balances(&app, t.today);
    let second = invoices
        .iter()
        .find(|i| i.customer == customer && i.number != number && open[&i.number] > 0)
        .map(|i| i.number.clone());
    let future = t
        .today
        .checked_add(jiff::Span::new().days(7))
        .unwrap()
        .to_string();
    if let Some(second) = &second {
        let r = b.post_form(
            &format!("{href}/promises"),
            &[
                ("invoice", &number),
                ("invoice", second),
                ("date", &future),
                ("amount", "10.00"),
            ],
        );
        assert_eq!(r.status, 422);
        assert!(r.body.contains("id=\"promise-error\""));
    }
    let r = b.post_form(
        &format!("{href}/promises"),
        &[("invoice", &number), ("date", "2020-01-01")],
    );
    assert_eq!(r.status, 422);
    let r = b.post_form(
        &format!("{href}/promises"),
        &[
            ("invoice", &number),
            ("date", &future),
            ("amount", "12.345.6"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(app.store.promises(app.org).unwrap().is_empty());

    post_redirects(
        &b,
        &format!("{href}/promises"),
        &[
            ("invoice", &number),
            ("date", &future),
            ("amount", "100.00"),
            ("grace", "2"),
            ("note", "by wire"),
        ],
        &format!("{href}?ok=promise_added"),
    );
    let promises = app.store.promises(app.org).unwrap();
    assert_eq!(promises.len(), 1);
    let p = &promises[0];
    assert_eq!(p.scope, Scope::Invoice(number.clone()));
    assert_eq!(p.promised_on.to_string(), future);
    assert_eq!(p.grace_days, 2);
    let currency = invoices
        .iter()
        .find(|i| i.number == number)
        .unwrap()
        .currency;
    let hundred = Money::parse("100.00", currency, DecimalStyle::POINT).unwrap();
    assert_eq!(p.amount, Some(hundred));
    assert_eq!(p.note.as_deref(), Some("by wire"));
    let page = get_ok(&b, &href);
    assert!(page.contains(&format!("id=\"promise-cancel-{}\"", p.id)));
    post_redirects(
        &b,
        &format!("/promises/{}/cancel", p.id),
        &[],
        &format!("{href}?ok=promise_cancelled"),
    );
    let p = &app.store.promises(app.org).unwrap()[0];
    assert!(p.cancelled_at.is_some());
    assert_eq!(p.cancelled_by.as_deref(), Some(COLLECTOR));

    // A promise on the whole account.
    post_redirects(&b, &format!("{href}/promises"), &[("date", &future)], &href);
    let promises = app.store.promises(app.org).unwrap();
    assert!(
        promises
            .iter()
            .any(|p| p.scope == Scope::Customer(customer.clone()) && p.amount.is_none())
    );

    // Everything shows in the timeline.
    let page = get_ok(&b, &href);
    let timeline = section(&page, "timeline", "</ol>");
    for kind in ["kind-hold", "kind-dispute", "kind-promise"] {
        assert!(timeline.contains(kind), "{kind}");
    }
    assert!(timeline.contains("Dispute on invoice"));
    assert!(timeline.contains("credit note issued"));
}

// ---------------------------------------------------------------------------
// Worklist

#[test]
fn worklist_assign_snooze_and_done() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let (customer, number) = overdue_invoice(&app, t.today);
    open_task(&app, "t/work", &customer, vec![number.clone()], t.today);
    let id = app.store.tasks(app.org, false).unwrap()[0].id;

    let viewer = app.login(VIEWER);
    let html = get_ok(&viewer, "/worklist");
    assert_eq!(attr(&html, "worklist-basis", "data-basis"), "amount_days");
    assert!(html.contains(&format!("id=\"task-{id}\"")));
    assert!(
        !html.contains(&format!("id=\"task-done-{id}\"")),
        "no actions for viewers"
    );
    let r = viewer.post_form(&format!("/tasks/{id}/done"), &[]);
    assert_eq!(r.status, 403);

    let b = app.login(COLLECTOR);
    let html = get_ok(&b, "/worklist");
    assert!(html.contains(&format!("id=\"task-assign-me-{id}\"")));
    assert!(html.contains("at stake"), "the reason in words");
    let mine = get_ok(&b, "/worklist?who=mine");
    assert!(!mine.contains(&format!("id=\"task-{id}\"")));

    // Assign to me.
    post_redirects(
        &b,
        &format!("/tasks/{id}/assign"),
        &[("assignee", COLLECTOR), ("back", "/worklist?who=mine")],
        "/worklist?who=mine&ok=task_assigned",
    );
    let task = app
        .store
        .tasks(app.org, false)
        .unwrap()
        .into_iter()
        .find(|x| x.id == id)
        .unwrap();
    assert_eq!(task.assignee.as_deref(), Some(COLLECTOR));
    let mine = get_ok(&b, "/worklist?who=mine");
    assert!(mine.contains(&format!("id=\"task-{id}\"")));
    assert_eq!(
        attr(&mine, &format!("task-{id}"), "data-assignee"),
        COLLECTOR
    );
    // To a viewer: refused.
    let r = b.post_form(&format!("/tasks/{id}/assign"), &[("assignee", VIEWER)]);
    assert_eq!(r.status, 422);
    // To the admin.
    post_redirects(
        &b,
        &format!("/tasks/{id}/assign"),
        &[("assignee", support::ADMIN)],
        "/worklist",
    );
    let task = app
        .store
        .tasks(app.org, false)
        .unwrap()
        .into_iter()
        .find(|x| x.id == id)
        .unwrap();
    assert_eq!(task.assignee.as_deref(), Some(support::ADMIN));

    // Snooze: hidden unless asked for.
    let r = b.post_form(
        &format!("/tasks/{id}/snooze"),
        &[("until", &t.today.to_string())],
    );
    assert_eq!(r.status, 422);
    let tomorrow = t.today.tomorrow().unwrap();
    post_redirects(
        &b,
        &format!("/tasks/{id}/snooze"),
        &[("until", &tomorrow.to_string())],
        "/worklist?ok=task_snoozed",
    );
    let task = app
        .store
        .tasks(app.org, false)
        .unwrap()
        .into_iter()
        .find(|x| x.id == id)
        .unwrap();
    assert_eq!(task.snoozed_until, Some(tomorrow));
    let html = get_ok(&b, "/worklist");
    assert!(!html.contains(&format!("id=\"task-{id}\"")));
    let html = get_ok(&b, "/worklist?snoozed=1");
    assert!(html.contains(&format!("id=\"task-{id}\"")));

    // Done with a note, kept on the customer.
    post_redirects(
        &b,
        &format!("/tasks/{id}/done"),
        &[("note", "Promised to pay Friday")],
        "/worklist?ok=task_done",
    );
    let task = app
        .store
        .tasks(app.org, true)
        .unwrap()
        .into_iter()
        .find(|x| x.id == id)
        .unwrap();
    assert_eq!(task.status, TaskStatus::Done);
    assert_eq!(task.completed_by.as_deref(), Some(COLLECTOR));
    let notes = app.store.notes(app.org, &customer).unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].body.contains("Promised to pay Friday"));
    assert_eq!(notes[0].invoice.as_deref(), Some(number.as_str()));
    // Done twice: a conflict.
    let r = b.post_form(&format!("/tasks/{id}/done"), &[]);
    assert_eq!(r.status, 409);
    // An unknown task: 404.
    let r = b.post_form("/tasks/999999/done", &[]);
    assert_eq!(r.status, 404);
    // Not a number: names no task either, and gets the HTML 404 page.
    let r = b.post_form("/tasks/abc/done", &[]);
    assert_eq!(r.status, 404);
    assert!(r.body.contains("<html"), "{}", r.body);

    // An open dispute is work too, resolved on the customer's page.
    let href = format!("/customers/{}", support_encode(&customer));
    post_redirects(
        &b,
        &format!("{href}/disputes"),
        &[
            ("invoice", &number),
            ("reason", "price differs from the order"),
        ],
        &href,
    );
    let dispute = app.store.disputes(app.org).unwrap()[0].id;
    let html = get_ok(&b, "/worklist");
    assert!(
        html.contains(&format!("id=\"dispute-{dispute}\"")),
        "{html}"
    );
    assert!(html.contains("Resolve the dispute on invoice"));
    let link = attr(&html, &format!("dispute-resolve-link-{dispute}"), "href");
    assert_eq!(link, format!("{href}#open-disputes"));
    let html = get_ok(&b, "/worklist?kind=dispute");
    assert!(html.contains(&format!("id=\"dispute-{dispute}\"")));
    let html = get_ok(&b, "/worklist?who=mine");
    assert!(!html.contains(&format!("id=\"dispute-{dispute}\"")));
}

#[test]
fn worklist_ranks_by_amount_at_stake_and_days() {
    let Some(app) = spawn_app() else { return };
    let t = truth(&app);
    let open = open_balances(&app, t.today);
    let base = app.store.ledger_facts(app.org).unwrap().base_currency;
    let mut overdue: Vec<_> = app
        .store
        .invoices(app.org)
        .unwrap()
        .into_iter()
        .filter(|i| {
            i.status == InvoiceStatus::Open
                && open[&i.number] > 0
                && i.due_date < t.today
                && i.currency == base
        })
        .collect();
    // The oldest and the newest overdue invoice of the base currency.
    overdue.sort_by_key(|i| (i.due_date, open[&i.number]));
    let small = overdue.last().unwrap();
    let big = overdue
        .iter()
        .rev()
        .find(|i| {
            (t.today - i.due_date).get_days() as i64 * open[&i.number]
                > (t.today - small.due_date).get_days() as i64 * open[&small.number]
        })
        .unwrap();
    open_task(
        &app,
        "t/small",
        &small.customer,
        vec![small.number.clone()],
        t.today,
    );
    open_task(
        &app,
        "t/big",
        &big.customer,
        vec![big.number.clone()],
        t.today,
    );
    let tasks = app.store.tasks(app.org, false).unwrap();
    let id_of = |k: &str| tasks.iter().find(|x| x.key == k).unwrap().id;
    let b = app.login(VIEWER);
    let html = get_ok(&b, "/worklist");
    assert_eq!(
        attr(&html, &format!("task-{}", id_of("t/big")), "data-rank"),
        "1"
    );
    assert_eq!(
        attr(&html, &format!("task-{}", id_of("t/small")), "data-rank"),
        "2"
    );
}

// ---------------------------------------------------------------------------
// Performance (run with `cargo test --release -p arflow-web --test pages --
// --ignored --nocapture`; ARFLOW_PERF_INVOICES sets the size, 100000 by
// default)

#[test]
#[ignore = "builds a 100k-invoice ledger; run on purpose, in release"]
fn pages_are_fast_on_a_large_ledger() {
    use std::time::{Duration, Instant};

    let invoices: usize = std::env::var("ARFLOW_PERF_INVOICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let started = Instant::now();
    let Some(app) = support::spawn_app_with(support::Seed {
        customers: (invoices / 40).max(25),
        invoices,
    }) else {
        return;
    };
    println!("seeded {invoices} invoices in {:?}", started.elapsed());
    let t = truth(&app);
    let (customer, number) = overdue_invoice(&app, t.today);
    open_task(&app, "t/perf", &customer, vec![number], t.today);

    // Logging in renders the overview once: the view and its numbers are
    // built then.
    let first = Instant::now();
    let b = app.login(VIEWER);
    println!(
        "first overview (builds the view and its numbers): {:?}",
        first.elapsed()
    );

    let time = |path: &str, n: usize| -> Vec<Duration> {
        let mut v: Vec<Duration> = (0..n)
            .map(|_| {
                let s = Instant::now();
                let r = b.get(path);
                let d = s.elapsed();
                assert_eq!(r.status, 200, "{path}");
                d
            })
            .collect();
        v.sort();
        v
    };
    let href = format!("/customers/{}", support_encode(&customer));
    let mut overview_median = Duration::ZERO;
    for path in [
        "/",
        "/invoices",
        "/invoices?state=all&sort=open&dir=desc&page=3",
        "/invoices?state=all&q=inv-0000",
        "/customers",
        href.as_str(),
        "/worklist",
    ] {
        // The first request of a page may compute what it memoizes.
        let once = time(path, 1)[0];
        let v = time(path, 15);
        let median = v[v.len() / 2];
        println!(
            "{path}: first {once:?}, then median {median:?}, max {:?}",
            v[v.len() - 1]
        );
        if path == "/" {
            overview_median = median;
        }
    }
    // A measurement, not a pass mark (BENCHMARKS.md records the figures;
    // no test may depend on this machine's speed).
    println!("overview median with {invoices} invoices: {overview_median:?} (target 50 ms)");
}
