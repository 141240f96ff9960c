//! One CSV record → one arflow record, with every bad cell reported.

use std::borrow::Cow;

use arflow_domain::model::{
    ChannelPreferences, Contact, CreditNote, Customer, Invoice, InvoiceStatus, Payment,
};
use arflow_domain::money::{Currency, DecimalStyle};
use csv::ByteRecord;
use jiff::civil::Date;

use crate::error::RowError;
use crate::header::{Columns, Field};
use crate::mapping::Mapping;
use crate::values::{DateFormat, parse_amount, parse_bool, parse_currency, parse_date};

/// Per-file settings every row needs, resolved once.
pub struct RowCtx<'a> {
    pub cols: &'a Columns,
    pub mapping: &'a Mapping,
    pub date_formats: &'a [DateFormat],
    pub decimal: DecimalStyle,
    pub source: &'a str,
    pub today: Date,
}

/// A record being read, with its errors collected rather than returned one by one.
pub struct RowView<'a> {
    pub ctx: &'a RowCtx<'a>,
    pub rec: &'a ByteRecord,
    pub line: u64,
    pub errors: Vec<RowError>,
    /// The whole record as text when it is valid UTF-8: one check per row instead of one
    /// per cell. Cells are sliced from it; a cell that cannot be is checked on its own.
    text: Option<&'a str>,
}

impl<'a> RowView<'a> {
    pub fn new(ctx: &'a RowCtx<'a>, rec: &'a ByteRecord, line: u64) -> Self {
        RowView {
            ctx,
            rec,
            line,
            errors: Vec::new(),
            text: std::str::from_utf8(rec.as_slice()).ok(),
        }
    }

    pub fn error(&mut self, f: Field, value: &str, message: impl Into<String>) {
        let value: String = if value.len() > 200 {
            format!("{}…", value.chars().take(100).collect::<String>())
        } else {
            value.to_string()
        };
        self.errors.push(RowError {
            line: self.line,
            column: self.ctx.cols.label(f),
            value,
            message: message.into(),
        });
    }

    /// The trimmed cell for `f` after value maps, or the mapping's constant; None when empty.
    #[inline]
    pub fn get(&mut self, f: Field) -> Option<Cow<'a, str>> {
        let range = self.ctx.cols.get(f).and_then(|i| self.rec.range(i));
        // Most fields a kind knows are absent from a given file: answer those inline.
        if range.is_none() && self.ctx.mapping.constants.is_empty() {
            return None;
        }
        self.cell(f, range)
    }

    fn cell(&mut self, f: Field, range: Option<std::ops::Range<usize>>) -> Option<Cow<'a, str>> {
        let rec: &'a ByteRecord = self.rec;
        let rec_text: Option<&'a str> = match range {
            Some(r) => {
                let bytes = &rec.as_slice()[r.clone()];
                // A slice of valid UTF-8 at char boundaries is valid UTF-8.
                let checked = match self.text.and_then(|t| t.get(r)) {
                    Some(s) => Ok(s),
                    None => std::str::from_utf8(bytes),
                };
                match checked {
                    // Control characters (NUL above all, which PostgreSQL refuses
                    // in text) are never data: reject them here, on their line.
                    Ok(s)
                        if s.bytes()
                            .any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) =>
                    {
                        let shown = s.escape_default().to_string();
                        self.error(f, &shown, "contains a control character");
                        return None;
                    }
                    Ok(s) => Some(trim(s)).filter(|s| !s.is_empty()),
                    Err(_) => {
                        let lossy = String::from_utf8_lossy(bytes).into_owned();
                        self.error(f, &lossy, "not valid UTF-8 (save the file as UTF-8)");
                        return None;
                    }
                }
            }
            None => None,
        };
        let text = match rec_text {
            Some(t) => t,
            None => {
                return self
                    .ctx
                    .mapping
                    .constants
                    .iter()
                    .find(|(k, _)| *k == f)
                    .map(|(_, v)| Cow::Owned(v.clone()));
            }
        };
        if let Some((_, pairs)) = self.ctx.mapping.values.iter().find(|(k, _)| *k == f) {
            // Exact match first, then case-insensitive.
            if let Some((_, to)) = pairs.iter().find(|(from, _)| from == text).or_else(|| {
                pairs
                    .iter()
                    .find(|(from, _)| from.eq_ignore_ascii_case(text))
            }) {
                return Some(Cow::Owned(to.clone()));
            }
        }
        Some(Cow::Borrowed(text))
    }

    pub fn text(&mut self, f: Field) -> Option<String> {
        self.get(f).map(Cow::into_owned)
    }

    pub fn required(&mut self, f: Field) -> Option<Cow<'a, str>> {
        let v = self.get(f);
        if v.is_none()
            && !self
                .errors
                .iter()
                .any(|e| e.column == self.ctx.cols.label(f))
        {
            self.error(f, "", "required value is missing");
        }
        v
    }

    pub fn date(&mut self, f: Field) -> Option<Date> {
        let v = self.get(f)?;
        match parse_date(&v, self.ctx.date_formats) {
            Ok(d) => Some(d),
            Err(m) => {
                self.error(f, &v, m);
                None
            }
        }
    }

    pub fn bool(&mut self, f: Field) -> Option<bool> {
        let v = self.get(f)?;
        match parse_bool(&v) {
            Ok(b) => Some(b),
            Err(m) => {
                self.error(f, &v, m);
                None
            }
        }
    }

    pub fn currency(&mut self, f: Field) -> Option<Currency> {
        let v = self.get(f)?;
        match parse_currency(&v) {
            Ok(c) => Some(c),
            Err(m) => {
                self.error(f, &v, m);
                None
            }
        }
    }

    pub fn amount(&mut self, f: Field, currency: Currency) -> Option<i64> {
        let v = self.get(f)?;
        match parse_amount(&v, currency, self.ctx.decimal) {
            Ok(a) => Some(a),
            Err(m) => {
                self.error(f, &v, m);
                None
            }
        }
    }

    /// True when every cell is empty (such rows are skipped, like trailing blank lines).
    pub fn is_blank(&self) -> bool {
        self.rec
            .iter()
            .all(|c| c.iter().all(|b| b.is_ascii_whitespace()))
    }
}

