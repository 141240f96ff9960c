//! A seeded synthetic ledger for the prediction tests: customers with their
//! own payment level, disputes, paperless delivery, mixed terms and
//! currencies, partial payments, write-offs, voids, reminders and promises.

use jiff::civil::Date;

use super::data::{ExtraFacts, InvoiceAttributes, Promise, PromiseOutcome, Reminder};
use super::gbdt::SplitMix64;
use super::{date_from_day, day_number};
use crate::fx::{FxRate, FxTable, Rate};
use crate::ledger::{
    AllocationFact, BaseConverter, Closure, CustomerFact, InvoiceFact, LedgerFacts,
};
use crate::money::Currency;

pub(crate) struct Synth {
    pub facts: LedgerFacts,
    pub extra: ExtraFacts,
}

pub(crate) fn fx() -> FxTable {
    FxTable::new([FxRate {
        from: Currency::EUR,
        to: Currency::USD,
        valid_on: jiff::civil::date(2000, 1, 1),
        rate: Rate::parse("1.1").expect("rate"),
    }])
}

pub(crate) fn conv(table: &FxTable) -> BaseConverter<'_> {
    BaseConverter {
        base: Currency::USD,
        table,
    }
}

fn d(day: i32) -> Date {
    date_from_day(day).expect("date in range")
}

/// `customers` customers issuing about one invoice every `gap` days each
/// over `days` days from `start`.
pub(crate) fn synth(customers: usize, days: i32, gap: i32, seed: u64, start: Date) -> Synth {
    let mut rng = SplitMix64::new(seed);
    let mut facts = LedgerFacts {
        base_currency: Currency::USD,
        customers: Vec::new(),
        invoices: Vec::new(),
        allocations: Vec::new(),
    };
    let mut extra = ExtraFacts::default();
    let s0 = day_number(start);
    for c in 0..customers {
        let id = c as i64 + 1;
        facts.customers.push(CustomerFact {
            id,
            external_id: format!("C{id}"),
            name: format!("Customer {id}"),
            segment: Some(if c % 3 == 0 { "enterprise" } else { "smb" }.to_string()),
        });
        let level = 5.0 + rng.next_f64() * 55.0;
        let paperless_from = s0 + (rng.next_f64() * f64::from(days)) as i32;
        let euro = c % 7 == 3;
        let terms = [14, 30, 30, 45][c % 4];
        let mut day = s0 + (rng.next_f64() * f64::from(gap)) as i32;
        while day < s0 + days {
            let inv_id = facts.invoices.len() as i64 + 1;
            let disputed = rng.next_f64() < 0.15;
            let paperless = day >= paperless_from;
            let noise = (rng.next_f64() + rng.next_f64() + rng.next_f64() - 1.5) * level * 0.4;
            let t = (level + if disputed { 15.0 } else { 0.0 } - if paperless { 5.0 } else { 0.0 }
                + noise)
                .max(0.0)
                .round() as i32;
            let total = 1_000 + (rng.next_f64() * rng.next_f64() * 500_000.0) as i64;
            let due = day + terms;
            let mut closed = None;
            let roll = rng.next_f64();
            let paid_on = day + t;
            if roll < 0.01 {
                closed = Some((d(due + 90), Closure::WrittenOff));
            } else if roll < 0.02 {
                closed = Some((d(day + 3), Closure::Void));
            } else if roll < 0.12 {
                // Partial payment first, the rest on the settlement day.
                let first = paid_on - 1 - (rng.next_f64() * 5.0) as i32;
                let part = total / 3;
                facts.allocations.push(AllocationFact {
                    invoice_id: inv_id,
                    applied_on: d(first.max(day)),
                    amount: part,
                    from_credit_note: roll < 0.05,
                });
                facts.allocations.push(AllocationFact {
                    invoice_id: inv_id,
                    applied_on: d(paid_on),
                    amount: total - part,
                    from_credit_note: false,
                });
            } else {
                facts.allocations.push(AllocationFact {
                    invoice_id: inv_id,
                    applied_on: d(paid_on),
                    amount: total,
                    from_credit_note: false,
                });
            }
            facts.invoices.push(InvoiceFact {
                id: inv_id,
                customer_id: id,
                issue_date: d(day),
                due_date: d(due),
                currency: if euro { Currency::EUR } else { Currency::USD },
                total,
                closed,
            });
            extra.invoices.push(InvoiceAttributes {
                invoice_id: inv_id,
                disputed_on: disputed.then(|| d(day + (rng.next_f64() * 5.0) as i32)),
                paperless: if c % 5 == 4 { None } else { Some(paperless) },
            });
            if closed.is_none() && paid_on > due + 7 {
                extra.dunning.reminders.push(Reminder {
                    invoice_id: inv_id,
                    sent_on: d(due + 7),
                });
                if paid_on > due + 10 {
                    let promised = due + 20;
                    extra.dunning.promises.push(Promise {
                        invoice_id: inv_id,
                        made_on: d(due + 10),
                        promised_for: d(promised),
                        outcome: Some(if paid_on <= promised {
                            (d(paid_on), PromiseOutcome::Kept)
                        } else {
                            (d(promised + 1), PromiseOutcome::Broken)
                        }),
                    });
                }
            }
            day += 1 + (rng.next_f64() * f64::from(2 * gap)) as i32;
        }
    }
    Synth { facts, extra }
}
