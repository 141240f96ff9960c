//! Collection rate by segment, and invoices that moved to overdue in a period.
//!
//! **Collection rate** over a period `[start, end]` (default: the calendar
//! month containing `as_of`, up to `as_of`), per customer segment:
//!
//! ```text
//! collection rate = collected / (beginning AR + invoiced)
//! ```
//!
//! * `collected` = amounts of allocations (cash payments *and* credit notes,
//!   also reported separately) dated within the period, applied to in-scope
//!   invoices issued on or before `end`;
//! * `beginning AR` = open balance at the end of the day before `start`;
//! * `invoiced` = totals of invoices issued within the period.
//!
//! Write-offs are not collections. The rate is a fraction (0.25 = 25 %).
//!
//! **Moved to overdue** in a period: in-scope invoices whose due date lies
//! within the period, that were issued on or before their due date (so were
//! current at some point) and still had an open balance `> 0` at the end of
//! the due date, i.e. that crossed into past due while open. The amount is
//! that open balance at the end of the due date.
//!
//! Segments are the customers' `segment` values; `None` collects customers
//! without a segment (and invoices whose customer is unknown).

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::scope::{IdMap, Scope};
use super::{AnalyticsError, Period, ratio};
use crate::ledger::{BaseConverter, InvoiceFact, Ledger};
use crate::money::Currency;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentCollection {
    pub segment: Option<String>,
    pub beginning_ar: i64,
    pub invoiced: i64,
    pub cash_applied: i64,
    pub credits_applied: i64,
    /// `cash_applied + credits_applied`.
    pub collected: i64,
    /// `beginning_ar + invoiced`.
    pub collectible: i64,
    /// `collected / collectible`; `None` when nothing was collectible.
    pub collection_rate: Option<f64>,
    pub ending_ar: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionRateReport {
    pub as_of: Date,
    pub currency: Currency,
    pub period: Period,
    /// Ordered by segment name, `None` first.
    pub segments: Vec<SegmentCollection>,
    /// All segments together (`segment` is `None`).
    pub total: SegmentCollection,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedToOverdue {
    pub segment: Option<String>,
    pub invoice_count: u64,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedToOverdueReport {
    pub as_of: Date,
    pub currency: Currency,
    pub period: Period,
    pub segments: Vec<MovedToOverdue>,
    pub invoice_count: u64,
    pub amount: i64,
}

/// Segment group of every customer position, plus the group names (`None` first).
struct Groups {
    names: Vec<Option<String>>,
    of_pos: Vec<usize>,
    none: usize,
}

impl Groups {
    fn new(scope: &Scope<'_>) -> Groups {
        let mut keys: BTreeMap<Option<&str>, usize> = BTreeMap::new();
        for c in scope.customers() {
            keys.insert(c.segment.as_deref(), 0);
        }
        keys.insert(None, 0);
        for (i, v) in keys.values_mut().enumerate() {
            *v = i;
        }
        let of_pos = scope
            .customers()
            .iter()
            .map(|c| keys[&c.segment.as_deref()])
            .collect();
        Groups {
            names: keys.keys().map(|k| k.map(str::to_string)).collect(),
            of_pos,
            none: keys[&None],
        }
    }

    fn of(&self, pos: Option<usize>) -> usize {
        pos.map_or(self.none, |p| self.of_pos[p])
    }
}

/// Invoice id → index: binary search when the invoices are sorted by id (as storage
/// loads them), otherwise a hash map.
enum InvoiceIndex<'a> {
    Sorted(&'a [InvoiceFact]),
    Map(IdMap<usize>),
}

impl<'a> InvoiceIndex<'a> {
    fn new(ledger: &Ledger<'a>) -> InvoiceIndex<'a> {
        let inv = &ledger.facts.invoices;
        if inv.windows(2).all(|w| w[0].id < w[1].id) {
            InvoiceIndex::Sorted(inv)
        } else {
            InvoiceIndex::Map(inv.iter().enumerate().map(|(i, f)| (f.id, i)).collect())
        }
    }

    fn get(&self, id: i64) -> Option<usize> {
        match self {
            InvoiceIndex::Sorted(v) => v.binary_search_by_key(&id, |f| f.id).ok(),
            InvoiceIndex::Map(m) => m.get(&id).copied(),
        }
    }
}

fn resolve_period(as_of: Date, period: Option<Period>) -> Result<Period, AnalyticsError> {
    let p = period.unwrap_or_else(|| Period::month_to_date(as_of));
    let p = Period::new(p.start, p.end)?;
    p.check_known(as_of)?;
    Ok(p)
}

/// Collection rate per segment over `period` (see the module docs).
pub fn collection_rate_by_segment(
    ledger: &Ledger<'_>,
    conv: &BaseConverter<'_>,
    as_of: Date,
    period: Option<Period>,
    segment: Option<&str>,
) -> Result<CollectionRateReport, AnalyticsError> {
    let period = resolve_period(as_of, period)?;
    let opening = period.opening_date()?;
    let scope = Scope::new(ledger, conv, as_of, segment);
    let groups = Groups::new(&scope);
    let mut acc = vec![SegmentCollection::default(); groups.names.len()];
    // invoice index -> group, for in-scope invoices issued by the period end
    let mut group_of: Vec<usize> = vec![usize::MAX; ledger.facts.invoices.len()];
    for (i, f, pos) in scope.invoices_with_customer() {
        if f.issue_date > period.end {
            continue;
        }
        let g = groups.of(pos);
        group_of[i] = g;
        let total = scope.to_base(f.total, f.currency)?;
        let a = &mut acc[g];
        if period.contains(f.issue_date) {
            a.invoiced += total;
        } else {
            a.beginning_ar += scope.open_base_on(i, f, total, opening)?;
        }
        a.ending_ar += scope.open_base_on(i, f, total, period.end)?;
    }
    let index = InvoiceIndex::new(ledger);
    for al in &ledger.facts.allocations {
        if !period.contains(al.applied_on) {
            continue;
        }
        let Some(i) = index.get(al.invoice_id) else {
            continue;
        };
        let g = group_of[i];
        if g == usize::MAX {
            continue;
        }
        let amount = scope.to_base(al.amount, ledger.facts.invoices[i].currency)?;
        if al.from_credit_note {
            acc[g].credits_applied += amount;
        } else {
            acc[g].cash_applied += amount;
        }
    }
    let mut total = SegmentCollection::default();
    let mut segments = Vec::new();
    for (name, mut a) in groups.names.iter().zip(acc) {
        total.beginning_ar += a.beginning_ar;
        total.invoiced += a.invoiced;
        total.cash_applied += a.cash_applied;
        total.credits_applied += a.credits_applied;
        total.ending_ar += a.ending_ar;
        if a == SegmentCollection::default() {
            continue; // nothing in scope for this segment
        }
        a.segment = name.clone();
        finish(&mut a);
        segments.push(a);
    }
    finish(&mut total);
    Ok(CollectionRateReport {
        as_of,
        currency: scope.base(),
        period,
        segments,
        total,
    })
}

fn finish(a: &mut SegmentCollection) {
    a.collected = a.cash_applied + a.credits_applied;
    a.collectible = a.beginning_ar + a.invoiced;
    a.collection_rate = ratio(i128::from(a.collected), i128::from(a.collectible));
}

/// Invoices that crossed their due date while open during `period` (see the module docs).
pub fn moved_to_overdue(
    ledger: &Ledger<'_>,
    conv: &BaseConverter<'_>,
    as_of: Date,
    period: Option<Period>,
    segment: Option<&str>,
) -> Result<MovedToOverdueReport, AnalyticsError> {
    let period = resolve_period(as_of, period)?;
    let scope = Scope::new(ledger, conv, as_of, segment);
    let groups = Groups::new(&scope);
    let mut acc = vec![MovedToOverdue::default(); groups.names.len()];
    for (i, f, pos) in scope.invoices_with_customer() {
        if !period.contains(f.due_date) || f.issue_date > f.due_date {
            continue;
        }
        let open = scope.open_on(i, f.due_date);
        if open <= 0 {
            continue;
        }
        let a = &mut acc[groups.of(pos)];
        a.invoice_count += 1;
        a.amount += scope.to_base(open, f.currency)?;
    }
    let invoice_count = acc.iter().map(|a| a.invoice_count).sum();
    let amount = acc.iter().map(|a| a.amount).sum();
    let segments = groups
        .names
        .iter()
        .zip(acc)
        .filter(|(_, a)| a.invoice_count > 0)
        .map(|(name, a)| MovedToOverdue {
            segment: name.clone(),
            ..a
        })
        .collect();
    Ok(MovedToOverdueReport {
        as_of,
        currency: scope.base(),
        period,
        segments,
        invoice_count,
        amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::testkit::{Kit, assert_close, conv, d};
    use crate::fx::FxTable;
    use crate::ledger::{Closure, LedgerFacts};

    /// No published example found for these two definitions; hand-computed, March 2024:
    /// * smb: beginning 1,000 (P), invoiced 500 (Q), cash 600 + 500, credit 100 → 1,200 / 1,500 = 0.8;
    /// * enterprise: invoiced 2,000 (R), nothing collected by Mar 31 → 0 (R's April payment is after as_of);
    /// * no segment: invoiced 300 (S), paid 300 → 1.0;
    /// * total: 1,500 / 3,800; the voided T is ignored.
    fn march() -> LedgerFacts {
        let mut k = Kit::new();
        let p = k.invoice(1, d(2024, 2, 1), d(2024, 3, 2), 1_000);
        k.pay(p, d(2024, 3, 10), 600);
        k.credit(p, d(2024, 3, 12), 100);
        let q = k.invoice(1, d(2024, 3, 5), d(2024, 4, 4), 500);
        k.pay(q, d(2024, 3, 20), 500);
        let r = k.invoice(2, d(2024, 3, 1), d(2024, 3, 15), 2_000);
        k.pay(r, d(2024, 4, 5), 2_000);
        let s = k.invoice(3, d(2024, 3, 1), d(2024, 3, 10), 300);
        k.pay(s, d(2024, 3, 10), 300);
        let t = k.invoice(2, d(2024, 3, 2), d(2024, 3, 20), 4_000);
        k.close(t, d(2024, 3, 25), Closure::Void);
        k.facts
    }

    #[test]
    fn collection_rate_by_segment_hand_example() {
        let facts = march();
        let table = FxTable::default();
        let l = Ledger::new(&facts);
        let r = collection_rate_by_segment(&l, &conv(&table), d(2024, 3, 31), None, None).unwrap();
        let names: Vec<Option<&str>> = r.segments.iter().map(|s| s.segment.as_deref()).collect();
        assert_eq!(names, [None, Some("enterprise"), Some("smb")]);
        let smb = &r.segments[2];
        assert_eq!(
            (
                smb.beginning_ar,
                smb.invoiced,
                smb.cash_applied,
                smb.credits_applied
            ),
            (1_000, 500, 1_100, 100)
        );
        assert_close(smb.collection_rate.unwrap(), 0.8, 1e-12);
        assert_eq!(smb.ending_ar, 300);
        assert_eq!(r.segments[1].collection_rate, Some(0.0));
        assert_eq!(r.segments[0].collection_rate, Some(1.0));
        assert_eq!((r.total.collected, r.total.collectible), (1_500, 3_800));
        let only = collection_rate_by_segment(&l, &conv(&table), d(2024, 3, 31), None, Some("smb"))
            .unwrap();
        assert_eq!(only.segments.len(), 1);
        assert_eq!(only.total.collected, 1_200);
    }

    /// Hand-computed: P (due Mar 2, 1,000 open) and R (due Mar 15, 2,000 open) crossed their due
    /// dates while open; S was paid on its due date; Q is due in April; T is void.
    #[test]
    fn moved_to_overdue_hand_example() {
        let facts = march();
        let table = FxTable::default();
        let l = Ledger::new(&facts);
        let r = moved_to_overdue(&l, &conv(&table), d(2024, 3, 31), None, None).unwrap();
        assert_eq!((r.invoice_count, r.amount), (2, 3_000));
        let per: Vec<(Option<&str>, u64, i64)> = r
            .segments
            .iter()
            .map(|s| (s.segment.as_deref(), s.invoice_count, s.amount))
            .collect();
        assert_eq!(
            per,
            [(Some("enterprise"), 1, 2_000), (Some("smb"), 1, 1_000)]
        );
        // as of Mar 10 only P has crossed (R is due on the 15th)
        let r = moved_to_overdue(&l, &conv(&table), d(2024, 3, 10), None, None).unwrap();
        assert_eq!((r.invoice_count, r.amount), (1, 1_000));
    }
}
