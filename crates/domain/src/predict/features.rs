//! Features of an invoice as of a date, from facts dated on or before it.
//!
//! A [`Snapshot`] is (invoice, as-of date). Its features use only what was
//! known at the end of the as-of day: invoices settled on or before it,
//! allocations, reminders and promise outcomes dated on or before it, the
//! invoice's own issue-time attributes. A snapshot may be taken the day
//! before the invoice's issue date: that is the "at issue" prediction.
//!
//! All snapshots are computed by one sweep per customer over its dated events
//! (issue, allocation, settlement, write-off, void) in date order, answering
//! the snapshots of that customer as the sweep passes their dates: running
//! sums give means and spreads, Fenwick trees give medians and overdue counts.
//! The cost is O((events + snapshots) · log) with no allocation per snapshot.
//!
//! Definitions (T = days from issue to full settlement, days late =
//! max(0, settled − due), terms = due − issue; "history" = the customer's
//! invoices settled on or before the as-of date, not voided by then):
//! see [`FEATURES`] for the list with one-line descriptions. Days-to-pay
//! values are clamped to 0..=1023 for the medians only. Missing values (no
//! history, unknown paperless) are NaN; the learners route them explicitly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::data::{NEVER, PredictData};
use super::{PredictError, date_from_day, day_number};

/// Number of most recent settled invoices in the "recent" features.
pub const RECENT_N: usize = 5;

/// A feature's name and meaning, for model cards and documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureInfo {
    pub name: &'static str,
    pub description: &'static str,
}

const fn fi(name: &'static str, description: &'static str) -> FeatureInfo {
    FeatureInfo { name, description }
}

/// Column indexes of [`FEATURES`].
pub mod col {
    pub const HIST_COUNT: usize = 0;
    pub const HIST_MEAN_DTP: usize = 1;
    pub const HIST_MEDIAN_DTP: usize = 2;
    pub const HIST_STD_DTP: usize = 3;
    pub const HIST_MEAN_LATE: usize = 4;
    pub const HIST_MEDIAN_LATE: usize = 5;
    pub const HIST_STD_LATE: usize = 6;
    pub const HIST_LATE_RATE: usize = 7;
    pub const HIST_LATE30_RATE: usize = 8;
    pub const HIST_WMEAN_DTP: usize = 9;
    pub const HIST_WMEAN_LATE: usize = 10;
    pub const RECENT_MEAN_DTP: usize = 11;
    pub const RECENT_MEAN_LATE: usize = 12;
    pub const RECENT_TREND_DTP: usize = 13;
    pub const HIST_MEAN_DTP_MINUS_TERMS: usize = 14;
    pub const HIST_DISPUTED_RATE: usize = 15;
    pub const HIST_PAPERLESS_RATE: usize = 16;
    pub const HIST_MEAN_TERMS: usize = 17;
    pub const HIST_MEAN_LN_AMOUNT: usize = 18;
    pub const HIST_FOREIGN_RATE: usize = 19;
    pub const DAYS_SINCE_LAST_SETTLEMENT: usize = 20;
    pub const LN_AMOUNT: usize = 21;
    pub const AMOUNT_REL: usize = 22;
    pub const TERMS_DAYS: usize = 23;
    pub const FOREIGN: usize = 24;
    pub const DISPUTED: usize = 25;
    pub const PAPERLESS: usize = 26;
    pub const MONTH: usize = 27;
    pub const QUARTER: usize = 28;
    pub const DAYS_SINCE_ISSUE: usize = 29;
    pub const DAYS_OVERDUE: usize = 30;
    pub const OPEN_COUNT: usize = 31;
    pub const OPEN_LN_AMOUNT: usize = 32;
    pub const OVERDUE_COUNT: usize = 33;
    pub const OPEN_MAX_DAYS_OVERDUE: usize = 34;
    pub const OPEN_OLDEST_AGE: usize = 35;
    pub const REMINDERS_SENT: usize = 36;
    pub const DAYS_SINCE_LAST_REMINDER: usize = 37;
    pub const PROMISES_KEPT: usize = 38;
    pub const PROMISES_BROKEN: usize = 39;
    pub const PROMISE_PENDING: usize = 40;
    /// First column filled by the model rather than by the sweep.
    pub const N_RAW: usize = 41;
    pub const BASE_BLUP: usize = 41;
    pub const LIN_PRED: usize = 42;
    pub const LIN_LATE: usize = 43;
    pub const LIN_REMAINING: usize = 44;
    pub const N_FEATURES: usize = 45;
}

