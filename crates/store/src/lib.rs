//! arflow's storage layer.
//!
//! One [`Store`] trait, implemented for SQLite (embedded default, [`sqlite`])
//! and PostgreSQL ([`postgres`]). Both pass the same conformance suite
//! ([`conformance`]), so callers never depend on which one they have.
//!
//! Writes go through [`ChangeSet`]: a batch of inserts and updates that is
//! applied in one transaction, all or nothing, with an event appended to the
//! append-only log for every record it creates or changes.

pub mod accounts;
mod accounts_shared;
pub mod changeset;
mod common;
pub mod conformance;
pub mod dunning;
mod dunning_events;
mod dunning_shared;
pub mod error;
pub mod events;
pub mod postgres;
mod postgres_accounts;
mod postgres_dunning;
mod postgres_predict;
pub mod predict;
pub mod sqlite;
mod sqlite_accounts;
mod sqlite_dunning;
mod sqlite_predict;
pub mod testing;

use arflow_domain::fx::FxRate;
use arflow_domain::ledger::LedgerFacts;
use arflow_domain::model::{
    Allocation, Contact, CreditNote, Customer, Event, Invoice, Organization, Payment, Stored,
};
use arflow_domain::money::Currency;
use jiff::Timestamp;

pub use accounts::{
    AccountStore, ApiToken, IdempotentReply, NewApiToken, NewUser, Note, Role, Scope, Session, User,
};
pub use changeset::{AppliedCounts, Change, ChangeSet};
pub use dunning::{
    Claimed, DunningStore, OutboxFilter, PlannedWrite, Released, RunCounts, Unsubscribed,
};
pub use error::StoreError;
pub use predict::{ModelInfo, PredictStore, StoredModel};

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Filters for listing events (the audit log and customer timelines).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events about this customer (external id).
    pub customer: Option<String>,
    /// Only events about this entity type ("invoice", "payment"...).
    pub entity_type: Option<String>,
    /// Only events about this entity key.
    pub entity_key: Option<String>,
    /// Only events whose kind starts with this ("user." for every user
    /// event, "invoice" for invoices).
    pub kind_prefix: Option<String>,
    /// Only events by exactly this actor.
    pub actor: Option<String>,
    /// Only events with an id below this one: the next page of the audit log
    /// after a page whose oldest event had this id (keyset paging).
    pub before_id: Option<i64>,
    /// Newest first, at most this many.
    pub limit: Option<u32>,
}

/// The ledger's storage. Every method is scoped to one organization id; no
/// method ever returns another organization's rows.
pub trait Store: DunningStore + PredictStore + AccountStore + Send + Sync {
    fn backend(&self) -> Backend;

    /// The default organization, created by the first migration run if missing.
    fn default_organization(&self) -> Result<Organization, StoreError>;

    /// The organization with this id, if it exists.
    fn organization(&self, id: i64) -> Result<Option<Organization>, StoreError>;

    /// Creates another organization (tenant). Its slug must be unique, else
    /// [`StoreError::Constraint`] (`organizations_slug_key`).
    fn create_organization(
        &self,
        slug: &str,
        name: &str,
        base_currency: Currency,
        time_zone: &str,
        now: Timestamp,
    ) -> Result<Organization, StoreError>;

    /// Changes the organization's name, base currency or time zone and, in the
    /// same transaction, appends an `organization.updated` event with the
    /// field diff (none when nothing changed), stamped `now` and attributed
    /// to `actor`. `id` selects the organization; its slug and creation time
    /// are never changed. A change also increments the organization's
    /// [`AccountStore::ledger_version`] (reports depend on the base currency
    /// and time zone).
    fn update_organization(
        &self,
        org: &Organization,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    fn customers(&self, org: i64) -> Result<Vec<Stored<Customer>>, StoreError>;
    fn contacts(&self, org: i64) -> Result<Vec<Stored<Contact>>, StoreError>;
    fn invoices(&self, org: i64) -> Result<Vec<Stored<Invoice>>, StoreError>;
    fn credit_notes(&self, org: i64) -> Result<Vec<Stored<CreditNote>>, StoreError>;
    fn payments(&self, org: i64) -> Result<Vec<Stored<Payment>>, StoreError>;
    fn allocations(&self, org: i64) -> Result<Vec<Stored<Allocation>>, StoreError>;
    fn fx_rates(&self, org: i64) -> Result<Vec<FxRate>, StoreError>;
    fn events(&self, org: i64, filter: &EventFilter) -> Result<Vec<Event>, StoreError>;

    /// The compact dated facts analytics run on, in one read.
    fn ledger_facts(&self, org: i64) -> Result<LedgerFacts, StoreError>;

    /// Applies every change in one transaction and appends one event per
    /// created or changed record, stamped `now` and attributed to `actor`.
    /// A non-empty change set also increments the organization's
    /// [`AccountStore::ledger_version`] in the same transaction.
    /// On any error nothing is written.
    ///
    /// Before committing it checks, for every invoice, payment and credit
    /// note the change set allocates or updates, that its allocations stay
    /// within its total ([`StoreError::OverAllocated`]) and are in the
    /// invoice's currency ([`StoreError::CurrencyMismatch`]), against what is
    /// committed at that moment, so two concurrent change sets planned
    /// against the same open balance cannot both succeed.
    fn apply(
        &self,
        org: i64,
        changes: &ChangeSet,
        actor: &str,
        now: Timestamp,
    ) -> Result<AppliedCounts, StoreError>;
}

/// Opens the store a URL names: `postgres://…`/`postgresql://…`, or
/// `sqlite://PATH` / a plain file path for SQLite. Runs migrations.
pub fn open(url: &str, now: Timestamp) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(postgres::PostgresStore::connect(url, now)?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Box::new(sqlite::SqliteStore::open(
            std::path::Path::new(path),
            now,
        )?))
    }
}
