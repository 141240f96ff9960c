//! The variables a reminder template sees (documented in `templates/README.md`).

use arflow_domain::dunning::records::MessageInvoice;
use arflow_domain::money::Currency;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::locale::{Lang, format_date, format_money};

/// Who sends the reminders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Who owes the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    pub external_id: String,
}

/// The person addressed, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: Option<String>,
}

/// Links the message may offer. All optional: templates render without them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    pub pay_url: Option<String>,
    pub portal_url: Option<String>,
    pub unsubscribe_url: Option<String>,
}

/// One invoice as a template sees it. Amounts come twice: formatted for the
/// message's language (`open`) and as integer minor units (`open_minor`) for
/// comparisons in templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub number: String,
    pub issue_date: String,
    pub issue_date_iso: String,
    pub due_date: String,
    pub due_date_iso: String,
    /// Days past the due date; 0 on the due date, negative before it.
    pub days_overdue: i64,
    /// Days left until the due date; 0 once it is due.
    pub days_until_due: i64,
    pub open: String,
    pub open_minor: i64,
    pub fee: String,
    pub fee_minor: i64,
    pub interest: String,
    pub interest_minor: i64,
    pub compensation: String,
    pub compensation_minor: i64,
    /// fee + interest + compensation.
    pub charges: String,
    pub charges_minor: i64,
    /// open + charges.
    pub total_due: String,
    pub total_due_minor: i64,
}

/// Sums over all invoices of the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub open: String,
    pub open_minor: i64,
    pub fees: String,
    pub fees_minor: i64,
    pub interest: String,
    pub interest_minor: i64,
    pub compensation: String,
    pub compensation_minor: i64,
    /// fees + interest + compensation.
    pub charges: String,
    pub charges_minor: i64,
    /// open + charges: what the customer is asked to pay.
    pub total_due: String,
    pub total_due_minor: i64,
    /// The largest `days_overdue` among the invoices.
    pub max_days_overdue: i64,
}

/// Everything a reminder template can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContext {
    /// The template language ("en", "de", "fr", "es").
    pub language: Lang,
    /// The BCP 47 tag the message was asked for ("de-AT").
    pub locale: String,
    pub organization: Organization,
    pub customer: Customer,
    pub contact: Contact,
    /// ISO 4217 code of every amount in the message.
    pub currency: String,
    /// Ordered by due date, then number.
    pub invoices: Vec<InvoiceLine>,
    pub totals: Totals,
    pub today: String,
    pub today_iso: String,
    pub links: Links,
}

/// What the dunning service knows when it queues a message.
#[derive(Debug, Clone)]
pub struct ContextInput<'a> {
    pub organization: Organization,
    pub customer: Customer,
    pub contact: Contact,
    pub currency: Currency,
    /// BCP 47 tag; unsupported languages fall back to English.
    pub locale: &'a str,
    /// The day the message is written, in the organization's zone.
    pub today: Date,
    pub invoices: &'a [MessageInvoice],
    pub links: Links,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("a message needs at least one invoice")]
    NoInvoices,
    #[error("the amounts of invoice {invoice} overflow when added up")]
    Overflow { invoice: String },
    #[error("the message's totals overflow when added up")]
    TotalsOverflow,
}