/// Every feature, in column order. The last four are computed by the model's
/// linear stage from the others (see [`super::linear`]).
pub const FEATURES: [FeatureInfo; col::N_FEATURES] = [
    fi(
        "hist_count",
        "customer's invoices settled by the as-of date",
    ),
    fi("hist_mean_dtp", "their mean days-to-pay"),
    fi("hist_median_dtp", "their median days-to-pay"),
    fi(
        "hist_std_dtp",
        "their sample standard deviation of days-to-pay",
    ),
    fi("hist_mean_late", "their mean days late (0 when on time)"),
    fi("hist_median_late", "their median days late"),
    fi("hist_std_late", "their standard deviation of days late"),
    fi("hist_late_rate", "share of them paid after the due date"),
    fi(
        "hist_late30_rate",
        "share of them paid more than 30 days late",
    ),
    fi("hist_wmean_dtp", "amount-weighted mean days-to-pay"),
    fi("hist_wmean_late", "amount-weighted mean days late"),
    fi(
        "recent_mean_dtp",
        "mean days-to-pay of the last 5 settled (by settlement date)",
    ),
    fi("recent_mean_late", "mean days late of the last 5 settled"),
    fi(
        "recent_trend_dtp",
        "least-squares slope of days-to-pay over the last 5 settled, days per invoice",
    ),
    fi(
        "hist_mean_dtp_minus_terms",
        "mean of (days-to-pay − terms): typical timing relative to terms",
    ),
    fi(
        "hist_disputed_rate",
        "share of settled invoices that were disputed",
    ),
    fi(
        "hist_paperless_rate",
        "share of settled invoices delivered paperless",
    ),
    fi("hist_mean_terms", "mean terms days of settled invoices"),
    fi(
        "hist_mean_ln_amount",
        "mean ln(1 + amount) of settled invoices, base currency major units",
    ),
    fi(
        "hist_foreign_rate",
        "share of settled invoices not in the base currency",
    ),
    fi(
        "days_since_last_settlement",
        "days since the customer's last settlement",
    ),
    fi(
        "ln_amount",
        "ln(1 + invoice total), base currency major units",
    ),
    fi(
        "amount_rel",
        "ln_amount − hist_mean_ln_amount: size relative to the customer's usual",
    ),
    fi("terms_days", "due date − issue date"),
    fi(
        "foreign_currency",
        "1 when the invoice is not in the base currency",
    ),
    fi(
        "disputed",
        "1 when a dispute was recorded by the as-of date (or at issue)",
    ),
    fi("paperless", "1 paperless, 0 paper, missing when unknown"),
    fi("month", "issue month 1..12"),
    fi("quarter", "issue quarter 1..4"),
    fi(
        "days_since_issue",
        "as-of date − issue date (−1 for the at-issue prediction)",
    ),
    fi("days_overdue", "max(0, as-of date − due date)"),
    fi(
        "open_count",
        "customer's other invoices open at the as-of date",
    ),
    fi(
        "open_ln_amount",
        "ln(1 + their open balance), base currency major units",
    ),
    fi("overdue_count", "how many of them are past due"),
    fi(
        "open_max_days_overdue",
        "days past due of the most overdue of them (0 if none)",
    ),
    fi(
        "open_oldest_age",
        "days since issue of the oldest of them (missing if none)",
    ),
    fi(
        "reminders_sent",
        "reminders sent for this invoice by the as-of date",
    ),
    fi(
        "days_since_last_reminder",
        "days since the last of them (missing if none)",
    ),
    fi(
        "promises_kept",
        "customer's promises to pay known kept by the as-of date",
    ),
    fi(
        "promises_broken",
        "customer's promises known broken by the as-of date",
    ),
    fi(
        "promise_pending",
        "1 when this invoice has a promise made and not yet resolved",
    ),
    fi(
        "base_blup",
        "customer's adjusted days-to-pay level, shrunk to its segment (linear stage)",
    ),
    fi(
        "lin_pred",
        "linear-stage days-to-pay: base_blup + invoice effects",
    ),
    fi("lin_late", "lin_pred − terms_days: expected days late"),
    fi(
        "lin_remaining",
        "lin_pred − days_since_issue: expected days still to wait",
    ),
];

/// An invoice and the date its features are taken at (end of that day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Position of the invoice in [`PredictData`] (= in `LedgerFacts::invoices`).
    pub invoice: usize,
    pub as_of: Date,
}

/// Features in row-major `f32`: row `r` is `values[r * N_FEATURES..][..N_FEATURES]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    pub values: Vec<f32>,
    /// Invoice position and as-of day number of each row.
    pub(crate) rows: Vec<(u32, i32)>,
}

impl FeatureMatrix {
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * col::N_FEATURES..(r + 1) * col::N_FEATURES]
    }

    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.values[r * col::N_FEATURES + c]
    }

    pub fn invoice(&self, r: usize) -> usize {
        self.rows[r].0 as usize
    }

    pub fn as_of(&self, r: usize) -> Date {
        date_from_day(self.rows[r].1).unwrap_or(Date::MIN)
    }
}

/// Computes the features of each snapshot; row `r` is `snapshots[r]`.
pub fn build(data: &PredictData, snapshots: &[Snapshot]) -> Result<FeatureMatrix, PredictError> {
    let mut days = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        if s.invoice >= data.n {
            return Err(PredictError::UnknownInvoice(s.invoice));
        }
        days.push((s.invoice as u32, day_number(s.as_of)));
    }
    build_days(data, days)
}

