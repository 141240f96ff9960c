//! Cell parsing: dates, amounts and booleans. No allocation on the happy path.

use std::fmt;

use arflow_domain::money::{Currency, DecimalStyle, Money, MoneyError};
use jiff::civil::Date;

/// How dates are written in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateFormat {
    /// Numeric day, month and year in this order with one separator, e.g. `%d/%m/%Y`.
    Numeric {
        order: [u8; 3],
        sep: char,
        pattern: String,
    },
    /// Anything else: a jiff strftime pattern.
    Strtime(String),
}

impl DateFormat {
    pub const ISO: &'static str = "%Y-%m-%d";

    /// Accepts strftime patterns ("%d/%m/%Y") and the short forms "Y-m-d", "d/m/Y", "m/d/Y", "d.m.Y".
    pub fn parse(pattern: &str) -> Result<DateFormat, String> {
        let p = pattern.trim();
        let short: String = p.replace('%', "");
        let chars: Vec<char> = short.chars().collect();
        if chars.len() == 5 && chars[1] == chars[3] && !chars[1].is_ascii_alphanumeric() {
            let mut order = [0u8; 3];
            let mut ok = true;
            for (k, c) in [chars[0], chars[2], chars[4]].into_iter().enumerate() {
                order[k] = match c {
                    'Y' => b'Y',
                    'm' => b'm',
                    'd' => b'd',
                    _ => {
                        ok = false;
                        0
                    }
                };
            }
            let mut sorted = order;
            sorted.sort_unstable();
            if ok && sorted == [b'Y', b'd', b'm'] {
                let pattern = format!(
                    "%{}{}%{}{}%{}",
                    chars[0], chars[1], chars[2], chars[1], chars[4]
                );
                return Ok(DateFormat::Numeric {
                    order,
                    sep: chars[1],
                    pattern,
                });
            }
        }
        if !p.contains('%') {
            return Err(format!(
                "'{pattern}' is not a date format (use e.g. \"%Y-%m-%d\", \"%d/%m/%Y\", \"%m/%d/%Y\" or \"%d.%m.%Y\")"
            ));
        }
        // Validate the pattern once by formatting a date with it.
        jiff::fmt::strtime::format(p, jiff::civil::date(2024, 1, 31))
            .map_err(|e| format!("'{pattern}' is not a date format: {e}"))?;
        Ok(DateFormat::Strtime(p.to_string()))
    }

    pub fn pattern(&self) -> &str {
        match self {
            DateFormat::Numeric { pattern, .. } => pattern,
            DateFormat::Strtime(p) => p,
        }
    }

    pub fn parse_date(&self, s: &str) -> Option<Date> {
        match self {
            DateFormat::Numeric { order, sep, .. } => {
                // Fast path for the ISO layout every arflow/QBO/Xero export starts with:
                // `YYYY-MM-DD` read straight from the bytes. The general loop below gives
                // the same answer (it accepts these parts and calls `Date::new` with the same
                // numbers) but splits and parses each part separately, which shows up on
                // million-row files.
                if *order == [b'Y', b'm', b'd']
                    && *sep == '-'
                    && let Some((y, m, d)) = iso_date_parts(s.as_bytes())
                {
                    return Date::new(y, m, d).ok();
                }
                let mut it = s.split(*sep);
                let (a, b, c) = (it.next()?, it.next()?, it.next()?);
                if it.next().is_some() {
                    return None;
                }
                let (mut y, mut m, mut d) = (None, None, None);
                for (part, which) in [a, b, c].into_iter().zip(order) {
                    if part.is_empty()
                        || part.len() > 4
                        || !part.bytes().all(|b| b.is_ascii_digit())
                    {
                        return None;
                    }
                    let v: i16 = part.parse().ok()?;
                    match which {
                        b'Y' if part.len() == 4 => y = Some(v),
                        b'm' if part.len() <= 2 => m = Some(v),
                        b'd' if part.len() <= 2 => d = Some(v),
                        _ => return None,
                    }
                }
                Date::new(y?, i8::try_from(m?).ok()?, i8::try_from(d?).ok()?).ok()
            }
            DateFormat::Strtime(p) => jiff::fmt::strtime::parse(p, s).ok()?.to_date().ok(),
        }
    }
}

