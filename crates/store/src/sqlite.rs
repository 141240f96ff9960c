//! SQLite implementation of [`crate::Store`]: the embedded default.
//!
//! One file, WAL mode, a small r2d2 pool. Writes take the write lock up front
//! (`BEGIN IMMEDIATE`) so a change set never fails half-way on a busy lock.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arflow_domain::fx::FxRate;
use arflow_domain::ledger::{AllocationFact, Closure, CustomerFact, InvoiceFact, LedgerFacts};
use arflow_domain::model::{
    Allocation, AllocationSource, ChannelPreferences, Contact, CreditNote, Customer, Event,
    Invoice, InvoiceStatus, Organization, Payment, Stored,
};
use arflow_domain::money::Currency;
use jiff::Timestamp;
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use r2d2_sqlite::rusqlite::types::ValueRef;
use r2d2_sqlite::rusqlite::{
    self, Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use crate::changeset::{AppliedCounts, Change, ChangeSet};
use crate::common::{
    CurrencyCache, DEFAULT_ORG_NAME, DEFAULT_ORG_SLUG, SQLITE_MIGRATIONS, Touched, corrupt,
    currency_mismatch, finish_allocation_event, over_allocated, parse_currency, parse_date,
    parse_date_bytes, parse_timestamp, payment_terms_from_i64, rate_from_i64, rate_to_i64,
    tags_from_json, tags_to_json, truncate_micros, unknown,
};
use crate::events::{for_each_event, organization_updated};
use crate::{Backend, EventFilter, Store, StoreError};

pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
}

type Conn = PooledConnection<SqliteConnectionManager>;

/// Maps a SQLite error to what it means. CHECK failures name the constraint;
/// UNIQUE failures only name the columns, so those are mapped by table+columns.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
        && f.code == ErrorCode::ConstraintViolation
    {
        if let Some(name) = msg.strip_prefix("CHECK constraint failed: ") {
            return StoreError::constraint(name.trim());
        }
        if let Some(cols) = msg.strip_prefix("UNIQUE constraint failed: ") {
            let name = match cols.trim() {
                "customers.org_id, customers.external_id" => Some("customers_org_external_id_key"),
                "contacts.org_id, contacts.external_id" => Some("contacts_org_external_id_key"),
                "invoices.org_id, invoices.number" => Some("invoices_org_number_key"),
                "credit_notes.org_id, credit_notes.number" => Some("credit_notes_org_number_key"),
                "payments.org_id, payments.external_id" => Some("payments_org_external_id_key"),
                "organizations.slug" => Some("organizations_slug_key"),
                "policies.org_id, policies.name" => Some("policies_org_name_key"),
                "policy_assignments.org_id, policy_assignments.scope_kind, policy_assignments.scope_key" => {
                    Some("policy_assignments_org_scope_key")
                }
                // The partial unique index on open disputes.
                "disputes.org_id, disputes.invoice_id" => Some("disputes_one_open_key"),
                "dunning_steps.org_id, dunning_steps.invoice_id, dunning_steps.policy, dunning_steps.step" => {
                    Some("dunning_steps_once")
                }
                "outbox_messages.org_id, outbox_messages.key" => {
                    Some("outbox_messages_org_key_key")
                }
                "tasks.org_id, tasks.key" => Some("tasks_org_key_key"),
                "charges.org_id, charges.key" => Some("charges_org_key_key"),
                "bounces.org_id, bounces.address" => Some("bounces_org_address_key"),
                "users.email" => Some("users_email_key"),
                "sessions.id_hash" => Some("sessions_id_hash_key"),
                "api_tokens.token_hash" => Some("api_tokens_token_hash_key"),
                "idempotency_replies.org_id, idempotency_replies.key" => {
                    Some("idempotency_replies_org_key_key")
                }
                _ => None,
            };
            if let Some(name) = name {
                return StoreError::constraint(name);
            }
        }
    }
    StoreError::database(e)
}

pub(crate) fn date_text(d: jiff::civil::Date) -> String {
    d.to_string()
}

pub(crate) fn ts_text(t: Timestamp) -> String {
    truncate_micros(t).to_string()
}

/// 256 MiB (negative = KiB), allocated only as pages are used. With the
/// default 2 MiB cache a large change set spills dirty pages into the WAL
/// mid-transaction and reads them back on every B-tree descent; a
/// million-row import spent most of its time doing exactly that.
pub(crate) const WRITE_CACHE: &str = "PRAGMA cache_size = -262144";
/// SQLite's default page cache (2 MiB).
pub(crate) const READ_CACHE: &str = "PRAGMA cache_size = -2000";

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, applies pending
    /// migrations and makes sure the default organization exists.
    pub fn open(path: &Path, now: Timestamp) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Open(format!("{}: {e}", parent.display())))?;
        }
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            // journal_mode returns a row, so it cannot go through execute_batch.
            c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            // temp_store: sorts and temporary indexes stay in memory. The page
            // cache stays at SQLite's small default for reads (a report scans
            // each page once; a big cache would only hold memory); apply()
            // raises it for the length of a write, see WRITE_CACHE.
            c.execute_batch(
                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;
                 PRAGMA temp_store = MEMORY;",
            )
        });
        let pool = Pool::builder()
            .max_size(4)
            .build(manager)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        let store = SqliteStore { pool };
        let mut conn = store.conn()?;
        migrate(&mut conn, now)?;
        conn.execute(
            "INSERT INTO organizations (slug, name, base_currency, time_zone, created_at) VALUES (?1, ?2, 'USD', 'UTC', ?3)
             ON CONFLICT (slug) DO NOTHING",
            params![DEFAULT_ORG_SLUG, DEFAULT_ORG_NAME, ts_text(now)],
        )
        .map_err(map_err)?;
        drop(conn);
        Ok(store)
    }

    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get().map_err(StoreError::database)
    }

    /// Versions recorded in `schema_migrations` (for tests and diagnostics).
    pub fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .map_err(map_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)
    }
}