/// [`build`] on day numbers.
pub(crate) fn build_days(
    data: &PredictData,
    rows: Vec<(u32, i32)>,
) -> Result<FeatureMatrix, PredictError> {
    for &(i, d) in &rows {
        let i = i as usize;
        if i >= data.n {
            return Err(PredictError::UnknownInvoice(i));
        }
        if data.issue[i] > d.saturating_add(1) {
            return Err(PredictError::NotYetIssued {
                invoice_id: data.invoice_id[i],
                issued: date_from_day(data.issue[i]).unwrap_or(Date::MIN),
                as_of: date_from_day(d).unwrap_or(Date::MIN),
            });
        }
    }
    let mut values = vec![f32::NAN; rows.len() * col::N_FEATURES];
    // Snapshots grouped by customer (counting sort), each group sorted by day.
    let nc = data.customer_id.len();
    let mut start = vec![0usize; nc + 1];
    for &(i, _) in &rows {
        start[data.cust[i as usize] as usize + 1] += 1;
    }
    for c in 0..nc {
        start[c + 1] += start[c];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; rows.len()];
    for (r, &(i, _)) in rows.iter().enumerate() {
        let c = data.cust[i as usize] as usize;
        order[fill[c]] = r as u32;
        fill[c] += 1;
    }
    let mut sweep = Sweep::new(data.n);
    for c in 0..nc {
        let group = &mut order[start[c]..start[c + 1]];
        if group.is_empty() {
            continue;
        }
        group.sort_unstable_by_key(|&r| (rows[r as usize].1, r));
        sweep.customer(data, c, group, &rows, &mut values);
    }
    Ok(FeatureMatrix { values, rows })
}

#[derive(Clone, Copy)]
struct Event {
    day: i32,
    /// Processing order within a day; queries come last (end of day).
    kind: u8,
    pos: u32,
    amount: i64,
}

const OPEN_ADD: u8 = 0;
const ALLOC: u8 = 1;
const OPEN_REMOVE: u8 = 2;
const HIST_ADD: u8 = 3;
const HIST_REMOVE: u8 = 4;
const QUERY: u8 = 9;

/// Counts over a fixed range of small integers, with k-th smallest lookup.
struct Fenwick {
    tree: Vec<i32>,
}

impl Fenwick {
    fn new(n: usize) -> Fenwick {
        Fenwick {
            tree: vec![0; n + 1],
        }
    }

    fn reset(&mut self, n: usize) {
        self.tree.clear();
        self.tree.resize(n + 1, 0);
    }

    fn add(&mut self, idx: usize, delta: i32) {
        let mut i = idx + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum of counts at indexes `< k`.
    fn prefix(&self, k: usize) -> i32 {
        let mut i = k.min(self.tree.len() - 1);
        let mut s = 0;
        while i > 0 {
            s += self.tree[i];
            i &= i - 1;
        }
        s
    }

    /// Smallest index whose prefix count (inclusive) reaches `k` (1-based).
    fn kth(&self, mut k: i32) -> usize {
        let n = self.tree.len() - 1;
        let mut pos = 0;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] < k {
                pos = next;
                k -= self.tree[next];
            }
            step >>= 1;
        }
        pos
    }
}

const MEDIAN_RANGE: usize = 1024;

#[derive(Default)]
struct History {
    n: f64,
    sum_dtp: f64,
    sumsq_dtp: f64,
    sum_late: f64,
    sumsq_late: f64,
    late: f64,
    late30: f64,
    w: f64,
    w_dtp: f64,
    w_late: f64,
    terms: f64,
    disputed: f64,
    paperless: f64,
    ln_amount: f64,
    foreign: f64,
    last_settle: Option<i32>,
}

struct Sweep {
    events: Vec<Event>,
    paid: Vec<i64>,
    in_open: Vec<bool>,
    in_hist: Vec<bool>,
    /// (settlement order) entries of the history, for the recent features.
    recent: Vec<(u32, f32, f32)>,
    dtp_counts: Fenwick,
    late_counts: Fenwick,
    dues: Vec<i32>,
    due_counts: Fenwick,
    /// Open invoices by due and by issue day; removals are lazy (entries of
    /// closed invoices are dropped when they reach the top), which costs far
    /// less than ordered-set deletes.
    due_heap: BinaryHeap<Reverse<(i32, u32)>>,
    issue_heap: BinaryHeap<Reverse<(i32, u32)>>,
}

fn clamp_idx(v: f32) -> usize {
    (v.max(0.0) as usize).min(MEDIAN_RANGE - 1)
}

fn ln_major(base_minor: i64, unit: f64) -> f32 {
    (1.0 + (base_minor.max(0) as f64) / unit).ln() as f32
}

impl Sweep {
    fn new(n: usize) -> Sweep {
        Sweep {
            events: Vec::new(),
            paid: vec![0; n],
            in_open: vec![false; n],
            in_hist: vec![false; n],
            recent: Vec::new(),
            dtp_counts: Fenwick::new(MEDIAN_RANGE),
            late_counts: Fenwick::new(MEDIAN_RANGE),
            dues: Vec::new(),
            due_counts: Fenwick::new(0),
            due_heap: BinaryHeap::new(),
            issue_heap: BinaryHeap::new(),
        }
    }

