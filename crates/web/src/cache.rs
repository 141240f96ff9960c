//! An in-memory view of one organization's ledger, rebuilt only when the
//! ledger changes.
//!
//! Lists, filters and the overview read the whole ledger; reading 100k
//! invoices and their allocations from the database on every request would
//! cost hundreds of milliseconds. Instead each request asks the store for
//! the organization's ledger version (one indexed row) and reuses the view
//! built for that version and today's date. Every web server on a shared
//! database sees a change on its next request, because `Store::apply`
//! raises the version in the transaction that commits the change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arflow_domain::analytics::aging::AgingConfig;
use arflow_domain::fx::{FxRate, FxTable};
use arflow_domain::ledger::{Ledger, LedgerFacts};
use arflow_domain::model::{
    Allocation, Contact, CreditNote, Customer, Invoice, InvoiceStatus, Organization, Payment,
    Stored,
};
use arflow_store::Store;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::problem::AppError;

/// Where an invoice stands today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    /// Open and not yet past its due date.
    Open,
    /// Open and past its due date.
    Overdue,
    Paid,
    Void,
    WrittenOff,
}

impl InvoiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceState::Open => "open",
            InvoiceState::Overdue => "overdue",
            InvoiceState::Paid => "paid",
            InvoiceState::Void => "void",
            InvoiceState::WrittenOff => "written_off",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceState> {
        [
            InvoiceState::Open,
            InvoiceState::Overdue,
            InvoiceState::Paid,
            InvoiceState::Void,
            InvoiceState::WrittenOff,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What the view adds to a stored invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRow {
    /// Index into [`LedgerView::invoices`].
    pub index: usize,
    /// Open balance today, invoice currency, minor units.
    pub open: i64,
    pub settled_on: Option<Date>,
    pub state: InvoiceState,
    /// Days past due today (0 when not due or not open).
    pub days_overdue: i64,
    /// Aging bucket label ("Current", "1-30", ..., "90+") for open invoices.
    pub bucket: Option<String>,
    /// Index into [`LedgerView::customers`].
    pub customer: usize,
}

/// One organization's ledger as of one version and one day.
pub struct LedgerView {
    pub version: i64,
    pub today: Date,
    pub org: Organization,
    pub tz: TimeZone,
    pub customers: Vec<Stored<Customer>>,
    pub contacts: Vec<Stored<Contact>>,
    pub invoices: Vec<Stored<Invoice>>,
    pub credit_notes: Vec<Stored<CreditNote>>,
    pub payments: Vec<Stored<Payment>>,
    pub allocations: Vec<Stored<Allocation>>,
    pub fx_rates: Vec<FxRate>,
    pub facts: LedgerFacts,
    /// One per invoice, sorted by due date, then number.
    pub rows: Vec<InvoiceRow>,
    pub customer_index: HashMap<String, usize>,
    pub invoice_index: HashMap<String, usize>,
    /// What the pages compute from the view on first use (the overview's
    /// numbers, customer behaviour, predictions), kept as long as the view.
    pub memo: crate::pages::common::ViewMemo,
}

impl LedgerView {
    pub fn customer(&self, key: &str) -> Option<&Stored<Customer>> {
        self.customer_index.get(key).map(|&i| &self.customers[i])
    }

    pub fn invoice(&self, number: &str) -> Option<(&Stored<Invoice>, &InvoiceRow)> {
        let i = *self.invoice_index.get(number)?;
        let row = self.rows.iter().find(|r| r.index == i)?;
        Some((&self.invoices[i], row))
    }

    pub fn fx(&self) -> FxTable {
        FxTable::new(self.fx_rates.iter().cloned())
    }

    fn build(
        store: &dyn Store,
        org: Organization,
        version: i64,
        now: Timestamp,
        aging: &AgingConfig,
    ) -> Result<LedgerView, AppError> {
        let tz = TimeZone::get(&org.time_zone).map_err(|e| {
            AppError::Internal(format!(
                "organization time zone '{}' is unknown: {e}",
                org.time_zone
            ))
        })?;
        let today = tz.to_datetime(now).date();
        let id = org.id;
        // The three biggest reads side by side, each on its own pooled
        // connection (one stays free for other requests): at 100k invoices
        // they are most of a rebuild.
        let (customers, invoices, facts, contacts, credit_notes, payments, allocations, fx_rates) =
            std::thread::scope(|s| {
                let payments = s.spawn(|| store.payments(id));
                let allocations = s.spawn(|| store.allocations(id));
                let invoices = store.invoices(id);
                let facts = store.ledger_facts(id);
                let customers = store.customers(id);
                let contacts = store.contacts(id);
                let credit_notes = store.credit_notes(id);
                let fx_rates = store.fx_rates(id);
                let payments = joined(payments);
                let allocations = joined(allocations);
                Ok::<_, AppError>((
                    customers?,
                    invoices?,
                    facts?,
                    contacts?,
                    credit_notes?,
                    payments?,
                    allocations?,
                    fx_rates?,
                ))
            })?;
        let customer_index: HashMap<String, usize> = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.external_id.clone(), i))
            .collect();
        let invoice_index: HashMap<String, usize> = invoices
            .iter()
            .enumerate()
            .map(|(i, inv)| (inv.number.clone(), i))
            .collect();
        let ledger = Ledger::new(&facts);
        let fact_of: HashMap<i64, usize> = ledger.invoices().map(|(i, f)| (f.id, i)).collect();
        let buckets = aging.buckets();
        let mut rows: Vec<InvoiceRow> = invoices
            .iter()
            .enumerate()
            .map(|(index, inv)| {
                let fact = fact_of.get(&inv.id).copied();
                let as_of = fact.and_then(|f| ledger.as_of(f, today));
                let open = as_of.map(|a| a.open).unwrap_or(0);
                let settled_on = fact.and_then(|f| ledger.settled_on(f));
                let state = match inv.status {
                    InvoiceStatus::Void => InvoiceState::Void,
                    InvoiceStatus::WrittenOff => InvoiceState::WrittenOff,
                    _ if open == 0 => InvoiceState::Paid,
                    _ if inv.due_date < today => InvoiceState::Overdue,
                    _ => InvoiceState::Open,
                };
                let days_overdue = if open > 0 && inv.due_date < today {
                    (today - inv.due_date).get_days() as i64
                } else {
                    0
                };
                let bucket = (open > 0)
                    .then(|| {
                        let f = fact.map(|f| &facts.invoices[f])?;
                        let age = aging.age(f, today);
                        buckets.get(aging.bucket_of(age)).map(|b| b.0.clone())
                    })
                    .flatten();
                InvoiceRow {
                    index,
                    open,
                    settled_on,
                    state,
                    days_overdue,
                    bucket,
                    customer: customer_index.get(&inv.customer).copied().unwrap_or(0),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            let (x, y) = (&invoices[a.index], &invoices[b.index]);
            (x.due_date, &x.number).cmp(&(y.due_date, &y.number))
        });
        Ok(LedgerView {
            version,
            today,
            tz,
            contacts,
            credit_notes,
            payments,
            allocations,
            fx_rates,
            org,
            customers,
            invoices,
            facts,
            rows,
            customer_index,
            invoice_index,
            memo: crate::pages::common::ViewMemo::default(),
        })
    }
}

/// A ledger read's result from its thread (a panic becomes an error).
fn joined<T>(
    h: std::thread::ScopedJoinHandle<'_, Result<T, arflow_store::StoreError>>,
) -> Result<T, arflow_store::StoreError> {
    h.join().unwrap_or_else(|_| {
        Err(arflow_store::StoreError::Database(
            "a ledger read panicked".to_string(),
        ))
    })
}

/// The views, one per organization.
#[derive(Default)]
pub struct LedgerCache {
    views: Mutex<HashMap<i64, Arc<LedgerView>>>,
    /// Serializes rebuilds so a burst of requests after a change builds once.
    building: Mutex<()>,
}

impl LedgerCache {
    /// The organization's view for its current ledger version and today.
    /// Runs store calls: call it on the blocking pool. `rebuilt` is called
    /// when a new view had to be built.
    pub fn view(
        &self,
        store: &dyn Store,
        org: i64,
        now: Timestamp,
        aging: &AgingConfig,
        rebuilt: impl FnOnce(),
    ) -> Result<Arc<LedgerView>, AppError> {
        let version = store.ledger_version(org)?;
        if let Some(v) = self.current(org, version, now) {
            return Ok(v);
        }
        let _one_at_a_time = self.building.lock().unwrap_or_else(|p| p.into_inner());
        // Another request may have built a view (or the ledger moved on)
        // while this one waited for the lock.
        let mut version = store.ledger_version(org)?;
        if let Some(v) = self.current(org, version, now) {
            return Ok(v);
        }
        let organization = store
            .organization(org)?
            .ok_or_else(|| AppError::NotFound(format!("organization #{org} was not found")))?;
        // The view is read with several queries, not in one snapshot: it is
        // consistent only if no change committed between the first and the
        // last (every change raises the version in its own transaction).
        // Rebuild while imports keep landing; after a few tries keep the
        // last build under its old version, so the next request tries again.
        let mut view;
        let mut tries = 0;
        loop {
            view = LedgerView::build(store, organization.clone(), version, now, aging)?;
            tries += 1;
            let after = store.ledger_version(org)?;
            if after == version || tries == 3 {
                break;
            }
            version = after;
        }
        let view = Arc::new(view);
        rebuilt();
        let mut views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        match views.get(&org) {
            // Never replace a view of a newer ledger with an older one.
            Some(newer) if newer.version > view.version => {}
            _ => {
                views.insert(org, Arc::clone(&view));
            }
        }
        Ok(view)
    }

    fn current(&self, org: i64, version: i64, now: Timestamp) -> Option<Arc<LedgerView>> {
        let views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        let v = views.get(&org)?;
        (v.version == version && v.tz.to_datetime(now).date() == v.today).then(|| Arc::clone(v))
    }
}
