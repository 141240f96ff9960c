//! Per-customer payment behaviour as of a date.
//!
//! For each customer with at least one in-scope invoice:
//!
//! * an invoice is **settled** when its allocations reached its total on or
//!   before `as_of` (`settled_on <= as_of`); written-off or still-open invoices
//!   are not settled;
//! * **days to pay** = `settled_on − issue_date`;
//! * **days late** = `max(0, settled_on − due_date)`;
//! * **simple averages** = Σ days / number of settled invoices;
//! * **amount-weighted averages** = Σ (invoice total × days) / Σ invoice total,
//!   over settled invoices, totals in base currency;
//! * **open balance** = open balance at the end of `as_of`; **overdue
//!   balance** = the part of it past due (`due_date < as_of`).
//!
//! Customers are listed by open balance, largest first (ties by id).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::scope::{CustomerRows, Scope, customer_identity};
use super::{AnalyticsError, days_between, ratio};
use crate::ledger::{BaseConverter, Ledger};
use crate::money::Currency;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerBehavior {
    pub customer_id: i64,
    pub external_id: String,
    pub name: String,
    pub segment: Option<String>,
    /// In-scope invoices issued on or before `as_of`.
    pub invoice_count: u64,
    pub settled_count: u64,
    pub avg_days_to_pay: Option<f64>,
    pub weighted_avg_days_to_pay: Option<f64>,
    pub avg_days_late: Option<f64>,
    pub weighted_avg_days_late: Option<f64>,
    pub open_invoice_count: u64,
    pub open_balance: i64,
    pub overdue_balance: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerBehaviorReport {
    pub as_of: Date,
    pub currency: Currency,
    pub segment: Option<String>,
    pub customers: Vec<CustomerBehavior>,
}

#[derive(Default)]
struct Acc {
    invoices: u64,
    settled: u64,
    days_to_pay: i64,
    days_late: i64,
    weight: i128,
    weighted_to_pay: i128,
    weighted_late: i128,
    open_count: u64,
    open: i64,
    overdue: i64,
}

pub fn customer_behavior(
    ledger: &Ledger<'_>,
    conv: &BaseConverter<'_>,
    as_of: Date,
    segment: Option<&str>,
) -> Result<CustomerBehaviorReport, AnalyticsError> {
    let scope = Scope::new(ledger, conv, as_of, segment);
    let mut rows: CustomerRows<Acc> = CustomerRows::new(scope.customers().len());
    for (i, f, pos) in scope.invoices_with_customer() {
        let acc = rows.get(f.customer_id, pos, Acc::default);
        acc.invoices += 1;
        let Some(st) = ledger.as_of(i, as_of) else {
            continue;
        };
        if let Some(settled) = st.settled_on {
            let total = i128::from(scope.to_base(f.total, f.currency)?);
            let to_pay = days_between(f.issue_date, settled);
            let late = days_between(f.due_date, settled).max(0);
            acc.settled += 1;
            acc.days_to_pay += to_pay;
            acc.days_late += late;
            acc.weight += total;
            acc.weighted_to_pay += total * i128::from(to_pay);
            acc.weighted_late += total * i128::from(late);
        }
        if st.open > 0 {
            let open = scope.to_base(st.open, f.currency)?;
            acc.open_count += 1;
            acc.open += open;
            if f.due_date < as_of {
                acc.overdue += open;
            }
        }
    }
    let mut customers: Vec<CustomerBehavior> = rows
        .into_rows(&scope)
        .into_iter()
        .map(|(customer_id, pos, a)| {
            let (external_id, name, segment) = customer_identity(&scope, pos);
            let n = i128::from(a.settled);
            CustomerBehavior {
                customer_id,
                external_id,
                name,
                segment,
                invoice_count: a.invoices,
                settled_count: a.settled,
                avg_days_to_pay: ratio(i128::from(a.days_to_pay), n),
                weighted_avg_days_to_pay: ratio(a.weighted_to_pay, a.weight),
                avg_days_late: ratio(i128::from(a.days_late), n),
                weighted_avg_days_late: ratio(a.weighted_late, a.weight),
                open_invoice_count: a.open_count,
                open_balance: a.open,
                overdue_balance: a.overdue,
            }
        })
        .collect();
    customers.sort_by(|a, b| {
        b.open_balance
            .cmp(&a.open_balance)
            .then(a.customer_id.cmp(&b.customer_id))
    });
    Ok(CustomerBehaviorReport {
        as_of,
        currency: scope.base(),
        segment: segment.map(str::to_string),
        customers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::testkit::{Kit, assert_close, conv, d, usd};
    use crate::fx::FxTable;
    use crate::ledger::Closure;

    /// Published examples:
    /// * Softrak forum (Steve), https://portal.softrak.com/ubbthreads/ubbthreads.php/topics/27866
    ///   — "a $100 invoice was paid in 10 days, and a $1,000 invoice was paid in 20 days …
    ///   the days-to-pay is 19.1 (not 15 days which would be the answer ignoring the invoice value)".
    /// * Microsoft Dynamics idea, https://scshubfrpdev.powerappsportals.com/ideas/idea/?ideaid=4191bf6f-f5ab-ea11-8b71-0003ff68c1c4
    ///   — "$10 invoice paid in 5 days, $100 invoice paid in 10 days": unweighted 7.5, weighted 9.55 days.
    ///
    /// Days late are hand-computed: customer 1's invoices are due after 30 and 15 days, so they are
    /// 0 and 5 days late: simple 2.5, weighted 5 × 1,000 / 1,100 = 4.545.
    #[test]
    fn days_to_pay_examples() {
        let mut k = Kit::new();
        let a = k.invoice(1, d(2024, 1, 1), d(2024, 1, 31), usd(100));
        k.pay(a, d(2024, 1, 11), usd(100));
        let b = k.invoice(1, d(2024, 1, 1), d(2024, 1, 16), usd(1_000));
        k.pay(b, d(2024, 1, 11), usd(400));
        k.credit(b, d(2024, 1, 21), usd(600)); // settled on day 20
        let later = k.invoice(1, d(2024, 2, 1), d(2024, 2, 15), usd(50));
        k.pay(later, d(2024, 4, 1), usd(50)); // after as_of: still open and overdue
        let c = k.invoice(2, d(2024, 1, 1), d(2024, 1, 31), usd(10));
        k.pay(c, d(2024, 1, 6), usd(10));
        let e = k.invoice(2, d(2024, 1, 1), d(2024, 1, 31), usd(100));
        k.pay(e, d(2024, 1, 11), usd(100));
        let w = k.invoice(2, d(2024, 1, 1), d(2024, 1, 31), usd(70));
        k.close(w, d(2024, 2, 20), Closure::WrittenOff); // never settled
        let table = FxTable::default();
        let r =
            customer_behavior(&Ledger::new(&k.facts), &conv(&table), d(2024, 3, 1), None).unwrap();
        let c1 = r.customers.iter().find(|c| c.customer_id == 1).unwrap();
        assert_eq!((c1.invoice_count, c1.settled_count), (3, 2));
        assert_close(c1.avg_days_to_pay.unwrap(), 15.0, 1e-9);
        assert_close(c1.weighted_avg_days_to_pay.unwrap(), 19.1, 0.05);
        assert_close(c1.avg_days_late.unwrap(), 2.5, 1e-9);
        assert_close(c1.weighted_avg_days_late.unwrap(), 5_000.0 / 1_100.0, 1e-9);
        assert_eq!(
            (c1.open_balance, c1.overdue_balance, c1.open_invoice_count),
            (usd(50), usd(50), 1)
        );
        let c2 = r.customers.iter().find(|c| c.customer_id == 2).unwrap();
        assert_eq!(c2.settled_count, 2);
        assert_close(c2.avg_days_to_pay.unwrap(), 7.5, 1e-9);
        assert_close(c2.weighted_avg_days_to_pay.unwrap(), 9.55, 0.005);
        assert_eq!(c2.open_balance, 0);
        // largest open balance first
        assert_eq!(r.customers[0].customer_id, 1);
        // as of Jan 15, customer 1's $1,000 invoice is not settled yet
        let r = customer_behavior(
            &Ledger::new(&k.facts),
            &conv(&table),
            d(2024, 1, 15),
            Some("smb"),
        )
        .unwrap();
        assert_eq!(r.customers.len(), 1);
        assert_eq!(r.customers[0].settled_count, 1);
        assert_eq!(r.customers[0].open_balance, usd(600));
    }
}
