//! A small histogram gradient-boosted-trees learner (logistic and squared loss).
//!
//! Why not a crate: the maintained Rust GBDT crates either pull a threading
//! runtime and a system-information crate into the pure domain crate and are
//! pre-release (`perpetual` 3.0-rc: rayon, sysinfo, rand 0.10), or are
//! unmaintained and without histogram training (`gbdt` 0.1.3, last release
//! years ago); the LightGBM/XGBoost bindings compile C++ for minutes on 2 cores.
//! What prediction needs is narrow: depth-limited trees on ≤ 255 bins per
//! feature, an initial margin per row (boosting on top of the linear stage),
//! NaN routing, seeded row/column sampling and early stopping on a time
//! holdout. That is a few hundred lines, deterministic, and serializes to
//! plain JSON.
//!
//! Training follows LightGBM's design: features are bucketed into quantile
//! bins once; each node's gradient histogram is built for the smaller child
//! only and the larger child's is the parent's minus it; the best split per
//! feature tries sending missing values left and right.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objective {
    /// Binary labels 0/1; the margin is a log-odds.
    Logistic,
    /// Real targets; the margin is the prediction.
    Squared,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtParams {
    pub max_rounds: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    /// Minimum hessian sum in a child (row count for squared loss).
    pub min_child_weight: f64,
    /// L2 penalty on leaf values.
    pub lambda: f64,
    pub min_split_gain: f64,
    /// Share of rows drawn for each tree.
    pub subsample: f64,
    /// Share of features drawn for each tree.
    pub colsample: f64,
    /// Bins per feature, at most 254 (bin 0 holds missing values).
    pub max_bins: usize,
    /// Stop when the holdout loss has not improved for this many rounds.
    pub early_stopping_rounds: usize,
}

impl Default for GbdtParams {
    fn default() -> GbdtParams {
        GbdtParams {
            max_rounds: 150,
            learning_rate: 0.15,
            max_depth: 3,
            min_child_weight: 10.0,
            lambda: 5.0,
            min_split_gain: 0.0,
            subsample: 0.8,
            colsample: 0.8,
            max_bins: 64,
            early_stopping_rounds: 30,
        }
    }
}

const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Feature column, or `u32::MAX` for a leaf.
    #[serde(rename = "f")]
    pub feature: u32,
    /// Rows with `value <= threshold` go left.
    #[serde(rename = "t")]
    pub threshold: f32,
    #[serde(rename = "m")]
    pub missing_left: bool,
    #[serde(rename = "l")]
    pub left: u32,
    #[serde(rename = "r")]
    pub right: u32,
    /// Leaf value (already multiplied by the learning rate).
    #[serde(rename = "v")]
    pub value: f32,
    /// Training-time bin of the threshold; not needed to predict.
    #[serde(skip)]
    bin: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, row: &[f32]) -> f32 {
        let mut k = 0usize;
        loop {
            let n = &self.nodes[k];
            if n.feature == LEAF {
                return n.value;
            }
            let v = row[n.feature as usize];
            let left = if v.is_nan() {
                n.missing_left
            } else {
                v <= n.threshold
            };
            k = if left { n.left } else { n.right } as usize;
        }
    }

    fn predict_binned(&self, row: &[u8]) -> f32 {
        let mut k = 0usize;
        loop {
            let n = &self.nodes[k];
            if n.feature == LEAF {
                return n.value;
            }
            let b = row[n.feature as usize];
            let left = if b == 0 { n.missing_left } else { b <= n.bin };
            k = if left { n.left } else { n.right } as usize;
        }
    }
}

/// A trained ensemble. Its output is a margin added to the row's initial margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    pub objective: Objective,
    pub trees: Vec<Tree>,
    /// Total split gain per feature column, for the model card.
    pub gain: Vec<f64>,
    #[serde(skip)]
    compact: CompactCache,
}

/// The trees padded to complete binary trees of one depth, in flat arrays:
/// scoring then walks exactly `depth` levels per tree without branches
/// (`i = 2i + 1 + went_right`), so the CPU overlaps many rows' walks; the
/// node-by-node walk stalls on mispredicted branches instead. Built on first
/// use, not serialized.
#[derive(Debug)]
struct Compact {
    depth: usize,
    feature: Vec<u32>,
    threshold: Vec<f32>,
    missing_left: Vec<bool>,
    leaf: Vec<f32>,
}