    fn open_base(&self, d: &PredictData, p: usize) -> i64 {
        d.to_base_at_issue(p, (d.total[p] - self.paid[p]).max(0))
    }

    fn customer(
        &mut self,
        d: &PredictData,
        c: usize,
        queries: &[u32],
        rows: &[(u32, i32)],
        out: &mut [f32],
    ) {
        let invoices = d.invoices_of_customer(c);
        self.events.clear();
        self.dues.clear();
        for &p in invoices {
            let i = p as usize;
            self.dues.push(d.due[i]);
            if d.void_on[i] <= d.issue[i] {
                continue;
            }
            let ev = |day, kind, amount| Event {
                day,
                kind,
                pos: p,
                amount,
            };
            self.events.push(ev(d.issue[i], OPEN_ADD, 0));
            for &(day, amount) in d.allocs_of(i) {
                self.events.push(ev(day, ALLOC, amount));
            }
            let removed = d.settled[i].min(d.closed_on(i));
            if removed != NEVER {
                self.events.push(ev(removed, OPEN_REMOVE, 0));
            }
            if d.settled[i] != NEVER && d.settled[i] < d.void_on[i] {
                self.events.push(ev(d.settled[i], HIST_ADD, 0));
                if d.void_on[i] != NEVER {
                    self.events.push(ev(d.void_on[i], HIST_REMOVE, 0));
                }
            }
        }
        for &q in queries {
            self.events.push(Event {
                day: rows[q as usize].1,
                kind: QUERY,
                pos: q,
                amount: 0,
            });
        }
        self.events
            .sort_unstable_by_key(|e| (e.day, e.kind, e.pos, e.amount));
        self.dues.sort_unstable();
        self.dues.dedup();
        self.due_counts.reset(self.dues.len());
        self.due_heap.clear();
        self.issue_heap.clear();
        self.recent.clear();
        let mut h = History::default();
        let mut open_n = 0i64;
        let mut open_sum = 0i64;
        let events = std::mem::take(&mut self.events);
        for e in &events {
            let p = e.pos as usize;
            match e.kind {
                OPEN_ADD => {
                    // Paid or closed by the end of its issue day: never open.
                    if d.total[p] <= 0 || d.settled[p].min(d.closed_on(p)) <= e.day {
                        continue;
                    }
                    self.in_open[p] = true;
                    open_n += 1;
                    open_sum += self.open_base(d, p);
                    let k = self.dues.partition_point(|&x| x < d.due[p]);
                    self.due_counts.add(k, 1);
                    self.due_heap.push(Reverse((d.due[p], e.pos)));
                    self.issue_heap.push(Reverse((d.issue[p], e.pos)));
                }
                ALLOC => {
                    if self.in_open[p] {
                        let before = self.open_base(d, p);
                        self.paid[p] = self.paid[p].saturating_add(e.amount);
                        open_sum += self.open_base(d, p) - before;
                    } else {
                        self.paid[p] = self.paid[p].saturating_add(e.amount);
                    }
                }
                OPEN_REMOVE => {
                    if self.in_open[p] {
                        self.in_open[p] = false;
                        open_n -= 1;
                        open_sum -= self.open_base(d, p);
                        let k = self.dues.partition_point(|&x| x < d.due[p]);
                        self.due_counts.add(k, -1);
                    }
                }
                HIST_ADD | HIST_REMOVE => {
                    let add = e.kind == HIST_ADD;
                    if add == self.in_hist[p] {
                        continue;
                    }
                    self.in_hist[p] = add;
                    let s = if add { 1.0 } else { -1.0 };
                    let dtp = (d.settled[p] - d.issue[p]).max(0) as f64;
                    let late = (d.settled[p] - d.due[p]).max(0) as f64;
                    let w = d.base_total[p].max(0) as f64;
                    h.n += s;
                    h.sum_dtp += s * dtp;
                    h.sumsq_dtp += s * dtp * dtp;
                    h.sum_late += s * late;
                    h.sumsq_late += s * late * late;
                    h.late += s * f64::from(u8::from(late > 0.0));
                    h.late30 += s * f64::from(u8::from(late > 30.0));
                    h.w += s * w;
                    h.w_dtp += s * w * dtp;
                    h.w_late += s * w * late;
                    h.terms += s * f64::from(d.due[p] - d.issue[p]);
                    h.disputed += s * f64::from(u8::from(d.disputed_on[p] <= d.settled[p]));
                    h.paperless += s * f64::from(u8::from(d.paperless[p] == 1.0));
                    h.ln_amount += s * f64::from(ln_major(d.base_total[p], d.base_unit));
                    h.foreign += s * f64::from(u8::from(d.currency[p] != d.base));
                    let delta = if add { 1 } else { -1 };
                    self.dtp_counts.add(clamp_idx(dtp as f32), delta);
                    self.late_counts.add(clamp_idx(late as f32), delta);
                    if add {
                        self.recent.push((e.pos, dtp as f32, late as f32));
                        h.last_settle = Some(h.last_settle.map_or(e.day, |l| l.max(e.day)));
                    }
                }
                _ => {
                    let (inv, as_of) = rows[p];
                    let first_due = first_open_other(&mut self.due_heap, &self.in_open, inv);
                    let first_issue = first_open_other(&mut self.issue_heap, &self.in_open, inv);
                    let row = &mut out[p * col::N_FEATURES..][..col::N_FEATURES];
                    let open = OpenState {
                        count: open_n,
                        sum: open_sum,
                        first_due,
                        first_issue,
                    };
                    self.query(d, c, inv as usize, as_of, &h, &open, row);
                }
            }
        }
        self.events = events;
        // Undo the per-invoice state for the next customer.
        for &p in invoices {
            let i = p as usize;
            self.paid[i] = 0;
            self.in_open[i] = false;
            if self.in_hist[i] {
                self.in_hist[i] = false;
                let dtp = (d.settled[i] - d.issue[i]).max(0) as f32;
                let late = (d.settled[i] - d.due[i]).max(0) as f32;
                self.dtp_counts.add(clamp_idx(dtp), -1);
                self.late_counts.add(clamp_idx(late), -1);
            }
        }
    }