impl fmt::Display for DateFormat {
    /// Human form of the pattern for error messages: "%m/%d/%Y" → "MM/DD/YYYY".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self
            .pattern()
            .replace("%Y", "YYYY")
            .replace("%m", "MM")
            .replace("%d", "DD")
            .replace("%b", "Mon");
        f.write_str(&p)
    }
}

/// `YYYY-MM-DD` (exactly ten bytes, ASCII digits) → its numbers; None for anything else.
fn iso_date_parts(b: &[u8]) -> Option<(i16, i8, i8)> {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = b else {
        return None;
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| c - b'0');
    let y = [y0, y1, y2, y3]
        .into_iter()
        .try_fold(0i16, |acc, c| Some(acc * 10 + i16::from(digit(c)?)))?;
    let m = digit(m0)? * 10 + digit(m1)?;
    let d = digit(d0)? * 10 + digit(d1)?;
    Some((y, m as i8, d as i8))
}

/// Years a ledger date may have. Both backends must accept every date that
/// passes (PostgreSQL has no year 0), and anything outside is a typo.
pub const DATE_YEARS: std::ops::RangeInclusive<i16> = 1900..=2199;

/// Parses with the first format that fits.
pub fn parse_date(s: &str, formats: &[DateFormat]) -> Result<Date, String> {
    for f in formats {
        if let Some(d) = f.parse_date(s) {
            if !DATE_YEARS.contains(&d.year()) {
                return Err(format!(
                    "year {} is outside {}..{}",
                    d.year(),
                    DATE_YEARS.start(),
                    DATE_YEARS.end()
                ));
            }
            return Ok(d);
        }
    }
    let expected: Vec<String> = formats.iter().map(|f| f.to_string()).collect();
    Err(format!("not a date (expected {})", expected.join(" or ")))
}

/// Parses a boolean cell: true/false, yes/no, y/n, 1/0 (case-insensitive).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    const T: &[&str] = &["true", "yes", "y", "1", "t"];
    const F: &[&str] = &["false", "no", "n", "0", "f"];
    if T.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Ok(true)
    } else if F.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Ok(false)
    } else {
        Err("not a boolean (expected true/false, yes/no, y/n or 1/0)".into())
    }
}

/// The largest amount one record may carry, in minor units (10^12: ten billion
/// dollars, a trillion yen). Far above any invoice a business sends, and low
/// enough that sums over millions of records can never overflow an i64.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// Parses a non-negative amount in minor units. Currency symbols are not accepted.
pub fn parse_amount(s: &str, currency: Currency, style: DecimalStyle) -> Result<i64, String> {
    let minor = parse_amount_unchecked(s, currency, style)?;
    if minor > MAX_AMOUNT_MINOR {
        return Err(format!(
            "amount too large (at most {} {currency} per record)",
            arflow_domain::money::format_minor_grouped(MAX_AMOUNT_MINOR, currency)
        ));
    }
    Ok(minor)
}

fn parse_amount_unchecked(s: &str, currency: Currency, style: DecimalStyle) -> Result<i64, String> {
    if let Some(minor) = plain_decimal(s.as_bytes(), currency.exponent(), style.decimal) {
        return Ok(minor);
    }
    match Money::parse(s, currency, style) {
        Ok(m) if m.minor < 0 => Err("negative amount (amounts must be 0 or more)".into()),
        Ok(m) => Ok(m.minor),
        Err(MoneyError::MisplacedSeparator { .. }) => Err(format!(
            "misplaced thousands separator (this file's decimal separator is '{}'; set decimal_separator in a mapping if it differs)",
            style.decimal
        )),
        Err(MoneyError::TooManyDecimals {
            currency, exponent, ..
        }) => Err(format!("too many decimals: {currency} has {exponent}")),
        Err(MoneyError::Overflow { .. }) => Err("amount too large".into()),
        Err(_) => Err(format!(
            "not an amount (expected digits with '{}' as decimal separator)",
            style.decimal
        )),
    }
}

