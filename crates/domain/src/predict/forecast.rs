//! Cash forecast of the open book, and its backtest.
//!
//! Each open invoice's balance is received in full on one day, drawn from its
//! conditional days-to-pay distribution; so the receipts of a period are a
//! sum of independent amount × Bernoulli(P(paid in the period)). The
//! expected value is exact; the P10/P90 bands use the normal approximation
//! of that sum (mean ∓ 1.2816 sd, clipped to [0, open]). Independence ignores
//! that one customer's invoices tend to be late together, so the bands are
//! narrower than reality when a few customers dominate the book. Computing
//! analytically keeps it deterministic and linear in the number of invoices
//! (one pass over each invoice's 91 daily probabilities).
//!
//! Amounts are converted to the base currency at the as-of date's rate, one
//! rate per currency per forecast, as in the reports.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::data::PredictData;
use super::model::{InvoicePrediction, PaymentModel};
use super::{PredictError, date_or_err, day_number};
use crate::ledger::BaseConverter;
use crate::money::Currency;

pub const HORIZON_DAYS: usize = 91;
pub const WEEKS: usize = 13;
const Z90: f64 = 1.281_551_565_545;

/// Receipts expected in `start..=end`, base-currency minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastBucket {
    pub start: Date,
    pub end: Date,
    pub expected: i64,
    pub p10: i64,
    pub p90: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CashForecast {
    pub as_of: Date,
    pub currency: Currency,
    /// Open balance of the forecast invoices at the as-of date.
    pub open_total: i64,
    /// The 91 days after the as-of date.
    pub days: Vec<ForecastBucket>,
    /// 13 weeks of 7 days, the first starting the day after the as-of date.
    pub weeks: Vec<ForecastBucket>,
    /// Cumulative: the next 30, 60 and 90 days.
    pub totals: Vec<ForecastBucket>,
    /// Expected to arrive after the 91 days.
    pub beyond: i64,
}

#[derive(Default, Clone, Copy)]
struct Acc {
    mean: f64,
    var: f64,
}

impl Acc {
    fn add(&mut self, amount: f64, p: f64) {
        self.mean += amount * p;
        self.var += amount * amount * p * (1.0 - p);
    }
}

fn bucket(
    as_of: i32,
    from: usize,
    to: usize,
    acc: Acc,
    cap: f64,
) -> Result<ForecastBucket, PredictError> {
    let sd = acc.var.max(0.0).sqrt();
    Ok(ForecastBucket {
        start: date_or_err(as_of + from as i32)?,
        end: date_or_err(as_of + to as i32)?,
        expected: acc.mean.round() as i64,
        p10: (acc.mean - Z90 * sd).clamp(0.0, cap).round() as i64,
        p90: (acc.mean + Z90 * sd).clamp(0.0, cap).round() as i64,
    })
}

