//! What to chase first: the expected cost of waiting, with reasons in words.
//!
//! priority = open amount (base currency) × P(paid more than 30 days late |
//! unpaid today) × (1 + days already overdue / 30). The probability says how
//! likely the money is to be stuck; the overdue weight says that the same
//! probability costs more on an invoice that is already late (its money has
//! been missing longer and collection odds fall with age). A customer's
//! priority is the sum over its open invoices.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::data::{NEVER, PredictData};
use super::model::{InvoicePrediction, LATE_THRESHOLDS, PaymentModel};
use super::{PredictError, day_number};
use crate::money::{Currency, format_minor_grouped};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorityConfig {
    /// Which late head weighs the amount: 0, 1, 2 for > 0, 30, 60 days late.
    pub late_head: usize,
    /// Days overdue that double an invoice's weight.
    pub overdue_doubling_days: f64,
}

impl Default for PriorityConfig {
    fn default() -> PriorityConfig {
        PriorityConfig {
            late_head: 1,
            overdue_doubling_days: 30.0,
        }
    }
}

/// Why an invoice ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    OpenAmount {
        minor: i64,
        currency: Currency,
    },
    /// The customer's median days-to-pay and the days this invoice has waited.
    UsuallyPaysIn {
        usual_days: f64,
        waiting_days: i32,
    },
    WaitingDays {
        days: i32,
    },
    BrokenPromises {
        count: u32,
    },
    Disputed,
    LateRisk {
        more_than_days: i32,
        probability: f64,
    },
}

impl Reason {
    pub fn render(&self) -> String {
        match self {
            Reason::OpenAmount { minor, currency } => {
                format!("{} open", money_words(*minor, *currency))
            }
            Reason::UsuallyPaysIn {
                usual_days,
                waiting_days,
            } => format!(
                "usually pays in {} days, now {} days without payment",
                usual_days.round() as i64,
                waiting_days
            ),
            Reason::WaitingDays { days } => format!("{days} days without payment"),
            Reason::BrokenPromises { count: 1 } => "1 broken promise".to_string(),
            Reason::BrokenPromises { count } => format!("{count} broken promises"),
            Reason::Disputed => "disputed".to_string(),
            Reason::LateRisk {
                more_than_days: 0,
                probability,
            } => {
                format!("{:.0} % chance of paying late", probability * 100.0)
            }
            Reason::LateRisk {
                more_than_days,
                probability,
            } => format!(
                "{:.0} % chance of paying {}+ days late",
                probability * 100.0,
                more_than_days
            ),
        }
    }
}

