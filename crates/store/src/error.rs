//! Storage errors. Constraint violations are mapped to what they mean.

use std::fmt;

use arflow_domain::money::Currency;

use crate::events::Minor;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not open the database: {0}")]
    Open(String),
    #[error("database migration {version} failed: {message}")]
    Migration { version: i64, message: String },
    /// A named constraint rejected a write; `message` says what rule was broken.
    #[error("{message}")]
    Constraint { constraint: String, message: String },
    /// A record refers to another by a key that does not exist.
    #[error("unknown {entity} '{key}'")]
    UnknownReference { entity: &'static str, key: String },
    /// Applying a change set would allocate more to an invoice than its total,
    /// or more from a payment or credit note than its amount. Amounts are in
    /// minor units of `currency`; `entity` is "invoice", "payment" or "credit note".
    #[error(
        "allocations {} {entity} {key} would total {} {currency} but it is only {} {currency}",
        if *.entity == "invoice" { "to" } else { "from" },
        Minor(*.allocated, *.currency),
        Minor(*.limit, *.currency)
    )]
    OverAllocated {
        entity: &'static str,
        key: String,
        currency: Currency,
        allocated: i64,
        limit: i64,
    },
    /// An allocation would apply a payment or credit note (`entity` "payment"
    /// or "credit note", key `key`) to an invoice in another currency.
    #[error(
        "{entity} {key} is in {currency} but invoice {invoice} is in {invoice_currency}: an allocation must be in the invoice's currency"
    )]
    CurrencyMismatch {
        invoice: String,
        invoice_currency: Currency,
        entity: &'static str,
        key: String,
        currency: Currency,
    },
    /// The record is not in a state that allows the change (ending a hold
    /// that already ended, a second open dispute on one invoice...).
    #[error("{0}")]
    Conflict(String),
    #[error("{entity} #{id} was not found in this organization")]
    NotFound { entity: &'static str, id: i64 },
    /// Stored data could not be read back (corrupt or written by a newer version).
    #[error("stored {what} is invalid: {message}")]
    Corrupt { what: String, message: String },
    #[error("database error: {0}")]
    Database(String),
}

/// Maps the names of our constraints (see the migrations) to plain-language rules.
pub fn constraint_message(constraint: &str) -> String {
    let rule = match constraint {
        "customers_org_external_id_key" => "a customer with this external id already exists",
        "contacts_org_external_id_key" => "a contact with this external id already exists",
        "invoices_org_number_key" => "an invoice with this number already exists",
        "credit_notes_org_number_key" => "a credit note with this number already exists",
        "organizations_slug_key" => "an organization with this slug already exists",
        "payments_org_external_id_key" => "a payment with this external id already exists",
        "invoices_due_after_issue" => "an invoice's due date cannot be before its issue date",
        "invoices_total_nonnegative" => "an invoice total cannot be negative",
        "invoices_tax_within_total" => "an invoice's tax must be between 0 and its total",
        "invoices_status_known" => "invoice status must be open, void or written_off",
        "credit_notes_total_positive" => "a credit note total must be positive",
        "payments_amount_positive" => "a payment amount must be positive",
        "allocations_amount_positive" => "an allocation amount must be positive",
        "fx_rates_rate_positive" => "an exchange rate must be positive",
        "fx_rates_rate_range" => "an exchange rate must be below 9,223,372",
        "allocations_one_source" => "an allocation must draw on exactly one payment or credit note",
        "policies_org_name_key" => "a policy with this name already exists",
        "policy_assignments_org_scope_key" => {
            "this invoice, customer or segment already has a policy assigned"
        }
        "policy_assignments_scope_known" => {
            "a policy is assigned to an invoice, a customer or a segment"
        }
        "holds_one_scope" => "a hold covers exactly one customer or one invoice",
        "disputes_one_open_key" => "an invoice can have only one open dispute",
        "promises_one_scope" => "a promise covers exactly one customer or one invoice",
        "promises_amount_currency" => "a promised amount needs its currency",
        "promises_amount_positive" => "a promised amount must be positive",
        "promises_grace_days_nonnegative" => "a promise's grace days cannot be negative",
        "dunning_steps_once" => "this dunning step is already recorded for the invoice",
        "outbox_messages_org_key_key" => "a message with this key is already in the outbox",
        "outbox_messages_status_known" => {
            "message status must be queued, claimed, sending, sent, in_doubt, failed or cancelled"
        }
        "outbox_messages_channel_known" => "a message's channel must be email, sms or task",
        "outbox_messages_attempts_nonnegative" => "a message's attempts cannot be negative",
        "tasks_org_key_key" => "a task with this key already exists",
        "tasks_kind_known" => {
            "task kind must be step, unreachable, bounce, broken_promise, in_doubt, delivery_failed or alert"
        }
        "tasks_status_known" => "task status must be open or done",
        "models_org_version_key" => "a model with this version already exists",
        "models_version_positive" => "model versions start at 1",
        "charges_org_key_key" => "a charge with this key already exists",
        "charges_kind_known" => "charge kind must be late_fee, interest or compensation",
        "charges_amount_nonnegative" => "a charge amount cannot be negative",
        "bounces_org_address_key" => "a bounce for this address is already recorded",
        "users_email_key" => "a user with this email already exists",
        "users_role_known" => "a user's role must be viewer, collector or admin",
        "sessions_id_hash_key" => "a session with this id already exists",
        "api_tokens_token_hash_key" => "an API token with this secret already exists",
        "api_tokens_scopes_known" => "an API token's scopes must be read, write or both",
        "notes_body_nonempty" => "a note cannot be empty",
        "idempotency_replies_org_key_key" => "a reply for this Idempotency-Key is already stored",
        "idempotency_replies_status_known" => {
            "a stored reply's status must be an HTTP status (100-599)"
        }
        other => return format!("the database refused the change (constraint {other})"),
    };
    rule.to_string()
}

impl StoreError {
    pub fn constraint(name: &str) -> StoreError {
        StoreError::Constraint {
            constraint: name.to_string(),
            message: constraint_message(name),
        }
    }

    pub fn database(e: impl fmt::Display) -> StoreError {
        StoreError::Database(e.to_string())
    }
}