/// `str::trim`, skipping the Unicode whitespace scan when both ends are plain ASCII
/// (every byte above the space and below 0x80 is not whitespace).
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&z)) if (b'!'..0x80).contains(&a) && (b'!'..0x80).contains(&z) => s,
        _ => s.trim(),
    }
}

/// Lower-cased alphanumerics of `s` (what status and type names are compared by), without
/// allocating when `s` is short ASCII, as it nearly always is.
fn squash<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 32];
    let mut n = 0;
    if s.is_ascii() {
        for b in s.bytes().filter(u8::is_ascii_alphanumeric) {
            if n == buf.len() {
                n = usize::MAX;
                break;
            }
            buf[n] = b.to_ascii_lowercase();
            n += 1;
        }
        if n != usize::MAX {
            // ASCII in, ASCII out.
            return f(std::str::from_utf8(&buf[..n]).unwrap_or_default());
        }
    }
    let n: String = s
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    f(&n)
}

/// Invoice status as written by arflow, QuickBooks or Xero. `None` = skip the row (drafts).
pub enum SourceStatus {
    Open,
    Paid,
    Void,
    WrittenOff,
    Draft,
}

pub fn parse_status(s: &str) -> Option<SourceStatus> {
    squash(s, status_of)
}

fn status_of(n: &str) -> Option<SourceStatus> {
    Some(match n {
        "open" | "awaitingpayment" | "authorised" | "authorized" | "submitted" | "sent"
        | "overdue" | "partial" | "partiallypaid" | "due" | "unpaid" => SourceStatus::Open,
        "paid" | "closed" => SourceStatus::Paid,
        "void" | "voided" | "deleted" | "cancelled" | "canceled" => SourceStatus::Void,
        "writtenoff" | "writeoff" | "baddebt" => SourceStatus::WrittenOff,
        "draft" => SourceStatus::Draft,
        _ => return None,
    })
}

/// Rows of another transaction type (QBO "Payment" lines in an invoice list, Xero credit notes) are skipped.
pub fn type_matches(row: &mut RowView<'_>, wanted: &[&str]) -> bool {
    match row.get(Field::TransactionType) {
        None => true,
        Some(t) => squash(&t, |n| wanted.contains(&n)),
    }
}

