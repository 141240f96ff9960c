//! `arflow import KIND FILE`: CSV into the ledger, atomically.

use anyhow::Result;
use arflow_domain::allocation::AllocationOrder;
use arflow_import::{ImportOptions, ImportReport, RecordKind, import_file, load_mapping};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{ImportArgs, ImportKind};
use crate::context::Context;

pub fn run(ctx: &Context, args: &ImportArgs) -> Result<()> {
    let kind = match args.kind {
        ImportKind::Customers => RecordKind::Customers,
        ImportKind::Contacts => RecordKind::Contacts,
        ImportKind::Invoices => RecordKind::Invoices,
        ImportKind::CreditNotes => RecordKind::CreditNotes,
        ImportKind::Payments => RecordKind::Payments,
    };
    let order_name = args
        .allocation_order
        .clone()
        .or_else(|| ctx.config.import.allocation_order.clone());
    let allocation_order = match order_name.as_deref() {
        None => AllocationOrder::default(),
        Some(name) => AllocationOrder::parse(name)
            .ok_or_else(|| anyhow::anyhow!("allocation order '{name}' is unknown (use oldest-due-first, oldest-issued-first or exact-amount-only)"))?,
    };
    let mapping = match &args.mapping {
        Some(p) => Some(load_mapping(p)?),
        None => None,
    };
    let mut opts = ImportOptions::new(kind, ctx.today()?);
    opts.mapping = mapping;
    opts.skip_invalid = args.skip_invalid;
    opts.allocation_order = allocation_order;

    // Drawn on stderr only when it is a terminal; hidden otherwise.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .map_err(|e| anyhow::anyhow!("progress bar template: {e}"))?
            .progress_chars("=> "),
    );
    bar.set_message(format!("reading {}", args.file.display()));
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let result = import_file(
        ctx.store.as_ref(),
        &ctx.org,
        &args.file,
        &opts,
        &ctx.actor(),
        ctx.clock.now(),
        &progress,
    );
    bar.finish_and_clear();
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn print_summary(r: &ImportReport) {
    println!(
        "{} {}: {} rows, {} inserted, {} updated, {} unchanged, {} skipped, {} rejected",
        r.kind.as_str(),
        r.file.display(),
        r.rows,
        r.inserted,
        r.updated,
        r.unchanged,
        r.skipped,
        r.rejected
    );
    if r.customers_created > 0 {
        println!("  {} customers created from the rows", r.customers_created);
    }
    if r.payments_created > 0 || r.allocations_created > 0 {
        println!(
            "  {} payments and {} allocations recorded",
            r.payments_created, r.allocations_created
        );
    }
    if !r.ignored_columns.is_empty() {
        println!("  ignored columns: {}", r.ignored_columns.join(", "));
    }
    if let Some(p) = &r.rejects_file {
        println!("  rejected rows written to {}", p.display());
    }
}
