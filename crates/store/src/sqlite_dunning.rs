//! SQLite implementation of [`DunningStore`].
//!
//! Every write is one `BEGIN IMMEDIATE` transaction (the write lock up front,
//! like `apply`), so checks made inside it hold until it commits. Timestamps
//! are written with exactly six fractional digits because claims, leases and
//! contact hygiene compare them as text (see the migration).

use std::collections::HashMap;

use arflow_domain::dunning::records::{
    AssignmentScope, Bounce, Charge, Dispute, DunningSettings, Hold, MessageStatus, OutboxMessage,
    PolicyAssignment, Promise, Scope, StepRecord, StoredPolicy, Task, TaskKind, TaskStatus,
};
use arflow_domain::model::Stored;
use arflow_domain::money::Money;
use jiff::Timestamp;
use jiff::civil::Date;
use r2d2_sqlite::rusqlite::types::FromSql;
use r2d2_sqlite::rusqlite::{Connection, Params, Row, TransactionBehavior, params};

use crate::StoreError;
use crate::common::{
    corrupt, parse_currency, parse_date, parse_timestamp, truncate_micros, unknown,
};
use crate::dunning::{
    Claimed, DunningStore, OutboxFilter, PlannedWrite, Released, RunCounts, Unsubscribed,
};
use crate::dunning_events as ev;
use crate::dunning_shared::UNSUBSCRIBE_ACTOR;
use crate::dunning_shared::{
    self as sh, CLAIMED_OR_SENDING, RunTable, RunWriter, WorkerChange, check_worker, conflict,
    from_json, not_found, to_json,
};
use crate::events::NewEvent;
use crate::sqlite::{
    READ_CACHE, SqliteStore, WRITE_CACHE, bump_ledger_version, date_text, map_err, ts_text,
};

/// Who the log names for changes the store makes by itself (lease expiry,
/// bounces reported by a provider).
const SYSTEM_ACTOR: &str = "arflow";

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: fixed width, so that text order is time
/// order. Written digit by digit because a big run formats hundreds of
/// thousands of timestamps and jiff's general-purpose printer was a large
/// part of its time; years outside 0..=9999 (never met in practice) take
/// that printer, which does not keep the width.
pub(crate) fn ts(t: Timestamp) -> String {
    let t = truncate_micros(t);
    let dt = jiff::tz::Offset::UTC.to_datetime(t);
    let Ok(year) = u32::try_from(dt.year()) else {
        return format!("{t:.6}");
    };
    if year > 9999 {
        return format!("{t:.6}");
    }
    let micros = u32::try_from(dt.subsec_nanosecond() / 1000).unwrap_or(0);
    let mut out = String::with_capacity(27);
    push_digits(&mut out, year, 4);
    for (sep, v, width) in [
        ('-', dt.month(), 2),
        ('-', dt.day(), 2),
        ('T', dt.hour(), 2),
        (':', dt.minute(), 2),
        (':', dt.second(), 2),
    ] {
        out.push(sep);
        push_digits(&mut out, u32::from(v.unsigned_abs()), width);
    }
    out.push('.');
    push_digits(&mut out, micros, 6);
    out.push('Z');
    out
}

fn push_digits(out: &mut String, v: u32, width: u32) {
    for p in (0..width).rev() {
        let d = (v / 10u32.pow(p)) % 10;
        out.push(char::from(b'0' + d as u8));
    }
}

pub(crate) fn opt_ts(t: Option<Timestamp>) -> Option<String> {
    t.map(ts)
}

pub(crate) fn col<T: FromSql>(r: &Row<'_>, i: usize) -> Result<T, StoreError> {
    r.get(i).map_err(|e| corrupt("column", e))
}

/// A text column borrowed from SQLite's buffer (no allocation).
fn text_ref<'r>(r: &'r Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    r.get_ref(i)
        .map_err(|e| corrupt("column", e))?
        .as_str()
        .map_err(|e| corrupt("column", e))
}

pub(crate) fn ts_col(r: &Row<'_>, i: usize) -> Result<Timestamp, StoreError> {
    parse_timestamp(&col::<String>(r, i)?)
}

pub(crate) fn opt_ts_col(r: &Row<'_>, i: usize) -> Result<Option<Timestamp>, StoreError> {
    col::<Option<String>>(r, i)?
        .as_deref()
        .map(parse_timestamp)
        .transpose()
}

fn date_col(r: &Row<'_>, i: usize) -> Result<Date, StoreError> {
    parse_date(&col::<String>(r, i)?)
}

fn opt_date_col(r: &Row<'_>, i: usize) -> Result<Option<Date>, StoreError> {
    col::<Option<String>>(r, i)?
        .as_deref()
        .map(parse_date)
        .transpose()
}

pub(crate) fn query<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = stmt.query(params).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        out.push(f(r)?);
    }
    Ok(out)
}

pub(crate) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    Ok(query(conn, sql, params, f)?.into_iter().next())
}