fn migrate(conn: &mut Connection, now: Timestamp) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        .map_err(map_err)?;
    for m in SQLITE_MIGRATIONS {
        let fail = |e: rusqlite::Error| StoreError::Migration {
            version: m.version,
            message: e.to_string(),
        };
        // IMMEDIATE: a second process opening at the same time waits, then sees the row.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?;
        if done.is_none() {
            tx.execute_batch(m.sql).map_err(fail)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![m.version, ts_text(now)],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

fn text(row: &Row<'_>, i: usize) -> rusqlite::Result<String> {
    row.get(i)
}

/// Converts a row-level conversion failure into `Corrupt` rather than a panic.
fn get<T>(r: Result<T, StoreError>) -> rusqlite::Result<Result<T, StoreError>> {
    Ok(r)
}

fn org_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Organization, StoreError>> {
    let base: String = r.get(3)?;
    let created: String = r.get(5)?;
    get((|| {
        Ok(Organization {
            id: r.get(0).map_err(map_err)?,
            slug: r.get(1).map_err(map_err)?,
            name: r.get(2).map_err(map_err)?,
            base_currency: parse_currency(&base)?,
            time_zone: r.get(4).map_err(map_err)?,
            created_at: parse_timestamp(&created)?,
        })
    })())
}

/// Runs a query whose rows map to `Result<T, StoreError>` and collects them.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<Result<T, StoreError>>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let rows = stmt.query_map(params, f).map_err(map_err)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(map_err)??);
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn default_organization(&self) -> Result<Organization, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT id, slug, name, base_currency, time_zone, created_at FROM organizations WHERE slug = ?1",
            [DEFAULT_ORG_SLUG],
            org_from_row,
        )
        .map_err(map_err)?
    }

    fn organization(&self, id: i64) -> Result<Option<Organization>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, slug, name, base_currency, time_zone, created_at FROM organizations WHERE id = ?1",
            )
            .map_err(map_err)?;
        let mut rows = stmt.query([id]).map_err(map_err)?;
        match rows.next().map_err(map_err)? {
            Some(row) => Ok(Some(org_from_row(row).map_err(map_err)??)),
            None => Ok(None),
        }
    }

    fn create_organization(
        &self,
        slug: &str,
        name: &str,
        base_currency: Currency,
        time_zone: &str,
        now: Timestamp,
    ) -> Result<Organization, StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO organizations (slug, name, base_currency, time_zone, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![slug, name, base_currency.code(), time_zone, ts_text(now)],
        )
        .map_err(map_err)?;
        conn.query_row(
            "SELECT id, slug, name, base_currency, time_zone, created_at FROM organizations WHERE id = ?1",
            [conn.last_insert_rowid()],
            org_from_row,
        )
        .map_err(map_err)?
    }

    fn update_organization(
        &self,
        org: &Organization,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let before = tx
            .query_row(
                "SELECT id, slug, name, base_currency, time_zone, created_at FROM organizations WHERE id = ?1",
                [org.id],
                org_from_row,
            )
            .optional()
            .map_err(map_err)?
            .transpose()?
            .ok_or(StoreError::NotFound {
                entity: "organization",
                id: org.id,
            })?;
        let after = Organization {
            name: org.name.clone(),
            base_currency: org.base_currency,
            time_zone: org.time_zone.clone(),
            ..before.clone()
        };
        // Nothing changed: nothing to write or log (dropping `tx` ends it).
        let Some(ev) = organization_updated(&before, &after) else {
            return Ok(());
        };
        tx.execute(
            "UPDATE organizations SET name = ?1, base_currency = ?2, time_zone = ?3, ledger_version = ledger_version + 1
             WHERE id = ?4",
            params![
                after.name,
                after.base_currency.code(),
                after.time_zone,
                after.id
            ],
        )
        .map_err(map_err)?;
        let data = serde_json::to_string(&ev.data)
            .map_err(|e| StoreError::Database(format!("event data: {e}")))?;
        tx.execute(
            "INSERT INTO events (org_id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                after.id,
                ts_text(now),
                actor,
                ev.kind,
                ev.entity_type,
                ev.entity_key,
                ev.customer,
                ev.summary,
                data
            ],
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)
    }

    fn customers(&self, org: i64) -> Result<Vec<Stored<Customer>>, StoreError> {
        let conn = self.conn()?;
        collect(
            &conn,
            "SELECT id, external_id, name, segment, tags, country, time_zone, locale, currency, payment_terms_days, credit_limit, collector, autopay
             FROM customers WHERE org_id = ?1 ORDER BY id",
            [org],
            |r| {
                let tags = text(r, 4)?;
                let currency = text(r, 8)?;
                let terms: Option<i64> = r.get(9)?;
                let (id, external_id, name, segment) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let (country, time_zone, locale) = (r.get(5)?, r.get(6)?, r.get(7)?);
                let (credit_limit, collector, autopay) = (r.get(10)?, r.get(11)?, r.get(12)?);
                get((|| {
                    Ok(Stored {
                        id,
                        record: Customer {
                            external_id,
                            name,
                            segment,
                            tags: tags_from_json(&tags)?,
                            country,
                            time_zone,
                            locale,
                            currency: parse_currency(&currency)?,
                            payment_terms_days: payment_terms_from_i64(terms)?,
                            credit_limit,
                            collector,
                            autopay,
                        },
                    })
                })())
            },
        )
    }

    fn contacts(&self, org: i64) -> Result<Vec<Stored<Contact>>, StoreError> {
        let conn = self.conn()?;
        collect(
            &conn,
            "SELECT k.id, c.external_id, k.external_id, k.name, k.email, k.phone, k.role, k.is_primary,
                    k.email_opt_out, k.sms_consent, k.sms_opt_out, k.call_opt_out
             FROM contacts k JOIN customers c ON c.id = k.customer_id WHERE k.org_id = ?1 ORDER BY k.id",
            [org],
            |r| {
                Ok(Ok(Stored {
                    id: r.get(0)?,
                    record: Contact {
                        customer: r.get(1)?,
                        external_id: r.get(2)?,
                        name: r.get(3)?,
                        email: r.get(4)?,
                        phone: r.get(5)?,
                        role: r.get(6)?,
                        is_primary: r.get(7)?,
                        preferences: ChannelPreferences {
                            email_opt_out: r.get(8)?,
                            sms_consent: r.get(9)?,
                            sms_opt_out: r.get(10)?,
                            call_opt_out: r.get(11)?,
                        },
                    },
                }))
            },
        )
    }

    fn invoices(&self, org: i64) -> Result<Vec<Stored<Invoice>>, StoreError> {
        let conn = self.conn()?;
        let mut cur = CurrencyCache::default();
        collect(
            &conn,
            "SELECT i.id, i.number, c.external_id, i.external_id, i.source, i.issue_date, i.due_date, i.currency, i.total, i.tax,
                    i.po_number, i.status, i.status_date, i.disputed, i.paperless
             FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.org_id = ?1 ORDER BY i.id",
            [org],
            |r| {
                let issue = r.get_ref(5)?.as_str()?.to_owned();
                let due = r.get_ref(6)?.as_str()?.to_owned();
                let currency = r.get_ref(7)?.as_str()?.to_owned();
                let status = r.get_ref(11)?.as_str()?.to_owned();
                let status_date: Option<String> = r.get(12)?;
                let (id, number, customer, external_id, source) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                let (total, tax, po_number, disputed, paperless) = (r.get(8)?, r.get(9)?, r.get(10)?, r.get(13)?, r.get(14)?);
                get((|| {
                    Ok(Stored {
                        id,
                        record: Invoice {
                            number,
                            customer,
                            external_id,
                            source,
                            issue_date: parse_date(&issue)?,
                            due_date: parse_date(&due)?,
                            currency: cur.get(&currency)?,
                            total,
                            tax,
                            po_number,
                            status: InvoiceStatus::parse(&status).ok_or_else(|| corrupt("invoice status", &status))?,
                            status_date: status_date.as_deref().map(parse_date).transpose()?,
                            disputed,
                            paperless,
                        },
                    })
                })())
            },
        )
    }

    fn credit_notes(&self, org: i64) -> Result<Vec<Stored<CreditNote>>, StoreError> {
        let conn = self.conn()?;
        collect(
            &conn,
            "SELECT n.id, n.number, c.external_id, n.external_id, n.source, n.issue_date, n.currency, n.total, n.reason
             FROM credit_notes n JOIN customers c ON c.id = n.customer_id WHERE n.org_id = ?1 ORDER BY n.id",
            [org],
            |r| {
                let issue = text(r, 5)?;
                let currency = text(r, 6)?;
                let (id, number, customer, external_id, source, total, reason) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(7)?, r.get(8)?);
                get((|| {
                    Ok(Stored {
                        id,
                        record: CreditNote {
                            number,
                            customer,
                            external_id,
                            source,
                            issue_date: parse_date(&issue)?,
                            currency: parse_currency(&currency)?,
                            total,
                            reason,
                        },
                    })
                })())
            },
        )
    }

    fn payments(&self, org: i64) -> Result<Vec<Stored<Payment>>, StoreError> {
        let conn = self.conn()?;
        collect(
            &conn,
            "SELECT p.id, p.external_id, c.external_id, p.source, p.received_on, p.currency, p.amount, p.method, p.reference, p.payer_name
             FROM payments p JOIN customers c ON c.id = p.customer_id WHERE p.org_id = ?1 ORDER BY p.id",
            [org],
            |r| {
                let received = text(r, 4)?;
                let currency = text(r, 5)?;
                let (id, external_id, customer, source) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let (amount, method, reference, payer_name) = (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
                get((|| {
                    Ok(Stored {
                        id,
                        record: Payment {
                            external_id,
                            customer,
                            source,
                            received_on: parse_date(&received)?,
                            currency: parse_currency(&currency)?,
                            amount,
                            method,
                            reference,
                            payer_name,
                        },
                    })
                })())
            },
        )
    }

    fn allocations(&self, org: i64) -> Result<Vec<Stored<Allocation>>, StoreError> {
        let conn = self.conn()?;
        collect(
            &conn,
            "SELECT a.id, i.number, p.external_id, n.number, a.amount, a.applied_on
             FROM allocations a
             JOIN invoices i ON i.id = a.invoice_id
             LEFT JOIN payments p ON p.id = a.payment_id
             LEFT JOIN credit_notes n ON n.id = a.credit_note_id
             WHERE a.org_id = ?1 ORDER BY a.id",
            [org],
            |r| {
                let id: i64 = r.get(0)?;
                let invoice: String = r.get(1)?;
                let payment: Option<String> = r.get(2)?;
                let note: Option<String> = r.get(3)?;
                let amount: i64 = r.get(4)?;
                let applied = text(r, 5)?;
                get((|| {
                    let source = match (payment, note) {
                        (Some(p), None) => AllocationSource::Payment(p),
                        (None, Some(n)) => AllocationSource::CreditNote(n),
                        _ => {
                            return Err(corrupt(
                                "allocation",
                                format!("#{id} must have exactly one source"),
                            ));
                        }
                    };
                    Ok(Stored {
                        id,
                        record: Allocation {
                            invoice,
                            source,
                            amount,
                            applied_on: parse_date(&applied)?,
                        },
                    })
                })())
            },
        )
    }

    fn fx_rates(&self, org: i64) -> Result<Vec<FxRate>, StoreError> {
        let conn = self.conn()?;
        collect(
            &conn,
            "SELECT from_currency, to_currency, valid_on, rate_e12 FROM fx_rates WHERE org_id = ?1
             ORDER BY from_currency, to_currency, valid_on",
            [org],
            |r| {
                let (from, to, valid, rate): (String, String, String, i64) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                get((|| {
                    Ok(FxRate {
                        from: parse_currency(&from)?,
                        to: parse_currency(&to)?,
                        valid_on: parse_date(&valid)?,
                        rate: rate_from_i64(rate)?,
                    })
                })())
            },
        )
    }

    fn events(&self, org: i64, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn()?;
        // NULL filters match everything; one statement serves every combination.
        let limit = filter.limit.map_or(-1, i64::from);
        collect(
            &conn,
            "SELECT id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data FROM events
             WHERE org_id = ?1 AND (?2 IS NULL OR customer_key = ?2) AND (?3 IS NULL OR entity_type = ?3)
               AND (?4 IS NULL OR entity_key = ?4) AND (?6 IS NULL OR substr(kind, 1, length(?6)) = ?6)
               AND (?7 IS NULL OR actor = ?7) AND (?8 IS NULL OR id < ?8)
             ORDER BY id DESC LIMIT ?5",
            params![
                org,
                filter.customer,
                filter.entity_type,
                filter.entity_key,
                limit,
                filter.kind_prefix,
                filter.actor,
                filter.before_id
            ],
            |r| {
                let recorded = text(r, 1)?;
                let data = text(r, 8)?;
                let (id, actor, kind, entity_type, entity_key, customer, summary) =
                    (r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
                get((|| {
                    Ok(Event {
                        id,
                        recorded_at: parse_timestamp(&recorded)?,
                        actor,
                        kind,
                        entity_type,
                        entity_key,
                        customer,
                        summary,
                        data: serde_json::from_str(&data).map_err(|e| corrupt("event data", e))?,
                    })
                })())
            },
        )
    }

    fn ledger_facts(&self, org: i64) -> Result<LedgerFacts, StoreError> {
        // Invoices and allocations are read at the same time on two pooled
        // connections (WAL lets readers run in parallel): decoding a million
        // rows of each is CPU-bound, so this roughly halves the wall time.
        // Two connections means two read snapshots, and a write committing
        // between their starts would pair invoices and allocations from
        // different states; every write appends events, so both snapshots
        // note the newest event id and the read is retried if they differ.
        for _ in 0..3 {
            let mut conn = self.conn()?;
            // Never wait for a second connection: if the pool is busy, read
            // everything on this one.
            let Some(mut other) = self.pool.try_get() else {
                return read_facts(&mut conn, org);
            };
            let (mine, theirs) = std::thread::scope(|s| {
                let allocations = s.spawn(|| {
                    let tx = other.transaction().map_err(map_err)?;
                    let mark = snapshot_mark(&tx)?;
                    Ok::<_, StoreError>((mark, allocation_facts(&tx, org)?))
                });
                let mine = (|| {
                    let tx = conn.transaction().map_err(map_err)?;
                    let mark = snapshot_mark(&tx)?;
                    let (base_currency, customers) = org_facts(&tx, org)?;
                    let invoices = invoice_facts(&tx, org)?;
                    Ok::<_, StoreError>((mark, base_currency, customers, invoices))
                })();
                let theirs = allocations
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Database("reader thread panicked".into())));
                (mine, theirs)
            });
            let (mark, base_currency, customers, invoices) = mine?;
            let (their_mark, allocations) = theirs?;
            if mark == their_mark {
                return Ok(LedgerFacts {
                    base_currency,
                    customers,
                    invoices,
                    allocations,
                });
            }
        }
        // Writes kept landing between the two snapshots: read serially.
        read_facts(&mut *self.conn()?, org)
    }

    fn apply(
        &self,
        org: i64,
        changes: &ChangeSet,
        actor: &str,
        now: Timestamp,
    ) -> Result<AppliedCounts, StoreError> {
        let mut conn = self.conn()?;
        conn.execute_batch(WRITE_CACHE).map_err(map_err)?;
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            // Any error returns early and dropping `tx` rolls everything back.
            let counts = apply_in(&tx, org, changes, actor, now)?;
            if !changes.is_empty() {
                bump_ledger_version(&tx, org)?;
            }
            tx.commit().map_err(map_err)?;
            Ok(counts)
        })();
        // Back to the default so the pooled connection does not keep the pages.
        conn.execute_batch(READ_CACHE).map_err(map_err)?;
        result
    }
}

