//! What every report shares: which invoices are in scope and how to convert them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use jiff::civil::Date;

use super::AnalyticsError;
use crate::ledger::{BaseConverter, Closure, CustomerFact, InvoiceFact, Ledger};
use crate::money::Currency;

/// The invoices a report looks at, and the conversion it uses (see the module docs).
pub(crate) struct Scope<'s> {
    pub ledger: &'s Ledger<'s>,
    conv: &'s BaseConverter<'s>,
    pub as_of: Date,
    pub segment: Option<&'s str>,
    /// Customer id → position in `facts.customers`.
    customer_pos: IdMap<usize>,
    /// Per customer position: whether it passes the segment filter.
    customer_ok: Vec<bool>,
}

impl<'s> Scope<'s> {
    pub fn new(
        ledger: &'s Ledger<'s>,
        conv: &'s BaseConverter<'s>,
        as_of: Date,
        segment: Option<&'s str>,
    ) -> Self {
        let customers = &ledger.facts.customers;
        let customer_pos = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        let customer_ok = customers
            .iter()
            .map(|c| segment.is_none_or(|s| c.segment.as_deref() == Some(s)))
            .collect();
        Scope {
            ledger,
            conv,
            as_of,
            segment,
            customer_pos,
            customer_ok,
        }
    }

    pub fn base(&self) -> Currency {
        self.conv.base
    }

    pub fn customers(&self) -> &'s [CustomerFact] {
        &self.ledger.facts.customers
    }

    /// Position of a customer in `facts.customers`.
    pub fn customer_pos(&self, customer_id: i64) -> Option<usize> {
        self.customer_pos.get(&customer_id).copied()
    }

    /// Whether the invoice is in scope; returns its customer's position (if known) when it is.
    /// Invoices of unknown customers are in scope only without a segment filter.
    /// Without a segment filter and unless `want_pos`, the position is not looked up (`None`).
    pub fn admit(&self, f: &InvoiceFact, want_pos: bool) -> Option<Option<usize>> {
        if f.issue_date > self.as_of {
            return None;
        }
        if matches!(f.closed, Some((d, Closure::Void)) if d <= self.as_of) {
            return None;
        }
        if !want_pos && self.segment.is_none() {
            return Some(None);
        }
        let pos = self.customer_pos(f.customer_id);
        let ok = match pos {
            Some(p) => self.customer_ok[p],
            None => self.segment.is_none(),
        };
        ok.then_some(pos)
    }

    /// In-scope invoices with their index (customer position not looked up without a segment filter).
    pub fn invoices(&self) -> impl Iterator<Item = (usize, &'s InvoiceFact)> + '_ {
        self.ledger
            .facts
            .invoices
            .iter()
            .enumerate()
            .filter_map(|(i, f)| self.admit(f, false).map(|_| (i, f)))
    }

    /// In-scope invoices with their index and customer position.
    pub fn invoices_with_customer(
        &self,
    ) -> impl Iterator<Item = (usize, &'s InvoiceFact, Option<usize>)> + '_ {
        self.ledger
            .facts
            .invoices
            .iter()
            .enumerate()
            .filter_map(|(i, f)| self.admit(f, true).map(|p| (i, f, p)))
    }

    /// Converts an amount in `currency` to the base currency at the as-of date.
    pub fn to_base(&self, minor: i64, currency: Currency) -> Result<i64, AnalyticsError> {
        if currency == self.conv.base || minor == 0 {
            return Ok(minor);
        }
        Ok(self.conv.to_base(minor, currency, self.as_of)?)
    }

    /// Open balance of in-scope invoice `i` at the end of `d` (`d <= as_of`), invoice currency.
    pub fn open_on(&self, i: usize, d: Date) -> i64 {
        self.ledger.open_on(i, d)
    }

    /// Open balance of in-scope invoice `i` (fact `f`) at the end of `d`, in base currency;
    /// `total_base` is `f.total` already converted (reused when nothing was paid).
    pub fn open_base_on(
        &self,
        i: usize,
        f: &InvoiceFact,
        total_base: i64,
        d: Date,
    ) -> Result<i64, AnalyticsError> {
        let open = self.open_on(i, d);
        if open == f.total {
            Ok(total_base)
        } else {
            self.to_base(open, f.currency)
        }
    }
}

/// Hasher for integer ids (multiplicative, as in rustc's FxHash): ids are not adversarial here.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type IdMap<V> = HashMap<i64, V, BuildHasherDefault<IdHasher>>;

/// Dense per-customer slots: slot = position in `facts.customers`, then one slot per
/// unknown customer id, in order of appearance.
pub(crate) struct Slots {
    known: usize,
    unknown: IdMap<usize>,
    unknown_ids: Vec<i64>,
}

impl Slots {
    pub fn new(known: usize) -> Slots {
        Slots {
            known,
            unknown: IdMap::default(),
            unknown_ids: Vec::new(),
        }
    }

    pub fn slot(&mut self, customer_id: i64, pos: Option<usize>) -> usize {
        match pos {
            Some(p) => p,
            None => {
                let next = self.known + self.unknown_ids.len();
                let ids = &mut self.unknown_ids;
                *self.unknown.entry(customer_id).or_insert_with(|| {
                    ids.push(customer_id);
                    next
                })
            }
        }
    }

    pub fn len(&self) -> usize {
        self.known + self.unknown_ids.len()
    }

    /// (customer id, position) of a slot.
    pub fn customer(&self, scope: &Scope<'_>, slot: usize) -> (i64, Option<usize>) {
        if slot < self.known {
            (scope.customers()[slot].id, Some(slot))
        } else {
            (self.unknown_ids[slot - self.known], None)
        }
    }
}

/// Per-customer accumulators, created on first use.
pub(crate) struct CustomerRows<T> {
    slots: Slots,
    rows: Vec<Option<T>>,
}

impl<T> CustomerRows<T> {
    pub fn new(customer_count: usize) -> Self {
        let mut rows = Vec::with_capacity(customer_count);
        rows.resize_with(customer_count, || None);
        CustomerRows {
            slots: Slots::new(customer_count),
            rows,
        }
    }

    pub fn get(
        &mut self,
        customer_id: i64,
        pos: Option<usize>,
        make: impl FnOnce() -> T,
    ) -> &mut T {
        let s = self.slots.slot(customer_id, pos);
        if s >= self.rows.len() {
            self.rows.resize_with(s + 1, || None);
        }
        self.rows[s].get_or_insert_with(make)
    }

    /// (customer id, position, accumulator) of every customer seen.
    pub fn into_rows(self, scope: &Scope<'_>) -> Vec<(i64, Option<usize>, T)> {
        let slots = self.slots;
        self.rows
            .into_iter()
            .enumerate()
            .filter_map(|(s, r)| {
                r.map(|r| {
                    let (id, pos) = slots.customer(scope, s);
                    (id, pos, r)
                })
            })
            .collect()
    }
}

/// Identity of a customer for report rows: (external id, name, segment); empty when unknown.
pub(crate) fn customer_identity(
    scope: &Scope<'_>,
    pos: Option<usize>,
) -> (String, String, Option<String>) {
    match pos.map(|p| &scope.customers()[p]) {
        Some(c) => (c.external_id.clone(), c.name.clone(), c.segment.clone()),
        None => (String::new(), String::new(), None),
    }
}
