//! Languages and locale-aware formatting of money and dates for messages.
//!
//! Formatting is done here rather than through ICU4X: its currency formatter
//! is still experimental and its data would dwarf this crate, while the four
//! shipped languages need only separators, symbol placement and a date
//! pattern. Amounts always come from integer minor units with the currency's
//! own exponent, so JPY shows no decimals and BHD three.

use arflow_domain::money::{Currency, format_minor};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// No-break space: keeps an amount and its currency symbol on one line.
const NBSP: char = '\u{a0}';
/// Narrow no-break space: the French thousands separator (CLDR).
const NNBSP: char = '\u{202f}';

/// A language reminders are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::De, Lang::Fr, Lang::Es];

    /// The ISO 639-1 code, also the template directory name.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    /// The language for an exact two-letter code ("de"), if supported.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(code))
    }

    /// The language for a BCP 47 tag: its primary language subtag decides
    /// ("de-AT" → German, "fr_CA" → French); anything unsupported, empty or
    /// malformed falls back to English.
    pub fn from_tag(tag: &str) -> Lang {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        Lang::from_code(primary).unwrap_or(Lang::En)
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The symbol `lang` writes for `currency`, or `None` to write the ISO code.
/// Symbols follow CLDR; a bare "$" is only used where the language's own
/// convention makes it mean US dollars.
fn symbol(currency: Currency, lang: Lang) -> Option<&'static str> {
    let code = currency.code();
    let s = match (lang, code) {
        (_, "EUR") => "€",
        (Lang::En, "USD") | (Lang::De, "USD") => "$",
        (Lang::Fr, "USD") => "$US",
        (Lang::Es, "USD") => "US$",
        (Lang::En, "GBP") | (Lang::De, "GBP") => "£",
        (Lang::Fr, "GBP") => "£GB",
        (Lang::En, "JPY") | (Lang::De, "JPY") => "¥",
        (Lang::En, "CAD") => "CA$",
        (Lang::Fr, "CAD") => "$CA",
        (Lang::En, "AUD") => "A$",
        _ => return None,
    };
    Some(s)
}

/// Formats `minor` units of `currency` for `lang`:
/// en "$1,234.56" / "BHD 1,234.567", de "1.234,56 €", fr "1 234,56 €"
/// (narrow no-break space between groups), es "1.234,56 €", JPY "¥1,235".
pub fn format_money(minor: i64, currency: Currency, lang: Lang) -> String {
    let plain = format_minor(minor, currency);
    let (negative, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.as_str()),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let (group, decimal) = match lang {
        Lang::En => (',', '.'),
        Lang::De | Lang::Es => ('.', ','),
        Lang::Fr => (NNBSP, ','),
    };
    let mut number = String::with_capacity(digits.len() + 8);
    let len = int.chars().count();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (len - i) % 3 == 0 {
            number.push(group);
        }
        number.push(ch);
    }
    if let Some(f) = frac {
        number.push(decimal);
        number.push_str(f);
    }
    let sign = if negative { "-" } else { "" };
    match (lang, symbol(currency, lang)) {
        (Lang::En, Some(sym)) => format!("{sign}{sym}{number}"),
        (Lang::En, None) => format!("{sign}{}{NBSP}{number}", currency.code()),
        (_, sym) => format!("{sign}{number}{NBSP}{}", sym.unwrap_or(currency.code())),
    }
}

const EN_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats a date for `lang`: en "3 Dec 2026" (day first, unambiguous on
/// both sides of the Atlantic), de "03.12.2026", fr and es "03/12/2026".
pub fn format_date(date: Date, lang: Lang) -> String {
    let (y, m, d) = (date.year(), date.month(), date.day());
    match lang {
        Lang::En => {
            // month() is 1..=12 by construction of a civil date.
            let month = EN_MONTHS
                .get(usize::from(m.unsigned_abs()).saturating_sub(1))
                .copied()
                .unwrap_or("");
            format!("{d} {month} {y}")
        }
        Lang::De => format!("{d:02}.{m:02}.{y}"),
        Lang::Fr | Lang::Es => format!("{d:02}/{m:02}/{y}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).expect("test currency")
    }

    #[test]
    fn language_from_tag() {
        assert_eq!(Lang::from_tag("de-AT"), Lang::De);
        assert_eq!(Lang::from_tag("fr_CA"), Lang::Fr);
        assert_eq!(Lang::from_tag("ES"), Lang::Es);
        assert_eq!(Lang::from_tag("en-GB"), Lang::En);
        assert_eq!(Lang::from_tag("pt-BR"), Lang::En);
        assert_eq!(Lang::from_tag(""), Lang::En);
        assert_eq!(Lang::from_tag("-"), Lang::En);
    }

    #[test]
    fn money_per_language() {
        let eur = Currency::EUR;
        assert_eq!(format_money(123456, Currency::USD, Lang::En), "$1,234.56");
        assert_eq!(format_money(123456, eur, Lang::En), "€1,234.56");
        assert_eq!(format_money(123456, eur, Lang::De), "1.234,56\u{a0}€");
        assert_eq!(
            format_money(123456, eur, Lang::Fr),
            "1\u{202f}234,56\u{a0}€"
        );
        assert_eq!(format_money(123456, eur, Lang::Es), "1.234,56\u{a0}€");
        assert_eq!(format_money(-5, eur, Lang::De), "-0,05\u{a0}€");
        assert_eq!(format_money(100_000_000, eur, Lang::En), "€1,000,000.00");
        assert_eq!(format_money(99_999, eur, Lang::En), "€999.99");
        assert_eq!(
            format_money(123456, cur("CHF"), Lang::De),
            "1.234,56\u{a0}CHF"
        );
        assert_eq!(
            format_money(123456, cur("SEK"), Lang::En),
            "SEK\u{a0}1,234.56"
        );
    }

    #[test]
    fn money_uses_the_currency_exponent() {
        assert_eq!(format_money(1235, Currency::JPY, Lang::En), "¥1,235");
        assert_eq!(format_money(1235, Currency::JPY, Lang::De), "1.235\u{a0}¥");
        assert_eq!(
            format_money(1235, Currency::JPY, Lang::Fr),
            "1\u{202f}235\u{a0}JPY"
        );
        let bhd = cur("BHD");
        assert_eq!(format_money(1_234_567, bhd, Lang::En), "BHD\u{a0}1,234.567");
        assert_eq!(format_money(1_234_567, bhd, Lang::Es), "1.234,567\u{a0}BHD");
        assert_eq!(format_money(7, bhd, Lang::Fr), "0,007\u{a0}BHD");
    }

    #[test]
    fn dates_per_language() {
        let d = date(2026, 12, 3);
        assert_eq!(format_date(d, Lang::En), "3 Dec 2026");
        assert_eq!(format_date(d, Lang::De), "03.12.2026");
        assert_eq!(format_date(d, Lang::Fr), "03/12/2026");
        assert_eq!(format_date(d, Lang::Es), "03/12/2026");
        assert_eq!(format_date(date(2027, 1, 31), Lang::En), "31 Jan 2027");
    }
}
