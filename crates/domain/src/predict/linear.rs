//! The linear stage: a customer-effect model of days-to-pay.
//!
//! days_to_pay = level(customer) + β·x(invoice) + noise, with x = (disputed,
//! paperless, terms, ln amount, foreign currency). β is estimated *within*
//! customers (each customer's means subtracted), so slow customers who happen
//! to get more disputes do not inflate the dispute effect. A customer's level
//! as of a date is the mean of (days_to_pay − β·x) over its settled history,
//! shrunk towards its segment's level by n / (n + k) with k = σ²_within /
//! σ²_between (the best linear unbiased predictor of a random effect): with
//! no history it is the segment's (or everyone's) level, with a long history
//! it is its own. This is the cold-start fallback, and on small ledgers it is
//! most of the model: the boosted heads start from it and correct it.
//!
//! The level only needs the history's mean days-to-pay and the history's
//! means of x, which the feature sweep provides, so the stage adds four
//! columns without a second pass over the ledger.

use serde::{Deserialize, Serialize};

use super::features::col;

/// Invoice columns of x and the history columns holding their means.
pub const X_COLS: [usize; 5] = [
    col::DISPUTED,
    col::PAPERLESS,
    col::TERMS_DAYS,
    col::LN_AMOUNT,
    col::FOREIGN,
];
pub const HIST_X_COLS: [usize; 5] = [
    col::HIST_DISPUTED_RATE,
    col::HIST_PAPERLESS_RATE,
    col::HIST_MEAN_TERMS,
    col::HIST_MEAN_LN_AMOUNT,
    col::HIST_FOREIGN_RATE,
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearStage {
    /// Effect of each x column on days-to-pay, in [`X_COLS`] order.
    pub beta: [f64; 5],
    /// Level of a customer without history and without a known segment.
    pub global_level: f64,
    /// Levels of the segments seen in training.
    pub segment_levels: Vec<(String, f64)>,
    /// k in n / (n + k).
    pub shrinkage: f64,
    pub within_sd: f64,
    pub between_sd: f64,
}

fn x_of(row: &[f32], cols: &[usize; 5]) -> [f64; 5] {
    let mut x = [0.0; 5];
    for (k, &c) in cols.iter().enumerate() {
        let v = row[c];
        // Unknown paperless counts as paper, as in the history rate.
        x[k] = if v.is_nan() { 0.0 } else { f64::from(v) };
    }
    x
}

fn dot(a: &[f64; 5], b: &[f64; 5]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Solves `a · x = b` for a small symmetric positive definite `a` (ridge
/// normal equations) by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> [f64; N] {
    for i in 0..N {
        let p = (i..N)
            .max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs()))
            .unwrap_or(i);
        a.swap(i, p);
        b.swap(i, p);
        if a[i][i].abs() < 1e-12 {
            continue;
        }
        for r in i + 1..N {
            let f = a[r][i] / a[i][i];
            let pivot = a[i];
            for (c, v) in a[r].iter_mut().enumerate().skip(i) {
                *v -= f * pivot[c];
            }
            b[r] -= f * b[i];
        }
    }
    let mut x = [0.0; N];
    for i in (0..N).rev() {
        let s: f64 = (i + 1..N).map(|c| a[i][c] * x[c]).sum();
        x[i] = if a[i][i].abs() < 1e-12 {
            0.0
        } else {
            (b[i] - s) / a[i][i]
        };
    }
    x
}

