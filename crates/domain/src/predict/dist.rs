//! Days-to-pay distributions, conditional on being unpaid at the as-of date.
//!
//! Each invoice gets a location `mu` and a scale `sigma` (boosted heads of the
//! model); all invoices share one standardized shape Z, the empirical
//! distribution of (T − mu) / sigma on the training rows, kept as a quantile
//! table up to its 99th percentile with an exponential tail beyond it. So
//! T = max(0, mu + sigma·Z) and, for an invoice unpaid after `elapsed` days,
//! the distribution used is that of T given T > elapsed: the quantile table is
//! read from F(elapsed) upwards. Far beyond the table the tail is memoryless:
//! an invoice that is very late is expected to take the tail's mean again.

use serde::{Deserialize, Serialize};

/// Knot probabilities of the quantile table; beyond the last, the tail.
const KNOTS: [f64; 43] = [
    0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25, 0.275, 0.3, 0.325,
    0.35, 0.375, 0.4, 0.425, 0.45, 0.475, 0.5, 0.525, 0.55, 0.575, 0.6, 0.625, 0.65, 0.675, 0.7,
    0.725, 0.75, 0.775, 0.8, 0.825, 0.85, 0.875, 0.9, 0.925, 0.95, 0.965, 0.98, 0.99,
];

/// The shared standardized shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResidualShape {
    /// Increasing probabilities, from 0 to the tail's start.
    pub probs: Vec<f64>,
    /// Quantiles of Z at `probs`, strictly increasing.
    pub z: Vec<f64>,
    /// Mean of Z − z_top above the last knot (exponential tail).
    pub tail_mean: f64,
}

/// One invoice's days-to-pay distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PayDistribution {
    pub mu: f32,
    pub sigma: f32,
    /// Days since issue at the as-of date; the distribution is of T given
    /// T > elapsed (−1 at issue: unconditional).
    pub elapsed: i32,
}

impl ResidualShape {
    /// Empirical shape of standardized residuals (any order; NaNs ignored).
    pub fn fit(residuals: &[f64]) -> ResidualShape {
        let mut z: Vec<f64> = residuals
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if z.len() < 20 {
            return ResidualShape::normal();
        }
        z.sort_unstable_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (z.len() - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(z.len() - 1);
            z[lo] + (z[hi] - z[lo]) * (pos - lo as f64)
        };
        let mut knots: Vec<f64> = KNOTS.iter().map(|&p| q(p)).collect();
        for k in 1..knots.len() {
            if knots[k] <= knots[k - 1] {
                knots[k] = knots[k - 1] + 1e-6;
            }
        }
        let top = knots[knots.len() - 1];
        let above: Vec<f64> = z.iter().filter(|&&v| v > top).map(|v| v - top).collect();
        let tail_mean = if above.is_empty() {
            0.5
        } else {
            (above.iter().sum::<f64>() / above.len() as f64).max(0.1)
        };
        ResidualShape {
            probs: KNOTS.to_vec(),
            z: knots,
            tail_mean,
        }
    }

    /// A standard normal shape: the fallback when there is too little data.
    pub fn normal() -> ResidualShape {
        let z = KNOTS
            .iter()
            .map(|&p| if p <= 0.0 { -3.5 } else { normal_quantile(p) })
            .collect();
        ResidualShape {
            probs: KNOTS.to_vec(),
            z,
            tail_mean: 0.42,
        }
    }

    fn top(&self) -> (f64, f64) {
        (self.probs[self.probs.len() - 1], self.z[self.z.len() - 1])
    }

    /// P(Z ≤ z).
    pub fn cdf_z(&self, z: f64) -> f64 {
        let (p_top, z_top) = self.top();
        if z >= z_top {
            return p_top + (1.0 - p_top) * (1.0 - (-(z - z_top) / self.tail_mean).exp());
        }
        if z <= self.z[0] {
            return 0.0;
        }
        let k = self.z.partition_point(|&v| v <= z);
        let (z0, z1, p0, p1) = (self.z[k - 1], self.z[k], self.probs[k - 1], self.probs[k]);
        p0 + (p1 - p0) * (z - z0) / (z1 - z0)
    }

