//! Contractual late fees a dunning step can carry.

use serde::{Deserialize, Serialize};

use super::{ChargeError, round_to_minor};
use crate::money::Money;

/// A contractual late-fee rule. Rates are basis points (1 % = 100 bp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeeRule {
    /// A flat fee once the debt is overdue.
    Fixed(Money),
    /// A percentage of the overdue balance, optionally raised to `min` and
    /// capped at `max` (both in the overdue balance's currency).
    PercentOfOverdue {
        bp: i64,
        min: Option<Money>,
        max: Option<Money>,
    },
    /// A contractual rate per month on the overdue balance, charged pro rata
    /// by days with a 30-day month: `overdue × bp × days / (10 000 × 30)`.
    /// Pro rata rather than per started month so a fee never jumps by a whole
    /// month's charge for one extra day.
    MonthlyRate { bp: i64 },
}

/// The fee `rule` charges on `overdue` after `days_overdue` days, rounded half
/// away from zero to the minor unit. Nothing is charged on a zero balance or
/// before the first overdue day (`days_overdue == 0`).
pub fn apply(rule: &FeeRule, overdue: Money, days_overdue: i64) -> Result<Money, ChargeError> {
    rule.validate(overdue)?;
    if overdue.minor < 0 {
        return Err(ChargeError::NegativeOverdue(overdue));
    }
    if days_overdue < 0 {
        return Err(ChargeError::NegativeDays(days_overdue));
    }
    let currency = overdue.currency;
    if overdue.minor == 0 || days_overdue == 0 {
        return Ok(Money::zero(currency));
    }
    let minor = match rule {
        FeeRule::Fixed(fee) => fee.minor,
        FeeRule::PercentOfOverdue { bp, min, max } => {
            let raw = round_to_minor(i128::from(overdue.minor) * i128::from(*bp), 10_000)?;
            let floored = min.map_or(raw, |m| raw.max(m.minor));
            max.map_or(floored, |m| floored.min(m.minor))
        }
        FeeRule::MonthlyRate { bp } => round_to_minor(
            i128::from(overdue.minor) * i128::from(*bp) * i128::from(days_overdue),
            10_000 * 30,
        )?,
    };
    Ok(Money::new(minor, currency))
}

impl FeeRule {
    /// See [`apply`].
    pub fn apply(&self, overdue: Money, days_overdue: i64) -> Result<Money, ChargeError> {
        apply(self, overdue, days_overdue)
    }

