//! The dashboard summary behind `arflow report summary`: one struct bundling
//! the headline AR metrics as of a date.
//!
//! * total / current / overdue AR and percent current: from [`aging`] with the
//!   default buckets (percent current = current AR / total AR × 100);
//! * standard DSO, count-back DSO, BPDSO and ADD: from [`dso`] with
//!   `config.dso` (default: 90-day period, calendar-day count-back);
//! * CEI: from [`cei`] with `config.cei_variant` (default: whole-period credit
//!   sales) over the DSO period (default: the 90 days ending `as_of`), not the
//!   month to date, which is only a few days long early in a month.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::aging::{AgingBucket, AgingConfig, aging};
use super::cei::{CeiVariant, cei};
use super::dso::{DsoConfig, dso};
use super::{AnalyticsError, Period};
use crate::ledger::{BaseConverter, Ledger};
use crate::money::Currency;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SummaryConfig {
    pub aging: AgingConfig,
    pub dso: DsoConfig,
    pub cei_variant: CeiVariant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub as_of: Date,
    pub currency: Currency,
    pub segment: Option<String>,
    pub total_ar: i64,
    pub current_ar: i64,
    pub overdue_ar: i64,
    pub percent_current: Option<f64>,
    pub open_invoice_count: u64,
    pub overdue_invoice_count: u64,
    pub customers_with_balance: u64,
    pub customers_overdue: u64,
    /// Credit sales over the DSO period.
    pub credit_sales: i64,
    pub dso_period_days: u32,
    pub dso: Option<f64>,
    pub count_back_dso: f64,
    pub best_possible_dso: Option<f64>,
    pub average_days_delinquent: Option<f64>,
    pub cei_period: Period,
    pub cei: Option<f64>,
    /// The aging buckets behind the totals above (`config.aging`).
    pub aging: Vec<AgingBucket>,
}

pub fn summary(
    ledger: &Ledger<'_>,
    conv: &BaseConverter<'_>,
    as_of: Date,
    segment: Option<&str>,
    config: &SummaryConfig,
) -> Result<Summary, AnalyticsError> {
    let ag = aging(ledger, conv, as_of, segment, &config.aging)?;
    let d = dso(ledger, conv, as_of, segment, &config.dso)?;
    // CEI over the same trailing period as DSO: a month-to-date period is only
    // a few days long early in the month, which makes the index meaningless.
    let cei_period = Period::days_ending(as_of, config.dso.period_days)?;
    let c = cei(
        ledger,
        conv,
        as_of,
        Some(cei_period),
        segment,
        config.cei_variant,
    )?;
    Ok(Summary {
        as_of,
        currency: ag.currency,
        segment: segment.map(str::to_string),
        total_ar: ag.total,
        current_ar: ag.current,
        overdue_ar: ag.overdue,
        percent_current: ag.percent_current,
        open_invoice_count: ag.invoice_count,
        overdue_invoice_count: ag.overdue_invoice_count,
        customers_with_balance: ag.customers.len() as u64,
        customers_overdue: ag.customers.iter().filter(|c| c.overdue > 0).count() as u64,
        credit_sales: d.credit_sales,
        dso_period_days: d.period_days,
        dso: d.dso,
        count_back_dso: d.count_back.days,
        best_possible_dso: d.best_possible_dso,
        average_days_delinquent: d.average_days_delinquent,
        cei_period: c.period,
        aging: ag.buckets,
        cei: c.cei,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::testkit::{Kit, assert_close, conv, d};
    use crate::fx::FxTable;

    /// Hand-computed: as of 2024-03-31, A (1,000, due Mar 10, 400 paid) is overdue with 600 open,
    /// B (2,000 issued Mar 20, due Apr 19) is current. Total 2,600, percent current 76.92 %.
    /// 90-day sales = 3,000: DSO = 2,600 / 3,000 × 90 = 78, BPDSO = 60, ADD = 18.
    /// CEI (March): B = 1,000, S = 2,000, E = 2,600, C = 2,000: 400 / 1,000 = 40 %.
    #[test]
    fn summary_bundles_the_metrics() {
        let mut k = Kit::new();
        let a = k.invoice(1, d(2024, 2, 9), d(2024, 3, 10), 1_000);
        k.pay(a, d(2024, 3, 15), 400);
        k.invoice(2, d(2024, 3, 20), d(2024, 4, 19), 2_000);
        let table = FxTable::default();
        let s = summary(
            &Ledger::new(&k.facts),
            &conv(&table),
            d(2024, 3, 31),
            None,
            &SummaryConfig::default(),
        )
        .unwrap();
        assert_eq!(
            (s.total_ar, s.current_ar, s.overdue_ar),
            (2_600, 2_000, 600)
        );
        assert_close(s.percent_current.unwrap(), 2_000.0 / 2_600.0 * 100.0, 1e-9);
        assert_eq!(
            (
                s.open_invoice_count,
                s.overdue_invoice_count,
                s.customers_with_balance,
                s.customers_overdue
            ),
            (2, 1, 2, 1)
        );
        assert_close(s.dso.unwrap(), 78.0, 1e-9);
        assert_close(s.best_possible_dso.unwrap(), 60.0, 1e-9);
        assert_close(s.average_days_delinquent.unwrap(), 18.0, 1e-9);
        assert_close(s.cei.unwrap(), 40.0, 1e-9);
        // count-back: March sales 2,000 (31 days), then 600 / 1,000 of February's 29 days
        assert_close(s.count_back_dso, 31.0 + 0.6 * 29.0, 1e-9);
    }
}