/// Increments the organization's ledger version (read caches key on it);
/// `NotFound` for an unknown organization.
pub(crate) fn bump_ledger_version(conn: &Connection, org: i64) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE organizations SET ledger_version = ledger_version + 1 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute([org]))
        .map_err(map_err)?;
    if n == 0 {
        return Err(not_found("organization", org));
    }
    Ok(())
}

/// Identifies a read snapshot: the newest event id (every write that changes
/// the ledger appends an event). Also starts the snapshot of `tx`.
fn snapshot_mark(tx: &Transaction<'_>) -> Result<Option<i64>, StoreError> {
    tx.query_row("SELECT max(id) FROM events", [], |r| r.get(0))
        .map_err(map_err)
}

/// [`Store::ledger_facts`] in one transaction on one connection.
fn read_facts(conn: &mut Connection, org: i64) -> Result<LedgerFacts, StoreError> {
    let tx = conn.transaction().map_err(map_err)?;
    let (base_currency, customers) = org_facts(&tx, org)?;
    Ok(LedgerFacts {
        base_currency,
        customers,
        invoices: invoice_facts(&tx, org)?,
        allocations: allocation_facts(&tx, org)?,
    })
}

fn org_facts(conn: &Connection, org: i64) -> Result<(Currency, Vec<CustomerFact>), StoreError> {
    let base: String = conn
        .query_row(
            "SELECT base_currency FROM organizations WHERE id = ?1",
            [org],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_err)?
        .ok_or(StoreError::NotFound {
            entity: "organization",
            id: org,
        })?;
    let customers = collect(
        conn,
        "SELECT id, external_id, name, segment FROM customers WHERE org_id = ?1 ORDER BY id",
        [org],
        |r| {
            Ok(Ok(CustomerFact {
                id: r.get(0)?,
                external_id: r.get(1)?,
                name: r.get(2)?,
                segment: r.get(3)?,
            }))
        },
    )?;
    Ok((parse_currency(&base)?, customers))
}