pub(crate) fn insert_event(
    conn: &Connection,
    org: i64,
    actor: &str,
    now: Timestamp,
    ev: &NewEvent,
) -> Result<(), StoreError> {
    let data = serde_json::to_string(&ev.data)
        .map_err(|e| StoreError::Database(format!("event data: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO events (org_id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            org,
            ts_text(now),
            actor,
            ev.kind,
            ev.entity_type,
            ev.entity_key,
            ev.customer,
            ev.summary,
            data
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

/// The organization's slug and time zone; `NotFound` if it does not exist.
pub(crate) fn organization(conn: &Connection, org: i64) -> Result<(String, String), StoreError> {
    query_opt(
        conn,
        "SELECT slug, time_zone FROM organizations WHERE id = ?1",
        [org],
        |r| Ok((col(r, 0)?, col(r, 1)?)),
    )?
    .ok_or(not_found("organization", org))
}

/// Invoice number → (id, customer external id), within the organization.
pub(crate) fn find_invoice(
    conn: &Connection,
    org: i64,
    number: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    query_opt(
        conn,
        "SELECT i.id, c.external_id FROM invoices i JOIN customers c ON c.id = i.customer_id
         WHERE i.org_id = ?1 AND i.number = ?2",
        params![org, number],
        |r| Ok((col(r, 0)?, col(r, 1)?)),
    )
}

pub(crate) fn find_customer(
    conn: &Connection,
    org: i64,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    query_opt(
        conn,
        "SELECT id FROM customers WHERE org_id = ?1 AND external_id = ?2",
        params![org, key],
        |r| col(r, 0),
    )
}

/// A hold's or promise's scope as (customer id, invoice id, customer key).
fn resolve_scope(
    conn: &Connection,
    org: i64,
    scope: &Scope,
) -> Result<(Option<i64>, Option<i64>, String), StoreError> {
    match scope {
        Scope::Customer(k) => {
            let id = find_customer(conn, org, k)?.ok_or_else(|| unknown("customer", k))?;
            Ok((Some(id), None, k.clone()))
        }
        Scope::Invoice(n) => {
            let (id, customer) =
                find_invoice(conn, org, n)?.ok_or_else(|| unknown("invoice", n))?;
            Ok((None, Some(id), customer))
        }
    }
}

fn scope_of(
    customer: Option<String>,
    invoice: Option<String>,
    what: &str,
) -> Result<Scope, StoreError> {
    match (customer, invoice) {
        (Some(c), None) => Ok(Scope::Customer(c)),
        (None, Some(i)) => Ok(Scope::Invoice(i)),
        _ => Err(corrupt(what, "must cover exactly one customer or invoice")),
    }
}

fn load_settings(conn: &Connection, org: i64) -> Result<Option<DunningSettings>, StoreError> {
    query_opt(
        conn,
        "SELECT settings FROM dunning_settings WHERE org_id = ?1",
        [org],
        |r| from_json("dunning settings", &col::<String>(r, 0)?),
    )
}

fn save_settings(
    conn: &Connection,
    org: i64,
    s: &DunningSettings,
    now: Timestamp,
) -> Result<(), StoreError> {
    let json = to_json("dunning settings", s)?;
    conn.prepare_cached(
        "INSERT INTO dunning_settings (org_id, settings, paused, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (org_id) DO UPDATE SET settings = excluded.settings, paused = excluded.paused,
            updated_at = excluded.updated_at",
    )
    .and_then(|mut st| st.execute(params![org, json, s.paused, ts(now)]))
    .map_err(map_err)?;
    Ok(())
}

const HOLD_SELECT: &str =
    "SELECT h.id, c.external_id, i.number, h.reason, h.created_at, h.created_by, h.expires_on,
        h.ended_at, h.ended_by, coalesce(c.external_id, ic.external_id)
     FROM holds h
     LEFT JOIN customers c ON c.id = h.customer_id
     LEFT JOIN invoices i ON i.id = h.invoice_id
     LEFT JOIN customers ic ON ic.id = i.customer_id";

/// A hold and the customer it concerns.
fn hold_row(r: &Row<'_>) -> Result<(Stored<Hold>, String), StoreError> {
    Ok((
        Stored {
            id: col(r, 0)?,
            record: Hold {
                scope: scope_of(col(r, 1)?, col(r, 2)?, "hold")?,
                reason: col(r, 3)?,
                created_at: ts_col(r, 4)?,
                created_by: col(r, 5)?,
                expires_on: opt_date_col(r, 6)?,
                ended_at: opt_ts_col(r, 7)?,
                ended_by: col(r, 8)?,
            },
        },
        col::<Option<String>>(r, 9)?.unwrap_or_default(),
    ))
}

const DISPUTE_SELECT: &str = "SELECT d.id, i.number, d.reason, d.opened_at, d.opened_by, d.resolved_at, d.resolved_by,
        d.resolution, c.external_id
     FROM disputes d JOIN invoices i ON i.id = d.invoice_id JOIN customers c ON c.id = i.customer_id";

fn dispute_row(r: &Row<'_>) -> Result<(Stored<Dispute>, String), StoreError> {
    Ok((
        Stored {
            id: col(r, 0)?,
            record: Dispute {
                invoice: col(r, 1)?,
                reason: col(r, 2)?,
                opened_at: ts_col(r, 3)?,
                opened_by: col(r, 4)?,
                resolved_at: opt_ts_col(r, 5)?,
                resolved_by: col(r, 6)?,
                resolution: col(r, 7)?,
            },
        },
        col(r, 8)?,
    ))
}

const PROMISE_SELECT: &str = "SELECT p.id, c.external_id, i.number, p.amount, p.currency, p.promised_on, p.grace_days,
        p.made_at, p.made_by, p.note, p.cancelled_at, p.cancelled_by, coalesce(c.external_id, ic.external_id)
     FROM promises p
     LEFT JOIN customers c ON c.id = p.customer_id
     LEFT JOIN invoices i ON i.id = p.invoice_id
     LEFT JOIN customers ic ON ic.id = i.customer_id";

fn promise_row(r: &Row<'_>) -> Result<(Stored<Promise>, String), StoreError> {
    let amount = match (col::<Option<i64>>(r, 3)?, col::<Option<String>>(r, 4)?) {
        (Some(minor), Some(cur)) => Some(Money::new(minor, parse_currency(&cur)?)),
        (None, None) => None,
        _ => return Err(corrupt("promise", "an amount needs its currency")),
    };
    Ok((
        Stored {
            id: col(r, 0)?,
            record: Promise {
                scope: scope_of(col(r, 1)?, col(r, 2)?, "promise")?,
                amount,
                promised_on: date_col(r, 5)?,
                grace_days: sh::u32_col("promise grace days", col(r, 6)?)?,
                made_at: ts_col(r, 7)?,
                made_by: col(r, 8)?,
                note: col(r, 9)?,
                cancelled_at: opt_ts_col(r, 10)?,
                cancelled_by: col(r, 11)?,
            },
        },
        col::<Option<String>>(r, 12)?.unwrap_or_default(),
    ))
}

const MESSAGE_SELECT: &str = "SELECT m.id, m.org_id, m.customer_id, m.key, c.external_id, m.channel, m.contact,
        m.recipient, m.policy, m.step, m.template, m.locale, m.currency, m.invoices, m.subject, m.body_text,
        m.body_html, m.token, m.time_zone, m.not_before, m.created_at, m.status, m.attempts, m.next_attempt_at,
        m.claimed_by, m.lease_until, m.last_error, m.provider_id, m.sent_at
     FROM outbox_messages m JOIN customers c ON c.id = m.customer_id";

/// An outbox row with its organization and customer id.
struct MessageRow {
    org: i64,
    customer_id: i64,
    stored: Stored<OutboxMessage>,
}

fn message_row(r: &Row<'_>) -> Result<MessageRow, StoreError> {
    Ok(MessageRow {
        org: col(r, 1)?,
        customer_id: col(r, 2)?,
        stored: Stored {
            id: col(r, 0)?,
            record: OutboxMessage {
                key: col(r, 3)?,
                customer: col(r, 4)?,
                channel: sh::parse_channel(&col::<String>(r, 5)?)?,
                contact: col(r, 6)?,
                recipient: col(r, 7)?,
                policy: col(r, 8)?,
                step: sh::parse_step(&col::<String>(r, 9)?)?,
                template: col(r, 10)?,
                locale: col(r, 11)?,
                currency: parse_currency(&col::<String>(r, 12)?)?,
                invoices: from_json("message invoices", &col::<String>(r, 13)?)?,
                subject: col(r, 14)?,
                body_text: col(r, 15)?,
                body_html: col(r, 16)?,
                token: col(r, 17)?,
                time_zone: col(r, 18)?,
                not_before: ts_col(r, 19)?,
                created_at: ts_col(r, 20)?,
                status: sh::parse_status(&col::<String>(r, 21)?)?,
                attempts: sh::u32_col("message attempts", col(r, 22)?)?,
                next_attempt_at: ts_col(r, 23)?,
                claimed_by: col(r, 24)?,
                lease_until: opt_ts_col(r, 25)?,
                last_error: col(r, 26)?,
                provider_id: col(r, 27)?,
                sent_at: opt_ts_col(r, 28)?,
            },
        },
    })
}

fn load_message(conn: &Connection, id: i64) -> Result<MessageRow, StoreError> {
    query_opt(
        conn,
        &format!("{MESSAGE_SELECT} WHERE m.id = ?1"),
        [id],
        message_row,
    )?
    .ok_or(not_found("message", id))
}

/// Writes a message's delivery state (everything a state change may alter).
fn save_message_state(conn: &Connection, id: i64, m: &OutboxMessage) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox_messages SET status = ?1, attempts = ?2, next_attempt_at = ?3, claimed_by = ?4, lease_until = ?5,
            last_error = ?6, provider_id = ?7, sent_at = ?8 WHERE id = ?9",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.status.as_str(),
            m.attempts,
            ts(m.next_attempt_at),
            m.claimed_by,
            opt_ts(m.lease_until),
            m.last_error,
            m.provider_id,
            opt_ts(m.sent_at),
            id
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

pub(crate) const TASK_SELECT: &str = "SELECT t.id, t.key, t.kind, c.external_id, t.invoices, t.title, t.detail, t.due_on, t.created_at,
        t.status, t.assignee, t.snoozed_until, t.completed_at, t.completed_by, t.message_key
     FROM tasks t JOIN customers c ON c.id = t.customer_id";

pub(crate) fn task_row(r: &Row<'_>) -> Result<Stored<Task>, StoreError> {
    Ok(Stored {
        id: col(r, 0)?,
        record: Task {
            key: col(r, 1)?,
            kind: sh::parse_task_kind(&col::<String>(r, 2)?)?,
            customer: col(r, 3)?,
            invoices: from_json("task invoices", &col::<String>(r, 4)?)?,
            title: col(r, 5)?,
            detail: col(r, 6)?,
            due_on: date_col(r, 7)?,
            created_at: ts_col(r, 8)?,
            status: sh::parse_task_status(&col::<String>(r, 9)?)?,
            assignee: col(r, 10)?,
            snoozed_until: opt_date_col(r, 11)?,
            completed_at: opt_ts_col(r, 12)?,
            completed_by: col(r, 13)?,
            message_key: col(r, 14)?,
        },
    })
}

/// Inserts a task unless its key is taken; the new id, or `None`.
fn insert_task(
    conn: &Connection,
    org: i64,
    customer_id: i64,
    t: &Task,
) -> Result<Option<i64>, StoreError> {
    let invoices = to_json("task invoices", &t.invoices)?;
    let n = conn
        .prepare_cached(
            "INSERT INTO tasks (org_id, key, kind, customer_id, invoices, title, detail, due_on, created_at, status, assignee,
                snoozed_until, completed_at, completed_by, message_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (org_id, key) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                org,
                t.key,
                t.kind.as_str(),
                customer_id,
                invoices,
                t.title,
                t.detail,
                date_text(t.due_on),
                ts(t.created_at),
                sh::task_status_str(t.status),
                t.assignee,
                t.snoozed_until.map(date_text),
                opt_ts(t.completed_at),
                t.completed_by,
                t.message_key
            ])
        })
        .map_err(map_err)?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

fn complete_task_row(
    conn: &Connection,
    org: i64,
    task: &Stored<Task>,
    actor: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let after = Task {
        status: TaskStatus::Done,
        completed_at: Some(now),
        completed_by: Some(actor.to_owned()),
        ..task.record.clone()
    };
    conn.prepare_cached(
        "UPDATE tasks SET status = ?1, completed_at = ?2, completed_by = ?3 WHERE id = ?4 AND org_id = ?5",
    )
    .and_then(|mut s| {
        s.execute(params![
            sh::task_status_str(after.status),
            opt_ts(after.completed_at),
            after.completed_by,
            task.id,
            org
        ])
    })
    .map_err(map_err)?;
    insert_event(
        conn,
        org,
        actor,
        now,
        &ev::task_completed(&task.record, &after),
    )
}

/// Completes an open task of `org` inside the caller's transaction; a task
/// already done is a conflict.
pub(crate) fn complete_open_task(
    tx: &Connection,
    org: i64,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let task = load_open_task(tx, org, id)?;
    complete_task_row(tx, org, &task, actor, truncate_micros(now))
}

/// An open task of `org`; a task already done is a conflict.
pub(crate) fn load_open_task(
    conn: &Connection,
    org: i64,
    id: i64,
) -> Result<Stored<Task>, StoreError> {
    let task = query_opt(
        conn,
        &format!("{TASK_SELECT} WHERE t.org_id = ?1 AND t.id = ?2"),
        params![org, id],
        task_row,
    )?
    .ok_or(not_found("task", id))?;
    if task.record.status == TaskStatus::Done {
        return Err(conflict(format!("task #{id} is already done")));
    }
    Ok(task)
}

/// Inserts one promise (and its `promise.created` event) inside the
/// caller's transaction.
fn insert_promise(
    tx: &Connection,
    org: i64,
    promise: &Promise,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let (customer_id, invoice_id, customer) = resolve_scope(tx, org, &promise.scope)?;
    tx.execute(
        "INSERT INTO promises (org_id, customer_id, invoice_id, amount, currency, promised_on, grace_days, made_at, made_by,
            note, cancelled_at, cancelled_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            org,
            customer_id,
            invoice_id,
            promise.amount.map(|m| m.minor),
            promise.amount.map(|m| m.currency.code()),
            date_text(promise.promised_on),
            promise.grace_days,
            ts(promise.made_at),
            promise.made_by,
            promise.note,
            opt_ts(promise.cancelled_at),
            promise.cancelled_by
        ],
    )
    .map_err(map_err)?;
    let id = tx.last_insert_rowid();
    insert_event(
        tx,
        org,
        &promise.made_by,
        now,
        &ev::promise_created(id, promise, &customer),
    )?;
    Ok(id)
}

const CHARGE_SELECT: &str = "SELECT ch.id, ch.key, i.number, ch.kind, ch.amount, ch.currency, ch.charged_on, ch.description,
        ch.created_at, ch.waived_at, ch.waived_by, ch.waive_reason, c.external_id
     FROM charges ch JOIN invoices i ON i.id = ch.invoice_id JOIN customers c ON c.id = i.customer_id";

fn charge_row(r: &Row<'_>) -> Result<(Stored<Charge>, String), StoreError> {
    Ok((
        Stored {
            id: col(r, 0)?,
            record: Charge {
                key: col(r, 1)?,
                invoice: col(r, 2)?,
                kind: sh::parse_charge_kind(&col::<String>(r, 3)?)?,
                amount: Money::new(col(r, 4)?, parse_currency(&col::<String>(r, 5)?)?),
                charged_on: date_col(r, 6)?,
                description: col(r, 7)?,
                created_at: ts_col(r, 8)?,
                waived_at: opt_ts_col(r, 9)?,
                waived_by: col(r, 10)?,
                waive_reason: col(r, 11)?,
            },
        },
        col(r, 12)?,
    ))
}

fn bounce_row(r: &Row<'_>) -> Result<Bounce, StoreError> {
    Ok(Bounce {
        address: col(r, 0)?,
        at: ts_col(r, 1)?,
        reason: col(r, 2)?,
        cleared_at: opt_ts_col(r, 3)?,
    })
}

fn load_bounce(conn: &Connection, org: i64, address: &str) -> Result<Option<Bounce>, StoreError> {
    query_opt(
        conn,
        "SELECT address, at, reason, cleared_at FROM bounces WHERE org_id = ?1 AND address = ?2",
        params![org, address],
        bounce_row,
    )
}

/// The ids of a list, as one JSON parameter read back with `json_each`.
fn json_list<T: serde::Serialize>(v: &[T]) -> Result<String, StoreError> {
    to_json("id list", &v)
}

/// Writes a run's rows for [`sh::write_run`], one prepared statement per table.
struct RunRows<'c> {
    conn: &'c Connection,
    org: i64,
}

