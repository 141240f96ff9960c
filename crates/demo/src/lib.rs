//! A realistic synthetic receivables ledger, generated from a seed.
//!
//! `generate` builds a whole [`DemoLedger`] in memory; [`stream`] yields it one
//! customer at a time (bounded memory for millions of invoices) and
//! [`write_csv`] streams it into the native CSV import files.
//!
//! The same [`DemoParams`] always give the same ledger: every draw comes from a
//! seeded ChaCha8 generator and `today` is passed in, never read from a clock.
//!
//! What the data looks like:
//! - invoices over the ~24 months before `today`, on weekdays, busier in Q4 and
//!   at month ends, quieter in August; numbered `INV-000001`... in issue order;
//! - customers (`CUST-0001`...) in three segments with a country, IANA zone and
//!   locale that agree, mostly billed in the base currency (some EUR/GBP),
//!   net 15/30/45/60 or due-on-receipt terms, a per-customer amount scale
//!   (log-normal amounts), tax in VAT/GST countries, PO numbers for larger ones;
//! - a payment behaviour per customer ([`PaymentProfile`]), which decides when
//!   invoices are paid; payments dated after `today` have not happened, so
//!   those invoices are still open;
//! - partial payments, payment runs settling several invoices, a few unapplied
//!   overpayments, disputes resolved by credit notes, voids and write-offs.
//!
//! Importing the CSV files (customers, contacts, invoices, then credit notes
//! and payments, applied in date order or file by file) re-creates exactly the
//! ledger's allocations: see `simulate.rs` for how payments are shaped to make
//! that hold.

mod calendar;
mod csv_out;
mod customers;
mod geo;
mod rng;
mod simulate;
mod words;

use arflow_domain::model::{Allocation, Contact, CreditNote, Customer, Invoice, Payment};
use arflow_domain::money::Currency;
use jiff::civil::Date;

pub use csv_out::{CsvCounts, CsvLayout, write_csv, write_csv_as};

use crate::calendar::Calendar;
use crate::customers::{CustomerPlan, invoice_counts, key_width, plan_customers};
use crate::simulate::{Counters, simulate};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoParams {
    pub customers: usize,
    /// Total number of invoices, shared among customers.
    pub invoices: usize,
    pub seed: u64,
    /// The last day of the history; nothing is dated after it.
    pub today: Date,
    pub base_currency: Currency,
}

impl DemoParams {
    /// 200 customers, 5,000 invoices, seed 42, USD.
    pub fn new(today: Date) -> DemoParams {
        DemoParams {
            customers: 200,
            invoices: 5_000,
            seed: 42,
            today,
            base_currency: Currency::USD,
        }
    }
}

/// How a customer pays. Not part of the domain model: it is the hidden truth
/// behind the generated history, exposed for tests and demos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentProfile {
    /// Pays on or before the due date.
    Prompt,
    /// Consistently 1–4 weeks late.
    SteadyLate,
    /// Sometimes early, sometimes months late; occasionally never.
    Erratic,
    /// 45–120 days late; some invoices never paid and written off.
    ChronicLate,
    /// Disputes some invoices: paid late, partly, or settled by a credit note.
    Disputer,
}

impl PaymentProfile {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentProfile::Prompt => "prompt",
            PaymentProfile::SteadyLate => "steady-late",
            PaymentProfile::Erratic => "erratic",
            PaymentProfile::ChronicLate => "chronic-late",
            PaymentProfile::Disputer => "disputer",
        }
    }
}

/// The whole generated ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DemoLedger {
    pub customers: Vec<Customer>,
    /// `profiles[i]` is how `customers[i]` pays.
    pub profiles: Vec<PaymentProfile>,
    pub contacts: Vec<Contact>,
    pub invoices: Vec<Invoice>,
    pub credit_notes: Vec<CreditNote>,
    pub payments: Vec<Payment>,
    pub allocations: Vec<Allocation>,
}

