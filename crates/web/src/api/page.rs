//! Cursor pagination: `limit` (default 50, at most 500) and an opaque
//! `cursor` naming the last item of the previous page.
//!
//! A cursor is base64url (no padding) of `v1|<list>|<sort key>`, where the
//! sort key is `<due date>|<number>` for invoices and the record id for every
//! other list. The next page starts strictly after that key, so records
//! created or removed between two requests never shift a page: nothing is
//! listed twice or skipped.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::civil::Date;
use serde::Serialize;

use super::extract::ApiError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// `{"data": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The `limit` parameter.
pub fn limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(
            "limit",
            Some(raw),
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Which list a cursor belongs to (a cursor from another list is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Customers,
    Contacts,
    Invoices,
    CreditNotes,
    Payments,
    Allocations,
    Holds,
    Disputes,
    Promises,
    Tasks,
    Messages,
    Notes,
}

impl List {
    fn tag(self) -> &'static str {
        match self {
            List::Customers => "customers",
            List::Contacts => "contacts",
            List::Invoices => "invoices",
            List::CreditNotes => "credit-notes",
            List::Payments => "payments",
            List::Allocations => "allocations",
            List::Holds => "holds",
            List::Disputes => "disputes",
            List::Promises => "promises",
            List::Tasks => "tasks",
            List::Messages => "messages",
            List::Notes => "notes",
        }
    }
}

pub fn encode(list: List, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1|{}|{key}", list.tag()))
}

/// The sort key inside a cursor of `list`.
pub fn decode(list: List, raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid(
            "cursor",
            Some(raw),
            "not a cursor of this list (pass next_cursor from the previous page unchanged)",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text.strip_prefix("v1|").ok_or_else(bad)?;
    let (tag, key) = rest.split_once('|').ok_or_else(bad)?;
    if tag != list.tag() {
        return Err(bad());
    }
    Ok(key.to_string())
}

/// A cursor of an id-sorted list.
pub fn id_cursor(list: List, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|r| {
        decode(list, r)?
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("cursor", Some(r), "not a cursor of this list"))
    })
    .transpose()
}

/// The (due date, number) inside an invoice cursor.
pub fn invoice_cursor(raw: Option<&str>) -> Result<Option<(Date, String)>, ApiError> {
    raw.map(|r| {
        let key = decode(List::Invoices, r)?;
        let (date, number) = key
            .split_once('|')
            .ok_or_else(|| ApiError::invalid("cursor", Some(r), "not a cursor of this list"))?;
        let date: Date = date
            .parse()
            .map_err(|_| ApiError::invalid("cursor", Some(r), "not a cursor of this list"))?;
        Ok((date, number.to_string()))
    })
    .transpose()
}

pub fn invoice_key(due: Date, number: &str) -> String {
    format!("{due}|{number}")
}

/// Pages a list sorted by id ascending: the items after `after`, at most
/// `limit` of them, and the next cursor when more follow.
pub fn by_id<T, U>(
    list: List,
    items: impl IntoIterator<Item = T>,
    id: impl Fn(&T) -> i64,
    after: Option<i64>,
    limit: usize,
    render: impl Fn(T) -> U,
) -> Page<U> {
    let mut out = Vec::with_capacity(limit.min(64));
    let mut last = None;
    let mut more = false;
    for item in items {
        if after.is_some_and(|a| id(&item) <= a) {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        last = Some(id(&item));
        out.push(render(item));
    }
    Page {
        data: out,
        next_cursor: if more {
            last.map(|l| encode(list, &l.to_string()))
        } else {
            None
        },
    }
}

/// Like [`by_id`] for a list sorted by id descending (newest first): the
/// items before `before`.
pub fn by_id_desc<T, U>(
    list: List,
    items: impl IntoIterator<Item = T>,
    id: impl Fn(&T) -> i64,
    before: Option<i64>,
    limit: usize,
    render: impl Fn(T) -> U,
) -> Page<U> {
    let mut out = Vec::with_capacity(limit.min(64));
    let mut last = None;
    let mut more = false;
    for item in items {
        if before.is_some_and(|b| id(&item) >= b) {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        last = Some(id(&item));
        out.push(render(item));
    }
    Page {
        data: out,
        next_cursor: if more {
            last.map(|l| encode(list, &l.to_string()))
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_list_specific() {
        let c = encode(
            List::Invoices,
            &invoice_key(jiff::civil::date(2026, 11, 1), "INV|7"),
        );
        assert!(!c.contains('='));
        let (d, n) = invoice_cursor(Some(&c)).unwrap().unwrap();
        assert_eq!(
            (d.to_string(), n.as_str()),
            ("2026-11-01".to_string(), "INV|7")
        );
        assert!(id_cursor(List::Holds, Some(&c)).is_err());
        assert!(id_cursor(List::Holds, Some("!!")).is_err());
        let h = encode(List::Holds, "42");
        assert_eq!(id_cursor(List::Holds, Some(&h)).unwrap(), Some(42));
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some("500")).unwrap(), 500);
        assert!(
            limit(Some("0")).is_err() && limit(Some("501")).is_err() && limit(Some("x")).is_err()
        );
    }

    #[test]
    fn pages_by_id() {
        let p = by_id(List::Holds, 1..=5i64, |i| *i, None, 2, |i| i);
        assert_eq!(p.data, vec![1, 2]);
        let after = id_cursor(List::Holds, p.next_cursor.as_deref()).unwrap();
        let p = by_id(List::Holds, 1..=5i64, |i| *i, after, 3, |i| i);
        assert_eq!((p.data, p.next_cursor), (vec![3, 4, 5], None));
        let p = by_id_desc(List::Holds, (1..=5i64).rev(), |i| *i, Some(4), 2, |i| i);
        assert_eq!(p.data, vec![3, 2]);
        assert!(p.next_cursor.is_some());
    }
}
