//! Time-split evaluation of the model against naive baselines.
//!
//! Train on invoices issued before the split date, test on the settled
//! invoices issued on or after it. Every test prediction is made at issue:
//! as of the day before the issue date, so only invoices settled before the
//! issue date are known, which is how the published baselines on IBM's sample
//! define a leakage-free prediction. Reported for "late" (paid after the due
//! date): AUC, accuracy at 0.5, Brier score, log loss and a calibration
//! table; for days-to-settle (settled − issue): MAE of the median prediction
//! and RMSE of the mean prediction. Next to each, the baselines: the training
//! set's global rate/mean, the customer's own history as of the issue date,
//! and "pays on the due date".

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::data::{NEVER, PredictData};
use super::features::{self, col};
use super::model::{ModelCard, PaymentModel, TrainConfig, TrainSpec, train};
use super::{PredictError, day_number};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    pub split: Date,
    pub train: TrainConfig,
    pub calibration_bins: usize,
}

impl EvalConfig {
    pub fn new(split: Date) -> EvalConfig {
        EvalConfig {
            split,
            train: TrainConfig::default(),
            calibration_bins: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// None when the test set has only one class.
    pub auc: Option<f64>,
    /// Share of correct calls at probability 0.5.
    pub accuracy: f64,
    pub brier: f64,
    pub log_loss: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub mae: f64,
    pub rmse: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline<M> {
    pub name: String,
    pub metrics: M,
}

/// Test rows whose predicted probability lies in [lo, hi).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub split: Date,
    pub train_invoices: usize,
    pub test_invoices: usize,
    pub test_late_rate: f64,
    pub late: ClassificationMetrics,
    pub late_baselines: Vec<Baseline<ClassificationMetrics>>,
    pub calibration: Vec<CalibrationBin>,
    /// MAE from the P50 prediction, RMSE from the mean prediction.
    pub days: RegressionMetrics,
    pub days_baselines: Vec<Baseline<RegressionMetrics>>,
    /// Share of test invoices settled within their predicted [P10, P90] days.
    pub coverage_p10_p90: f64,
    pub card: ModelCard,
}

/// Area under the ROC curve (Mann–Whitney, ties counted half).
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut k = 0;
    while k < idx.len() {
        let mut j = k;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[k]] {
            j += 1;
        }
        // Ranks k+1..=j+1 share their average.
        let avg = (k + j + 2) as f64 / 2.0;
        for &i in &idx[k..=j] {
            if labels[i] {
                rank_sum += avg;
            }
        }
        k = j + 1;
    }
    let pos = pos as f64;
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg as f64))
}

pub fn brier(p: &[f64], y: &[bool]) -> Option<f64> {
    (!p.is_empty()).then(|| {
        p.iter()
            .zip(y)
            .map(|(p, &y)| (p - f64::from(u8::from(y))).powi(2))
            .sum::<f64>()
            / p.len() as f64
    })
}

pub fn classification(p: &[f64], y: &[bool]) -> ClassificationMetrics {
    let n = p.len().max(1) as f64;
    let accuracy = p.iter().zip(y).filter(|(p, y)| (**p >= 0.5) == **y).count() as f64 / n;
    let log_loss = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-6, 1.0 - 1e-6);
            -(if y { p.ln() } else { (1.0 - p).ln() })
        })
        .sum::<f64>()
        / n;
    ClassificationMetrics {
        auc: auc(p, y),
        accuracy,
        brier: brier(p, y).unwrap_or(0.0),
        log_loss,
    }
}

pub fn regression(pred: &[f64], actual: &[f64]) -> RegressionMetrics {
    let n = pred.len().max(1) as f64;
    let mae = pred
        .iter()
        .zip(actual)
        .map(|(p, a)| (p - a).abs())
        .sum::<f64>()
        / n;
    let mse = pred
        .iter()
        .zip(actual)
        .map(|(p, a)| (p - a).powi(2))
        .sum::<f64>()
        / n;
    RegressionMetrics {
        mae,
        rmse: mse.sqrt(),
    }
}

