//! Storage for the web application: users and their roles, server-side
//! sessions, API tokens, failed-login counts (rate limiting shared by every
//! web server on one database), customer notes, task assignment and
//! snoozing, `Idempotency-Key` replies, and the ledger version that read
//! caches key on.
//!
//! Secrets never reach the store: sessions and API tokens are stored as the
//! SHA-256 of the value the client holds, passwords as Argon2id PHC strings
//! the caller computed.
//!
//! Users belong to exactly one organization; an email address is unique
//! across the whole database, so a login names its organization. Every
//! method taking `org` is scoped to it like the rest of the store.

use arflow_domain::model::Stored;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// What a user may do. Ordered: each role can do everything the ones
/// before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Also notes, holds, disputes, promises and tasks.
    Collector,
    /// Also users, settings, policies, imports and the pause switch.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Collector => "collector",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "collector" => Some(Role::Collector),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A person who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub org: i64,
    /// The login name, lower-cased; unique in the database.
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: Timestamp,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

/// A logged-in browser. `id_hash` is the SHA-256 (hex) of the cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub user_id: i64,
    pub org: i64,
    /// Sent back in every state-changing form (synchronizer token).
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// GET requests.
    Read,
    /// Also POST/PUT/PATCH/DELETE (still limited by the owner's role).
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            _ => None,
        }
    }
}

/// An API token as stored (the secret itself is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub org: i64,
    pub user_id: i64,
    pub name: String,
    /// SHA-256 (hex) of the secret.
    pub token_hash: String,
    /// Sorted, without duplicates.
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub user_id: i64,
    pub name: String,
    pub token_hash: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
}

/// A free-text note on a customer (optionally about one invoice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Customer external id.
    pub customer: String,
    /// Invoice number, when the note is about one invoice.
    pub invoice: Option<String>,
    pub author: String,
    pub body: String,
    pub created_at: Timestamp,
}

/// A stored reply to a POST carrying an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentReply {
    /// SHA-256 (hex) of method, path and body: the same key with another
    /// request is a conflict, not a replay.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub created_at: Timestamp,
}