impl MessageContext {
    pub fn new(input: ContextInput<'_>) -> Result<MessageContext, ContextError> {
        if input.invoices.is_empty() {
            return Err(ContextError::NoInvoices);
        }
        let lang = Lang::from_tag(input.locale);
        let currency = input.currency;
        let money = |minor: i64| format_money(minor, currency, lang);

        let mut sorted: Vec<&MessageInvoice> = input.invoices.iter().collect();
        sorted.sort_by(|a, b| (a.due_date, &a.number).cmp(&(b.due_date, &b.number)));

        let mut sums = [0i64; 4]; // open, fees, interest, compensation
        let mut max_days_overdue = i64::MIN;
        let mut invoices = Vec::with_capacity(sorted.len());
        for inv in sorted {
            let overflow = || ContextError::Overflow {
                invoice: inv.number.clone(),
            };
            let charges = inv
                .fee
                .checked_add(inv.interest)
                .and_then(|s| s.checked_add(inv.compensation))
                .ok_or_else(overflow)?;
            let total_due = inv.open.checked_add(charges).ok_or_else(overflow)?;
            for (sum, add) in
                sums.iter_mut()
                    .zip([inv.open, inv.fee, inv.interest, inv.compensation])
            {
                *sum = sum.checked_add(add).ok_or_else(overflow)?;
            }
            max_days_overdue = max_days_overdue.max(inv.days_overdue);
            invoices.push(InvoiceLine {
                number: inv.number.clone(),
                issue_date: format_date(inv.issue_date, lang),
                issue_date_iso: inv.issue_date.to_string(),
                due_date: format_date(inv.due_date, lang),
                due_date_iso: inv.due_date.to_string(),
                days_overdue: inv.days_overdue,
                days_until_due: inv.days_overdue.saturating_neg().max(0),
                open: money(inv.open),
                open_minor: inv.open,
                fee: money(inv.fee),
                fee_minor: inv.fee,
                interest: money(inv.interest),
                interest_minor: inv.interest,
                compensation: money(inv.compensation),
                compensation_minor: inv.compensation,
                charges: money(charges),
                charges_minor: charges,
                total_due: money(total_due),
                total_due_minor: total_due,
            });
        }
        let [open, fees, interest, compensation] = sums;
        let charges = fees
            .checked_add(interest)
            .and_then(|s| s.checked_add(compensation))
            .ok_or(ContextError::TotalsOverflow)?;
        let total_due = open
            .checked_add(charges)
            .ok_or(ContextError::TotalsOverflow)?;

        Ok(MessageContext {
            language: lang,
            locale: input.locale.to_string(),
            organization: input.organization,
            customer: input.customer,
            contact: input.contact,
            currency: currency.code().to_string(),
            invoices,
            totals: Totals {
                open: money(open),
                open_minor: open,
                fees: money(fees),
                fees_minor: fees,
                interest: money(interest),
                interest_minor: interest,
                compensation: money(compensation),
                compensation_minor: compensation,
                charges: money(charges),
                charges_minor: charges,
                total_due: money(total_due),
                total_due_minor: total_due,
                max_days_overdue,
            },
            today: format_date(input.today, lang),
            today_iso: input.today.to_string(),
            links: input.links,
        })
    }
}

#[cfg(test)]
// Amounts in cents are grouped as money is written: 1_234_56 is 1,234.56.
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn invoice(number: &str, due: Date, open: i64, fee: i64) -> MessageInvoice {
        MessageInvoice {
            number: number.to_string(),
            issue_date: date(2026, 10, 1),
            due_date: due,
            open,
            days_overdue: 10,
            fee,
            interest: 0,
            compensation: 0,
        }
    }

    fn input<'a>(invoices: &'a [MessageInvoice], locale: &'a str) -> ContextInput<'a> {
        ContextInput {
            organization: Organization {
                name: "Org".into(),
                email: None,
                phone: None,
            },
            customer: Customer {
                name: "C".into(),
                external_id: "c1".into(),
            },
            contact: Contact::default(),
            currency: Currency::EUR,
            locale,
            today: date(2026, 12, 3),
            invoices,
            links: Links::default(),
        }
    }

    #[test]
    fn sorts_sums_and_formats() {
        let invs = [
            invoice("B", date(2026, 11, 20), 100_00, 5_00),
            invoice("A", date(2026, 11, 1), 1_000_00, 0),
        ];
        let ctx = MessageContext::new(input(&invs, "de-AT")).expect("context");
        assert_eq!(ctx.language, Lang::De);
        assert_eq!(ctx.invoices[0].number, "A");
        assert_eq!(ctx.invoices[0].due_date, "01.11.2026");
        assert_eq!(ctx.totals.open_minor, 1_100_00);
        assert_eq!(ctx.totals.total_due, "1.105,00\u{a0}€");
        assert_eq!(ctx.invoices[1].total_due_minor, 105_00);
        assert_eq!(ctx.today, "03.12.2026");
    }

    #[test]
    fn rejects_empty_and_overflow() {
        assert_eq!(
            MessageContext::new(input(&[], "en")),
            Err(ContextError::NoInvoices)
        );
        let invs = [invoice("X", date(2026, 1, 1), i64::MAX, 1)];
        assert!(matches!(
            MessageContext::new(input(&invs, "en")),
            Err(ContextError::Overflow { .. })
        ));
    }
}