/// One customer and everything that refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerLedger {
    pub customer: Customer,
    pub profile: PaymentProfile,
    pub contacts: Vec<Contact>,
    /// Sorted by issue date.
    pub invoices: Vec<Invoice>,
    pub credit_notes: Vec<CreditNote>,
    /// Sorted by date received (the order an import must apply them in).
    pub payments: Vec<Payment>,
    /// Credit-note allocations, then payment allocations in payment order; a
    /// payment's allocations are listed in the order its invoices are named.
    pub allocations: Vec<Allocation>,
}

/// Generates the ledger customer by customer. Memory: the customer list plus
/// two bytes per invoice, plus one customer's records at a time.
pub struct DemoStream {
    params: DemoParams,
    calendar: Calendar,
    plans: std::vec::IntoIter<CustomerPlan>,
    /// Issue days of all invoices, customer after customer.
    issue_days: Vec<u16>,
    /// `issue_days[offsets[i]..offsets[i + 1]]` belong to customer i.
    offsets: Vec<usize>,
    next: usize,
    counters: Counters,
}

/// Starts generating the ledger for `params`.
pub fn stream(params: &DemoParams) -> DemoStream {
    let calendar = Calendar::new(params.today);
    let mut rng0 = rng::stream(params.seed, 0);
    let plans = plan_customers(&mut rng0, params, &calendar);
    let counts = if plans.is_empty() {
        Vec::new()
    } else {
        invoice_counts(&plans, params.invoices)
    };

    // Draw every invoice's issue day first (cheap), so invoice numbers can follow
    // issue dates across customers while records are built one customer at a time.
    let total: usize = counts.iter().sum();
    let mut issue_days: Vec<u16> = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(plans.len() + 1);
    let mut per_day = vec![0u64; calendar.today as usize + 1];
    offsets.push(0);
    for (i, (plan, &n)) in plans.iter().zip(&counts).enumerate() {
        let mut rng = rng::dates_stream(params.seed, i);
        let start = issue_days.len();
        for _ in 0..n {
            // Days are 0..=730, well inside u16.
            let d = calendar.sample_day(&mut rng, plan.window.0, plan.window.1) as u16;
            per_day[d as usize] += 1;
            issue_days.push(d);
        }
        issue_days[start..].sort_unstable();
        offsets.push(issue_days.len());
    }
    // Invoice numbers of day d start after all invoices of earlier days.
    let mut day_cursor = Vec::with_capacity(per_day.len());
    let mut before = 0u64;
    for n in per_day {
        day_cursor.push(before);
        before += n;
    }
    let counters = Counters {
        day_cursor,
        next_payment: 0,
        next_credit: 0,
        invoice_width: key_width(total, 6),
        // Payments are about as many as invoices; credit notes far fewer.
        payment_width: key_width(total, 6),
        credit_width: key_width(total / 10, 6),
    };
    DemoStream {
        params: *params,
        calendar,
        plans: plans.into_iter(),
        issue_days,
        offsets,
        next: 0,
        counters,
    }
}

impl Iterator for DemoStream {
    type Item = CustomerLedger;

    fn next(&mut self) -> Option<CustomerLedger> {
        let plan = self.plans.next()?;
        let i = self.next;
        self.next += 1;
        let days = &self.issue_days[self.offsets[i]..self.offsets[i + 1]];
        let rng = rng::life_stream(self.params.seed, i);
        Some(simulate(
            plan,
            days,
            rng,
            &self.calendar,
            &mut self.counters,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.plans.size_hint()
    }
}

/// Generates the whole ledger in memory.
pub fn generate(params: &DemoParams) -> DemoLedger {
    let mut ledger = DemoLedger::default();
    for c in stream(params) {
        ledger.customers.push(c.customer);
        ledger.profiles.push(c.profile);
        ledger.contacts.extend(c.contacts);
        ledger.invoices.extend(c.invoices);
        ledger.credit_notes.extend(c.credit_notes);
        ledger.payments.extend(c.payments);
        ledger.allocations.extend(c.allocations);
    }
    ledger
}

#[cfg(test)]
mod tests;
