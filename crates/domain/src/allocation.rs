//! Applying a payment or credit to open invoices.
//!
//! Invariant (property-tested): the allocations never exceed the payment, never
//! exceed any invoice's open balance, and are never negative.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Order in which a payment without explicit allocations settles open invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllocationOrder {
    /// Earliest due date first (ties: earliest issue date, then number). The usual practice.
    #[default]
    OldestDueFirst,
    /// Earliest issue date first.
    OldestIssuedFirst,
    /// Only an exactly matching open amount is settled; anything else stays unapplied.
    ExactAmountOnly,
}

impl AllocationOrder {
    pub fn parse(s: &str) -> Option<AllocationOrder> {
        match s {
            "oldest-due-first" => Some(AllocationOrder::OldestDueFirst),
            "oldest-issued-first" => Some(AllocationOrder::OldestIssuedFirst),
            "exact-amount-only" => Some(AllocationOrder::ExactAmountOnly),
            _ => None,
        }
    }
}

/// An invoice that can receive money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    pub number: String,
    pub issue_date: Date,
    pub due_date: Date,
    /// Open balance in minor units (> 0).
    pub open: i64,
}

/// The result of allocating one amount.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllocationPlan {
    /// (invoice number, amount) pairs, each amount > 0.
    pub applied: Vec<(String, i64)>,
    /// What is left as unapplied credit.
    pub unapplied: i64,
}

/// Allocates `amount` across `items` in `order`, first to the invoices named
/// in `preferred` (in that order). Amounts in `items` are reduced in place so
/// successive payments see what earlier ones left.
pub fn allocate(
    amount: i64,
    items: &mut [OpenItem],
    preferred: &[String],
    order: AllocationOrder,
) -> AllocationPlan {
    let mut left = amount.max(0);
    let mut applied = Vec::new();
    for number in preferred {
        if left == 0 {
            break;
        }
        if let Some(item) = items.iter_mut().find(|i| &i.number == number && i.open > 0) {
            let take = left.min(item.open);
            item.open -= take;
            left -= take;
            applied.push((item.number.clone(), take));
        }
    }
    if left > 0 {
        match order {
            AllocationOrder::ExactAmountOnly => {
                if let Some(item) = items
                    .iter_mut()
                    .filter(|i| i.open == left)
                    .min_by(|a, b| (a.due_date, &a.number).cmp(&(b.due_date, &b.number)))
                {
                    item.open = 0;
                    applied.push((item.number.clone(), left));
                    left = 0;
                }
            }
            AllocationOrder::OldestDueFirst | AllocationOrder::OldestIssuedFirst => {
                let mut idx: Vec<usize> = (0..items.len()).filter(|&i| items[i].open > 0).collect();
                idx.sort_by(|&a, &b| {
                    let (x, y) = (&items[a], &items[b]);
                    match order {
                        AllocationOrder::OldestIssuedFirst => (x.issue_date, x.due_date, &x.number)
                            .cmp(&(y.issue_date, y.due_date, &y.number)),
                        _ => (x.due_date, x.issue_date, &x.number).cmp(&(
                            y.due_date,
                            y.issue_date,
                            &y.number,
                        )),
                    }
                });
                for i in idx {
                    if left == 0 {
                        break;
                    }
                    let item = &mut items[i];
                    let take = left.min(item.open);
                    item.open -= take;
                    left -= take;
                    applied.push((item.number.clone(), take));
                }
            }
        }
    }
    AllocationPlan {
        applied,
        unapplied: left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn item(n: &str, due_day: i8, open: i64) -> OpenItem {
        OpenItem {
            number: n.into(),
            issue_date: date(2024, 1, 1),
            due_date: date(2024, 2, due_day),
            open,
        }
    }

    #[test]
    fn oldest_due_first_with_leftover_credit() {
        let mut items = vec![item("B", 20, 300), item("A", 10, 200), item("C", 25, 1000)];
        let plan = allocate(600, &mut items, &[], AllocationOrder::OldestDueFirst);
        assert_eq!(
            plan.applied,
            vec![
                ("A".to_string(), 200),
                ("B".to_string(), 300),
                ("C".to_string(), 100)
            ]
        );
        assert_eq!(plan.unapplied, 0);
        let plan = allocate(1000, &mut items, &[], AllocationOrder::OldestDueFirst);
        assert_eq!(plan.applied, vec![("C".to_string(), 900)]);
        assert_eq!(plan.unapplied, 100);
    }

    #[test]
    fn preferred_invoices_come_first_and_exact_match_only_matches() {
        let mut items = vec![item("A", 10, 200), item("B", 20, 300)];
        let plan = allocate(
            250,
            &mut items,
            &["B".to_string()],
            AllocationOrder::OldestDueFirst,
        );
        assert_eq!(plan.applied, vec![("B".to_string(), 250)]);
        let mut items = vec![item("A", 10, 200), item("B", 20, 300)];
        assert_eq!(
            allocate(300, &mut items, &[], AllocationOrder::ExactAmountOnly).applied,
            vec![("B".to_string(), 300)]
        );
        assert_eq!(
            allocate(10, &mut items, &[], AllocationOrder::ExactAmountOnly).unapplied,
            10
        );
    }

    proptest! {
        #[test]
        fn allocations_never_exceed_balances_or_the_payment(
            opens in prop::collection::vec(0i64..10_000, 0..12),
            amount in 0i64..50_000,
            order in prop::sample::select(vec![AllocationOrder::OldestDueFirst, AllocationOrder::OldestIssuedFirst, AllocationOrder::ExactAmountOnly]),
            prefer in prop::collection::vec(0usize..12, 0..3),
        ) {
            let mut items: Vec<OpenItem> = opens.iter().enumerate().map(|(i, &o)| OpenItem {
                number: format!("INV{i}"), issue_date: date(2024, 1, 1 + (i as i8 % 20)), due_date: date(2024, 3, 1 + ((i * 7) as i8 % 28)), open: o,
            }).collect();
            let before = items.clone();
            let preferred: Vec<String> = prefer.iter().map(|i| format!("INV{i}")).collect();
            let plan = allocate(amount, &mut items, &preferred, order);
            let total: i64 = plan.applied.iter().map(|(_, a)| a).sum();
            prop_assert_eq!(total + plan.unapplied, amount);
            prop_assert!(plan.unapplied >= 0);
            for (n, a) in &plan.applied {
                prop_assert!(*a > 0);
                let b = before.iter().find(|i| &i.number == n).unwrap();
                let taken: i64 = plan.applied.iter().filter(|(m, _)| m == n).map(|(_, a)| a).sum();
                prop_assert!(taken <= b.open);
            }
            for (b, a) in before.iter().zip(&items) {
                prop_assert!(a.open >= 0 && a.open <= b.open);
            }
            let open_before: i64 = before.iter().map(|i| i.open).sum();
            if order != AllocationOrder::ExactAmountOnly && amount <= open_before {
                prop_assert_eq!(plan.unapplied, 0);
            }
        }
    }
}