impl LinearStage {
    /// Fits on at-issue rows: `rows[r]` the features, `y[r]` days-to-pay,
    /// `customer[r]` a customer index, `segment[r]` its segment name if any.
    pub(crate) fn fit(
        rows: &[&[f32]],
        y: &[f64],
        customer: &[u32],
        segment_of: &dyn Fn(u32) -> Option<String>,
    ) -> LinearStage {
        let n = rows.len();
        let nc = customer.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
        let mut cnt = vec![0.0f64; nc];
        let mut sx = vec![[0.0f64; 5]; nc];
        let mut sy = vec![0.0f64; nc];
        let xs: Vec<[f64; 5]> = rows.iter().map(|r| x_of(r, &X_COLS)).collect();
        for r in 0..n {
            let c = customer[r] as usize;
            cnt[c] += 1.0;
            sy[c] += y[r];
            for k in 0..5 {
                sx[c][k] += xs[r][k];
            }
        }
        let mut a = [[0.0f64; 5]; 5];
        let mut b = [0.0f64; 5];
        for r in 0..n {
            let c = customer[r] as usize;
            let mut xt = [0.0; 5];
            for k in 0..5 {
                xt[k] = xs[r][k] - sx[c][k] / cnt[c];
            }
            let yt = y[r] - sy[c] / cnt[c];
            for i in 0..5 {
                b[i] += xt[i] * yt;
                for j in 0..5 {
                    a[i][j] += xt[i] * xt[j];
                }
            }
        }
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += 1.0;
        }
        let beta = solve(a, b);
        // Adjusted levels and variance components.
        let mut lvl_sum = vec![0.0f64; nc];
        for r in 0..n {
            lvl_sum[customer[r] as usize] += y[r] - dot(&beta, &xs[r]);
        }
        let mut within = 0.0;
        for r in 0..n {
            let c = customer[r] as usize;
            let dev = y[r] - dot(&beta, &xs[r]) - lvl_sum[c] / cnt[c];
            within += dev * dev;
        }
        let customers: Vec<usize> = (0..nc).filter(|&c| cnt[c] > 0.0).collect();
        let m = customers.len() as f64;
        let within_var = if n as f64 > m + 1.0 {
            within / (n as f64 - m)
        } else {
            25.0
        };
        let means: Vec<f64> = customers.iter().map(|&c| lvl_sum[c] / cnt[c]).collect();
        let global_level = if m > 0.0 {
            means.iter().sum::<f64>() / m
        } else {
            30.0
        };
        let between_var = if m > 1.0 {
            let var = means
                .iter()
                .map(|v| (v - global_level).powi(2))
                .sum::<f64>()
                / (m - 1.0);
            let noise = customers.iter().map(|&c| within_var / cnt[c]).sum::<f64>() / m;
            (var - noise).max(within_var * 0.01)
        } else {
            within_var
        };
        let shrinkage = (within_var / between_var).clamp(0.01, 100.0);
        // Segment levels, each shrunk towards the global level as if it had
        // two more customers at the global level.
        let mut seg: Vec<(String, f64, f64)> = Vec::new();
        for (k, &c) in customers.iter().enumerate() {
            if let Some(name) = segment_of(c as u32) {
                match seg.iter_mut().find(|s| s.0 == name) {
                    Some(s) => {
                        s.1 += means[k];
                        s.2 += 1.0;
                    }
                    None => seg.push((name, means[k], 1.0)),
                }
            }
        }
        seg.sort_by(|a, b| a.0.cmp(&b.0));
        let segment_levels = seg
            .into_iter()
            .map(|(name, sum, count)| (name, (sum + 2.0 * global_level) / (count + 2.0)))
            .collect();
        LinearStage {
            beta,
            global_level,
            segment_levels,
            shrinkage,
            within_sd: within_var.sqrt(),
            between_sd: between_var.sqrt(),
        }
    }

    pub fn level_of_segment(&self, segment: Option<&str>) -> f64 {
        segment
            .and_then(|s| self.segment_levels.iter().find(|l| l.0 == s))
            .map_or(self.global_level, |l| l.1)
    }

    /// Fills the derived columns of one row, given the customer's prior level.
    pub(crate) fn fill(&self, row: &mut [f32], prior: f64) {
        let n = f64::from(row[col::HIST_COUNT]);
        let level = if n > 0.0 && !row[col::HIST_MEAN_DTP].is_nan() {
            let hist =
                f64::from(row[col::HIST_MEAN_DTP]) - dot(&self.beta, &x_of(row, &HIST_X_COLS));
            (n * hist + self.shrinkage * prior) / (n + self.shrinkage)
        } else {
            prior
        };
        let pred = level + dot(&self.beta, &x_of(row, &X_COLS));
        row[col::BASE_BLUP] = level as f32;
        row[col::LIN_PRED] = pred as f32;
        row[col::LIN_LATE] = (pred - f64::from(row[col::TERMS_DAYS])) as f32;
        row[col::LIN_REMAINING] = (pred - f64::from(row[col::DAYS_SINCE_ISSUE])) as f32;
    }
}

/// P(y = 1) = σ(a + b·z), fitted by Newton's method with a small ridge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Logistic1 {
    pub a: f64,
    pub b: f64,
}