    fn median(counts: &Fenwick, n: i32) -> f32 {
        let a = counts.kth((n + 1) / 2);
        let b = counts.kth(n / 2 + 1);
        (a + b) as f32 / 2.0
    }

    #[allow(clippy::too_many_arguments)]
    fn query(
        &self,
        d: &PredictData,
        c: usize,
        j: usize,
        as_of: i32,
        h: &History,
        open: &OpenState,
        row: &mut [f32],
    ) {
        use col::*;
        let n = h.n.round();
        row[HIST_COUNT] = n as f32;
        if n > 0.0 {
            let mean = |s: f64| (s / n) as f32;
            let std = |sum: f64, sumsq: f64| {
                if n < 2.0 {
                    f32::NAN
                } else {
                    (((sumsq - sum * sum / n) / (n - 1.0)).max(0.0)).sqrt() as f32
                }
            };
            row[HIST_MEAN_DTP] = mean(h.sum_dtp);
            row[HIST_MEDIAN_DTP] = Self::median(&self.dtp_counts, n as i32);
            row[HIST_STD_DTP] = std(h.sum_dtp, h.sumsq_dtp);
            row[HIST_MEAN_LATE] = mean(h.sum_late);
            row[HIST_MEDIAN_LATE] = Self::median(&self.late_counts, n as i32);
            row[HIST_STD_LATE] = std(h.sum_late, h.sumsq_late);
            row[HIST_LATE_RATE] = mean(h.late);
            row[HIST_LATE30_RATE] = mean(h.late30);
            if h.w > 0.0 {
                row[HIST_WMEAN_DTP] = (h.w_dtp / h.w) as f32;
                row[HIST_WMEAN_LATE] = (h.w_late / h.w) as f32;
            }
            row[HIST_MEAN_DTP_MINUS_TERMS] = mean(h.sum_dtp - h.terms);
            row[HIST_DISPUTED_RATE] = mean(h.disputed);
            row[HIST_PAPERLESS_RATE] = mean(h.paperless);
            row[HIST_MEAN_TERMS] = mean(h.terms);
            row[HIST_MEAN_LN_AMOUNT] = mean(h.ln_amount);
            row[HIST_FOREIGN_RATE] = mean(h.foreign);
            // Last RECENT_N settled, newest first.
            let mut vals = [(0f32, 0f32); RECENT_N];
            let mut m = 0;
            for &(p, dtp, late) in self.recent.iter().rev() {
                if m == RECENT_N {
                    break;
                }
                if self.in_hist[p as usize] {
                    vals[m] = (dtp, late);
                    m += 1;
                }
            }
            if m > 0 {
                let mf = m as f32;
                row[RECENT_MEAN_DTP] = vals[..m].iter().map(|v| v.0).sum::<f32>() / mf;
                row[RECENT_MEAN_LATE] = vals[..m].iter().map(|v| v.1).sum::<f32>() / mf;
            }
            if m >= 3 {
                // x = 0 for the oldest of the m, m − 1 for the newest.
                let xbar = (mf_minus_one(m)) / 2.0;
                let vbar = row[RECENT_MEAN_DTP];
                let (mut sxy, mut sxx) = (0f32, 0f32);
                for (k, v) in vals[..m].iter().enumerate() {
                    let x = (m - 1 - k) as f32 - xbar;
                    sxy += x * (v.0 - vbar);
                    sxx += x * x;
                }
                row[RECENT_TREND_DTP] = sxy / sxx;
            }
            if let Some(l) = h.last_settle {
                row[DAYS_SINCE_LAST_SETTLEMENT] = (as_of - l) as f32;
            }
        }
        let unit = d.base_unit;
        let ln_amount = ln_major(d.base_total[j], unit);
        row[LN_AMOUNT] = ln_amount;
        if n > 0.0 {
            row[AMOUNT_REL] = ln_amount - (h.ln_amount / n) as f32;
        }
        row[TERMS_DAYS] = (d.due[j] - d.issue[j]) as f32;
        row[FOREIGN] = f32::from(u8::from(d.currency[j] != d.base));
        row[DISPUTED] = f32::from(u8::from(d.disputed_on[j] <= as_of.max(d.issue[j])));
        row[PAPERLESS] = d.paperless[j];
        if let Some(date) = date_from_day(d.issue[j]) {
            row[MONTH] = f32::from(date.month());
            row[QUARTER] = f32::from((date.month() - 1) / 3 + 1);
        }
        row[DAYS_SINCE_ISSUE] = (as_of - d.issue[j]) as f32;
        row[DAYS_OVERDUE] = (as_of - d.due[j]).max(0) as f32;
        // Exposure: the customer's other open invoices.
        let self_open = self.in_open[j];
        row[OPEN_COUNT] = (open.count - i64::from(self_open)) as f32;
        let others_sum = open.sum - if self_open { self.open_base(d, j) } else { 0 };
        row[OPEN_LN_AMOUNT] = ln_major(others_sum, unit);
        let k = self.dues.partition_point(|&x| x < as_of);
        let overdue = self.due_counts.prefix(k) - i32::from(self_open && d.due[j] < as_of);
        row[OVERDUE_COUNT] = overdue as f32;
        row[OPEN_MAX_DAYS_OVERDUE] = open
            .first_due
            .map_or(0.0, |due| (as_of - due).max(0) as f32);
        row[OPEN_OLDEST_AGE] = open
            .first_issue
            .map_or(f32::NAN, |issue| (as_of - issue) as f32);
        // Dunning.
        let rem = d.reminders_of(j);
        let sent = rem.partition_point(|&x| x <= as_of);
        row[REMINDERS_SENT] = sent as f32;
        if sent > 0 {
            row[DAYS_SINCE_LAST_REMINDER] = (as_of - rem[sent - 1]) as f32;
        }
        let kept = &d.kept_days[d.kept_start[c] as usize..d.kept_start[c + 1] as usize];
        let broken = &d.broken_days[d.broken_start[c] as usize..d.broken_start[c + 1] as usize];
        row[PROMISES_KEPT] = kept.partition_point(|&x| x <= as_of) as f32;
        row[PROMISES_BROKEN] = broken.partition_point(|&x| x <= as_of) as f32;
        row[PROMISE_PENDING] = f32::from(u8::from(
            d.promises_of(j)
                .iter()
                .any(|p| p.made <= as_of && p.resolved > as_of),
        ));
    }
}