/// Forecast from predictions made as of `as_of` (normally
/// [`PaymentModel::score_open`]); predictions of other dates are an error.
pub fn cash_forecast(
    model: &PaymentModel,
    preds: &[InvoicePrediction],
    conv: &BaseConverter<'_>,
    as_of: Date,
) -> Result<CashForecast, PredictError> {
    let d0 = day_number(as_of);
    let mut daily = [Acc::default(); HORIZON_DAYS];
    let mut weekly = [Acc::default(); WEEKS];
    let mut totals = [Acc::default(); 3];
    let mut open_total = 0f64;
    let mut beyond = 0f64;
    let mut masses = [0f64; HORIZON_DAYS];
    for p in preds {
        if p.as_of != as_of {
            return Err(PredictError::Config(format!(
                "prediction for invoice {} is as of {}, not {as_of}",
                p.invoice_id, p.as_of
            )));
        }
        let amount = conv
            .to_base(p.open_minor, p.currency, as_of)
            .map_err(|source| PredictError::Fx {
                invoice_id: p.invoice_id,
                source,
            })? as f64;
        if amount <= 0.0 {
            continue;
        }
        open_total += amount;
        model.shape.day_masses(&p.dist, &mut masses);
        let mut cum = 0.0;
        for (k, &m) in masses.iter().enumerate() {
            daily[k].add(amount, m);
            cum += m;
            if k % 7 == 6 {
                let w: f64 = masses[k - 6..=k].iter().sum();
                weekly[k / 7].add(amount, w.min(1.0));
            }
            match k + 1 {
                30 => totals[0].add(amount, cum.min(1.0)),
                60 => totals[1].add(amount, cum.min(1.0)),
                90 => totals[2].add(amount, cum.min(1.0)),
                _ => {}
            }
        }
        beyond += amount * (1.0 - cum).max(0.0);
    }
    let cap = open_total;
    Ok(CashForecast {
        as_of,
        currency: conv.base,
        open_total: open_total.round() as i64,
        days: (0..HORIZON_DAYS)
            .map(|k| bucket(d0, k + 1, k + 1, daily[k], cap))
            .collect::<Result<_, _>>()?,
        weeks: (0..WEEKS)
            .map(|w| bucket(d0, 7 * w + 1, 7 * w + 7, weekly[w], cap))
            .collect::<Result<_, _>>()?,
        totals: [30usize, 60, 90]
            .iter()
            .enumerate()
            .map(|(t, &h)| bucket(d0, 1, h, totals[t], cap))
            .collect::<Result<_, _>>()?,
        beyond: beyond.round() as i64,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestWeek {
    /// 1 for the first week after each as-of date.
    pub week: usize,
    /// Sums over the as-of dates.
    pub actual: i64,
    pub forecast: i64,
    pub due_date_forecast: i64,
    /// Σ|forecast − actual| / Σ actual over the as-of dates.
    pub wape: f64,
    pub due_date_wape: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    pub as_of_dates: Vec<Date>,
    pub weeks: Vec<BacktestWeek>,
    /// Over all dates and weeks.
    pub wape: f64,
    pub due_date_wape: f64,
    /// 1 − wape / due_date_wape: how much smaller the model's error is.
    pub improvement: f64,
    /// Share of (date, week) cells whose actual receipts fell in [P10, P90].
    pub band_coverage: f64,
}

/// Replays `as_of_dates`: forecasts the open book of each date with `model`
/// and with "every invoice is paid on its due date (overdue ones the next
/// day)", and compares both with the allocations that actually followed,
/// week by week. The model should have been trained without facts after the
/// earliest date for the comparison to be fair.
pub fn backtest_forecast(
    model: &PaymentModel,
    data: &PredictData,
    conv: &BaseConverter<'_>,
    as_of_dates: &[Date],
) -> Result<BacktestReport, PredictError> {
    let mut actual = vec![[0f64; WEEKS]; as_of_dates.len()];
    let mut fc = vec![[0f64; WEEKS]; as_of_dates.len()];
    let mut due = vec![[0f64; WEEKS]; as_of_dates.len()];
    let mut covered = 0usize;
    for (t, &date) in as_of_dates.iter().enumerate() {
        let d = day_number(date);
        let preds = model.score_open(data, date)?;
        let f = cash_forecast(model, &preds, conv, date)?;
        for (w, b) in f.weeks.iter().enumerate() {
            fc[t][w] = b.expected as f64;
        }
        for p in &preds {
            let i = p.invoice;
            let to_base = |minor: i64| {
                conv.to_base(minor, p.currency, date)
                    .map_err(|source| PredictError::Fx {
                        invoice_id: p.invoice_id,
                        source,
                    })
            };
            let open = to_base(p.open_minor)? as f64;
            let pay_day = data.due[i].max(d + 1);
            let w = ((pay_day - d - 1) / 7) as usize;
            if w < WEEKS {
                due[t][w] += open;
            }
            for &(day, amount) in data.allocs_of(i) {
                if day > d && day <= d + (7 * WEEKS) as i32 {
                    actual[t][((day - d - 1) / 7) as usize] += to_base(amount)? as f64;
                }
            }
        }
        for (w, b) in f.weeks.iter().enumerate() {
            let a = actual[t][w].round() as i64;
            if a >= b.p10 && a <= b.p90 {
                covered += 1;
            }
        }
    }
    let wape = |f: &[[f64; WEEKS]], w: Option<usize>| {
        let (mut err, mut tot) = (0.0, 0.0);
        for t in 0..as_of_dates.len() {
            for k in 0..WEEKS {
                if w.is_none_or(|w| w == k) {
                    err += (f[t][k] - actual[t][k]).abs();
                    tot += actual[t][k];
                }
            }
        }
        if tot > 0.0 { err / tot } else { f64::NAN }
    };
    let sum = |f: &[[f64; WEEKS]], k: usize| f.iter().map(|r| r[k]).sum::<f64>().round() as i64;
    let weeks = (0..WEEKS)
        .map(|k| BacktestWeek {
            week: k + 1,
            actual: sum(&actual, k),
            forecast: sum(&fc, k),
            due_date_forecast: sum(&due, k),
            wape: wape(&fc, Some(k)),
            due_date_wape: wape(&due, Some(k)),
        })
        .collect();
    let (w, dw) = (wape(&fc, None), wape(&due, None));
    Ok(BacktestReport {
        as_of_dates: as_of_dates.to_vec(),
        weeks,
        wape: w,
        due_date_wape: dw,
        improvement: 1.0 - w / dw,
        band_coverage: covered as f64 / (as_of_dates.len() * WEEKS).max(1) as f64,
    })
}

impl BacktestReport {
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "backtest over {} as-of dates ({} to {})",
            self.as_of_dates.len(),
            self.as_of_dates
                .first()
                .map_or(String::new(), |d| d.to_string()),
            self.as_of_dates
                .last()
                .map_or(String::new(), |d| d.to_string())
        );
        let _ = writeln!(
            s,
            "week  actual        arflow        due-date      WAPE    due-date WAPE"
        );
        for w in &self.weeks {
            let _ = writeln!(
                s,
                "{:>4}  {:<12}  {:<12}  {:<12}  {:<6.3}  {:.3}",
                w.week, w.actual, w.forecast, w.due_date_forecast, w.wape, w.due_date_wape
            );
        }
        let _ = writeln!(
            s,
            "all weeks: WAPE {:.3} vs due-date {:.3} ({:.1} % lower); actual within P10–P90 in {:.1} % of weeks",
            self.wape,
            self.due_date_wape,
            self.improvement * 100.0,
            self.band_coverage * 100.0
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;
    use crate::predict::model::{TrainConfig, TrainSpec, train};
    use crate::predict::testkit::{conv, fx, synth};
    use jiff::civil::date;

    #[test]
    fn forecast_sums_and_bands_and_backtest_beats_due_dates() {
        let k = synth(40, 730, 8, 11, date(2022, 1, 1));
        let table = fx();
        let c = conv(&table);
        let ledger = Ledger::new(&k.facts);
        let d = PredictData::new(&ledger, &c, &k.extra).unwrap();
        let start = date(2023, 4, 1);
        let spec = TrainSpec::settled_by(&d, start.yesterday().unwrap());
        let cfg = TrainConfig {
            gbdt: crate::predict::GbdtParams {
                max_rounds: 40,
                learning_rate: 0.2,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        let m = train(&d, &spec, &cfg).unwrap();
        let preds = m.score_open(&d, start).unwrap();
        let f = cash_forecast(&m, &preds, &c, start).unwrap();
        assert_eq!((f.days.len(), f.weeks.len(), f.totals.len()), (91, 13, 3));
        assert_eq!(f.weeks[0].start, date(2023, 4, 2));
        assert_eq!(f.weeks[12].end, date(2023, 7, 1));
        let weeks: i64 = f.weeks.iter().map(|w| w.expected).sum();
        let days: i64 = f.days.iter().map(|w| w.expected).sum();
        assert!((weeks - days).abs() <= 91, "{weeks} {days}");
        assert!(
            (weeks + f.beyond - f.open_total).abs() <= 100,
            "{weeks} + {} vs {}",
            f.beyond,
            f.open_total
        );
        assert!(
            f.totals[0].expected <= f.totals[1].expected
                && f.totals[1].expected <= f.totals[2].expected
        );
        for b in f.weeks.iter().chain(&f.totals) {
            assert!(b.p10 <= b.expected && b.expected <= b.p90, "{b:?}");
        }
        // Predictions of another date are refused.
        assert!(cash_forecast(&m, &preds, &c, date(2023, 4, 2)).is_err());
        let dates: Vec<Date> = (0..8)
            .map(|w| start.checked_add(jiff::Span::new().days(7 * w)).unwrap())
            .collect();
        let b = backtest_forecast(&m, &d, &c, &dates).unwrap();
        assert!(b.improvement > 0.3, "{}", b.render());
    }
}