impl RunWriter for RunRows<'_> {
    fn insert_steps(
        &mut self,
        rows: &[(i64, &StepRecord)],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO dunning_steps (org_id, invoice_id, policy, step, done_on, done_at, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (org_id, invoice_id, policy, step) DO NOTHING",
            )
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for (invoice, s) in rows {
            let n = stmt
                .execute(params![
                    self.org,
                    invoice,
                    s.policy,
                    s.step.to_string(),
                    date_text(s.done_on),
                    ts(s.done_at),
                    to_json("step outcome", &s.outcome)?
                ])
                .map_err(map_err)?;
            out.push((n == 1).then(|| self.conn.last_insert_rowid()));
        }
        Ok(out)
    }

    fn insert_messages(
        &mut self,
        rows: &[(i64, &OutboxMessage)],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO outbox_messages (org_id, key, customer_id, channel, contact, recipient, policy, step, template, locale,
                    currency, invoices, subject, body_text, body_html, token, time_zone, not_before, created_at, status, attempts,
                    next_attempt_at, claimed_by, lease_until, last_error, provider_id, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
                    ?23, ?24, ?25, ?26, ?27)
                 ON CONFLICT (org_id, key) DO NOTHING",
            )
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for (customer, m) in rows {
            let n = stmt
                .execute(params![
                    self.org,
                    m.key,
                    customer,
                    m.channel.as_str(),
                    m.contact,
                    m.recipient,
                    m.policy,
                    m.step.to_string(),
                    m.template,
                    m.locale,
                    m.currency.code(),
                    to_json("message invoices", &m.invoices)?,
                    m.subject,
                    m.body_text,
                    m.body_html,
                    m.token,
                    m.time_zone,
                    ts(m.not_before),
                    ts(m.created_at),
                    m.status.as_str(),
                    m.attempts,
                    ts(m.next_attempt_at),
                    m.claimed_by,
                    opt_ts(m.lease_until),
                    m.last_error,
                    m.provider_id,
                    opt_ts(m.sent_at)
                ])
                .map_err(map_err)?;
            out.push((n == 1).then(|| self.conn.last_insert_rowid()));
        }
        Ok(out)
    }

    fn insert_tasks(&mut self, rows: &[(i64, &Task)]) -> Result<Vec<Option<i64>>, StoreError> {
        rows.iter()
            .map(|(customer, t)| insert_task(self.conn, self.org, *customer, t))
            .collect()
    }

    fn insert_charges(&mut self, rows: &[(i64, &Charge)]) -> Result<Vec<Option<i64>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO charges (org_id, key, invoice_id, kind, amount, currency, charged_on, description, created_at,
                    waived_at, waived_by, waive_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (org_id, key) DO NOTHING",
            )
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for (invoice, c) in rows {
            let n = stmt
                .execute(params![
                    self.org,
                    c.key,
                    invoice,
                    c.kind.as_str(),
                    c.amount.minor,
                    c.amount.currency.code(),
                    date_text(c.charged_on),
                    c.description,
                    ts(c.created_at),
                    opt_ts(c.waived_at),
                    c.waived_by,
                    c.waive_reason
                ])
                .map_err(map_err)?;
            out.push((n == 1).then(|| self.conn.last_insert_rowid()));
        }
        Ok(out)
    }

    fn delete(&mut self, table: RunTable, ids: &[i64]) -> Result<(), StoreError> {
        let sql = match table {
            RunTable::Steps => {
                "DELETE FROM dunning_steps WHERE id IN (SELECT value FROM json_each(?1))"
            }
            RunTable::Messages => {
                "DELETE FROM outbox_messages WHERE id IN (SELECT value FROM json_each(?1))"
            }
            RunTable::Tasks => "DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?1))",
            RunTable::Charges => {
                "DELETE FROM charges WHERE id IN (SELECT value FROM json_each(?1))"
            }
        };
        self.conn.execute(sql, [json_list(ids)?]).map_err(map_err)?;
        Ok(())
    }
}