/// The customer's open book at a query.
struct OpenState {
    count: i64,
    sum: i64,
    /// Earliest due day and earliest issue day among the other open invoices.
    first_due: Option<i32>,
    first_issue: Option<i32>,
}

/// Smallest day in `heap` among open invoices other than `j`.
fn first_open_other(
    heap: &mut BinaryHeap<Reverse<(i32, u32)>>,
    in_open: &[bool],
    j: u32,
) -> Option<i32> {
    let clean = |heap: &mut BinaryHeap<Reverse<(i32, u32)>>| {
        while let Some(&Reverse((_, p))) = heap.peek() {
            if in_open[p as usize] {
                break;
            }
            heap.pop();
        }
    };
    clean(heap);
    let Reverse(top) = *heap.peek()?;
    if top.1 != j {
        return Some(top.0);
    }
    let saved = heap.pop()?;
    clean(heap);
    let next = heap.peek().map(|Reverse(x)| x.0);
    heap.push(saved);
    next
}

fn mf_minus_one(m: usize) -> f32 {
    (m - 1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AllocationFact, Closure, InvoiceFact, Ledger};
    use crate::predict::data::{ExtraFacts, InvoiceAttributes, Promise, PromiseOutcome, Reminder};
    use crate::predict::gbdt::SplitMix64;
    use crate::predict::testkit::{conv, fx, synth};
    use proptest::prelude::*;

    fn features_of(
        facts: &crate::ledger::LedgerFacts,
        extra: &ExtraFacts,
        snaps: &[Snapshot],
    ) -> Vec<f32> {
        let table = fx();
        let ledger = Ledger::new(facts);
        let data = PredictData::new(&ledger, &conv(&table), extra).unwrap();
        build(&data, snaps).unwrap().values
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    fn d(day: i32) -> Date {
        date_from_day(day).unwrap()
    }

    #[test]
    fn history_exposure_and_dunning_by_hand() {
        // Customer 1: A settled 10 days after issue (due +30, on time),
        // B settled 40 days after (10 late), C open; all USD.
        let mut k = crate::predict::testkit::synth(0, 0, 1, 1, jiff::civil::date(2024, 1, 1));
        k.facts.customers.push(crate::ledger::CustomerFact {
            id: 1,
            external_id: "C1".into(),
            name: "C1".into(),
            segment: None,
        });
        let base = day_number(jiff::civil::date(2024, 1, 1));
        let inv = |id: i64, issue: i32, total: i64| InvoiceFact {
            id,
            customer_id: 1,
            issue_date: d(base + issue),
            due_date: d(base + issue + 30),
            currency: crate::money::Currency::USD,
            total,
            closed: None,
        };
        k.facts.invoices = vec![inv(1, 0, 10_000), inv(2, 5, 30_000), inv(3, 50, 20_000)];
        let pay = |id: i64, day: i32, amount: i64| AllocationFact {
            invoice_id: id,
            applied_on: d(base + day),
            amount,
            from_credit_note: false,
        };
        k.facts.allocations = vec![
            pay(1, 10, 10_000),
            pay(2, 55, 30_000),
            pay(3, 60, 5_000),
            pay(3, 200, 15_000),
        ];
        k.extra.invoices.push(InvoiceAttributes {
            invoice_id: 2,
            disputed_on: Some(d(base + 20)),
            paperless: Some(true),
        });
        k.extra.dunning.reminders.push(Reminder {
            invoice_id: 3,
            sent_on: d(base + 85),
        });
        k.extra.dunning.promises.push(Promise {
            invoice_id: 2,
            made_on: d(base + 38),
            promised_for: d(base + 40),
            outcome: Some((d(base + 52), PromiseOutcome::Broken)),
        });
        let snaps = [
            Snapshot {
                invoice: 2,
                as_of: d(base + 90),
            },
            Snapshot {
                invoice: 2,
                as_of: d(base + 49),
            },
        ];
        let v = features_of(&k.facts, &k.extra, &snaps);
        let row = &v[..col::N_FEATURES];
        assert_eq!(row[col::HIST_COUNT], 2.0);
        assert_eq!(row[col::HIST_MEAN_DTP], 30.0);
        assert_eq!(row[col::HIST_MEDIAN_DTP], 30.0);
        assert!((row[col::HIST_STD_DTP] - 800f32.sqrt()).abs() < 1e-4);
        assert_eq!(row[col::HIST_MEAN_LATE], 10.0);
        assert_eq!(row[col::HIST_MEDIAN_LATE], 10.0);
        assert_eq!(row[col::HIST_LATE_RATE], 0.5);
        assert_eq!(row[col::HIST_WMEAN_DTP], (10.0 * 1.0 + 50.0 * 3.0) / 4.0);
        assert_eq!(row[col::RECENT_MEAN_DTP], 30.0);
        assert!(
            row[col::RECENT_TREND_DTP].is_nan(),
            "needs 3 settled invoices"
        );
        assert_eq!(
            row[col::HIST_DISPUTED_RATE],
            0.5,
            "B was disputed before it was settled"
        );
        assert_eq!(row[col::HIST_PAPERLESS_RATE], 0.5);
        assert_eq!(row[col::HIST_MEAN_DTP_MINUS_TERMS], 0.0);
        assert_eq!(row[col::DAYS_SINCE_LAST_SETTLEMENT], 35.0);
        assert_eq!(row[col::DAYS_SINCE_ISSUE], 40.0);
        assert_eq!(row[col::DAYS_OVERDUE], 10.0);
        assert_eq!(row[col::OPEN_COUNT], 0.0, "C itself is not counted");
        assert_eq!(row[col::REMINDERS_SENT], 1.0);
        assert_eq!(row[col::DAYS_SINCE_LAST_REMINDER], 5.0);
        assert_eq!(row[col::PROMISES_BROKEN], 1.0);
        assert!((row[col::LN_AMOUNT] - 201f32.ln()).abs() < 1e-5);
        // Day 49: only A settled; B open (the other invoice), 14 days overdue,
        // with its dispute known; the promise is not resolved yet.
        let row = &v[col::N_FEATURES..];
        assert_eq!(row[col::HIST_COUNT], 1.0);
        assert!(row[col::HIST_STD_DTP].is_nan());
        assert_eq!(row[col::OPEN_COUNT], 1.0);
        assert_eq!(row[col::OVERDUE_COUNT], 1.0);
        assert_eq!(row[col::OPEN_MAX_DAYS_OVERDUE], 14.0);
        assert_eq!(row[col::OPEN_OLDEST_AGE], 44.0);
        assert!((row[col::OPEN_LN_AMOUNT] - 301f32.ln()).abs() < 1e-5);
        assert_eq!(row[col::PROMISES_BROKEN], 0.0);
        assert_eq!(row[col::REMINDERS_SENT], 0.0);
        assert_eq!(
            row[col::DAYS_SINCE_ISSUE],
            -1.0,
            "the at-issue snapshot of C"
        );
        // C at day 90 after its partial payment: exposure counts the open rest.
        let v = features_of(
            &k.facts,
            &k.extra,
            &[Snapshot {
                invoice: 0,
                as_of: d(base + 90),
            }],
        );
        assert!((v[col::OPEN_LN_AMOUNT] - 151f32.ln()).abs() < 1e-5);
        // A snapshot before the invoice exists is refused.
        let table = fx();
        let ledger = Ledger::new(&k.facts);
        let data = PredictData::new(&ledger, &conv(&table), &k.extra).unwrap();
        assert!(matches!(
            build(
                &data,
                &[Snapshot {
                    invoice: 2,
                    as_of: d(base + 10)
                }]
            ),
            Err(PredictError::NotYetIssued { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Features as of D do not change when facts dated after D change:
        /// later allocations moved and resized, later closures, later
        /// disputes, later reminders and promise outcomes, new invoices.
        #[test]
        fn no_feature_uses_facts_dated_after_the_as_of_date(seed in 0u64..1_000_000, cut in 60i32..600) {
            let start = jiff::civil::date(2023, 1, 1);
            let s0 = day_number(start);
            let mut k = synth(8, 700, 12, seed, start);
            let dd = s0 + cut;
            // Snapshots at D of every invoice issued by D + 1.
            let snaps: Vec<Snapshot> = k.facts.invoices.iter().enumerate()
                .filter(|(_, f)| day_number(f.issue_date) <= dd + 1)
                .map(|(i, _)| Snapshot { invoice: i, as_of: d(dd) })
                .collect();
            let before = features_of(&k.facts, &k.extra, &snaps);
            let mut rng = SplitMix64::new(seed ^ 0xfeed);
            let later = |rng: &mut SplitMix64| d(dd + 1 + (rng.next_f64() * 300.0) as i32);
            for a in &mut k.facts.allocations {
                if day_number(a.applied_on) > dd {
                    a.applied_on = later(&mut rng);
                    a.amount = 1 + (rng.next_f64() * a.amount as f64 * 2.0) as i64;
                }
            }
            let n = k.facts.invoices.len();
            for f in &mut k.facts.invoices {
                let closed_by_d = f.closed.is_some_and(|(on, _)| day_number(on) <= dd);
                if !closed_by_d && rng.next_f64() < 0.2 {
                    let on = later(&mut rng);
                    if on > f.issue_date {
                        f.closed = Some((on, if rng.next_f64() < 0.5 { Closure::Void } else { Closure::WrittenOff }));
                    }
                }
            }
            for (i, a) in k.extra.invoices.iter_mut().enumerate() {
                let issue = day_number(k.facts.invoices[i].issue_date);
                let known = dd.max(issue);
                if a.disputed_on.is_none_or(|x| day_number(x) > known) && rng.next_f64() < 0.5 {
                    a.disputed_on = Some(d(known + 1 + (rng.next_f64() * 30.0) as i32));
                }
            }
            for p in &mut k.extra.dunning.promises {
                if p.outcome.is_some_and(|(on, _)| day_number(on) > dd) {
                    p.outcome = Some((later(&mut rng), PromiseOutcome::Kept));
                }
            }
            for i in 0..n {
                let id = k.facts.invoices[i].id;
                k.extra.dunning.reminders.push(Reminder { invoice_id: id, sent_on: later(&mut rng) });
                if rng.next_f64() < 0.3 {
                    k.extra.dunning.promises.push(Promise {
                        invoice_id: id,
                        made_on: later(&mut rng),
                        promised_for: later(&mut rng),
                        outcome: Some((later(&mut rng), PromiseOutcome::Broken)),
                    });
                }
            }
            for c in 1..=3 {
                let id = 10_000 + c;
                let issue = d(dd + 2 + c as i32);
                k.facts.invoices.push(InvoiceFact {
                    id,
                    customer_id: c,
                    issue_date: issue,
                    due_date: d(dd + 40),
                    currency: crate::money::Currency::USD,
                    total: 50_000,
                    closed: None,
                });
                k.facts.allocations.push(AllocationFact { invoice_id: id, applied_on: d(dd + 50), amount: 50_000, from_credit_note: false });
            }
            let after = features_of(&k.facts, &k.extra, &snaps);
            let diff: Vec<(usize, &str, f32, f32)> = (0..before.len())
                .filter(|&x| before[x].to_bits() != after[x].to_bits())
                .map(|x| (x / col::N_FEATURES, FEATURES[x % col::N_FEATURES].name, before[x], after[x]))
                .take(5)
                .collect();
            prop_assert!(same(&before, &after), "changed: {:?}", diff);
        }
    }

    #[test]
    fn the_leakage_check_can_fail() {
        // Moving an allocation dated on or before D changes features: the
        // comparison above is sensitive to the facts it must ignore.
        let start = jiff::civil::date(2023, 1, 1);
        let mut k = synth(8, 700, 12, 3, start);
        let dd = day_number(start) + 400;
        let snaps: Vec<Snapshot> = (0..k.facts.invoices.len())
            .filter(|&i| day_number(k.facts.invoices[i].issue_date) <= dd)
            .map(|i| Snapshot {
                invoice: i,
                as_of: d(dd),
            })
            .collect();
        let before = features_of(&k.facts, &k.extra, &snaps);
        let a = k
            .facts
            .allocations
            .iter_mut()
            .find(|a| day_number(a.applied_on) < dd - 30)
            .unwrap();
        a.applied_on = d(dd + 10);
        let after = features_of(&k.facts, &k.extra, &snaps);
        assert!(!same(&before, &after));
    }
}