pub const INVOICE_TYPES: &[&str] = &["invoice", "salesinvoice", "accrec", "taxinvoice"];
pub const CREDIT_TYPES: &[&str] = &[
    "creditnote",
    "creditmemo",
    "salescreditnote",
    "accreccredit",
];
pub const PAYMENT_TYPES: &[&str] = &[
    "payment",
    "receivepayment",
    "receivedpayment",
    "customerpayment",
];

pub fn customer(row: &mut RowView<'_>, default_currency: Currency) -> Option<Customer> {
    let key = row.required(Field::CustomerId).map(Cow::into_owned);
    let name = row.text(Field::Name);
    let currency = if row.ctx.cols.get(Field::Currency).is_some()
        || row
            .ctx
            .mapping
            .constants
            .iter()
            .any(|(f, _)| *f == Field::Currency)
    {
        row.currency(Field::Currency)
    } else {
        Some(default_currency)
    };
    let currency = currency
        .or(row.ctx.mapping.currency)
        .unwrap_or(default_currency);
    let tags = row
        .get(Field::Tags)
        .map(|t| {
            t.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let terms = row
        .get(Field::PaymentTermsDays)
        .and_then(|v| match v.parse::<u16>() {
            Ok(d) if d <= 3650 => Some(d),
            _ => {
                let v = v.into_owned();
                row.error(
                    Field::PaymentTermsDays,
                    &v,
                    "not a number of days between 0 and 3650",
                );
                None
            }
        });
    let credit_limit = row.amount(Field::CreditLimit, currency);
    let c = Customer {
        external_id: key.clone()?,
        // QBO/Xero key customers by name: the name defaults to the key.
        name: name.or(key)?,
        segment: row.text(Field::Segment),
        tags,
        country: row.text(Field::Country),
        time_zone: row.text(Field::TimeZone),
        locale: row.text(Field::Locale),
        currency,
        payment_terms_days: terms,
        credit_limit,
        collector: row.text(Field::Collector),
        autopay: row.bool(Field::Autopay).unwrap_or(false),
    };
    row.errors.is_empty().then_some(c)
}

pub fn contact(row: &mut RowView<'_>) -> Option<Contact> {
    let customer = row.required(Field::CustomerId).map(Cow::into_owned);
    let email = row.text(Field::Email);
    let name = row.text(Field::Name).or_else(|| {
        let parts: Vec<String> = [row.text(Field::FirstName), row.text(Field::LastName)]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let name = match name.or_else(|| email.clone()) {
        Some(n) => n,
        None => {
            row.error(
                Field::Name,
                "",
                "required value is missing (give name, first/last name or email)",
            );
            return None;
        }
    };
    let customer = customer?;
    let external_id = row
        .text(Field::ContactId)
        .or_else(|| email.clone())
        .unwrap_or_else(|| format!("{customer}:{name}"));
    let c = Contact {
        customer,
        external_id,
        name,
        email,
        phone: row.text(Field::Phone),
        role: row.text(Field::Role),
        is_primary: row.bool(Field::Primary).unwrap_or(false),
        preferences: ChannelPreferences {
            email_opt_out: row.bool(Field::EmailOptOut).unwrap_or(false),
            sms_consent: row.bool(Field::SmsConsent).unwrap_or(false),
            sms_opt_out: row.bool(Field::SmsOptOut).unwrap_or(false),
            call_opt_out: row.bool(Field::CallOptOut).unwrap_or(false),
        },
    };
    row.errors.is_empty().then_some(c)
}

/// A known customer's currency and payment terms.
pub type CustomerInfo = (Currency, Option<u16>);

/// What an invoice row says about money already received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    None,
    /// Fully settled on this date (`paid_date`/`settled_date`).
    Settled(Date),
    /// This much has been paid in total, as of `on` (from amount paid / open balance / status paid).
    Paid {
        amount: i64,
        on: Date,
    },
}

pub struct InvoiceRow {
    pub invoice: Invoice,
    /// The status date was defaulted to the import date (keep a stored one instead).
    pub status_date_defaulted: bool,
    pub settlement: Settlement,
    /// Name and country for a customer created from this row.
    pub customer_name: Option<String>,
    pub customer_country: Option<String>,
}

/// Parses an invoice row. `customer_info(key)` gives the customer's currency and terms, if known.
pub fn invoice(
    row: &mut RowView<'_>,
    customer_info: &dyn Fn(&str) -> Option<CustomerInfo>,
    create_customers: bool,
    fallback_currency: Currency,
) -> Option<InvoiceRow> {
    let number = row.required(Field::InvoiceNumber).map(Cow::into_owned);
    let customer = row.required(Field::CustomerId).map(Cow::into_owned);
    let issue = row.date(Field::IssueDate);
    if issue.is_none() && row.get(Field::IssueDate).is_none() {
        row.required(Field::IssueDate);
    }
    let info = customer.as_deref().and_then(customer_info);
    if let Some(c) = &customer
        && info.is_none()
        && !create_customers
    {
        let c = c.clone();
        row.error(
            Field::CustomerId,
            &c,
            "unknown customer (import customers first, or set create_customers in a mapping)",
        );
    }
    let currency = match row.currency(Field::Currency) {
        Some(c) => c,
        None => info
            .map(|i| i.0)
            .or(row.ctx.mapping.currency)
            .unwrap_or(fallback_currency),
    };
    let total = row.amount(Field::Total, currency);
    if total.is_none() && row.get(Field::Total).is_none() {
        row.required(Field::Total);
    }
    let tax = row.amount(Field::Tax, currency).unwrap_or(0);
    if let Some(t) = total
        && tax > t
    {
        row.error(
            Field::Tax,
            &arflow_domain::money::format_minor(tax, currency),
            "tax is larger than the total",
        );
    }
    let due = row.date(Field::DueDate);
    let due = match (due, issue) {
        (Some(d), Some(i)) if d < i => {
            row.error(
                Field::DueDate,
                &d.to_string(),
                format!("due date is before the issue date {i}"),
            );
            None
        }
        (Some(d), _) => Some(d),
        (None, Some(i)) => {
            let days = info.and_then(|i| i.1).unwrap_or(30);
            i.checked_add(jiff::Span::new().days(i64::from(days))).ok()
        }
        (None, None) => None,
    };
    let status_text = row.get(Field::Status);
    let status = match status_text.as_deref() {
        None => SourceStatus::Open,
        Some(s) => match parse_status(s) {
            Some(st) => st,
            None => {
                row.error(
                    Field::Status,
                    s,
                    "unknown status (expected open, paid, void or written_off)",
                );
                SourceStatus::Open
            }
        },
    };
    if matches!(status, SourceStatus::Draft) {
        return None;
    }
    let status_date = row.date(Field::StatusDate);
    let paid_date = row
        .date(Field::PaidDate)
        .or_else(|| row.date(Field::SettledDate));
    let amount_paid = row.amount(Field::AmountPaid, currency);
    let open_balance = row.amount(Field::OpenBalance, currency);
    let disputed = row.bool(Field::Disputed).unwrap_or(false);
    let paperless = row.bool(Field::Paperless);
    let customer_name = row.text(Field::CustomerName);
    let customer_country = row.text(Field::CustomerCountry);
    let po_number = row.text(Field::PoNumber);
    let external_id = row.text(Field::ExternalId);
    if !row.errors.is_empty() {
        return None;
    }
    let (number, customer, issue_date, due_date, total) =
        (number?, customer?, issue?, due?, total?);
    let paid_from_balance = match (amount_paid, open_balance) {
        (Some(p), _) => Some((p, Field::AmountPaid)),
        (None, Some(o)) => Some((total - o, Field::OpenBalance)),
        (None, None) => None,
    };
    let settlement = match (paid_date, paid_from_balance, &status) {
        (Some(d), _, _) => Settlement::Settled(d),
        (None, Some((p, f)), _) => {
            if p < 0 {
                let v = row.get(f).map(Cow::into_owned).unwrap_or_default();
                row.error(f, &v, "the open balance is larger than the invoice total");
                return None;
            }
            if p > total {
                let v = row.get(f).map(Cow::into_owned).unwrap_or_default();
                row.error(f, &v, "the amount paid is larger than the invoice total");
                return None;
            }
            if p > 0 {
                Settlement::Paid {
                    amount: p,
                    on: row.ctx.today,
                }
            } else {
                Settlement::None
            }
        }
        (None, None, SourceStatus::Paid) => Settlement::Paid {
            amount: total,
            on: row.ctx.today,
        },
        _ => Settlement::None,
    };
    let (status, status_date_defaulted) = match status {
        SourceStatus::Void => (InvoiceStatus::Void, status_date.is_none()),
        SourceStatus::WrittenOff => (InvoiceStatus::WrittenOff, status_date.is_none()),
        _ => (InvoiceStatus::Open, false),
    };
    let status_date = match status {
        InvoiceStatus::Open => status_date,
        _ => status_date.or(Some(row.ctx.today)),
    };
    Some(InvoiceRow {
        invoice: Invoice {
            number,
            customer,
            external_id,
            source: row.ctx.source.to_string(),
            issue_date,
            due_date,
            currency,
            total,
            tax,
            po_number,
            status,
            status_date,
            disputed,
            paperless,
        },
        status_date_defaulted,
        settlement,
        customer_name,
        customer_country,
    })
}

/// The customer key of a credit-note or payment row and that customer's
/// currency; an unknown customer is reported on the row.
fn known_customer(
    row: &mut RowView<'_>,
    customer_currency: &dyn Fn(&str) -> Option<Currency>,
) -> (Option<String>, Option<Currency>) {
    let customer = row.required(Field::CustomerId).map(Cow::into_owned);
    let cc = customer.as_deref().and_then(customer_currency);
    if let (Some(c), None) = (&customer, cc) {
        let c = c.clone();
        row.error(
            Field::CustomerId,
            &c,
            "unknown customer (import customers first)",
        );
    }
    (customer, cc)
}

/// A required date column: parse errors are reported by `date`, a missing value here.
fn required_date(row: &mut RowView<'_>, field: Field) -> Option<jiff::civil::Date> {
    let d = row.date(field);
    if d.is_none() && row.get(field).is_none() {
        row.required(field);
    }
    d
}

/// A required amount that must be more than zero.
fn required_positive_amount(
    row: &mut RowView<'_>,
    field: Field,
    currency: Currency,
    what: &str,
) -> Option<i64> {
    let a = row.amount(field, currency);
    if a.is_none() && row.get(field).is_none() {
        row.required(field);
    }
    if a == Some(0) {
        row.error(field, "0", format!("{what} must be more than 0"));
    }
    a
}

pub fn credit_note(
    row: &mut RowView<'_>,
    customer_currency: &dyn Fn(&str) -> Option<Currency>,
    fallback: Currency,
) -> Option<(CreditNote, Option<String>)> {
    let number = row.required(Field::CreditNoteNumber).map(Cow::into_owned);
    let (customer, cc) = known_customer(row, customer_currency);
    let issue = required_date(row, Field::IssueDate);
    let currency = row
        .currency(Field::Currency)
        .or(cc)
        .or(row.ctx.mapping.currency)
        .unwrap_or(fallback);
    let total = required_positive_amount(row, Field::Total, currency, "a credit note total");
    let reason = row.text(Field::Reason);
    let external_id = row.text(Field::ExternalId);
    let invoice = row.text(Field::InvoiceNumber);
    if !row.errors.is_empty() {
        return None;
    }
    Some((
        CreditNote {
            number: number?,
            customer: customer?,
            external_id,
            source: row.ctx.source.to_string(),
            issue_date: issue?,
            currency,
            total: total?,
            reason,
        },
        invoice,
    ))
}

/// A payment row; `external_id` is empty when the file has no payment id (the caller hashes the row).
pub fn payment(
    row: &mut RowView<'_>,
    customer_currency: &dyn Fn(&str) -> Option<Currency>,
    fallback: Currency,
) -> Option<(Payment, Vec<String>)> {
    let id = row.text(Field::PaymentId);
    let (customer, cc) = known_customer(row, customer_currency);
    let date = required_date(row, Field::ReceivedOn);
    let currency = row
        .currency(Field::Currency)
        .or(cc)
        .or(row.ctx.mapping.currency)
        .unwrap_or(fallback);
    let amount = required_positive_amount(row, Field::Amount, currency, "a payment amount");
    let invoices = row
        .get(Field::InvoiceNumber)
        .map(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let method = row.text(Field::Method);
    let reference = row.text(Field::Reference);
    let payer_name = row.text(Field::PayerName);
    if !row.errors.is_empty() {
        return None;
    }
    Some((
        Payment {
            external_id: id.unwrap_or_default(),
            customer: customer?,
            source: row.ctx.source.to_string(),
            received_on: date?,
            currency,
            amount: amount?,
            method,
            reference,
            payer_name,
        },
        invoices,
    ))
}
