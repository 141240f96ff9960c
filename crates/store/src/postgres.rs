//! PostgreSQL implementation of [`crate::Store`].
//!
//! Same semantics as SQLite. Bulk inserts send columns as arrays and insert
//! with `INSERT … SELECT FROM UNNEST(…)` in chunks, one round trip per chunk
//! instead of one per row.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use arflow_domain::fx::FxRate;
use arflow_domain::ledger::{AllocationFact, Closure, CustomerFact, InvoiceFact, LedgerFacts};
use arflow_domain::model::{
    Allocation, AllocationSource, ChannelPreferences, Contact, CreditNote, Customer, Event,
    Invoice, InvoiceStatus, Organization, Payment, Stored,
};
use arflow_domain::money::Currency;
use jiff::Timestamp;
use postgres::error::SqlState;
use postgres::types::{FromSql, ToSql};
use postgres::{Client, IsolationLevel, NoTls, Row, Transaction};
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use crate::changeset::{AppliedCounts, Change, ChangeSet};
use crate::common::{
    CurrencyCache, DEFAULT_ORG_NAME, DEFAULT_ORG_SLUG, POSTGRES_MIGRATIONS, Touched, corrupt,
    currency_mismatch, finish_allocation_event, over_allocated, parse_currency, parse_date,
    payment_terms_from_i64, rate_from_i64, rate_to_i64, tags_from_json, tags_to_json,
    truncate_micros, unknown,
};
use crate::events::{for_each_event, organization_updated};
use crate::{Backend, EventFilter, Store, StoreError};

/// Rows per multi-row INSERT: big enough to amortise round trips, small
/// enough to keep each statement's arrays modest.
pub(crate) const CHUNK: usize = 5000;

pub struct PostgresStore {
    pool: Pool<PostgresConnectionManager<NoTls>>,
}

type Conn = PooledConnection<PostgresConnectionManager<NoTls>>;
type Param<'a> = &'a (dyn ToSql + Sync);

/// PostgreSQL names the violated constraint, which is exactly what the
/// migrations named after the rules in `error::constraint_message`.
pub(crate) fn map_err(e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error()
        && (db.code() == &SqlState::UNIQUE_VIOLATION || db.code() == &SqlState::CHECK_VIOLATION)
        && let Some(name) = db.constraint()
    {
        return StoreError::constraint(name);
    }
    StoreError::Database(pg_message(&e))
}

/// `postgres::Error`'s Display says only "db error"; the server's message is what helps.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => e.to_string(),
    }
}

pub(crate) fn ts_to_sql(t: Timestamp) -> Result<SystemTime, StoreError> {
    SystemTime::try_from(truncate_micros(t))
        .map_err(|e| StoreError::Database(format!("timestamp {t}: {e}")))
}

pub(crate) fn ts_from_sql(t: SystemTime) -> Result<Timestamp, StoreError> {
    Timestamp::try_from(t).map_err(|e| corrupt("timestamp", e))
}

/// Reads a column without panicking on a type mismatch (`Row::get` would).
pub(crate) fn g<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i).map_err(|e| corrupt("column", e))
}

pub(crate) fn date_col(r: &Row, i: usize) -> Result<jiff::civil::Date, StoreError> {
    parse_date(r.try_get::<_, &str>(i).map_err(|e| corrupt("date", e))?)
}

pub(crate) fn opt_date_col(r: &Row, i: usize) -> Result<Option<jiff::civil::Date>, StoreError> {
    r.try_get::<_, Option<&str>>(i)
        .map_err(|e| corrupt("date", e))?
        .map(parse_date)
        .transpose()
}

pub(crate) fn date_text(d: jiff::civil::Date) -> String {
    d.to_string()
}

