//! Month-over-month roll rates between aging buckets.
//!
//! **Formula.** For consecutive month-ends `m-1 → m` and each bucket `b` but
//! the last (buckets from an [`AgingConfig`], default Current, 1-30, 31-60,
//! 61-90, 90+):
//!
//! ```text
//! roll(b → b+1) = Σ open balance at m of invoices in bucket b at m-1 and in bucket b+1 at m
//!               / Σ open balance at m-1 of invoices in bucket b at m-1
//! ```
//!
//! Membership is tracked invoice by invoice; an invoice paid, written off or
//! skipping a bucket does not roll. The report covers the last `months`
//! transitions, i.e. the last `months + 1` month-ends on or before `as_of`,
//! with the facts (voids) and FX rates known on `as_of`. It also gives each
//! roll's amount-weighted average over all transitions
//! (`Σ rolled / Σ from`).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::aging::AgingConfig;
use super::dso::month_ends;
use super::scope::Scope;
use super::{AnalyticsError, ratio};
use crate::ledger::{BaseConverter, Ledger};
use crate::money::Currency;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketRoll {
    pub from_bucket: String,
    pub to_bucket: String,
    /// Open balance in `from_bucket` at the earlier month-end.
    pub from_amount: i64,
    pub from_count: u64,
    /// Open balance at the later month-end of those invoices now in `to_bucket`.
    pub rolled_amount: i64,
    pub rolled_count: u64,
    /// `rolled_amount / from_amount` (a fraction, not a percentage); `None` when `from_amount == 0`.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollRateMonth {
    pub from: Date,
    pub to: Date,
    /// One per bucket but the last, in bucket order.
    pub rolls: Vec<BucketRoll>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollRateReport {
    pub as_of: Date,
    pub currency: Currency,
    pub segment: Option<String>,
    pub config: AgingConfig,
    pub buckets: Vec<String>,
    /// Oldest transition first.
    pub months: Vec<RollRateMonth>,
    /// Per bucket but the last: Σ rolled / Σ from over all transitions.
    pub average: Vec<Option<f64>>,
}

pub fn roll_rates(
    ledger: &Ledger<'_>,
    conv: &BaseConverter<'_>,
    as_of: Date,
    segment: Option<&str>,
    config: &AgingConfig,
    months: u32,
) -> Result<RollRateReport, AnalyticsError> {
    config.validate()?;
    if months == 0 {
        return Err(AnalyticsError::ZeroCount {
            what: "number of months",
        });
    }
    let ends = month_ends(as_of, months + 1)?;
    let scope = Scope::new(ledger, conv, as_of, segment);
    let nb = config.bucket_count();
    let nt = ends.len() - 1;
    // [transition][bucket]
    let mut from = vec![vec![(0i64, 0u64); nb - 1]; nt];
    let mut rolled = vec![vec![(0i64, 0u64); nb - 1]; nt];
    let mut state: Vec<(i64, usize)> = vec![(0, 0); ends.len()];
    for (i, f) in scope.invoices() {
        if f.issue_date > ends[nt] {
            continue;
        }
        let total = scope.to_base(f.total, f.currency)?;
        for (k, &e) in ends.iter().enumerate() {
            let open = if f.issue_date > e {
                0
            } else {
                scope.open_base_on(i, f, total, e)?
            };
            state[k] = (open, config.bucket_of(config.age(f, e)));
        }
        for t in 0..nt {
            let (open0, b0) = state[t];
            let (open1, b1) = state[t + 1];
            if open0 <= 0 || b0 + 1 >= nb {
                continue;
            }
            let fr = &mut from[t][b0];
            fr.0 += open0;
            fr.1 += 1;
            if open1 > 0 && b1 == b0 + 1 {
                let ro = &mut rolled[t][b0];
                ro.0 += open1;
                ro.1 += 1;
            }
        }
    }
    let labels: Vec<String> = config.buckets().into_iter().map(|b| b.0).collect();
    let mut out = Vec::with_capacity(nt);
    for t in 0..nt {
        let rolls = (0..nb - 1)
            .map(|b| BucketRoll {
                from_bucket: labels[b].clone(),
                to_bucket: labels[b + 1].clone(),
                from_amount: from[t][b].0,
                from_count: from[t][b].1,
                rolled_amount: rolled[t][b].0,
                rolled_count: rolled[t][b].1,
                rate: ratio(i128::from(rolled[t][b].0), i128::from(from[t][b].0)),
            })
            .collect();
        out.push(RollRateMonth {
            from: ends[t],
            to: ends[t + 1],
            rolls,
        });
    }
    let average = (0..nb - 1)
        .map(|b| {
            let f: i128 = from.iter().map(|v| i128::from(v[b].0)).sum();
            let r: i128 = rolled.iter().map(|v| i128::from(v[b].0)).sum();
            ratio(r, f)
        })
        .collect();
    Ok(RollRateReport {
        as_of,
        currency: scope.base(),
        segment: segment.map(str::to_string),
        config: config.clone(),
        buckets: labels,
        months: out,
        average,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::aging::AgingBasis;
    use crate::analytics::testkit::{Kit, assert_close, conv, d, usd};
    use crate::fx::FxTable;
    use crate::ledger::Closure;

    /// Published example: costcalculator.calculator.city, "How to Calculate Roll Rates",
    /// https://costcalculator.calculator.city/how-to-calculate-roll-rates
    /// — January 31: $1,000,000 of balances 30-59 days past due; February 28: $200,000 of that
    /// group became 60-89 days past due → roll rate 20 %.
    /// Buckets [0, 29, 59, 89] give Current, 1-29, 30-59, 60-89, 90+. Two invoices due
    /// 2022-12-20 are 42 days past due on Jan 31 and 70 on Feb 28; $800,000 is paid in February.
    #[test]
    fn thirty_to_sixty_roll_example() {
        let mut k = Kit::new();
        k.invoice(1, d(2022, 11, 20), d(2022, 12, 20), usd(200_000));
        let y = k.invoice(2, d(2022, 11, 20), d(2022, 12, 20), usd(800_000));
        k.pay(y, d(2023, 2, 10), usd(800_000));
        // hand-computed extra: a current invoice on Jan 31 that is 23 days late on Feb 28 (rolls),
        // and one that is paid (does not roll)
        k.invoice(3, d(2023, 1, 6), d(2023, 2, 5), usd(50_000));
        let z = k.invoice(3, d(2023, 1, 6), d(2023, 2, 5), usd(150_000));
        k.pay(z, d(2023, 3, 1), usd(150_000)); // after as_of: still open on Feb 28, rolls too
        // a void invoice is ignored entirely
        let v = k.invoice(1, d(2022, 11, 20), d(2022, 12, 20), usd(999));
        k.close(v, d(2023, 2, 20), Closure::Void);
        let cfg = AgingConfig {
            boundaries: vec![0, 29, 59, 89],
            basis: AgingBasis::DueDate,
        };
        let table = FxTable::default();
        let r = roll_rates(
            &Ledger::new(&k.facts),
            &conv(&table),
            d(2023, 2, 28),
            None,
            &cfg,
            1,
        )
        .unwrap();
        assert_eq!(r.months.len(), 1);
        let m = &r.months[0];
        assert_eq!((m.from, m.to), (d(2023, 1, 31), d(2023, 2, 28)));
        let roll = &m.rolls[2];
        assert_eq!(
            (roll.from_bucket.as_str(), roll.to_bucket.as_str()),
            ("30-59", "60-89")
        );
        assert_eq!(
            (roll.from_amount, roll.rolled_amount),
            (usd(1_000_000), usd(200_000))
        );
        assert_close(roll.rate.unwrap(), 0.20, 1e-12);
        let current = &m.rolls[0];
        assert_eq!(
            (
                current.from_amount,
                current.rolled_amount,
                current.rolled_count
            ),
            (usd(200_000), usd(200_000), 2)
        );
        assert_eq!(m.rolls[1].rate, None);
        assert_eq!(r.average[2], Some(0.20));
    }
}
