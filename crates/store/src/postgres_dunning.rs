//! PostgreSQL implementation of [`DunningStore`].
//!
//! Same semantics as SQLite. Writes are ordinary READ COMMITTED transactions:
//! rows about to change are read `FOR UPDATE`, the unique constraints make
//! concurrent runs exactly-once (a second insert of a key waits for the first
//! transaction, then does nothing), and claiming uses `FOR UPDATE SKIP
//! LOCKED` so concurrent workers never take the same message. A run's rows go
//! in with `INSERT … SELECT FROM UNNEST(…)`, one round trip per chunk.

use std::collections::HashMap;
use std::time::SystemTime;

use arflow_domain::dunning::records::{
    AssignmentScope, Bounce, Charge, Dispute, DunningSettings, Hold, MessageStatus, OutboxMessage,
    PolicyAssignment, Promise, Scope, StepRecord, StoredPolicy, Task, TaskKind, TaskStatus,
};
use arflow_domain::model::Stored;
use arflow_domain::money::Money;
use jiff::Timestamp;
use jiff::civil::Date;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Transaction};

use crate::StoreError;
use crate::common::{corrupt, parse_currency, truncate_micros, unknown};
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
use crate::postgres::{
    CHUNK, PostgresStore, bump_ledger_version, date_col, date_text, g, map_err, opt_date_col,
    ts_from_sql, ts_to_sql,
};

type Param<'a> = &'a (dyn ToSql + Sync);

/// Who the log names for changes the store makes by itself (lease expiry,
/// bounces reported by a provider).
const SYSTEM_ACTOR: &str = "arflow";

pub(crate) fn ts(t: Timestamp) -> Result<SystemTime, StoreError> {
    ts_to_sql(t)
}

pub(crate) fn opt_ts(t: Option<Timestamp>) -> Result<Option<SystemTime>, StoreError> {
    t.map(ts_to_sql).transpose()
}

pub(crate) fn ts_col(r: &Row, i: usize) -> Result<Timestamp, StoreError> {
    ts_from_sql(g(r, i)?)
}

pub(crate) fn opt_ts_col(r: &Row, i: usize) -> Result<Option<Timestamp>, StoreError> {
    g::<Option<SystemTime>>(r, i)?.map(ts_from_sql).transpose()
}

