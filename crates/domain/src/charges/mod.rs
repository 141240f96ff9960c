//! Late fees and statutory late-payment interest.
//!
//! Pure functions: the caller passes the principal, the dates and the rule;
//! nothing here reads a clock or a file. Reference-rate tables ship with the
//! crate as CSV (`rates/*.csv`, embedded at compile time) because the statutes
//! tie the rate to a published central-bank rate on a given day, and a
//! reminder must reproduce the same figure later.
//!
//! Amounts stay integer minor units; rates are integer basis points (1 % =
//! 100 bp). Each result is rounded half away from zero to the minor unit once,
//! at the end.

pub mod fees;
pub mod interest;
pub mod rates;

use jiff::civil::Date;

use crate::money::{Currency, Money};

pub use fees::{FeeRule, apply};
pub use interest::{InterestCalc, Regime, Segment, simple_interest, statutory_interest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error("{regime} applies to debts in {expected}, not {found}: {why}")]
    UnsupportedCurrency {
        regime: Regime,
        expected: Currency,
        found: Currency,
        why: &'static str,
    },
    #[error("no {table} rate is known for {date}: the table starts on {first}")]
    NoReferenceRate {
        table: &'static str,
        date: Date,
        first: Date,
    },
    #[error("the principal must be positive, got {0}")]
    NonPositivePrincipal(Money),
    #[error("the overdue amount must not be negative, got {0}")]
    NegativeOverdue(Money),
    #[error("days overdue must not be negative, got {0}")]
    NegativeDays(i64),
    #[error("the fee rule is in {rule} but the overdue amount is in {overdue}")]
    CurrencyMismatch { rule: Currency, overdue: Currency },
    #[error("invalid fee rule: {0}")]
    InvalidRule(String),
    #[error("the charge is too large to represent")]
    Overflow,
    #[error("a date in the calculation is out of range")]
    DateOutOfRange,
    #[error("rate table {table}, line {line}: {reason}")]
    MalformedRateTable {
        table: &'static str,
        line: usize,
        reason: String,
    },
}

/// `num / den` rounded half away from zero (`den > 0`), as an `i64`.
pub(crate) fn round_to_minor(num: i128, den: i128) -> Result<i64, ChargeError> {
    let q = crate::fx::div_round_half_away(num, den);
    i64::try_from(q).map_err(|_| ChargeError::Overflow)
}
