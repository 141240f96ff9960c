//! One customer's history: invoices, how and when they were paid, disputes,
//! credit notes, write-offs.
//!
//! Payments are built so that importing payments.csv (each payment settling
//! its listed invoices first, the rest oldest-due-first, any leftover staying
//! unapplied) re-creates exactly these allocations, whether credit notes are
//! imported before or after payments:
//! - a payment covering several invoices settles each of them completely, and
//!   is the only payment those invoices ever get (none carries a credit note);
//! - a credit note goes to one disputed invoice and never exceeds what is open
//!   on it, whatever the order;
//! - a payment keeps an unapplied leftover only when, at its place in date
//!   order, payments alone have fully settled every invoice of the customer
//!   (void and written-off ones never are), so there is nothing for the
//!   leftover to go to;
//! - written-off invoices are written off in full and get no payments.
//!
//! So the import may process payments and credit notes in date order (as
//! docs/csv-schema.md says) or file by file: the result is the same.

use arflow_domain::model::{
    Allocation, AllocationSource, ChannelPreferences, Contact, CreditNote, Invoice, InvoiceStatus,
    Payment,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::calendar::Calendar;
use crate::customers::{CustomerPlan, Segment};
use crate::geo::PhoneStyle;
use crate::rng::{days, lognormal, normal, pick, pick_weighted};
use crate::words::{DISPUTE_REASONS, FIRST_NAMES, SURNAMES};
use crate::{CustomerLedger, PaymentProfile};

/// Where invoice, payment and credit-note numbers continue from.
pub(crate) struct Counters {
    /// Next invoice number for each issue day, so numbers follow issue dates across customers.
    pub day_cursor: Vec<u64>,
    pub next_payment: u64,
    pub next_credit: u64,
    pub invoice_width: usize,
    pub payment_width: usize,
    pub credit_width: usize,
}

pub(crate) const SOURCE: &str = "demo";

struct Inv {
    number: String,
    issue: i32,
    due: i32,
    total: i64,
    tax: i64,
    status: InvoiceStatus,
    status_day: i32,
    disputed: bool,
}

#[derive(Clone, Copy)]
struct PayEvent {
    day: i32,
    inv: usize,
    amount: i64,
    /// A single payment of the whole invoice, which may be batched with others.
    mergeable: bool,
}

struct CreditEvent {
    day: i32,
    inv: usize,
    amount: i64,
    reason: &'static str,
}

struct PaymentPlan {
    day: i32,
    items: Vec<(usize, i64)>,
    extra: i64,
}

/// Days after the due date the customer pays; None: never.
fn days_late(rng: &mut ChaCha8Rng, plan: &CustomerPlan) -> Option<i32> {
    let terms = plan.terms;
    Some(match plan.profile {
        PaymentProfile::Prompt if plan.customer.autopay => 0,
        PaymentProfile::Prompt if terms == 0 => rng.random_range(0..=4),
        PaymentProfile::Prompt => days(normal(rng, -3.0, 3.0)).clamp(-terms, 0),
        PaymentProfile::SteadyLate => days(normal(rng, 15.0, 3.5)).clamp(7, 28),
        PaymentProfile::Erratic => {
            if rng.random_bool(0.04) {
                return None;
            }
            if rng.random_bool(0.55) {
                days(normal(rng, 2.0, 8.0)).clamp(-15, 30)
            } else {
                days(lognormal(rng, 28.0, 0.6)).clamp(5, 200)
            }
        }
        PaymentProfile::ChronicLate => {
            if rng.random_bool(0.12) {
                return None;
            }
            45 + days(75.0 * rng.random::<f64>().powf(1.3))
        }
        PaymentProfile::Disputer => days(normal(rng, 6.0, 5.0)).clamp(-3, 25),
    })
}

/// Share of invoices paid in two instalments, and the chance the second never comes.
fn partial_rates(profile: PaymentProfile) -> (f64, f64) {
    match profile {
        PaymentProfile::Prompt => (0.01, 0.0),
        PaymentProfile::SteadyLate => (0.05, 0.05),
        PaymentProfile::Erratic => (0.10, 0.2),
        PaymentProfile::ChronicLate => (0.12, 0.35),
        PaymentProfile::Disputer => (0.04, 0.05),
    }
}

fn dispute_rate(profile: PaymentProfile) -> f64 {
    match profile {
        PaymentProfile::Disputer => 0.3,
        PaymentProfile::Prompt => 0.0,
        _ => 0.01,
    }
}

fn ascii_lower(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'á' | 'à' | 'â' | 'ä' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' => Some('e'),
            'í' | 'ï' => Some('i'),
            'ó' | 'ö' | 'ô' => Some('o'),
            'ú' | 'ü' => Some('u'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn phone(rng: &mut ChaCha8Rng, plan: &CustomerPlan) -> Option<String> {
    match plan.country.phone {
        PhoneStyle::Nanp => {
            let area = *pick(rng, plan.zone.areas);
            Some(format!("+1{area}55501{:02}", rng.random_range(0..100)))
        }
        PhoneStyle::Gb => Some(format!("+447700900{:03}", rng.random_range(0..1000))),
        PhoneStyle::Fr => Some(format!("+3363998{:04}", rng.random_range(0..10_000))),
        PhoneStyle::Au => {
            let prefix = *pick(rng, plan.zone.areas);
            Some(format!("+61{prefix}{:04}", rng.random_range(0..10_000)))
        }
        PhoneStyle::None => None,
    }
}

fn contacts(rng: &mut ChaCha8Rng, plan: &CustomerPlan) -> Vec<Contact> {
    let cust = &plan.customer.external_id;
    let n = match plan.segment {
        Segment::Enterprise => rng.random_range(2..=4),
        Segment::MidMarket => rng.random_range(1..=3),
        Segment::SmallBusiness => rng.random_range(1..=2),
    };
    let mut out: Vec<Contact> = Vec::with_capacity(n);
    for k in 0..n {
        let (name, local, role) =
            if k == 0 && plan.segment != Segment::SmallBusiness && rng.random_bool(0.7) {
                (
                    "Accounts Payable".to_string(),
                    "ap".to_string(),
                    "accounts payable",
                )
            } else {
                let first = pick(rng, FIRST_NAMES);
                let last = pick(rng, SURNAMES);
                let role = match (plan.segment, k) {
                    (Segment::SmallBusiness, 0) => "owner",
                    (_, 0) => "accounts payable",
                    _ => *pick(
                        rng,
                        &["billing", "controller", "finance", "billing", "procurement"],
                    ),
                };
                (
                    format!("{first} {last}"),
                    format!("{}.{}", ascii_lower(first), ascii_lower(last)),
                    role,
                )
            };
        let mut email = format!("{local}@{}", plan.domain);
        // Two contacts can draw the same name: keep emails (the default contact key) distinct.
        if out
            .iter()
            .any(|c| c.email.as_deref() == Some(email.as_str()))
        {
            email = format!("{local}{}@{}", k + 1, plan.domain);
        }
        let phone = if rng.random_bool(0.6) {
            phone(rng, plan)
        } else {
            None
        };
        let preferences = ChannelPreferences {
            email_opt_out: rng.random_bool(0.03),
            sms_consent: phone.is_some() && rng.random_bool(0.35),
            sms_opt_out: rng.random_bool(0.02),
            call_opt_out: rng.random_bool(0.03),
        };
        out.push(Contact {
            customer: cust.clone(),
            external_id: format!("{cust}-C{}", k + 1),
            name,
            email: Some(email),
            phone,
            role: Some(role.to_string()),
            is_primary: k == 0,
            preferences,
        });
    }
    out
}

fn reference(rng: &mut ChaCha8Rng, method: &str, day: i32, check_no: &mut u64) -> Option<String> {
    Some(match method {
        "check" | "cheque" => {
            *check_no += 1;
            format!("CHK {check_no}")
        }
        "wire" => format!("FT{:05}{:06}", day, rng.random_range(0..1_000_000)),
        "ach" | "eft" => format!("{:015}", rng.random_range(0..1_000_000_000_000_000u64)),
        "sepa" | "bacs" | "faster payments" | "bpay" => format!(
            "RF{:02}{:010}",
            rng.random_range(10..100),
            rng.random_range(0..10_000_000_000u64)
        ),
        "card" => format!("card ****{:04}", rng.random_range(0..10_000)),
        _ => return None,
    })
}

/// Simulates customer `plan` with invoices issued on `issue_days` (sorted).
pub(crate) fn simulate(
    plan: CustomerPlan,
    issue_days: &[u16],
    mut rng: ChaCha8Rng,
    cal: &Calendar,
    counters: &mut Counters,
) -> CustomerLedger {
    let today = cal.today;
    let contacts = contacts(&mut rng, &plan);
    let cust_id = plan.customer.external_id.clone();
    let currency = plan.customer.currency;
    let unit = currency.minor_per_major();
    let (partial_rate, rest_never_rate) = partial_rates(plan.profile);
    let mut po = plan.po.clone();

    let mut invs: Vec<Inv> = Vec::with_capacity(issue_days.len());
    let mut po_numbers: Vec<Option<String>> = Vec::with_capacity(issue_days.len());
    let mut events: Vec<PayEvent> = Vec::with_capacity(issue_days.len() + 8);
    let mut credits: Vec<CreditEvent> = Vec::new();

    for &day in issue_days {
        let issue = i32::from(day);
        let due = issue + plan.terms;
        let slot = &mut counters.day_cursor[day as usize];
        *slot += 1;
        let number = format!("INV-{:0w$}", *slot, w = counters.invoice_width);

        // Log-normal net amount around the customer's scale; a third are whole units.
        let mut net = lognormal(&mut rng, plan.scale_minor, 0.75).clamp(unit as f64, 1e12) as i64;
        if unit > 1 && rng.random_bool(0.3) {
            net = (net / unit).max(1) * unit;
        }
        // Tax rounds half up to the minor unit; all-integer so totals are exact.
        let tax = (net * plan.tax_bp + 5_000) / 10_000;
        let total = net + tax;
        po_numbers.push(po.as_mut().and_then(|p| {
            rng.random_bool(p.share).then(|| {
                p.next += rng.random_range(1..40);
                format!("{}{:0w$}", p.prefix, p.next, w = p.width)
            })
        }));
        let i = invs.len();
        let mut inv = Inv {
            number,
            issue,
            due,
            total,
            tax,
            status: InvoiceStatus::Open,
            status_day: 0,
            disputed: false,
        };

        if rng.random_bool(0.012) {
            inv.status = InvoiceStatus::Void;
            inv.status_day = (issue + rng.random_range(0..=10)).min(today);
            invs.push(inv);
            continue;
        }

        // Some balance will never be paid: candidate for a write-off.
        let mut abandoned = false;
        if total >= 2 && rng.random_bool(dispute_rate(plan.profile)) {
            let disputed_part =
                ((total as f64 * rng.random_range(0.1..0.4)) as i64).clamp(1, total - 1);
            let resolve = cal.business_day(due + rng.random_range(20..=110), issue);
            let mut paid_first = 0;
            if rng.random_bool(0.5) {
                // Pays the undisputed part on time-ish, holds back the rest.
                let p1 = cal.business_day(
                    (due + days(normal(&mut rng, 5.0, 5.0)).clamp(-3, 15)).max(issue),
                    issue,
                );
                if p1 <= today && p1 < resolve {
                    events.push(PayEvent {
                        day: p1,
                        inv: i,
                        amount: total - disputed_part,
                        mergeable: false,
                    });
                    paid_first = total - disputed_part;
                }
            }
            if resolve <= today {
                let credit = if rng.random_bool(0.7) {
                    disputed_part
                } else {
                    (disputed_part / 2).max(1)
                };
                credits.push(CreditEvent {
                    day: resolve,
                    inv: i,
                    amount: credit,
                    reason: DISPUTE_REASONS[rng.random_range(0..DISPUTE_REASONS.len())],
                });
                let rest = total - credit - paid_first;
                let p2 = cal.business_day(resolve + rng.random_range(0..=15), issue);
                if rest > 0 && p2 <= today {
                    events.push(PayEvent {
                        day: p2,
                        inv: i,
                        amount: rest,
                        mergeable: false,
                    });
                }
            } else {
                inv.disputed = true;
            }
            invs.push(inv);
            continue;
        }

        match days_late(&mut rng, &plan) {
            Some(late) => {
                let pay = cal.business_day((due + late).max(issue), issue);
                if total >= 2 && rng.random_bool(partial_rate) {
                    let first =
                        ((total as f64 * rng.random_range(0.3..0.7)) as i64).clamp(1, total - 1);
                    if pay <= today {
                        events.push(PayEvent {
                            day: pay,
                            inv: i,
                            amount: first,
                            mergeable: false,
                        });
                    }
                    if rng.random_bool(rest_never_rate) {
                        abandoned = true;
                    } else {
                        let p2 = cal.business_day(pay + rng.random_range(14..=75), issue);
                        if p2 <= today {
                            events.push(PayEvent {
                                day: p2,
                                inv: i,
                                amount: total - first,
                                mergeable: false,
                            });
                        }
                    }
                } else if pay <= today {
                    events.push(PayEvent {
                        day: pay,
                        inv: i,
                        amount: total,
                        mergeable: true,
                    });
                }
            }
            None => {
                abandoned = true;
                // Some pay a token amount before going silent.
                if total >= 2 && rng.random_bool(0.3) {
                    let pay = cal.business_day(due + rng.random_range(20..=90), issue);
                    if pay <= today {
                        let part = ((total as f64 * rng.random_range(0.1..0.5)) as i64)
                            .clamp(1, total - 1);
                        events.push(PayEvent {
                            day: pay,
                            inv: i,
                            amount: part,
                            mergeable: false,
                        });
                    }
                }
            }
        }
        if abandoned && due + 150 <= today && rng.random_bool(0.7) {
            let wo = cal.business_day(due + rng.random_range(150..=330), issue);
            if wo <= today {
                inv.status = InvoiceStatus::WrittenOff;
                inv.status_day = wo;
                // Written off in full: whether an import would apply a payment to a
                // written-off invoice is not pinned down, so such invoices get none.
                while events.last().is_some_and(|e| e.inv == i) {
                    events.pop();
                }
            }
        }
        invs.push(inv);
    }

    // Group whole-invoice payments into payment runs; everything else is paid alone.
    events.sort_by_key(|e| (e.day, e.inv));
    let mut payments: Vec<PaymentPlan> = Vec::with_capacity(events.len());
    let mut consumed = vec![false; events.len()];
    for k in 0..events.len() {
        if consumed[k] {
            continue;
        }
        let e = events[k];
        let mut p = PaymentPlan {
            day: e.day,
            items: vec![(e.inv, e.amount)],
            extra: 0,
        };
        if e.mergeable {
            let (limit, span) = if plan.batch_payer {
                (4, 10)
            } else if rng.random_bool(0.06) {
                (2, 6)
            } else {
                (1, 0)
            };
            // Take the next whole-invoice payments within `span` days; look only a
            // few events ahead so a customer with huge volume stays linear.
            let end = events.len().min(k + 1 + 32);
            for j in k + 1..end {
                if p.items.len() >= limit || events[j].day - e.day > span {
                    break;
                }
                if events[j].mergeable && !consumed[j] {
                    consumed[j] = true;
                    p.items.push((events[j].inv, events[j].amount));
                    p.day = p.day.max(events[j].day);
                }
            }
        }
        payments.push(p);
    }
    payments.sort_by_key(|p| (p.day, p.items[0].0));

    // Overpayments: a few at random, and often the last cheque of a customer who left.
    let n_pay = payments.len();
    for (idx, p) in payments.iter_mut().enumerate() {
        let last_of_churned = plan.churned && idx + 1 == n_pay && rng.random_bool(0.5);
        if last_of_churned || rng.random_bool(0.01) {
            let base: i64 = p.items.iter().map(|(_, a)| a).sum();
            p.extra = ((base as f64 * rng.random_range(0.02..0.2)) as i64).max(1);
        }
    }
    // Replay in file order: keep a leftover only where the import would leave it unapplied.
    let mut paid = vec![0i64; invs.len()];
    // Void and written-off invoices count as open too: they never get payments, and
    // whether an import would apply a leftover to them is not ours to guess.
    let mut open_count = invs.len();
    for p in &mut payments {
        for &(i, a) in &p.items {
            paid[i] += a;
            if paid[i] == invs[i].total {
                open_count -= 1;
            }
        }
        if open_count > 0 {
            p.extra = 0;
        }
    }

    let date = |d: i32| cal.date(d);
    let mut allocations = Vec::with_capacity(events.len() + credits.len());
    credits.sort_by_key(|c| (c.day, c.inv));
    let mut credit_notes = Vec::with_capacity(credits.len());
    for c in &credits {
        counters.next_credit += 1;
        let number = format!("CN-{:0w$}", counters.next_credit, w = counters.credit_width);
        allocations.push(Allocation {
            invoice: invs[c.inv].number.clone(),
            source: AllocationSource::CreditNote(number.clone()),
            amount: c.amount,
            applied_on: date(c.day),
        });
        credit_notes.push(CreditNote {
            number,
            customer: cust_id.clone(),
            external_id: None,
            source: SOURCE.to_string(),
            issue_date: date(c.day),
            currency,
            total: c.amount,
            reason: Some(c.reason.to_string()),
        });
    }
    let mut check_no = rng.random_range(1000..9000);
    let mut out_payments = Vec::with_capacity(payments.len());
    for p in &payments {
        counters.next_payment += 1;
        let id = format!(
            "PAY-{:0w$}",
            counters.next_payment,
            w = counters.payment_width
        );
        let method = if rng.random_bool(0.9) {
            plan.method
        } else {
            pick_weighted(&mut rng, plan.country.methods)
        };
        let reference = reference(&mut rng, method, p.day, &mut check_no);
        for &(i, a) in &p.items {
            allocations.push(Allocation {
                invoice: invs[i].number.clone(),
                source: AllocationSource::Payment(id.clone()),
                amount: a,
                applied_on: date(p.day),
            });
        }
        out_payments.push(Payment {
            external_id: id,
            customer: cust_id.clone(),
            source: SOURCE.to_string(),
            received_on: date(p.day),
            currency,
            amount: p.items.iter().map(|(_, a)| a).sum::<i64>() + p.extra,
            method: Some(method.to_string()),
            reference,
            payer_name: Some(plan.payer_name.clone()),
        });
    }

    let invoices = invs
        .into_iter()
        .zip(po_numbers)
        .map(|(v, po_number)| Invoice {
            number: v.number,
            customer: cust_id.clone(),
            external_id: None,
            source: SOURCE.to_string(),
            issue_date: date(v.issue),
            due_date: date(v.due),
            currency,
            total: v.total,
            tax: v.tax,
            po_number,
            status: v.status,
            status_date: (v.status != InvoiceStatus::Open).then(|| date(v.status_day)),
            disputed: v.disputed,
            paperless: plan.paperless,
        })
        .collect();

    CustomerLedger {
        customer: plan.customer,
        profile: plan.profile,
        contacts,
        invoices,
        credit_notes,
        payments: out_payments,
        allocations,
    }
}