pub(crate) fn query<C: GenericClient, T>(
    c: &mut C,
    sql: &str,
    params: &[Param<'_>],
    f: impl FnMut(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    c.query(sql, params)
        .map_err(map_err)?
        .iter()
        .map(f)
        .collect()
}

pub(crate) fn query_opt<C: GenericClient, T>(
    c: &mut C,
    sql: &str,
    params: &[Param<'_>],
    f: impl FnMut(&Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    Ok(query(c, sql, params, f)?.into_iter().next())
}

pub(crate) fn execute<C: GenericClient>(
    c: &mut C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<u64, StoreError> {
    c.execute(sql, params).map_err(map_err)
}

/// Appends events, one round trip per chunk.
fn insert_events<C: GenericClient>(
    c: &mut C,
    org: i64,
    actor: &str,
    now: Timestamp,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    let recorded_at = ts(now)?;
    for chunk in events.chunks(CHUNK) {
        let kind: Vec<&str> = chunk.iter().map(|e| e.kind).collect();
        let entity_type: Vec<&str> = chunk.iter().map(|e| e.entity_type).collect();
        let entity_key: Vec<&str> = chunk.iter().map(|e| e.entity_key.as_str()).collect();
        let customer: Vec<Option<&str>> = chunk.iter().map(|e| e.customer.as_deref()).collect();
        let summary: Vec<&str> = chunk.iter().map(|e| e.summary.as_str()).collect();
        let data: Vec<&serde_json::Value> = chunk.iter().map(|e| &e.data).collect();
        execute(
            c,
            "INSERT INTO events (org_id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data)
             SELECT $1, $2, $3, u.a, u.b, u.c, u.d, u.e, u.f
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[]) WITH ORDINALITY AS u(a, b, c, d, e, f, n)
             ORDER BY u.n",
            &[&org, &recorded_at, &actor, &kind, &entity_type, &entity_key, &customer, &summary, &data],
        )?;
    }
    Ok(())
}

pub(crate) fn insert_event<C: GenericClient>(
    c: &mut C,
    org: i64,
    actor: &str,
    now: Timestamp,
    e: NewEvent,
) -> Result<(), StoreError> {
    insert_events(c, org, actor, now, &[e])
}

/// The organization's slug and time zone; `NotFound` if it does not exist.
pub(crate) fn organization<C: GenericClient>(
    c: &mut C,
    org: i64,
) -> Result<(String, String), StoreError> {
    query_opt(
        c,
        "SELECT slug, time_zone FROM organizations WHERE id = $1",
        &[&org],
        |r| Ok((g(r, 0)?, g(r, 1)?)),
    )?
    .ok_or(not_found("organization", org))
}

/// Like [`organization`], and serialises this organization's read-modify-
/// write of settings, policies and assignments. NO KEY UPDATE does not block
/// the KEY SHARE locks other writers' foreign keys take on the row.
fn lock_organization(tx: &mut Transaction<'_>, org: i64) -> Result<(String, String), StoreError> {
    query_opt(
        tx,
        "SELECT slug, time_zone FROM organizations WHERE id = $1 FOR NO KEY UPDATE",
        &[&org],
        |r| Ok((g(r, 0)?, g(r, 1)?)),
    )?
    .ok_or(not_found("organization", org))
}

pub(crate) fn find_invoice<C: GenericClient>(
    c: &mut C,
    org: i64,
    number: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    query_opt(
        c,
        "SELECT i.id, c.external_id FROM invoices i JOIN customers c ON c.id = i.customer_id
         WHERE i.org_id = $1 AND i.number = $2",
        &[&org, &number],
        |r| Ok((g(r, 0)?, g(r, 1)?)),
    )
}

pub(crate) fn find_customer<C: GenericClient>(
    c: &mut C,
    org: i64,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    query_opt(
        c,
        "SELECT id FROM customers WHERE org_id = $1 AND external_id = $2",
        &[&org, &key],
        |r| g(r, 0),
    )
}

/// A hold's or promise's scope as (customer id, invoice id, customer key).
fn resolve_scope<C: GenericClient>(
    c: &mut C,
    org: i64,
    scope: &Scope,
) -> Result<(Option<i64>, Option<i64>, String), StoreError> {
    match scope {
        Scope::Customer(k) => {
            let id = find_customer(c, org, k)?.ok_or_else(|| unknown("customer", k))?;
            Ok((Some(id), None, k.clone()))
        }
        Scope::Invoice(n) => {
            let (id, customer) = find_invoice(c, org, n)?.ok_or_else(|| unknown("invoice", n))?;
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

fn load_settings<C: GenericClient>(
    c: &mut C,
    org: i64,
) -> Result<Option<DunningSettings>, StoreError> {
    query_opt(
        c,
        "SELECT settings::text FROM dunning_settings WHERE org_id = $1",
        &[&org],
        |r| from_json("dunning settings", g(r, 0)?),
    )
}

fn save_settings<C: GenericClient>(
    c: &mut C,
    org: i64,
    s: &DunningSettings,
    now: Timestamp,
) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO dunning_settings (org_id, settings, paused, updated_at) VALUES ($1, $2::text::jsonb, $3, $4)
         ON CONFLICT (org_id) DO UPDATE SET settings = excluded.settings, paused = excluded.paused,
            updated_at = excluded.updated_at",
        &[&org, &to_json("dunning settings", s)?, &s.paused, &ts(now)?],
    )?;
    Ok(())
}

const HOLD_SELECT: &str = "SELECT h.id, c.external_id, i.number, h.reason, h.created_at, h.created_by,
        to_char(h.expires_on, 'YYYY-MM-DD'), h.ended_at, h.ended_by, coalesce(c.external_id, ic.external_id)
     FROM holds h
     LEFT JOIN customers c ON c.id = h.customer_id
     LEFT JOIN invoices i ON i.id = h.invoice_id
     LEFT JOIN customers ic ON ic.id = i.customer_id";

/// A hold and the customer it concerns.
fn hold_row(r: &Row) -> Result<(Stored<Hold>, String), StoreError> {
    Ok((
        Stored {
            id: g(r, 0)?,
            record: Hold {
                scope: scope_of(g(r, 1)?, g(r, 2)?, "hold")?,
                reason: g(r, 3)?,
                created_at: ts_col(r, 4)?,
                created_by: g(r, 5)?,
                expires_on: opt_date_col(r, 6)?,
                ended_at: opt_ts_col(r, 7)?,
                ended_by: g(r, 8)?,
            },
        },
        g::<Option<String>>(r, 9)?.unwrap_or_default(),
    ))
}

const DISPUTE_SELECT: &str = "SELECT d.id, i.number, d.reason, d.opened_at, d.opened_by, d.resolved_at, d.resolved_by,
        d.resolution, c.external_id
     FROM disputes d JOIN invoices i ON i.id = d.invoice_id JOIN customers c ON c.id = i.customer_id";

fn dispute_row(r: &Row) -> Result<(Stored<Dispute>, String), StoreError> {
    Ok((
        Stored {
            id: g(r, 0)?,
            record: Dispute {
                invoice: g(r, 1)?,
                reason: g(r, 2)?,
                opened_at: ts_col(r, 3)?,
                opened_by: g(r, 4)?,
                resolved_at: opt_ts_col(r, 5)?,
                resolved_by: g(r, 6)?,
                resolution: g(r, 7)?,
            },
        },
        g(r, 8)?,
    ))
}

const PROMISE_SELECT: &str = "SELECT p.id, c.external_id, i.number, p.amount, p.currency, to_char(p.promised_on, 'YYYY-MM-DD'),
        p.grace_days::bigint, p.made_at, p.made_by, p.note, p.cancelled_at, p.cancelled_by,
        coalesce(c.external_id, ic.external_id)
     FROM promises p
     LEFT JOIN customers c ON c.id = p.customer_id
     LEFT JOIN invoices i ON i.id = p.invoice_id
     LEFT JOIN customers ic ON ic.id = i.customer_id";

fn promise_row(r: &Row) -> Result<(Stored<Promise>, String), StoreError> {
    let amount = match (g::<Option<i64>>(r, 3)?, g::<Option<&str>>(r, 4)?) {
        (Some(minor), Some(cur)) => Some(Money::new(minor, parse_currency(cur)?)),
        (None, None) => None,
        _ => return Err(corrupt("promise", "an amount needs its currency")),
    };
    Ok((
        Stored {
            id: g(r, 0)?,
            record: Promise {
                scope: scope_of(g(r, 1)?, g(r, 2)?, "promise")?,
                amount,
                promised_on: date_col(r, 5)?,
                grace_days: sh::u32_col("promise grace days", g(r, 6)?)?,
                made_at: ts_col(r, 7)?,
                made_by: g(r, 8)?,
                note: g(r, 9)?,
                cancelled_at: opt_ts_col(r, 10)?,
                cancelled_by: g(r, 11)?,
            },
        },
        g::<Option<String>>(r, 12)?.unwrap_or_default(),
    ))
}

const MESSAGE_SELECT: &str = "SELECT m.id, m.org_id, m.customer_id, m.key, c.external_id, m.channel, m.contact,
        m.recipient, m.policy, m.step, m.template, m.locale, m.currency, m.invoices::text, m.subject, m.body_text,
        m.body_html, m.token, m.time_zone, m.not_before, m.created_at, m.status, m.attempts::bigint, m.next_attempt_at,
        m.claimed_by, m.lease_until, m.last_error, m.provider_id, m.sent_at
     FROM outbox_messages m JOIN customers c ON c.id = m.customer_id";

/// An outbox row with its organization and customer id.
struct MessageRow {
    org: i64,
    customer_id: i64,
    stored: Stored<OutboxMessage>,
}

fn message_row(r: &Row) -> Result<MessageRow, StoreError> {
    Ok(MessageRow {
        org: g(r, 1)?,
        customer_id: g(r, 2)?,
        stored: Stored {
            id: g(r, 0)?,
            record: OutboxMessage {
                key: g(r, 3)?,
                customer: g(r, 4)?,
                channel: sh::parse_channel(g(r, 5)?)?,
                contact: g(r, 6)?,
                recipient: g(r, 7)?,
                policy: g(r, 8)?,
                step: sh::parse_step(g(r, 9)?)?,
                template: g(r, 10)?,
                locale: g(r, 11)?,
                currency: parse_currency(g(r, 12)?)?,
                invoices: from_json("message invoices", g(r, 13)?)?,
                subject: g(r, 14)?,
                body_text: g(r, 15)?,
                body_html: g(r, 16)?,
                token: g(r, 17)?,
                time_zone: g(r, 18)?,
                not_before: ts_col(r, 19)?,
                created_at: ts_col(r, 20)?,
                status: sh::parse_status(g(r, 21)?)?,
                attempts: sh::u32_col("message attempts", g(r, 22)?)?,
                next_attempt_at: ts_col(r, 23)?,
                claimed_by: g(r, 24)?,
                lease_until: opt_ts_col(r, 25)?,
                last_error: g(r, 26)?,
                provider_id: g(r, 27)?,
                sent_at: opt_ts_col(r, 28)?,
            },
        },
    })
}

/// Message `id`, locked for the rest of the transaction.
fn lock_message(tx: &mut Transaction<'_>, id: i64) -> Result<MessageRow, StoreError> {
    query_opt(
        tx,
        &format!("{MESSAGE_SELECT} WHERE m.id = $1 FOR UPDATE OF m"),
        &[&id],
        message_row,
    )?
    .ok_or(not_found("message", id))
}

/// Writes a message's delivery state (everything a state change may alter).
fn save_message_state(
    tx: &mut Transaction<'_>,
    id: i64,
    m: &OutboxMessage,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE outbox_messages SET status = $1, attempts = $2::bigint, next_attempt_at = $3, claimed_by = $4,
            lease_until = $5, last_error = $6, provider_id = $7, sent_at = $8 WHERE id = $9",
        &[
            &m.status.as_str(),
            &i64::from(m.attempts),
            &ts(m.next_attempt_at)?,
            &m.claimed_by,
            &opt_ts(m.lease_until)?,
            &m.last_error,
            &m.provider_id,
            &opt_ts(m.sent_at)?,
            &id,
        ],
    )?;
    Ok(())
}

pub(crate) const TASK_SELECT: &str = "SELECT t.id, t.key, t.kind, c.external_id, t.invoices::text, t.title, t.detail,
        to_char(t.due_on, 'YYYY-MM-DD'), t.created_at, t.status, t.assignee, to_char(t.snoozed_until, 'YYYY-MM-DD'),
        t.completed_at, t.completed_by, t.message_key
     FROM tasks t JOIN customers c ON c.id = t.customer_id";

pub(crate) fn task_row(r: &Row) -> Result<Stored<Task>, StoreError> {
    Ok(Stored {
        id: g(r, 0)?,
        record: Task {
            key: g(r, 1)?,
            kind: sh::parse_task_kind(g(r, 2)?)?,
            customer: g(r, 3)?,
            invoices: from_json("task invoices", g(r, 4)?)?,
            title: g(r, 5)?,
            detail: g(r, 6)?,
            due_on: date_col(r, 7)?,
            created_at: ts_col(r, 8)?,
            status: sh::parse_task_status(g(r, 9)?)?,
            assignee: g(r, 10)?,
            snoozed_until: opt_date_col(r, 11)?,
            completed_at: opt_ts_col(r, 12)?,
            completed_by: g(r, 13)?,
            message_key: g(r, 14)?,
        },
    })
}

/// Inserts tasks (`(customer id, task)`) unless their keys are taken; per
/// task, the new id or `None`.
fn insert_tasks<C: GenericClient>(
    c: &mut C,
    org: i64,
    rows: &[(i64, &Task)],
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let key: Vec<&str> = chunk.iter().map(|(_, t)| t.key.as_str()).collect();
        let kind: Vec<&str> = chunk.iter().map(|(_, t)| t.kind.as_str()).collect();
        let customer: Vec<i64> = chunk.iter().map(|(c, _)| *c).collect();
        let invoices: Vec<String> = chunk
            .iter()
            .map(|(_, t)| to_json("task invoices", &t.invoices))
            .collect::<Result<_, _>>()?;
        let title: Vec<&str> = chunk.iter().map(|(_, t)| t.title.as_str()).collect();
        let detail: Vec<&str> = chunk.iter().map(|(_, t)| t.detail.as_str()).collect();
        let due: Vec<String> = chunk.iter().map(|(_, t)| date_text(t.due_on)).collect();
        let created: Vec<SystemTime> = chunk
            .iter()
            .map(|(_, t)| ts(t.created_at))
            .collect::<Result<_, _>>()?;
        let status: Vec<&str> = chunk
            .iter()
            .map(|(_, t)| sh::task_status_str(t.status))
            .collect();
        let assignee: Vec<Option<&str>> =
            chunk.iter().map(|(_, t)| t.assignee.as_deref()).collect();
        let snoozed: Vec<Option<String>> = chunk
            .iter()
            .map(|(_, t)| t.snoozed_until.map(date_text))
            .collect();
        let completed: Vec<Option<SystemTime>> = chunk
            .iter()
            .map(|(_, t)| opt_ts(t.completed_at))
            .collect::<Result<_, _>>()?;
        let completed_by: Vec<Option<&str>> = chunk
            .iter()
            .map(|(_, t)| t.completed_by.as_deref())
            .collect();
        let message_key: Vec<Option<&str>> = chunk
            .iter()
            .map(|(_, t)| t.message_key.as_deref())
            .collect();
        let mut ids: HashMap<String, i64> = query(
            c,
            "INSERT INTO tasks (org_id, key, kind, customer_id, invoices, title, detail, due_on, created_at, status, assignee,
                snoozed_until, completed_at, completed_by, message_key)
             SELECT $1, u.a, u.b, u.c, u.d::jsonb, u.e, u.f, u.g::date, u.h, u.i, u.j, u.k::date, u.l, u.m, u.o
             FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
                         $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::text[], $15::text[])
                  WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, i, j, k, l, m, o, n)
             ORDER BY u.n
             ON CONFLICT ON CONSTRAINT tasks_org_key_key DO NOTHING
             RETURNING key, id",
            &[
                &org, &key, &kind, &customer, &invoices, &title, &detail, &due, &created, &status, &assignee, &snoozed,
                &completed, &completed_by, &message_key,
            ],
            |r| Ok((g(r, 0)?, g(r, 1)?)),
        )?
        .into_iter()
        .collect();
        // The first row with a key took it; later ones with the same key did not.
        out.extend(chunk.iter().map(|(_, t)| ids.remove(&t.key)));
    }
    Ok(out)
}