/// Deepest trees worth padding (2^depth leaves per tree).
const MAX_COMPACT_DEPTH: usize = 8;

#[derive(Debug, Default)]
struct CompactCache(std::sync::OnceLock<Option<Compact>>);

impl Clone for CompactCache {
    fn clone(&self) -> Self {
        CompactCache::default()
    }
}

impl PartialEq for CompactCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Compact {
    /// Adds every tree's leaf for each row; `D` is `self.depth` (a constant
    /// so the levels unroll).
    fn walk<const D: usize>(&self, x: &[f32], n_cols: usize, out: &mut [f64]) {
        let inner = (1usize << D) - 1;
        let (feature, threshold, missing_left, leaf) = (
            &self.feature[..],
            &self.threshold[..],
            &self.missing_left[..],
            &self.leaf[..],
        );
        let trees = leaf.len() >> D;
        for t in 0..trees {
            let nodes = t * inner;
            let (f, th, ml) = (
                &feature[nodes..nodes + inner],
                &threshold[nodes..nodes + inner],
                &missing_left[nodes..nodes + inner],
            );
            let lv = &leaf[t << D..(t + 1) << D];
            for (r, o) in out.iter_mut().enumerate() {
                let row = &x[r * n_cols..(r + 1) * n_cols];
                let mut pos = 0usize;
                for _ in 0..D {
                    let v = row[f[pos] as usize];
                    // Non-short-circuit operators: no branch to mispredict.
                    let left = (v <= th[pos]) | (v.is_nan() & ml[pos]);
                    pos = 2 * pos + 2 - usize::from(left);
                }
                *o += f64::from(lv[pos - inner]);
            }
        }
    }

    fn build(trees: &[Tree]) -> Option<Compact> {
        fn depth(t: &Tree, k: usize) -> usize {
            let n = &t.nodes[k];
            if n.feature == LEAF {
                0
            } else {
                1 + depth(t, n.left as usize).max(depth(t, n.right as usize))
            }
        }
        let d = trees.iter().map(|t| depth(t, 0)).max().unwrap_or(0);
        if d > MAX_COMPACT_DEPTH {
            return None;
        }
        let inner = (1usize << d) - 1;
        let mut c = Compact {
            depth: d,
            feature: Vec::with_capacity(trees.len() * inner),
            threshold: Vec::with_capacity(trees.len() * inner),
            missing_left: Vec::with_capacity(trees.len() * inner),
            leaf: Vec::with_capacity(trees.len() << d),
        };
        for t in trees {
            let base = c.feature.len();
            let leaf_base = c.leaf.len();
            c.feature.resize(base + inner, 0);
            c.threshold.resize(base + inner, f32::INFINITY);
            c.missing_left.resize(base + inner, true);
            c.leaf.resize(leaf_base + (1 << d), 0.0);
            // (node in the tree, position in the complete layout, level)
            let mut stack = vec![(0usize, 0usize, 0usize)];
            while let Some((k, pos, level)) = stack.pop() {
                let n = &t.nodes[k];
                if level == d {
                    c.leaf[leaf_base + pos - inner] = n.value;
                } else if n.feature == LEAF {
                    // Pad: always go left (v <= ∞, missing left); both
                    // sides carry the leaf so any path ends on its value.
                    stack.push((k, 2 * pos + 1, level + 1));
                    stack.push((k, 2 * pos + 2, level + 1));
                } else {
                    c.feature[base + pos] = n.feature;
                    c.threshold[base + pos] = n.threshold;
                    c.missing_left[base + pos] = n.missing_left;
                    stack.push((n.left as usize, 2 * pos + 1, level + 1));
                    stack.push((n.right as usize, 2 * pos + 2, level + 1));
                }
            }
        }
        Some(c)
    }
}

impl Gbdt {
    pub fn empty(objective: Objective, n_cols: usize) -> Gbdt {
        Gbdt {
            objective,
            trees: Vec::new(),
            gain: vec![0.0; n_cols],
            compact: CompactCache::default(),
        }
    }

