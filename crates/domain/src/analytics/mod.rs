//! Accounts-receivable analytics: pure functions over the ledger's dated facts.
//!
//! Conventions shared by every report in this module:
//!
//! * **As of.** Every report takes an explicit `as_of` date and replays the
//!   dated facts up to the end of that day, so it can be run for past dates.
//!   Allocations dated after `as_of` are ignored; an invoice issued after
//!   `as_of` does not exist yet.
//! * **Scope.** An invoice is in a report's scope when it was issued on or
//!   before `as_of`, was *not* voided on or before `as_of` (a void makes it as
//!   if it had never been issued, so it is removed from every component of the
//!   report, including balances at earlier dates and credit sales), and, when a
//!   segment filter is given, its customer's `segment` equals the filter.
//!   Write-offs are not removed: a written-off invoice counts as a sale and its
//!   balance leaves AR on the write-off date.
//! * **Money.** Amounts are `i64` minor units of the organization's base
//!   currency. Each invoice amount is converted individually with the rate in
//!   force on `as_of` (one rate per currency per report, even for balances at
//!   earlier dates such as a period's beginning or a trend's month-ends), and
//!   aggregates are sums of those converted amounts.
//! * **Current / overdue.** An open invoice is *current* (not past due) at the
//!   end of day `d` when `due_date >= d`, and *overdue* when `due_date < d`.
//!   Days past due = `d - due_date`.
//! * **Ratios and day counts** are `f64` and unrounded; callers round for
//!   display. A ratio whose denominator is zero is `None`.

pub mod aging;
pub mod cei;
pub mod customers;
pub mod dso;
pub mod roll_rates;
pub mod segments;
pub mod summary;

mod scope;
#[cfg(test)]
mod testkit;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::fx::FxError;

pub use aging::{
    AgingBasis, AgingBucket, AgingConfig, AgingReport, CustomerAging, aging, percent_current,
};
pub use cei::{CeiReport, CeiVariant, cei};
pub use customers::{CustomerBehavior, CustomerBehaviorReport, customer_behavior};
pub use dso::{
    CountBackMonth, DayBasis, DsoConfig, DsoPoint, DsoReport, DsoTrend, count_back, dso, dso_trend,
    month_ends,
};
pub use roll_rates::{BucketRoll, RollRateMonth, RollRateReport, roll_rates};
pub use segments::{
    CollectionRateReport, MovedToOverdue, MovedToOverdueReport, SegmentCollection,
    collection_rate_by_segment, moved_to_overdue,
};
pub use summary::{Summary, SummaryConfig, summary};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    /// An amount could not be converted to the base currency (usually a missing rate).
    #[error(transparent)]
    Fx(#[from] FxError),
    /// A period whose start is after its end, or a zero-length period.
    #[error("empty period: {start} to {end}")]
    EmptyPeriod { start: Date, end: Date },
    /// A period that ends after the report's as-of date: its facts are not known yet.
    #[error("period ending {end} lies after the as-of date {as_of}")]
    PeriodAfterAsOf { end: Date, as_of: Date },
    /// Aging boundaries must be non-empty and strictly increasing.
    #[error("aging boundaries must be non-empty and strictly increasing, got {0:?}")]
    InvalidBoundaries(Vec<u32>),
    /// A count of months (trend, roll rates) must be at least 1.
    #[error("{what} must be at least 1")]
    ZeroCount { what: &'static str },
    /// A date computation left jiff's supported range.
    #[error("date out of range: {0}")]
    DateRange(String),
}

/// An inclusive range of days `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: Date,
    pub end: Date,
}

impl Period {
    /// `[start, end]`; fails with [`AnalyticsError::EmptyPeriod`] when `start > end`.
    pub fn new(start: Date, end: Date) -> Result<Period, AnalyticsError> {
        if start > end {
            return Err(AnalyticsError::EmptyPeriod { start, end });
        }
        Ok(Period { start, end })
    }

    /// The calendar month containing `end`, up to and including `end`
    /// (the whole month when `end` is a month-end).
    pub fn month_to_date(end: Date) -> Period {
        Period {
            start: end.first_of_month(),
            end,
        }
    }

    /// The `days` days ending on and including `end`.
    pub fn days_ending(end: Date, days: u32) -> Result<Period, AnalyticsError> {
        if days == 0 {
            return Err(AnalyticsError::EmptyPeriod { start: end, end });
        }
        let start = end
            .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
            .map_err(|e| AnalyticsError::DateRange(e.to_string()))?;
        Ok(Period { start, end })
    }

    /// Number of days in the period, both ends included.
    pub fn days(&self) -> i64 {
        days_between(self.start, self.end) + 1
    }

    pub fn contains(&self, d: Date) -> bool {
        self.start <= d && d <= self.end
    }

    /// Number of calendar months the period touches (Jan 1 – Mar 31 = 3, Jan 15 – Feb 3 = 2).
    pub fn calendar_months(&self) -> u32 {
        (month_index(self.end) - month_index(self.start) + 1) as u32
    }

    /// The day before `start`: the date whose end-of-day balances are the period's opening balances.
    pub(crate) fn opening_date(&self) -> Result<Date, AnalyticsError> {
        self.start
            .yesterday()
            .map_err(|e| AnalyticsError::DateRange(e.to_string()))
    }

