//! The customer base: who they are, where, and how they pay.

use std::collections::HashSet;

use arflow_domain::model::Customer;
use arflow_domain::money::Currency;
use rand::Rng;

use crate::calendar::Calendar;
use crate::geo::{COUNTRIES, Country, Zone};
use crate::rng::{lognormal, pick, pick_weighted};
use crate::words::{COLLECTORS, INDUSTRIES, PLACES, SURNAMES};
use crate::{DemoParams, PaymentProfile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment {
    Enterprise,
    MidMarket,
    SmallBusiness,
}

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Enterprise => "enterprise",
            Segment::MidMarket => "mid-market",
            Segment::SmallBusiness => "small-business",
        }
    }
}

/// How a customer's PO numbers look: a prefix and a running number.
#[derive(Debug, Clone)]
pub(crate) struct PoStyle {
    pub prefix: &'static str,
    pub width: usize,
    pub next: u64,
    /// Share of invoices that carry a PO.
    pub share: f64,
}

/// A customer plus the hidden traits that drive its simulated history.
#[derive(Debug, Clone)]
pub(crate) struct CustomerPlan {
    pub customer: Customer,
    pub profile: PaymentProfile,
    pub segment: Segment,
    pub country: &'static Country,
    pub zone: &'static Zone,
    /// Median net invoice amount in minor units.
    pub scale_minor: f64,
    pub terms: i32,
    pub tax_bp: i64,
    pub po: Option<PoStyle>,
    /// Pays several invoices at once on a payment run.
    pub batch_payer: bool,
    /// Stopped buying before today.
    pub churned: bool,
    /// First and last day (calendar indices) the customer is invoiced.
    pub window: (i32, i32),
    /// Mail domain under the reserved `.example` TLD.
    pub domain: String,
    pub payer_name: String,
    pub method: &'static str,
    pub paperless: Option<bool>,
    /// Relative invoice volume.
    pub weight: f64,
}

fn digits(n: usize) -> usize {
    n.max(1).ilog10() as usize + 1
}

/// Width of zero-padded keys: at least `min` digits, more when `count` needs them.
pub(crate) fn key_width(count: usize, min: usize) -> usize {
    digits(count).max(min)
}

