//! The ledger flattened for prediction: one entry per invoice in plain vectors.
//!
//! Dates become day numbers (`i32`), amounts are also converted once to the
//! base currency, allocations and dunning facts are grouped per invoice in
//! compressed (CSR) layout. Building this is one pass over the facts; every
//! later step (features for millions of snapshots, scoring, forecasting) reads
//! these vectors without allocating per invoice.

use std::collections::HashMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::{PredictError, day_number};
use crate::ledger::{BaseConverter, Closure, Ledger};
use crate::money::Currency;

/// Marks "never" in day-number vectors (never settled, never voided...).
pub(crate) const NEVER: i32 = i32::MAX;

/// Invoice facts that [`crate::ledger::InvoiceFact`] does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceAttributes {
    pub invoice_id: i64,
    /// The day a dispute was recorded. Sources without a date (such as a
    /// "Disputed" column) pass the issue date: the flag is then known from
    /// the invoice's first prediction on.
    pub disputed_on: Option<Date>,
    /// Delivered electronically (`Some(true)`) or on paper, when known.
    pub paperless: Option<bool>,
}

/// A reminder sent for an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub invoice_id: i64,
    pub sent_on: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromiseOutcome {
    Kept,
    Broken,
}

/// A promise to pay an invoice, and how it turned out once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    pub invoice_id: i64,
    pub made_on: Date,
    pub promised_for: Date,
    /// When and how the promise was resolved; `None` while pending.
    pub outcome: Option<(Date, PromiseOutcome)>,
}

/// Dunning history, once the dunning engine records it. Empty by default:
/// the dunning features are then zero and the model learns nothing from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningHistory {
    pub reminders: Vec<Reminder>,
    pub promises: Vec<Promise>,
}

/// Optional inputs beyond [`crate::ledger::LedgerFacts`]. Facts for unknown
/// invoice ids are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraFacts {
    pub invoices: Vec<InvoiceAttributes>,
    pub dunning: DunningHistory,
}

/// One invoice's promise, in day numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PromiseDays {
    pub made: i32,
    /// Resolution day, [`NEVER`] while pending.
    pub resolved: i32,
    pub kept: bool,
}

/// The ledger as flat per-invoice vectors. Position `i` is
/// `facts.invoices[i]` of the ledger it was built from.
#[derive(Debug, Clone)]
pub struct PredictData {
    pub(crate) base: Currency,
    pub(crate) n: usize,
    pub(crate) invoice_id: Vec<i64>,
    pub(crate) cust: Vec<u32>,
    pub(crate) customer_id: Vec<i64>,
    /// Per customer: segment index into `segments`, `u32::MAX` for none.
    pub(crate) customer_segment: Vec<u32>,
    pub(crate) segments: Vec<String>,
    pub(crate) issue: Vec<i32>,
    pub(crate) due: Vec<i32>,
    /// Day the balance was fully allocated, [`NEVER`] if not (yet).
    pub(crate) settled: Vec<i32>,
    pub(crate) void_on: Vec<i32>,
    pub(crate) written_off_on: Vec<i32>,
    pub(crate) currency: Vec<Currency>,
    pub(crate) total: Vec<i64>,
    /// Total in base-currency minor units (rate of the issue date).
    pub(crate) base_total: Vec<i64>,
    pub(crate) disputed_on: Vec<i32>,
    /// 1.0 paperless, 0.0 paper, NaN unknown.
    pub(crate) paperless: Vec<f32>,
    pub(crate) alloc_start: Vec<u32>,
    pub(crate) allocs: Vec<(i32, i64)>,
    pub(crate) rem_start: Vec<u32>,
    pub(crate) rem_days: Vec<i32>,
    pub(crate) prom_start: Vec<u32>,
    pub(crate) promises: Vec<PromiseDays>,
    /// Per customer, its invoice positions sorted by issue day.
    pub(crate) cust_start: Vec<u32>,
    pub(crate) cust_invoices: Vec<u32>,
    /// Per customer, resolution days of kept and broken promises, sorted.
    pub(crate) kept_start: Vec<u32>,
    pub(crate) kept_days: Vec<i32>,
    pub(crate) broken_start: Vec<u32>,
    pub(crate) broken_days: Vec<i32>,
    /// Minor units per major unit of the base currency.
    pub(crate) base_unit: f64,
}

