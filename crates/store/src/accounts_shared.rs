//! Account storage logic both backends share: value conversions, the rules
//! (email normalisation, scope sets, how often a token's last use is
//! written, how long failed logins are kept) and the events account changes
//! append to the log, built once so SQLite and PostgreSQL record exactly the
//! same thing.
//!
//! Events follow the log's conventions ([`crate::events`]): a summary in
//! words, and `data` holding what the record's own row does not say (the
//! name and role of a new user, a token's name and scopes, a note's body) or
//! the `{"changes": {field: {"from", "to"}}}` diff of a change. Password
//! hashes, session ids and token hashes never reach the log.

use arflow_domain::dunning::records::Task;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::accounts::{ApiToken, NewApiToken, NewUser, Note, Role, Scope};
use crate::common::corrupt;
use crate::events::{NewEvent, diff};
use crate::{StoreError, User};

/// `api_token_by_hash` writes `last_used_at` at most this often.
pub(crate) const LAST_USED_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// Failed logins older than this are deleted when a new one is recorded, so
/// the table stays small whatever is thrown at the login form.
pub(crate) const LOGIN_FAILURES_KEPT: SignedDuration = SignedDuration::from_hours(24);

/// Emails are compared lower-cased and without surrounding blanks.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The `users_email_key` violation, said with the address.
pub(crate) fn email_taken(email: &str) -> StoreError {
    StoreError::Conflict(format!("a user with email {email} already exists"))
}

/// Maps the unique-email violation of a write to [`email_taken`].
pub(crate) fn map_email_taken(e: StoreError, email: &str) -> StoreError {
    match e {
        StoreError::Constraint { constraint, .. } if constraint == "users_email_key" => {
            email_taken(email)
        }
        e => e,
    }
}

