//! `arflow predict train|score|evaluate|models`, `arflow forecast [backtest]`
//! and `arflow worklist`: payment prediction on the organization's ledger.
//!
//! JSON amounts are decimal strings in major units (as in the reports);
//! probabilities are numbers in [0, 1].

use anyhow::{Context as _, Result};
use arflow_domain::Currency;
use arflow_domain::money::{format_minor, format_minor_grouped};
use arflow_domain::predict::forecast::CashForecast;
use arflow_domain::predict::priority::customer_priorities;
use arflow_domain::predict::{
    EvalConfig, InvoicePrediction, PaymentModel, PrecisionAtK, PredictData, Priority,
    PriorityConfig, RankBy, TrainSpec, backtest_forecast, cash_forecast, evaluate, precision_at_k,
    prioritize, train,
};
use arflow_dunning::predict::{
    PredictInputs, latest_model, parse_card, save_model, settled_count, train_as_of,
};
use arflow_store::Store;
use jiff::civil::Date;
use serde_json::{Value, json};

use crate::args::{
    ForecastArgs, ForecastCommand, GlobalArgs, PredictArgs, PredictCommand, WorklistArgs,
};
use crate::context::{Context, parse_date_arg};
use crate::output::{Table, print_csv};

use super::report::{amount, print_json};

pub fn run(ctx: &Context, args: &PredictArgs) -> Result<()> {
    match &args.command {
        PredictCommand::Train { json } => train_cmd(ctx, *json),
        PredictCommand::Score {
            as_of,
            limit,
            json,
            csv,
        } => score_cmd(ctx, as_of.as_deref(), *limit, *json, *csv),
        PredictCommand::Evaluate {
            split_date, json, ..
        } => {
            let today = ctx.today()?;
            let inputs = PredictInputs::load(ctx.store.as_ref(), &ctx.org, today)?;
            evaluate_inputs(&inputs, split_date.as_deref(), *json)
        }
        PredictCommand::Models { json } => models_cmd(ctx, *json),
    }
}

fn as_of_or_today(ctx: &Context, as_of: Option<&str>) -> Result<Date> {
    match as_of {
        Some(d) => parse_date_arg("--as-of", d),
        None => ctx.today(),
    }
}

fn add_days(d: Date, days: i64) -> Result<Date> {
    d.checked_add(jiff::Span::new().days(days))
        .with_context(|| format!("{d} + {days} days is out of range"))
}

/// The organization's ledger and dunning history, flattened for prediction.
pub(crate) struct Book {
    pub inputs: PredictInputs,
    pub data: PredictData,
}

pub(crate) fn load_book(ctx: &Context) -> Result<Book> {
    let today = ctx.today()?;
    let inputs = PredictInputs::load(ctx.store.as_ref(), &ctx.org, today)?;
    let data = inputs
        .data()
        .context("could not prepare the ledger for prediction")?;
    Ok(Book { inputs, data })
}

fn train_and_store(ctx: &Context, book: &Book) -> Result<(i64, PaymentModel)> {
    let today = ctx.today()?;
    let n = settled_count(&book.data, today);
    let model = train_as_of(&book.data, today)
        .with_context(|| format!("could not train a payment model on {n} settled invoices"))?;
    let version = save_model(
        ctx.store.as_ref(),
        ctx.org.id,
        &model,
        &ctx.actor(),
        ctx.clock.now(),
    )?;
    Ok((version, model))
}

/// The latest stored model, or a new one trained (and stored) first.
pub(crate) fn model_or_train(ctx: &Context, book: &Book) -> Result<(i64, PaymentModel)> {
    if let Some(m) = latest_model(ctx.store.as_ref(), ctx.org.id)? {
        return Ok((m.version, m.model));
    }
    eprintln!(
        "No payment model is stored yet: training one on the {} settled invoices first.",
        settled_count(&book.data, ctx.today()?)
    );
    train_and_store(ctx, book)
}

fn card_json(model: &PaymentModel, version: i64) -> Value {
    let mut v = serde_json::to_value(&model.card).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("model_version".into(), json!(version));
    }
    v
}

