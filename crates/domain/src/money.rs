//! Money: an integer count of minor units with its ISO 4217 currency.
//!
//! Amounts are never floats. Parsing and formatting go through decimal strings
//! using each currency's own exponent (JPY 0, USD 2, BHD 3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency with a known minor-unit exponent.
///
/// Currencies without a minor-unit exponent in ISO 4217 (precious metals, XDR,
/// testing codes) are rejected: they cannot be invoiced in minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("currency {0} has no minor unit and cannot be used for invoicing")]
    NoMinorUnit(String),
    #[error(
        "'{value}' is not an amount (expected digits with an optional sign and decimal separator)"
    )]
    NotAnAmount { value: String },
    #[error("'{value}' has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals {
        value: String,
        currency: Currency,
        exponent: u8,
    },
    #[error(
        "'{value}' has a thousands separator where none belongs (groups of three digits expected; is the decimal separator right?)"
    )]
    MisplacedSeparator { value: String },
    #[error("'{value}' is too large to represent")]
    Overflow { value: String },
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("'{0}' is not an amount with its currency (expected e.g. \"15.00 EUR\")")]
    NotTagged(String),
}

impl Currency {
    /// Parses a three-letter ISO 4217 code, case-insensitively, surrounding spaces ignored.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let trimmed = code.trim();
        let upper = trimmed.to_ascii_uppercase();
        let iso = iso_currency::Currency::from_code(&upper)
            .ok_or_else(|| MoneyError::UnknownCurrency(trimmed.to_string()))?;
        if iso.exponent().is_none() {
            return Err(MoneyError::NoMinorUnit(upper));
        }
        Ok(Currency(iso))
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Number of decimal places of the minor unit (2 for USD, 0 for JPY, 3 for BHD).
    pub fn exponent(&self) -> u8 {
        // Construction guarantees an exponent exists; ISO exponents are 0..=4.
        self.0.exponent().unwrap_or(2) as u8
    }

    /// 10^exponent: minor units per major unit.
    pub fn minor_per_major(&self) -> i64 {
        10i64.pow(u32::from(self.exponent()))
    }

    pub const USD: Currency = Currency(iso_currency::Currency::USD);
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);
    pub const GBP: Currency = Currency(iso_currency::Currency::GBP);
    pub const JPY: Currency = Currency(iso_currency::Currency::JPY);
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// How a decimal amount is written in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DecimalStyle {
    /// The decimal separator: '.' (default) or ','.
    pub decimal: char,
    /// An optional thousands separator that is ignored when present: ',', '.', ' ', '\'' .
    pub thousands: Option<char>,
}

impl DecimalStyle {
    pub const POINT: DecimalStyle = DecimalStyle {
        decimal: '.',
        thousands: Some(','),
    };
    pub const COMMA: DecimalStyle = DecimalStyle {
        decimal: ',',
        thousands: Some('.'),
    };
}

/// An amount of money in minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// Parses a decimal amount written in `style` into minor units of `currency`.
    ///
    /// Accepts an optional leading '-' or '+', a currency symbol-free number,
    /// accounting-style parentheses for negatives "(12.50)", and thousands
    /// separators. Rejects more decimals than the currency has unless the
    /// extra digits are zeros ("12.500" is fine for USD, "12.505" is not):
    /// silently rounding an amount from a ledger would change the books.
    pub fn parse(
        value: &str,
        currency: Currency,
        style: DecimalStyle,
    ) -> Result<Money, MoneyError> {
        parse_minor(value, currency, style).map(|minor| Money { minor, currency })
    }

    /// Parses the written form used in policies and on the command line
    /// (and produced by `Display`): a decimal amount with a decimal point,
    /// whitespace, then an ISO 4217 code, e.g. "15.00 EUR", "1500 JPY".
    pub fn parse_tagged(text: &str) -> Result<Money, MoneyError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [amount, code] = parts[..] else {
            return Err(MoneyError::NotTagged(text.to_string()));
        };
        let style = DecimalStyle {
            decimal: '.',
            thousands: None,
        };
        Money::parse(amount, Currency::parse(code)?, style)
    }

    /// The amount as a decimal string in major units, e.g. "1234.50", "-7", "0.125".
    pub fn to_decimal_string(&self) -> String {
        format_minor(self.minor, self.currency)
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or_else(|| MoneyError::Overflow {
                value: format!(
                    "{} + {}",
                    self.to_decimal_string(),
                    other.to_decimal_string()
                ),
            })?;
        Ok(Money::new(minor, self.currency))
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// Formats minor units as a plain decimal string in major units ("-1234.56").
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let exp = u32::from(currency.exponent());
    let negative = minor < 0;
    let abs = minor.unsigned_abs();
    if exp == 0 {
        return format!("{}{}", if negative { "-" } else { "" }, abs);
    }
    let unit = 10u64.pow(exp);
    format!(
        "{}{}.{:0width$}",
        if negative { "-" } else { "" },
        abs / unit,
        abs % unit,
        width = exp as usize
    )
}