/// Sorted, without duplicates.
pub(crate) fn normalize_scopes(scopes: &[Scope]) -> Vec<Scope> {
    let mut v = scopes.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Stored form: sorted, space-separated ("read", "write", "read write";
/// the `api_tokens_scopes_known` check refuses anything else, an empty set
/// included).
pub(crate) fn scopes_text(scopes: &[Scope]) -> String {
    normalize_scopes(scopes)
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn parse_scopes(s: &str) -> Result<Vec<Scope>, StoreError> {
    let scopes = s
        .split_whitespace()
        .map(|w| Scope::parse(w).ok_or_else(|| corrupt("API token scope", w)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(normalize_scopes(&scopes))
}

pub(crate) fn parse_role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| corrupt("user role", s))
}

/// `now - d`, no earlier than 1970 (nothing the store keeps is older, and
/// PostgreSQL cannot hold jiff's earliest timestamps).
pub(crate) fn before(now: Timestamp, d: SignedDuration) -> Timestamp {
    now.checked_sub(d)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .max(Timestamp::UNIX_EPOCH)
}

/// Whether a token used at `last_used` should have `now` written as its last use.
pub(crate) fn needs_touch(last_used: Option<Timestamp>, now: Timestamp) -> bool {
    match last_used {
        None => true,
        Some(t) => t <= before(now, LAST_USED_EVERY),
    }
}

/// A note names an invoice of another customer than its own.
pub(crate) fn invoice_of_another_customer(number: &str, owner: &str, customer: &str) -> StoreError {
    StoreError::Conflict(format!(
        "invoice {number} belongs to customer {owner}, not {customer}"
    ))
}

pub(crate) fn user_not_found(id: i64) -> StoreError {
    StoreError::NotFound { entity: "user", id }
}

fn event(
    kind: &'static str,
    entity_type: &'static str,
    entity_key: String,
    customer: Option<&str>,
    summary: String,
    data: Value,
) -> NewEvent {
    NewEvent {
        kind,
        entity_type,
        entity_key,
        customer: customer.map(str::to_owned),
        summary,
        data,
    }
}

pub(crate) fn user_created(email: &str, u: &NewUser) -> NewEvent {
    event(
        "user.created",
        "user",
        email.to_owned(),
        None,
        format!("User {email} created ({})", u.role.as_str()),
        json!({ "name": u.name, "role": u.role }),
    )
}

pub(crate) fn password_changed(u: &User, sessions_ended: u64) -> NewEvent {
    event(
        "user.password_changed",
        "user",
        u.email.clone(),
        None,
        format!(
            "Password of {} changed; {sessions_ended} session{} ended",
            u.email,
            if sessions_ended == 1 { "" } else { "s" }
        ),
        json!({ "sessions_ended": sessions_ended }),
    )
}

pub(crate) fn role_changed(u: &User, to: Role) -> NewEvent {
    event(
        "user.updated",
        "user",
        u.email.clone(),
        None,
        format!(
            "Role of {} changed from {} to {}",
            u.email,
            u.role.as_str(),
            to.as_str()
        ),
        json!({ "changes": { "role": { "from": u.role, "to": to } } }),
    )
}

pub(crate) fn disabled_changed(u: &User, disabled: bool, sessions_ended: u64) -> NewEvent {
    let (kind, summary) = if disabled {
        (
            "user.disabled",
            format!(
                "User {} disabled; {sessions_ended} session{} ended",
                u.email,
                if sessions_ended == 1 { "" } else { "s" }
            ),
        )
    } else {
        ("user.enabled", format!("User {} enabled", u.email))
    };
    event(
        kind,
        "user",
        u.email.clone(),
        None,
        summary,
        json!({
            "changes": { "disabled": { "from": u.disabled, "to": disabled } },
            "sessions_ended": sessions_ended,
        }),
    )
}

pub(crate) fn logged_in(u: &User, expires_at: Timestamp) -> NewEvent {
    event(
        "user.logged_in",
        "user",
        u.email.clone(),
        None,
        format!("{} logged in", u.email),
        json!({ "expires_at": expires_at }),
    )
}

pub(crate) fn logged_out(email: &str) -> NewEvent {
    event(
        "user.logged_out",
        "user",
        email.to_owned(),
        None,
        format!("{email} logged out"),
        json!({}),
    )
}

fn scope_words(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn api_token_created(id: i64, t: &NewApiToken, owner: &str) -> NewEvent {
    let scopes = normalize_scopes(&t.scopes);
    event(
        "api_token.created",
        "api_token",
        id.to_string(),
        None,
        format!(
            "API token #{id} \"{}\" created for {owner} ({})",
            t.name,
            scope_words(&scopes)
        ),
        json!({
            "name": t.name,
            "user": owner,
            "scopes": scopes,
            "expires_at": t.expires_at,
        }),
    )
}

pub(crate) fn api_token_revoked(t: &ApiToken, owner: &str) -> NewEvent {
    event(
        "api_token.revoked",
        "api_token",
        t.id.to_string(),
        None,
        format!("API token #{} \"{}\" of {owner} revoked", t.id, t.name),
        json!({
            "name": t.name,
            "user": owner,
            "scopes": t.scopes,
            "changes": { "revoked_at": { "from": Value::Null, "to": t.revoked_at } },
        }),
    )
}

pub(crate) fn note_added(id: i64, n: &Note) -> NewEvent {
    let about = match &n.invoice {
        Some(i) => format!("customer {} (invoice {i})", n.customer),
        None => format!("customer {}", n.customer),
    };
    event(
        "note.added",
        "note",
        id.to_string(),
        Some(&n.customer),
        format!("Note on {about} by {}", n.author),
        json!({ "body": n.body, "invoice": n.invoice }),
    )
}

fn task_changes(before: &Task, after: &Task) -> Value {
    json!({ "changes": diff(before, after) })
}

pub(crate) fn task_assigned(before: &Task, after: &Task) -> NewEvent {
    let summary = match &after.assignee {
        Some(a) => format!(
            "Task for customer {} assigned to {a}: {}",
            after.customer, after.title
        ),
        None => format!(
            "Task for customer {} unassigned: {}",
            after.customer, after.title
        ),
    };
    event(
        "task.assigned",
        "task",
        after.key.clone(),
        Some(&after.customer),
        summary,
        task_changes(before, after),
    )
}

pub(crate) fn task_snoozed(before: &Task, after: &Task) -> NewEvent {
    let summary = match after.snoozed_until {
        Some(d) => format!(
            "Task for customer {} snoozed until {d}: {}",
            after.customer, after.title
        ),
        None => format!(
            "Task for customer {} woken: {}",
            after.customer, after.title
        ),
    };
    event(
        "task.snoozed",
        "task",
        after.key.clone(),
        Some(&after.customer),
        summary,
        task_changes(before, after),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_stored_sorted_and_once() {
        assert_eq!(
            scopes_text(&[Scope::Write, Scope::Read, Scope::Write]),
            "read write"
        );
        assert_eq!(scopes_text(&[]), "");
        assert_eq!(
            parse_scopes("write read").ok(),
            Some(vec![Scope::Read, Scope::Write])
        );
        assert!(parse_scopes("read admin").is_err());
    }

    #[test]
    fn last_use_is_written_once_a_minute() {
        let t = Timestamp::from_second(1_700_000_000).expect("timestamp");
        assert!(needs_touch(None, t));
        assert!(!needs_touch(
            Some(t),
            t.checked_add(SignedDuration::from_secs(59)).expect("ts")
        ));
        assert!(needs_touch(
            Some(t),
            t.checked_add(SignedDuration::from_secs(60)).expect("ts")
        ));
    }
}