    /// Rejects rules that could produce a negative fee or mix currencies.
    pub fn validate(&self, overdue: Money) -> Result<(), ChargeError> {
        let same = |m: &Money| {
            if m.currency != overdue.currency {
                return Err(ChargeError::CurrencyMismatch {
                    rule: m.currency,
                    overdue: overdue.currency,
                });
            }
            if m.minor < 0 {
                return Err(ChargeError::InvalidRule(format!("negative amount {m}")));
            }
            Ok(())
        };
        let rate = |bp: i64| {
            if bp < 0 {
                Err(ChargeError::InvalidRule(format!("negative rate {bp} bp")))
            } else {
                Ok(())
            }
        };
        match self {
            FeeRule::Fixed(fee) => same(fee),
            FeeRule::PercentOfOverdue { bp, min, max } => {
                rate(*bp)?;
                if let Some(m) = min {
                    same(m)?;
                }
                if let Some(m) = max {
                    same(m)?;
                }
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo.minor > hi.minor
                {
                    return Err(ChargeError::InvalidRule(format!(
                        "minimum {lo} is above maximum {hi}"
                    )));
                }
                Ok(())
            }
            FeeRule::MonthlyRate { bp } => rate(*bp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    #[test]
    fn fixed_fee_applies_once_overdue() {
        let r = FeeRule::Fixed(eur(1_500));
        assert_eq!(apply(&r, eur(10_000), 0), Ok(eur(0)));
        assert_eq!(apply(&r, eur(10_000), 1), Ok(eur(1_500)));
        assert_eq!(apply(&r, eur(0), 10), Ok(eur(0)));
    }

    #[test]
    fn percent_fee_is_floored_and_capped() {
        let r = FeeRule::PercentOfOverdue {
            bp: 250,
            min: Some(eur(500)),
            max: Some(eur(5_000)),
        };
        // 2.5 % of 1,000.00 = 25.00
        assert_eq!(apply(&r, eur(100_000), 3), Ok(eur(2_500)));
        // 2.5 % of 100.00 = 2.50, raised to 5.00
        assert_eq!(apply(&r, eur(10_000), 3), Ok(eur(500)));
        // 2.5 % of 10,000.00 = 250.00, capped at 50.00
        assert_eq!(apply(&r, eur(1_000_000), 3), Ok(eur(5_000)));
        // 2.5 % of 0.30 = 0.0075 → 0.01 (half away from zero), no min/max
        let plain = FeeRule::PercentOfOverdue {
            bp: 250,
            min: None,
            max: None,
        };
        assert_eq!(apply(&plain, eur(30), 1), Ok(eur(1)));
    }

    /// Hand-computed: 1.5 % a month on EUR 2,000.00 for 45 days
    /// = 2,000 × 0.015 × 45 / 30 = EUR 45.00.
    #[test]
    fn monthly_rate_is_pro_rata_by_days_over_30() {
        let r = FeeRule::MonthlyRate { bp: 150 };
        assert_eq!(apply(&r, eur(200_000), 45), Ok(eur(4_500)));
        assert_eq!(apply(&r, eur(200_000), 30), Ok(eur(3_000)));
        assert_eq!(apply(&r, eur(200_000), 1), Ok(eur(100)));
    }

    #[test]
    fn bad_rules_and_inputs_are_rejected() {
        assert!(matches!(
            apply(&FeeRule::Fixed(Money::new(100, Currency::USD)), eur(100), 1),
            Err(ChargeError::CurrencyMismatch { .. })
        ));
        assert!(matches!(
            apply(&FeeRule::Fixed(eur(-1)), eur(100), 1),
            Err(ChargeError::InvalidRule(_))
        ));
        assert!(matches!(
            apply(&FeeRule::MonthlyRate { bp: -1 }, eur(100), 1),
            Err(ChargeError::InvalidRule(_))
        ));
        let inverted = FeeRule::PercentOfOverdue {
            bp: 100,
            min: Some(eur(200)),
            max: Some(eur(100)),
        };
        assert!(matches!(
            apply(&inverted, eur(100), 1),
            Err(ChargeError::InvalidRule(_))
        ));
        assert!(matches!(
            apply(&FeeRule::MonthlyRate { bp: 100 }, eur(-1), 1),
            Err(ChargeError::NegativeOverdue(_))
        ));
        assert!(matches!(
            apply(&FeeRule::MonthlyRate { bp: 100 }, eur(1), -1),
            Err(ChargeError::NegativeDays(-1))
        ));
    }

    fn any_rule() -> impl Strategy<Value = FeeRule> {
        prop_oneof![
            (0i64..1_000_000).prop_map(|m| FeeRule::Fixed(eur(m))),
            (
                0i64..10_000,
                proptest::option::of(0i64..100_000),
                proptest::option::of(0i64..1_000_000)
            )
                .prop_map(|(bp, lo, extra)| FeeRule::PercentOfOverdue {
                    bp,
                    min: lo.map(eur),
                    // keep max ≥ min so the rule is valid
                    max: extra.map(|e| eur(lo.unwrap_or(0) + e)),
                }),
            (0i64..10_000).prop_map(|bp| FeeRule::MonthlyRate { bp }),
        ]
    }

    proptest! {
        #[test]
        fn a_fee_is_never_negative(rule in any_rule(), overdue in 0i64..1_000_000_000_000, days in 0i64..10_000) {
            let fee = apply(&rule, eur(overdue), days).unwrap();
            prop_assert!(fee.minor >= 0);
            prop_assert_eq!(fee.currency, Currency::EUR);
        }

        #[test]
        fn a_percentage_fee_never_exceeds_its_max(rule in any_rule(), overdue in 0i64..1_000_000_000_000, days in 0i64..10_000) {
            if let FeeRule::PercentOfOverdue { max: Some(max), .. } = &rule {
                let fee = apply(&rule, eur(overdue), days).unwrap();
                prop_assert!(fee.minor <= max.minor);
            }
        }
    }
}
