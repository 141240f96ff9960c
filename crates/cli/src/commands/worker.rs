//! `arflow worker`: plan on a schedule and deliver continuously until
//! interrupted (Ctrl-C / SIGTERM finish the current message, then exit).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use arflow_dunning::deliver::DeliveryOptions;
use arflow_dunning::worker::{WorkerLog, WorkerOptions, run_worker};
use jiff::SignedDuration;

use crate::args::WorkerArgs;
use crate::context::Context;
use crate::delivery;

pub(crate) struct StderrLog;

impl WorkerLog for StderrLog {
    fn info(&mut self, message: &str) {
        eprintln!(
            "{} {message}",
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
        );
    }
    fn error(&mut self, message: &str) {
        eprintln!(
            "{} error: {message}",
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
        );
    }
}

pub fn run(ctx: &Context, args: &WorkerArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let renderer = delivery::renderer(ctx)?;
    let courier = delivery::courier(ctx)?;
    let opts = WorkerOptions {
        plan_every: SignedDuration::from_mins(i64::from(args.plan_every_minutes.max(1))),
        idle: std::time::Duration::from_secs(u64::from(args.idle_seconds)),
        delivery: DeliveryOptions {
            batch: args.batch.max(1),
            lease: SignedDuration::from_secs(i64::from(args.lease_seconds.max(1))),
            ..DeliveryOptions::default()
        },
        once: args.once,
        retrain: !args.no_retrain && !args.deliver_only,
    };
    // Delivery serves every organization; planning the ones listed here.
    let orgs = if args.deliver_only {
        Vec::new()
    } else {
        vec![ctx.org.clone()]
    };
    if !args.once {
        eprintln!(
            "arflow worker: delivering {} (Ctrl-C to stop)",
            courier.describe()
        );
    }
    run_worker(
        ctx.store.as_ref(),
        &orgs,
        renderer.as_ref(),
        courier.as_ref(),
        ctx.clock.as_ref(),
        &opts,
        &stop,
        &mut StderrLog,
    );
    if stop.load(Ordering::SeqCst) {
        eprintln!("arflow worker: stopped");
    }
    Ok(())
}
