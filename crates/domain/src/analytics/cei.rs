//! Collection Effectiveness Index (CEI).
//!
//! **Formula** (default variant, [`CeiVariant::PeriodSales`]):
//!
//! ```text
//! CEI = (B + S − E) / (B + S − C) × 100
//! ```
//!
//! where, for a period `[start, end]` (default: the calendar month containing
//! `as_of`, up to `as_of`):
//!
//! * `B` = beginning receivables: total open balance at the end of the day
//!   before `start`;
//! * `S` = credit sales: totals of invoices issued in the period;
//! * `E` = ending total receivables: total open balance at the end of `end`;
//! * `C` = ending current receivables: the part of `E` not yet past due
//!   (`due_date >= end`).
//!
//! This is the "whole-period sales" form: `S` is the period's total credit
//! sales, whatever the period's length.
//!
//! [`CeiVariant::AverageMonthlySales`] is the form that replaces `S` by the
//! average monthly credit sales `S / N`, `N` being the number of calendar
//! months the period touches:
//! `CEI = (B + S/N − E) / (B + S/N − C) × 100`. Both forms are computed with
//! exact integer arithmetic (`(B·N + S − E·N) / (B·N + S − C·N)`); only the
//! final ratio is a float.
//!
//! Write-offs lower `E` and therefore count as collected; voided invoices are
//! out of scope altogether (see the module docs of `analytics`).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::scope::Scope;
use super::{AnalyticsError, Period, ratio};
use crate::ledger::{BaseConverter, Ledger};
use crate::money::Currency;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeiVariant {
    /// `S` = total credit sales of the period (default).
    #[default]
    PeriodSales,
    /// `S / N`: average monthly credit sales over the `N` calendar months of the period.
    AverageMonthlySales,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeiReport {
    pub as_of: Date,
    pub currency: Currency,
    pub segment: Option<String>,
    pub period: Period,
    pub variant: CeiVariant,
    /// `N`: 1 for [`CeiVariant::PeriodSales`], calendar months of the period otherwise.
    pub months: u32,
    pub beginning_ar: i64,
    pub credit_sales: i64,
    pub ending_ar: i64,
    pub ending_current_ar: i64,
    /// CEI in percent; `None` when the denominator is zero.
    pub cei: Option<f64>,
}

/// CEI for `period` (default: month to date ending `as_of`); the period must end on or before `as_of`.
pub fn cei(
    ledger: &Ledger<'_>,
    conv: &BaseConverter<'_>,
    as_of: Date,
    period: Option<Period>,
    segment: Option<&str>,
    variant: CeiVariant,
) -> Result<CeiReport, AnalyticsError> {
    let period = period.unwrap_or_else(|| Period::month_to_date(as_of));
    let period = Period::new(period.start, period.end)?;
    period.check_known(as_of)?;
    let opening = period.opening_date()?;
    let scope = Scope::new(ledger, conv, as_of, segment);
    let (mut b, mut s, mut e, mut c) = (0i64, 0i64, 0i64, 0i64);
    for (i, f) in scope.invoices() {
        if f.issue_date > period.end {
            continue;
        }
        let total = scope.to_base(f.total, f.currency)?;
        if f.issue_date >= period.start {
            s += total;
        } else {
            b += scope.open_base_on(i, f, total, opening)?;
        }
        let end_open = scope.open_base_on(i, f, total, period.end)?;
        e += end_open;
        if f.due_date >= period.end {
            c += end_open;
        }
    }
    let n: u32 = match variant {
        CeiVariant::PeriodSales => 1,
        CeiVariant::AverageMonthlySales => period.calendar_months(),
    };
    let cei = cei_value(b, s, e, c, n);
    Ok(CeiReport {
        as_of,
        currency: scope.base(),
        segment: segment.map(str::to_string),
        period,
        variant,
        months: n,
        beginning_ar: b,
        credit_sales: s,
        ending_ar: e,
        ending_current_ar: c,
        cei,
    })
}

/// `(B·N + S − E·N) / (B·N + S − C·N) × 100`.
pub(crate) fn cei_value(b: i64, s: i64, e: i64, c: i64, n: u32) -> Option<f64> {
    let n = i128::from(n);
    let (b, s, e, c) = (i128::from(b), i128::from(s), i128::from(e), i128::from(c));
    ratio((b * n + s - e * n) * 100, b * n + s - c * n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::testkit::{Kit, assert_close, conv, d, usd};
    use crate::fx::FxTable;
    use crate::ledger::LedgerFacts;

    /// Beginning receivables 6,200, Q1 credit sales 10,890, ending total 6,340, ending current 3,590.
    fn q1_facts() -> LedgerFacts {
        let mut k = Kit::new();
        let a = k.invoice(1, d(2023, 12, 1), d(2023, 12, 31), usd(6_200));
        let c = k.invoice(2, d(2024, 1, 10), d(2024, 2, 9), usd(7_300));
        k.invoice(1, d(2024, 3, 15), d(2024, 4, 14), usd(3_590));
        k.pay(a, d(2024, 2, 10), usd(6_200));
        k.pay(c, d(2024, 3, 5), usd(4_550)); // 2,750 left, past due
        k.facts
    }

    /// Published examples, same inputs (Jan–Mar: beginning receivables 6,200, credit sales 10,890,
    /// ending total receivables 6,340, ending current receivables 3,590):
    /// * CreditGuru, "Ratio - Collection Effectiveness Index (CEI)",
    ///   http://www.creditguru.com/index.php/collection-management/collection-metrics/collection-effectiveness-index-cei
    ///   — uses monthly credit sales = credit sales / N with N = 3 months: CEI = 55.9 %.
    /// * WizEdu, "Sales on credit terms / A/R balance / Current / 31-60 …" (same ATB),
    ///   https://wizedu.com/questions/116374/sales-on-credit-terms-ar-balance-current-31-60-61
    ///   — uses the whole period's credit sales: (6200+10890−6340)/(6200+10890−3590) = 10750/13500 = 79.63 %.
    #[test]
    fn creditguru_and_wizedu_examples() {
        let facts = q1_facts();
        let table = FxTable::default();
        let l = Ledger::new(&facts);
        let q1 = Period::new(d(2024, 1, 1), d(2024, 3, 31)).unwrap();
        let r = cei(
            &l,
            &conv(&table),
            d(2024, 3, 31),
            Some(q1),
            None,
            CeiVariant::PeriodSales,
        )
        .unwrap();
        assert_eq!(
            (
                r.beginning_ar,
                r.credit_sales,
                r.ending_ar,
                r.ending_current_ar
            ),
            (usd(6_200), usd(10_890), usd(6_340), usd(3_590))
        );
        assert_close(r.cei.unwrap(), 79.63, 0.005);
        let r = cei(
            &l,
            &conv(&table),
            d(2024, 3, 31),
            Some(q1),
            None,
            CeiVariant::AverageMonthlySales,
        )
        .unwrap();
        assert_eq!(r.months, 3);
        assert_close(r.cei.unwrap(), 55.9, 0.05);
    }

    /// Hand-computed: the default period is March to date. B = 7,300 (C open on Feb 29),
    /// S = 3,590, E = 6,340, C = 3,590: (7300 + 3590 − 6340) / (7300 + 3590 − 3590) = 62.33 %.
    /// As of Mar 4 (before the payment of Mar 5): B = 7,300, S = 0, E = 7,300, C = 0 → 0 %.
    #[test]
    fn default_period_and_past_as_of() {
        let facts = q1_facts();
        let table = FxTable::default();
        let l = Ledger::new(&facts);
        let r = cei(
            &l,
            &conv(&table),
            d(2024, 3, 31),
            None,
            None,
            CeiVariant::default(),
        )
        .unwrap();
        assert_eq!(
            r.period,
            Period::new(d(2024, 3, 1), d(2024, 3, 31)).unwrap()
        );
        assert_close(r.cei.unwrap(), 4_550.0 / 7_300.0 * 100.0, 1e-9);
        let r = cei(
            &l,
            &conv(&table),
            d(2024, 3, 4),
            None,
            None,
            CeiVariant::default(),
        )
        .unwrap();
        assert_eq!(
            (r.beginning_ar, r.credit_sales, r.ending_ar),
            (usd(7_300), 0, usd(7_300))
        );
        assert_close(r.cei.unwrap(), 0.0, 1e-9);
        // segment filter: only customer 1 ("smb"): B = 0, S = 3,590, E = C = 3,590 → 0 / 0
        let r = cei(
            &l,
            &conv(&table),
            d(2024, 3, 31),
            None,
            Some("smb"),
            CeiVariant::default(),
        )
        .unwrap();
        assert_eq!(r.cei, None);
        let late = Period::new(d(2024, 3, 1), d(2024, 4, 30)).unwrap();
        assert!(matches!(
            cei(
                &l,
                &conv(&table),
                d(2024, 3, 31),
                Some(late),
                None,
                CeiVariant::default()
            ),
            Err(AnalyticsError::PeriodAfterAsOf { .. })
        ));
    }
}
