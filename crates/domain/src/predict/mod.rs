//! Payment prediction: when will each open invoice be paid, how likely is it
//! to be paid late, what to chase first, and how much cash comes in when.
//!
//! Everything here is pure: the ledger's dated facts, the as-of date and the
//! seed are parameters. The pieces:
//!
//! * [`data`]: [`PredictData`], the ledger flattened into per-invoice vectors
//!   (day numbers, base-currency amounts, optional dispute/paperless and
//!   dunning facts from [`ExtraFacts`]).
//! * [`features`]: the feature vector of an invoice *as of a date*, built from
//!   facts dated on or before that date only (see the module for the list).
//! * [`gbdt`]: a small histogram gradient-boosted-trees learner.
//! * [`model`]: [`PaymentModel`]: a customer-effect linear stage, boosted
//!   heads for P(late > 0/30/60 days) and a location-scale distribution of
//!   days-to-pay, conditional on being unpaid at the as-of date.
//! * [`evaluate()`]: time-split evaluation against naive baselines.
//! * [`priority`]: expected cost of waiting with plain-word reasons, and
//!   precision at k of rankings.
//! * [`forecast`]: 13-week cash forecast with P10/P90 bands and its backtest.
//! * [`sample`]: a reader for IBM's public accounts-receivable sample, used to
//!   measure all of the above on public data.
//!
//! Conventions: "as of D" means at the end of day D (as in [`crate::ledger`]);
//! a prediction made when an invoice is issued on day I is made as of I − 1
//! (the customer's history up to the day before) with the invoice's own
//! issue-time attributes. Days-to-pay T counts days from issue to the day the
//! balance was fully allocated; "unpaid as of D" means T > D − I.

pub mod data;
pub mod dist;
pub mod evaluate;
pub mod features;
pub mod forecast;
pub mod gbdt;
pub mod linear;
pub mod model;
pub mod priority;
pub mod sample;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_ibm;

use jiff::civil::Date;

use crate::fx::FxError;

pub use data::{
    DunningHistory, ExtraFacts, InvoiceAttributes, PredictData, Promise, PromiseOutcome, Reminder,
};
pub use dist::PayDistribution;
pub use evaluate::{
    Baseline, CalibrationBin, ClassificationMetrics, EvalConfig, Evaluation, RegressionMetrics,
    evaluate,
};
pub use features::{FEATURES, FeatureInfo, FeatureMatrix, Snapshot};
pub use forecast::{
    BacktestReport, BacktestWeek, CashForecast, ForecastBucket, backtest_forecast, cash_forecast,
};
pub use gbdt::{GbdtParams, Objective};
pub use model::{InvoicePrediction, ModelCard, PaymentModel, TrainConfig, TrainSpec, train};
pub use priority::{
    PrecisionAtK, Priority, PriorityConfig, RankBy, Reason, precision_at_k, prioritize,
};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    /// An invoice amount could not be converted to the base currency.
    #[error("invoice {invoice_id}: {source}")]
    Fx {
        invoice_id: i64,
        #[source]
        source: FxError,
    },
    /// A snapshot asked for an invoice's features before the invoice existed.
    #[error("invoice {invoice_id} is issued on {issued}, after the as-of date {as_of} + 1 day")]
    NotYetIssued {
        invoice_id: i64,
        issued: Date,
        as_of: Date,
    },
    /// A snapshot or training row refers to an invoice position that does not exist.
    #[error("no invoice at position {0}")]
    UnknownInvoice(usize),
    /// Training needs settled invoices to learn from.
    #[error("too few settled invoices to train on: {got} (at least {need})")]
    TooFewExamples { got: usize, need: usize },
    /// The model was trained with a different feature layout.
    #[error("model feature layout {found} does not match this build's {expected}")]
    FeatureMismatch { expected: String, found: String },
    /// A date computation left the supported range.
    #[error("date out of range: {0}")]
    DateRange(String),
    /// A model could not be (de)serialized.
    #[error("model JSON: {0}")]
    Json(String),
    /// Invalid configuration value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The sample CSV could not be read.
    #[error("line {line}: {message}")]
    Sample { line: usize, message: String },
}

/// Days since 1970-01-01 (proleptic Gregorian), by Hinnant's algorithm: cheaper
/// than a calendar span for millions of dates.
pub(crate) fn day_number(d: Date) -> i32 {
    let m = i32::from(d.month());
    let y = i32::from(d.year()) - i32::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i32::from(d.day()) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`day_number`]; `None` outside jiff's date range.
pub(crate) fn date_from_day(z: i32) -> Option<Date> {
    let z = z.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i32::from(m <= 2);
    Date::new(i16::try_from(y).ok()?, m as i8, d as i8).ok()
}

pub(crate) fn date_or_err(z: i32) -> Result<Date, PredictError> {
    date_from_day(z).ok_or_else(|| PredictError::DateRange(format!("day number {z}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn day_numbers_match_jiff() {
        assert_eq!(day_number(date(1970, 1, 1)), 0);
        assert_eq!(day_number(date(2000, 3, 1)), 11_017);
        assert_eq!(day_number(date(1969, 12, 31)), -1);
        let a = date(2013, 7, 1);
        let b = date(2012, 2, 29);
        let span = crate::analytics::days_between(b, a);
        assert_eq!(i64::from(day_number(a) - day_number(b)), span);
    }

    proptest! {
        #[test]
        fn day_number_round_trips(y in -9000i16..9000, m in 1i8..=12, d in 1i8..=28) {
            let dt = date(y, m, d);
            prop_assert_eq!(date_from_day(day_number(dt)), Some(dt));
            let next = dt.tomorrow().unwrap();
            prop_assert_eq!(day_number(next), day_number(dt) + 1);
        }
    }
}
