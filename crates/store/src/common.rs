//! Helpers both backends share: value conversions and event finishing.

use std::collections::HashMap;
use std::fmt::Write as _;

use arflow_domain::fx::Rate;
use arflow_domain::model::{Allocation, AllocationSource};
use arflow_domain::money::Currency;
use jiff::Timestamp;
use jiff::civil::Date;

use crate::StoreError;
use crate::changeset::{Change, ChangeSet};
use crate::events::{Minor, NewEvent};

/// The migrations, in order. Each is applied once, in its own transaction.
pub(crate) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

pub(crate) const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/0002_allocation_sources.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/sqlite/0003_dunning.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/sqlite/0004_models.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/sqlite/0005_outbox_token.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/sqlite/0006_accounts.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/sqlite/0007_outbox_status_index.sql"),
    },
];

pub(crate) const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/postgres/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/postgres/0002_allocation_sources.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/postgres/0003_dunning.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/postgres/0004_models.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/postgres/0005_outbox_token.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/postgres/0006_accounts.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/postgres/0007_outbox_status_index.sql"),
    },
];

pub(crate) const DEFAULT_ORG_SLUG: &str = "default";
pub(crate) const DEFAULT_ORG_NAME: &str = "My Company";

pub(crate) fn corrupt(what: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        message: message.to_string(),
    }
}

/// PostgreSQL keeps microseconds; both backends truncate to them so a
/// timestamp reads back identically whichever store wrote it.
pub(crate) fn truncate_micros(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}

pub(crate) fn parse_timestamp(s: &str) -> Result<Timestamp, StoreError> {
    s.parse::<Timestamp>()
        .map_err(|e| corrupt("timestamp", format!("'{s}': {e}")))
}

/// Parses `YYYY-MM-DD` by hand: ledger reads parse millions of dates and
/// jiff's general-purpose parser (which accepts many formats) is several
/// times slower than this fixed-layout check. Anything else falls back to
/// jiff so unusual but valid dates (years outside 0..=9999) still read.
pub(crate) fn parse_date(s: &str) -> Result<Date, StoreError> {
    parse_date_bytes(s.as_bytes())
}

/// [`parse_date`] on the raw column bytes: the fast path only accepts ASCII
/// digits and dashes, so it needs no UTF-8 validation first (SQLite hands
/// text out as bytes; checking them would cost as much as parsing).
pub(crate) fn parse_date_bytes(b: &[u8]) -> Result<Date, StoreError> {
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let digit = |i: usize| b[i].wrapping_sub(b'0');
        let all_digits = [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| digit(i) < 10);
        if all_digits {
            let y = i16::from(digit(0)) * 1000
                + i16::from(digit(1)) * 100
                + i16::from(digit(2)) * 10
                + i16::from(digit(3));
            let m = (digit(5) * 10 + digit(6)) as i8;
            let d = (digit(8) * 10 + digit(9)) as i8;
            return Date::new(y, m, d)
                .map_err(|e| corrupt("date", format!("'{}': {e}", String::from_utf8_lossy(b))));
        }
    }
    let s = std::str::from_utf8(b).map_err(|e| corrupt("date", e))?;
    s.parse::<Date>()
        .map_err(|e| corrupt("date", format!("'{s}': {e}")))
}

pub(crate) fn parse_currency(s: &str) -> Result<Currency, StoreError> {
    Currency::parse(s).map_err(|e| corrupt("currency", e))
}

/// Currency codes repeat on every row; parsing each one allocates (it
/// upper-cases), so reads of many rows remember the codes already seen.
#[derive(Default)]
pub(crate) struct CurrencyCache {
    last: Option<([u8; 3], Currency)>,
    seen: HashMap<[u8; 3], Currency>,
}

impl CurrencyCache {
    pub fn get(&mut self, s: &str) -> Result<Currency, StoreError> {
        self.get_bytes(s.as_bytes())
    }

    /// [`CurrencyCache::get`] on raw column bytes; only a code not seen
    /// before is validated as text.
    pub fn get_bytes(&mut self, b: &[u8]) -> Result<Currency, StoreError> {
        let as_str = |b| std::str::from_utf8(b).map_err(|e| corrupt("currency", e));
        let Ok(key) = <[u8; 3]>::try_from(b) else {
            return parse_currency(as_str(b)?);
        };
        if let Some((k, c)) = self.last
            && k == key
        {
            return Ok(c);
        }
        let c = match self.seen.get(&key) {
            Some(c) => *c,
            None => {
                let c = parse_currency(as_str(b)?)?;
                self.seen.insert(key, c);
                c
            }
        };
        self.last = Some((key, c));
        Ok(c)
    }
}