    /// Sum of the trees' outputs for one row of features.
    pub fn margin(&self, row: &[f32]) -> f64 {
        self.trees.iter().map(|t| f64::from(t.predict(row))).sum()
    }

    /// Adds the trees' outputs to `out[r]` for each row of the row-major
    /// block `x`, tree by tree (the same sums as [`Gbdt::margin`]).
    pub fn add_margins(&self, x: &[f32], n_cols: usize, out: &mut [f64]) {
        let Some(c) = self.compact.0.get_or_init(|| Compact::build(&self.trees)) else {
            for t in &self.trees {
                for (r, o) in out.iter_mut().enumerate() {
                    *o += f64::from(t.predict(&x[r * n_cols..(r + 1) * n_cols]));
                }
            }
            return;
        };
        match c.depth {
            0 => c.walk::<0>(x, n_cols, out),
            1 => c.walk::<1>(x, n_cols, out),
            2 => c.walk::<2>(x, n_cols, out),
            3 => c.walk::<3>(x, n_cols, out),
            4 => c.walk::<4>(x, n_cols, out),
            5 => c.walk::<5>(x, n_cols, out),
            6 => c.walk::<6>(x, n_cols, out),
            7 => c.walk::<7>(x, n_cols, out),
            _ => c.walk::<8>(x, n_cols, out),
        }
    }
}

/// Training or holdout rows: row-major features, targets and initial margins.
pub(crate) struct Rows<'a> {
    pub x: &'a [f32],
    pub y: &'a [f32],
    pub init: &'a [f64],
}

/// What early stopping found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FitReport {
    pub rounds: usize,
    pub valid_loss: Option<f64>,
}

/// SplitMix64: a tiny seeded generator; enough for row and column sampling.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}

pub(crate) fn loss(objective: Objective, margin: f64, y: f64) -> f64 {
    match objective {
        // log(1 + e^m) − y·m, computed stably.
        Objective::Logistic => margin.max(0.0) + (-margin.abs()).exp().ln_1p() - y * margin,
        Objective::Squared => (margin - y) * (margin - y),
    }
}

/// Quantile bin edges per feature: a value v goes to bin 1 + #{edges < v}; NaN to bin 0.
struct Binner {
    edges: Vec<Vec<f32>>,
}

impl Binner {
    fn new(x: &[f32], n_cols: usize, max_bins: usize, usable: &[bool]) -> Binner {
        let n_rows = x.len() / n_cols.max(1);
        let stride = (n_rows / 200_000).max(1);
        let mut edges = Vec::with_capacity(n_cols);
        let mut vals: Vec<f32> = Vec::with_capacity(n_rows / stride + 1);
        for c in 0..n_cols {
            vals.clear();
            if usable[c] {
                vals.extend(
                    (0..n_rows)
                        .step_by(stride)
                        .map(|r| x[r * n_cols + c])
                        .filter(|v| !v.is_nan()),
                );
            }
            vals.sort_unstable_by(f32::total_cmp);
            let mut distinct = vals.clone();
            distinct.dedup();
            let e: Vec<f32> = if distinct.len() <= 1 {
                Vec::new()
            } else if distinct.len() <= max_bins {
                distinct
                    .windows(2)
                    .map(|w| w[0] + (w[1] - w[0]) / 2.0)
                    .collect()
            } else {
                let mut e: Vec<f32> = (1..max_bins)
                    .map(|k| vals[k * vals.len() / max_bins])
                    .collect();
                e.dedup();
                // The largest value must not be an edge: bin nb holds it.
                if e.last() == distinct.last() {
                    e.pop();
                }
                e
            };
            edges.push(e);
        }
        Binner { edges }
    }

    fn bin(&self, c: usize, v: f32) -> u8 {
        if v.is_nan() {
            0
        } else {
            (1 + self.edges[c].partition_point(|&e| e < v)) as u8
        }
    }

    fn n_bins(&self, c: usize) -> usize {
        self.edges[c].len() + 1
    }
}

#[derive(Clone, Copy)]
struct Split {
    feature: usize,
    bin: u8,
    missing_left: bool,
    gain: f64,
}

struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    hist: Vec<[f64; 2]>,
    g: f64,
    h: f64,
}

struct Grower<'a> {
    binned: &'a [u8],
    n_cols: usize,
    stride: usize,
    nbins: Vec<usize>,
    params: &'a GbdtParams,
}

impl Grower<'_> {
    fn build_hist(
        &self,
        rows: &[u32],
        feats: &[usize],
        grad: &[f64],
        hess: &[f64],
    ) -> Vec<[f64; 2]> {
        let mut hist = vec![[0.0f64; 2]; self.n_cols * self.stride];
        for &r in rows {
            let r = r as usize;
            let (g, h) = (grad[r], hess[r]);
            let row = &self.binned[r * self.n_cols..(r + 1) * self.n_cols];
            for &f in feats {
                let cell = &mut hist[f * self.stride + row[f] as usize];
                cell[0] += g;
                cell[1] += h;
            }
        }
        hist
    }

    fn score(&self, g: f64, h: f64) -> f64 {
        g * g / (h + self.params.lambda)
    }

    fn best_split(&self, hist: &[[f64; 2]], feats: &[usize], g: f64, h: f64) -> Option<Split> {
        let p = self.params;
        let parent = self.score(g, h);
        let mut best: Option<Split> = None;
        for &f in feats {
            let nb = self.nbins[f];
            if nb < 2 {
                continue;
            }
            let cells = &hist[f * self.stride..f * self.stride + nb + 1];
            let [gm, hm] = cells[0];
            let (mut gl, mut hl) = (0.0, 0.0);
            // b == nb puts every present value left and the missing ones right.
            for (b, cell) in cells.iter().enumerate().skip(1) {
                gl += cell[0];
                hl += cell[1];
                if b == nb && hm == 0.0 {
                    break;
                }
                for missing_left in [false, true] {
                    if b == nb && missing_left {
                        break;
                    }
                    let (gl2, hl2) = if missing_left {
                        (gl + gm, hl + hm)
                    } else {
                        (gl, hl)
                    };
                    let (gr, hr) = (g - gl2, h - hl2);
                    if hl2 < p.min_child_weight || hr < p.min_child_weight {
                        continue;
                    }
                    let gain = 0.5 * (self.score(gl2, hl2) + self.score(gr, hr) - parent);
                    if gain > p.min_split_gain && best.is_none_or(|s| gain > s.gain) {
                        best = Some(Split {
                            feature: f,
                            bin: b as u8,
                            missing_left,
                            gain,
                        });
                    }
                    if hm == 0.0 {
                        // No missing values: both directions are the same split.
                        break;
                    }
                }
            }
        }
        best
    }

    fn leaf(&self, g: f64, h: f64) -> f32 {
        (-g / (h + self.params.lambda) * self.params.learning_rate) as f32
    }

    #[allow(clippy::too_many_arguments)]
    fn grow(
        &self,
        rows: &mut [u32],
        feats: &[usize],
        grad: &[f64],
        hess: &[f64],
        binner: &Binner,
        gain: &mut [f64],
    ) -> Tree {
        let leaf_node = |value: f32| Node {
            feature: LEAF,
            threshold: 0.0,
            missing_left: false,
            left: 0,
            right: 0,
            value,
            bin: 0,
        };
        let (g, h) = rows.iter().fold((0.0, 0.0), |(g, h), &r| {
            (g + grad[r as usize], h + hess[r as usize])
        });
        let mut nodes = vec![leaf_node(self.leaf(g, h))];
        let mut queue = VecDeque::new();
        queue.push_back(Pending {
            node: 0,
            start: 0,
            end: rows.len(),
            depth: 0,
            hist: self.build_hist(rows, feats, grad, hess),
            g,
            h,
        });
        while let Some(mut p) = queue.pop_front() {
            if p.depth >= self.params.max_depth {
                continue;
            }
            let Some(s) = self.best_split(&p.hist, feats, p.g, p.h) else {
                continue;
            };
            gain[s.feature] += s.gain;
            // Partition the node's rows: left ones first.
            let slice = &mut rows[p.start..p.end];
            let goes_left = |r: u32| {
                let b = self.binned[r as usize * self.n_cols + s.feature];
                if b == 0 { s.missing_left } else { b <= s.bin }
            };
            let mut mid = 0;
            for k in 0..slice.len() {
                if goes_left(slice[k]) {
                    slice.swap(k, mid);
                    mid += 1;
                }
            }
            let (lrows, rrows) = slice.split_at(mid);
            let (lg, lh) = lrows.iter().fold((0.0, 0.0), |(g, h), &r| {
                (g + grad[r as usize], h + hess[r as usize])
            });
            let (rg, rh) = (p.g - lg, p.h - lh);
            let small_is_left = lrows.len() <= rrows.len();
            let small =
                self.build_hist(if small_is_left { lrows } else { rrows }, feats, grad, hess);
            for (big, s) in p.hist.iter_mut().zip(&small) {
                big[0] -= s[0];
                big[1] -= s[1];
            }
            let (lhist, rhist) = if small_is_left {
                (small, p.hist)
            } else {
                (p.hist, small)
            };
            let li = nodes.len();
            nodes.push(leaf_node(self.leaf(lg, lh)));
            nodes.push(leaf_node(self.leaf(rg, rh)));
            let edges = &binner.edges[s.feature];
            let n = &mut nodes[p.node];
            n.feature = s.feature as u32;
            n.bin = s.bin;
            // Past the last edge only missing values go right.
            n.threshold = edges.get(s.bin as usize - 1).copied().unwrap_or(f32::MAX);
            n.missing_left = s.missing_left;
            n.left = li as u32;
            n.right = li as u32 + 1;
            let mid_abs = p.start + mid;
            queue.push_back(Pending {
                node: li,
                start: p.start,
                end: mid_abs,
                depth: p.depth + 1,
                hist: lhist,
                g: lg,
                h: lh,
            });
            queue.push_back(Pending {
                node: li + 1,
                start: mid_abs,
                end: p.end,
                depth: p.depth + 1,
                hist: rhist,
                g: rg,
                h: rh,
            });
        }
        Tree { nodes }
    }
}