impl SqliteStore {
    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed if it succeeds.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        // An error returns early and dropping `tx` rolls everything back.
        let out = f(&tx)?;
        tx.commit().map_err(map_err)?;
        Ok(out)
    }

    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn()?;
        f(&conn)
    }

    /// A worker's state change of message `id`, checked and logged as `c` says.
    fn worker_change(
        &self,
        id: i64,
        worker: &str,
        now: Timestamp,
        c: WorkerChange<'_>,
        change: impl FnOnce(&OutboxMessage) -> OutboxMessage,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let row = load_message(tx, id)?;
            let before = &row.stored.record;
            check_worker(
                id,
                before.status,
                before.claimed_by.as_deref(),
                worker,
                c.from,
                c.doing,
            )?;
            let after = change(before);
            save_message_state(tx, id, &after)?;
            insert_event(
                tx,
                row.org,
                worker,
                now,
                &ev::message_changed(c.kind, before, &after, c.detail),
            )?;
            if after.status == MessageStatus::Failed {
                let (_, zone) = organization(tx, row.org)?;
                let task =
                    sh::delivery_failed_task(id, &after, c.detail, sh::today_in(&zone, now), now);
                if insert_task(tx, row.org, row.customer_id, &task)?.is_some() {
                    insert_event(tx, row.org, worker, now, &ev::task_created(&task))?;
                }
            }
            Ok(())
        })
    }
}

impl DunningStore for SqliteStore {
    fn organization_ids(&self) -> Result<Vec<i64>, StoreError> {
        self.read(|c| {
            query(c, "SELECT id FROM organizations ORDER BY id", [], |r| {
                col(r, 0)
            })
        })
    }

    fn dunning_settings(&self, org: i64) -> Result<DunningSettings, StoreError> {
        self.read(|c| Ok(load_settings(c, org)?.unwrap_or_default()))
    }