/// Formats minor units with thousands separators for humans ("1,234.56").
pub fn format_minor_grouped(minor: i64, currency: Currency) -> String {
    let plain = format_minor(minor, currency);
    let (sign, rest) = match plain.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", plain.as_str()),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn parse_minor(value: &str, currency: Currency, style: DecimalStyle) -> Result<i64, MoneyError> {
    let not_an_amount = || MoneyError::NotAnAmount {
        value: value.to_string(),
    };
    let mut s = value.trim();
    let mut negative = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        negative = true;
        s = inner.trim();
    }
    if let Some(r) = s.strip_prefix('-') {
        if negative {
            return Err(not_an_amount());
        }
        negative = true;
        s = r.trim_start();
    } else if let Some(r) = s.strip_prefix('+') {
        s = r.trim_start();
    }
    if s.is_empty() {
        return Err(not_an_amount());
    }
    let exp = u32::from(currency.exponent());
    let mut int_digits: i128 = 0;
    let mut frac_digits: i128 = 0;
    let mut frac_len = 0u32;
    let mut seen_decimal = false;
    let mut any_digit = false;
    let mut extra_nonzero = false;
    // Thousands separators must separate groups of three digits ("1,234,567"):
    // accepting one anywhere would read "12,50" (a decimal comma in a file
    // declared as decimal point) as 1250 instead of rejecting it.
    let mut group_len = 0u32;
    let mut grouped = false;
    let misplaced_separator = || MoneyError::MisplacedSeparator {
        value: value.to_string(),
    };
    for ch in s.chars() {
        if ch == style.decimal {
            if seen_decimal {
                return Err(not_an_amount());
            }
            if grouped && group_len != 3 {
                return Err(misplaced_separator());
            }
            seen_decimal = true;
        } else if let Some(d) = ch.to_digit(10) {
            if !seen_decimal {
                group_len += 1;
            }
            any_digit = true;
            if seen_decimal {
                if frac_len < exp {
                    frac_digits = frac_digits * 10 + i128::from(d);
                    frac_len += 1;
                } else if d != 0 {
                    extra_nonzero = true;
                }
            } else {
                int_digits = int_digits * 10 + i128::from(d);
                if int_digits > i128::from(i64::MAX) {
                    return Err(MoneyError::Overflow {
                        value: value.to_string(),
                    });
                }
            }
        } else if Some(ch) == style.thousands && !seen_decimal {
            let first_group_ok = !grouped && (1..=3).contains(&group_len);
            if !(first_group_ok || (grouped && group_len == 3)) {
                return Err(misplaced_separator());
            }
            grouped = true;
            group_len = 0;
        } else {
            return Err(not_an_amount());
        }
    }
    if !any_digit {
        return Err(not_an_amount());
    }
    if grouped && !seen_decimal && group_len != 3 {
        return Err(misplaced_separator());
    }
    if extra_nonzero {
        return Err(MoneyError::TooManyDecimals {
            value: value.to_string(),
            currency,
            exponent: currency.exponent(),
        });
    }
    let scale = 10i128.pow(exp);
    let minor = int_digits * scale + frac_digits * 10i128.pow(exp - frac_len);
    let minor = if negative { -minor } else { minor };
    i64::try_from(minor).map_err(|_| MoneyError::Overflow {
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(s: &str) -> Result<i64, MoneyError> {
        parse_minor(s, Currency::USD, DecimalStyle::POINT)
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::parse("usd").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("BHD").unwrap().exponent(), 3);
        assert!(matches!(
            Currency::parse("XAU"),
            Err(MoneyError::NoMinorUnit(_))
        ));
        assert!(matches!(
            Currency::parse("ABC"),
            Err(MoneyError::UnknownCurrency(_))
        ));
    }

    #[test]
    fn parses_the_tagged_form_and_explains_what_is_wrong() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::parse_tagged("15.00 EUR"), Ok(Money::new(1_500, eur)));
        assert_eq!(
            Money::parse_tagged(" 1500  JPY "),
            Ok(Money::new(1_500, Currency::parse("JPY").unwrap()))
        );
        assert_eq!(
            Money::parse_tagged("15.00").unwrap_err().to_string(),
            "'15.00' is not an amount with its currency (expected e.g. \"15.00 EUR\")"
        );
        assert!(matches!(
            Money::parse_tagged("15.00 EURO"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        // A decimal point only: "1,50 EUR" is not 150.00.
        assert!(Money::parse_tagged("1,50 EUR").is_err());
    }

    #[test]
    fn parses_common_amount_spellings() {
        assert_eq!(usd("12.5"), Ok(1250));
        assert_eq!(usd("1,234.56"), Ok(123456));
        assert_eq!(usd("-0.01"), Ok(-1));
        assert_eq!(usd("(12.00)"), Ok(-1200));
        assert_eq!(usd("+7"), Ok(700));
        assert_eq!(usd("12.500"), Ok(1250));
        assert_eq!(usd("1,234,567.89"), Ok(123456789));
        assert!(matches!(
            usd("12,50"),
            Err(MoneyError::MisplacedSeparator { .. })
        ));
        assert!(matches!(
            usd("1,5"),
            Err(MoneyError::MisplacedSeparator { .. })
        ));
        assert!(matches!(
            usd("1234,567.00"),
            Err(MoneyError::MisplacedSeparator { .. })
        ));
        assert!(matches!(
            usd("1,23,456"),
            Err(MoneyError::MisplacedSeparator { .. })
        ));
        assert!(matches!(
            usd(",123"),
            Err(MoneyError::MisplacedSeparator { .. })
        ));
        assert!(matches!(
            parse_minor("99.99", Currency::EUR, DecimalStyle::COMMA),
            Err(MoneyError::MisplacedSeparator { .. })
        ));
        assert!(matches!(
            usd("12.505"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(usd("12.3.4"), Err(MoneyError::NotAnAmount { .. })));
        assert!(matches!(usd("abc"), Err(MoneyError::NotAnAmount { .. })));
        assert!(matches!(usd(""), Err(MoneyError::NotAnAmount { .. })));
        assert!(matches!(
            usd("99999999999999999999"),
            Err(MoneyError::Overflow { .. })
        ));
        assert_eq!(
            parse_minor("1.234,56", Currency::EUR, DecimalStyle::COMMA),
            Ok(123456)
        );
        assert_eq!(
            parse_minor(
                "1 234,5",
                Currency::EUR,
                DecimalStyle {
                    decimal: ',',
                    thousands: Some(' ')
                }
            ),
            Ok(123450)
        );
        assert_eq!(
            parse_minor("1234", Currency::JPY, DecimalStyle::POINT),
            Ok(1234)
        );
        assert_eq!(
            parse_minor(
                "1.234",
                Currency::parse("BHD").unwrap(),
                DecimalStyle::POINT
            ),
            Ok(1234)
        );
    }

    #[test]
    fn formats_in_major_units() {
        assert_eq!(format_minor(123456, Currency::USD), "1234.56");
        assert_eq!(format_minor(-5, Currency::USD), "-0.05");
        assert_eq!(format_minor(1234, Currency::JPY), "1234");
        assert_eq!(format_minor(1234, Currency::parse("BHD").unwrap()), "1.234");
        assert_eq!(
            format_minor_grouped(123456789, Currency::USD),
            "1,234,567.89"
        );
        assert_eq!(format_minor_grouped(-100000, Currency::JPY), "-100,000");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in -1_000_000_000_000i64..1_000_000_000_000, code in prop::sample::select(vec!["USD", "JPY", "BHD", "EUR", "CLF"])) {
            let c = Currency::parse(code).unwrap();
            let s = format_minor(minor, c);
            prop_assert_eq!(parse_minor(&s, c, DecimalStyle::POINT), Ok(minor));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}") {
            let _ = parse_minor(&s, Currency::USD, DecimalStyle::POINT);
            let _ = parse_minor(&s, Currency::EUR, DecimalStyle::COMMA);
        }
    }
}
