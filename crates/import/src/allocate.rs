//! Open balances per customer, for allocating new payments and credits.

use crate::diff::FastMap;

use arflow_domain::allocation::OpenItem;
use arflow_domain::model::{Allocation, Invoice, InvoiceStatus, Stored};
use arflow_domain::money::Currency;

/// Sum of stored allocations per invoice number.
pub fn allocated(allocations: &[Stored<Allocation>]) -> FastMap<String, i64> {
    let mut m: FastMap<String, i64> = FastMap::default();
    for a in allocations {
        *m.entry(a.invoice.clone()).or_default() += a.amount;
    }
    m
}

/// Open invoices by (customer, currency), their balances net of stored allocations.
pub fn open_items<'a>(
    invoices: impl IntoIterator<Item = &'a Invoice>,
    allocated: &FastMap<String, i64>,
) -> FastMap<(String, Currency), Vec<OpenItem>> {
    let mut m: FastMap<(String, Currency), Vec<OpenItem>> = FastMap::default();
    for inv in invoices {
        if inv.status != InvoiceStatus::Open {
            continue;
        }
        let open = inv.total - allocated.get(&inv.number).copied().unwrap_or(0);
        if open > 0 {
            m.entry((inv.customer.clone(), inv.currency))
                .or_default()
                .push(OpenItem {
                    number: inv.number.clone(),
                    issue_date: inv.issue_date,
                    due_date: inv.due_date,
                    open,
                });
        }
    }
    m
}
