//! End-to-end payment prediction through the `arflow` binary on the demo
//! ledger: train, score, evaluate, forecast and its backtest, worklist,
//! alerts (as tasks, once per week), the owners' brief (its numbers equal the
//! reports'), the worker's retraining schedule, and the evaluation of IBM's
//! public sample through an import mapping. Runs on SQLite, or on a fresh
//! PostgreSQL database with ARFLOW_TEST_BACKEND=postgres.

mod support;

use serde_json::Value;
use support::Env;

const NOW: &str = "2026-11-30T10:00:00Z";

fn demo() -> Option<Env> {
    let env = Env::new()?;
    env.ok_at(
        NOW,
        &[
            "demo",
            "--customers",
            "60",
            "--invoices",
            "1500",
            "--today",
            "2026-11-30",
        ],
    );
    Some(env)
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

#[test]
fn predict_forecast_worklist_alerts_and_brief_on_the_demo() {
    let Some(env) = demo() else { return };

    // Scoring without a model trains (and stores) one first, saying so.
    let out = env
        .command()
        .env("ARFLOW_NOW", NOW)
        .args(["predict", "score", "--limit", "5", "--json"])
        .output()
        .expect("run arflow");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No payment model is stored yet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let score: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(score["model_version"], 1);
    let invoices = score["invoices"].as_array().expect("invoices");
    assert_eq!(invoices.len(), 5);
    assert!(score["open_invoices"].as_u64().expect("count") > 5);
    for inv in invoices {
        let p = num(&inv["p_late"]);
        let p30 = num(&inv["p_late_30"]);
        assert!((0.0..=1.0).contains(&p) && p30 <= p + 1e-9, "{inv}");
        let (p10, p50, p90) = (
            inv["pay_date_p10"].as_str().unwrap(),
            inv["pay_date_p50"].as_str().unwrap(),
            inv["pay_date_p90"].as_str().unwrap(),
        );
        assert!(p10 <= p50 && p50 <= p90, "{inv}");
        assert!(
            p10 >= "2026-11-30",
            "pay dates are after the as-of date: {inv}"
        );
        assert!(!inv["reasons"].as_str().unwrap().is_empty());
    }
    // Highest priority first.
    let prio: Vec<f64> = invoices
        .iter()
        .map(|i| i["priority"].as_str().unwrap().parse::<f64>().unwrap())
        .collect();
    assert!(prio.windows(2).all(|w| w[0] >= w[1]), "{prio:?}");
    // CSV and the table work too.
    let csv = env.ok_at(NOW, &["predict", "score", "--limit", "3", "--csv"]);
    assert!(csv.starts_with("invoice,customer,currency,open,due,p_late,p_late_30"));
    assert_eq!(csv.lines().count(), 4);

    // Training stores the next version with its card.
    let card = env.json_at(NOW, &["predict", "train", "--json"]);
    assert_eq!(card["model_version"], 2);
    assert!(card["invoices"].as_u64().unwrap() > 1000, "{card}");
    let models = env.json_at(NOW, &["predict", "models", "--json"]);
    assert_eq!(models.as_array().unwrap().len(), 2);
    assert_eq!(models[0]["version"], 2);

    // Evaluation on the organization's own history, next to the baselines.
    let eval = env.json_at(NOW, &["predict", "evaluate", "--json"]);
    assert!(num(&eval["auc"]) > 0.8, "{}", eval["auc"]);
    assert!(num(&eval["mae"]) > 0.0);
    assert_eq!(
        eval["baselines"]["days_to_settle"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let pk = &eval["precision_at_k"][0];
    assert!(num(&pk["priority"]) >= num(&pk["amount"]), "{pk}");

    // 13-week forecast with bands, 30/60/90-day totals.
    let fc = env.json_at(NOW, &["forecast", "--json"]);
    assert_eq!(fc["weeks"].as_array().unwrap().len(), 13);
    assert_eq!(fc["totals"].as_array().unwrap().len(), 3);
    let amount = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    for w in fc["weeks"].as_array().unwrap() {
        assert!(amount(&w["p10"]) <= amount(&w["expected"]) + 0.01);
        assert!(amount(&w["expected"]) <= amount(&w["p90"]) + 0.01);
    }
    let t = fc["totals"].as_array().unwrap();
    assert!(amount(&t[0]["expected"]) <= amount(&t[1]["expected"]));
    assert!(amount(&t[2]["expected"]) <= amount(&fc["open_total"]));
    let bt = env.json_at(NOW, &["forecast", "backtest", "--weeks", "4", "--json"]);
    assert_eq!(bt["as_of_dates"].as_array().unwrap().len(), 4);
    assert!(num(&bt["wape"]) < num(&bt["due_date_wape"]), "{bt}");

    // Worklist: customers by priority, with their invoices and reasons.
    let wl = env.json_at(NOW, &["worklist", "--limit", "3", "--json"]);
    let customers = wl["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 3);
    assert_eq!(customers[0]["rank"], 1);
    assert!(!customers[0]["invoices"].as_array().unwrap().is_empty());
    assert!(
        customers[0]["invoices"][0]["reasons"]
            .as_str()
            .unwrap()
            .contains("open")
    );

    // Alerts become tasks, once per alert and week.
    let a1 = env.json_at(NOW, &["alerts", "--json"]);
    let alerts = a1["alerts"].as_array().unwrap();
    assert!(
        !alerts.is_empty(),
        "the demo has invoices past their usual time"
    );
    assert!(alerts.iter().any(|a| a["kind"] == "late_vs_usual"));
    assert!(
        alerts
            .iter()
            .all(|a| a["key"].as_str().unwrap().starts_with("alert:"))
    );
    let opened = a1["tasks_opened"].as_u64().unwrap();
    assert!(opened > 0);
    let a2 = env.json_at(NOW, &["alerts", "--json"]);
    assert_eq!(a2["tasks_opened"], 0);
    assert_eq!(a2["already_open"].as_u64().unwrap(), opened);
    let tasks = env.ok_at(NOW, &["task", "list"]);
    assert!(tasks.contains("alert"), "{tasks}");

    // The brief's numbers are the reports' numbers.
    let brief = env.json_at(NOW, &["report", "brief", "--json"]);
    let summary = env.json_at(NOW, &["report", "summary", "--json"]);
    let earlier = env.json_at(
        NOW,
        &["report", "summary", "--as-of", "2026-10-31", "--json"],
    );
    assert_eq!(brief["total_ar"], summary["total_ar"]);
    assert_eq!(brief["overdue_ar"], summary["overdue_ar"]);
    assert_eq!(brief["dso"]["count_back_dso"], summary["count_back_dso"]);
    assert_eq!(
        brief["dso"]["count_back_dso_30_days_earlier"],
        earlier["count_back_dso"]
    );
    let fc = env.json_at(NOW, &["forecast", "--json"]);
    assert_eq!(brief["forecast"]["totals"], fc["totals"]);
    let collections = env.json_at(
        NOW,
        &["report", "collections", "--from", "2026-11-24", "--json"],
    );
    assert_eq!(
        brief["moved_to_overdue"]["invoice_count"],
        collections["moved_to_overdue"]["invoice_count"]
    );
    assert_eq!(
        brief["moved_to_overdue"]["amount"],
        collections["moved_to_overdue"]["amount"]
    );
    assert_eq!(brief["largest_risks"].as_array().unwrap().len(), 3);
    let wl = env.json_at(NOW, &["worklist", "--limit", "1", "--json"]);
    assert_eq!(
        brief["largest_risks"][0]["invoice"],
        wl["customers"][0]["invoices"][0]["invoice"]
    );
    assert_eq!(
        brief["automation_last_7_days"]["alerts"].as_u64().unwrap(),
        opened
    );
    let text = env.ok_at(NOW, &["report", "brief"]);
    assert!(
        text.contains("count-back DSO") && text.contains("next 30 days"),
        "{text}"
    );
}

#[test]
fn the_worker_trains_once_enough_is_settled_and_retrains_weekly() {
    let Some(env) = demo() else { return };
    let worker = ["worker", "--once", "--idle-seconds", "0"];
    let count = |now: &str| {
        env.json_at(now, &["predict", "models", "--json"])
            .as_array()
            .unwrap()
            .len()
    };
    env.ok_at(NOW, &worker);
    assert_eq!(count(NOW), 1, "first model trained by the worker");
    env.ok_at("2026-12-03T10:00:00Z", &worker);
    assert_eq!(count(NOW), 1, "a 3-day-old model is kept");
    env.ok_at("2026-12-08T10:00:01Z", &worker);
    assert_eq!(count(NOW), 2, "an 8-day-old model is replaced");
    // --no-retrain leaves it alone.
    env.ok_at(
        "2026-12-30T10:00:00Z",
        &["worker", "--once", "--idle-seconds", "0", "--no-retrain"],
    );
    assert_eq!(count(NOW), 2);
}

#[test]
fn evaluate_needs_history_and_reports_bad_input() {
    let Some(env) = Env::new() else { return };
    let err = env.fails(&["predict", "evaluate"]);
    assert!(err.contains("too few to evaluate"), "{err}");
    let err = env.fails(&["predict", "train"]);
    assert!(err.contains("could not train"), "{err}");
    let err = env.fails(&["predict", "score", "--as-of", "2026-13-01"]);
    assert!(err.contains("--as-of '2026-13-01' is not a date"), "{err}");
    let err = env.fails(&[
        "predict",
        "evaluate",
        "--data",
        "/nonexistent/file.csv",
        "--json",
    ]);
    assert!(err.contains("/nonexistent/file.csv"), "{err}");
}

#[test]
fn evaluate_on_ibm_sample_through_the_import_mapping() {
    let Some(sample) = arflow_store::testing::ibm_ar_sample() else {
        return;
    };
    let Some(env) = Env::new() else { return };
    let mapping =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ibm-ar.toml");
    let eval = env.json(&[
        "predict",
        "evaluate",
        "--data",
        sample.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--split-date",
        "2013-07-01",
        "--json",
    ]);
    assert_eq!(eval["test_invoices"], 536);
    let auc = num(&eval["auc"]);
    let mae = num(&eval["mae"]);
    eprintln!("IBM sample, split 2013-07-01: AUC {auc:.4}, MAE {mae:.3} days");
    assert!(auc >= 0.94, "AUC {auc}");
    let per_customer = eval["baselines"]["days_to_settle"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "customer's mean so far")
        .expect("per-customer baseline");
    assert!(mae < num(&per_customer["mae"]), "{eval}");
}

#[test]
fn a_dunning_step_that_did_not_fire_is_an_alert() {
    let Some(env) = demo() else { return };
    env.ok_at(NOW, &["dunning", "run"]);
    // Two weeks later, with no run since, steps are overdue: the automation
    // is not escalating.
    let later = "2026-12-15T10:00:00Z";
    let a = env.json_at(later, &["alerts", "--dry-run", "--json"]);
    let alerts = a["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|x| x["kind"] == "dunning_stalled"),
        "{a:#}"
    );
    assert_eq!(a["tasks_opened"], Value::Null, "--dry-run writes nothing");
    // Right after a run, nothing is stalled.
    env.ok_at(later, &["dunning", "run"]);
    let a = env.json_at(later, &["alerts", "--dry-run", "--json"]);
    assert!(
        a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["kind"] != "dunning_stalled"),
        "{a:#}"
    );
}
