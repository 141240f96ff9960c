//! Planner throughput: a seeded synthetic world of open invoices and
//! customers, planned in memory (no database), timed over several runs.
//!
//! cargo run --release -p arflow-dunning --example plan_bench -- [INVOICES] [CUSTOMERS] [RUNS]

use std::collections::HashMap;
use std::time::Instant;

use arflow_domain::dunning::planner::{PlanInput, plan};
use arflow_domain::dunning::records::{DunningSettings, StepKey, StepOutcome, StepRecord};
use arflow_domain::dunning::{DEFAULT_POLICY_TOML, parse_policy};
use arflow_domain::model::{ChannelPreferences, Contact, Customer, Invoice, InvoiceStatus};
use arflow_domain::money::Currency;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n_invoices = arg(1, 1_000_000);
    let n_customers = arg(2, 100_000);
    let runs = arg(3, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let now: Timestamp = "2026-12-01T09:00:00Z".parse().expect("instant");
    let today = jiff::civil::date(2026, 12, 1);
    let zones = [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Tokyo",
        "Europe/London",
        "America/Los_Angeles",
    ];
    let customers: Vec<Customer> = (0..n_customers)
        .map(|i| Customer {
            external_id: format!("C{i:06}"),
            name: format!("Customer {i}"),
            segment: Some(["smb", "mid", "enterprise"][i % 3].to_string()),
            tags: vec![],
            country: None,
            time_zone: Some(zones[i % zones.len()].to_string()),
            locale: Some("en".to_string()),
            currency: Currency::EUR,
            payment_terms_days: Some(30),
            credit_limit: None,
            collector: None,
            autopay: i % 17 == 0,
        })
        .collect();
    let contacts: Vec<Contact> = customers
        .iter()
        .map(|c| Contact {
            customer: c.external_id.clone(),
            external_id: format!("{}-ap", c.external_id),
            name: "Accounts payable".into(),
            email: Some(format!("ap@{}.example", c.external_id.to_lowercase())),
            phone: None,
            role: Some("billing".into()),
            is_primary: true,
            preferences: ChannelPreferences::default(),
        })
        .collect();
    let invoices: Vec<Invoice> = (0..n_invoices)
        .map(|i| {
            let due = today
                .checked_add(rng.random_range(-90i64..30).days())
                .expect("date");
            Invoice {
                number: format!("INV{i:08}"),
                customer: customers[rng.random_range(0..n_customers)]
                    .external_id
                    .clone(),
                external_id: None,
                source: "bench".into(),
                issue_date: due.checked_sub(30.days()).expect("date"),
                due_date: due,
                currency: Currency::EUR,
                total: rng.random_range(1_000..1_000_000),
                tax: 0,
                po_number: None,
                status: InvoiceStatus::Open,
                status_date: None,
                disputed: false,
                paperless: None,
            }
        })
        .collect();
    // Steady state: every step dated before today was done on its day, so
    // only the invoices whose step falls today (and 2 % that missed a day:
    // catch-up) are due. The default policy's days relative to due:
    let schedule = [-3i64, 0, 7, 15, 30, 45, 50];
    let mut steady = Vec::new();
    for inv in &invoices {
        let overdue = (today - inv.due_date).get_days() as i64;
        let missed = rng.random_bool(0.02);
        for (s, day) in schedule.iter().enumerate() {
            let on = inv.due_date.checked_add(day.days()).expect("date");
            if *day < overdue && !(missed && schedule.get(s + 1).is_none_or(|n| *n >= overdue)) {
                steady.push(StepRecord {
                    invoice: inv.number.clone(),
                    policy: "default".into(),
                    step: StepKey::Sequence { step: s as u32 },
                    done_on: on,
                    done_at: now,
                    outcome: StepOutcome::Enqueued {
                        message_key: String::new(),
                    },
                });
            }
        }
    }
    let open: Vec<i64> = invoices.iter().map(|i| i.total).collect();
    let allocations: Vec<Vec<(jiff::civil::Date, i64)>> = vec![Vec::new(); invoices.len()];
    let mut policies = HashMap::new();
    policies.insert(
        "default".to_string(),
        parse_policy(DEFAULT_POLICY_TOML, "default.toml").expect("default policy"),
    );
    let settings = DunningSettings {
        started_on: Some(jiff::civil::date(2026, 1, 1)),
        ..DunningSettings::default()
    };
    let first_run = DunningSettings::default();
    let tz = TimeZone::get("Europe/Berlin").expect("zone");
    for (label, settings, steps) in [
        ("steady state (a normal day)", &settings, &steady[..]),
        (
            "first run (nothing recorded yet: every invoice starts)",
            &first_run,
            &[][..],
        ),
    ] {
        let input = PlanInput {
            now,
            org_time_zone: &tz,
            settings,
            policies: &policies,
            assignments: &[],
            customers: &customers,
            contacts: &contacts,
            invoices: &invoices,
            open: &open,
            allocations: &allocations,
            holds: &[],
            disputes: &[],
            promises: &[],
            steps_done: steps,
            contact_log: &[],
            bounces: &[],
            charges: &[],
        };
        println!(
            "{label}: {n_invoices} open invoices, {n_customers} customers, {} step records",
            steps.len()
        );
        let mut best = f64::MAX;
        for run in 1..=runs {
            let t = Instant::now();
            let p = plan(&input).expect("plan");
            let secs = t.elapsed().as_secs_f64();
            best = best.min(secs);
            println!(
                "  run {run}: {:.3} s, {:.0} invoices/s, {} actions, {} decisions",
                secs,
                n_invoices as f64 / secs,
                p.actions.len(),
                p.decisions.len()
            );
        }
        println!(
            "  best: {best:.3} s = {:.0} invoices planned per second",
            n_invoices as f64 / best
        );
    }
}
