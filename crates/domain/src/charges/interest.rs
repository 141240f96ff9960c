//! Statutory late-payment interest: simple interest, actual/365, counted from
//! the day after the due date up to and including the calculation date.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::{ChargeError, rates, round_to_minor};
use crate::money::{Currency, Money};

/// A statutory late-payment regime for business-to-business debts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Regime {
    /// Directive 2011/7/EU on combating late payment in commercial
    /// transactions, art. 2(5)-(6), 3, 6: the ECB main refinancing rate in
    /// force on 1 January (first half-year) or 1 July (second half-year) plus
    /// at least 8 percentage points; EUR 40 fixed compensation per invoice.
    /// Euro debts only: outside the euro area the reference rate is the
    /// national central bank's.
    Eu2011_7,
    /// Late Payment of Commercial Debts (Interest) Act 1998 (UK), with the
    /// Late Payment of Commercial Debts (Rate of Interest) (No. 3) Order 2002:
    /// Bank of England Bank Rate in force on 31 December (debts becoming
    /// overdue January-June) or 30 June (July-December) plus 8 points, fixed
    /// for the life of the debt; s. 5A fixed sum £40 (debt under £1,000), £70
    /// (£1,000 to under £10,000), £100 (£10,000 or more).
    UkLatePayment1998,
    /// § 288 Abs. 2 BGB (Germany, claims for payment where no consumer is a
    /// party): Basiszinssatz (§ 247 BGB, set 1 January and 1 July) plus 9
    /// points; § 288 Abs. 5 BGB EUR 40 Pauschale.
    DeBgb288,
    /// Article L441-10 Code de commerce (France): the ECB's rate for its most
    /// recent refinancing operation, taken as in force on 1 January / 1 July
    /// for the half-year, plus 10 points; article D441-5 EUR 40 indemnité
    /// forfaitaire pour frais de recouvrement.
    FrL441_10,
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Regime::Eu2011_7 => "EU Directive 2011/7/EU",
            Regime::UkLatePayment1998 => "UK Late Payment of Commercial Debts (Interest) Act 1998",
            Regime::DeBgb288 => "§ 288 BGB",
            Regime::FrL441_10 => "article L441-10 Code de commerce",
        })
    }
}

impl Regime {
    /// Points added to the reference rate, in basis points.
    pub fn margin_bp(self) -> i64 {
        match self {
            Regime::Eu2011_7 | Regime::UkLatePayment1998 => 800,
            Regime::DeBgb288 => 900,
            Regime::FrL441_10 => 1000,
        }
    }

    /// The currency the regime's fixed compensation is stated in.
    pub fn currency(self) -> Currency {
        match self {
            Regime::UkLatePayment1998 => Currency::GBP,
            _ => Currency::EUR,
        }
    }

    /// The reference-rate table the regime's rate is built on.
    pub fn reference_table(self) -> &'static rates::RateTable {
        match self {
            Regime::Eu2011_7 | Regime::FrL441_10 => rates::ecb_mro(),
            Regime::UkLatePayment1998 => rates::boe_bank_rate(),
            Regime::DeBgb288 => rates::de_basiszinssatz(),
        }
    }

    /// Fixed compensation for one debt (per invoice), in the regime's currency.
    pub fn compensation(self, principal: Money) -> Result<Money, ChargeError> {
        self.check_currency(principal)?;
        let minor = match self {
            // s. 5A(2): bands on the debt's amount, in whole pounds.
            Regime::UkLatePayment1998 => match principal.minor {
                m if m < 100_000 => 4_000,
                m if m < 1_000_000 => 7_000,
                _ => 10_000,
            },
            _ => 4_000,
        };
        Ok(Money::new(minor, self.currency()))
    }

    fn check_currency(self, principal: Money) -> Result<(), ChargeError> {
        let expected = self.currency();
        if principal.currency == expected {
            return Ok(());
        }
        let why = match self {
            Regime::UkLatePayment1998 => {
                "the Act's fixed sums are set in pounds by debt band; convert the debt first if the contract allows"
            }
            _ => {
                "the fixed compensation is EUR 40 and the reference rate is the ECB's, which only fit euro debts"
            }
        };
        Err(ChargeError::UnsupportedCurrency {
            regime: self,
            expected,
            found: principal.currency,
            why,
        })
    }
}

/// One stretch of days charged at one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// First day charged (inclusive).
    pub from: Date,
    /// Last day charged (inclusive).
    pub to: Date,
    pub days: i64,
    /// The reference rate (central-bank rate) used, in basis points.
    pub reference_bp: i64,
    /// The statutory rate: reference plus the regime's margin.
    pub rate_bp: i64,
    /// This segment's share of the rounded total (see [`InterestCalc`]).
    pub interest: Money,
}

