//! Builders for the analytics tests.

use jiff::civil::Date;

use crate::fx::FxTable;
use crate::ledger::{
    AllocationFact, BaseConverter, Closure, CustomerFact, InvoiceFact, LedgerFacts,
};
use crate::money::Currency;

/// Whole dollars to cents.
pub(crate) fn usd(dollars: i64) -> i64 {
    dollars * 100
}

pub(crate) fn d(y: i16, m: i8, day: i8) -> Date {
    jiff::civil::date(y, m, day)
}

pub(crate) fn conv(table: &FxTable) -> BaseConverter<'_> {
    BaseConverter {
        base: Currency::USD,
        table,
    }
}

pub(crate) fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected} ± {tolerance}, got {actual}"
    );
}

/// Facts with three customers: 1 "smb", 2 "enterprise", 3 without segment.
pub(crate) struct Kit {
    pub facts: LedgerFacts,
}

impl Kit {
    pub fn new() -> Kit {
        let c = |id: i64, seg: Option<&str>| CustomerFact {
            id,
            external_id: format!("C{id}"),
            name: format!("Customer {id}"),
            segment: seg.map(str::to_string),
        };
        Kit {
            facts: LedgerFacts {
                base_currency: Currency::USD,
                customers: vec![c(1, Some("smb")), c(2, Some("enterprise")), c(3, None)],
                invoices: Vec::new(),
                allocations: Vec::new(),
            },
        }
    }

    pub fn invoice(&mut self, customer: i64, issue: Date, due: Date, total: i64) -> i64 {
        self.invoice_in(customer, issue, due, total, Currency::USD)
    }

    pub fn invoice_in(
        &mut self,
        customer: i64,
        issue: Date,
        due: Date,
        total: i64,
        currency: Currency,
    ) -> i64 {
        let id = self.facts.invoices.len() as i64 + 100;
        self.facts.invoices.push(InvoiceFact {
            id,
            customer_id: customer,
            issue_date: issue,
            due_date: due,
            currency,
            total,
            closed: None,
        });
        id
    }

    pub fn pay(&mut self, invoice: i64, on: Date, amount: i64) {
        self.alloc(invoice, on, amount, false);
    }

    pub fn credit(&mut self, invoice: i64, on: Date, amount: i64) {
        self.alloc(invoice, on, amount, true);
    }

    fn alloc(&mut self, invoice_id: i64, applied_on: Date, amount: i64, from_credit_note: bool) {
        self.facts.allocations.push(AllocationFact {
            invoice_id,
            applied_on,
            amount,
            from_credit_note,
        });
    }

    pub fn close(&mut self, invoice: i64, on: Date, how: Closure) {
        let f = self
            .facts
            .invoices
            .iter_mut()
            .find(|f| f.id == invoice)
            .expect("invoice");
        f.closed = Some((on, how));
    }
}
