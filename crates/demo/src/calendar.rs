//! Days as small integers: day 0 is the first day of the simulated history,
//! `today` is the last. Integer days keep the per-invoice simulation cheap;
//! `jiff` dates are looked up from a table only when a record is written.

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};
use rand::Rng;

/// How far back invoices go: about 24 months.
pub(crate) const HISTORY_DAYS: i32 = 730;
/// Days after `today` that may need a `Date` (due dates: terms are at most 60 days).
const HORIZON_DAYS: i32 = 120;

pub(crate) struct Calendar {
    /// Index of `today`.
    pub today: i32,
    /// `dates[d]` for d in 0..=today+HORIZON_DAYS (saturating at the ends of jiff's range).
    dates: Vec<Date>,
    /// Weekday of day 0, Monday = 0.
    weekday0: i32,
    /// `cum[d]` = total invoicing weight of days before d; `cum.len() == today + 2`.
    cum: Vec<f64>,
}

/// Relative invoicing volume per month: busy Q4, quiet August and holidays.
const MONTH_FACTOR: [f64; 12] = [
    0.92, 0.95, 1.05, 1.0, 1.0, 1.04, 0.9, 0.68, 1.05, 1.14, 1.2, 1.1,
];

impl Calendar {
    pub fn new(today: Date) -> Calendar {
        let start = today.saturating_sub(HISTORY_DAYS.days());
        let mut dates = Vec::with_capacity((HISTORY_DAYS + HORIZON_DAYS + 1) as usize);
        let mut d = start;
        let mut today_index = None;
        for i in 0..=(HISTORY_DAYS + HORIZON_DAYS) {
            if d == today {
                today_index = Some(i);
            }
            dates.push(d);
            // Saturate at jiff's maximum date instead of failing: only absurd `today`s get there.
            d = d.tomorrow().unwrap_or(d);
        }
        // `start` is `today` minus at most HISTORY_DAYS days, so today is in the table
        // unless jiff saturated; then fall back to the full history length.
        let today_i = today_index.unwrap_or(HISTORY_DAYS);
        let weekday0 = i32::from(start.weekday().to_monday_zero_offset());
        let mut cum = Vec::with_capacity(today_i as usize + 2);
        cum.push(0.0);
        let mut total = 0.0;
        for (i, date) in dates.iter().enumerate().take(today_i as usize + 1) {
            let w = if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
                0.0
            } else {
                let month = MONTH_FACTOR[(date.month() - 1) as usize];
                // Billing runs cluster at month ends and starts.
                let day = date.day();
                let edge = if day <= 2 || day >= date.days_in_month() - 1 {
                    1.5
                } else {
                    1.0
                };
                // A business that grows ~30% over the two years.
                let growth = 0.85 + 0.3 * (i as f64 / f64::from(HISTORY_DAYS));
                month * edge * growth
            };
            total += w;
            cum.push(total);
        }
        Calendar {
            today: today_i,
            dates,
            weekday0,
            cum,
        }
    }

    /// The date of day `d`, clamped to the table (callers only ask for d <= today + 120).
    pub fn date(&self, d: i32) -> Date {
        let i = d.clamp(0, self.dates.len() as i32 - 1) as usize;
        self.dates[i]
    }

    pub fn is_weekend(&self, d: i32) -> bool {
        (self.weekday0 + d).rem_euclid(7) >= 5
    }

    /// Invoicing weight of the days lo..=hi (0 outside the history).
    pub fn weight(&self, lo: i32, hi: i32) -> f64 {
        let lo = lo.clamp(0, self.today + 1) as usize;
        let hi = (hi + 1).clamp(0, self.today + 1) as usize;
        if hi <= lo {
            0.0
        } else {
            self.cum[hi] - self.cum[lo]
        }
    }

    /// A business day in lo..=hi drawn by invoicing weight (seasonality, weekdays).
    pub fn sample_day<R: Rng>(&self, rng: &mut R, lo: i32, hi: i32) -> i32 {
        let lo = lo.clamp(0, self.today);
        let hi = hi.clamp(lo, self.today);
        let a = self.cum[lo as usize];
        let b = self.cum[hi as usize + 1];
        let u = a + rng.random::<f64>() * (b - a);
        // cum is non-decreasing: the day is the last index whose cumulative weight is <= u.
        let mut d = (self.cum.partition_point(|&c| c <= u) as i32 - 1).clamp(lo, hi);
        // Float rounding at the window's edge can land on a weekend: step back to a weekday.
        while self.is_weekend(d) && d > lo {
            d -= 1;
        }
        while self.is_weekend(d) && d < hi {
            d += 1;
        }
        d
    }

    /// Money arrives on business days: weekends roll forward to Monday unless
    /// that passes `today`, then back to Friday (never before `floor`).
    pub fn business_day(&self, d: i32, floor: i32) -> i32 {
        let mut f = d;
        while self.is_weekend(f) {
            f += 1;
        }
        if f <= self.today || d > self.today {
            return f;
        }
        let mut b = d;
        while self.is_weekend(b) && b > floor {
            b -= 1;
        }
        b
    }
}