pub fn calibration(p: &[f64], y: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    (0..bins)
        .map(|b| {
            let lo = b as f64 / bins as f64;
            let hi = (b + 1) as f64 / bins as f64;
            let inside: Vec<usize> = (0..p.len())
                .filter(|&i| p[i] >= lo && (p[i] < hi || (b + 1 == bins && p[i] <= hi)))
                .collect();
            let count = inside.len();
            let c = count.max(1) as f64;
            CalibrationBin {
                lo,
                hi,
                count,
                mean_predicted: inside.iter().map(|&i| p[i]).sum::<f64>() / c,
                observed_rate: inside.iter().filter(|&&i| y[i]).count() as f64 / c,
            }
        })
        .collect()
}

/// Settled, never-voided-before-settlement invoices issued in `[from, to)`.
pub(crate) fn settled_issued_between(data: &PredictData, from: i32, to: i32) -> Vec<usize> {
    (0..data.n)
        .filter(|&i| {
            data.issue[i] >= from
                && data.issue[i] < to
                && data.settled[i] != NEVER
                && data.void_on[i] > data.settled[i]
        })
        .collect()
}

/// Trains on invoices issued before `cfg.split` and evaluates on those
/// issued on or after it. Returns the evaluation and the trained model.
pub fn evaluate(
    data: &PredictData,
    cfg: &EvalConfig,
) -> Result<(Evaluation, PaymentModel), PredictError> {
    let split = day_number(cfg.split);
    let spec = TrainSpec::issued_before(data, cfg.split)?;
    let model = train(data, &spec, &cfg.train)?;
    let train_set = settled_issued_between(data, i32::MIN, split);
    let test = settled_issued_between(data, split, i32::MAX);
    if test.is_empty() {
        return Err(PredictError::TooFewExamples { got: 0, need: 1 });
    }
    let rows: Vec<(u32, i32)> = test
        .iter()
        .map(|&i| (i as u32, data.issue[i] - 1))
        .collect();
    let mut m = features::build_days(data, rows)?;
    model.fill_derived(data, &mut m);
    let n = test.len();
    let mut p_late = Vec::with_capacity(n);
    let mut y_late = Vec::with_capacity(n);
    let mut p50 = Vec::with_capacity(n);
    let mut mean = Vec::with_capacity(n);
    let mut actual = Vec::with_capacity(n);
    let mut covered = 0usize;
    let mut base_hist_late = Vec::with_capacity(n);
    let mut base_hist_days = Vec::with_capacity(n);
    let mut base_terms = Vec::with_capacity(n);
    let train_days: Vec<f64> = train_set
        .iter()
        .map(|&i| f64::from(data.settled[i] - data.issue[i]))
        .collect();
    let global_days = train_days.iter().sum::<f64>() / train_days.len().max(1) as f64;
    let global_late = train_set
        .iter()
        .filter(|&&i| data.settled[i] > data.due[i])
        .count() as f64
        / train_set.len().max(1) as f64;
    for (r, &i) in test.iter().enumerate() {
        let row = m.row(r);
        let dtp = f64::from(data.settled[i] - data.issue[i]);
        p_late.push(model.late_probabilities(row)[0]);
        y_late.push(data.settled[i] > data.due[i]);
        let dist = model.distribution(row);
        let (q10, q50, q90) = (
            model.shape.quantile(&dist, 0.1),
            model.shape.quantile(&dist, 0.5),
            model.shape.quantile(&dist, 0.9),
        );
        p50.push(q50);
        mean.push(model.shape.expected(&dist));
        actual.push(dtp);
        if dtp >= q10.floor() && dtp <= q90.ceil() {
            covered += 1;
        }
        let hist_late = row[col::HIST_LATE_RATE];
        base_hist_late.push(if hist_late.is_nan() {
            global_late
        } else {
            f64::from(hist_late)
        });
        let hist_days = row[col::HIST_MEAN_DTP];
        base_hist_days.push(if hist_days.is_nan() {
            global_days
        } else {
            f64::from(hist_days)
        });
        base_terms.push(f64::from(row[col::TERMS_DAYS]));
    }
    let late_baselines = vec![
        Baseline {
            name: "global late rate".into(),
            metrics: classification(&vec![global_late; n], &y_late),
        },
        Baseline {
            name: "customer's late rate so far".into(),
            metrics: classification(&base_hist_late, &y_late),
        },
        Baseline {
            name: "pays on the due date".into(),
            metrics: classification(&vec![0.0; n], &y_late),
        },
    ];
    let days_baselines = vec![
        Baseline {
            name: "global mean".into(),
            metrics: regression(&vec![global_days; n], &actual),
        },
        Baseline {
            name: "customer's mean so far".into(),
            metrics: regression(&base_hist_days, &actual),
        },
        Baseline {
            name: "pays on the due date".into(),
            metrics: regression(&base_terms, &actual),
        },
    ];
    let days = RegressionMetrics {
        mae: regression(&p50, &actual).mae,
        rmse: regression(&mean, &actual).rmse,
    };
    let eval = Evaluation {
        split: cfg.split,
        train_invoices: model.card.invoices,
        test_invoices: n,
        test_late_rate: y_late.iter().filter(|&&y| y).count() as f64 / n as f64,
        late: classification(&p_late, &y_late),
        late_baselines,
        calibration: calibration(&p_late, &y_late, cfg.calibration_bins),
        days,
        days_baselines,
        coverage_p10_p90: covered as f64 / n as f64,
        card: model.card.clone(),
    };
    Ok((eval, model))
}