/// A statutory interest claim with its workings, for a reminder to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterestCalc {
    pub regime: Regime,
    pub principal: Money,
    pub due: Date,
    pub until: Date,
    /// Empty when `until` is on or before the due date.
    pub segments: Vec<Segment>,
    /// Total interest, rounded once from the exact sum over segments. The
    /// segments' `interest` values are that total split by cumulative
    /// rounding, so they always add up to it exactly.
    pub interest: Money,
    /// Fixed compensation per invoice; zero when the debt is not yet overdue.
    pub compensation: Money,
}

impl InterestCalc {
    pub fn total(&self) -> Money {
        Money::new(
            self.interest.minor + self.compensation.minor,
            self.principal.currency,
        )
    }
}

/// Denominator of `principal × rate_bp × days / (10 000 × 365)`.
const DENOM: i128 = 10_000 * 365;

/// Simple interest on `principal_minor` at `rate_bp` (annual, basis points)
/// for `days`, actual/365, rounded half away from zero to the minor unit.
/// Errors only when the result does not fit an `i64`.
pub fn simple_interest(principal_minor: i64, rate_bp: i64, days: i64) -> Result<i64, ChargeError> {
    let num = i128::from(principal_minor) * i128::from(rate_bp) * i128::from(days);
    round_to_minor(num, DENOM)
}

/// Statutory interest and fixed compensation on `principal`, due on `due`,
/// counted from the day after `due` up to and including `until`.
///
/// EU, DE and FR rates change by half-year, so the period is split at 1
/// January and 1 July and each half-year uses its own rate; the UK rate is
/// fixed when the debt becomes overdue, so there is one segment.
pub fn statutory_interest(
    regime: Regime,
    principal: Money,
    due: Date,
    until: Date,
) -> Result<InterestCalc, ChargeError> {
    if principal.minor <= 0 {
        return Err(ChargeError::NonPositivePrincipal(principal));
    }
    regime.check_currency(principal)?;
    let currency = principal.currency;
    let mut calc = InterestCalc {
        regime,
        principal,
        due,
        until,
        segments: Vec::new(),
        interest: Money::zero(currency),
        compensation: Money::zero(currency),
    };
    if until <= due {
        return Ok(calc);
    }
    let first = due.tomorrow().map_err(|_| ChargeError::DateOutOfRange)?;
    let table = regime.reference_table();
    // (from, to, reference_bp) stretches
    let mut spans: Vec<(Date, Date, i64)> = Vec::new();
    if regime == Regime::UkLatePayment1998 {
        // Rate fixed on the reference day before the half-year in which the
        // debt became overdue (its first day of interest).
        let reference_day = if first.month() <= 6 {
            Date::new(first.year() - 1, 12, 31)
        } else {
            Date::new(first.year(), 6, 30)
        }
        .map_err(|_| ChargeError::DateOutOfRange)?;
        spans.push((first, until, table.rate_on(reference_day)?));
    } else {
        let mut from = first;
        while from <= until {
            let (start, next) = half_year(from)?;
            let to = match next {
                Some(n) if n <= until => n.yesterday().map_err(|_| ChargeError::DateOutOfRange)?,
                _ => until,
            };
            spans.push((from, to, table.rate_on(start)?));
            match next {
                Some(n) if n <= until => from = n,
                _ => break,
            }
        }
    }
    // Exact numerators over the common denominator; round the total once and
    // split it by cumulative rounding.
    let mut cumulative: i128 = 0;
    let mut shown_so_far: i64 = 0;
    for (from, to, reference_bp) in spans {
        let days = days_inclusive(from, to)?;
        let rate_bp = reference_bp + regime.margin_bp();
        let num = i128::from(principal.minor) * i128::from(rate_bp) * i128::from(days);
        cumulative = cumulative.checked_add(num).ok_or(ChargeError::Overflow)?;
        let rounded = round_to_minor(cumulative, DENOM)?;
        calc.segments.push(Segment {
            from,
            to,
            days,
            reference_bp,
            rate_bp,
            interest: Money::new(rounded - shown_so_far, currency),
        });
        shown_so_far = rounded;
    }
    calc.interest = Money::new(shown_so_far, currency);
    calc.compensation = regime.compensation(principal)?;
    Ok(calc)
}