/// Rates are stored as BIGINT scaled by 10^12, which holds rates up to about
/// 9.2 million; larger ones are refused rather than silently truncated.
pub(crate) fn rate_to_i64(r: Rate) -> Result<i64, StoreError> {
    i64::try_from(r.0).map_err(|_| StoreError::constraint("fx_rates_rate_range"))
}

pub(crate) fn rate_from_i64(v: i64) -> Result<Rate, StoreError> {
    if v <= 0 {
        return Err(corrupt("exchange rate", format!("{v} is not positive")));
    }
    Ok(Rate(i128::from(v)))
}

pub(crate) fn tags_to_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_string())
}

pub(crate) fn tags_from_json(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("customer tags", e))
}

pub(crate) fn payment_terms_from_i64(v: Option<i64>) -> Result<Option<u16>, StoreError> {
    v.map(|d| u16::try_from(d).map_err(|_| corrupt("payment terms", format!("{d} days"))))
        .transpose()
}

/// The store knows what `events_for` cannot: the invoice's customer and
/// currency, so allocation events join the customer timeline and read as money.
pub(crate) fn finish_allocation_event(
    ev: &mut NewEvent,
    a: &Allocation,
    customer: &str,
    currency: Currency,
) {
    let (kind, key) = match &a.source {
        AllocationSource::Payment(k) => ("payment", k),
        AllocationSource::CreditNote(k) => ("credit note", k),
    };
    ev.set_customer(Some(customer));
    ev.summary.clear();
    let _ = write!(
        ev.summary,
        "{} {} of {kind} {key} applied to invoice {} on {}",
        Minor(a.amount, currency),
        currency,
        a.invoice,
        a.applied_on
    );
}

/// The rows whose allocations [`crate::Store::apply`] checks before it
/// commits (allocations within totals, one currency per allocation): the
/// invoices, payments and credit notes the change set allocates or updates.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub invoices: Vec<i64>,
    pub payments: Vec<i64>,
    pub credit_notes: Vec<i64>,
    /// Updated payments and credit notes: their currency may have changed
    /// under allocations made earlier. (New allocations are checked from
    /// their invoice's side.)
    pub payments_updated: Vec<i64>,
    pub credit_notes_updated: Vec<i64>,
}

impl Touched {
    /// Starts with the ids the change set updates (every one exists by the
    /// time this is used: an unknown id fails the apply first).
    pub fn updated_in(cs: &ChangeSet) -> Touched {
        fn ids<T>(changes: &[Change<T>]) -> Vec<i64> {
            changes
                .iter()
                .filter_map(|c| match c {
                    Change::Update { id, .. } => Some(*id),
                    Change::Insert(_) => None,
                })
                .collect()
        }
        let payments_updated = ids(&cs.payments);
        let credit_notes_updated = ids(&cs.credit_notes);
        Touched {
            invoices: ids(&cs.invoices),
            payments: payments_updated.clone(),
            credit_notes: credit_notes_updated.clone(),
            payments_updated,
            credit_notes_updated,
        }
    }

    /// Sorted and without duplicates: each row is checked once, in id order,
    /// so both backends report the same first violation.
    pub fn finish(&mut self) {
        for v in [
            &mut self.invoices,
            &mut self.payments,
            &mut self.credit_notes,
            &mut self.payments_updated,
            &mut self.credit_notes_updated,
        ] {
            v.sort_unstable();
            v.dedup();
        }
    }
}

/// `StoreError::CurrencyMismatch` from the columns the backends read.
pub(crate) fn currency_mismatch(
    invoice: String,
    invoice_currency: &str,
    from_payment: bool,
    key: String,
    currency: &str,
) -> Result<StoreError, StoreError> {
    Ok(StoreError::CurrencyMismatch {
        invoice,
        invoice_currency: parse_currency(invoice_currency)?,
        entity: if from_payment {
            "payment"
        } else {
            "credit note"
        },
        key,
        currency: parse_currency(currency)?,
    })
}

pub(crate) fn over_allocated(
    entity: &'static str,
    key: String,
    currency: &str,
    allocated: i64,
    limit: i64,
) -> Result<StoreError, StoreError> {
    Ok(StoreError::OverAllocated {
        entity,
        key,
        currency: parse_currency(currency)?,
        allocated,
        limit,
    })
}

pub(crate) fn unknown(entity: &'static str, key: &str) -> StoreError {
    StoreError::UnknownReference {
        entity,
        key: key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn fast_date_parser_agrees_with_jiff() {
        assert_eq!(parse_date("2024-02-29").ok(), Some(date(2024, 2, 29)));
        assert_eq!(parse_date("0001-01-01").ok(), Some(date(1, 1, 1)));
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2023-13-01").is_err());
        assert!(parse_date("2023-1-01").is_err());
        assert!(parse_date("garbage!!!").is_err());
        assert!(parse_date("").is_err());
    }
}