    /// Quantile of Z at p in [0, 1).
    pub fn quantile_z(&self, p: f64) -> f64 {
        let (p_top, z_top) = self.top();
        if p >= p_top {
            let s = ((1.0 - p) / (1.0 - p_top)).max(1e-12);
            return z_top - self.tail_mean * s.ln();
        }
        let p = p.max(0.0);
        let k = self
            .probs
            .partition_point(|&v| v <= p)
            .min(self.probs.len() - 1);
        let (z0, z1, p0, p1) = (self.z[k - 1], self.z[k], self.probs[k - 1], self.probs[k]);
        z0 + (z1 - z0) * (p - p0) / (p1 - p0)
    }

    /// Whether the conditioning point lies in the exponential tail.
    fn in_tail(&self, d: &PayDistribution) -> Option<f64> {
        let sigma = f64::from(d.sigma).max(1e-3);
        let ze = (f64::from(d.elapsed) - f64::from(d.mu)) / sigma;
        (ze >= self.top().1).then_some(sigma * self.tail_mean)
    }

    /// Days-to-pay quantile at p, given unpaid after `elapsed` days.
    pub fn quantile(&self, d: &PayDistribution, p: f64) -> f64 {
        let p = p.clamp(0.0, 1.0 - 1e-9);
        let e = f64::from(d.elapsed);
        if let Some(mean) = self.in_tail(d) {
            return e - mean * (1.0 - p).ln();
        }
        let sigma = f64::from(d.sigma).max(1e-3);
        let u = self.cdf_z((e - f64::from(d.mu)) / sigma);
        let t = f64::from(d.mu) + sigma * self.quantile_z(u + p * (1.0 - u));
        t.max(e).max(0.0)
    }

    /// E[T | T > elapsed], integrating the quantile function exactly on the
    /// table (trapezoids) and in closed form on the tail.
    pub fn expected(&self, d: &PayDistribution) -> f64 {
        let e = f64::from(d.elapsed);
        if let Some(mean) = self.in_tail(d) {
            return e + mean;
        }
        let sigma = f64::from(d.sigma).max(1e-3);
        let mu = f64::from(d.mu);
        let u = self.cdf_z((e - mu) / sigma);
        let t_at = |z: f64| (mu + sigma * z).max(0.0);
        let (p_top, z_top) = self.top();
        let mut integral = 0.0;
        // Knot quantiles are the table itself; only the segment holding u
        // starts between knots.
        let zu = self.quantile_z(u);
        for k in 1..self.probs.len() {
            let (pa, pb) = (self.probs[k - 1], self.probs[k]);
            if pb <= u {
                continue;
            }
            let (p0, z0) = if pa >= u {
                (pa, self.z[k - 1])
            } else {
                (u, zu)
            };
            integral += (pb - p0) * 0.5 * (t_at(z0) + t_at(self.z[k]));
        }
        let p0 = u.max(p_top);
        let s0 = 1.0 - p0;
        let st = 1.0 - p_top;
        if s0 > 0.0 {
            integral += s0 * (mu + sigma * z_top).max(0.0)
                + sigma * self.tail_mean * s0 * (1.0 - (s0 / st).ln());
        }
        let mass = 1.0 - u;
        if mass <= 1e-12 {
            return e + sigma * self.tail_mean;
        }
        (integral / mass).max(e).max(0.0)
    }

    /// Probability of payment on each of the `out.len()` days after the
    /// as-of date: `out[k]` for day as_of + k + 1, i.e. T in (e + k, e + k + 1].
    /// The rest of the mass (beyond the horizon) is `1 − Σ out`.
    pub fn day_masses(&self, d: &PayDistribution, out: &mut [f64]) {
        let e = f64::from(d.elapsed);
        if let Some(mean) = self.in_tail(d) {
            let mut prev = 1.0;
            for (k, o) in out.iter_mut().enumerate() {
                let surv = (-((k + 1) as f64) / mean).exp();
                *o = prev - surv;
                prev = surv;
            }
            return;
        }
        let sigma = f64::from(d.sigma).max(1e-3);
        let mu = f64::from(d.mu);
        let u = self.cdf_z((e - mu) / sigma);
        let mass = (1.0 - u).max(1e-12);
        let mut prev = u;
        for (k, o) in out.iter_mut().enumerate() {
            let f = self.cdf_z((e + (k + 1) as f64 - mu) / sigma);
            *o = ((f - prev) / mass).max(0.0);
            prev = f;
        }
    }