impl PostgresStore {
    /// Connects, applies pending migrations and makes sure the default organization exists.
    pub fn connect(url: &str, now: Timestamp) -> Result<PostgresStore, StoreError> {
        let mut config =
            postgres::Config::from_str(url).map_err(|e| StoreError::Open(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = Pool::builder()
            .max_size(4)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| StoreError::Open(e.to_string()))?;
        let store = PostgresStore { pool };
        let mut conn = store.conn()?;
        migrate(&mut conn, now)?;
        conn.execute(
            "INSERT INTO organizations (slug, name, base_currency, time_zone, created_at) VALUES ($1, $2, 'USD', 'UTC', $3)
             ON CONFLICT (slug) DO NOTHING",
            &[&DEFAULT_ORG_SLUG, &DEFAULT_ORG_NAME, &ts_to_sql(now)?],
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
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .map_err(map_err)?;
        rows.iter().map(|r| g(r, 0)).collect()
    }
}

fn migrate(conn: &mut Client, now: Timestamp) -> Result<(), StoreError> {
    conn.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        .map_err(map_err)?;
    for m in POSTGRES_MIGRATIONS {
        let fail = |e: postgres::Error| StoreError::Migration {
            version: m.version,
            message: pg_message(&e),
        };
        let mut tx = conn.transaction().map_err(fail)?;
        // Serialises concurrent openers: the second waits, then sees the version row.
        tx.execute("SELECT pg_advisory_xact_lock(72610001)", &[])
            .map_err(fail)?;
        let done = tx
            .query_opt(
                "SELECT version FROM schema_migrations WHERE version = $1",
                &[&m.version],
            )
            .map_err(fail)?;
        if done.is_none() {
            tx.batch_execute(m.sql).map_err(fail)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&m.version, &ts_to_sql(now)?],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

fn org_from_row(r: &Row) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: g(r, 0)?,
        slug: g(r, 1)?,
        name: g(r, 2)?,
        base_currency: parse_currency(g(r, 3)?)?,
        time_zone: g(r, 4)?,
        created_at: ts_from_sql(g(r, 5)?)?,
    })
}

fn query(conn: &mut Conn, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
    conn.query(sql, params).map_err(map_err)
}

impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn default_organization(&self) -> Result<Organization, StoreError> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                "SELECT id, slug, name, base_currency, time_zone, created_at FROM organizations WHERE slug = $1",
                &[&DEFAULT_ORG_SLUG],
            )
            .map_err(map_err)?;
        org_from_row(&row)
    }

    fn organization(&self, id: i64) -> Result<Option<Organization>, StoreError> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(
                "SELECT id, slug, name, base_currency, time_zone, created_at FROM organizations WHERE id = $1",
                &[&id],
            )
            .map_err(map_err)?;
        row.as_ref().map(org_from_row).transpose()
    }

    fn create_organization(
        &self,
        slug: &str,
        name: &str,
        base_currency: Currency,
        time_zone: &str,
        now: Timestamp,
    ) -> Result<Organization, StoreError> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                "INSERT INTO organizations (slug, name, base_currency, time_zone, created_at) VALUES ($1, $2, $3, $4, $5)
                 RETURNING id, slug, name, base_currency, time_zone, created_at",
                &[&slug, &name, &base_currency.code(), &time_zone, &ts_to_sql(now)?],
            )
            .map_err(map_err)?;
        org_from_row(&row)
    }

    fn update_organization(
        &self,
        org: &Organization,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(map_err)?;
        // FOR UPDATE: a concurrent change waits, so each diff is against
        // what the other committed.
        let before = tx
            .query_opt(
                "SELECT id, slug, name, base_currency, time_zone, created_at FROM organizations WHERE id = $1 FOR UPDATE",
                &[&org.id],
            )
            .map_err(map_err)?
            .ok_or(StoreError::NotFound {
                entity: "organization",
                id: org.id,
            })?;
        let before = org_from_row(&before)?;
        let after = Organization {
            name: org.name.clone(),
            base_currency: org.base_currency,
            time_zone: org.time_zone.clone(),
            ..before.clone()
        };
        // Nothing changed: nothing to write or log (dropping `tx` rolls back).
        let Some(ev) = organization_updated(&before, &after) else {
            return Ok(());
        };
        tx.execute(
            "UPDATE organizations SET name = $1, base_currency = $2, time_zone = $3, ledger_version = ledger_version + 1
             WHERE id = $4",
            &[
                &after.name,
                &after.base_currency.code(),
                &after.time_zone,
                &after.id,
            ],
        )
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO events (org_id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &after.id,
                &ts_to_sql(now)?,
                &actor,
                &ev.kind,
                &ev.entity_type,
                &ev.entity_key,
                &ev.customer,
                &ev.summary,
                &ev.data,
            ],
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)
    }

    fn customers(&self, org: i64) -> Result<Vec<Stored<Customer>>, StoreError> {
        let mut conn = self.conn()?;
        let rows = query(
            &mut conn,
            "SELECT id, external_id, name, segment, tags, country, time_zone, locale, currency, payment_terms_days::bigint, credit_limit,
                    collector, autopay
             FROM customers WHERE org_id = $1 ORDER BY id",
            &[&org],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Stored {
                    id: g(r, 0)?,
                    record: Customer {
                        external_id: g(r, 1)?,
                        name: g(r, 2)?,
                        segment: g(r, 3)?,
                        tags: tags_from_json(g(r, 4)?)?,
                        country: g(r, 5)?,
                        time_zone: g(r, 6)?,
                        locale: g(r, 7)?,
                        currency: parse_currency(g(r, 8)?)?,
                        payment_terms_days: payment_terms_from_i64(g(r, 9)?)?,
                        credit_limit: g(r, 10)?,
                        collector: g(r, 11)?,
                        autopay: g(r, 12)?,
                    },
                })
            })
            .collect()
    }

    fn contacts(&self, org: i64) -> Result<Vec<Stored<Contact>>, StoreError> {
        let mut conn = self.conn()?;
        let rows = query(
            &mut conn,
            "SELECT k.id, c.external_id, k.external_id, k.name, k.email, k.phone, k.role, k.is_primary,
                    k.email_opt_out, k.sms_consent, k.sms_opt_out, k.call_opt_out
             FROM contacts k JOIN customers c ON c.id = k.customer_id WHERE k.org_id = $1 ORDER BY k.id",
            &[&org],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Stored {
                    id: g(r, 0)?,
                    record: Contact {
                        customer: g(r, 1)?,
                        external_id: g(r, 2)?,
                        name: g(r, 3)?,
                        email: g(r, 4)?,
                        phone: g(r, 5)?,
                        role: g(r, 6)?,
                        is_primary: g(r, 7)?,
                        preferences: ChannelPreferences {
                            email_opt_out: g(r, 8)?,
                            sms_consent: g(r, 9)?,
                            sms_opt_out: g(r, 10)?,
                            call_opt_out: g(r, 11)?,
                        },
                    },
                })
            })
            .collect()
    }

    fn invoices(&self, org: i64) -> Result<Vec<Stored<Invoice>>, StoreError> {
        let mut conn = self.conn()?;
        let rows = query(
            &mut conn,
            "SELECT i.id, i.number, c.external_id, i.external_id, i.source, to_char(i.issue_date, 'YYYY-MM-DD'),
                    to_char(i.due_date, 'YYYY-MM-DD'), i.currency, i.total, i.tax, i.po_number, i.status,
                    to_char(i.status_date, 'YYYY-MM-DD'), i.disputed, i.paperless
             FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.org_id = $1 ORDER BY i.id",
            &[&org],
        )?;
        let mut cur = CurrencyCache::default();
        rows.iter()
            .map(|r| {
                let status: &str = g(r, 11)?;
                Ok(Stored {
                    id: g(r, 0)?,
                    record: Invoice {
                        number: g(r, 1)?,
                        customer: g(r, 2)?,
                        external_id: g(r, 3)?,
                        source: g(r, 4)?,
                        issue_date: date_col(r, 5)?,
                        due_date: date_col(r, 6)?,
                        currency: cur.get(g(r, 7)?)?,
                        total: g(r, 8)?,
                        tax: g(r, 9)?,
                        po_number: g(r, 10)?,
                        status: InvoiceStatus::parse(status)
                            .ok_or_else(|| corrupt("invoice status", status))?,
                        status_date: opt_date_col(r, 12)?,
                        disputed: g(r, 13)?,
                        paperless: g(r, 14)?,
                    },
                })
            })
            .collect()
    }

    fn credit_notes(&self, org: i64) -> Result<Vec<Stored<CreditNote>>, StoreError> {
        let mut conn = self.conn()?;
        let rows = query(
            &mut conn,
            "SELECT n.id, n.number, c.external_id, n.external_id, n.source, to_char(n.issue_date, 'YYYY-MM-DD'), n.currency, n.total, n.reason
             FROM credit_notes n JOIN customers c ON c.id = n.customer_id WHERE n.org_id = $1 ORDER BY n.id",
            &[&org],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Stored {
                    id: g(r, 0)?,
                    record: CreditNote {
                        number: g(r, 1)?,
                        customer: g(r, 2)?,
                        external_id: g(r, 3)?,
                        source: g(r, 4)?,
                        issue_date: date_col(r, 5)?,
                        currency: parse_currency(g(r, 6)?)?,
                        total: g(r, 7)?,
                        reason: g(r, 8)?,
                    },
                })
            })
            .collect()
    }

    fn payments(&self, org: i64) -> Result<Vec<Stored<Payment>>, StoreError> {
        let mut conn = self.conn()?;
        let rows = query(
            &mut conn,
            "SELECT p.id, p.external_id, c.external_id, p.source, to_char(p.received_on, 'YYYY-MM-DD'), p.currency, p.amount, p.method,
                    p.reference, p.payer_name
             FROM payments p JOIN customers c ON c.id = p.customer_id WHERE p.org_id = $1 ORDER BY p.id",
            &[&org],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Stored {
                    id: g(r, 0)?,
                    record: Payment {
                        external_id: g(r, 1)?,
                        customer: g(r, 2)?,
                        source: g(r, 3)?,
                        received_on: date_col(r, 4)?,
                        currency: parse_currency(g(r, 5)?)?,
                        amount: g(r, 6)?,
                        method: g(r, 7)?,
                        reference: g(r, 8)?,
                        payer_name: g(r, 9)?,
                    },
                })
            })
            .collect()
    }

    fn allocations(&self, org: i64) -> Result<Vec<Stored<Allocation>>, StoreError> {
        let mut conn = self.conn()?;
        let rows = query(
            &mut conn,
            "SELECT a.id, i.number, p.external_id, n.number, a.amount, to_char(a.applied_on, 'YYYY-MM-DD')
             FROM allocations a
             JOIN invoices i ON i.id = a.invoice_id
             LEFT JOIN payments p ON p.id = a.payment_id
             LEFT JOIN credit_notes n ON n.id = a.credit_note_id
             WHERE a.org_id = $1 ORDER BY a.id",
            &[&org],
        )?;
        rows.iter()
            .map(|r| {
                let id: i64 = g(r, 0)?;
                let source = match (g::<Option<String>>(r, 2)?, g::<Option<String>>(r, 3)?) {
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
                        invoice: g(r, 1)?,
                        source,
                        amount: g(r, 4)?,
                        applied_on: date_col(r, 5)?,
                    },
                })
            })
            .collect()
    }

    fn fx_rates(&self, org: i64) -> Result<Vec<FxRate>, StoreError> {
        let mut conn = self.conn()?;
        // COLLATE "C": the same byte order SQLite uses, whatever the database locale.
        let rows = query(
            &mut conn,
            "SELECT from_currency, to_currency, to_char(valid_on, 'YYYY-MM-DD'), rate_e12 FROM fx_rates WHERE org_id = $1
             ORDER BY from_currency COLLATE \"C\", to_currency COLLATE \"C\", valid_on",
            &[&org],
        )?;
        rows.iter()
            .map(|r| {
                Ok(FxRate {
                    from: parse_currency(g(r, 0)?)?,
                    to: parse_currency(g(r, 1)?)?,
                    valid_on: date_col(r, 2)?,
                    rate: rate_from_i64(g(r, 3)?)?,
                })
            })
            .collect()
    }

    fn events(&self, org: i64, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let mut conn = self.conn()?;
        // NULL filters match everything; one statement serves every combination.
        let limit: Option<i64> = filter.limit.map(i64::from);
        let rows = query(
            &mut conn,
            "SELECT id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data FROM events
             WHERE org_id = $1 AND ($2::text IS NULL OR customer_key = $2) AND ($3::text IS NULL OR entity_type = $3)
               AND ($4::text IS NULL OR entity_key = $4) AND ($6::text IS NULL OR starts_with(kind, $6))
               AND ($7::text IS NULL OR actor = $7) AND ($8::bigint IS NULL OR id < $8)
             ORDER BY id DESC LIMIT $5",
            &[
                &org,
                &filter.customer,
                &filter.entity_type,
                &filter.entity_key,
                &limit,
                &filter.kind_prefix,
                &filter.actor,
                &filter.before_id,
            ],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    id: g(r, 0)?,
                    recorded_at: ts_from_sql(g(r, 1)?)?,
                    actor: g(r, 2)?,
                    kind: g(r, 3)?,
                    entity_type: g(r, 4)?,
                    entity_key: g(r, 5)?,
                    customer: g(r, 6)?,
                    summary: g(r, 7)?,
                    data: g(r, 8)?,
                })
            })
            .collect()
    }

    fn ledger_facts(&self, org: i64) -> Result<LedgerFacts, StoreError> {
        let mut conn = self.conn()?;
        // One snapshot for all four reads, so a change set committing
        // meanwhile is seen entirely or not at all.
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(map_err)?;
        let base = tx
            .query_opt(
                "SELECT base_currency FROM organizations WHERE id = $1",
                &[&org],
            )
            .map_err(map_err)?
            .ok_or(StoreError::NotFound {
                entity: "organization",
                id: org,
            })?;
        let base_currency = parse_currency(g(&base, 0)?)?;
        let customers = tx.query(
            "SELECT id, external_id, name, segment FROM customers WHERE org_id = $1 ORDER BY id",
            &[&org],
        )
        .map_err(map_err)?
        .iter()
        .map(|r| {
            Ok(CustomerFact {
                id: g(r, 0)?,
                external_id: g(r, 1)?,
                name: g(r, 2)?,
                segment: g(r, 3)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
        let mut cur = CurrencyCache::default();
        let invoices = tx.query(
            "SELECT id, customer_id, to_char(issue_date, 'YYYY-MM-DD'), to_char(due_date, 'YYYY-MM-DD'), currency, total, status,
                    to_char(coalesce(status_date, issue_date), 'YYYY-MM-DD')
             FROM invoices WHERE org_id = $1 ORDER BY id",
            &[&org],
        )
        .map_err(map_err)?
        .iter()
        .map(|r| {
            let closure = match g::<&str>(r, 6)? {
                "open" => None,
                "void" => Some(Closure::Void),
                "written_off" => Some(Closure::WrittenOff),
                other => return Err(corrupt("invoice status", other)),
            };
            Ok(InvoiceFact {
                id: g(r, 0)?,
                customer_id: g(r, 1)?,
                issue_date: date_col(r, 2)?,
                due_date: date_col(r, 3)?,
                currency: cur.get(g(r, 4)?)?,
                total: g(r, 5)?,
                // A closure without a date is treated as closed from issue.
                closed: closure.map(|c| date_col(r, 7).map(|d| (d, c))).transpose()?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
        let allocations = tx.query(
            "SELECT invoice_id, to_char(applied_on, 'YYYY-MM-DD'), amount, credit_note_id IS NOT NULL FROM allocations WHERE org_id = $1",
            &[&org],
        )
        .map_err(map_err)?
        .iter()
        .map(|r| {
            Ok(AllocationFact {
                invoice_id: g(r, 0)?,
                applied_on: date_col(r, 1)?,
                amount: g(r, 2)?,
                from_credit_note: g(r, 3)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
        tx.commit().map_err(map_err)?;
        Ok(LedgerFacts {
            base_currency,
            customers,
            invoices,
            allocations,
        })
    }

    fn apply(
        &self,
        org: i64,
        changes: &ChangeSet,
        actor: &str,
        now: Timestamp,
    ) -> Result<AppliedCounts, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(map_err)?;
        // Any error returns early and dropping `tx` rolls everything back.
        let counts = apply_in(&mut tx, org, changes, actor, now)?;
        // Last, so the organization's row is locked only for the commit.
        if !changes.is_empty() {
            bump_ledger_version(&mut tx, org)?;
        }
        tx.commit().map_err(map_err)?;
        Ok(counts)
    }
}

/// Increments the organization's ledger version (read caches key on it);
/// `NotFound` for an unknown organization. NO KEY UPDATE: it does not block
/// the KEY SHARE locks other writers' foreign keys take on the row.
pub(crate) fn bump_ledger_version<C: postgres::GenericClient>(
    c: &mut C,
    org: i64,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE organizations SET ledger_version = ledger_version + 1 WHERE id = $1",
            &[&org],
        )
        .map_err(map_err)?;
    if n == 0 {
        return Err(not_found("organization", org));
    }
    Ok(())
}

fn not_found(entity: &'static str, id: i64) -> StoreError {
    StoreError::NotFound { entity, id }
}

fn key_map(
    tx: &mut Transaction<'_>,
    sql: &str,
    org: i64,
) -> Result<HashMap<String, i64>, StoreError> {
    let rows = tx.query(sql, &[&org]).map_err(map_err)?;
    rows.iter().map(|r| Ok((g(r, 1)?, g(r, 0)?))).collect()
}

fn lookup(map: &HashMap<String, i64>, entity: &'static str, key: &str) -> Result<i64, StoreError> {
    map.get(key).copied().ok_or_else(|| unknown(entity, key))
}

/// Walks one kind of change in order: inserts are batched, and the pending
/// batch is flushed before each update so the database sees the same order.
fn in_order<'c, T: PartialEq>(
    changes: &'c [Change<T>],
    mut insert: impl FnMut(&[&'c T]) -> Result<(), StoreError>,
    mut update: impl FnMut(i64, &'c T) -> Result<u64, StoreError>,
    entity: &'static str,
    counts: &mut crate::changeset::Counts,
) -> Result<(), StoreError> {
    let mut batch: Vec<&T> = Vec::new();
    for c in changes {
        match c {
            Change::Insert(r) => {
                batch.push(r);
                if batch.len() == CHUNK {
                    insert(&batch)?;
                    batch.clear();
                }
                counts.inserted += 1;
            }
            Change::Update { id, before, after } => {
                if !batch.is_empty() {
                    insert(&batch)?;
                    batch.clear();
                }
                if update(*id, after)? == 0 {
                    return Err(not_found(entity, *id));
                }
                if before != after {
                    counts.updated += 1;
                }
            }
        }
    }
    if !batch.is_empty() {
        insert(&batch)?;
    }
    Ok(())
}

/// The natural keys a change set inserts (of one kind).
fn inserted_keys<T>(changes: &[Change<T>], key: impl Fn(&T) -> &str) -> HashSet<&str> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Insert(r) => Some(key(r)),
            Change::Update { .. } => None,
        })
        .collect()
}

/// Fails with `CurrencyMismatch` for allocation `id`.
fn mismatch_of(tx: &mut Transaction<'_>, id: i64) -> Result<StoreError, StoreError> {
    let r = tx
        .query_one(
            "SELECT i.number, i.currency, a.payment_id IS NOT NULL, coalesce(p.external_id, n.number), coalesce(p.currency, n.currency)
             FROM allocations a
             JOIN invoices i ON i.id = a.invoice_id
             LEFT JOIN payments p ON p.id = a.payment_id
             LEFT JOIN credit_notes n ON n.id = a.credit_note_id
             WHERE a.id = $1",
            &[&id],
        )
        .map_err(map_err)?;
    currency_mismatch(g(&r, 0)?, g(&r, 1)?, g(&r, 2)?, g(&r, 3)?, g(&r, 4)?)
}

/// The allocation invariant for the rows this change set touched; the same
/// queries, in the same order, as `sqlite::check_allocations` (see there).
/// The caller has locked the rows other change sets could also allocate.
fn check_allocations(tx: &mut Transaction<'_>, org: i64, t: &Touched) -> Result<(), StoreError> {
    if !t.invoices.is_empty() {
        let row = tx
            .query_opt(
                "SELECT i.number, i.currency, i.total, SUM(a.amount)::bigint,
                        MIN(CASE WHEN i.currency <> coalesce(p.currency, n.currency) THEN a.id END)
                 FROM invoices i
                 JOIN allocations a ON a.org_id = i.org_id AND a.invoice_id = i.id
                 LEFT JOIN payments p ON p.id = a.payment_id
                 LEFT JOIN credit_notes n ON n.id = a.credit_note_id
                 WHERE i.org_id = $1 AND i.id = ANY($2::bigint[])
                 GROUP BY i.id
                 HAVING SUM(a.amount) > i.total
                     OR MIN(CASE WHEN i.currency <> coalesce(p.currency, n.currency) THEN a.id END) IS NOT NULL
                 ORDER BY i.id LIMIT 1",
                &[&org, &t.invoices],
            )
            .map_err(map_err)?;
        if let Some(r) = row {
            return Err(match g::<Option<i64>>(&r, 4)? {
                Some(id) => mismatch_of(tx, id)?,
                None => over_allocated("invoice", g(&r, 0)?, g(&r, 1)?, g(&r, 3)?, g(&r, 2)?)?,
            });
        }
    }
    for (ids, sql) in [
        (
            &t.payments_updated,
            "SELECT MIN(a.id) FROM payments p
             JOIN allocations a ON a.payment_id = p.id
             JOIN invoices i ON i.id = a.invoice_id
             WHERE p.org_id = $1 AND p.id = ANY($2::bigint[]) AND i.currency <> p.currency",
        ),
        (
            &t.credit_notes_updated,
            "SELECT MIN(a.id) FROM credit_notes n
             JOIN allocations a ON a.credit_note_id = n.id
             JOIN invoices i ON i.id = a.invoice_id
             WHERE n.org_id = $1 AND n.id = ANY($2::bigint[]) AND i.currency <> n.currency",
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        let r = tx.query_one(sql, &[&org, ids]).map_err(map_err)?;
        if let Some(id) = g::<Option<i64>>(&r, 0)? {
            return Err(mismatch_of(tx, id)?);
        }
    }
    for (entity, ids, sql) in [
        (
            "payment",
            &t.payments,
            "SELECT p.external_id, p.currency, p.amount, SUM(a.amount)::bigint
             FROM payments p
             JOIN allocations a ON a.payment_id = p.id
             WHERE p.org_id = $1 AND p.id = ANY($2::bigint[])
             GROUP BY p.id HAVING SUM(a.amount) > p.amount
             ORDER BY p.id LIMIT 1",
        ),
        (
            "credit note",
            &t.credit_notes,
            "SELECT n.number, n.currency, n.total, SUM(a.amount)::bigint
             FROM credit_notes n
             JOIN allocations a ON a.credit_note_id = n.id
             WHERE n.org_id = $1 AND n.id = ANY($2::bigint[])
             GROUP BY n.id HAVING SUM(a.amount) > n.total
             ORDER BY n.id LIMIT 1",
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        if let Some(r) = tx.query_opt(sql, &[&org, ids]).map_err(map_err)? {
            return Err(over_allocated(
                entity,
                g(&r, 0)?,
                g(&r, 1)?,
                g(&r, 3)?,
                g(&r, 2)?,
            )?);
        }
    }
    Ok(())
}

fn apply_in(
    tx: &mut Transaction<'_>,
    org: i64,
    cs: &ChangeSet,
    actor: &str,
    now: Timestamp,
) -> Result<AppliedCounts, StoreError> {
    let mut counts = AppliedCounts::default();
    let tx = std::cell::RefCell::new(tx);

    in_order(
        &cs.customers,
        |batch| {
            let ext: Vec<&str> = batch.iter().map(|r| r.external_id.as_str()).collect();
            let name: Vec<&str> = batch.iter().map(|r| r.name.as_str()).collect();
            let segment: Vec<Option<&str>> = batch.iter().map(|r| r.segment.as_deref()).collect();
            let tags: Vec<String> = batch.iter().map(|r| tags_to_json(&r.tags)).collect();
            let country: Vec<Option<&str>> = batch.iter().map(|r| r.country.as_deref()).collect();
            let tz: Vec<Option<&str>> = batch.iter().map(|r| r.time_zone.as_deref()).collect();
            let locale: Vec<Option<&str>> = batch.iter().map(|r| r.locale.as_deref()).collect();
            let currency: Vec<&str> = batch.iter().map(|r| r.currency.code()).collect();
            let terms: Vec<Option<i32>> = batch
                .iter()
                .map(|r| r.payment_terms_days.map(i32::from))
                .collect();
            let limit: Vec<Option<i64>> = batch.iter().map(|r| r.credit_limit).collect();
            let collector: Vec<Option<&str>> =
                batch.iter().map(|r| r.collector.as_deref()).collect();
            let autopay: Vec<bool> = batch.iter().map(|r| r.autopay).collect();
            tx.borrow_mut()
                .execute(
                    "INSERT INTO customers (org_id, external_id, name, segment, tags, country, time_zone, locale, currency,
                        payment_terms_days, credit_limit, collector, autopay)
                     SELECT $1, u.a, u.b, u.c, u.d, u.e, u.f, u.g, u.h, u.i, u.j, u.k, u.l
                     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                                 $10::int[], $11::bigint[], $12::text[], $13::bool[])
                          WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, i, j, k, l, n)
                     ORDER BY u.n",
                    &[&org, &ext, &name, &segment, &tags, &country, &tz, &locale, &currency, &terms, &limit, &collector, &autopay],
                )
                .map_err(map_err)?;
            Ok(())
        },
        |id, r| {
            tx.borrow_mut()
                .execute(
                    "UPDATE customers SET external_id = $1, name = $2, segment = $3, tags = $4, country = $5, time_zone = $6, locale = $7,
                        currency = $8, payment_terms_days = $9, credit_limit = $10, collector = $11, autopay = $12
                     WHERE id = $13 AND org_id = $14",
                    &[
                        &r.external_id,
                        &r.name,
                        &r.segment,
                        &tags_to_json(&r.tags),
                        &r.country,
                        &r.time_zone,
                        &r.locale,
                        &r.currency.code(),
                        &r.payment_terms_days.map(i32::from),
                        &r.credit_limit,
                        &r.collector,
                        &r.autopay,
                        &id,
                        &org,
                    ],
                )
                .map_err(map_err)
        },
        "customer",
        &mut counts.customers,
    )?;

    let needs_customers = !cs.contacts.is_empty()
        || !cs.invoices.is_empty()
        || !cs.credit_notes.is_empty()
        || !cs.payments.is_empty()
        || !cs.allocations.is_empty();
    let customers = if needs_customers {
        key_map(
            &mut tx.borrow_mut(),
            "SELECT id, external_id FROM customers WHERE org_id = $1",
            org,
        )?
    } else {
        HashMap::new()
    };
    let resolve = |key: &str| lookup(&customers, "customer", key);

    in_order(
        &cs.contacts,
        |batch| {
            let customer: Vec<i64> = batch
                .iter()
                .map(|r| resolve(&r.customer))
                .collect::<Result<_, _>>()?;
            let ext: Vec<&str> = batch.iter().map(|r| r.external_id.as_str()).collect();
            let name: Vec<&str> = batch.iter().map(|r| r.name.as_str()).collect();
            let email: Vec<Option<&str>> = batch.iter().map(|r| r.email.as_deref()).collect();
            let phone: Vec<Option<&str>> = batch.iter().map(|r| r.phone.as_deref()).collect();
            let role: Vec<Option<&str>> = batch.iter().map(|r| r.role.as_deref()).collect();
            let primary: Vec<bool> = batch.iter().map(|r| r.is_primary).collect();
            let e_out: Vec<bool> = batch.iter().map(|r| r.preferences.email_opt_out).collect();
            let s_con: Vec<bool> = batch.iter().map(|r| r.preferences.sms_consent).collect();
            let s_out: Vec<bool> = batch.iter().map(|r| r.preferences.sms_opt_out).collect();
            let c_out: Vec<bool> = batch.iter().map(|r| r.preferences.call_opt_out).collect();
            tx.borrow_mut()
                .execute(
                    "INSERT INTO contacts (org_id, customer_id, external_id, name, email, phone, role, is_primary,
                        email_opt_out, sms_consent, sms_opt_out, call_opt_out)
                     SELECT $1, u.a, u.b, u.c, u.d, u.e, u.f, u.g, u.h, u.i, u.j, u.k
                     FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[], $9::bool[],
                                 $10::bool[], $11::bool[], $12::bool[])
                          WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, i, j, k, n)
                     ORDER BY u.n",
                    &[&org, &customer, &ext, &name, &email, &phone, &role, &primary, &e_out, &s_con, &s_out, &c_out],
                )
                .map_err(map_err)?;
            Ok(())
        },
        |id, r| {
            let p = &r.preferences;
            tx.borrow_mut()
                .execute(
                    "UPDATE contacts SET customer_id = $1, external_id = $2, name = $3, email = $4, phone = $5, role = $6, is_primary = $7,
                        email_opt_out = $8, sms_consent = $9, sms_opt_out = $10, call_opt_out = $11 WHERE id = $12 AND org_id = $13",
                    &[
                        &resolve(&r.customer)?,
                        &r.external_id,
                        &r.name,
                        &r.email,
                        &r.phone,
                        &r.role,
                        &r.is_primary,
                        &p.email_opt_out,
                        &p.sms_consent,
                        &p.sms_opt_out,
                        &p.call_opt_out,
                        &id,
                        &org,
                    ],
                )
                .map_err(map_err)
        },
        "contact",
        &mut counts.contacts,
    )?;

    in_order(
        &cs.invoices,
        |batch| {
            let customer: Vec<i64> = batch
                .iter()
                .map(|r| resolve(&r.customer))
                .collect::<Result<_, _>>()?;
            let number: Vec<&str> = batch.iter().map(|r| r.number.as_str()).collect();
            let ext: Vec<Option<&str>> = batch.iter().map(|r| r.external_id.as_deref()).collect();
            let source: Vec<&str> = batch.iter().map(|r| r.source.as_str()).collect();
            let issue: Vec<String> = batch.iter().map(|r| date_text(r.issue_date)).collect();
            let due: Vec<String> = batch.iter().map(|r| date_text(r.due_date)).collect();
            let currency: Vec<&str> = batch.iter().map(|r| r.currency.code()).collect();
            let total: Vec<i64> = batch.iter().map(|r| r.total).collect();
            let tax: Vec<i64> = batch.iter().map(|r| r.tax).collect();
            let po: Vec<Option<&str>> = batch.iter().map(|r| r.po_number.as_deref()).collect();
            let status: Vec<&str> = batch.iter().map(|r| r.status.as_str()).collect();
            let status_date: Vec<Option<String>> =
                batch.iter().map(|r| r.status_date.map(date_text)).collect();
            let disputed: Vec<bool> = batch.iter().map(|r| r.disputed).collect();
            let paperless: Vec<Option<bool>> = batch.iter().map(|r| r.paperless).collect();
            tx.borrow_mut()
                .execute(
                    "INSERT INTO invoices (org_id, customer_id, number, external_id, source, issue_date, due_date, currency, total, tax,
                        po_number, status, status_date, disputed, paperless)
                     SELECT $1, u.a, u.b, u.c, u.d, u.e::date, u.f::date, u.g, u.h, u.i, u.j, u.k, u.l::date, u.m, u.o
                     FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[],
                                 $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bool[], $15::bool[])
                          WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, i, j, k, l, m, o, n)
                     ORDER BY u.n",
                    &[
                        &org,
                        &customer,
                        &number,
                        &ext,
                        &source,
                        &issue,
                        &due,
                        &currency,
                        &total,
                        &tax,
                        &po,
                        &status,
                        &status_date,
                        &disputed,
                        &paperless,
                    ],
                )
                .map_err(map_err)?;
            Ok(())
        },
        |id, r| {
            tx.borrow_mut()
                .execute(
                    "UPDATE invoices SET customer_id = $1, number = $2, external_id = $3, source = $4, issue_date = $5::text::date,
                        due_date = $6::text::date, currency = $7, total = $8, tax = $9, po_number = $10, status = $11,
                        status_date = $12::text::date, disputed = $13, paperless = $14 WHERE id = $15 AND org_id = $16",
                    &[
                        &resolve(&r.customer)?,
                        &r.number,
                        &r.external_id,
                        &r.source,
                        &date_text(r.issue_date),
                        &date_text(r.due_date),
                        &r.currency.code(),
                        &r.total,
                        &r.tax,
                        &r.po_number,
                        &r.status.as_str(),
                        &r.status_date.map(date_text),
                        &r.disputed,
                        &r.paperless,
                        &id,
                        &org,
                    ],
                )
                .map_err(map_err)
        },
        "invoice",
        &mut counts.invoices,
    )?;

    in_order(
        &cs.credit_notes,
        |batch| {
            let customer: Vec<i64> = batch
                .iter()
                .map(|r| resolve(&r.customer))
                .collect::<Result<_, _>>()?;
            let number: Vec<&str> = batch.iter().map(|r| r.number.as_str()).collect();
            let ext: Vec<Option<&str>> = batch.iter().map(|r| r.external_id.as_deref()).collect();
            let source: Vec<&str> = batch.iter().map(|r| r.source.as_str()).collect();
            let issue: Vec<String> = batch.iter().map(|r| date_text(r.issue_date)).collect();
            let currency: Vec<&str> = batch.iter().map(|r| r.currency.code()).collect();
            let total: Vec<i64> = batch.iter().map(|r| r.total).collect();
            let reason: Vec<Option<&str>> = batch.iter().map(|r| r.reason.as_deref()).collect();
            tx.borrow_mut()
                .execute(
                    "INSERT INTO credit_notes (org_id, customer_id, number, external_id, source, issue_date, currency, total, reason)
                     SELECT $1, u.a, u.b, u.c, u.d, u.e::date, u.f, u.g, u.h
                     FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])
                          WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, n)
                     ORDER BY u.n",
                    &[&org, &customer, &number, &ext, &source, &issue, &currency, &total, &reason],
                )
                .map_err(map_err)?;
            Ok(())
        },
        |id, r| {
            tx.borrow_mut()
                .execute(
                    "UPDATE credit_notes SET customer_id = $1, number = $2, external_id = $3, source = $4, issue_date = $5::text::date,
                        currency = $6, total = $7, reason = $8 WHERE id = $9 AND org_id = $10",
                    &[
                        &resolve(&r.customer)?,
                        &r.number,
                        &r.external_id,
                        &r.source,
                        &date_text(r.issue_date),
                        &r.currency.code(),
                        &r.total,
                        &r.reason,
                        &id,
                        &org,
                    ],
                )
                .map_err(map_err)
        },
        "credit note",
        &mut counts.credit_notes,
    )?;

    in_order(
        &cs.payments,
        |batch| {
            let customer: Vec<i64> = batch
                .iter()
                .map(|r| resolve(&r.customer))
                .collect::<Result<_, _>>()?;
            let ext: Vec<&str> = batch.iter().map(|r| r.external_id.as_str()).collect();
            let source: Vec<&str> = batch.iter().map(|r| r.source.as_str()).collect();
            let received: Vec<String> = batch.iter().map(|r| date_text(r.received_on)).collect();
            let currency: Vec<&str> = batch.iter().map(|r| r.currency.code()).collect();
            let amount: Vec<i64> = batch.iter().map(|r| r.amount).collect();
            let method: Vec<Option<&str>> = batch.iter().map(|r| r.method.as_deref()).collect();
            let reference: Vec<Option<&str>> =
                batch.iter().map(|r| r.reference.as_deref()).collect();
            let payer: Vec<Option<&str>> = batch.iter().map(|r| r.payer_name.as_deref()).collect();
            tx.borrow_mut()
                .execute(
                    "INSERT INTO payments (org_id, customer_id, external_id, source, received_on, currency, amount, method, reference, payer_name)
                     SELECT $1, u.a, u.b, u.c, u.d::date, u.e, u.f, u.g, u.h, u.i
                     FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[],
                                 $10::text[])
                          WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, i, n)
                     ORDER BY u.n",
                    &[&org, &customer, &ext, &source, &received, &currency, &amount, &method, &reference, &payer],
                )
                .map_err(map_err)?;
            Ok(())
        },
        |id, r| {
            tx.borrow_mut()
                .execute(
                    "UPDATE payments SET customer_id = $1, external_id = $2, source = $3, received_on = $4::text::date, currency = $5,
                        amount = $6, method = $7, reference = $8, payer_name = $9 WHERE id = $10 AND org_id = $11",
                    &[
                        &resolve(&r.customer)?,
                        &r.external_id,
                        &r.source,
                        &date_text(r.received_on),
                        &r.currency.code(),
                        &r.amount,
                        &r.method,
                        &r.reference,
                        &r.payer_name,
                        &id,
                        &org,
                    ],
                )
                .map_err(map_err)
        },
        "payment",
        &mut counts.payments,
    )?;

    let tx = tx.into_inner();
    let mut touched = Touched::updated_in(cs);
    // Rows that existed before this change set and that it allocates from or
    // to; locked before the check below (rows it inserted are not visible to
    // anyone else, and rows it updated are locked already).
    let mut lock: [Vec<i64>; 3] = Default::default();

    // Invoice number → (id, customer id, currency), read after this change
    // set's own inserts so allocations can refer to invoices created with them.
    let mut invoices: HashMap<String, (i64, i64, Currency)> = HashMap::new();
    let mut customer_keys: HashMap<i64, &str> = HashMap::new();
    if !cs.allocations.is_empty() {
        let mut cur = CurrencyCache::default();
        for r in tx
            .query(
                "SELECT id, number, customer_id, currency FROM invoices WHERE org_id = $1",
                &[&org],
            )
            .map_err(map_err)?
        {
            invoices.insert(g(&r, 1)?, (g(&r, 0)?, g(&r, 2)?, cur.get(g(&r, 3)?)?));
        }
        customer_keys = customers.iter().map(|(k, v)| (*v, k.as_str())).collect();
        let payments = key_map(
            tx,
            "SELECT id, external_id FROM payments WHERE org_id = $1",
            org,
        )?;
        let notes = key_map(
            tx,
            "SELECT id, number FROM credit_notes WHERE org_id = $1",
            org,
        )?;
        let new_invoices = inserted_keys(&cs.invoices, |r| r.number.as_str());
        let new_payments = inserted_keys(&cs.payments, |r| r.external_id.as_str());
        let new_notes = inserted_keys(&cs.credit_notes, |r| r.number.as_str());
        for batch in cs.allocations.chunks(CHUNK) {
            let mut invoice = Vec::with_capacity(batch.len());
            let mut payment = Vec::with_capacity(batch.len());
            let mut note = Vec::with_capacity(batch.len());
            for a in batch {
                let id = invoices
                    .get(&a.invoice)
                    .ok_or_else(|| unknown("invoice", &a.invoice))?
                    .0;
                invoice.push(id);
                touched.invoices.push(id);
                if !new_invoices.contains(a.invoice.as_str()) {
                    lock[0].push(id);
                }
                match &a.source {
                    AllocationSource::Payment(k) => {
                        let id = lookup(&payments, "payment", k)?;
                        payment.push(Some(id));
                        note.push(None);
                        touched.payments.push(id);
                        if !new_payments.contains(k.as_str()) {
                            lock[1].push(id);
                        }
                    }
                    AllocationSource::CreditNote(k) => {
                        let id = lookup(&notes, "credit note", k)?;
                        payment.push(None);
                        note.push(Some(id));
                        touched.credit_notes.push(id);
                        if !new_notes.contains(k.as_str()) {
                            lock[2].push(id);
                        }
                    }
                }
            }
            let amount: Vec<i64> = batch.iter().map(|a| a.amount).collect();
            let applied: Vec<String> = batch.iter().map(|a| date_text(a.applied_on)).collect();
            tx.execute(
                "INSERT INTO allocations (org_id, invoice_id, payment_id, credit_note_id, amount, applied_on)
                 SELECT $1, u.a, u.b, u.c, u.d, u.e::date
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[]) WITH ORDINALITY AS u(a, b, c, d, e, n)
                 ORDER BY u.n",
                &[&org, &invoice, &payment, &note, &amount, &applied],
            )
            .map_err(map_err)?;
            counts.allocations.inserted += batch.len() as u64;
        }
    }

    // Lock in one global order (invoices, payments, credit notes; each by id)
    // so two change sets locking overlapping rows wait rather than deadlock.
    // NO KEY UPDATE does not conflict with the KEY SHARE locks that inserting
    // allocations (foreign keys) takes, but does with another change set
    // taking this lock: that one waits until this one commits, and its check
    // then (READ COMMITTED: a new snapshot per statement) counts what this
    // one allocated.
    for (ids, sql) in lock.iter_mut().zip([
        "SELECT 1 FROM invoices WHERE org_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR NO KEY UPDATE",
        "SELECT 1 FROM payments WHERE org_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR NO KEY UPDATE",
        "SELECT 1 FROM credit_notes WHERE org_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR NO KEY UPDATE",
    ]) {
        if ids.is_empty() {
            continue;
        }
        ids.sort_unstable();
        ids.dedup();
        tx.execute(sql, &[&org, &*ids]).map_err(map_err)?;
    }
    touched.finish();
    check_allocations(tx, org, &touched)?;

    if !cs.fx_rates.is_empty() {
        let mut existing: HashSet<(String, String, String)> = HashSet::new();
        for r in tx
            .query("SELECT from_currency, to_currency, to_char(valid_on, 'YYYY-MM-DD') FROM fx_rates WHERE org_id = $1", &[&org])
            .map_err(map_err)?
        {
            existing.insert((g(&r, 0)?, g(&r, 1)?, g(&r, 2)?));
        }
        for r in &cs.fx_rates {
            let key = (
                r.from.code().to_string(),
                r.to.code().to_string(),
                date_text(r.valid_on),
            );
            tx.execute(
                "INSERT INTO fx_rates (org_id, from_currency, to_currency, valid_on, rate_e12) VALUES ($1, $2, $3, $4::text::date, $5)
                 ON CONFLICT (org_id, from_currency, to_currency, valid_on) DO UPDATE SET rate_e12 = excluded.rate_e12",
                &[&org, &key.0, &key.1, &key.2, &rate_to_i64(r.rate)?],
            )
            .map_err(map_err)?;
            if existing.insert(key) {
                counts.fx_rates.inserted += 1;
            } else {
                counts.fx_rates.updated += 1;
            }
        }
    }

    // Events stream out in chunks so a huge change set never holds all of them.
    let recorded_at = ts_to_sql(now)?;
    let mut pending: Vec<crate::events::NewEvent> = Vec::with_capacity(CHUNK);
    let mut flush = |pending: &mut Vec<crate::events::NewEvent>| -> Result<(), StoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let kind: Vec<&str> = pending.iter().map(|e| e.kind).collect();
        let entity_type: Vec<&str> = pending.iter().map(|e| e.entity_type).collect();
        let entity_key: Vec<&str> = pending.iter().map(|e| e.entity_key.as_str()).collect();
        let customer: Vec<Option<&str>> = pending.iter().map(|e| e.customer.as_deref()).collect();
        let summary: Vec<&str> = pending.iter().map(|e| e.summary.as_str()).collect();
        let data: Vec<&serde_json::Value> = pending.iter().map(|e| &e.data).collect();
        tx.execute(
            "INSERT INTO events (org_id, recorded_at, actor, kind, entity_type, entity_key, customer_key, summary, data)
             SELECT $1, $2, $3, u.a, u.b, u.c, u.d, u.e, u.f
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[]) WITH ORDINALITY AS u(a, b, c, d, e, f, n)
             ORDER BY u.n",
            &[&org, &recorded_at, &actor, &kind, &entity_type, &entity_key, &customer, &summary, &data],
        )
        .map_err(map_err)?;
        pending.clear();
        Ok(())
    };
    for_each_event(cs, |ev, alloc| {
        if let Some(a) = alloc
            && let Some((_, customer_id, currency)) = invoices.get(&a.invoice)
        {
            let customer = customer_keys.get(customer_id).copied().unwrap_or_default();
            finish_allocation_event(ev, a, customer, *currency);
        }
        pending.push(ev.clone());
        counts.events += 1;
        if pending.len() == CHUNK {
            flush(&mut pending)?;
        }
        Ok::<(), StoreError>(())
    })?;
    flush(&mut pending)?;
    Ok(counts)
}