fn print_card(model: &PaymentModel, version: i64) {
    let c = &model.card;
    println!("Payment model version {version} ({})", c.version);
    println!(
        "  trained on {} settled invoices of {} customers, issued {}..{} (facts through {})",
        c.invoices,
        c.customers,
        c.trained_on_issued_from,
        c.trained_on_issued_to,
        c.features_through
    );
    println!(
        "  {:.1} % paid late; {} rows for days-to-pay, {:?} for the late heads",
        c.late_rate * 100.0,
        c.rows_days,
        c.rows_late
    );
    let h = &c.holdout;
    println!(
        "  holdout ({} rows): AUC(late) {}, Brier {}, MAE {} days",
        h.rows,
        opt3(h.auc_late),
        opt3(h.brier_late),
        h.mae_days.map_or("n/a".into(), |v| format!("{v:.2}"))
    );
    println!(
        "  trees: late heads {:?}, days {}, scale {}; seed {}",
        c.trees_late, c.trees_days, c.trees_scale, c.seed
    );
    let top: Vec<&str> = c
        .top_features
        .iter()
        .take(6)
        .map(|f| f.0.as_str())
        .collect();
    println!("  most used features: {}", top.join(", "));
}

fn opt3(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

fn train_cmd(ctx: &Context, json: bool) -> Result<()> {
    let book = load_book(ctx)?;
    let (version, model) = train_and_store(ctx, &book)?;
    if json {
        print_json(&card_json(&model, version))
    } else {
        print_card(&model, version);
        Ok(())
    }
}

fn models_cmd(ctx: &Context, json: bool) -> Result<()> {
    let models = ctx.store.models(ctx.org.id)?;
    if json {
        let v: Vec<Value> = models
            .iter()
            .map(|m| {
                let card: Value = serde_json::from_str(&m.card).unwrap_or(Value::Null);
                json!({"version": m.version, "created_at": m.created_at.to_string(), "card": card})
            })
            .collect();
        return print_json(&Value::Array(v));
    }
    if models.is_empty() {
        println!("No payment model stored yet (arflow predict train).");
        return Ok(());
    }
    let mut t = Table::new(&[
        "version",
        "trained at",
        "invoices",
        "issued",
        "holdout AUC",
        "holdout MAE",
    ]);
    for m in &models {
        let c = parse_card(&m.card)?;
        t.row(vec![
            m.version.to_string(),
            m.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            c.invoices.to_string(),
            format!("{}..{}", c.trained_on_issued_from, c.trained_on_issued_to),
            opt3(c.holdout.auc_late),
            c.holdout
                .mae_days
                .map_or("n/a".into(), |v| format!("{v:.2}")),
        ]);
    }
    t.print();
    Ok(())
}

/// Predictions and priorities of the open book at `as_of`.
pub(crate) struct Scored {
    pub book: Book,
    pub version: i64,
    pub model: PaymentModel,
    pub preds: Vec<InvoicePrediction>,
    pub priorities: Vec<Priority>,
}

pub(crate) fn score_book(ctx: &Context, as_of: Date) -> Result<Scored> {
    let book = load_book(ctx)?;
    let (version, model) = model_or_train(ctx, &book)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let preds = model
        .score_open_threads(&book.data, as_of, threads)
        .context("could not score the open invoices")?;
    let priorities = prioritize(&preds, &PriorityConfig::default());
    Ok(Scored {
        book,
        version,
        model,
        preds,
        priorities,
    })
}

/// One scored invoice, in words and numbers.
pub(crate) struct Row {
    pub invoice: String,
    pub customer: String,
    pub customer_name: String,
    pub currency: Currency,
    pub open: i64,
    pub open_base: i64,
    pub due: Date,
    pub days_overdue: i32,
    pub p_late: f64,
    pub p_late_30: f64,
    pub p10: Date,
    pub p50: Date,
    pub p90: Date,
    pub expected: Date,
    pub priority: f64,
    pub reasons: String,
}

pub(crate) fn rows(s: &Scored) -> Result<Vec<Row>> {
    let by_invoice: std::collections::HashMap<i64, &InvoicePrediction> =
        s.preds.iter().map(|p| (p.invoice_id, p)).collect();
    let mut out = Vec::with_capacity(s.priorities.len());
    for pr in &s.priorities {
        let Some(p) = by_invoice.get(&pr.invoice_id) else {
            continue;
        };
        let q = |x: f64| {
            add_days(
                p.issue_date,
                s.model.shape.quantile(&p.dist, x).round() as i64,
            )
        };
        out.push(Row {
            invoice: s.book.inputs.invoice_number(p.invoice_id).to_string(),
            customer: s.book.inputs.customer_key(p.customer_id).to_string(),
            customer_name: s.book.inputs.customer_name(p.customer_id).to_string(),
            currency: p.currency,
            open: p.open_minor,
            open_base: p.open_base,
            due: p.due_date,
            days_overdue: p.days_overdue,
            p_late: p.p_late[0],
            p_late_30: p.p_late[1],
            p10: q(0.1)?,
            p50: q(0.5)?,
            p90: q(0.9)?,
            expected: p.expected_pay_date,
            priority: pr.score,
            reasons: pr.explanation.clone(),
        });
    }
    Ok(out)
}

fn prob(p: f64) -> Value {
    json!((p * 1000.0).round() / 1000.0)
}

/// A priority score (base minor units × probability) as a base amount.
pub(crate) fn score_amount(score: f64, c: Currency) -> Value {
    amount(score.round() as i64, c)
}

pub(crate) fn row_json(r: &Row, base: Currency) -> Value {
    json!({
        "invoice": r.invoice,
        "customer": r.customer,
        "customer_name": r.customer_name,
        "currency": r.currency.code(),
        "open": amount(r.open, r.currency),
        "open_base": amount(r.open_base, base),
        "due_date": r.due.to_string(),
        "days_overdue": r.days_overdue,
        "p_late": prob(r.p_late),
        "p_late_30": prob(r.p_late_30),
        "pay_date_p10": r.p10.to_string(),
        "pay_date_p50": r.p50.to_string(),
        "pay_date_p90": r.p90.to_string(),
        "expected_pay_date": r.expected.to_string(),
        "priority": score_amount(r.priority, base),
        "reasons": r.reasons,
    })
}

fn score_cmd(
    ctx: &Context,
    as_of: Option<&str>,
    limit: Option<usize>,
    json: bool,
    csv: bool,
) -> Result<()> {
    let as_of = as_of_or_today(ctx, as_of)?;
    let s = score_book(ctx, as_of)?;
    let base = s.book.data.base_currency();
    let mut all = rows(&s)?;
    let total = all.len();
    if let Some(n) = limit {
        all.truncate(n);
    }
    if json {
        return print_json(&json!({
            "as_of": as_of.to_string(),
            "currency": base.code(),
            "model_version": s.version,
            "open_invoices": total,
            "invoices": all.iter().map(|r| row_json(r, base)).collect::<Vec<_>>(),
        }));
    }
    let header = [
        "invoice",
        "customer",
        "currency",
        "open",
        "due",
        "p_late",
        "p_late_30",
        "pay_p10",
        "pay_p50",
        "pay_p90",
        "expected_pay_date",
        "priority",
        "reasons",
    ];
    if csv {
        let body: Vec<Vec<String>> = all
            .iter()
            .map(|r| {
                vec![
                    r.invoice.clone(),
                    r.customer.clone(),
                    r.currency.code().to_string(),
                    format_minor(r.open, r.currency),
                    r.due.to_string(),
                    format!("{:.3}", r.p_late),
                    format!("{:.3}", r.p_late_30),
                    r.p10.to_string(),
                    r.p50.to_string(),
                    r.p90.to_string(),
                    r.expected.to_string(),
                    format_minor(r.priority.round() as i64, base),
                    r.reasons.clone(),
                ]
            })
            .collect();
        return print_csv(&header, &body);
    }
    println!(
        "Open invoices as of {as_of}, scored with model version {} ({} of {total} shown, highest priority first)",
        s.version,
        all.len()
    );
    let mut t = Table::new(&[
        "invoice", "customer", "open", "due", "P(late)", "P(30+)", "pays P10", "P50", "P90",
        "expected", "priority", "why",
    ])
    .numeric_from(2);
    for r in &all {
        t.row(vec![
            r.invoice.clone(),
            r.customer.clone(),
            format!(
                "{} {}",
                format_minor_grouped(r.open, r.currency),
                r.currency
            ),
            r.due.to_string(),
            format!("{:.0}%", r.p_late * 100.0),
            format!("{:.0}%", r.p_late_30 * 100.0),
            r.p10.to_string(),
            r.p50.to_string(),
            r.p90.to_string(),
            r.expected.to_string(),
            format_minor_grouped(r.priority.round() as i64, base),
            r.reasons.clone(),
        ]);
    }
    t.print();
    Ok(())
}

/// The default split: 75 % of the settled invoices (by issue date) train.
fn default_split(data: &PredictData) -> Result<Date> {
    let mut issued: Vec<Date> = (0..data.len())
        .filter(|&i| data.days_to_pay(i).is_some())
        .map(|i| data.issue_date(i))
        .collect();
    if issued.len() < 20 {
        anyhow::bail!(
            "only {} settled invoices: too few to evaluate (at least 20)",
            issued.len()
        );
    }
    issued.sort_unstable();
    Ok(issued[issued.len() * 3 / 4])
}

fn weekly(from: Date, to: Date) -> Result<Vec<Date>> {
    let mut v = Vec::new();
    let mut d = from;
    while d <= to {
        v.push(d);
        d = add_days(d, 7)?;
    }
    Ok(v)
}

fn pk_json(p: &PrecisionAtK) -> Value {
    json!({
        "k": p.k,
        "late_days": p.late_days,
        "dates": p.dates,
        "candidates": p.candidates,
        "positives": p.positives,
        "priority": p.of(RankBy::Priority),
        "amount": p.of(RankBy::Amount),
        "age": p.of(RankBy::Age),
    })
}

pub(crate) fn evaluate_inputs(
    inputs: &PredictInputs,
    split: Option<&str>,
    json: bool,
) -> Result<()> {
    let data = inputs
        .data()
        .context("could not prepare the ledger for prediction")?;
    let split = match split {
        Some(s) => parse_date_arg("--split-date", s)?,
        None => default_split(&data)?,
    };
    let (eval, model) = evaluate(&data, &EvalConfig::new(split))
        .with_context(|| format!("could not evaluate with the split at {split}"))?;
    // Ranking quality over weekly dates of the test period: of the k
    // invoices ranked first, how many ended up paid 30+ (and 1+) days late.
    let last_issue = (0..data.len())
        .map(|i| data.issue_date(i))
        .max()
        .unwrap_or(split);
    let dates = weekly(split, last_issue)?;
    let mut pk = Vec::new();
    for (k, head) in [(10, 1), (10, 0)] {
        pk.push(precision_at_k(&model, &data, &dates, k, head)?);
    }
    if json {
        let late_baselines: Vec<Value> = eval
            .late_baselines
            .iter()
            .map(|b| json!({"name": b.name, "auc": b.metrics.auc, "accuracy": b.metrics.accuracy, "brier": b.metrics.brier}))
            .collect();
        let days_baselines: Vec<Value> = eval
            .days_baselines
            .iter()
            .map(|b| json!({"name": b.name, "mae": b.metrics.mae, "rmse": b.metrics.rmse}))
            .collect();
        return print_json(&json!({
            "split_date": split.to_string(),
            "train_invoices": eval.train_invoices,
            "test_invoices": eval.test_invoices,
            "auc": eval.late.auc,
            "accuracy": eval.late.accuracy,
            "brier": eval.late.brier,
            "mae": eval.days.mae,
            "rmse": eval.days.rmse,
            "baselines": {"late": late_baselines, "days_to_settle": days_baselines},
            "calibration": eval.calibration,
            "precision_at_k": pk.iter().map(pk_json).collect::<Vec<_>>(),
            "card": eval.card,
        }));
    }
    println!("{}", eval.render());
    for p in &pk {
        println!(
            "precision@{} for paid > {} days late over {} weekly dates ({} candidates, {} positive): priority {}, amount {}, age {}",
            p.k,
            p.late_days,
            p.dates,
            p.candidates,
            p.positives,
            opt3(p.of(RankBy::Priority)),
            opt3(p.of(RankBy::Amount)),
            opt3(p.of(RankBy::Age))
        );
    }
    Ok(())
}

/// `predict evaluate --data FILE [--mapping MAP]`: import into a throwaway
/// SQLite database, then evaluate as on an organization's own history.
pub fn evaluate_file(
    _global: &GlobalArgs,
    data: &std::path::Path,
    mapping: Option<&std::path::Path>,
    split: Option<&str>,
    json: bool,
) -> Result<()> {
    use arflow_import::{ImportOptions, RecordKind, import_file, load_mapping};
    let clock = crate::context::clock_from_env()?;
    let now = clock.now();
    let dir = tempfile::tempdir().context("could not create a temporary directory")?;
    let store = arflow_store::sqlite::SqliteStore::open(&dir.path().join("evaluate.db"), now)?;
    let org = store.default_organization()?;
    let today = jiff::tz::TimeZone::UTC.to_datetime(now).date();
    let mapping = match mapping {
        Some(p) => Some(load_mapping(p)?),
        None => None,
    };
    let kind = mapping
        .as_ref()
        .and_then(|m| m.kind)
        .unwrap_or(RecordKind::Invoices);
    let mut opts = ImportOptions::new(kind, today);
    opts.mapping = mapping;
    let report = import_file(
        &store,
        &org,
        data,
        &opts,
        "predict-evaluate",
        now,
        &|_, _| {},
    )
    .with_context(|| format!("could not import {}", data.display()))?;
    if !json {
        println!(
            "Imported {} rows of {} into a temporary database ({} customers created, {} payments).",
            report.rows,
            data.display(),
            report.customers_created,
            report.payments_created
        );
    }
    let inputs = PredictInputs::load(&store, &org, today)?;
    evaluate_inputs(&inputs, split, json)
}

fn bucket_json(b: &arflow_domain::predict::ForecastBucket, c: Currency) -> Value {
    json!({
        "start": b.start.to_string(),
        "end": b.end.to_string(),
        "expected": amount(b.expected, c),
        "p10": amount(b.p10, c),
        "p90": amount(b.p90, c),
    })
}

pub(crate) fn forecast_json(f: &CashForecast, version: i64) -> Value {
    let c = f.currency;
    json!({
        "as_of": f.as_of.to_string(),
        "currency": c.code(),
        "model_version": version,
        "open_total": amount(f.open_total, c),
        "weeks": f.weeks.iter().map(|b| bucket_json(b, c)).collect::<Vec<_>>(),
        "totals": f.totals.iter().zip([30, 60, 90]).map(|(b, d)| {
            let mut v = bucket_json(b, c);
            v["days"] = json!(d);
            v
        }).collect::<Vec<_>>(),
        "beyond_90_days": amount(f.beyond, c),
    })
}

/// The 13-week forecast of the open book at `as_of`.
pub(crate) fn forecast_of(s: &Scored, as_of: Date) -> Result<CashForecast> {
    cash_forecast(&s.model, &s.preds, &s.book.inputs.conv(), as_of)
        .context("could not compute the cash forecast")
}

pub fn forecast(ctx: &Context, args: &ForecastArgs) -> Result<()> {
    if let Some(ForecastCommand::Backtest { weeks, json }) = &args.command {
        return backtest(ctx, *weeks, *json);
    }
    let as_of = as_of_or_today(ctx, args.as_of.as_deref())?;
    let s = score_book(ctx, as_of)?;
    let f = forecast_of(&s, as_of)?;
    if args.json {
        return print_json(&forecast_json(&f, s.version));
    }
    let c = f.currency;
    println!(
        "Cash forecast as of {as_of} ({c}): {} open on {} invoices (model version {})",
        format_minor_grouped(f.open_total, c),
        s.preds.len(),
        s.version
    );
    let mut t = Table::new(&["week", "from", "to", "expected", "P10", "P90"]).numeric_from(3);
    for (w, b) in f.weeks.iter().enumerate() {
        t.row(vec![
            (w + 1).to_string(),
            b.start.to_string(),
            b.end.to_string(),
            format_minor_grouped(b.expected, c),
            format_minor_grouped(b.p10, c),
            format_minor_grouped(b.p90, c),
        ]);
    }
    t.print();
    let mut t = Table::new(&["next", "expected", "P10", "P90"]).numeric_from(1);
    for (b, d) in f.totals.iter().zip([30, 60, 90]) {
        t.row(vec![
            format!("{d} days"),
            format_minor_grouped(b.expected, c),
            format_minor_grouped(b.p10, c),
            format_minor_grouped(b.p90, c),
        ]);
    }
    t.print();
    println!(
        "Expected after 90 days: {}",
        format_minor_grouped(f.beyond, c)
    );
    Ok(())
}

fn backtest(ctx: &Context, weeks: usize, json: bool) -> Result<()> {
    let today = ctx.today()?;
    let book = load_book(ctx)?;
    // The last as-of date is 13 weeks back, so every week it forecasts is over.
    let last = add_days(today, -91)?;
    let weeks = weeks.clamp(1, 520);
    let first = add_days(last, -7 * (weeks as i64 - 1))?;
    let dates = weekly(first, last)?;
    // Trained on what was known at the first as-of date, as it would have been.
    let spec = TrainSpec::settled_by(&book.data, add_days(first, -1)?);
    let model = train(&book.data, &spec, &Default::default()).with_context(|| {
        format!(
            "could not train on the {} invoices settled before {first}",
            spec.invoices.len()
        )
    })?;
    let r = backtest_forecast(&model, &book.data, &book.inputs.conv(), &dates)
        .context("could not run the backtest")?;
    if json {
        let c = book.data.base_currency();
        return print_json(&json!({
            "as_of_dates": r.as_of_dates.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "currency": c.code(),
            "wape": r.wape,
            "due_date_wape": r.due_date_wape,
            "improvement": r.improvement,
            "band_coverage": r.band_coverage,
            "weeks": r.weeks.iter().map(|w| json!({
                "week": w.week,
                "actual": amount(w.actual, c),
                "forecast": amount(w.forecast, c),
                "due_date_forecast": amount(w.due_date_forecast, c),
                "wape": w.wape,
                "due_date_wape": w.due_date_wape,
            })).collect::<Vec<_>>(),
        }));
    }
    println!("{}", r.render());
    Ok(())
}

pub fn worklist(ctx: &Context, args: &WorklistArgs) -> Result<()> {
    let as_of = as_of_or_today(ctx, args.as_of.as_deref())?;
    let s = score_book(ctx, as_of)?;
    let base = s.book.data.base_currency();
    let all = rows(&s)?;
    let customers = customer_priorities(&s.priorities);
    let list: Vec<(String, String, f64, Vec<&Row>)> = customers
        .iter()
        .take(args.limit)
        .map(|(cid, score)| {
            let key = s.book.inputs.customer_key(*cid).to_string();
            let invoices: Vec<&Row> = all.iter().filter(|r| r.customer == key).collect();
            (
                key,
                s.book.inputs.customer_name(*cid).to_string(),
                *score,
                invoices,
            )
        })
        .collect();
    if args.json {
        return print_json(&json!({
            "as_of": as_of.to_string(),
            "currency": base.code(),
            "model_version": s.version,
            "customers": list.iter().enumerate().map(|(rank, (key, name, score, inv))| json!({
                "rank": rank + 1,
                "customer": key,
                "name": name,
                "priority": score_amount(*score, base),
                "open_base": amount(inv.iter().map(|r| r.open_base).sum(), base),
                "invoices": inv.iter().map(|r| row_json(r, base)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }));
    }
    println!(
        "Worklist as of {as_of}: who to chase first (priority = open amount × P(30+ days late) × overdue weight, {base})"
    );
    for (rank, (key, name, score, inv)) in list.iter().enumerate() {
        println!(
            "{:>2}. {name} ({key}): priority {}, {} open on {} invoices",
            rank + 1,
            format_minor_grouped(score.round() as i64, base),
            format_minor_grouped(inv.iter().map(|r| r.open_base).sum(), base),
            inv.len()
        );
        for r in inv.iter().take(3) {
            println!("      {}: {}", r.invoice, r.reasons);
        }
    }
    Ok(())
}
