//! The long-running worker: plans on a schedule and delivers continuously.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arflow_domain::clock::Clock;
use arflow_domain::model::Organization;
use arflow_store::Store;
use jiff::{SignedDuration, Timestamp};

use crate::deliver::{Courier, DeliveryOptions, LedgerCache, deliver_batch};
use crate::predict::{Retrain, retrain_if_due};
use crate::render::Renderer;
use crate::run::run;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// How often the planner runs. Runs are idempotent, so often is safe;
    /// the planner itself decides what is due today.
    pub plan_every: SignedDuration,
    /// Pause between delivery passes when the outbox had nothing to do.
    pub idle: Duration,
    pub delivery: DeliveryOptions,
    /// Do one planning run and deliver until nothing is claimable, then stop.
    pub once: bool,
    /// At each planning pass, retrain the payment model when it is due
    /// (see [`crate::predict::retrain_if_due`]).
    pub retrain: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            plan_every: SignedDuration::from_mins(15),
            idle: Duration::from_secs(5),
            delivery: DeliveryOptions::default(),
            once: false,
            retrain: true,
        }
    }
}

/// What the worker reports as it goes (the CLI prints it, the server logs it).
pub trait WorkerLog {
    fn info(&mut self, message: &str);
    fn error(&mut self, message: &str);
}

/// Runs until `stop` is set (or, with `once`, until the outbox is drained).
/// Errors are reported and retried on the next pass rather than ending the
/// worker: a database restart must not stop dunning for good.
#[allow(clippy::too_many_arguments)]
pub fn run_worker(
    store: &dyn Store,
    orgs: &[Organization],
    renderer: &dyn Renderer,
    courier: &dyn Courier,
    clock: &dyn Clock,
    opts: &WorkerOptions,
    stop: &AtomicBool,
    log: &mut dyn WorkerLog,
) {
    let mut next_plan: Option<Timestamp> = None;
    let mut cache = LedgerCache::default();
    let actor = format!("worker:{}", opts.delivery.worker);
    while !stop.load(Ordering::SeqCst) {
        let now = clock.now();
        if next_plan.is_none_or(|t| now >= t) {
            for org in orgs {
                match run(store, org, now, renderer, &actor) {
                    Ok(r) => {
                        if r.written.actions > 0 || r.written.already_done > 0 {
                            log.info(&format!(
                                "{}: planned {} actions, queued {} messages and {} tasks ({} already done)",
                                org.slug,
                                r.planned_actions,
                                r.written.messages,
                                r.written.tasks,
                                r.written.already_done
                            ));
                        }
                    }
                    Err(e) => log.error(&format!("{}: dunning run failed: {e}", org.slug)),
                }
                if opts.retrain {
                    match retrain_if_due(store, org, now, &actor) {
                        Ok(Retrain::Trained { version, invoices }) => log.info(&format!(
                            "{}: trained payment model version {version} on {invoices} settled invoices",
                            org.slug
                        )),
                        Ok(_) => {}
                        Err(e) => log.error(&format!("{}: retraining failed: {e}", org.slug)),
                    }
                }
            }
            next_plan = now.checked_add(opts.plan_every).ok();
        }
        let busy = match deliver_batch(store, courier, &opts.delivery, clock, &mut cache) {
            Ok(r) => {
                if r.claimed > 0 || r.released.in_doubt > 0 || r.released.requeued > 0 {
                    log.info(&format!(
                        "delivery: {} claimed, {} sent, {} retried, {} failed, {} cancelled, {} outside the send window, {} released, {} in doubt",
                        r.claimed,
                        r.sent,
                        r.retried,
                        r.failed,
                        r.cancelled,
                        r.outside_window,
                        r.released.requeued,
                        r.released.in_doubt
                    ));
                }
                r.claimed > 0
            }
            Err(e) => {
                log.error(&format!("delivery failed: {e}"));
                false
            }
        };
        if opts.once && !busy {
            break;
        }
        if !busy {
            // Sleep in short slices so a stop request is honored quickly.
            let mut slept = Duration::ZERO;
            while slept < opts.idle && !stop.load(Ordering::SeqCst) {
                let step = Duration::from_millis(100).min(opts.idle - slept);
                std::thread::sleep(step);
                slept += step;
            }
        }
    }
}