/// "$12,400", "€980", "1,250 CHF": whole major units for people.
pub fn money_words(minor: i64, currency: Currency) -> String {
    let unit = currency.minor_per_major();
    let whole = if minor >= 0 {
        (minor + unit / 2) / unit
    } else {
        (minor - unit / 2) / unit
    };
    let digits = format_minor_grouped(whole, Currency::JPY);
    match currency.code() {
        "USD" => format!("${digits}"),
        "EUR" => format!("€{digits}"),
        "GBP" => format!("£{digits}"),
        code => format!("{digits} {code}"),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Priority {
    pub invoice: usize,
    pub invoice_id: i64,
    pub customer_id: i64,
    /// Expected cost of waiting, base-currency minor units (a score, not money owed).
    pub score: f64,
    pub reasons: Vec<Reason>,
    /// The reasons joined in one sentence.
    pub explanation: String,
}

/// Priorities of scored invoices, highest first (ties by invoice id).
pub fn prioritize(preds: &[InvoicePrediction], cfg: &PriorityConfig) -> Vec<Priority> {
    let head = cfg.late_head.min(LATE_THRESHOLDS.len() - 1);
    let mut out: Vec<Priority> = preds
        .iter()
        .map(|p| {
            let score = priority_score(p, head, cfg.overdue_doubling_days);
            let mut reasons = vec![Reason::OpenAmount {
                minor: p.open_minor,
                currency: p.currency,
            }];
            let waiting = p.days_since_issue.max(0);
            reasons.push(match p.usual_days_to_pay {
                Some(usual) => Reason::UsuallyPaysIn {
                    usual_days: usual,
                    waiting_days: waiting,
                },
                None => Reason::WaitingDays { days: waiting },
            });
            if p.broken_promises > 0 {
                reasons.push(Reason::BrokenPromises {
                    count: p.broken_promises,
                });
            }
            if p.disputed {
                reasons.push(Reason::Disputed);
            }
            reasons.push(Reason::LateRisk {
                more_than_days: LATE_THRESHOLDS[head],
                probability: p.p_late[head],
            });
            let explanation = reasons
                .iter()
                .map(Reason::render)
                .collect::<Vec<_>>()
                .join("; ");
            Priority {
                invoice: p.invoice,
                invoice_id: p.invoice_id,
                customer_id: p.customer_id,
                score,
                reasons,
                explanation,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.invoice_id.cmp(&b.invoice_id))
    });
    out
}

fn priority_score(p: &InvoicePrediction, head: usize, doubling: f64) -> f64 {
    let weight = 1.0 + f64::from(p.days_overdue) / doubling.max(1.0);
    p.open_base as f64 * p.p_late[head] * weight
}

/// Sum of invoice priorities per customer, highest first.
pub fn customer_priorities(priorities: &[Priority]) -> Vec<(i64, f64)> {
    let mut by: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for p in priorities {
        *by.entry(p.customer_id).or_insert(0.0) += p.score;
    }
    let mut v: Vec<(i64, f64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RankBy {
    Priority,
    /// Largest open amount first.
    Amount,
    /// Oldest invoice first.
    Age,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionAtK {
    pub k: usize,
    /// An invoice is a hit when it ends up paid more than this many days late.
    pub late_days: i32,
    pub dates: usize,
    /// Open invoices not yet past the threshold, summed over the dates.
    pub candidates: usize,
    /// How many of them ended up past it.
    pub positives: usize,
    /// Invoices in the top k, summed over the dates (fewer than k × dates
    /// when a date has fewer candidates).
    pub picked: usize,
    /// Hits in the top k / invoices in the top k, over all dates, per ranking.
    pub precision: Vec<(RankBy, f64)>,
}

impl PrecisionAtK {
    pub fn of(&self, by: RankBy) -> Option<f64> {
        self.precision.iter().find(|p| p.0 == by).map(|p| p.1)
    }

    /// Pools two measurements with the same k and threshold (for example
    /// from models retrained at successive dates), weighting by invoices picked.
    pub fn merge(&self, other: &PrecisionAtK) -> PrecisionAtK {
        let (a, b) = (self.picked as f64, other.picked as f64);
        PrecisionAtK {
            k: self.k,
            late_days: self.late_days,
            dates: self.dates + other.dates,
            candidates: self.candidates + other.candidates,
            positives: self.positives + other.positives,
            picked: self.picked + other.picked,
            precision: self
                .precision
                .iter()
                .map(|&(by, p)| {
                    let q = other.of(by).unwrap_or(0.0);
                    (
                        by,
                        if a + b > 0.0 {
                            (p * a + q * b) / (a + b)
                        } else {
                            0.0
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Precision at k of three rankings of the open invoices on each date.
///
/// Candidates on a date are the open invoices whose outcome is still
/// uncertain: unpaid at the end of day D means paid at least D + 1 − due days
/// late, so only invoices with D − due < `LATE_THRESHOLDS[late_head]` count.
/// A candidate is a hit when it was settled more than that many days after
/// its due date, or never settled (written off or still open in the data).
pub fn precision_at_k(
    model: &PaymentModel,
    data: &PredictData,
    as_of_dates: &[Date],
    k: usize,
    late_head: usize,
) -> Result<PrecisionAtK, PredictError> {
    let head = late_head.min(LATE_THRESHOLDS.len() - 1);
    let threshold = LATE_THRESHOLDS[head];
    let cfg = PriorityConfig {
        late_head: head,
        ..PriorityConfig::default()
    };
    let rankings = [RankBy::Priority, RankBy::Amount, RankBy::Age];
    let mut hits = [0usize; 3];
    let mut picked = [0usize; 3];
    let (mut candidates, mut positives) = (0, 0);
    for &d in as_of_dates {
        let preds: Vec<InvoicePrediction> = model
            .score_open(data, d)?
            .into_iter()
            .filter(|p| day_number(p.as_of) - data.due[p.invoice] < threshold)
            .collect();
        let hit = |p: &InvoicePrediction| {
            let s = data.settled[p.invoice];
            s == NEVER || s - data.due[p.invoice] > threshold
        };
        candidates += preds.len();
        positives += preds.iter().filter(|p| hit(p)).count();
        for (r, by) in rankings.iter().enumerate() {
            let mut order: Vec<(f64, i64, usize)> = preds
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    let key = match by {
                        RankBy::Priority => priority_score(p, head, cfg.overdue_doubling_days),
                        RankBy::Amount => p.open_base as f64,
                        RankBy::Age => f64::from(p.days_since_issue),
                    };
                    (key, p.invoice_id, j)
                })
                .collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for &(_, _, j) in order.iter().take(k) {
                picked[r] += 1;
                hits[r] += usize::from(hit(&preds[j]));
            }
        }
    }
    Ok(PrecisionAtK {
        k,
        late_days: threshold,
        dates: as_of_dates.len(),
        candidates,
        positives,
        picked: picked[0],
        precision: rankings
            .iter()
            .enumerate()
            .map(|(r, &by)| (by, hits[r] as f64 / picked[r].max(1) as f64))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::dist::PayDistribution;

    fn pred(
        id: i64,
        open: i64,
        usual: Option<f64>,
        waiting: i32,
        overdue: i32,
        p30: f64,
        broken: u32,
    ) -> InvoicePrediction {
        let d = jiff::civil::date(2024, 3, 1);
        InvoicePrediction {
            invoice: id as usize,
            invoice_id: id,
            customer_id: 7,
            as_of: d,
            issue_date: d,
            due_date: d,
            currency: Currency::USD,
            open_minor: open,
            open_base: open,
            days_since_issue: waiting,
            days_overdue: overdue,
            p_late: [0.9, p30, 0.01],
            dist: PayDistribution {
                mu: 20.0,
                sigma: 5.0,
                elapsed: waiting,
            },
            p10_days: 0.0,
            p50_days: 0.0,
            p90_days: 0.0,
            expected_days: 0.0,
            p10_date: d,
            p50_date: d,
            p90_date: d,
            expected_pay_date: d,
            usual_days_to_pay: usual,
            broken_promises: broken,
            disputed: false,
        }
    }

    #[test]
    fn reasons_read_as_a_sentence() {
        let p = prioritize(
            &[pred(1, 1_240_000, Some(18.0), 41, 11, 0.35, 2)],
            &PriorityConfig::default(),
        );
        assert_eq!(
            p[0].explanation,
            "$12,400 open; usually pays in 18 days, now 41 days without payment; 2 broken promises; 35 % chance of paying 30+ days late"
        );
        assert_eq!(money_words(98_050, Currency::EUR), "€981");
        assert_eq!(
            money_words(125_000, Currency::parse("CHF").unwrap()),
            "1,250 CHF"
        );
        assert_eq!(money_words(5_000, Currency::JPY), "5,000 JPY");
    }

    #[test]
    fn priority_weighs_amount_risk_and_lateness() {
        let a = pred(1, 100_000, None, 10, 0, 0.5, 0); // 50,000
        let b = pred(2, 1_000_000, None, 10, 0, 0.01, 0); // 10,000
        let c = pred(3, 100_000, None, 60, 30, 0.3, 0); // 30,000 × 2 = 60,000
        let p = prioritize(&[a, b, c], &PriorityConfig::default());
        let order: Vec<i64> = p.iter().map(|p| p.invoice_id).collect();
        assert_eq!(order, vec![3, 1, 2]);
        assert!((p[0].score - 60_000.0).abs() < 1e-6);
        assert_eq!(customer_priorities(&p), vec![(7, 120_000.0)]);
    }
}