fn insert_task<C: GenericClient>(
    c: &mut C,
    org: i64,
    customer_id: i64,
    t: &Task,
) -> Result<Option<i64>, StoreError> {
    Ok(insert_tasks(c, org, &[(customer_id, t)])?
        .into_iter()
        .next()
        .flatten())
}

fn complete_task_row(
    tx: &mut Transaction<'_>,
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
    execute(
        tx,
        "UPDATE tasks SET status = $1, completed_at = $2, completed_by = $3 WHERE id = $4 AND org_id = $5",
        &[
            &sh::task_status_str(after.status),
            &opt_ts(after.completed_at)?,
            &after.completed_by,
            &task.id,
            &org,
        ],
    )?;
    insert_event(
        tx,
        org,
        actor,
        now,
        ev::task_completed(&task.record, &after),
    )
}

/// Completes an open task of `org` inside the caller's transaction (the row
/// locked first); a task already done is a conflict.
pub(crate) fn complete_open_task(
    tx: &mut Transaction<'_>,
    org: i64,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let task = load_open_task(tx, org, id)?;
    complete_task_row(tx, org, &task, actor, truncate_micros(now))
}

/// An open task of `org`, its row locked for the rest of the transaction; a
/// task already done is a conflict.
pub(crate) fn load_open_task(
    tx: &mut Transaction<'_>,
    org: i64,
    id: i64,
) -> Result<Stored<Task>, StoreError> {
    let task = query_opt(
        tx,
        &format!("{TASK_SELECT} WHERE t.org_id = $1 AND t.id = $2 FOR UPDATE OF t"),
        &[&org, &id],
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
    tx: &mut Transaction<'_>,
    org: i64,
    promise: &Promise,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let (customer_id, invoice_id, customer) = resolve_scope(tx, org, &promise.scope)?;
    let id: i64 = query_opt(
            tx,
            "INSERT INTO promises (org_id, customer_id, invoice_id, amount, currency, promised_on, grace_days, made_at, made_by,
                note, cancelled_at, cancelled_by)
             VALUES ($1, $2, $3, $4, $5, $6::text::date, $7::bigint, $8, $9, $10, $11, $12) RETURNING id",
            &[
                &org,
                &customer_id,
                &invoice_id,
                &promise.amount.map(|m| m.minor),
                &promise.amount.map(|m| m.currency.code()),
                &date_text(promise.promised_on),
                &i64::from(promise.grace_days),
                &ts(promise.made_at)?,
                &promise.made_by,
                &promise.note,
                &opt_ts(promise.cancelled_at)?,
                &promise.cancelled_by,
            ],
            |r| g(r, 0),
        )?
        .ok_or_else(|| StoreError::Database("INSERT … RETURNING returned no row".into()))?;
    insert_event(
        tx,
        org,
        &promise.made_by,
        now,
        ev::promise_created(id, promise, &customer),
    )?;
    Ok(id)
}

const CHARGE_SELECT: &str = "SELECT ch.id, ch.key, i.number, ch.kind, ch.amount, ch.currency, to_char(ch.charged_on, 'YYYY-MM-DD'),
        ch.description, ch.created_at, ch.waived_at, ch.waived_by, ch.waive_reason, c.external_id
     FROM charges ch JOIN invoices i ON i.id = ch.invoice_id JOIN customers c ON c.id = i.customer_id";

