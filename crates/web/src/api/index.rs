//! What the API derives from one [`LedgerView`], built once per view (that
//! is, once per ledger version and day) and shared by every request on it:
//! the row positions of each invoice state and of each customer, so a
//! filtered page reads only the rows it can return; per-customer balances;
//! and how much of each payment and credit note is applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use arflow_domain::model::{AllocationSource, InvoiceStatus};
use arflow_domain::money::Currency;

use crate::cache::{InvoiceState, LedgerView};

/// Open and overdue balance in one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub open: i64,
    pub overdue: i64,
}

#[derive(Debug, Default)]
pub struct CustomerStats {
    pub balances: BTreeMap<Currency, Balance>,
    pub open_invoices: u64,
    pub overdue_invoices: u64,
}

pub struct ApiIndex {
    view: Weak<LedgerView>,
    /// Invoice index → its position in `view.rows`.
    pub row_of: Vec<u32>,
    /// Positions in `view.rows` of the invoices in each state, ascending.
    pub by_state: [Vec<u32>; 5],
    /// Positions in `view.rows` of each customer's invoices, ascending.
    pub by_customer: Vec<Vec<u32>>,
    pub customer_stats: Vec<CustomerStats>,
    /// Sum of allocations per invoice number (any date).
    pub invoice_applied: HashMap<String, i64>,
    pub payment_applied: HashMap<String, i64>,
    pub credit_applied: HashMap<String, i64>,
    /// Payment external id → index into `view.payments`.
    pub payment_index: HashMap<String, usize>,
    /// Credit note number → index into `view.credit_notes`.
    pub credit_index: HashMap<String, usize>,
    /// Contact external id → index into `view.contacts`.
    pub contact_index: HashMap<String, usize>,
}

pub fn state_slot(s: InvoiceState) -> usize {
    match s {
        InvoiceState::Open => 0,
        InvoiceState::Overdue => 1,
        InvoiceState::Paid => 2,
        InvoiceState::Void => 3,
        InvoiceState::WrittenOff => 4,
    }
}

impl ApiIndex {
    fn build(view: &Arc<LedgerView>) -> ApiIndex {
        let mut row_of = vec![0u32; view.invoices.len()];
        let mut by_state: [Vec<u32>; 5] = Default::default();
        let mut by_customer: Vec<Vec<u32>> = vec![Vec::new(); view.customers.len()];
        let mut customer_stats: Vec<CustomerStats> = (0..view.customers.len())
            .map(|_| CustomerStats::default())
            .collect();
        for (pos, row) in view.rows.iter().enumerate() {
            let pos = pos as u32;
            row_of[row.index] = pos;
            by_state[state_slot(row.state)].push(pos);
            let inv = &view.invoices[row.index];
            // `row.customer` falls back to 0 for an unknown key: check it.
            if let Some(&c) = view.customer_index.get(&inv.customer) {
                by_customer[c].push(pos);
                if row.open > 0 && inv.status == InvoiceStatus::Open {
                    let s = &mut customer_stats[c];
                    let b = s.balances.entry(inv.currency).or_default();
                    b.open += row.open;
                    s.open_invoices += 1;
                    if row.state == InvoiceState::Overdue {
                        b.overdue += row.open;
                        s.overdue_invoices += 1;
                    }
                }
            }
        }
        let mut invoice_applied: HashMap<String, i64> = HashMap::new();
        let mut payment_applied: HashMap<String, i64> = HashMap::new();
        let mut credit_applied: HashMap<String, i64> = HashMap::new();
        for a in &view.allocations {
            *invoice_applied.entry(a.invoice.clone()).or_default() += a.amount;
            match &a.source {
                AllocationSource::Payment(k) => {
                    *payment_applied.entry(k.clone()).or_default() += a.amount
                }
                AllocationSource::CreditNote(k) => {
                    *credit_applied.entry(k.clone()).or_default() += a.amount
                }
            }
        }
        ApiIndex {
            view: Arc::downgrade(view),
            row_of,
            by_state,
            by_customer,
            customer_stats,
            invoice_applied,
            payment_applied,
            credit_applied,
            payment_index: view
                .payments
                .iter()
                .enumerate()
                .map(|(i, p)| (p.external_id.clone(), i))
                .collect(),
            credit_index: view
                .credit_notes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.number.clone(), i))
                .collect(),
            contact_index: view
                .contacts
                .iter()
                .enumerate()
                .map(|(i, c)| (c.external_id.clone(), i))
                .collect(),
        }
    }
}

static INDEXES: Mutex<Vec<Arc<ApiIndex>>> = Mutex::new(Vec::new());

/// The index of `view`, built on first use. Entries of views nobody holds
/// any more are dropped on the way.
pub fn index_of(view: &Arc<LedgerView>) -> Arc<ApiIndex> {
    let mut all = INDEXES.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|i| i.view.strong_count() > 0);
    // A live Weak keeps the allocation, so an address is never reused while
    // an entry points at it.
    if let Some(i) = all
        .iter()
        .find(|i| std::ptr::eq(i.view.as_ptr(), Arc::as_ptr(view)))
    {
        return Arc::clone(i);
    }
    let built = Arc::new(ApiIndex::build(view));
    all.push(Arc::clone(&built));
    built
}
