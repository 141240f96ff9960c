//! Header recognition: arflow's native column names plus the names QuickBooks
//! Online and Xero use in their CSV exports, so those files import as they come.

use std::str::FromStr;

use serde::Serialize;

/// The kind of record a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    Customers,
    Contacts,
    Invoices,
    CreditNotes,
    Payments,
}

impl RecordKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordKind::Customers => "customers",
            RecordKind::Contacts => "contacts",
            RecordKind::Invoices => "invoices",
            RecordKind::CreditNotes => "credit-notes",
            RecordKind::Payments => "payments",
        }
    }
}

impl FromStr for RecordKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "customers" => Ok(RecordKind::Customers),
            "contacts" => Ok(RecordKind::Contacts),
            "invoices" => Ok(RecordKind::Invoices),
            "credit-notes" | "creditnotes" => Ok(RecordKind::CreditNotes),
            "payments" => Ok(RecordKind::Payments),
            other => Err(format!(
                "unknown record kind '{other}' (expected customers, contacts, invoices, credit-notes or payments)"
            )),
        }
    }
}

/// Where a file's layout comes from; decides default date formats and the `source` recorded on invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Native,
    QuickBooks,
    Xero,
    Mapping,
}

macro_rules! fields {
    ($($v:ident = $n:literal),* $(,)?) => {
        /// Every field any kind can read. Used as an index into resolved columns.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field { $($v),* }
        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$v),*];
            pub fn name(self) -> &'static str { match self { $(Field::$v => $n),* } }
            pub fn from_name(s: &str) -> Option<Field> {
                let n = normalize(s);
                Field::ALL.iter().copied().find(|f| normalize(f.name()) == n)
            }
        }
    };
}

fields! {
    CustomerId = "customer_id", Name = "name", Currency = "currency", Segment = "segment", Tags = "tags",
    Country = "country", TimeZone = "time_zone", Locale = "locale", PaymentTermsDays = "payment_terms_days",
    CreditLimit = "credit_limit", Collector = "collector", Autopay = "autopay",
    ContactId = "contact_id", FirstName = "first_name", LastName = "last_name", Email = "email", Phone = "phone",
    Role = "role", Primary = "primary", EmailOptOut = "email_opt_out", SmsConsent = "sms_consent",
    SmsOptOut = "sms_opt_out", CallOptOut = "call_opt_out",
    InvoiceNumber = "invoice_number", IssueDate = "issue_date", DueDate = "due_date", Total = "total", Tax = "tax",
    PoNumber = "po_number", ExternalId = "external_id", Status = "status", StatusDate = "status_date",
    Disputed = "disputed", Paperless = "paperless", PaidDate = "paid_date", SettledDate = "settled_date",
    AmountPaid = "amount_paid", OpenBalance = "open_balance", TransactionType = "transaction_type",
    CustomerName = "customer_name", CustomerCountry = "customer_country",
    CreditNoteNumber = "credit_note_number", Reason = "reason",
    PaymentId = "payment_id", ReceivedOn = "received_on", Amount = "amount", Method = "method",
    Reference = "reference", PayerName = "payer_name",
}

pub const FIELD_COUNT: usize = Field::ALL.len();

