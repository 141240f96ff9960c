//! Existing vs imported records → insert, update or nothing.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use arflow_domain::model::Stored;
use arflow_store::Change;

/// The hasher of the importer's maps: foldhash, several times faster than the default
/// SipHash on short keys such as invoice numbers, looked up several times per row.
pub type Hasher = foldhash::fast::RandomState;
/// A `HashMap` with the importer's hasher.
pub type FastMap<K, V> = HashMap<K, V, Hasher>;
/// A `HashSet` with the importer's hasher.
pub type FastSet<T> = HashSet<T, Hasher>;

/// Stored records by natural key, built once.
pub fn index<'a, T, K: Eq + Hash + ?Sized + 'a>(
    stored: &'a [Stored<T>],
    key: impl Fn(&'a T) -> &'a K,
) -> FastMap<&'a K, &'a Stored<T>> {
    stored.iter().map(|s| (key(&s.record), s)).collect()
}

/// None when the stored record already equals `new` (re-importing is a no-op).
pub fn change<T: PartialEq + Clone>(stored: Option<&Stored<T>>, new: T) -> Option<Change<T>> {
    match stored {
        None => Some(Change::Insert(new)),
        Some(s) if s.record == new => None,
        Some(s) => Some(Change::Update {
            id: s.id,
            before: s.record.clone(),
            after: new,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_is_nothing_changed_is_update() {
        let stored = vec![Stored {
            id: 7,
            record: ("a".to_string(), 1),
        }];
        let idx = index(&stored, |r| r.0.as_str());
        assert_eq!(change(idx.get("a").copied(), ("a".to_string(), 1)), None);
        assert_eq!(
            change(idx.get("a").copied(), ("a".to_string(), 2)),
            Some(Change::Update {
                id: 7,
                before: ("a".to_string(), 1),
                after: ("a".to_string(), 2)
            })
        );
        assert_eq!(
            change(idx.get("b").copied(), ("b".to_string(), 1)),
            Some(Change::Insert(("b".to_string(), 1)))
        );
    }
}