impl Logistic1 {
    pub(crate) fn fit(z: &[f64], y: &[f64]) -> Logistic1 {
        let (mut a, mut b) = (0.0f64, 0.0f64);
        let pos = y.iter().sum::<f64>();
        let n = y.len() as f64;
        if n > 0.0 {
            let p = ((pos + 0.5) / (n + 1.0)).clamp(1e-6, 1.0 - 1e-6);
            a = (p / (1.0 - p)).ln();
        }
        for _ in 0..50 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-6, 0.0, 1e-3);
            for (&z, &y) in z.iter().zip(y) {
                let p = 1.0 / (1.0 + (-(a + b * z)).exp());
                let w = (p * (1.0 - p)).max(1e-9);
                ga += p - y;
                gb += (p - y) * z;
                haa += w;
                hab += w * z;
                hbb += w * z * z;
            }
            gb += 1e-3 * b;
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-12 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() + db.abs() < 1e-9 {
                break;
            }
        }
        Logistic1 { a, b }
    }

    pub fn margin(&self, z: f64) -> f64 {
        self.a + self.b * z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::gbdt::SplitMix64;

    /// Customers with levels 10..50; disputes add 14 days, paperless removes 7;
    /// slow customers get more disputes (so a pooled regression would overstate
    /// the dispute effect).
    #[test]
    fn within_customer_effects_and_shrinkage() {
        let mut rng = SplitMix64::new(5);
        let mut rows: Vec<Vec<f32>> = Vec::new();
        let mut y = Vec::new();
        let mut cust = Vec::new();
        for c in 0..60u32 {
            let level = 10.0 + (c as f64) * 40.0 / 60.0;
            for _ in 0..30 {
                let mut row = vec![0f32; col::N_FEATURES];
                let disputed = rng.next_f64() < 0.1 + level / 100.0;
                let paperless = rng.next_f64() < 0.5;
                row[col::DISPUTED] = f32::from(u8::from(disputed));
                row[col::PAPERLESS] = f32::from(u8::from(paperless));
                row[col::TERMS_DAYS] = 30.0;
                row[col::LN_AMOUNT] = 4.0 + rng.next_f64() as f32;
                let noise = (rng.next_f64() - 0.5) * 10.0;
                y.push(
                    level + 14.0 * f64::from(u8::from(disputed))
                        - 7.0 * f64::from(u8::from(paperless))
                        + noise,
                );
                rows.push(row);
                cust.push(c);
            }
        }
        let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let seg = |c: u32| (c < 30).then(|| "fast".to_string());
        let s = LinearStage::fit(&refs, &y, &cust, &seg);
        assert!((s.beta[0] - 14.0).abs() < 1.0, "{:?}", s.beta);
        assert!((s.beta[1] + 7.0).abs() < 1.0, "{:?}", s.beta);
        assert!(
            (s.within_sd - 10.0 / 12f64.sqrt()).abs() < 0.3,
            "{}",
            s.within_sd
        );
        assert!(s.shrinkage < 0.2, "{}", s.shrinkage);
        assert!(s.level_of_segment(Some("fast")) < s.global_level);
        // No history: the prior. Long history: close to its own level.
        let mut row = vec![0f32; col::N_FEATURES];
        row[col::TERMS_DAYS] = 30.0;
        s.fill(&mut row, 20.0);
        assert!((row[col::BASE_BLUP] - 20.0).abs() < 1e-4);
        row[col::HIST_COUNT] = 50.0;
        row[col::HIST_MEAN_DTP] = 40.0;
        s.fill(&mut row, 20.0);
        assert!(
            (row[col::BASE_BLUP] - 40.0).abs() < 0.2,
            "{}",
            row[col::BASE_BLUP]
        );
        row[col::DISPUTED] = 1.0;
        s.fill(&mut row, 20.0);
        assert!((row[col::LIN_PRED] - row[col::BASE_BLUP] - 14.0).abs() < 1.0);
        assert!((row[col::LIN_LATE] - (row[col::LIN_PRED] - 30.0)).abs() < 1e-4);
    }

    #[test]
    fn one_dimensional_logistic_recovers_its_slope() {
        let mut rng = SplitMix64::new(1);
        let (mut z, mut y) = (Vec::new(), Vec::new());
        for _ in 0..5000 {
            let v = rng.next_f64() * 10.0 - 5.0;
            let p = 1.0 / (1.0 + (-(0.5 + 1.5 * v)).exp());
            z.push(v);
            y.push(f64::from(u8::from(rng.next_f64() < p)));
        }
        let l = Logistic1::fit(&z, &y);
        assert!((l.a - 0.5).abs() < 0.2 && (l.b - 1.5).abs() < 0.2, "{l:?}");
    }
}
