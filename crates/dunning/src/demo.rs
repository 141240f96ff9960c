//! The demo ledger as one change set: what `arflow demo` and `arflow serve
//! --demo` load into an empty store, and what the web tests start from.

use arflow_demo::{DemoParams, generate};
use arflow_domain::Currency;
use arflow_domain::fx::{FxRate, RATE_SCALE, Rate};
use arflow_store::{Change, ChangeSet};

/// The seeded synthetic ledger of `params` with the FX rates its
/// currencies need, ready for `Store::apply`.
pub fn changes(params: &DemoParams) -> ChangeSet {
    let ledger = generate(params);
    let fx_rates = demo_rates(&ledger.invoices, params.base_currency, params.today);
    ChangeSet {
        customers: ledger.customers.into_iter().map(Change::Insert).collect(),
        contacts: ledger.contacts.into_iter().map(Change::Insert).collect(),
        invoices: ledger.invoices.into_iter().map(Change::Insert).collect(),
        credit_notes: ledger
            .credit_notes
            .into_iter()
            .map(Change::Insert)
            .collect(),
        payments: ledger.payments.into_iter().map(Change::Insert).collect(),
        allocations: ledger.allocations,
        fx_rates,
    }
}

/// Approximate value of one unit in US dollars, scaled by 10^6; the demo's
/// currencies only. Synthetic data, so fixed illustrative rates.
const USD_VALUE_E6: &[(&str, i128)] = &[
    ("USD", 1_000_000),
    ("EUR", 1_080_000),
    ("GBP", 1_270_000),
    ("JPY", 6_700),
    ("CAD", 730_000),
    ("AUD", 660_000),
    ("CHF", 1_130_000),
];

/// One rate into the base currency for every other currency the demo
/// invoices in, valid from two years before today, so totals can convert.
fn demo_rates(
    invoices: &[arflow_domain::model::Invoice],
    base: Currency,
    today: jiff::civil::Date,
) -> Vec<FxRate> {
    let value = |c: Currency| {
        USD_VALUE_E6
            .iter()
            .find(|(code, _)| *code == c.code())
            .map(|(_, v)| *v)
    };
    let mut currencies: Vec<Currency> = invoices
        .iter()
        .map(|i| i.currency)
        .filter(|c| *c != base)
        .collect();
    currencies.sort();
    currencies.dedup();
    let valid_on = today.saturating_sub(jiff::Span::new().years(3));
    currencies
        .into_iter()
        .filter_map(|c| {
            let (from, to) = (value(c)?, value(base)?);
            Some(FxRate {
                from: c,
                to: base,
                valid_on,
                rate: Rate(from * RATE_SCALE / to),
            })
        })
        .collect()
}