/// Fast path for the common spelling of an amount: ASCII digits with at most one decimal
/// separator and no more decimals than the currency has (`1234`, `1234.5`, `0.99`).
/// Gives what `Money::parse` gives for such input; None sends everything else (signs,
/// thousands separators, parentheses, too many decimals, overflow) to `Money::parse`.
fn plain_decimal(b: &[u8], exponent: u8, decimal: char) -> Option<i64> {
    let exp = u32::from(exponent);
    let (int, frac) = match decimal.is_ascii() && !decimal.is_ascii_digit() {
        true => match b.iter().position(|&c| c == decimal as u8) {
            Some(i) => (&b[..i], &b[i + 1..]),
            None => (b, &b[..0]),
        },
        false => (b, &b[..0]),
    };
    // 18 digits always fit an i64; longer (and overflow) takes the general path.
    let digits = int.len() + frac.len();
    if digits == 0 || digits > 18 || frac.len() > exp as usize {
        return None;
    }
    let mut minor: i64 = 0;
    for &c in int.iter().chain(frac) {
        if !c.is_ascii_digit() {
            return None;
        }
        minor = minor * 10 + i64::from(c - b'0');
    }
    minor.checked_mul(10i64.checked_pow(exp - frac.len() as u32)?)
}

thread_local! {
    /// The last currency code parsed: files repeat one or two codes on every row, and
    /// `Currency::parse` allocates for each call.
    static LAST_CURRENCY: std::cell::Cell<Option<([u8; 3], Currency)>> =
        const { std::cell::Cell::new(None) };
}

pub fn parse_currency(s: &str) -> Result<Currency, String> {
    // `Currency::parse` depends only on the upper-cased trimmed code, so a hit on the same
    // upper-cased three letters is the same answer.
    let key = match s.as_bytes() {
        &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_alphabetic) => Some([
            a.to_ascii_uppercase(),
            b.to_ascii_uppercase(),
            c.to_ascii_uppercase(),
        ]),
        _ => None,
    };
    if let Some(k) = key
        && let Some((_, c)) = LAST_CURRENCY.get().filter(|(last, _)| *last == k)
    {
        return Ok(c);
    }
    let c = Currency::parse(s).map_err(|e| e.to_string())?;
    if let Some(k) = key {
        LAST_CURRENCY.set(Some((k, c)));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn dates_in_common_layouts() {
        let us = DateFormat::parse("%m/%d/%Y").unwrap();
        assert_eq!(us.parse_date("4/6/2013"), Some(date(2013, 4, 6)));
        assert_eq!(us.parse_date("13/6/2013"), None);
        let de = DateFormat::parse("d.m.Y").unwrap();
        assert_eq!(de.parse_date("31.12.2024"), Some(date(2024, 12, 31)));
        assert_eq!(de.to_string(), "DD.MM.YYYY");
        let iso = DateFormat::parse(DateFormat::ISO).unwrap();
        assert_eq!(iso.parse_date("2024-02-29"), Some(date(2024, 2, 29)));
        assert_eq!(iso.parse_date("2023-02-29"), None);
        assert_eq!(iso.parse_date("2024-1-1-1"), None);
        let long = DateFormat::parse("%d %b %Y").unwrap();
        assert_eq!(long.parse_date("05 Mar 2024"), Some(date(2024, 3, 5)));
        assert!(DateFormat::parse("dd-mm").is_err());
        assert_eq!(
            parse_date("2024-13-01", &[iso]).unwrap_err(),
            "not a date (expected YYYY-MM-DD)"
        );
    }

    #[test]
    fn amounts_and_booleans() {
        assert_eq!(
            parse_amount("1,234.50", Currency::USD, DecimalStyle::POINT),
            Ok(123450)
        );
        assert!(
            parse_amount("-1", Currency::USD, DecimalStyle::POINT)
                .unwrap_err()
                .contains("negative")
        );
        assert!(
            parse_amount("1.234", Currency::USD, DecimalStyle::POINT)
                .unwrap_err()
                .contains("too many decimals")
        );
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert!(parse_bool("maybe").is_err());
    }
}
