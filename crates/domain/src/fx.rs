//! Dated foreign-exchange rates and conversion into the organization's base currency.
//!
//! A rate is a decimal held as an integer scaled by 10^12 so conversion stays
//! exact integer arithmetic; results are rounded half away from zero to the
//! target currency's minor unit.

use std::collections::HashMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// Scale of [`Rate`]: twelve decimal places.
pub const RATE_SCALE: i128 = 1_000_000_000_000;

/// Units of the quote currency for one unit of the base currency, scaled by 10^12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rate(pub i128);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("'{0}' is not a positive exchange rate")]
    BadRate(String),
    #[error("no exchange rate from {from} to {to} on or before {date}")]
    MissingRate {
        from: Currency,
        to: Currency,
        date: Date,
    },
    #[error("conversion of {0} overflowed")]
    Overflow(String),
}

impl Rate {
    /// Parses a positive decimal such as "1.0842" or "0.0067".
    pub fn parse(s: &str) -> Result<Rate, FxError> {
        let bad = || FxError::BadRate(s.to_string());
        let t = s.trim();
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > 12 || int.len() > 12 {
            return Err(bad());
        }
        let int_v: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let frac_v: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        let v = int_v * RATE_SCALE + frac_v * 10i128.pow(12 - frac.len() as u32);
        if v <= 0 {
            return Err(bad());
        }
        Ok(Rate(v))
    }