impl Evaluation {
    /// A plain-text report of the figures next to the baselines.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let auc = |a: Option<f64>| a.map_or("n/a".to_string(), |a| format!("{a:.4}"));
        let _ = writeln!(
            s,
            "split {}: train {} invoices, test {} invoices (late rate {:.1} %)",
            self.split,
            self.train_invoices,
            self.test_invoices,
            self.test_late_rate * 100.0
        );
        let _ = writeln!(
            s,
            "\nlate (paid after due date)      AUC     accuracy  Brier   log loss"
        );
        let mut line = |name: &str, m: &ClassificationMetrics| {
            let _ = writeln!(
                s,
                "  {name:<30}{:<8}{:<10.4}{:<8.4}{:.4}",
                auc(m.auc),
                m.accuracy,
                m.brier,
                m.log_loss
            );
        };
        line("arflow", &self.late);
        for b in &self.late_baselines {
            line(&b.name, &b.metrics);
        }
        let _ = writeln!(
            s,
            "\ncalibration (predicted P(late) bin: count, mean predicted, observed)"
        );
        for b in self.calibration.iter().filter(|b| b.count > 0) {
            let _ = writeln!(
                s,
                "  [{:.1}, {:.1}): {:>4}  {:.3}  {:.3}",
                b.lo, b.hi, b.count, b.mean_predicted, b.observed_rate
            );
        }
        let _ = writeln!(s, "\ndays to settle                  MAE     RMSE");
        let _ = writeln!(
            s,
            "  {:<30}{:<8.3}{:.3}",
            "arflow (P50 / mean)", self.days.mae, self.days.rmse
        );
        for b in &self.days_baselines {
            let _ = writeln!(
                s,
                "  {:<30}{:<8.3}{:.3}",
                b.name, b.metrics.mae, b.metrics.rmse
            );
        }
        let _ = writeln!(
            s,
            "\nsettled within the predicted P10–P90 days: {:.1} %",
            self.coverage_p10_p90 * 100.0
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half_and_orders() {
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            Some(0.75)
        );
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auc(&[0.9, 0.1], &[true, false]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[true, true]), None);
    }

    #[test]
    fn metrics_by_hand() {
        let m = classification(&[0.9, 0.2, 0.6], &[true, false, false]);
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.brier - (0.01 + 0.04 + 0.36) / 3.0).abs() < 1e-12);
        let r = regression(&[10.0, 20.0], &[13.0, 16.0]);
        assert!((r.mae - 3.5).abs() < 1e-12);
        assert!((r.rmse - 12.5f64.sqrt()).abs() < 1e-12);
        let c = calibration(&[0.05, 0.15, 0.95, 1.0], &[false, true, true, true], 10);
        assert_eq!(c[0].count, 1);
        assert_eq!(c[9].count, 2);
        assert!((c[1].observed_rate - 1.0).abs() < 1e-12);
    }
}
