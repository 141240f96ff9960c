//! The ledger as compact dated facts, and balances reconstructed as of any date.
//!
//! Reports never read "current state": they replay the dated facts (issue
//! dates, allocation dates, void/write-off dates) up to the as-of date, so any
//! report can be computed for a past date.

use std::collections::HashMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::fx::{FxError, FxTable};
use crate::money::{Currency, Money};

/// How an invoice left the receivables other than by being paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Closure {
    /// Cancelled: as of the void date it is as if it had never been issued.
    Void,
    /// Uncollectible: the remaining balance leaves AR on that date.
    WrittenOff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFact {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub segment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceFact {
    pub id: i64,
    pub customer_id: i64,
    pub issue_date: Date,
    pub due_date: Date,
    pub currency: Currency,
    pub total: i64,
    pub closed: Option<(Date, Closure)>,
}

/// One allocation of a payment or credit note to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationFact {
    pub invoice_id: i64,
    pub applied_on: Date,
    pub amount: i64,
    /// True when the allocation draws on a credit note rather than cash.
    pub from_credit_note: bool,
}

/// Everything analytics need, loaded in one go from storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerFacts {
    pub base_currency: Currency,
    pub customers: Vec<CustomerFact>,
    pub invoices: Vec<InvoiceFact>,
    /// Allocations; any order.
    pub allocations: Vec<AllocationFact>,
}

/// An invoice's state as of a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceAsOf {
    /// Open balance in the invoice currency, minor units (0 when settled, written off or void).
    pub open: i64,
    /// Date the balance first reached zero through allocations, if on or before the as-of date.
    pub settled_on: Option<Date>,
    pub written_off: bool,
}

/// Allocations grouped per invoice and sorted by date, for repeated as-of queries.
#[derive(Debug, Clone)]
pub struct Ledger<'a> {
    pub facts: &'a LedgerFacts,
    /// Allocations of every invoice in one flat vector (CSR layout):
    /// `alloc_dates[alloc_start[i]..alloc_start[i + 1]]` are the allocations of
    /// `facts.invoices[i]`, sorted by date. One allocation for the whole ledger
    /// instead of a `Vec` per invoice: with a million invoices the per-invoice
    /// vectors cost a million small heap allocations and scattered memory,
    /// which dominated building the ledger.
    alloc_dates: Vec<(Date, i64)>,
    alloc_start: Vec<usize>,
    customer_index: HashMap<i64, usize>,
}

/// Invoice id → position in `facts.invoices`, used while building a [`Ledger`].
enum InvoicePositions {
    /// Ids span a range not much larger than their count (the usual case:
    /// database ids are mostly consecutive), so a flat table indexed by
    /// `id - min` replaces hashing a million keys.
    Dense {
        min: i64,
        pos: Vec<u32>,
    },
    Sparse(HashMap<i64, usize>),
}

impl InvoicePositions {
    const NONE: u32 = u32::MAX;

    fn new(invoices: &[InvoiceFact]) -> InvoicePositions {
        let (min, max) = invoices.iter().fold((i64::MAX, i64::MIN), |(lo, hi), f| {
            (lo.min(f.id), hi.max(f.id))
        });
        let span = u64::try_from(i128::from(max) - i128::from(min) + 1).unwrap_or(u64::MAX);
        let n = invoices.len() as u64;
        if !invoices.is_empty() && n < u64::from(Self::NONE) && span <= 4 * n + 1024 {
            let mut pos = vec![Self::NONE; span as usize];
            // Later duplicates win, as they would inserting into a map.
            for (i, f) in invoices.iter().enumerate() {
                pos[(f.id - min) as usize] = i as u32;
            }
            InvoicePositions::Dense { min, pos }
        } else {
            InvoicePositions::Sparse(
                invoices
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.id, i))
                    .collect(),
            )
        }
    }

    fn get(&self, id: i64) -> Option<usize> {
        match self {
            InvoicePositions::Dense { min, pos } => {
                let off = usize::try_from(id.checked_sub(*min)?).ok()?;
                pos.get(off)
                    .copied()
                    .filter(|&p| p != Self::NONE)
                    .map(|p| p as usize)
            }
            InvoicePositions::Sparse(map) => map.get(&id).copied(),
        }
    }
}