/// Header normalization: case-insensitive; spaces, `-`, `_`, `.`, `/`, `#` ignored.
pub fn normalize(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '.' | '/' | '#' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

use Field as F;

/// (field, required, accepted normalized header names). The first name is the native one.
pub fn spec(kind: RecordKind) -> &'static [(Field, bool, &'static [&'static str])] {
    const CUST: &[&str] = &[
        "customerid",
        "customer",
        "contactname",
        "customerfullname",
        "customername",
    ];
    match kind {
        RecordKind::Customers => &[
            // QBO's customer list and Xero's contacts key customers by name: the name is the key.
            (
                F::CustomerId,
                true,
                &["customerid", "customer", "contactname", "customerfullname"],
            ),
            (
                F::Name,
                false,
                &["name", "displayname", "company", "companyname"],
            ),
            (
                F::Currency,
                false,
                &["currency", "currencycode", "defaultcurrency"],
            ),
            (F::Segment, false, &["segment"]),
            (F::Tags, false, &["tags"]),
            (
                F::Country,
                false,
                &["country", "pocountry", "billingcountry"],
            ),
            (F::TimeZone, false, &["timezone"]),
            (F::Locale, false, &["locale"]),
            (
                F::PaymentTermsDays,
                false,
                &["paymenttermsdays", "termsdays"],
            ),
            (F::CreditLimit, false, &["creditlimit"]),
            (F::Collector, false, &["collector"]),
            (F::Autopay, false, &["autopay"]),
        ],
        RecordKind::Contacts => &[
            (F::CustomerId, true, CUST),
            (F::ContactId, false, &["contactid"]),
            (F::Name, false, &["name", "contactperson", "fullname"]),
            (F::FirstName, false, &["firstname"]),
            (F::LastName, false, &["lastname"]),
            (F::Email, false, &["email", "emailaddress"]),
            (F::Phone, false, &["phone", "phonenumber"]),
            (F::Role, false, &["role"]),
            (F::Primary, false, &["primary", "isprimary"]),
            (F::EmailOptOut, false, &["emailoptout"]),
            (F::SmsConsent, false, &["smsconsent"]),
            (F::SmsOptOut, false, &["smsoptout"]),
            (F::CallOptOut, false, &["calloptout"]),
        ],
        RecordKind::Invoices => &[
            (
                F::InvoiceNumber,
                true,
                &[
                    "invoicenumber",
                    "num",
                    "no",
                    "number",
                    "invoiceno",
                    "docnumber",
                    "refnumber",
                ],
            ),
            (F::CustomerId, true, CUST),
            (
                F::IssueDate,
                true,
                &["issuedate", "invoicedate", "date", "txndate"],
            ),
            (F::DueDate, false, &["duedate"]),
            (F::Currency, false, &["currency", "currencycode"]),
            (
                F::Total,
                true,
                &["total", "amount", "invoiceamount", "totalamount"],
            ),
            (F::Tax, false, &["tax", "taxtotal", "totaltax"]),
            (F::PoNumber, false, &["ponumber"]),
            (F::ExternalId, false, &["externalid", "invoiceid"]),
            (F::Status, false, &["status"]),
            (F::StatusDate, false, &["statusdate"]),
            (F::Disputed, false, &["disputed"]),
            (F::Paperless, false, &["paperless", "paperlessbill"]),
            (F::PaidDate, false, &["paiddate", "fullypaidondate"]),
            (F::SettledDate, false, &["settleddate"]),
            (F::AmountPaid, false, &["amountpaid", "invoiceamountpaid"]),
            (
                F::OpenBalance,
                false,
                &[
                    "openbalance",
                    "balance",
                    "balancedue",
                    "amountdue",
                    "invoiceamountdue",
                ],
            ),
            (F::TransactionType, false, &["transactiontype", "type"]),
            (F::CustomerName, false, &[]),
            (F::CustomerCountry, false, &["customercountry"]),
        ],
        RecordKind::CreditNotes => &[
            (
                F::CreditNoteNumber,
                true,
                &[
                    "creditnotenumber",
                    "creditnoteno",
                    "num",
                    "no",
                    "number",
                    "docnumber",
                ],
            ),
            (F::CustomerId, true, CUST),
            (
                F::IssueDate,
                true,
                &["issuedate", "date", "creditnotedate", "txndate"],
            ),
            (F::Currency, false, &["currency", "currencycode"]),
            (F::Total, true, &["total", "amount"]),
            (F::Reason, false, &["reason", "memo"]),
            (F::ExternalId, false, &["externalid", "creditnoteid"]),
            (F::InvoiceNumber, false, &["invoicenumber", "appliedto"]),
            (F::TransactionType, false, &["transactiontype", "type"]),
        ],
        RecordKind::Payments => &[
            (F::PaymentId, false, &["paymentid", "externalid"]),
            (F::CustomerId, true, CUST),
            (
                F::ReceivedOn,
                true,
                &[
                    "receivedon",
                    "date",
                    "paymentdate",
                    "receiveddate",
                    "txndate",
                ],
            ),
            (F::Currency, false, &["currency", "currencycode"]),
            (F::Amount, true, &["amount", "paymentamount", "total"]),
            (F::Method, false, &["method", "paymentmethod"]),
            (F::Reference, false, &["reference", "ref", "refno"]),
            (F::PayerName, false, &["payername"]),
            (
                F::InvoiceNumber,
                false,
                &["invoicenumber", "invoices", "appliedto"],
            ),
            (F::TransactionType, false, &["transactiontype", "type"]),
        ],
    }
}

/// Columns resolved once per file: for each field, the index of its column.
#[derive(Debug, Clone)]
pub struct Columns {
    pub index: [Option<usize>; FIELD_COUNT],
    pub headers: Vec<String>,
    pub ignored: Vec<String>,
    pub layout: Layout,
}

impl Columns {
    pub fn get(&self, f: Field) -> Option<usize> {
        self.index[f as usize]
    }

    /// "DueDate (due_date)" or "due_date": how errors name a column.
    pub fn label(&self, f: Field) -> String {
        match self.get(f).and_then(|i| self.headers.get(i)) {
            Some(h) if h == f.name() => h.clone(),
            Some(h) => format!("{h} ({})", f.name()),
            None => f.name().to_string(),
        }
    }
}

/// Guesses the exporting system from its characteristic headers.
pub fn detect_layout(normalized: &[String]) -> Layout {
    let has = |n: &str| normalized.iter().any(|h| h == n);
    if has("contactname") || has("invoiceamountdue") || has("pocountry") {
        Layout::Xero
    } else if has("transactiontype") || has("openbalance") || (has("num") && has("customer")) {
        Layout::QuickBooks
    } else {
        Layout::Native
    }
}

/// Resolves header names to fields. `explicit` maps fields to header names (from a mapping file);
/// everything else is matched by native names and aliases. Returns the missing required fields as Err.
pub fn resolve(
    kind: RecordKind,
    headers: Vec<String>,
    explicit: &[(Field, String)],
) -> Result<Columns, Vec<Field>> {
    let normalized: Vec<String> = headers.iter().map(|h| normalize(h)).collect();
    let mut index = [None; FIELD_COUNT];
    let mut used = vec![false; headers.len()];
    for (f, h) in explicit {
        let n = normalize(h);
        if let Some(i) = normalized.iter().position(|x| *x == n) {
            index[*f as usize] = Some(i);
            used[i] = true;
        }
    }
    let spec = spec(kind);
    // Native names beat aliases: two passes so "amount" in a payments file is not taken by another field.
    for (f, _, names) in spec {
        if index[*f as usize].is_some() {
            continue;
        }
        for name in names.iter() {
            if let Some(i) = normalized
                .iter()
                .enumerate()
                .position(|(i, x)| x == name && !used[i])
            {
                index[*f as usize] = Some(i);
                used[i] = true;
                break;
            }
        }
    }
    let ignored = headers
        .iter()
        .zip(&used)
        .filter(|(h, u)| !**u && !h.trim().is_empty())
        .map(|(h, _)| h.clone())
        .collect();
    let layout = if explicit.is_empty() {
        detect_layout(&normalized)
    } else {
        Layout::Mapping
    };
    let cols = Columns {
        index,
        headers,
        ignored,
        layout,
    };
    Ok(cols).and_then(|c: Columns| {
        let missing: Vec<Field> = spec
            .iter()
            .filter(|(f, req, _)| *req && c.get(*f).is_none())
            .map(|(f, _, _)| *f)
            .collect();
        if missing.is_empty() {
            Ok(c)
        } else {
            Err(missing)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn quickbooks_and_xero_invoice_headers_resolve() {
        let c = resolve(
            RecordKind::Invoices,
            h(&[
                "Date",
                "Transaction type",
                "Num",
                "Customer",
                "Due date",
                "Amount",
                "Open balance",
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(c.layout, Layout::QuickBooks);
        assert_eq!(c.get(Field::InvoiceNumber), Some(2));
        assert_eq!(c.get(Field::OpenBalance), Some(6));
        let c = resolve(
            RecordKind::Invoices,
            h(&[
                "ContactName",
                "EmailAddress",
                "InvoiceNumber",
                "Reference",
                "InvoiceDate",
                "DueDate",
                "Total",
                "TaxTotal",
                "InvoiceAmountPaid",
                "InvoiceAmountDue",
                "Currency",
                "Status",
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(c.layout, Layout::Xero);
        assert_eq!(c.get(Field::CustomerId), Some(0));
        assert_eq!(c.ignored, vec!["EmailAddress", "Reference"]);
    }

    #[test]
    fn missing_required_fields_are_reported() {
        let e = resolve(
            RecordKind::Payments,
            h(&["\u{feff}Customer ID", "amount"]),
            &[],
        )
        .unwrap_err();
        assert_eq!(e, vec![Field::ReceivedOn]);
        assert_eq!(
            "credit-notes".parse::<RecordKind>(),
            Ok(RecordKind::CreditNotes)
        );
    }
}