/// Text column as raw bytes, borrowed from SQLite's buffer (no allocation,
/// no UTF-8 check: the parsers below only accept ASCII anyway).
fn bytes<'r>(r: &'r Row<'_>, i: usize) -> Result<&'r [u8], StoreError> {
    r.get_ref(i)
        .map_err(map_err)?
        .as_bytes()
        .map_err(|e| corrupt("column", e))
}

fn invoice_facts(conn: &Connection, org: i64) -> Result<Vec<InvoiceFact>, StoreError> {
    // `+org_id` keeps SQLite from using the (org_id, customer_id) index:
    // a rowid-order table scan is already sorted by id, while the index
    // would force a sort of every row.
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, customer_id, issue_date, due_date, currency, total, status, status_date
             FROM invoices WHERE +org_id = ?1 ORDER BY id",
        )
        .map_err(map_err)?;
    let mut rows = stmt.query([org]).map_err(map_err)?;
    let mut cur = CurrencyCache::default();
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        let issue_date = parse_date_bytes(bytes(r, 2)?)?;
        let closure = match bytes(r, 6)? {
            b"open" => None,
            b"void" => Some(Closure::Void),
            b"written_off" => Some(Closure::WrittenOff),
            other => return Err(corrupt("invoice status", String::from_utf8_lossy(other))),
        };
        let closed = match closure {
            None => None,
            Some(c) => match r.get_ref(7).map_err(map_err)? {
                // A closure without a date: treat it as closed from issue.
                ValueRef::Null => Some((issue_date, c)),
                d => Some((
                    parse_date_bytes(d.as_bytes().map_err(|e| corrupt("date", e))?)?,
                    c,
                )),
            },
        };
        out.push(InvoiceFact {
            id: r.get(0).map_err(map_err)?,
            customer_id: r.get(1).map_err(map_err)?,
            issue_date,
            due_date: parse_date_bytes(bytes(r, 3)?)?,
            currency: cur.get_bytes(bytes(r, 4)?)?,
            total: r.get(5).map_err(map_err)?,
            closed,
        });
    }
    Ok(out)
}