impl<'a> Ledger<'a> {
    pub fn new(facts: &'a LedgerFacts) -> Ledger<'a> {
        let n = facts.invoices.len();
        let positions = InvoicePositions::new(&facts.invoices);
        // Counting sort into the flat vector: count per invoice, turn the
        // counts into segment ends, then place each allocation by moving its
        // invoice's end down one slot (which leaves `alloc_start[i]` at the
        // segment's start).
        let mut alloc_start = vec![0usize; n + 1];
        for a in &facts.allocations {
            if let Some(i) = positions.get(a.invoice_id) {
                alloc_start[i] += 1;
            }
        }
        let mut total = 0;
        for c in &mut alloc_start {
            total += *c;
            *c = total;
        }
        let mut alloc_dates = vec![(Date::MIN, 0i64); total];
        for a in &facts.allocations {
            if let Some(i) = positions.get(a.invoice_id) {
                alloc_start[i] -= 1;
                alloc_dates[alloc_start[i]] = (a.applied_on, a.amount);
            }
        }
        for w in alloc_start.windows(2) {
            if w[1] - w[0] > 1 {
                alloc_dates[w[0]..w[1]].sort_unstable();
            }
        }
        let customer_index = facts
            .customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        Ledger {
            facts,
            alloc_dates,
            alloc_start,
            customer_index,
        }
    }

    pub fn invoices(&self) -> impl Iterator<Item = (usize, &'a InvoiceFact)> + '_ {
        self.facts.invoices.iter().enumerate()
    }

    pub fn customer(&self, id: i64) -> Option<&'a CustomerFact> {
        self.customer_index
            .get(&id)
            .map(|&i| &self.facts.customers[i])
    }

    /// Allocations of invoice `i` sorted by date.
    pub fn allocations_of(&self, i: usize) -> &[(Date, i64)] {
        &self.alloc_dates[self.alloc_start[i]..self.alloc_start[i + 1]]
    }

    /// Whether invoice `i` exists in the books as of `d` (issued, not voided).
    pub fn exists_on(&self, i: usize, d: Date) -> bool {
        let f = &self.facts.invoices[i];
        if f.issue_date > d {
            return false;
        }
        !matches!(f.closed, Some((cd, Closure::Void)) if cd <= d)
    }

    /// State of invoice `i` at the end of day `d`. `None` when it does not exist on `d`.
    pub fn as_of(&self, i: usize, d: Date) -> Option<InvoiceAsOf> {
        if !self.exists_on(i, d) {
            return None;
        }
        let f = &self.facts.invoices[i];
        let mut paid = 0i64;
        let mut settled_on = None;
        for &(on, amount) in self.allocations_of(i) {
            if on > d {
                break;
            }
            paid += amount;
            if settled_on.is_none() && paid >= f.total {
                settled_on = Some(on);
            }
        }
        let written_off = matches!(f.closed, Some((cd, Closure::WrittenOff)) if cd <= d);
        let open = if written_off {
            0
        } else {
            (f.total - paid).max(0)
        };
        Some(InvoiceAsOf {
            open,
            settled_on,
            written_off,
        })
    }

    /// Open balance of invoice `i` at the end of day `d` (0 when not in the books).
    pub fn open_on(&self, i: usize, d: Date) -> i64 {
        self.as_of(i, d).map_or(0, |s| s.open)
    }

    /// Date the invoice was fully settled by allocations, whenever that was.
    pub fn settled_on(&self, i: usize) -> Option<Date> {
        let f = &self.facts.invoices[i];
        let mut paid = 0;
        for &(on, amount) in self.allocations_of(i) {
            paid += amount;
            if paid >= f.total {
                return Some(on);
            }
        }
        None
    }
}

/// Converts invoice amounts to the base currency. Rates are taken on the
/// report's as-of date, so that one report uses one rate per currency.
#[derive(Debug, Clone)]
pub struct BaseConverter<'a> {
    pub base: Currency,
    pub table: &'a FxTable,
}