/// Fits trees on `train` (boosting from its initial margins), stopping early
/// on `valid` when given. `usable[c]` false excludes column `c`.
pub(crate) fn fit(
    train: &Rows<'_>,
    valid: Option<&Rows<'_>>,
    n_cols: usize,
    usable: &[bool],
    objective: Objective,
    params: &GbdtParams,
    seed: u64,
) -> (Gbdt, FitReport) {
    let n = train.y.len();
    let mut model = Gbdt::empty(objective, n_cols);
    if n == 0 || params.max_rounds == 0 {
        return (
            model,
            FitReport {
                rounds: 0,
                valid_loss: None,
            },
        );
    }
    let max_bins = params.max_bins.clamp(2, 254);
    let binner = Binner::new(train.x, n_cols, max_bins, usable);
    let mut binned = vec![0u8; n * n_cols];
    for r in 0..n {
        for c in 0..n_cols {
            binned[r * n_cols + c] = binner.bin(c, train.x[r * n_cols + c]);
        }
    }
    let candidates: Vec<usize> = (0..n_cols)
        .filter(|&c| usable[c] && binner.n_bins(c) >= 2)
        .collect();
    let grower = Grower {
        binned: &binned,
        n_cols,
        stride: max_bins + 1,
        nbins: (0..n_cols).map(|c| binner.n_bins(c)).collect(),
        params,
    };
    let mut rng = SplitMix64::new(seed);
    let mut margin = train.init.to_vec();
    let mut grad = vec![0.0; n];
    let mut hess = vec![0.0; n];
    let mut valid_margin = valid.map(|v| v.init.to_vec());
    let valid_loss = |m: &[f64], v: &Rows<'_>| {
        m.iter()
            .zip(v.y)
            .map(|(&m, &y)| loss(objective, m, f64::from(y)))
            .sum::<f64>()
            / v.y.len().max(1) as f64
    };
    let mut best = valid
        .zip(valid_margin.as_ref())
        .map(|(v, m)| valid_loss(m, v));
    let mut best_rounds = 0;
    let mut rows: Vec<u32> = Vec::with_capacity(n);
    let n_feats = ((candidates.len() as f64 * params.colsample).ceil() as usize)
        .clamp(1.min(candidates.len()), candidates.len());
    let mut feats = candidates.clone();
    for round in 0..params.max_rounds {
        for r in 0..n {
            let y = f64::from(train.y[r]);
            match objective {
                Objective::Logistic => {
                    let p = sigmoid(margin[r]);
                    grad[r] = p - y;
                    hess[r] = (p * (1.0 - p)).max(1e-6);
                }
                Objective::Squared => {
                    grad[r] = margin[r] - y;
                    hess[r] = 1.0;
                }
            }
        }
        rows.clear();
        if params.subsample >= 1.0 {
            rows.extend(0..n as u32);
        } else {
            rows.extend((0..n as u32).filter(|_| rng.next_f64() < params.subsample));
        }
        // Partial Fisher–Yates: the first n_feats of `feats` are the draw.
        feats.copy_from_slice(&candidates);
        for k in 0..n_feats {
            let j = k + (rng.next_u64() % (feats.len() - k) as u64) as usize;
            feats.swap(k, j);
        }
        let mut drawn = feats[..n_feats].to_vec();
        drawn.sort_unstable();
        let tree = grower.grow(&mut rows, &drawn, &grad, &hess, &binner, &mut model.gain);
        for r in 0..n {
            margin[r] += f64::from(tree.predict_binned(&binned[r * n_cols..(r + 1) * n_cols]));
        }
        model.trees.push(tree);
        if let (Some(v), Some(vm)) = (valid, valid_margin.as_mut()) {
            let t = &model.trees[round];
            for (r, m) in vm.iter_mut().enumerate() {
                *m += f64::from(t.predict(&v.x[r * n_cols..(r + 1) * n_cols]));
            }
            let l = valid_loss(vm, v);
            if best.is_none_or(|b| l < b - 1e-12) {
                best = Some(l);
                best_rounds = round + 1;
            } else if round + 1 - best_rounds >= params.early_stopping_rounds {
                break;
            }
        } else {
            best_rounds = round + 1;
        }
    }
    model.trees.truncate(best_rounds);
    (
        model,
        FitReport {
            rounds: best_rounds,
            valid_loss: best,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synth(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        // Two informative columns, one noise column with missing values.
        let mut rng = SplitMix64::new(seed);
        let (mut x, mut yb, mut yr) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let a = rng.next_f64() as f32 * 10.0;
            let b = rng.next_f64() as f32;
            let noise = if rng.next_f64() < 0.2 {
                f32::NAN
            } else {
                rng.next_f64() as f32
            };
            x.extend([a, b, noise]);
            let target = if a > 6.0 { 5.0 } else { 1.0 } + 3.0 * b;
            yr.push(target + (rng.next_f64() as f32 - 0.5));
            yb.push(f32::from(u8::from(a > 4.0 && rng.next_f64() < 0.9)));
        }
        (x, yb, yr)
    }

    #[test]
    fn squared_loss_learns_a_step_and_a_slope() {
        let (x, _, y) = synth(2000, 1);
        let init = vec![0.0; 2000];
        let rows = Rows {
            x: &x,
            y: &y,
            init: &init,
        };
        let params = GbdtParams {
            max_rounds: 200,
            learning_rate: 0.1,
            ..GbdtParams::default()
        };
        let (m, rep) = fit(&rows, None, 3, &[true; 3], Objective::Squared, &params, 7);
        assert_eq!(rep.rounds, 200);
        let (xt, _, yt) = synth(500, 2);
        let mse: f64 = (0..500)
            .map(|r| (m.margin(&xt[r * 3..r * 3 + 3]) - f64::from(yt[r])).powi(2))
            .sum::<f64>()
            / 500.0;
        // The target's variance is about 1.7, the noise's 1/12.
        assert!(mse < 0.35, "mse {mse}");
        assert!(m.gain[0] > m.gain[2] && m.gain[1] > m.gain[2]);
    }

    #[test]
    fn logistic_loss_separates_and_early_stopping_stops() {
        let (x, y, _) = synth(1500, 3);
        let init = vec![0.0; 1500];
        let rows = Rows {
            x: &x[..1000 * 3],
            y: &y[..1000],
            init: &init[..1000],
        };
        let valid = Rows {
            x: &x[1000 * 3..],
            y: &y[1000..],
            init: &init[1000..],
        };
        let params = GbdtParams {
            max_rounds: 500,
            learning_rate: 0.3,
            ..GbdtParams::default()
        };
        let (m, rep) = fit(
            &rows,
            Some(&valid),
            3,
            &[true; 3],
            Objective::Logistic,
            &params,
            9,
        );
        assert!(rep.rounds < 500 && rep.rounds > 0, "{rep:?}");
        assert_eq!(m.trees.len(), rep.rounds);
        let p_hi = 1.0 / (1.0 + (-m.margin(&[8.0, 0.5, f32::NAN])).exp());
        let p_lo = 1.0 / (1.0 + (-m.margin(&[1.0, 0.5, 0.3])).exp());
        assert!(p_hi > 0.8 && p_lo < 0.1, "{p_hi} {p_lo}");
    }

    #[test]
    fn same_seed_same_model_and_json_round_trip() {
        let (x, _, y) = synth(500, 4);
        let init = vec![1.0; 500];
        let rows = Rows {
            x: &x,
            y: &y,
            init: &init,
        };
        let p = GbdtParams::default();
        let (a, _) = fit(
            &rows,
            None,
            3,
            &[true, false, true],
            Objective::Squared,
            &p,
            11,
        );
        let (b, _) = fit(
            &rows,
            None,
            3,
            &[true, false, true],
            Objective::Squared,
            &p,
            11,
        );
        assert_eq!(a, b);
        assert_eq!(a.gain[1], 0.0, "an unusable column is never split on");
        let json = serde_json::to_string(&a).unwrap();
        let back: Gbdt = serde_json::from_str(&json).unwrap();
        for r in 0..50 {
            assert_eq!(
                a.margin(&x[r * 3..r * 3 + 3]),
                back.margin(&x[r * 3..r * 3 + 3])
            );
        }
        let (c, _) = fit(&rows, None, 3, &[true; 3], Objective::Squared, &p, 12);
        assert_ne!(a, c);
    }

    #[test]
    fn block_scoring_matches_the_node_walk() {
        let (x, _, y) = synth(800, 5);
        let init = vec![0.0; 800];
        let rows = Rows {
            x: &x,
            y: &y,
            init: &init,
        };
        for depth in [1, 3, 5] {
            let p = GbdtParams {
                max_depth: depth,
                max_rounds: 30,
                ..GbdtParams::default()
            };
            let (m, _) = fit(&rows, None, 3, &[true; 3], Objective::Squared, &p, 3);
            let mut out = vec![0.0; 800];
            m.add_margins(&x, 3, &mut out);
            for (r, o) in out.iter().enumerate() {
                assert_eq!(*o, m.margin(&x[r * 3..r * 3 + 3]), "depth {depth} row {r}");
            }
            // Reloaded models rebuild the block layout.
            let back: Gbdt = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            let mut again = vec![0.0; 800];
            back.add_margins(&x, 3, &mut again);
            assert_eq!(out, again);
        }
    }

    #[test]
    fn missing_values_are_routed_by_what_they_predict() {
        // Missing ⇔ high target: the split must send NaN with the high side.
        let n = 400;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for r in 0..n {
            if r % 2 == 0 {
                x.push(f32::NAN);
                y.push(10.0);
            } else {
                x.push((r % 7) as f32);
                y.push(0.0);
            }
        }
        let init = vec![0.0; n];
        let rows = Rows {
            x: &x,
            y: &y,
            init: &init,
        };
        let p = GbdtParams {
            max_rounds: 50,
            learning_rate: 0.3,
            subsample: 1.0,
            colsample: 1.0,
            ..GbdtParams::default()
        };
        let (m, _) = fit(&rows, None, 1, &[true], Objective::Squared, &p, 1);
        assert!(m.margin(&[f32::NAN]) > 9.0);
        assert!(m.margin(&[3.0]).abs() < 1.0);
    }
}
