//! A batch of ledger writes, applied atomically by [`crate::Store::apply`].

use arflow_domain::fx::FxRate;
use arflow_domain::model::{Allocation, Contact, CreditNote, Customer, Invoice, Payment};
use serde::Serialize;

/// Insert a new record, or replace a stored one (the caller read `before`).
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    Insert(T),
    Update { id: i64, before: T, after: T },
}

impl<T> Change<T> {
    pub fn record(&self) -> &T {
        match self {
            Change::Insert(r) => r,
            Change::Update { after, .. } => after,
        }
    }
}

/// Records refer to each other by natural keys (customer external id, invoice
/// number, payment external id, credit note number). The store resolves them
/// against what is stored and what the same change set inserts; an unknown
/// key fails the whole change set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    pub customers: Vec<Change<Customer>>,
    pub contacts: Vec<Change<Contact>>,
    pub invoices: Vec<Change<Invoice>>,
    pub credit_notes: Vec<Change<CreditNote>>,
    pub payments: Vec<Change<Payment>>,
    /// New allocations. Allocations are never edited, only added.
    pub allocations: Vec<Allocation>,
    /// Rates to add or replace (keyed by from, to, valid_on).
    pub fx_rates: Vec<FxRate>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.contacts.is_empty()
            && self.invoices.is_empty()
            && self.credit_notes.is_empty()
            && self.payments.is_empty()
            && self.allocations.is_empty()
            && self.fx_rates.is_empty()
    }
}

/// How many records one kind of change touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
}

/// What [`crate::Store::apply`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AppliedCounts {
    pub customers: Counts,
    pub contacts: Counts,
    pub invoices: Counts,
    pub credit_notes: Counts,
    pub payments: Counts,
    pub allocations: Counts,
    pub fx_rates: Counts,
    pub events: u64,
}