impl BaseConverter<'_> {
    pub fn to_base(&self, minor: i64, currency: Currency, on: Date) -> Result<i64, FxError> {
        if currency == self.base {
            return Ok(minor);
        }
        Ok(self
            .table
            .convert(Money::new(minor, currency), self.base, on)?
            .minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn facts() -> LedgerFacts {
        LedgerFacts {
            base_currency: Currency::USD,
            customers: vec![CustomerFact {
                id: 1,
                external_id: "C1".into(),
                name: "Acme".into(),
                segment: None,
            }],
            invoices: vec![
                InvoiceFact {
                    id: 10,
                    customer_id: 1,
                    issue_date: date(2024, 1, 1),
                    due_date: date(2024, 1, 31),
                    currency: Currency::USD,
                    total: 1000,
                    closed: None,
                },
                InvoiceFact {
                    id: 11,
                    customer_id: 1,
                    issue_date: date(2024, 1, 5),
                    due_date: date(2024, 2, 4),
                    currency: Currency::USD,
                    total: 500,
                    closed: Some((date(2024, 3, 1), Closure::Void)),
                },
                InvoiceFact {
                    id: 12,
                    customer_id: 1,
                    issue_date: date(2024, 1, 5),
                    due_date: date(2024, 2, 4),
                    currency: Currency::USD,
                    total: 700,
                    closed: Some((date(2024, 4, 1), Closure::WrittenOff)),
                },
            ],
            allocations: vec![
                AllocationFact {
                    invoice_id: 10,
                    applied_on: date(2024, 2, 10),
                    amount: 600,
                    from_credit_note: false,
                },
                AllocationFact {
                    invoice_id: 10,
                    applied_on: date(2024, 2, 1),
                    amount: 400,
                    from_credit_note: true,
                },
                AllocationFact {
                    invoice_id: 12,
                    applied_on: date(2024, 2, 1),
                    amount: 100,
                    from_credit_note: false,
                },
            ],
        }
    }

    #[test]
    fn balances_are_reconstructed_as_of_each_date() {
        let f = facts();
        let l = Ledger::new(&f);
        assert_eq!(l.as_of(0, date(2023, 12, 31)), None);
        assert_eq!(l.open_on(0, date(2024, 1, 31)), 1000);
        assert_eq!(l.open_on(0, date(2024, 2, 1)), 600);
        assert_eq!(
            l.as_of(0, date(2024, 2, 10)).unwrap().settled_on,
            Some(date(2024, 2, 10))
        );
        assert_eq!(l.settled_on(0), Some(date(2024, 2, 10)));
        // void: in the books until the void date, then gone
        assert_eq!(l.open_on(1, date(2024, 2, 29)), 500);
        assert_eq!(l.as_of(1, date(2024, 3, 1)), None);
        // written off: balance leaves AR on the write-off date
        assert_eq!(l.open_on(2, date(2024, 3, 31)), 600);
        assert_eq!(l.open_on(2, date(2024, 4, 1)), 0);
        assert!(l.as_of(2, date(2024, 4, 1)).unwrap().written_off);
    }

    #[test]
    fn sparse_ids_and_unknown_invoices_group_like_dense_ones() {
        let mut f = facts();
        // Ids far apart take the map path; an allocation to an unknown
        // invoice is ignored either way.
        for (inv, id) in f.invoices.iter_mut().zip([10, 1 << 40, -5]) {
            inv.id = id;
        }
        for (a, id) in f.allocations.iter_mut().zip([10, 10, -5]) {
            a.invoice_id = id;
        }
        f.allocations.push(AllocationFact {
            invoice_id: 999,
            applied_on: date(2024, 2, 1),
            amount: 1,
            from_credit_note: false,
        });
        let l = Ledger::new(&f);
        assert_eq!(
            l.allocations_of(0),
            &[(date(2024, 2, 1), 400), (date(2024, 2, 10), 600)]
        );
        assert_eq!(l.allocations_of(1), &[]);
        assert_eq!(l.allocations_of(2), &[(date(2024, 2, 1), 100)]);
        let dense_facts = facts();
        let dense = Ledger::new(&dense_facts);
        for i in 0..3 {
            assert_eq!(l.allocations_of(i), dense.allocations_of(i));
        }
    }
}