fn charge_row(r: &Row) -> Result<(Stored<Charge>, String), StoreError> {
    Ok((
        Stored {
            id: g(r, 0)?,
            record: Charge {
                key: g(r, 1)?,
                invoice: g(r, 2)?,
                kind: sh::parse_charge_kind(g(r, 3)?)?,
                amount: Money::new(g(r, 4)?, parse_currency(g(r, 5)?)?),
                charged_on: date_col(r, 6)?,
                description: g(r, 7)?,
                created_at: ts_col(r, 8)?,
                waived_at: opt_ts_col(r, 9)?,
                waived_by: g(r, 10)?,
                waive_reason: g(r, 11)?,
            },
        },
        g(r, 12)?,
    ))
}

fn bounce_row(r: &Row) -> Result<Bounce, StoreError> {
    Ok(Bounce {
        address: g(r, 0)?,
        at: ts_col(r, 1)?,
        reason: g(r, 2)?,
        cleared_at: opt_ts_col(r, 3)?,
    })
}

fn lock_bounce(
    tx: &mut Transaction<'_>,
    org: i64,
    address: &str,
) -> Result<Option<Bounce>, StoreError> {
    query_opt(
        tx,
        "SELECT address, at, reason, cleared_at FROM bounces WHERE org_id = $1 AND address = $2 FOR UPDATE",
        &[&org, &address],
        bounce_row,
    )
}

/// Writes a run's rows for [`sh::write_run`] in chunks.
struct RunRows<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    org: i64,
}

impl RunWriter for RunRows<'_, '_> {
    fn insert_steps(
        &mut self,
        rows: &[(i64, &StepRecord)],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(CHUNK) {
            let invoice: Vec<i64> = chunk.iter().map(|(i, _)| *i).collect();
            let policy: Vec<&str> = chunk.iter().map(|(_, s)| s.policy.as_str()).collect();
            let step: Vec<String> = chunk.iter().map(|(_, s)| s.step.to_string()).collect();
            let done_on: Vec<String> = chunk.iter().map(|(_, s)| date_text(s.done_on)).collect();
            let done_at: Vec<SystemTime> = chunk
                .iter()
                .map(|(_, s)| ts(s.done_at))
                .collect::<Result<_, _>>()?;
            let outcome: Vec<String> = chunk
                .iter()
                .map(|(_, s)| to_json("step outcome", &s.outcome))
                .collect::<Result<_, _>>()?;
            let mut ids: HashMap<(i64, String, String), i64> = query(
                self.tx,
                "INSERT INTO dunning_steps (org_id, invoice_id, policy, step, done_on, done_at, outcome)
                 SELECT $1, u.a, u.b, u.c, u.d::date, u.e, u.f::jsonb
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[])
                      WITH ORDINALITY AS u(a, b, c, d, e, f, n)
                 ORDER BY u.n
                 ON CONFLICT ON CONSTRAINT dunning_steps_once DO NOTHING
                 RETURNING invoice_id, policy, step, id",
                &[&self.org, &invoice, &policy, &step, &done_on, &done_at, &outcome],
                |r| Ok(((g(r, 0)?, g(r, 1)?, g(r, 2)?), g(r, 3)?)),
            )?
            .into_iter()
            .collect();
            // The first row with a key took it; later ones with the same key did not.
            for ((invoice, s), step) in chunk.iter().zip(step) {
                out.push(ids.remove(&(*invoice, s.policy.clone(), step)));
            }
        }
        Ok(out)
    }

    fn insert_messages(
        &mut self,
        rows: &[(i64, &OutboxMessage)],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(CHUNK) {
            let ms = || chunk.iter().map(|(_, m)| *m);
            let key: Vec<&str> = ms().map(|m| m.key.as_str()).collect();
            let customer: Vec<i64> = chunk.iter().map(|(c, _)| *c).collect();
            let channel: Vec<&str> = ms().map(|m| m.channel.as_str()).collect();
            let contact: Vec<Option<&str>> = ms().map(|m| m.contact.as_deref()).collect();
            let recipient: Vec<&str> = ms().map(|m| m.recipient.as_str()).collect();
            let policy: Vec<&str> = ms().map(|m| m.policy.as_str()).collect();
            let step: Vec<String> = ms().map(|m| m.step.to_string()).collect();
            let template: Vec<&str> = ms().map(|m| m.template.as_str()).collect();
            let locale: Vec<&str> = ms().map(|m| m.locale.as_str()).collect();
            let currency: Vec<&str> = ms().map(|m| m.currency.code()).collect();
            let invoices: Vec<String> = ms()
                .map(|m| to_json("message invoices", &m.invoices))
                .collect::<Result<_, _>>()?;
            let subject: Vec<&str> = ms().map(|m| m.subject.as_str()).collect();
            let body_text: Vec<&str> = ms().map(|m| m.body_text.as_str()).collect();
            let body_html: Vec<Option<&str>> = ms().map(|m| m.body_html.as_deref()).collect();
            let token: Vec<&str> = ms().map(|m| m.token.as_str()).collect();
            let time_zone: Vec<&str> = ms().map(|m| m.time_zone.as_str()).collect();
            let not_before: Vec<SystemTime> =
                ms().map(|m| ts(m.not_before)).collect::<Result<_, _>>()?;
            let created_at: Vec<SystemTime> =
                ms().map(|m| ts(m.created_at)).collect::<Result<_, _>>()?;
            let status: Vec<&str> = ms().map(|m| m.status.as_str()).collect();
            let attempts: Vec<i64> = ms().map(|m| i64::from(m.attempts)).collect();
            let next_attempt_at: Vec<SystemTime> = ms()
                .map(|m| ts(m.next_attempt_at))
                .collect::<Result<_, _>>()?;
            let claimed_by: Vec<Option<&str>> = ms().map(|m| m.claimed_by.as_deref()).collect();
            let lease_until: Vec<Option<SystemTime>> = ms()
                .map(|m| opt_ts(m.lease_until))
                .collect::<Result<_, _>>()?;
            let last_error: Vec<Option<&str>> = ms().map(|m| m.last_error.as_deref()).collect();
            let provider_id: Vec<Option<&str>> = ms().map(|m| m.provider_id.as_deref()).collect();
            let sent_at: Vec<Option<SystemTime>> =
                ms().map(|m| opt_ts(m.sent_at)).collect::<Result<_, _>>()?;
            let mut ids: HashMap<String, i64> = query(
                self.tx,
                "INSERT INTO outbox_messages (org_id, key, customer_id, channel, contact, recipient, policy, step, template, locale,
                    currency, invoices, subject, body_text, body_html, token, time_zone, not_before, created_at, status, attempts,
                    next_attempt_at, claimed_by, lease_until, last_error, provider_id, sent_at)
                 SELECT $1, u.c1, u.c2, u.c3, u.c4, u.c5, u.c6, u.c7, u.c8, u.c9, u.c10, u.c11::jsonb, u.c12, u.c13, u.c14,
                    u.c15, u.c16, u.c17, u.c18, u.c19, u.c20, u.c21, u.c22, u.c23, u.c24, u.c25, u.c26
                 FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                             $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
                             $17::text[], $18::timestamptz[], $19::timestamptz[], $20::text[], $21::bigint[],
                             $22::timestamptz[], $23::text[], $24::timestamptz[], $25::text[], $26::text[], $27::timestamptz[])
                      WITH ORDINALITY AS u(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19,
                                           c20, c21, c22, c23, c24, c25, c26, n)
                 ORDER BY u.n
                 ON CONFLICT ON CONSTRAINT outbox_messages_org_key_key DO NOTHING
                 RETURNING key, id",
                &[
                    &self.org, &key, &customer, &channel, &contact, &recipient, &policy, &step, &template, &locale,
                    &currency, &invoices, &subject, &body_text, &body_html, &token, &time_zone, &not_before,
                    &created_at, &status, &attempts, &next_attempt_at, &claimed_by, &lease_until, &last_error,
                    &provider_id, &sent_at,
                ],
                |r| Ok((g(r, 0)?, g(r, 1)?)),
            )?
            .into_iter()
            .collect();
            // The first row with a key took it; later ones with the same key did not.
            out.extend(ms().map(|m| ids.remove(&m.key)));
        }
        Ok(out)
    }

    fn insert_tasks(&mut self, rows: &[(i64, &Task)]) -> Result<Vec<Option<i64>>, StoreError> {
        insert_tasks(self.tx, self.org, rows)
    }

    fn insert_charges(&mut self, rows: &[(i64, &Charge)]) -> Result<Vec<Option<i64>>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(CHUNK) {
            let key: Vec<&str> = chunk.iter().map(|(_, c)| c.key.as_str()).collect();
            let invoice: Vec<i64> = chunk.iter().map(|(i, _)| *i).collect();
            let kind: Vec<&str> = chunk.iter().map(|(_, c)| c.kind.as_str()).collect();
            let amount: Vec<i64> = chunk.iter().map(|(_, c)| c.amount.minor).collect();
            let currency: Vec<&str> = chunk
                .iter()
                .map(|(_, c)| c.amount.currency.code())
                .collect();
            let charged_on: Vec<String> =
                chunk.iter().map(|(_, c)| date_text(c.charged_on)).collect();
            let description: Vec<&str> =
                chunk.iter().map(|(_, c)| c.description.as_str()).collect();
            let created_at: Vec<SystemTime> = chunk
                .iter()
                .map(|(_, c)| ts(c.created_at))
                .collect::<Result<_, _>>()?;
            let waived_at: Vec<Option<SystemTime>> = chunk
                .iter()
                .map(|(_, c)| opt_ts(c.waived_at))
                .collect::<Result<_, _>>()?;
            let waived_by: Vec<Option<&str>> =
                chunk.iter().map(|(_, c)| c.waived_by.as_deref()).collect();
            let reason: Vec<Option<&str>> = chunk
                .iter()
                .map(|(_, c)| c.waive_reason.as_deref())
                .collect();
            let mut ids: HashMap<String, i64> = query(
                self.tx,
                "INSERT INTO charges (org_id, key, invoice_id, kind, amount, currency, charged_on, description, created_at,
                    waived_at, waived_by, waive_reason)
                 SELECT $1, u.a, u.b, u.c, u.d, u.e, u.f::date, u.g, u.h, u.i, u.j, u.k
                 FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[],
                             $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[])
                      WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, i, j, k, n)
                 ORDER BY u.n
                 ON CONFLICT ON CONSTRAINT charges_org_key_key DO NOTHING
                 RETURNING key, id",
                &[
                    &self.org, &key, &invoice, &kind, &amount, &currency, &charged_on, &description, &created_at,
                    &waived_at, &waived_by, &reason,
                ],
                |r| Ok((g(r, 0)?, g(r, 1)?)),
            )?
            .into_iter()
            .collect();
            // The first row with a key took it; later ones with the same key did not.
            out.extend(chunk.iter().map(|(_, c)| ids.remove(&c.key)));
        }
        Ok(out)
    }

    fn delete(&mut self, table: RunTable, ids: &[i64]) -> Result<(), StoreError> {
        let sql = match table {
            RunTable::Steps => "DELETE FROM dunning_steps WHERE id = ANY($1)",
            RunTable::Messages => "DELETE FROM outbox_messages WHERE id = ANY($1)",
            RunTable::Tasks => "DELETE FROM tasks WHERE id = ANY($1)",
            RunTable::Charges => "DELETE FROM charges WHERE id = ANY($1)",
        };
        execute(self.tx, sql, &[&ids])?;
        Ok(())
    }
}