/// "Blue Harbor Logistics" -> "blue-harbor-logistics"; '&' reads as "and".
pub(crate) fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for ch in name.replace('&', " and ").chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if ch == '\'' {
            continue;
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A company name without legal form, unique by slug among `taken`.
fn company_base<R: Rng>(rng: &mut R, taken: &mut HashSet<String>) -> String {
    let mut last = String::new();
    for attempt in 0..8 {
        // After two clashes, use the pattern with far more combinations.
        let r: f64 = if attempt < 2 { rng.random() } else { 1.0 };
        let name = if r < 0.55 {
            format!("{} {}", pick(rng, PLACES), pick(rng, INDUSTRIES))
        } else if r < 0.8 {
            format!("{} {}", pick(rng, SURNAMES), pick(rng, INDUSTRIES))
        } else {
            let a = pick(rng, SURNAMES);
            let mut b = pick(rng, SURNAMES);
            if a == b {
                b = pick(rng, SURNAMES);
            }
            format!("{a} & {b} {}", pick(rng, INDUSTRIES))
        };
        if taken.insert(slug(&name)) {
            return name;
        }
        last = name;
    }
    // Word lists ran out of fresh combinations: number the repeats. `taken` is
    // finite, so some suffix is free.
    let mut n = 2;
    loop {
        let name = format!("{last} {n}");
        if taken.insert(slug(&name)) {
            return name;
        }
        n += 1;
    }
}

/// Builds every customer, in order, from stream 0.
pub(crate) fn plan_customers<R: Rng>(
    rng: &mut R,
    params: &DemoParams,
    cal: &Calendar,
) -> Vec<CustomerPlan> {
    let width = key_width(params.customers, 4);
    let mut taken = HashSet::with_capacity(params.customers);
    let country_weights: Vec<(usize, f64)> = COUNTRIES
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.weight))
        .collect();
    let today = cal.today;
    let mut plans = Vec::with_capacity(params.customers);
    for i in 0..params.customers {
        let segment = pick_weighted(
            rng,
            &[
                (Segment::Enterprise, 0.1),
                (Segment::MidMarket, 0.3),
                (Segment::SmallBusiness, 0.6),
            ],
        );
        let country = &COUNTRIES[pick_weighted(rng, &country_weights)];
        let zone = pick(rng, country.zones);
        let locale = pick_weighted(rng, country.locales);
        let currency = match country.local_currency.and_then(|c| Currency::parse(c).ok()) {
            Some(local) if local == params.base_currency || rng.random_bool(0.45) => local,
            _ => params.base_currency,
        };
        let profile = pick_weighted(
            rng,
            match segment {
                Segment::Enterprise => &[
                    (PaymentProfile::Prompt, 0.30),
                    (PaymentProfile::SteadyLate, 0.40),
                    (PaymentProfile::Erratic, 0.08),
                    (PaymentProfile::ChronicLate, 0.07),
                    (PaymentProfile::Disputer, 0.15),
                ],
                Segment::MidMarket => &[
                    (PaymentProfile::Prompt, 0.35),
                    (PaymentProfile::SteadyLate, 0.30),
                    (PaymentProfile::Erratic, 0.15),
                    (PaymentProfile::ChronicLate, 0.10),
                    (PaymentProfile::Disputer, 0.10),
                ],
                Segment::SmallBusiness => &[
                    (PaymentProfile::Prompt, 0.40),
                    (PaymentProfile::SteadyLate, 0.20),
                    (PaymentProfile::Erratic, 0.18),
                    (PaymentProfile::ChronicLate, 0.14),
                    (PaymentProfile::Disputer, 0.08),
                ],
            },
        );
        let terms: i32 = pick_weighted(
            rng,
            match segment {
                Segment::Enterprise => &[(45, 0.35), (60, 0.4), (30, 0.25)],
                Segment::MidMarket => &[(30, 0.6), (45, 0.25), (15, 0.1), (60, 0.05)],
                Segment::SmallBusiness => &[(30, 0.45), (15, 0.3), (0, 0.2), (45, 0.05)],
            },
        );
        let (median_major, volume) = match segment {
            Segment::Enterprise => (9000.0, 3.0),
            Segment::MidMarket => (2200.0, 1.6),
            Segment::SmallBusiness => (450.0, 1.0),
        };
        // Currencies without decimals (JPY) have small units: keep magnitudes plausible.
        let minor_per_major =
            currency.minor_per_major() as f64 * if currency.exponent() == 0 { 100.0 } else { 1.0 };
        let scale_major = lognormal(rng, median_major, 0.5);
        let scale_minor = scale_major * minor_per_major;

        let base = company_base(rng, &mut taken);
        let legal = pick(rng, country.legal);
        let name = if legal.is_empty() {
            base.clone()
        } else {
            format!("{base} {legal}")
        };
        let domain = format!("{}.example", slug(&base));

        // Most customers buy over the whole history; some are new, some churned.
        let r: f64 = rng.random();
        let (window, churned) = if r < 0.75 || today < 180 {
            ((0, today), false)
        } else if r < 0.9 {
            ((rng.random_range(30..=today - 30), today), false)
        } else {
            let end = rng.random_range(90..=today - 60);
            let start = if rng.random_bool(0.6) {
                0
            } else {
                rng.random_range(0..=end - 60)
            };
            ((start, end), true)
        };
        let weight = volume * lognormal(rng, 1.0, 0.6) * cal.weight(window.0, window.1);

        let autopay = segment == Segment::SmallBusiness
            && profile == PaymentProfile::Prompt
            && rng.random_bool(0.4);
        let mut tags = Vec::new();
        if segment == Segment::Enterprise && rng.random_bool(0.5) {
            tags.push("key-account".to_string());
        }
        if segment != Segment::SmallBusiness && rng.random_bool(0.05) {
            tags.push("public-sector".to_string());
        }
        if rng.random_bool(0.08) {
            tags.push("reseller".to_string());
        }
        if window.0 > today - 180 {
            tags.push("new".to_string());
        }
        let credit_limit = rng.random_bool(0.6).then(|| {
            // Round to a thousand major units, as credit limits usually are.
            let major = ((scale_major * rng.random_range(4.0..12.0)) / 1000.0)
                .ceil()
                .max(1.0)
                * 1000.0;
            (major * minor_per_major) as i64
        });
        let collector = rng
            .random_bool(0.8)
            .then(|| pick(rng, COLLECTORS).to_string());
        let po = match segment {
            Segment::Enterprise => rng.random_bool(0.85),
            Segment::MidMarket => rng.random_bool(0.45),
            Segment::SmallBusiness => rng.random_bool(0.08),
        }
        .then(|| {
            let (prefix, width) = *pick(rng, &[("PO-", 5), ("4500", 6), ("P", 7), ("PO", 6)]);
            PoStyle {
                prefix,
                width,
                next: rng.random_range(100..50_000),
                share: rng.random_range(0.7..1.0),
            }
        });
        let method = if autopay {
            if country.code == "US" { "ach" } else { "card" }
        } else {
            pick_weighted(rng, country.methods)
        };
        // Bank statements often carry the payer in capitals.
        let payer_name = if rng.random_bool(0.25) {
            name.to_uppercase()
        } else {
            name.clone()
        };
        let paperless = pick_weighted(rng, &[(Some(true), 0.75), (Some(false), 0.1), (None, 0.15)]);
        let batch_payer = segment != Segment::SmallBusiness && rng.random_bool(0.45);

        let customer = Customer {
            external_id: format!("CUST-{:0width$}", i + 1),
            name,
            segment: Some(segment.as_str().to_string()),
            tags,
            country: Some(country.code.to_string()),
            time_zone: Some(zone.name.to_string()),
            locale: Some(locale.to_string()),
            currency,
            payment_terms_days: Some(terms as u16),
            credit_limit,
            collector,
            autopay,
        };
        plans.push(CustomerPlan {
            customer,
            profile,
            segment,
            country,
            zone,
            scale_minor,
            terms,
            tax_bp: country.tax_bp,
            po,
            batch_payer,
            churned,
            window,
            domain,
            payer_name,
            method,
            paperless,
            weight,
        });
    }
    plans
}