/// The start of `d`'s half-year and the start of the next one (None past year 9999).
fn half_year(d: Date) -> Result<(Date, Option<Date>), ChargeError> {
    let oor = |_| ChargeError::DateOutOfRange;
    if d.month() <= 6 {
        Ok((
            Date::new(d.year(), 1, 1).map_err(oor)?,
            Date::new(d.year(), 7, 1).ok(),
        ))
    } else {
        let next = d
            .year()
            .checked_add(1)
            .and_then(|y| Date::new(y, 1, 1).ok());
        Ok((Date::new(d.year(), 7, 1).map_err(oor)?, next))
    }
}

fn days_inclusive(from: Date, to: Date) -> Result<i64, ChargeError> {
    let span = from.until(to).map_err(|_| ChargeError::DateOutOfRange)?;
    Ok(i64::from(span.get_days()) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn gbp(minor: i64) -> Money {
        Money::new(minor, Currency::GBP)
    }
    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    /// From the issue: £10,000 at 12 % for 45 days = £147.95 (147.945… rounds
    /// half away from zero), plus the £100 fixed sum for a debt of £10,000.
    #[test]
    fn uk_issue_example() {
        assert_eq!(simple_interest(1_000_000, 1200, 45), Ok(14_795));
        assert_eq!(
            Regime::UkLatePayment1998.compensation(gbp(1_000_000)),
            Ok(gbp(10_000))
        );
    }

    /// Published examples of the day-count formula (debt × rate × days / 365):
    /// - danielssilverman.co.uk statutory interest calculator: £1,000 at 12 %
    ///   (4 % base + 8) for 30 days = £9.86;
    /// - payontime.co.uk forum (Late Payment Act): £262.25 at 8.5 % for 139
    ///   days = £8.49, compensation £40;
    /// - anleiter.de "Wie berechnet man Verzugszinsen": EUR 1,000 at 5.12 %
    ///   for 25 days = EUR 3.51 (a consumer rate, but the same formula);
    /// - agenceipro.com "pénalités de retard": EUR 15,000 TTC at 15 % for 30
    ///   days = EUR 184.93.
    #[test]
    fn published_day_count_examples() {
        assert_eq!(simple_interest(100_000, 1200, 30), Ok(986));
        assert_eq!(simple_interest(26_225, 850, 139), Ok(849));
        assert_eq!(
            Regime::UkLatePayment1998.compensation(gbp(26_225)),
            Ok(gbp(4_000))
        );
        assert_eq!(simple_interest(100_000, 512, 25), Ok(351));
        assert_eq!(simple_interest(1_500_000, 1500, 30), Ok(18_493));
    }

    #[test]
    fn uk_compensation_bands() {
        let c = |m| {
            Regime::UkLatePayment1998
                .compensation(gbp(m))
                .unwrap()
                .minor
        };
        assert_eq!(c(99_999), 4_000);
        assert_eq!(c(100_000), 7_000);
        assert_eq!(c(999_999), 7_000);
        assert_eq!(c(1_000_000), 10_000);
    }

    /// Hand-computed (no published example found for this exact case): £10,000
    /// due 2024-03-15, claimed to 2024-08-31. Overdue from 2024-03-16 (first
    /// half-year) so the rate is Bank Rate on 2023-12-31 (5.25 %) + 8 = 13.25 %,
    /// kept after the August 2024 cut: 169 days × 10,000 × 0.1325 / 365
    /// = 613.49315… → £613.49, plus £100.
    #[test]
    fn uk_rate_is_fixed_for_the_life_of_the_debt() {
        let c = statutory_interest(
            Regime::UkLatePayment1998,
            gbp(1_000_000),
            date(2024, 3, 15),
            date(2024, 8, 31),
        )
        .unwrap();
        assert_eq!(c.segments.len(), 1);
        assert_eq!(c.segments[0].rate_bp, 1325);
        assert_eq!(c.segments[0].days, 169);
        assert_eq!(c.interest, gbp(61_349));
        assert_eq!(c.compensation, gbp(10_000));
        assert_eq!(c.total(), gbp(71_349));
        // overdue in the second half-year: Bank Rate on 30 June 2024 (5.25 %)
        let c = statutory_interest(
            Regime::UkLatePayment1998,
            gbp(50_000),
            date(2024, 6, 30),
            date(2024, 7, 1),
        )
        .unwrap();
        assert_eq!(c.segments[0].rate_bp, 1325);
        assert_eq!(c.segments[0].days, 1);
    }

    /// Hand-computed (§ 288 Abs. 2 BGB): EUR 10,000 due 2023-06-15, claimed
    /// to 2023-07-15. 2023-06-16..06-30: 15 days at 1.62 + 9 = 10.62 %
    /// = 43.6438…; 2023-07-01..07-15: 15 days at 3.12 + 9 = 12.12 % = 49.8082…;
    /// total 93.4520… → EUR 93.45 (shown as 43.64 + 49.81), plus EUR 40.
    #[test]
    fn de_interest_is_split_at_the_half_year() {
        let c = statutory_interest(
            Regime::DeBgb288,
            eur(1_000_000),
            date(2023, 6, 15),
            date(2023, 7, 15),
        )
        .unwrap();
        let rates: Vec<_> = c.segments.iter().map(|s| (s.days, s.rate_bp)).collect();
        assert_eq!(rates, vec![(15, 1062), (15, 1212)]);
        assert_eq!(c.segments[0].interest, eur(4_364));
        assert_eq!(c.segments[1].interest, eur(4_981));
        assert_eq!(c.interest, eur(9_345));
        assert_eq!(c.compensation, eur(4_000));
    }

    /// Hand-computed (L441-10): EUR 15,000 due 2024-12-20, claimed to
    /// 2025-01-19. 2024-12-21..12-31: 11 days at ECB rate on 1 July 2024
    /// (4.25 %) + 10 = 14.25 % = 64.4178…; 2025-01-01..01-19: 19 days at ECB
    /// rate on 1 January 2025 (3.15 %) + 10 = 13.15 % = 102.6781…; total
    /// 167.0958… → EUR 167.10. The EU regime uses + 8: 11 days at 12.25 %
    /// = 55.3767…, 19 days at 11.15 % = 87.0616…, total 142.4383… → EUR 142.44.
    #[test]
    fn fr_and_eu_use_the_ecb_rate_of_each_half_year() {
        let fr = statutory_interest(
            Regime::FrL441_10,
            eur(1_500_000),
            date(2024, 12, 20),
            date(2025, 1, 19),
        )
        .unwrap();
        let rates: Vec<_> = fr.segments.iter().map(|s| (s.days, s.rate_bp)).collect();
        assert_eq!(rates, vec![(11, 1425), (19, 1315)]);
        assert_eq!(fr.interest, eur(16_710));
        assert_eq!(fr.compensation, eur(4_000));
        let eu = statutory_interest(
            Regime::Eu2011_7,
            eur(1_500_000),
            date(2024, 12, 20),
            date(2025, 1, 19),
        )
        .unwrap();
        assert_eq!(eu.segments[0].rate_bp, 1225);
        assert_eq!(eu.segments[1].rate_bp, 1115);
        assert_eq!(eu.interest, eur(14_244));
        let shown: i64 = eu.segments.iter().map(|s| s.interest.minor).sum();
        assert_eq!(shown, eu.interest.minor);
    }

    #[test]
    fn long_periods_span_several_half_years() {
        let c = statutory_interest(
            Regime::DeBgb288,
            eur(100_000),
            date(2022, 12, 31),
            date(2024, 12, 31),
        )
        .unwrap();
        assert_eq!(c.segments.len(), 4);
        assert_eq!(c.segments.iter().map(|s| s.days).sum::<i64>(), 731);
        assert_eq!(c.segments[0].from, date(2023, 1, 1));
        assert_eq!(c.segments[3].to, date(2024, 12, 31));
    }

    #[test]
    fn not_yet_overdue_owes_nothing() {
        let c = statutory_interest(
            Regime::Eu2011_7,
            eur(100_000),
            date(2024, 5, 1),
            date(2024, 5, 1),
        )
        .unwrap();
        assert!(c.segments.is_empty());
        assert_eq!(c.total(), eur(0));
    }

    #[test]
    fn currency_and_table_errors() {
        assert!(matches!(
            statutory_interest(
                Regime::DeBgb288,
                gbp(100),
                date(2024, 1, 1),
                date(2024, 2, 1)
            ),
            Err(ChargeError::UnsupportedCurrency { .. })
        ));
        assert!(matches!(
            statutory_interest(
                Regime::UkLatePayment1998,
                eur(100),
                date(2024, 1, 1),
                date(2024, 2, 1)
            ),
            Err(ChargeError::UnsupportedCurrency { .. })
        ));
        assert!(matches!(
            statutory_interest(
                Regime::FrL441_10,
                eur(0),
                date(2024, 1, 1),
                date(2024, 2, 1)
            ),
            Err(ChargeError::NonPositivePrincipal(_))
        ));
        assert!(matches!(
            statutory_interest(
                Regime::FrL441_10,
                eur(100),
                date(2010, 1, 1),
                date(2010, 2, 1)
            ),
            Err(ChargeError::NoReferenceRate { .. })
        ));
        assert_eq!(
            simple_interest(i64::MAX, 10_000, 365 * 10),
            Err(ChargeError::Overflow)
        );
    }
}