/// Groups `(key, value)` pairs by key into CSR vectors, values sorted per key.
fn csr<T: Copy + Ord>(
    n: usize,
    items: impl Iterator<Item = (usize, T)> + Clone,
) -> (Vec<u32>, Vec<T>) {
    let mut start = vec![0u32; n + 1];
    for (k, _) in items.clone() {
        start[k + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut out: Vec<Option<T>> = vec![None; start[n] as usize];
    for (k, v) in items {
        out[fill[k] as usize] = Some(v);
        fill[k] += 1;
    }
    let mut values: Vec<T> = out.into_iter().flatten().collect();
    for k in 0..n {
        values[start[k] as usize..start[k + 1] as usize].sort_unstable();
    }
    (start, values)
}

impl PredictData {
    /// Flattens the ledger. Amounts are converted to the base currency at
    /// each invoice's issue date; a missing rate is an error naming the invoice.
    pub fn new(
        ledger: &Ledger<'_>,
        conv: &BaseConverter<'_>,
        extra: &ExtraFacts,
    ) -> Result<PredictData, PredictError> {
        let facts = ledger.facts;
        let n = facts.invoices.len();
        let mut cust_index: HashMap<i64, u32> = HashMap::with_capacity(facts.customers.len());
        let mut customer_id = Vec::with_capacity(facts.customers.len());
        let mut customer_segment = Vec::with_capacity(facts.customers.len());
        let mut segments: Vec<String> = Vec::new();
        let mut seg_index: HashMap<String, u32> = HashMap::new();
        for c in &facts.customers {
            if cust_index.contains_key(&c.id) {
                continue;
            }
            cust_index.insert(c.id, customer_id.len() as u32);
            customer_id.push(c.id);
            let seg = match &c.segment {
                Some(s) => *seg_index.entry(s.clone()).or_insert_with(|| {
                    segments.push(s.clone());
                    (segments.len() - 1) as u32
                }),
                None => u32::MAX,
            };
            customer_segment.push(seg);
        }
        let mut d = PredictData {
            base: conv.base,
            n,
            invoice_id: Vec::with_capacity(n),
            cust: Vec::with_capacity(n),
            customer_id,
            customer_segment,
            segments,
            issue: Vec::with_capacity(n),
            due: Vec::with_capacity(n),
            settled: Vec::with_capacity(n),
            void_on: Vec::with_capacity(n),
            written_off_on: Vec::with_capacity(n),
            currency: Vec::with_capacity(n),
            total: Vec::with_capacity(n),
            base_total: Vec::with_capacity(n),
            disputed_on: vec![NEVER; n],
            paperless: vec![f32::NAN; n],
            alloc_start: Vec::with_capacity(n + 1),
            allocs: Vec::new(),
            rem_start: Vec::new(),
            rem_days: Vec::new(),
            prom_start: Vec::new(),
            promises: Vec::new(),
            cust_start: Vec::new(),
            cust_invoices: Vec::new(),
            kept_start: Vec::new(),
            kept_days: Vec::new(),
            broken_start: Vec::new(),
            broken_days: Vec::new(),
            base_unit: conv.base.minor_per_major() as f64,
        };
        let mut pos_of: HashMap<i64, usize> = HashMap::with_capacity(n);
        d.alloc_start.push(0);
        for (i, f) in facts.invoices.iter().enumerate() {
            pos_of.insert(f.id, i);
            let c = match cust_index.get(&f.customer_id) {
                Some(&c) => c,
                None => {
                    // An invoice whose customer is not in the facts still
                    // gets a customer of its own id, so histories stay separate.
                    let c = d.customer_id.len() as u32;
                    cust_index.insert(f.customer_id, c);
                    d.customer_id.push(f.customer_id);
                    d.customer_segment.push(u32::MAX);
                    c
                }
            };
            d.invoice_id.push(f.id);
            d.cust.push(c);
            d.issue.push(day_number(f.issue_date));
            d.due.push(day_number(f.due_date));
            let (void_on, written_off_on) = match f.closed {
                Some((on, Closure::Void)) => (day_number(on), NEVER),
                Some((on, Closure::WrittenOff)) => (NEVER, day_number(on)),
                None => (NEVER, NEVER),
            };
            d.void_on.push(void_on);
            d.written_off_on.push(written_off_on);
            d.currency.push(f.currency);
            d.total.push(f.total);
            let base_total = conv
                .to_base(f.total, f.currency, f.issue_date)
                .map_err(|source| PredictError::Fx {
                    invoice_id: f.id,
                    source,
                })?;
            d.base_total.push(base_total);
            let mut paid = 0i64;
            let mut settled = NEVER;
            for &(on, amount) in ledger.allocations_of(i) {
                let day = day_number(on);
                d.allocs.push((day, amount));
                paid = paid.saturating_add(amount);
                if settled == NEVER && paid >= f.total {
                    settled = day;
                }
            }
            d.alloc_start.push(d.allocs.len() as u32);
            d.settled.push(settled);
        }
        for a in &extra.invoices {
            if let Some(&i) = pos_of.get(&a.invoice_id) {
                d.disputed_on[i] = a.disputed_on.map_or(NEVER, day_number);
                d.paperless[i] = match a.paperless {
                    Some(true) => 1.0,
                    Some(false) => 0.0,
                    None => f32::NAN,
                };
            }
        }
        let reminders = extra.dunning.reminders.iter().filter_map(|r| {
            pos_of
                .get(&r.invoice_id)
                .map(|&i| (i, day_number(r.sent_on)))
        });
        (d.rem_start, d.rem_days) = csr(n, reminders);
        let promise_key = |p: &Promise| {
            let (resolved, kept) = match p.outcome {
                Some((on, o)) => (day_number(on), o == PromiseOutcome::Kept),
                None => (NEVER, false),
            };
            (day_number(p.made_on), resolved, kept)
        };
        let proms = extra
            .dunning
            .promises
            .iter()
            .filter_map(|p| pos_of.get(&p.invoice_id).map(|&i| (i, promise_key(p))));
        let (ps, pv) = csr(n, proms);
        d.prom_start = ps;
        d.promises = pv
            .into_iter()
            .map(|(made, resolved, kept)| PromiseDays {
                made,
                resolved,
                kept,
            })
            .collect();
        let nc = d.customer_id.len();
        let by_customer = (0..n).map(|i| (d.cust[i] as usize, (d.issue[i], i as u32)));
        let (cs, ci) = csr(nc, by_customer);
        d.cust_start = cs;
        d.cust_invoices = ci.into_iter().map(|(_, i)| i).collect();
        let resolved = |want_kept: bool| {
            let d = &d;
            (0..n).flat_map(move |i| {
                d.promises_of(i)
                    .iter()
                    .filter(move |p| p.resolved != NEVER && p.kept == want_kept)
                    .map(move |p| (d.cust[i] as usize, p.resolved))
            })
        };
        let (ks, kd) = csr(nc, resolved(true));
        let (bs, bd) = csr(nc, resolved(false));
        (d.kept_start, d.kept_days, d.broken_start, d.broken_days) = (ks, kd, bs, bd);
        Ok(d)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn base_currency(&self) -> Currency {
        self.base
    }

    pub fn invoice_id(&self, i: usize) -> i64 {
        self.invoice_id[i]
    }

    pub fn customer_id(&self, i: usize) -> i64 {
        self.customer_id[self.cust[i] as usize]
    }

    pub(crate) fn allocs_of(&self, i: usize) -> &[(i32, i64)] {
        &self.allocs[self.alloc_start[i] as usize..self.alloc_start[i + 1] as usize]
    }

    pub(crate) fn reminders_of(&self, i: usize) -> &[i32] {
        &self.rem_days[self.rem_start[i] as usize..self.rem_start[i + 1] as usize]
    }

    pub(crate) fn promises_of(&self, i: usize) -> &[PromiseDays] {
        &self.promises[self.prom_start[i] as usize..self.prom_start[i + 1] as usize]
    }

    pub(crate) fn invoices_of_customer(&self, c: usize) -> &[u32] {
        &self.cust_invoices[self.cust_start[c] as usize..self.cust_start[c + 1] as usize]
    }

    /// Day the invoice left the open book other than by payment, or [`NEVER`].
    pub(crate) fn closed_on(&self, i: usize) -> i32 {
        self.void_on[i].min(self.written_off_on[i])
    }

    /// Whether invoice `i` has an open balance at the end of day `d`.
    pub(crate) fn is_open(&self, i: usize, d: i32) -> bool {
        self.issue[i] <= d && self.settled[i] > d && self.closed_on(i) > d && self.total[i] > 0
    }

    /// Open balance of invoice `i` at the end of day `d`, in its currency.
    pub(crate) fn open_minor(&self, i: usize, d: i32) -> i64 {
        if !self.is_open(i, d) {
            return 0;
        }
        let paid: i64 = self
            .allocs_of(i)
            .iter()
            .take_while(|a| a.0 <= d)
            .map(|a| a.1)
            .fold(0i64, i64::saturating_add);
        (self.total[i] - paid).max(0)
    }

    /// Base-currency value of `minor` units of invoice `i`'s currency, at the
    /// invoice's issue-date rate (the ratio of its converted total).
    pub(crate) fn to_base_at_issue(&self, i: usize, minor: i64) -> i64 {
        if self.total[i] == 0 {
            return 0;
        }
        let v = i128::from(self.base_total[i]) * i128::from(minor) / i128::from(self.total[i]);
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    /// Positions of the invoices open at the end of `as_of`.
    pub fn open_on(&self, as_of: Date) -> Vec<usize> {
        let d = day_number(as_of);
        (0..self.n).filter(|&i| self.is_open(i, d)).collect()
    }

    /// Days from issue to full settlement, if settled.
    pub fn days_to_pay(&self, i: usize) -> Option<i32> {
        (self.settled[i] != NEVER).then(|| self.settled[i] - self.issue[i])
    }

    /// Days from due date to full settlement, at least 0, if settled.
    pub fn days_late(&self, i: usize) -> Option<i32> {
        (self.settled[i] != NEVER).then(|| (self.settled[i] - self.due[i]).max(0))
    }

    pub fn issue_date(&self, i: usize) -> Date {
        super::date_from_day(self.issue[i]).unwrap_or(Date::MIN)
    }
}
