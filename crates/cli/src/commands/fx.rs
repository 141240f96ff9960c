//! `arflow fx`: the dated exchange-rate table.

use anyhow::Result;
use arflow_domain::Currency;
use arflow_domain::fx::{FxRate, Rate};
use arflow_store::ChangeSet;

use crate::args::{FxArgs, FxCommand};
use crate::context::{Context, parse_date_arg};
use crate::output::Table;

pub fn run(ctx: &Context, args: &FxArgs) -> Result<()> {
    match &args.command {
        FxCommand::Set { from, to, rate, on } => {
            let from = Currency::parse(from)?;
            let to = Currency::parse(to)?;
            anyhow::ensure!(
                from != to,
                "an exchange rate needs two different currencies"
            );
            let rate = Rate::parse(rate)?;
            let valid_on = parse_date_arg("--on", on)?;
            let changes = ChangeSet {
                fx_rates: vec![FxRate {
                    from,
                    to,
                    valid_on,
                    rate,
                }],
                ..ChangeSet::default()
            };
            ctx.store
                .apply(ctx.org.id, &changes, &ctx.actor(), ctx.clock.now())?;
            println!(
                "1 {from} = {} {to} from {valid_on}",
                rate.to_decimal_string()
            );
        }
        FxCommand::List => {
            let mut t = Table::new(&["from", "to", "valid from", "rate"]);
            for r in ctx.store.fx_rates(ctx.org.id)? {
                t.row(vec![
                    r.from.to_string(),
                    r.to.to_string(),
                    r.valid_on.to_string(),
                    r.rate.to_decimal_string(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}