impl PostgresStore {
    /// Runs `f` in one transaction, committed if it succeeds.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(map_err)?;
        // An error returns early and dropping `tx` rolls everything back.
        let out = f(&mut tx)?;
        tx.commit().map_err(map_err)?;
        Ok(out)
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
            let row = lock_message(tx, id)?;
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
                ev::message_changed(c.kind, before, &after, c.detail),
            )?;
            if after.status == MessageStatus::Failed {
                let (_, zone) = organization(tx, row.org)?;
                let task =
                    sh::delivery_failed_task(id, &after, c.detail, sh::today_in(&zone, now), now);
                if insert_task(tx, row.org, row.customer_id, &task)?.is_some() {
                    insert_event(tx, row.org, worker, now, ev::task_created(&task))?;
                }
            }
            Ok(())
        })
    }
}

impl DunningStore for PostgresStore {
    fn organization_ids(&self) -> Result<Vec<i64>, StoreError> {
        query(
            &mut *self.conn()?,
            "SELECT id FROM organizations ORDER BY id",
            &[],
            |r| g(r, 0),
        )
    }

    fn dunning_settings(&self, org: i64) -> Result<DunningSettings, StoreError> {
        Ok(load_settings(&mut *self.conn()?, org)?.unwrap_or_default())
    }