pub trait AccountStore: Send + Sync {
    // --- users ---------------------------------------------------------
    /// The organization's users, sorted by email.
    fn users(&self, org: i64) -> Result<Vec<User>, StoreError>;
    fn user(&self, org: i64, id: i64) -> Result<Option<User>, StoreError>;
    /// The user with this login (any organization), for logging in. The
    /// email is compared lower-cased and trimmed.
    fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Email is lower-cased by the caller (the store lower-cases and trims
    /// it too); a taken email, in any organization, is
    /// [`StoreError::Conflict`] ("a user with email … already exists").
    /// Logs `user.created` (entity key the email; data name and role, never
    /// the hash).
    fn create_user(
        &self,
        org: i64,
        user: &NewUser,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError>;
    /// Replaces the hash and, in the same transaction, ends every session
    /// of the user. Logs `user.password_changed`. A user of another
    /// organization is [`StoreError::NotFound`], as everywhere below.
    fn set_password(
        &self,
        org: i64,
        user_id: i64,
        password_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Logs `user.updated` with the role change; the same role again
    /// changes and logs nothing.
    fn set_role(
        &self,
        org: i64,
        user_id: i64,
        role: Role,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Disabling ends every session (in the same transaction) and refuses
    /// the user's API tokens. Logs `user.disabled` / `user.enabled`; the
    /// state the user is already in changes and logs nothing.
    fn set_disabled(
        &self,
        org: i64,
        user_id: i64,
        disabled: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    // --- sessions ------------------------------------------------------
    /// Stores a new session. Its user must belong to `session.org`
    /// ([`StoreError::NotFound`]) and not be disabled
    /// ([`StoreError::Conflict`]). Logs `user.logged_in` by the user's email.
    fn create_session(&self, session: &Session, now: Timestamp) -> Result<(), StoreError>;
    /// The session and its user, when it exists, has not expired at `now`
    /// and its user is not disabled.
    fn session(&self, id_hash: &str, now: Timestamp)
    -> Result<Option<(Session, User)>, StoreError>;
    /// Moves the expiry (sliding sessions); the caller limits how often. A
    /// session that no longer exists is left alone.
    fn extend_session(&self, id_hash: &str, expires_at: Timestamp) -> Result<(), StoreError>;
    /// Logs `user.logged_out` (by the user's email) when the session existed.
    fn delete_session(&self, id_hash: &str, now: Timestamp) -> Result<(), StoreError>;
    /// Deletes expired sessions; returns how many.
    fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError>;

    // --- failed logins -------------------------------------------------
    /// Records one failed login for this (lower-cased) email from `ip`.
    /// Failures are kept for a day: older ones are deleted here, so windows
    /// longer than a day count only the last day.
    fn record_login_failure(&self, email: &str, ip: &str, now: Timestamp)
    -> Result<(), StoreError>;
    /// Failed logins for this email within `window` before `now` (later than
    /// `now - window`).
    fn login_failures(
        &self,
        email: &str,
        now: Timestamp,
        window: SignedDuration,
    ) -> Result<u32, StoreError>;
    /// Forgets this email's failures (after a successful login).
    fn clear_login_failures(&self, email: &str) -> Result<(), StoreError>;

    // --- API tokens ----------------------------------------------------
    /// The token's user must belong to the organization
    /// ([`StoreError::NotFound`]); an empty scope set is refused
    /// (`api_tokens_scopes_known`). Logs `api_token.created` (name, owner,
    /// scopes, expiry; never the hash).
    fn create_api_token(
        &self,
        org: i64,
        token: &NewApiToken,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError>;
    /// Every token of the organization, revoked and expired ones included, by id.
    fn api_tokens(&self, org: i64) -> Result<Vec<ApiToken>, StoreError>;
    /// The token and its user when the hash matches, it is neither revoked
    /// nor expired at `now` and its user is not disabled. Updates
    /// `last_used_at` at most once a minute (so reads stay reads).
    fn api_token_by_hash(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(ApiToken, User)>, StoreError>;
    /// Logs `api_token.revoked`; revoking twice is [`StoreError::Conflict`],
    /// an unknown id [`StoreError::NotFound`].
    fn revoke_api_token(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    // --- notes ---------------------------------------------------------
    /// The customer's notes, oldest first (none for an unknown customer).
    fn notes(&self, org: i64, customer: &str) -> Result<Vec<Stored<Note>>, StoreError>;
    /// The customer (and invoice, if given) must exist
    /// ([`StoreError::UnknownReference`]); the invoice must be the
    /// customer's ([`StoreError::Conflict`]). Logs `note.added` on the
    /// customer's timeline with the body and invoice, by the author at
    /// `created_at`.
    fn add_note(&self, org: i64, note: &Note) -> Result<i64, StoreError>;
    /// Completes an open task and keeps a note about it, in one transaction:
    /// both happen or neither. Returns the note's id.
    fn complete_task_with_note(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
        note: &Note,
    ) -> Result<i64, StoreError>;

    // --- tasks ---------------------------------------------------------
    /// Sets or clears the assignee (a user's email; not checked against the
    /// users, as step tasks carry the customer's collector). Logs
    /// `task.assigned` with the diff. A done task is [`StoreError::Conflict`];
    /// the same assignee again changes and logs nothing.
    fn assign_task(
        &self,
        org: i64,
        id: i64,
        assignee: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Hides an open task until `until` (None: wake now). Logs `task.snoozed`
    /// with the diff. A done task is [`StoreError::Conflict`].
    fn snooze_task(
        &self,
        org: i64,
        id: i64,
        until: Option<Date>,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    // --- idempotency ---------------------------------------------------
    /// The reply stored under this key in the organization, if any.
    fn idempotent_reply(&self, org: i64, key: &str) -> Result<Option<IdempotentReply>, StoreError>;
    /// Stores the reply unless the key is already taken (then returns false
    /// and leaves the first reply).
    fn save_idempotent_reply(
        &self,
        org: i64,
        key: &str,
        reply: &IdempotentReply,
    ) -> Result<bool, StoreError>;

    // --- caches --------------------------------------------------------
    /// A number that grows whenever a change to the organization's ledger
    /// commits: `Store::apply` with a non-empty change set (customers,
    /// contacts, invoices, credit notes, payments, allocations, FX rates),
    /// `DunningStore::unsubscribe` opting a contact out, and
    /// `Store::update_organization` changing the organization (reports
    /// depend on its base currency and time zone). Reads never change it.
    /// Read caches key on it. [`StoreError::NotFound`] for an unknown
    /// organization.
    fn ledger_version(&self, org: i64) -> Result<i64, StoreError>;
}