    fn set_dunning_settings(
        &self,
        org: i64,
        settings: &DunningSettings,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let (slug, _) = organization(tx, org)?;
            let before = load_settings(tx, org)?.unwrap_or_default();
            // Nothing changed: nothing to write or log.
            let Some(event) = ev::settings_updated(&slug, &before, settings) else {
                return Ok(());
            };
            save_settings(tx, org, settings, now)?;
            insert_event(tx, org, actor, now, &event)
        })
    }

    fn policies(&self, org: i64) -> Result<Vec<StoredPolicy>, StoreError> {
        self.read(|c| {
            query(
                c,
                "SELECT name, source, updated_at FROM policies WHERE org_id = ?1 ORDER BY name",
                [org],
                |r| {
                    Ok(StoredPolicy {
                        name: col(r, 0)?,
                        source: col(r, 1)?,
                        updated_at: ts_col(r, 2)?,
                    })
                },
            )
        })
    }

    fn put_policy(
        &self,
        org: i64,
        name: &str,
        source: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            organization(tx, org)?;
            let before = query_opt(
                tx,
                "SELECT name, source, updated_at FROM policies WHERE org_id = ?1 AND name = ?2",
                params![org, name],
                |r| {
                    Ok(StoredPolicy {
                        name: col(r, 0)?,
                        source: col(r, 1)?,
                        updated_at: ts_col(r, 2)?,
                    })
                },
            )?;
            let after = StoredPolicy {
                name: name.to_owned(),
                source: source.to_owned(),
                updated_at: now,
            };
            let event = match &before {
                // The same text again changes nothing.
                Some(b) if b.source == source => return Ok(()),
                Some(b) => {
                    tx.execute(
                        "UPDATE policies SET source = ?1, updated_at = ?2 WHERE org_id = ?3 AND name = ?4",
                        params![source, ts(now), org, name],
                    )
                    .map_err(map_err)?;
                    ev::policy_updated(b, &after)
                }
                None => {
                    tx.execute(
                        "INSERT INTO policies (org_id, name, source, updated_at) VALUES (?1, ?2, ?3, ?4)",
                        params![org, name, source, ts(now)],
                    )
                    .map_err(map_err)?;
                    ev::policy_created(&after)
                }
            };
            insert_event(tx, org, actor, now, &event)
        })
    }

    fn policy_assignments(&self, org: i64) -> Result<Vec<PolicyAssignment>, StoreError> {
        self.read(|c| {
            query(
                c,
                "SELECT a.scope_kind, a.scope_key, p.name FROM policy_assignments a JOIN policies p ON p.id = a.policy_id
                 WHERE a.org_id = ?1 ORDER BY a.id",
                [org],
                |r| {
                    Ok(PolicyAssignment {
                        scope: sh::assignment_scope(&col::<String>(r, 0)?, col(r, 1)?)?,
                        policy: col(r, 2)?,
                    })
                },
            )
        })
    }

    fn assign_policy(
        &self,
        org: i64,
        scope: &AssignmentScope,
        policy: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (kind, key) = ev::scope_parts(scope);
        self.write(|tx| {
            organization(tx, org)?;
            // The customer the scope belongs to (for the timeline); an
            // assignment needs its invoice or customer to exist.
            let customer = match scope {
                AssignmentScope::Invoice(n) => match find_invoice(tx, org, n)? {
                    Some((_, c)) => Some(c),
                    None if policy.is_some() => return Err(unknown("invoice", n)),
                    None => None,
                },
                AssignmentScope::Customer(k) => {
                    if policy.is_some() && find_customer(tx, org, k)?.is_none() {
                        return Err(unknown("customer", k));
                    }
                    Some(k.clone())
                }
                AssignmentScope::Segment(_) => None,
            };
            let current: Option<String> = query_opt(
                tx,
                "SELECT p.name FROM policy_assignments a JOIN policies p ON p.id = a.policy_id
                 WHERE a.org_id = ?1 AND a.scope_kind = ?2 AND a.scope_key = ?3",
                params![org, kind, key],
                |r| col(r, 0),
            )?;
            if current.as_deref() == policy {
                return Ok(());
            }
            match policy {
                Some(name) => {
                    let policy_id: i64 = query_opt(
                        tx,
                        "SELECT id FROM policies WHERE org_id = ?1 AND name = ?2",
                        params![org, name],
                        |r| col(r, 0),
                    )?
                    .ok_or_else(|| unknown("policy", name))?;
                    tx.execute(
                        "INSERT INTO policy_assignments (org_id, scope_kind, scope_key, policy_id) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (org_id, scope_kind, scope_key) DO UPDATE SET policy_id = excluded.policy_id",
                        params![org, kind, key, policy_id],
                    )
                    .map_err(map_err)?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM policy_assignments WHERE org_id = ?1 AND scope_kind = ?2 AND scope_key = ?3",
                        params![org, kind, key],
                    )
                    .map_err(map_err)?;
                }
            }
            let event = ev::policy_assignment(scope, current.as_deref(), policy, customer.as_deref());
            insert_event(tx, org, actor, now, &event)
        })
    }

    fn holds(&self, org: i64) -> Result<Vec<Stored<Hold>>, StoreError> {
        self.read(|c| {
            query(
                c,
                &format!("{HOLD_SELECT} WHERE h.org_id = ?1 ORDER BY h.id"),
                [org],
                |r| Ok(hold_row(r)?.0),
            )
        })
    }

    fn create_hold(&self, org: i64, hold: &Hold, now: Timestamp) -> Result<i64, StoreError> {
        self.write(|tx| {
            let (customer_id, invoice_id, customer) = resolve_scope(tx, org, &hold.scope)?;
            tx.execute(
                "INSERT INTO holds (org_id, customer_id, invoice_id, reason, created_at, created_by, expires_on, ended_at, ended_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    org,
                    customer_id,
                    invoice_id,
                    hold.reason,
                    ts(hold.created_at),
                    hold.created_by,
                    hold.expires_on.map(date_text),
                    opt_ts(hold.ended_at),
                    hold.ended_by
                ],
            )
            .map_err(map_err)?;
            let id = tx.last_insert_rowid();
            insert_event(tx, org, &hold.created_by, now, &ev::hold_created(id, hold, &customer))?;
            Ok(id)
        })
    }

    fn end_hold(&self, org: i64, id: i64, actor: &str, now: Timestamp) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let (_, zone) = organization(tx, org)?;
            let (hold, customer) = query_opt(
                tx,
                &format!("{HOLD_SELECT} WHERE h.org_id = ?1 AND h.id = ?2"),
                params![org, id],
                hold_row,
            )?
            .ok_or(not_found("hold", id))?;
            let before = hold.record;
            if before.ended_at.is_some() {
                return Err(conflict(format!("hold #{id} has already ended")));
            }
            if let Some(expiry) = before.expires_on
                && sh::today_in(&zone, now) >= expiry
            {
                return Err(conflict(format!("hold #{id} already expired on {expiry}")));
            }
            let after = Hold {
                ended_at: Some(now),
                ended_by: Some(actor.to_owned()),
                ..before.clone()
            };
            tx.execute(
                "UPDATE holds SET ended_at = ?1, ended_by = ?2 WHERE id = ?3 AND org_id = ?4",
                params![opt_ts(after.ended_at), after.ended_by, id, org],
            )
            .map_err(map_err)?;
            insert_event(
                tx,
                org,
                actor,
                now,
                &ev::hold_ended(id, &before, &after, &customer),
            )
        })
    }

    fn disputes(&self, org: i64) -> Result<Vec<Stored<Dispute>>, StoreError> {
        self.read(|c| {
            query(
                c,
                &format!("{DISPUTE_SELECT} WHERE d.org_id = ?1 ORDER BY d.id"),
                [org],
                |r| Ok(dispute_row(r)?.0),
            )
        })
    }

    fn open_dispute(&self, org: i64, dispute: &Dispute, now: Timestamp) -> Result<i64, StoreError> {
        self.write(|tx| {
            let (invoice_id, customer) = find_invoice(tx, org, &dispute.invoice)?
                .ok_or_else(|| unknown("invoice", &dispute.invoice))?;
            let open: Option<i64> = query_opt(
                tx,
                "SELECT id FROM disputes WHERE org_id = ?1 AND invoice_id = ?2 AND resolved_at IS NULL",
                params![org, invoice_id],
                |r| col(r, 0),
            )?;
            if let (Some(open), None) = (open, dispute.resolved_at) {
                return Err(conflict(format!(
                    "invoice {} already has an open dispute (#{open})",
                    dispute.invoice
                )));
            }
            tx.execute(
                "INSERT INTO disputes (org_id, invoice_id, reason, opened_at, opened_by, resolved_at, resolved_by, resolution)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    org,
                    invoice_id,
                    dispute.reason,
                    ts(dispute.opened_at),
                    dispute.opened_by,
                    opt_ts(dispute.resolved_at),
                    dispute.resolved_by,
                    dispute.resolution
                ],
            )
            .map_err(map_err)?;
            let id = tx.last_insert_rowid();
            insert_event(tx, org, &dispute.opened_by, now, &ev::dispute_opened(id, dispute, &customer))?;
            Ok(id)
        })
    }

    fn resolve_dispute(
        &self,
        org: i64,
        id: i64,
        resolution: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let (dispute, customer) = query_opt(
                tx,
                &format!("{DISPUTE_SELECT} WHERE d.org_id = ?1 AND d.id = ?2"),
                params![org, id],
                dispute_row,
            )?
            .ok_or(not_found("dispute", id))?;
            let before = dispute.record;
            if before.resolved_at.is_some() {
                return Err(conflict(format!("dispute #{id} is already resolved")));
            }
            let after = Dispute {
                resolved_at: Some(now),
                resolved_by: Some(actor.to_owned()),
                resolution: Some(resolution.to_owned()),
                ..before.clone()
            };
            tx.execute(
                "UPDATE disputes SET resolved_at = ?1, resolved_by = ?2, resolution = ?3 WHERE id = ?4 AND org_id = ?5",
                params![opt_ts(after.resolved_at), after.resolved_by, after.resolution, id, org],
            )
            .map_err(map_err)?;
            insert_event(tx, org, actor, now, &ev::dispute_resolved(id, &before, &after, &customer))
        })
    }

    fn promises(&self, org: i64) -> Result<Vec<Stored<Promise>>, StoreError> {
        self.read(|c| {
            query(
                c,
                &format!("{PROMISE_SELECT} WHERE p.org_id = ?1 ORDER BY p.id"),
                [org],
                |r| Ok(promise_row(r)?.0),
            )
        })
    }

    fn create_promise(
        &self,
        org: i64,
        promise: &Promise,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.write(|tx| insert_promise(tx, org, promise, now))
    }

    fn create_promises(
        &self,
        org: i64,
        promises: &[Promise],
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        self.write(|tx| {
            promises
                .iter()
                .map(|p| insert_promise(tx, org, p, now))
                .collect()
        })
    }

    fn cancel_promise(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let (promise, customer) = query_opt(
                tx,
                &format!("{PROMISE_SELECT} WHERE p.org_id = ?1 AND p.id = ?2"),
                params![org, id],
                promise_row,
            )?
            .ok_or(not_found("promise", id))?;
            let before = promise.record;
            if before.cancelled_at.is_some() {
                return Err(conflict(format!("promise #{id} is already cancelled")));
            }
            let after = Promise {
                cancelled_at: Some(now),
                cancelled_by: Some(actor.to_owned()),
                ..before.clone()
            };
            tx.execute(
                "UPDATE promises SET cancelled_at = ?1, cancelled_by = ?2 WHERE id = ?3 AND org_id = ?4",
                params![opt_ts(after.cancelled_at), after.cancelled_by, id, org],
            )
            .map_err(map_err)?;
            insert_event(tx, org, actor, now, &ev::promise_cancelled(id, &before, &after, &customer))
        })
    }

    fn step_records(&self, org: i64) -> Result<Vec<StepRecord>, StoreError> {
        self.read(|c| {
            query(
                c,
                "SELECT i.number, s.policy, s.step, s.done_on, s.done_at, s.outcome
                 FROM dunning_steps s JOIN invoices i ON i.id = s.invoice_id WHERE s.org_id = ?1 ORDER BY s.id",
                [org],
                |r| {
                    Ok(StepRecord {
                        invoice: col(r, 0)?,
                        policy: col(r, 1)?,
                        step: sh::parse_step(&col::<String>(r, 2)?)?,
                        done_on: date_col(r, 3)?,
                        done_at: ts_col(r, 4)?,
                        outcome: from_json("step outcome", &col::<String>(r, 5)?)?,
                    })
                },
            )
        })
    }

    fn record_run(
        &self,
        org: i64,
        actions: &[PlannedWrite],
        today: Date,
        actor: &str,
        now: Timestamp,
    ) -> Result<RunCounts, StoreError> {
        let mut conn = self.conn()?;
        // A big run writes hundreds of thousands of rows: the same large
        // page cache as `apply`, for the length of the write.
        conn.execute_batch(WRITE_CACHE).map_err(map_err)?;
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let counts = record_run_in(&tx, org, actions, today, actor, now)?;
            tx.commit().map_err(map_err)?;
            Ok(counts)
        })();
        conn.execute_batch(READ_CACHE).map_err(map_err)?;
        result
    }

    fn outbox(
        &self,
        org: i64,
        filter: &OutboxFilter,
    ) -> Result<Vec<Stored<OutboxMessage>>, StoreError> {
        // Only the filters given go into the statement: `?2 IS NULL OR
        // m.status = ?2` would keep SQLite from using the status index.
        // Unused numbered parameters are allowed, so the values stay put.
        let limit = filter.limit.map_or(-1, i64::from);
        let mut sql = format!("{MESSAGE_SELECT} WHERE m.org_id = ?1");
        if filter.status.is_some() {
            sql.push_str(" AND m.status = ?2");
        }
        if filter.customer.is_some() {
            sql.push_str(" AND c.external_id = ?3");
        }
        sql.push_str(" ORDER BY m.id DESC LIMIT ?4");
        self.read(|c| {
            query(
                c,
                &sql,
                params![
                    org,
                    filter.status.map(|s| s.as_str()),
                    filter.customer,
                    limit
                ],
                |r| Ok(message_row(r)?.stored),
            )
        })
    }

    fn message(&self, org: i64, id: i64) -> Result<Option<Stored<OutboxMessage>>, StoreError> {
        self.read(|c| {
            query_opt(
                c,
                &format!("{MESSAGE_SELECT} WHERE m.org_id = ?1 AND m.id = ?2"),
                params![org, id],
                |r| Ok(message_row(r)?.stored),
            )
        })
    }

    fn contact_log(
        &self,
        org: i64,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        self.read(|c| {
            query(
                c,
                "SELECT c.external_id, coalesce(m.sent_at, m.not_before) FROM outbox_messages m
                 JOIN customers c ON c.id = m.customer_id
                 WHERE m.org_id = ?1 AND m.channel IN ('email', 'sms')
                   AND m.status IN ('queued', 'claimed', 'sending', 'sent', 'in_doubt')
                   AND coalesce(m.sent_at, m.not_before) >= ?2
                 ORDER BY m.id",
                params![org, ts(since)],
                |r| Ok((col(r, 0)?, ts_col(r, 1)?)),
            )
        })
    }

    fn claim_messages(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.write(|tx| {
            let ids = query(
                tx,
                "UPDATE outbox_messages SET status = 'claimed', claimed_by = ?1, lease_until = ?2, attempts = attempts + 1
                 WHERE id IN (
                     SELECT m.id FROM outbox_messages m
                     WHERE m.status = 'queued' AND m.next_attempt_at <= ?3 AND m.not_before <= ?3
                       AND NOT EXISTS (SELECT 1 FROM dunning_settings s WHERE s.org_id = m.org_id AND s.paused)
                     ORDER BY m.id LIMIT ?4)
                 RETURNING id",
                params![worker, ts(lease_until), ts(now), i64::from(limit)],
                |r| col::<i64>(r, 0),
            )?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            query(
                tx,
                &format!("{MESSAGE_SELECT} WHERE m.id IN (SELECT value FROM json_each(?1)) ORDER BY m.id"),
                [json_list(&ids)?],
                |r| {
                    let row = message_row(r)?;
                    Ok(Claimed {
                        org: row.org,
                        message: row.stored,
                    })
                },
            )
        })
    }

    fn mark_sending(&self, id: i64, worker: &str, _now: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            let (status, claimed_by): (String, Option<String>) = query_opt(
                tx,
                "SELECT status, claimed_by FROM outbox_messages WHERE id = ?1",
                [id],
                |r| Ok((col(r, 0)?, col(r, 1)?)),
            )?
            .ok_or(not_found("message", id))?;
            check_worker(
                id,
                sh::parse_status(&status)?,
                claimed_by.as_deref(),
                worker,
                &[MessageStatus::Claimed],
                "mark as sending",
            )?;
            tx.execute(
                "UPDATE outbox_messages SET status = 'sending' WHERE id = ?1",
                [id],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn mark_sent(
        &self,
        id: i64,
        worker: &str,
        provider_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        let c = WorkerChange {
            from: &[MessageStatus::Sending],
            doing: "mark as sent",
            kind: "message.sent",
            detail: "",
        };
        self.worker_change(id, worker, now, c, |m| sh::sent(m, provider_id, now))
    }

    fn mark_retry(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        next_attempt_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let next = truncate_micros(next_attempt_at);
        let c = WorkerChange {
            from: CLAIMED_OR_SENDING,
            doing: "retry",
            kind: "message.retry",
            detail: error,
        };
        self.worker_change(id, worker, now, c, |m| sh::retry(m, error, next))
    }

    fn mark_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let c = WorkerChange {
            from: CLAIMED_OR_SENDING,
            doing: "mark as failed",
            kind: "message.failed",
            detail: error,
        };
        self.worker_change(id, worker, now, c, |m| sh::failed(m, error))
    }

    fn mark_cancelled(
        &self,
        id: i64,
        worker: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let c = WorkerChange {
            from: CLAIMED_OR_SENDING,
            doing: "cancel",
            kind: "message.cancelled",
            detail: reason,
        };
        self.worker_change(id, worker, now, c, sh::cancelled)
    }

    fn release_expired_leases(&self, now: Timestamp) -> Result<Released, StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let requeued = tx
                .execute(
                    "UPDATE outbox_messages SET status = 'queued', claimed_by = NULL, lease_until = NULL
                     WHERE status = 'claimed' AND lease_until < ?1",
                    [ts(now)],
                )
                .map_err(map_err)?;
            let doubted = query(
                tx,
                "UPDATE outbox_messages SET status = 'in_doubt' WHERE status = 'sending' AND lease_until < ?1 RETURNING id",
                [ts(now)],
                |r| col::<i64>(r, 0),
            )?;
            let mut zones: HashMap<i64, String> = HashMap::new();
            let mut sorted = doubted.clone();
            sorted.sort_unstable();
            for id in sorted {
                let row = load_message(tx, id)?;
                let zone = match zones.get(&row.org) {
                    Some(z) => z.clone(),
                    None => {
                        let (_, z) = organization(tx, row.org)?;
                        zones.insert(row.org, z.clone());
                        z
                    }
                };
                let task = sh::in_doubt_task(id, &row.stored.record, sh::today_in(&zone, now), now);
                if insert_task(tx, row.org, row.customer_id, &task)?.is_some() {
                    insert_event(tx, row.org, SYSTEM_ACTOR, now, &ev::task_created(&task))?;
                }
            }
            Ok(Released {
                requeued: requeued as u64,
                in_doubt: doubted.len() as u64,
            })
        })
    }

    fn resolve_in_doubt(
        &self,
        org: i64,
        id: i64,
        delivered: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let row = query_opt(
                tx,
                &format!("{MESSAGE_SELECT} WHERE m.org_id = ?1 AND m.id = ?2"),
                params![org, id],
                message_row,
            )?
            .ok_or(not_found("message", id))?;
            let before = &row.stored.record;
            if before.status != MessageStatus::InDoubt {
                return Err(conflict(format!(
                    "message #{id} is {}, not in doubt",
                    before.status
                )));
            }
            let after = sh::confirmed(before, delivered, now);
            save_message_state(tx, id, &after)?;
            let detail = if delivered {
                "confirmed delivered"
            } else {
                "confirmed not delivered: queued to be sent again"
            };
            insert_event(tx, org, actor, now, &ev::message_changed("message.confirmed", before, &after, detail))?;
            let open = query(
                tx,
                &format!(
                    "{TASK_SELECT} WHERE t.org_id = ?1 AND t.kind = ?2 AND t.message_key = ?3 AND t.status = 'open' ORDER BY t.id"
                ),
                params![org, TaskKind::InDoubt.as_str(), before.key],
                task_row,
            )?;
            for task in &open {
                complete_task_row(tx, org, task, actor, now)?;
            }
            Ok(())
        })
    }

    fn tasks(&self, org: i64, include_done: bool) -> Result<Vec<Stored<Task>>, StoreError> {
        self.read(|c| {
            query(
                c,
                &format!(
                    "{TASK_SELECT} WHERE t.org_id = ?1 AND (?2 OR t.status = 'open') ORDER BY t.id"
                ),
                params![org, include_done],
                task_row,
            )
        })
    }

    fn complete_task(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| complete_open_task(tx, org, id, actor, now))
    }

    fn charges(&self, org: i64) -> Result<Vec<Stored<Charge>>, StoreError> {
        self.read(|c| {
            query(
                c,
                &format!("{CHARGE_SELECT} WHERE ch.org_id = ?1 ORDER BY ch.id"),
                [org],
                |r| Ok(charge_row(r)?.0),
            )
        })
    }

    fn waive_charge(
        &self,
        org: i64,
        id: i64,
        reason: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let (charge, customer) = query_opt(
                tx,
                &format!("{CHARGE_SELECT} WHERE ch.org_id = ?1 AND ch.id = ?2"),
                params![org, id],
                charge_row,
            )?
            .ok_or(not_found("charge", id))?;
            let before = charge.record;
            if before.waived_at.is_some() {
                return Err(conflict(format!("charge #{id} is already waived")));
            }
            let after = Charge {
                waived_at: Some(now),
                waived_by: Some(actor.to_owned()),
                waive_reason: Some(reason.to_owned()),
                ..before.clone()
            };
            tx.execute(
                "UPDATE charges SET waived_at = ?1, waived_by = ?2, waive_reason = ?3 WHERE id = ?4 AND org_id = ?5",
                params![opt_ts(after.waived_at), after.waived_by, after.waive_reason, id, org],
            )
            .map_err(map_err)?;
            insert_event(tx, org, actor, now, &ev::charge_waived(&before, &after, &customer))
        })
    }

    fn bounces(&self, org: i64) -> Result<Vec<Bounce>, StoreError> {
        self.read(|c| {
            query(
                c,
                "SELECT address, at, reason, cleared_at FROM bounces WHERE org_id = ?1 ORDER BY id",
                [org],
                bounce_row,
            )
        })
    }

    fn record_bounce(
        &self,
        org: i64,
        address: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        let address = sh::normalize_address(address);
        self.write(|tx| {
            let (_, zone) = organization(tx, org)?;
            let before = load_bounce(tx, org, &address)?;
            let after = Bounce {
                address: address.clone(),
                at: now,
                reason: reason.to_owned(),
                cleared_at: None,
            };
            tx.execute(
                "INSERT INTO bounces (org_id, address, at, reason, cleared_at) VALUES (?1, ?2, ?3, ?4, NULL)
                 ON CONFLICT (org_id, address) DO UPDATE SET at = excluded.at, reason = excluded.reason, cleared_at = NULL",
                params![org, address, ts(now), reason],
            )
            .map_err(map_err)?;
            insert_event(tx, org, SYSTEM_ACTOR, now, &ev::bounce_recorded(before.as_ref(), &after))?;
            // An address already bouncing gets no email, so a repeat report
            // adds nothing for a person to do.
            if before.is_some_and(|b| b.cleared_at.is_none()) {
                return Ok(());
            }
            let contacts = query(
                tx,
                "SELECT c.id, c.external_id, k.name, k.email FROM contacts k JOIN customers c ON c.id = k.customer_id
                 WHERE k.org_id = ?1 AND k.email IS NOT NULL ORDER BY c.id, k.id",
                [org],
                |r| Ok((col::<i64>(r, 0)?, col::<String>(r, 1)?, col::<String>(r, 2)?, col::<String>(r, 3)?)),
            )?;
            let today = sh::today_in(&zone, now);
            for (customer_id, customer, names) in sh::group_bounced(contacts, &address) {
                let task = sh::bounce_task(&address, &customer, &names, reason, today, now);
                if insert_task(tx, org, customer_id, &task)?.is_some() {
                    insert_event(tx, org, SYSTEM_ACTOR, now, &ev::task_created(&task))?;
                }
            }
            Ok(())
        })
    }

    fn clear_bounce(
        &self,
        org: i64,
        address: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        let address = sh::normalize_address(address);
        self.write(|tx| {
            let before =
                load_bounce(tx, org, &address)?.ok_or_else(|| unknown("bounce", &address))?;
            if before.cleared_at.is_some() {
                return Err(conflict(format!(
                    "the bounce of {address} is already cleared"
                )));
            }
            let after = Bounce {
                cleared_at: Some(now),
                ..before.clone()
            };
            tx.execute(
                "UPDATE bounces SET cleared_at = ?1 WHERE org_id = ?2 AND address = ?3",
                params![ts(now), org, address],
            )
            .map_err(map_err)?;
            insert_event(tx, org, actor, now, &ev::bounce_cleared(&before, &after))
        })
    }

    fn unsubscribe(&self, token: &str, now: Timestamp) -> Result<Option<Unsubscribed>, StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let found = tx
                .query_row(
                    "SELECT m.org_id, m.customer_id, c.external_id, m.recipient FROM outbox_messages m
                     JOIN customers c ON c.id = m.customer_id
                     WHERE m.token = ?1 AND m.channel = 'email'
                 ORDER BY m.id DESC LIMIT 1",
                    params![token],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )
                .map(Some)
                .or_else(|e| match e {
                    r2d2_sqlite::rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(map_err)?;
            let Some((org, customer_id, customer, address)) = found else {
                return Ok(None);
            };
            let keys: Vec<String> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT external_id FROM contacts WHERE org_id = ?1 AND customer_id = ?2
                         AND lower(trim(email)) = lower(?3) AND email_opt_out = 0 ORDER BY external_id",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![org, customer_id, address], |r| r.get(0))
                    .map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)?
            };
            tx.execute(
                "UPDATE contacts SET email_opt_out = 1 WHERE org_id = ?1 AND customer_id = ?2
                 AND lower(trim(email)) = lower(?3) AND email_opt_out = 0",
                params![org, customer_id, address],
            )
            .map_err(map_err)?;
            for key in &keys {
                let e = ev::contact_unsubscribed(key, &customer, &address);
                insert_event(tx, org, UNSUBSCRIBE_ACTOR, now, &e)?;
            }
            if !keys.is_empty() {
                bump_ledger_version(tx, org)?;
            }
            Ok(Some(Unsubscribed {
                org,
                customer,
                address,
                changed: !keys.is_empty(),
            }))
        })
    }
}