    pub fn to_decimal_string(&self) -> String {
        let int = self.0 / RATE_SCALE;
        let frac = self.0 % RATE_SCALE;
        let s = format!("{int}.{frac:012}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One dated rate: `1 from = rate × to`, valid from `valid_on` until a later rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRate {
    pub from: Currency,
    pub to: Currency,
    pub valid_on: Date,
    pub rate: Rate,
}

/// Rates indexed for lookup: the latest rate on or before a date wins.
#[derive(Debug, Clone, Default)]
pub struct FxTable {
    rates: HashMap<(Currency, Currency), Vec<(Date, Rate)>>,
}

impl FxTable {
    pub fn new(rates: impl IntoIterator<Item = FxRate>) -> FxTable {
        let mut map: HashMap<(Currency, Currency), Vec<(Date, Rate)>> = HashMap::new();
        for r in rates {
            map.entry((r.from, r.to))
                .or_default()
                .push((r.valid_on, r.rate));
        }
        for v in map.values_mut() {
            v.sort();
            v.dedup_by_key(|(d, _)| *d);
        }
        FxTable { rates: map }
    }

    fn lookup(&self, from: Currency, to: Currency, on: Date) -> Option<(Date, Rate)> {
        let v = self.rates.get(&(from, to))?;
        let idx = v.partition_point(|(d, _)| *d <= on);
        idx.checked_sub(1).map(|i| v[i])
    }

    /// Converts `amount` into `to` using the rate in force on `on`: the latest
    /// rate on or before `on` recorded in either direction (an opposite rate
    /// is inverted); on the same date the direct rate wins.
    pub fn convert(&self, amount: Money, to: Currency, on: Date) -> Result<Money, FxError> {
        if amount.currency == to {
            return Ok(amount);
        }
        let from_exp = i32::from(amount.currency.exponent());
        let to_exp = i32::from(to.exponent());
        let minor = i128::from(amount.minor);
        // numerator/denominator of the conversion factor applied to minor units
        let direct = self.lookup(amount.currency, to, on);
        let inverse = self.lookup(to, amount.currency, on);
        let overflow = || FxError::Overflow(amount.to_string());
        let (num, den) = match (direct, inverse) {
            (Some((dd, r)), Some((di, _))) if dd >= di => {
                (minor.checked_mul(r.0).ok_or_else(overflow)?, RATE_SCALE)
            }
            (Some((_, r)), None) => (minor.checked_mul(r.0).ok_or_else(overflow)?, RATE_SCALE),
            (_, Some((_, r))) => (minor.checked_mul(RATE_SCALE).ok_or_else(overflow)?, r.0),
            (None, None) => {
                return Err(FxError::MissingRate {
                    from: amount.currency,
                    to,
                    date: on,
                });
            }
        };
        let shift = to_exp - from_exp;
        let (num, den) = if shift >= 0 {
            (
                num.checked_mul(10i128.pow(shift as u32))
                    .ok_or_else(overflow)?,
                den,
            )
        } else {
            (num, den * 10i128.pow((-shift) as u32))
        };
        let q = div_round_half_away(num, den);
        let v = i64::try_from(q).map_err(|_| overflow())?;
        Ok(Money::new(v, to))
    }
}

/// Integer division rounding half away from zero (den > 0).
pub fn div_round_half_away(num: i128, den: i128) -> i128 {
    let q = num / den;
    let r = num % den;
    if r.abs() * 2 >= den {
        q + num.signum()
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn converts_with_latest_rate_on_or_before_date() {
        let t = FxTable::new([
            FxRate {
                from: Currency::EUR,
                to: Currency::USD,
                valid_on: date(2024, 1, 1),
                rate: Rate::parse("1.10").unwrap(),
            },
            FxRate {
                from: Currency::EUR,
                to: Currency::USD,
                valid_on: date(2024, 2, 1),
                rate: Rate::parse("1.20").unwrap(),
            },
        ]);
        let eur = Money::new(10_000, Currency::EUR);
        assert_eq!(
            t.convert(eur, Currency::USD, date(2024, 1, 15))
                .unwrap()
                .minor,
            11_000
        );
        assert_eq!(
            t.convert(eur, Currency::USD, date(2024, 3, 1))
                .unwrap()
                .minor,
            12_000
        );
        assert!(t.convert(eur, Currency::USD, date(2023, 12, 31)).is_err());
        // inverse: 110 USD at 1.10 = 100 EUR
        let usd = Money::new(11_000, Currency::USD);
        assert_eq!(
            t.convert(usd, Currency::EUR, date(2024, 1, 15))
                .unwrap()
                .minor,
            10_000
        );
    }

    #[test]
    fn the_latest_rate_wins_whichever_direction_it_was_recorded_in() {
        let t = FxTable::new([
            FxRate {
                from: Currency::EUR,
                to: Currency::USD,
                valid_on: date(2020, 1, 1),
                rate: Rate::parse("1.10").unwrap(),
            },
            FxRate {
                from: Currency::USD,
                to: Currency::EUR,
                valid_on: date(2026, 1, 1),
                rate: Rate::parse("0.80").unwrap(),
            },
        ]);
        let eur = Money::new(10_000, Currency::EUR);
        assert_eq!(
            t.convert(eur, Currency::USD, date(2025, 6, 1))
                .unwrap()
                .minor,
            11_000
        );
        assert_eq!(
            t.convert(eur, Currency::USD, date(2026, 6, 1))
                .unwrap()
                .minor,
            12_500
        );
    }

    #[test]
    fn converts_across_exponents() {
        let t = FxTable::new([FxRate {
            from: Currency::JPY,
            to: Currency::USD,
            valid_on: date(2024, 1, 1),
            rate: Rate::parse("0.0067").unwrap(),
        }]);
        // 10,000 JPY = 67.00 USD
        assert_eq!(
            t.convert(
                Money::new(10_000, Currency::JPY),
                Currency::USD,
                date(2024, 6, 1)
            )
            .unwrap()
            .minor,
            6_700
        );
        // 67.00 USD back to JPY = 10,000
        assert_eq!(
            t.convert(
                Money::new(6_700, Currency::USD),
                Currency::JPY,
                date(2024, 6, 1)
            )
            .unwrap()
            .minor,
            10_000
        );
    }

    #[test]
    fn rate_parsing_is_strict() {
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("-1.2").is_err());
        assert!(Rate::parse("1,2").is_err());
        assert_eq!(Rate::parse("1.0842").unwrap().to_decimal_string(), "1.0842");
        assert_eq!(div_round_half_away(-15, 10), -2);
        assert_eq!(div_round_half_away(14, 10), 1);
    }
}