    /// Checks `end <= as_of`.
    pub(crate) fn check_known(&self, as_of: Date) -> Result<(), AnalyticsError> {
        if self.end > as_of {
            return Err(AnalyticsError::PeriodAfterAsOf {
                end: self.end,
                as_of,
            });
        }
        Ok(())
    }
}

/// Whole days from `a` to `b` (`b - a`; negative when `b` is earlier).
pub fn days_between(a: Date, b: Date) -> i64 {
    b.duration_since(a).as_secs() / 86_400
}

/// `year * 12 + month`: consecutive months have consecutive indexes.
pub(crate) fn month_index(d: Date) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month()) - 1
}

/// `num / den` as f64, `None` when `den == 0`.
pub(crate) fn ratio(num: i128, den: i128) -> Option<f64> {
    if den == 0 {
        None
    } else {
        Some(num as f64 / den as f64)
    }
}

#[cfg(test)]
mod perf_tests {
    use std::time::Instant;

    use super::*;
    use crate::fx::{FxRate, FxTable, Rate};
    use crate::ledger::{
        AllocationFact, BaseConverter, CustomerFact, InvoiceFact, Ledger, LedgerFacts,
    };
    use crate::money::Currency;

    /// `cargo test -p arflow-domain --release -- --ignored --nocapture one_million`
    #[test]
    #[ignore = "timing run on 1,000,000 invoices; run in release"]
    fn one_million_invoices() {
        let base = jiff::civil::date(2023, 1, 1);
        let days: Vec<Date> = (0..730)
            .map(|n| base.checked_add(jiff::Span::new().days(n)).unwrap())
            .collect();
        let customers = (0..50_000)
            .map(|id| CustomerFact {
                id,
                external_id: format!("C{id}"),
                name: format!("Customer {id}"),
                segment: Some(["smb", "mid", "enterprise"][id as usize % 3].to_string()),
            })
            .collect();
        let mut invoices = Vec::with_capacity(1_000_000);
        let mut allocations = Vec::with_capacity(1_000_000);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for id in 0..1_000_000i64 {
            let issue = (next() % 700) as usize;
            let total = 1_000 + (next() % 1_000_000) as i64;
            invoices.push(InvoiceFact {
                id,
                customer_id: (next() % 50_000) as i64,
                issue_date: days[issue],
                due_date: days[(issue + 30).min(729)],
                currency: if id % 10 == 0 {
                    Currency::EUR
                } else {
                    Currency::USD
                },
                total,
                closed: None,
            });
            if next() % 10 < 8 {
                let on = days[(issue + (next() % 90) as usize).min(729)];
                allocations.push(AllocationFact {
                    invoice_id: id,
                    applied_on: on,
                    amount: total,
                    from_credit_note: false,
                });
            }
        }
        let facts = LedgerFacts {
            base_currency: Currency::USD,
            customers,
            invoices,
            allocations,
        };
        let table = FxTable::new([FxRate {
            from: Currency::EUR,
            to: Currency::USD,
            valid_on: base,
            rate: Rate::parse("1.0842").unwrap(),
        }]);
        let conv = BaseConverter {
            base: Currency::USD,
            table: &table,
        };
        let t = Instant::now();
        let ledger = Ledger::new(&facts);
        eprintln!("ledger index: {:?}", t.elapsed());
        let as_of = days[700];
        let t = Instant::now();
        let a = aging(&ledger, &conv, as_of, None, &AgingConfig::default()).unwrap();
        let t_aging = t.elapsed();
        let t = Instant::now();
        let d = dso(&ledger, &conv, as_of, None, &DsoConfig::default()).unwrap();
        let t_dso = t.elapsed();
        eprintln!(
            "aging {t_aging:?}, dso {t_dso:?} (AR {}, DSO {:?})",
            a.total, d.dso
        );
        let timed = |name: &str, f: &dyn Fn()| {
            let t = Instant::now();
            f();
            eprintln!("{name}: {:?}", t.elapsed());
        };
        timed("aging again", &|| {
            drop(aging(&ledger, &conv, as_of, None, &AgingConfig::default()).unwrap())
        });
        timed("dso again", &|| {
            drop(dso(&ledger, &conv, as_of, None, &DsoConfig::default()).unwrap())
        });
        timed("aging smb", &|| {
            drop(aging(&ledger, &conv, as_of, Some("smb"), &AgingConfig::default()).unwrap())
        });
        timed("summary", &|| {
            drop(summary(&ledger, &conv, as_of, None, &SummaryConfig::default()).unwrap())
        });
        timed("dso_trend 12", &|| {
            drop(dso_trend(&ledger, &conv, as_of, None, &DsoConfig::default(), 12).unwrap())
        });
        timed("roll_rates 6", &|| {
            drop(roll_rates(&ledger, &conv, as_of, None, &AgingConfig::default(), 6).unwrap())
        });
        timed("customers", &|| {
            drop(customer_behavior(&ledger, &conv, as_of, None).unwrap())
        });
        timed("collection rate", &|| {
            drop(collection_rate_by_segment(&ledger, &conv, as_of, None, None).unwrap())
        });
        timed("moved to overdue", &|| {
            drop(moved_to_overdue(&ledger, &conv, as_of, None, Some("smb")).unwrap())
        });
    }
}