fn record_run_in(
    tx: &Connection,
    org: i64,
    actions: &[PlannedWrite],
    today: Date,
    actor: &str,
    now: Timestamp,
) -> Result<RunCounts, StoreError> {
    let (slug, _) = organization(tx, org)?;
    let needs = sh::run_needs(actions);
    let mut refs = sh::RunRefs::default();
    // The (org_id, number) index holds the id: no table access per invoice.
    if !needs.invoices.is_empty() {
        let mut stmt = tx
            .prepare(
                "SELECT i.id, i.number FROM json_each(?2) j
                 CROSS JOIN invoices i ON i.org_id = ?1 AND i.number = j.value",
            )
            .map_err(map_err)?;
        let mut rows = stmt
            .query(params![org, to_json("invoice numbers", &needs.invoices)?])
            .map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            if let Some(number) = needs.invoices.get(text_ref(r, 1)?) {
                refs.invoices.insert(number, col(r, 0)?);
            }
        }
    }
    if !needs.charged.is_empty() {
        let mut stmt = tx
            .prepare(
                "SELECT i.number, c.external_id FROM json_each(?2) j
                 CROSS JOIN invoices i ON i.org_id = ?1 AND i.number = j.value
                 JOIN customers c ON c.id = i.customer_id",
            )
            .map_err(map_err)?;
        let mut rows = stmt
            .query(params![org, to_json("invoice numbers", &needs.charged)?])
            .map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            if let Some(number) = needs.charged.get(text_ref(r, 0)?) {
                refs.charged.insert(number, col(r, 1)?);
            }
        }
    }
    if !needs.customers.is_empty() {
        let mut stmt = tx
            .prepare(
                "SELECT c.id, c.external_id FROM json_each(?2) j
                 CROSS JOIN customers c ON c.org_id = ?1 AND c.external_id = j.value",
            )
            .map_err(map_err)?;
        let mut rows = stmt
            .query(params![org, to_json("customer keys", &needs.customers)?])
            .map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            if let Some(key) = needs.customers.get(text_ref(r, 1)?) {
                refs.customers.insert(key, col(r, 0)?);
            }
        }
    }

    let mut rows = RunRows { conn: tx, org };
    let (counts, written) = sh::write_run(&mut rows, actions, &refs)?;

    let recorded_at = ts_text(now);
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO events (org_id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(map_err)?;
    sh::for_each_run_event(actions, &written, &refs, |e| {
        let data = serde_json::to_string(&e.data)
            .map_err(|err| StoreError::Database(format!("event data: {err}")))?;
        insert
            .execute(params![
                org,
                recorded_at,
                actor,
                e.kind,
                e.entity_type,
                e.entity_key,
                e.customer,
                e.summary,
                data
            ])
            .map_err(map_err)?;
        Ok(())
    })?;
    drop(insert);

    let before = load_settings(tx, org)?.unwrap_or_default();
    // Only a run that records steps starts dunning; one that only opens
    // tasks (alerts, broken promises) does not.
    if before.started_on.is_none() && counts.step_records > 0 {
        let after = DunningSettings {
            started_on: Some(today),
            ..before.clone()
        };
        save_settings(tx, org, &after, now)?;
        if let Some(e) = ev::settings_updated(&slug, &before, &after) {
            insert_event(tx, org, actor, now, &e)?;
        }
    }
    insert_event(tx, org, actor, now, &ev::run(today, &counts))?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_timestamps_match_jiff_and_sort_as_text() {
        let samples = [
            0i64,
            1,
            999_999,
            1_000_000,
            1_718_000_000_123_456,
            1_718_000_000_000_000,
            -1,
            -62_135_596_800_000_000, // 0001-01-01
            253_402_128_000_999_999, // 9999-12-30T00:00:00.999999
            951_782_400_000_000,     // 2000-02-29
        ];
        let mut texts = Vec::new();
        for us in samples {
            let t = Timestamp::from_microsecond(us).expect("in range");
            let text = ts(t);
            assert_eq!(text, format!("{t:.6}"), "{us}");
            assert_eq!(text.len(), 27);
            assert_eq!(parse_timestamp(&text).ok(), Some(t));
            texts.push((t, text));
        }
        texts.sort_by(|a, b| a.1.cmp(&b.1));
        assert!(texts.windows(2).all(|w| w[0].0 < w[1].0));
        // Nanoseconds are dropped, as everywhere in the store.
        let t = Timestamp::new(1_718_000_000, 123_456_789).expect("in range");
        assert_eq!(ts(t), "2024-06-10T06:13:20.123456Z");
    }
}