fn allocation_facts(conn: &Connection, org: i64) -> Result<Vec<AllocationFact>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT invoice_id, applied_on, amount, credit_note_id IS NOT NULL FROM allocations WHERE +org_id = ?1",
        )
        .map_err(map_err)?;
    let mut rows = stmt.query([org]).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        out.push(AllocationFact {
            invoice_id: r.get(0).map_err(map_err)?,
            applied_on: parse_date_bytes(bytes(r, 1)?)?,
            amount: r.get(2).map_err(map_err)?,
            from_credit_note: r.get(3).map_err(map_err)?,
        });
    }
    Ok(out)
}

fn not_found(entity: &'static str, id: i64) -> StoreError {
    StoreError::NotFound { entity, id }
}

/// Natural key → id for one table of the organization, read once per apply.
fn key_map(tx: &Transaction<'_>, sql: &str, org: i64) -> Result<HashMap<String, i64>, StoreError> {
    let mut stmt = tx.prepare(sql).map_err(map_err)?;
    let mut rows = stmt.query([org]).map_err(map_err)?;
    let mut map = HashMap::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        map.insert(
            r.get::<_, String>(1).map_err(map_err)?,
            r.get::<_, i64>(0).map_err(map_err)?,
        );
    }
    Ok(map)
}

fn lookup(map: &HashMap<String, i64>, entity: &'static str, key: &str) -> Result<i64, StoreError> {
    map.get(key).copied().ok_or_else(|| unknown(entity, key))
}

/// A list of ids as one bound parameter, read back with `json_each`.
fn id_list(ids: &[i64]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(StoreError::database)
}

