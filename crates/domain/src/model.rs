//! The receivables ledger's records, as a business writes them down.
//!
//! Records refer to each other by natural keys (customer external id, invoice
//! number, payment external id) so the same structs serve imports, storage and
//! reports. Storage assigns numeric ids, carried by [`Stored`].

use std::ops::Deref;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::money::Currency;

/// A record as stored: its database id and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored<T> {
    pub id: i64,
    #[serde(flatten)]
    pub record: T,
}

impl<T> Deref for Stored<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.record
    }
}

/// A tenant. One default organization is created on first start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub base_currency: Currency,
    /// IANA zone used for "today" in reports and for the business calendar.
    pub time_zone: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The key in the source system (QuickBooks/Xero id, account number...).
    pub external_id: String,
    pub name: String,
    pub segment: Option<String>,
    pub tags: Vec<String>,
    /// ISO 3166-1 alpha-2 country code, or the source's own code when it has no mapping.
    pub country: Option<String>,
    /// IANA time zone such as "Europe/Berlin"; reminders are timed in it.
    pub time_zone: Option<String>,
    /// BCP 47 language tag such as "en-US" or "de".
    pub locale: Option<String>,
    pub currency: Currency,
    /// Net days granted when an invoice comes without a due date.
    pub payment_terms_days: Option<u16>,
    /// Credit limit in minor units of `currency`.
    pub credit_limit: Option<i64>,
    /// Who collects from this customer.
    pub collector: Option<String>,
    /// Pays by direct debit/card on file: no pre-due reminders.
    pub autopay: bool,
}

/// Per-channel permissions of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChannelPreferences {
    pub email_opt_out: bool,
    /// SMS may only be sent with recorded consent.
    pub sms_consent: bool,
    pub sms_opt_out: bool,
    pub call_opt_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Customer external id.
    pub customer: String,
    /// Key of the contact within the organization (source id, else the email, else customer+name).
    pub external_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// e.g. "billing", "accounts payable", "owner".
    pub role: Option<String>,
    pub is_primary: bool,
    pub preferences: ChannelPreferences,
}

/// Stored invoice state. "Paid" is not stored: it is derived from allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    Void,
    WrittenOff,
}

impl InvoiceStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Void => "void",
            InvoiceStatus::WrittenOff => "written_off",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceStatus> {
        match s {
            "open" => Some(InvoiceStatus::Open),
            "void" => Some(InvoiceStatus::Void),
            "written_off" => Some(InvoiceStatus::WrittenOff),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Invoice number, unique within the organization.
    pub number: String,
    /// Customer external id.
    pub customer: String,
    pub external_id: Option<String>,
    /// Where the record came from ("csv", "quickbooks", "xero", "ibm-ar"...).
    pub source: String,
    pub issue_date: Date,
    pub due_date: Date,
    pub currency: Currency,
    /// Gross total in minor units, tax included.
    pub total: i64,
    /// Tax part of `total`, in minor units.
    pub tax: i64,
    pub po_number: Option<String>,
    pub status: InvoiceStatus,
    /// When the invoice was voided or written off; needed to report as of earlier dates.
    pub status_date: Option<Date>,
    /// The customer disputed this invoice (as recorded by the source).
    pub disputed: bool,
    /// Delivered electronically rather than on paper, when known.
    pub paperless: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNote {
    pub number: String,
    pub customer: String,
    pub external_id: Option<String>,
    pub source: String,
    pub issue_date: Date,
    pub currency: Currency,
    /// Positive amount in minor units.
    pub total: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Key of the payment (source id, or a deterministic hash of the source row).
    pub external_id: String,
    pub customer: String,
    pub source: String,
    pub received_on: Date,
    pub currency: Currency,
    /// Positive amount in minor units.
    pub amount: i64,
    pub method: Option<String>,
    pub reference: Option<String>,
    pub payer_name: Option<String>,
}

/// What an allocation draws on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
pub enum AllocationSource {
    /// Payment external id.
    Payment(String),
    /// Credit note number.
    CreditNote(String),
}

/// Part of a payment or credit note applied to one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub invoice: String,
    pub source: AllocationSource,
    /// Positive amount in minor units of the invoice's currency.
    pub amount: i64,
    pub applied_on: Date,
}

/// A dated record of a change; the log is append-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub recorded_at: Timestamp,
    /// Who made the change: "import:<file>", "cli", a user name.
    pub actor: String,
    /// e.g. "invoice.created", "invoice.updated", "payment.created".
    pub kind: String,
    pub entity_type: String,
    pub entity_key: String,
    /// Customer external id the change concerns, for the customer timeline.
    pub customer: Option<String>,
    pub summary: String,
    pub data: serde_json::Value,
}
