//! `arflow demo`: a realistic synthetic ledger, loaded into the store or written as CSV.

use anyhow::{Context as _, Result};
use arflow_demo::{CsvLayout, DemoParams, write_csv_as};

use crate::args::{DemoArgs, FormatArgs, ReportArgs, ReportName};
use crate::commands::report;
use crate::context::{Context, parse_date_arg};

pub fn run(ctx: &Context, args: &DemoArgs) -> Result<()> {
    let today = match &args.today {
        Some(d) => parse_date_arg("--today", d)?,
        None => ctx.today()?,
    };
    anyhow::ensure!(args.customers > 0, "--customers must be at least 1");
    let mut params = DemoParams::new(today);
    params.base_currency = ctx.org.base_currency;
    params.customers = args.customers;
    params.invoices = args.invoices;
    params.seed = args.seed;

    if let Some(dir) = &args.csv {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        let layout = if args.single_file {
            CsvLayout::InvoicesWithPaidDate
        } else {
            CsvLayout::Ledger
        };
        let c = write_csv_as(&params, dir, layout).with_context(|| {
            format!("could not write the demo CSV files into {}", dir.display())
        })?;
        println!(
            "wrote {} customers, {} contacts, {} invoices, {} credit notes, {} payments into {}",
            c.customers,
            c.contacts,
            c.invoices,
            c.credit_notes,
            c.payments,
            dir.display()
        );
        return Ok(());
    }

    let existing = ctx.store.ledger_facts(ctx.org.id)?.invoices.len();
    if existing > 0 {
        eprintln!(
            "the ledger already has {existing} invoices: not loading the demo again (use another --data-dir for a fresh demo)"
        );
    } else {
        let changes = arflow_dunning::demo::changes(&params);
        let applied = ctx
            .store
            .apply(ctx.org.id, &changes, "demo", ctx.clock.now())?;
        println!(
            "loaded the demo ledger (seed {}): {} customers, {} contacts, {} invoices, {} credit notes, {} payments, {} allocations",
            params.seed,
            applied.customers.inserted,
            applied.contacts.inserted,
            applied.invoices.inserted,
            applied.credit_notes.inserted,
            applied.payments.inserted,
            applied.allocations.inserted
        );
    }
    let summary = ReportArgs {
        report: ReportName::Summary,
        as_of: Some(today.to_string()),
        segment: None,
        from: None,
        months: 6,
        format: FormatArgs {
            json: false,
            csv: false,
        },
    };
    report::run(ctx, &summary)?;
    println!(
        "\nNext: `arflow dunning plan` shows which reminder each open invoice is due for and why; \
         `arflow dunning run` queues them and `arflow worker --once` delivers them \
         (to {} while no SMTP server is configured).",
        ctx.data_dir.join("mail").display()
    );
    Ok(())
}