/// Splits `total` invoices among customers in proportion to their weights
/// (largest remainder, so the counts add up exactly).
pub(crate) fn invoice_counts(plans: &[CustomerPlan], total: usize) -> Vec<usize> {
    let sum: f64 = plans.iter().map(|p| p.weight).sum();
    if plans.is_empty() {
        return Vec::new();
    }
    if sum <= 0.0 {
        let mut counts = vec![total / plans.len(); plans.len()];
        for c in counts.iter_mut().take(total % plans.len()) {
            *c += 1;
        }
        return counts;
    }
    let expected: Vec<f64> = plans
        .iter()
        .map(|p| total as f64 * p.weight / sum)
        .collect();
    let mut counts: Vec<usize> = expected.iter().map(|e| e.floor() as usize).collect();
    let assigned: usize = counts.iter().sum();
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = expected[a] - expected[a].floor();
        let fb = expected[b] - expected[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    // Floors can only undercount (by less than one per customer), never overcount,
    // but guard the subtraction anyway against float surprises.
    let mut missing = total.saturating_sub(assigned);
    for &i in order.iter().cycle() {
        if missing == 0 {
            break;
        }
        counts[i] += 1;
        missing -= 1;
    }
    // Rounding could in theory push a floor one over: take back from the smallest remainders.
    let mut excess = assigned.saturating_sub(total);
    for &i in order.iter().rev() {
        if excess == 0 {
            break;
        }
        if counts[i] > 0 {
            counts[i] -= 1;
            excess -= 1;
        }
    }
    counts
}