    /// P(T > t | T > elapsed).
    pub fn survival(&self, d: &PayDistribution, t: f64) -> f64 {
        let e = f64::from(d.elapsed);
        if t <= e {
            return 1.0;
        }
        if let Some(mean) = self.in_tail(d) {
            return (-(t - e) / mean).exp();
        }
        let sigma = f64::from(d.sigma).max(1e-3);
        let mu = f64::from(d.mu);
        let u = self.cdf_z((e - mu) / sigma);
        let f = self.cdf_z((t - mu) / sigma);
        ((1.0 - f) / (1.0 - u).max(1e-12)).clamp(0.0, 1.0)
    }
}

/// Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::gbdt::SplitMix64;
    use proptest::prelude::*;

    fn uniform_shape() -> ResidualShape {
        // Z uniform on [−1, 1]: quantiles are exact at the knots.
        let mut rng = SplitMix64::new(3);
        let z: Vec<f64> = (0..200_000).map(|_| rng.next_f64() * 2.0 - 1.0).collect();
        ResidualShape::fit(&z)
    }

    #[test]
    fn normal_quantiles() {
        assert!(normal_quantile(0.5).abs() < 1e-9);
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.01) + 2.326_348).abs() < 1e-5);
    }

    #[test]
    fn unconditional_quantiles_follow_the_shape() {
        let s = uniform_shape();
        let d = PayDistribution {
            mu: 30.0,
            sigma: 10.0,
            elapsed: -1,
        };
        assert!((s.quantile(&d, 0.5) - 30.0).abs() < 0.1);
        assert!((s.quantile(&d, 0.1) - 22.0).abs() < 0.1);
        assert!((s.quantile(&d, 0.9) - 38.0).abs() < 0.1);
        assert!((s.expected(&d) - 30.0).abs() < 0.1, "{}", s.expected(&d));
        let mut m = vec![0.0; 60];
        s.day_masses(&d, &mut m);
        assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-3);
        // Uniform on [20, 40]: 5 % per day.
        assert!((m[25] - 0.05).abs() < 0.005, "{}", m[25]);
        assert!(m[5] < 1e-6);
    }

    #[test]
    fn conditioning_on_unpaid_moves_mass_past_elapsed() {
        let s = uniform_shape();
        // Unpaid after 30 days: uniform on (30, 40] now.
        let d = PayDistribution {
            mu: 30.0,
            sigma: 10.0,
            elapsed: 30,
        };
        assert!((s.quantile(&d, 0.5) - 35.0).abs() < 0.2);
        assert!((s.expected(&d) - 35.0).abs() < 0.2);
        assert!((s.survival(&d, 35.0) - 0.5).abs() < 0.02);
        let mut m = vec![0.0; 20];
        s.day_masses(&d, &mut m);
        // The table's top 1 % is an exponential tail: 2 % of what is left.
        assert!(
            (m[0] - 0.1).abs() < 0.01 && m[10] < 0.02 && m[15] < 1e-3,
            "{m:?}"
        );
        // Far past the whole table: exponential remaining time.
        let late = PayDistribution {
            mu: 30.0,
            sigma: 10.0,
            elapsed: 100,
        };
        let mean = 10.0 * s.tail_mean;
        assert!((s.expected(&late) - (100.0 + mean)).abs() < 1e-9);
        assert!((s.quantile(&late, 0.5) - (100.0 + mean * 2f64.ln())).abs() < 1e-9);
        let mut m = vec![0.0; 2000];
        s.day_masses(&late, &mut m);
        assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn quantiles_increase_and_stay_above_elapsed(mu in 0f32..90.0, sigma in 0.5f32..30.0, elapsed in -1i32..200, p in 0.01f64..0.98) {
            let s = ResidualShape::normal();
            let d = PayDistribution { mu, sigma, elapsed };
            let a = s.quantile(&d, p);
            let b = s.quantile(&d, (p + 0.01).min(0.999));
            prop_assert!(a >= f64::from(elapsed) && a >= 0.0);
            prop_assert!(b + 1e-9 >= a);
            let ex = s.expected(&d);
            prop_assert!(ex.is_finite() && ex >= f64::from(elapsed));
            // CDF and quantile agree.
            let t = s.quantile(&d, 0.5);
            if t > f64::from(elapsed) + 1e-6 && t > 0.0 {
                prop_assert!((s.survival(&d, t) - 0.5).abs() < 1e-6, "{}", s.survival(&d, t));
            }
        }
    }
}