    fn set_dunning_settings(
        &self,
        org: i64,
        settings: &DunningSettings,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let (slug, _) = lock_organization(tx, org)?;
            let before = load_settings(tx, org)?.unwrap_or_default();
            // Nothing changed: nothing to write or log.
            let Some(event) = ev::settings_updated(&slug, &before, settings) else {
                return Ok(());
            };
            save_settings(tx, org, settings, now)?;
            insert_event(tx, org, actor, now, event)
        })
    }

    fn policies(&self, org: i64) -> Result<Vec<StoredPolicy>, StoreError> {
        query(
            &mut *self.conn()?,
            "SELECT name, source, updated_at FROM policies WHERE org_id = $1 ORDER BY name COLLATE \"C\"",
            &[&org],
            |r| {
                Ok(StoredPolicy {
                    name: g(r, 0)?,
                    source: g(r, 1)?,
                    updated_at: ts_col(r, 2)?,
                })
            },
        )
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
            lock_organization(tx, org)?;
            let before = query_opt(
                tx,
                "SELECT name, source, updated_at FROM policies WHERE org_id = $1 AND name = $2",
                &[&org, &name],
                |r| {
                    Ok(StoredPolicy {
                        name: g(r, 0)?,
                        source: g(r, 1)?,
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
                    execute(
                        tx,
                        "UPDATE policies SET source = $1, updated_at = $2 WHERE org_id = $3 AND name = $4",
                        &[&source, &ts(now)?, &org, &name],
                    )?;
                    ev::policy_updated(b, &after)
                }
                None => {
                    execute(
                        tx,
                        "INSERT INTO policies (org_id, name, source, updated_at) VALUES ($1, $2, $3, $4)",
                        &[&org, &name, &source, &ts(now)?],
                    )?;
                    ev::policy_created(&after)
                }
            };
            insert_event(tx, org, actor, now, event)
        })
    }

    fn policy_assignments(&self, org: i64) -> Result<Vec<PolicyAssignment>, StoreError> {
        query(
            &mut *self.conn()?,
            "SELECT a.scope_kind, a.scope_key, p.name FROM policy_assignments a JOIN policies p ON p.id = a.policy_id
             WHERE a.org_id = $1 ORDER BY a.id",
            &[&org],
            |r| {
                Ok(PolicyAssignment {
                    scope: sh::assignment_scope(g(r, 0)?, g(r, 1)?)?,
                    policy: g(r, 2)?,
                })
            },
        )
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
            lock_organization(tx, org)?;
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
                 WHERE a.org_id = $1 AND a.scope_kind = $2 AND a.scope_key = $3",
                &[&org, &kind, &key],
                |r| g(r, 0),
            )?;
            if current.as_deref() == policy {
                return Ok(());
            }
            match policy {
                Some(name) => {
                    let policy_id: i64 = query_opt(
                        tx,
                        "SELECT id FROM policies WHERE org_id = $1 AND name = $2",
                        &[&org, &name],
                        |r| g(r, 0),
                    )?
                    .ok_or_else(|| unknown("policy", name))?;
                    execute(
                        tx,
                        "INSERT INTO policy_assignments (org_id, scope_kind, scope_key, policy_id) VALUES ($1, $2, $3, $4)
                         ON CONFLICT ON CONSTRAINT policy_assignments_org_scope_key DO UPDATE SET policy_id = excluded.policy_id",
                        &[&org, &kind, &key, &policy_id],
                    )?;
                }
                None => {
                    execute(
                        tx,
                        "DELETE FROM policy_assignments WHERE org_id = $1 AND scope_kind = $2 AND scope_key = $3",
                        &[&org, &kind, &key],
                    )?;
                }
            }
            let event = ev::policy_assignment(scope, current.as_deref(), policy, customer.as_deref());
            insert_event(tx, org, actor, now, event)
        })
    }

    fn holds(&self, org: i64) -> Result<Vec<Stored<Hold>>, StoreError> {
        query(
            &mut *self.conn()?,
            &format!("{HOLD_SELECT} WHERE h.org_id = $1 ORDER BY h.id"),
            &[&org],
            |r| Ok(hold_row(r)?.0),
        )
    }

    fn create_hold(&self, org: i64, hold: &Hold, now: Timestamp) -> Result<i64, StoreError> {
        self.write(|tx| {
            let (customer_id, invoice_id, customer) = resolve_scope(tx, org, &hold.scope)?;
            let id: i64 = query_opt(
                tx,
                "INSERT INTO holds (org_id, customer_id, invoice_id, reason, created_at, created_by, expires_on, ended_at, ended_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text::date, $8, $9) RETURNING id",
                &[
                    &org,
                    &customer_id,
                    &invoice_id,
                    &hold.reason,
                    &ts(hold.created_at)?,
                    &hold.created_by,
                    &hold.expires_on.map(date_text),
                    &opt_ts(hold.ended_at)?,
                    &hold.ended_by,
                ],
                |r| g(r, 0),
            )?
            .ok_or_else(|| StoreError::Database("INSERT … RETURNING returned no row".into()))?;
            insert_event(tx, org, &hold.created_by, now, ev::hold_created(id, hold, &customer))?;
            Ok(id)
        })
    }

    fn end_hold(&self, org: i64, id: i64, actor: &str, now: Timestamp) -> Result<(), StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let (_, zone) = organization(tx, org)?;
            let (hold, customer) = query_opt(
                tx,
                &format!("{HOLD_SELECT} WHERE h.org_id = $1 AND h.id = $2 FOR UPDATE OF h"),
                &[&org, &id],
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
            execute(
                tx,
                "UPDATE holds SET ended_at = $1, ended_by = $2 WHERE id = $3 AND org_id = $4",
                &[&opt_ts(after.ended_at)?, &after.ended_by, &id, &org],
            )?;
            insert_event(
                tx,
                org,
                actor,
                now,
                ev::hold_ended(id, &before, &after, &customer),
            )
        })
    }

    fn disputes(&self, org: i64) -> Result<Vec<Stored<Dispute>>, StoreError> {
        query(
            &mut *self.conn()?,
            &format!("{DISPUTE_SELECT} WHERE d.org_id = $1 ORDER BY d.id"),
            &[&org],
            |r| Ok(dispute_row(r)?.0),
        )
    }

    fn open_dispute(&self, org: i64, dispute: &Dispute, now: Timestamp) -> Result<i64, StoreError> {
        let already_open = |open: i64| {
            conflict(format!(
                "invoice {} already has an open dispute (#{open})",
                dispute.invoice
            ))
        };
        self.write(|tx| {
            let (invoice_id, customer) = find_invoice(tx, org, &dispute.invoice)?
                .ok_or_else(|| unknown("invoice", &dispute.invoice))?;
            let open: Option<i64> = query_opt(
                tx,
                "SELECT id FROM disputes WHERE org_id = $1 AND invoice_id = $2 AND resolved_at IS NULL",
                &[&org, &invoice_id],
                |r| g(r, 0),
            )?;
            if let (Some(open), None) = (open, dispute.resolved_at) {
                return Err(already_open(open));
            }
            let id: i64 = match query_opt(
                tx,
                "INSERT INTO disputes (org_id, invoice_id, reason, opened_at, opened_by, resolved_at, resolved_by, resolution)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &org,
                    &invoice_id,
                    &dispute.reason,
                    &ts(dispute.opened_at)?,
                    &dispute.opened_by,
                    &opt_ts(dispute.resolved_at)?,
                    &dispute.resolved_by,
                    &dispute.resolution,
                ],
                |r| g(r, 0),
            ) {
                Ok(Some(id)) => id,
                Ok(None) => return Err(StoreError::Database("INSERT … RETURNING returned no row".into())),
                // A concurrent transaction opened one first (the partial unique index).
                Err(StoreError::Constraint { constraint, .. }) if constraint == "disputes_one_open_key" => {
                    return Err(conflict(format!(
                        "invoice {} already has an open dispute",
                        dispute.invoice
                    )));
                }
                Err(e) => return Err(e),
            };
            insert_event(tx, org, &dispute.opened_by, now, ev::dispute_opened(id, dispute, &customer))?;
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
                &format!("{DISPUTE_SELECT} WHERE d.org_id = $1 AND d.id = $2 FOR UPDATE OF d"),
                &[&org, &id],
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
            execute(
                tx,
                "UPDATE disputes SET resolved_at = $1, resolved_by = $2, resolution = $3 WHERE id = $4 AND org_id = $5",
                &[&opt_ts(after.resolved_at)?, &after.resolved_by, &after.resolution, &id, &org],
            )?;
            insert_event(tx, org, actor, now, ev::dispute_resolved(id, &before, &after, &customer))
        })
    }

    fn promises(&self, org: i64) -> Result<Vec<Stored<Promise>>, StoreError> {
        query(
            &mut *self.conn()?,
            &format!("{PROMISE_SELECT} WHERE p.org_id = $1 ORDER BY p.id"),
            &[&org],
            |r| Ok(promise_row(r)?.0),
        )
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
                &format!("{PROMISE_SELECT} WHERE p.org_id = $1 AND p.id = $2 FOR UPDATE OF p"),
                &[&org, &id],
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
            execute(
                tx,
                "UPDATE promises SET cancelled_at = $1, cancelled_by = $2 WHERE id = $3 AND org_id = $4",
                &[&opt_ts(after.cancelled_at)?, &after.cancelled_by, &id, &org],
            )?;
            insert_event(tx, org, actor, now, ev::promise_cancelled(id, &before, &after, &customer))
        })
    }

    fn step_records(&self, org: i64) -> Result<Vec<StepRecord>, StoreError> {
        query(
            &mut *self.conn()?,
            "SELECT i.number, s.policy, s.step, to_char(s.done_on, 'YYYY-MM-DD'), s.done_at, s.outcome::text
             FROM dunning_steps s JOIN invoices i ON i.id = s.invoice_id WHERE s.org_id = $1 ORDER BY s.id",
            &[&org],
            |r| {
                Ok(StepRecord {
                    invoice: g(r, 0)?,
                    policy: g(r, 1)?,
                    step: sh::parse_step(g(r, 2)?)?,
                    done_on: date_col(r, 3)?,
                    done_at: ts_col(r, 4)?,
                    outcome: from_json("step outcome", g(r, 5)?)?,
                })
            },
        )
    }

    fn record_run(
        &self,
        org: i64,
        actions: &[PlannedWrite],
        today: Date,
        actor: &str,
        now: Timestamp,
    ) -> Result<RunCounts, StoreError> {
        self.write(|tx| record_run_in(tx, org, actions, today, actor, now))
    }

    fn outbox(
        &self,
        org: i64,
        filter: &OutboxFilter,
    ) -> Result<Vec<Stored<OutboxMessage>>, StoreError> {
        // Only the filters given go into the statement, so the planner can
        // use the (org, status) index instead of a generic plan.
        let limit: Option<i64> = filter.limit.map(i64::from);
        let status = filter.status.map(|s| s.as_str());
        let mut sql = format!("{MESSAGE_SELECT} WHERE m.org_id = $1");
        let mut params: Vec<Param<'_>> = vec![&org];
        if let Some(s) = &status {
            params.push(s);
            sql.push_str(&format!(" AND m.status = ${}", params.len()));
        }
        if let Some(c) = &filter.customer {
            params.push(c);
            sql.push_str(&format!(" AND c.external_id = ${}", params.len()));
        }
        params.push(&limit);
        sql.push_str(&format!(" ORDER BY m.id DESC LIMIT ${}", params.len()));
        query(&mut *self.conn()?, &sql, &params, |r| {
            Ok(message_row(r)?.stored)
        })
    }

    fn message(&self, org: i64, id: i64) -> Result<Option<Stored<OutboxMessage>>, StoreError> {
        query_opt(
            &mut *self.conn()?,
            &format!("{MESSAGE_SELECT} WHERE m.org_id = $1 AND m.id = $2"),
            &[&org, &id],
            |r| Ok(message_row(r)?.stored),
        )
    }

    fn contact_log(
        &self,
        org: i64,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        query(
            &mut *self.conn()?,
            "SELECT c.external_id, coalesce(m.sent_at, m.not_before) FROM outbox_messages m
             JOIN customers c ON c.id = m.customer_id
             WHERE m.org_id = $1 AND m.channel IN ('email', 'sms')
               AND m.status IN ('queued', 'claimed', 'sending', 'sent', 'in_doubt')
               AND coalesce(m.sent_at, m.not_before) >= $2
             ORDER BY m.id",
            &[&org, &ts(since)?],
            |r| Ok((g(r, 0)?, ts_col(r, 1)?)),
        )
    }

    fn claim_messages(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.write(|tx| {
            // SKIP LOCKED: rows another worker is claiming right now are
            // passed over, never waited for or taken twice.
            let ids: Vec<i64> = query(
                tx,
                "WITH picked AS (
                     SELECT m.id FROM outbox_messages m
                     WHERE m.status = 'queued' AND m.next_attempt_at <= $3 AND m.not_before <= $3
                       AND NOT EXISTS (SELECT 1 FROM dunning_settings s WHERE s.org_id = m.org_id AND s.paused)
                     ORDER BY m.id LIMIT $4
                     FOR UPDATE OF m SKIP LOCKED)
                 UPDATE outbox_messages o SET status = 'claimed', claimed_by = $1, lease_until = $2, attempts = o.attempts + 1
                 FROM picked WHERE o.id = picked.id
                 RETURNING o.id",
                &[&worker, &ts(lease_until)?, &ts(now)?, &i64::from(limit)],
                |r| g(r, 0),
            )?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            query(
                tx,
                &format!("{MESSAGE_SELECT} WHERE m.id = ANY($1) ORDER BY m.id"),
                &[&ids],
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
                "SELECT status, claimed_by FROM outbox_messages WHERE id = $1 FOR UPDATE",
                &[&id],
                |r| Ok((g(r, 0)?, g(r, 1)?)),
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
            execute(
                tx,
                "UPDATE outbox_messages SET status = 'sending' WHERE id = $1",
                &[&id],
            )?;
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
            let requeued = execute(
                tx,
                "UPDATE outbox_messages SET status = 'queued', claimed_by = NULL, lease_until = NULL
                 WHERE status = 'claimed' AND lease_until < $1",
                &[&ts(now)?],
            )?;
            let mut doubted: Vec<i64> = query(
                tx,
                "UPDATE outbox_messages SET status = 'in_doubt' WHERE status = 'sending' AND lease_until < $1 RETURNING id",
                &[&ts(now)?],
                |r| g(r, 0),
            )?;
            doubted.sort_unstable();
            let mut zones: HashMap<i64, String> = HashMap::new();
            for &id in &doubted {
                let row = lock_message(tx, id)?;
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
                    insert_event(tx, row.org, SYSTEM_ACTOR, now, ev::task_created(&task))?;
                }
            }
            Ok(Released {
                requeued,
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
                &format!("{MESSAGE_SELECT} WHERE m.org_id = $1 AND m.id = $2 FOR UPDATE OF m"),
                &[&org, &id],
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
            insert_event(tx, org, actor, now, ev::message_changed("message.confirmed", before, &after, detail))?;
            let open = query(
                tx,
                &format!(
                    "{TASK_SELECT} WHERE t.org_id = $1 AND t.kind = $2 AND t.message_key = $3 AND t.status = 'open'
                     ORDER BY t.id FOR UPDATE OF t"
                ),
                &[&org, &TaskKind::InDoubt.as_str(), &before.key],
                task_row,
            )?;
            for task in &open {
                complete_task_row(tx, org, task, actor, now)?;
            }
            Ok(())
        })
    }

    fn tasks(&self, org: i64, include_done: bool) -> Result<Vec<Stored<Task>>, StoreError> {
        query(
            &mut *self.conn()?,
            &format!(
                "{TASK_SELECT} WHERE t.org_id = $1 AND ($2 OR t.status = 'open') ORDER BY t.id"
            ),
            &[&org, &include_done],
            task_row,
        )
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
        query(
            &mut *self.conn()?,
            &format!("{CHARGE_SELECT} WHERE ch.org_id = $1 ORDER BY ch.id"),
            &[&org],
            |r| Ok(charge_row(r)?.0),
        )
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
                &format!("{CHARGE_SELECT} WHERE ch.org_id = $1 AND ch.id = $2 FOR UPDATE OF ch"),
                &[&org, &id],
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
            execute(
                tx,
                "UPDATE charges SET waived_at = $1, waived_by = $2, waive_reason = $3 WHERE id = $4 AND org_id = $5",
                &[&opt_ts(after.waived_at)?, &after.waived_by, &after.waive_reason, &id, &org],
            )?;
            insert_event(tx, org, actor, now, ev::charge_waived(&before, &after, &customer))
        })
    }

    fn bounces(&self, org: i64) -> Result<Vec<Bounce>, StoreError> {
        query(
            &mut *self.conn()?,
            "SELECT address, at, reason, cleared_at FROM bounces WHERE org_id = $1 ORDER BY id",
            &[&org],
            bounce_row,
        )
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
            // Serialises reports of one organization, so the earlier state
            // read here is still current when the upsert lands.
            let (_, zone) = lock_organization(tx, org)?;
            let before = lock_bounce(tx, org, &address)?;
            let after = Bounce {
                address: address.clone(),
                at: now,
                reason: reason.to_owned(),
                cleared_at: None,
            };
            execute(
                tx,
                "INSERT INTO bounces (org_id, address, at, reason, cleared_at) VALUES ($1, $2, $3, $4, NULL)
                 ON CONFLICT ON CONSTRAINT bounces_org_address_key
                 DO UPDATE SET at = excluded.at, reason = excluded.reason, cleared_at = NULL",
                &[&org, &address, &ts(now)?, &reason],
            )?;
            insert_event(tx, org, SYSTEM_ACTOR, now, ev::bounce_recorded(before.as_ref(), &after))?;
            // An address already bouncing gets no email, so a repeat report
            // adds nothing for a person to do.
            if before.is_some_and(|b| b.cleared_at.is_none()) {
                return Ok(());
            }
            let contacts = query(
                tx,
                "SELECT c.id, c.external_id, k.name, k.email FROM contacts k JOIN customers c ON c.id = k.customer_id
                 WHERE k.org_id = $1 AND k.email IS NOT NULL ORDER BY c.id, k.id",
                &[&org],
                |r| Ok((g::<i64>(r, 0)?, g::<String>(r, 1)?, g::<String>(r, 2)?, g::<String>(r, 3)?)),
            )?;
            let today = sh::today_in(&zone, now);
            for (customer_id, customer, names) in sh::group_bounced(contacts, &address) {
                let task = sh::bounce_task(&address, &customer, &names, reason, today, now);
                if insert_task(tx, org, customer_id, &task)?.is_some() {
                    insert_event(tx, org, SYSTEM_ACTOR, now, ev::task_created(&task))?;
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
                lock_bounce(tx, org, &address)?.ok_or_else(|| unknown("bounce", &address))?;
            if before.cleared_at.is_some() {
                return Err(conflict(format!(
                    "the bounce of {address} is already cleared"
                )));
            }
            let after = Bounce {
                cleared_at: Some(now),
                ..before.clone()
            };
            execute(
                tx,
                "UPDATE bounces SET cleared_at = $1 WHERE org_id = $2 AND address = $3",
                &[&ts(now)?, &org, &address],
            )?;
            insert_event(tx, org, actor, now, ev::bounce_cleared(&before, &after))
        })
    }

    fn unsubscribe(&self, token: &str, now: Timestamp) -> Result<Option<Unsubscribed>, StoreError> {
        let now = truncate_micros(now);
        self.write(|tx| {
            let found = query_opt(
                tx,
                "SELECT m.org_id, m.customer_id, c.external_id, m.recipient FROM outbox_messages m
                 JOIN customers c ON c.id = m.customer_id
                 WHERE m.token = $1 AND m.channel = 'email'
                 ORDER BY m.id DESC LIMIT 1",
                &[&token],
                |r| {
                    Ok((
                        g::<i64>(r, 0)?,
                        g::<i64>(r, 1)?,
                        g::<String>(r, 2)?,
                        g::<String>(r, 3)?,
                    ))
                },
            )?;
            let Some((org, customer_id, customer, address)) = found else {
                return Ok(None);
            };
            // Row locks: two clicks at once opt out (and log) once.
            let keys: Vec<String> = query(
                tx,
                "SELECT external_id FROM contacts WHERE org_id = $1 AND customer_id = $2
                 AND lower(trim(email)) = lower($3) AND NOT email_opt_out
                 ORDER BY external_id FOR UPDATE",
                &[&org, &customer_id, &address],
                |r| g::<String>(r, 0),
            )?;
            execute(
                tx,
                "UPDATE contacts SET email_opt_out = TRUE WHERE org_id = $1 AND customer_id = $2
                 AND lower(trim(email)) = lower($3) AND NOT email_opt_out",
                &[&org, &customer_id, &address],
            )?;
            for key in &keys {
                let e = ev::contact_unsubscribed(key, &customer, &address);
                insert_event(tx, org, UNSUBSCRIBE_ACTOR, now, e)?;
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
    tx: &mut Transaction<'_>,
    org: i64,
    actions: &[PlannedWrite],
    today: Date,
    actor: &str,
    now: Timestamp,
) -> Result<RunCounts, StoreError> {
    organization(tx, org)?;
    let needs = sh::run_needs(actions);
    let mut refs = sh::RunRefs::default();
    if !needs.invoices.is_empty() {
        let numbers: Vec<&str> = needs.invoices.iter().copied().collect();
        for r in tx
            .query(
                "SELECT id, number FROM invoices WHERE org_id = $1 AND number = ANY($2)",
                &[&org, &numbers],
            )
            .map_err(map_err)?
        {
            if let Some(number) = needs.invoices.get(g::<&str>(&r, 1)?) {
                refs.invoices.insert(number, g(&r, 0)?);
            }
        }
    }
    if !needs.charged.is_empty() {
        let numbers: Vec<&str> = needs.charged.iter().copied().collect();
        for r in tx
            .query(
                "SELECT i.number, c.external_id FROM invoices i JOIN customers c ON c.id = i.customer_id
                 WHERE i.org_id = $1 AND i.number = ANY($2)",
                &[&org, &numbers],
            )
            .map_err(map_err)?
        {
            if let Some(number) = needs.charged.get(g::<&str>(&r, 0)?) {
                refs.charged.insert(number, g(&r, 1)?);
            }
        }
    }
    if !needs.customers.is_empty() {
        let keys: Vec<&str> = needs.customers.iter().copied().collect();
        for r in tx
            .query(
                "SELECT id, external_id FROM customers WHERE org_id = $1 AND external_id = ANY($2)",
                &[&org, &keys],
            )
            .map_err(map_err)?
        {
            if let Some(key) = needs.customers.get(g::<&str>(&r, 1)?) {
                refs.customers.insert(key, g(&r, 0)?);
            }
        }
    }

    let (counts, written) = sh::write_run(&mut RunRows { tx: &mut *tx, org }, actions, &refs)?;

    let mut pending: Vec<NewEvent> = Vec::new();
    sh::for_each_run_event(actions, &written, &refs, |e| {
        pending.push(e);
        if pending.len() == CHUNK {
            insert_events(tx, org, actor, now, &pending)?;
            pending.clear();
        }
        Ok(())
    })?;
    insert_events(tx, org, actor, now, &pending)?;

    // Last, so the organization row is locked only for the commit: two runs
    // of one organization then agree on who set `started_on`.
    let (slug, _) = lock_organization(tx, org)?;
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
            insert_event(tx, org, actor, now, e)?;
        }
    }
    insert_event(tx, org, actor, now, ev::run(today, &counts))?;
    Ok(counts)
}