/// Fails with `CurrencyMismatch` for allocation `id`.
fn mismatch_of(tx: &Transaction<'_>, id: i64) -> Result<StoreError, StoreError> {
    let (invoice, invoice_currency, from_payment, key, currency): (String, String, bool, String, String) = tx
        .query_row(
            "SELECT i.number, i.currency, a.payment_id IS NOT NULL, coalesce(p.external_id, n.number), coalesce(p.currency, n.currency)
             FROM allocations a
             JOIN invoices i ON i.id = a.invoice_id
             LEFT JOIN payments p ON p.id = a.payment_id
             LEFT JOIN credit_notes n ON n.id = a.credit_note_id
             WHERE a.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .map_err(map_err)?;
    currency_mismatch(invoice, &invoice_currency, from_payment, key, &currency)
}

/// The allocation invariant, checked inside the write transaction for the
/// rows this change set touched: every allocation is in its invoice's
/// currency, and what is allocated to an invoice (from a payment, from a
/// credit note) does not exceed its total (amount, total). One grouped query
/// per kind over the touched ids (driven by the id list, so a small change
/// set to a large ledger reads only its own rows). `BEGIN IMMEDIATE` means
/// no other write can commit in between. The queries, their order and their
/// `ORDER BY` match `postgres::check_allocations`, so both backends report
/// the same first violation.
fn check_allocations(tx: &Transaction<'_>, org: i64, t: &Touched) -> Result<(), StoreError> {
    if !t.invoices.is_empty() {
        let row: Option<(String, String, i64, i64, Option<i64>)> = tx
            .query_row(
                "SELECT i.number, i.currency, i.total, SUM(a.amount),
                        MIN(CASE WHEN i.currency <> coalesce(p.currency, n.currency) THEN a.id END)
                 FROM json_each(?2) j
                 CROSS JOIN invoices i ON i.id = j.value
                 JOIN allocations a ON a.org_id = i.org_id AND a.invoice_id = i.id
                 LEFT JOIN payments p ON p.id = a.payment_id
                 LEFT JOIN credit_notes n ON n.id = a.credit_note_id
                 WHERE i.org_id = ?1
                 GROUP BY i.id
                 HAVING SUM(a.amount) > i.total
                     OR MIN(CASE WHEN i.currency <> coalesce(p.currency, n.currency) THEN a.id END) IS NOT NULL
                 ORDER BY i.id LIMIT 1",
                params![org, id_list(&t.invoices)?],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(map_err)?;
        if let Some((number, currency, total, allocated, mismatch)) = row {
            return Err(match mismatch {
                Some(id) => mismatch_of(tx, id)?,
                None => over_allocated("invoice", number, &currency, allocated, total)?,
            });
        }
    }
    for (ids, sql) in [
        (
            &t.payments_updated,
            "SELECT MIN(a.id) FROM json_each(?2) j
             CROSS JOIN payments p ON p.id = j.value
             JOIN allocations a ON a.payment_id = p.id
             JOIN invoices i ON i.id = a.invoice_id
             WHERE p.org_id = ?1 AND i.currency <> p.currency",
        ),
        (
            &t.credit_notes_updated,
            "SELECT MIN(a.id) FROM json_each(?2) j
             CROSS JOIN credit_notes n ON n.id = j.value
             JOIN allocations a ON a.credit_note_id = n.id
             JOIN invoices i ON i.id = a.invoice_id
             WHERE n.org_id = ?1 AND i.currency <> n.currency",
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        let first: Option<i64> = tx
            .query_row(sql, params![org, id_list(ids)?], |r| r.get(0))
            .map_err(map_err)?;
        if let Some(id) = first {
            return Err(mismatch_of(tx, id)?);
        }
    }
    for (entity, ids, sql) in [
        (
            "payment",
            &t.payments,
            "SELECT p.external_id, p.currency, p.amount, SUM(a.amount)
             FROM json_each(?2) j
             CROSS JOIN payments p ON p.id = j.value
             JOIN allocations a ON a.payment_id = p.id
             WHERE p.org_id = ?1
             GROUP BY p.id HAVING SUM(a.amount) > p.amount
             ORDER BY p.id LIMIT 1",
        ),
        (
            "credit note",
            &t.credit_notes,
            "SELECT n.number, n.currency, n.total, SUM(a.amount)
             FROM json_each(?2) j
             CROSS JOIN credit_notes n ON n.id = j.value
             JOIN allocations a ON a.credit_note_id = n.id
             WHERE n.org_id = ?1
             GROUP BY n.id HAVING SUM(a.amount) > n.total
             ORDER BY n.id LIMIT 1",
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        let row: Option<(String, String, i64, i64)> = tx
            .query_row(sql, params![org, id_list(ids)?], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(map_err)?;
        if let Some((key, currency, limit, allocated)) = row {
            return Err(over_allocated(entity, key, &currency, allocated, limit)?);
        }
    }
    Ok(())
}

fn apply_in(
    tx: &Transaction<'_>,
    org: i64,
    cs: &ChangeSet,
    actor: &str,
    now: Timestamp,
) -> Result<AppliedCounts, StoreError> {
    let mut counts = AppliedCounts::default();

    for c in &cs.customers {
        let r = c.record();
        let tags = tags_to_json(&r.tags);
        let terms = r.payment_terms_days.map(i64::from);
        match c {
            Change::Insert(_) => {
                tx.prepare_cached(
                    "INSERT INTO customers (org_id, external_id, name, segment, tags, country, time_zone, locale, currency,
                        payment_terms_days, credit_limit, collector, autopay) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        org, r.external_id, r.name, r.segment, tags, r.country, r.time_zone, r.locale, r.currency.code(), terms,
                        r.credit_limit, r.collector, r.autopay
                    ])
                })
                .map_err(map_err)?;
                counts.customers.inserted += 1;
            }
            Change::Update { id, before, after } => {
                let n = tx
                    .prepare_cached(
                        "UPDATE customers SET external_id = ?1, name = ?2, segment = ?3, tags = ?4, country = ?5, time_zone = ?6, locale = ?7,
                            currency = ?8, payment_terms_days = ?9, credit_limit = ?10, collector = ?11, autopay = ?12
                         WHERE id = ?13 AND org_id = ?14",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            r.external_id, r.name, r.segment, tags, r.country, r.time_zone, r.locale, r.currency.code(), terms,
                            r.credit_limit, r.collector, r.autopay, id, org
                        ])
                    })
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(not_found("customer", *id));
                }
                if before != after {
                    counts.customers.updated += 1;
                }
            }
        }
    }

    let needs_customers = !cs.contacts.is_empty()
        || !cs.invoices.is_empty()
        || !cs.credit_notes.is_empty()
        || !cs.payments.is_empty()
        || !cs.allocations.is_empty();
    let customers = if needs_customers {
        key_map(
            tx,
            "SELECT id, external_id FROM customers WHERE org_id = ?1",
            org,
        )?
    } else {
        HashMap::new()
    };

    for c in &cs.contacts {
        let r = c.record();
        let customer = lookup(&customers, "customer", &r.customer)?;
        let p = &r.preferences;
        match c {
            Change::Insert(_) => {
                tx.prepare_cached(
                    "INSERT INTO contacts (org_id, customer_id, external_id, name, email, phone, role, is_primary,
                        email_opt_out, sms_consent, sms_opt_out, call_opt_out) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        org, customer, r.external_id, r.name, r.email, r.phone, r.role, r.is_primary, p.email_opt_out, p.sms_consent,
                        p.sms_opt_out, p.call_opt_out
                    ])
                })
                .map_err(map_err)?;
                counts.contacts.inserted += 1;
            }
            Change::Update { id, before, after } => {
                let n = tx
                    .prepare_cached(
                        "UPDATE contacts SET customer_id = ?1, external_id = ?2, name = ?3, email = ?4, phone = ?5, role = ?6, is_primary = ?7,
                            email_opt_out = ?8, sms_consent = ?9, sms_opt_out = ?10, call_opt_out = ?11 WHERE id = ?12 AND org_id = ?13",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            customer, r.external_id, r.name, r.email, r.phone, r.role, r.is_primary, p.email_opt_out, p.sms_consent,
                            p.sms_opt_out, p.call_opt_out, id, org
                        ])
                    })
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(not_found("contact", *id));
                }
                if before != after {
                    counts.contacts.updated += 1;
                }
            }
        }
    }

    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO invoices (org_id, customer_id, number, external_id, source, issue_date, due_date, currency, total, tax,
                    po_number, status, status_date, disputed, paperless) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )
            .map_err(map_err)?;
        for c in &cs.invoices {
            let r = c.record();
            let customer = lookup(&customers, "customer", &r.customer)?;
            let (issue, due, status_date) = (
                date_text(r.issue_date),
                date_text(r.due_date),
                r.status_date.map(date_text),
            );
            match c {
                Change::Insert(_) => {
                    insert
                        .execute(params![
                            org,
                            customer,
                            r.number,
                            r.external_id,
                            r.source,
                            issue,
                            due,
                            r.currency.code(),
                            r.total,
                            r.tax,
                            r.po_number,
                            r.status.as_str(),
                            status_date,
                            r.disputed,
                            r.paperless
                        ])
                        .map_err(map_err)?;
                    counts.invoices.inserted += 1;
                }
                Change::Update { id, before, after } => {
                    let n = tx
                        .prepare_cached(
                            "UPDATE invoices SET customer_id = ?1, number = ?2, external_id = ?3, source = ?4, issue_date = ?5, due_date = ?6,
                                currency = ?7, total = ?8, tax = ?9, po_number = ?10, status = ?11, status_date = ?12, disputed = ?13,
                                paperless = ?14 WHERE id = ?15 AND org_id = ?16",
                        )
                        .and_then(|mut s| {
                            s.execute(params![
                                customer,
                                r.number,
                                r.external_id,
                                r.source,
                                issue,
                                due,
                                r.currency.code(),
                                r.total,
                                r.tax,
                                r.po_number,
                                r.status.as_str(),
                                status_date,
                                r.disputed,
                                r.paperless,
                                id,
                                org
                            ])
                        })
                        .map_err(map_err)?;
                    if n == 0 {
                        return Err(not_found("invoice", *id));
                    }
                    if before != after {
                        counts.invoices.updated += 1;
                    }
                }
            }
        }
    }

    for c in &cs.credit_notes {
        let r = c.record();
        let customer = lookup(&customers, "customer", &r.customer)?;
        let issue = date_text(r.issue_date);
        match c {
            Change::Insert(_) => {
                tx.prepare_cached(
                    "INSERT INTO credit_notes (org_id, customer_id, number, external_id, source, issue_date, currency, total, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .and_then(|mut s| {
                    s.execute(params![org, customer, r.number, r.external_id, r.source, issue, r.currency.code(), r.total, r.reason])
                })
                .map_err(map_err)?;
                counts.credit_notes.inserted += 1;
            }
            Change::Update { id, before, after } => {
                let n = tx
                    .prepare_cached(
                        "UPDATE credit_notes SET customer_id = ?1, number = ?2, external_id = ?3, source = ?4, issue_date = ?5, currency = ?6,
                            total = ?7, reason = ?8 WHERE id = ?9 AND org_id = ?10",
                    )
                    .and_then(|mut s| {
                        s.execute(params![customer, r.number, r.external_id, r.source, issue, r.currency.code(), r.total, r.reason, id, org])
                    })
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(not_found("credit note", *id));
                }
                if before != after {
                    counts.credit_notes.updated += 1;
                }
            }
        }
    }

    for c in &cs.payments {
        let r = c.record();
        let customer = lookup(&customers, "customer", &r.customer)?;
        let received = date_text(r.received_on);
        match c {
            Change::Insert(_) => {
                tx.prepare_cached(
                    "INSERT INTO payments (org_id, customer_id, external_id, source, received_on, currency, amount, method, reference, payer_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        org, customer, r.external_id, r.source, received, r.currency.code(), r.amount, r.method, r.reference, r.payer_name
                    ])
                })
                .map_err(map_err)?;
                counts.payments.inserted += 1;
            }
            Change::Update { id, before, after } => {
                let n = tx
                    .prepare_cached(
                        "UPDATE payments SET customer_id = ?1, external_id = ?2, source = ?3, received_on = ?4, currency = ?5, amount = ?6,
                            method = ?7, reference = ?8, payer_name = ?9 WHERE id = ?10 AND org_id = ?11",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            customer, r.external_id, r.source, received, r.currency.code(), r.amount, r.method, r.reference, r.payer_name,
                            id, org
                        ])
                    })
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(not_found("payment", *id));
                }
                if before != after {
                    counts.payments.updated += 1;
                }
            }
        }
    }

    let mut touched = Touched::updated_in(cs);

    // Invoice number → (id, customer id, currency), read after this change
    // set's own inserts so allocations can refer to invoices created with them.
    let mut invoices: HashMap<String, (i64, i64, Currency)> = HashMap::new();
    let mut customer_keys: HashMap<i64, &str> = HashMap::new();
    if !cs.allocations.is_empty() {
        let mut cur = CurrencyCache::default();
        let mut stmt = tx
            .prepare("SELECT id, number, customer_id, currency FROM invoices WHERE org_id = ?1")
            .map_err(map_err)?;
        let mut rows = stmt.query([org]).map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            let currency = cur.get(
                r.get_ref(3)
                    .map_err(map_err)?
                    .as_str()
                    .map_err(|e| corrupt("currency", e))?,
            )?;
            invoices.insert(
                r.get(1).map_err(map_err)?,
                (
                    r.get(0).map_err(map_err)?,
                    r.get(2).map_err(map_err)?,
                    currency,
                ),
            );
        }
        customer_keys = customers.iter().map(|(k, v)| (*v, k.as_str())).collect();
        let payments = key_map(
            tx,
            "SELECT id, external_id FROM payments WHERE org_id = ?1",
            org,
        )?;
        let notes = key_map(
            tx,
            "SELECT id, number FROM credit_notes WHERE org_id = ?1",
            org,
        )?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO allocations (org_id, invoice_id, payment_id, credit_note_id, amount, applied_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(map_err)?;
        for a in &cs.allocations {
            let (invoice, _, _) = invoices
                .get(&a.invoice)
                .ok_or_else(|| unknown("invoice", &a.invoice))?;
            let (payment, note) = match &a.source {
                AllocationSource::Payment(k) => (Some(lookup(&payments, "payment", k)?), None),
                AllocationSource::CreditNote(k) => (None, Some(lookup(&notes, "credit note", k)?)),
            };
            touched.invoices.push(*invoice);
            touched.payments.extend(payment);
            touched.credit_notes.extend(note);
            insert
                .execute(params![
                    org,
                    invoice,
                    payment,
                    note,
                    a.amount,
                    date_text(a.applied_on)
                ])
                .map_err(map_err)?;
            counts.allocations.inserted += 1;
        }
    }

    touched.finish();
    check_allocations(tx, org, &touched)?;

    if !cs.fx_rates.is_empty() {
        let mut existing: HashSet<(String, String, String)> = HashSet::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT from_currency, to_currency, valid_on FROM fx_rates WHERE org_id = ?1",
                )
                .map_err(map_err)?;
            let mut rows = stmt.query([org]).map_err(map_err)?;
            while let Some(r) = rows.next().map_err(map_err)? {
                existing.insert((
                    r.get(0).map_err(map_err)?,
                    r.get(1).map_err(map_err)?,
                    r.get(2).map_err(map_err)?,
                ));
            }
        }
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO fx_rates (org_id, from_currency, to_currency, valid_on, rate_e12) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (org_id, from_currency, to_currency, valid_on) DO UPDATE SET rate_e12 = excluded.rate_e12",
            )
            .map_err(map_err)?;
        for r in &cs.fx_rates {
            let key = (
                r.from.code().to_string(),
                r.to.code().to_string(),
                date_text(r.valid_on),
            );
            upsert
                .execute(params![org, key.0, key.1, key.2, rate_to_i64(r.rate)?])
                .map_err(map_err)?;
            if existing.insert(key) {
                counts.fx_rates.inserted += 1;
            } else {
                counts.fx_rates.updated += 1;
            }
        }
    }

    let recorded_at = ts_text(now);
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO events (org_id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(map_err)?;
    // One buffer for every event's JSON: serialized straight to bytes and
    // bound as borrowed text, with no intermediate `String` per event.
    let mut data: Vec<u8> = Vec::with_capacity(256);
    for_each_event(cs, |ev, alloc| {
        if let Some(a) = alloc
            && let Some((_, customer_id, currency)) = invoices.get(&a.invoice)
        {
            let customer = customer_keys.get(customer_id).copied().unwrap_or_default();
            finish_allocation_event(ev, a, customer, *currency);
        }
        data.clear();
        serde_json::to_writer(&mut data, &ev.data)
            .map_err(|e| StoreError::Database(format!("event data: {e}")))?;
        // serde_json writes valid UTF-8.
        let data = std::str::from_utf8(&data)
            .map_err(|e| StoreError::Database(format!("event data: {e}")))?;
        insert
            .execute(params![
                org,
                recorded_at,
                actor,
                ev.kind,
                ev.entity_type,
                ev.entity_key,
                ev.customer,
                ev.summary,
                data
            ])
            .map_err(map_err)?;
        counts.events += 1;
        Ok::<(), StoreError>(())
    })?;
    Ok(counts)
}
