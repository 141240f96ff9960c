//! Reading a whole file into a ChangeSet against what is stored. Pure: no store access.

use std::hash::BuildHasher;
use std::io::Read;

use arflow_domain::allocation::{AllocationOrder, allocate};
use arflow_domain::model::{
    Allocation, AllocationSource, Contact, CreditNote, Customer, Invoice, InvoiceStatus,
    Organization, Payment, Stored,
};
use arflow_domain::money::{Currency, DecimalStyle};
use arflow_store::{Change, ChangeSet};
use csv::ByteRecord;
use jiff::civil::Date;
use sha2::{Digest, Sha256};

use crate::allocate::{allocated, open_items};
use crate::diff::{FastMap, FastSet, Hasher, change, index};
use crate::error::{ImportError, RowError};
use crate::header::{Field, Layout, RecordKind, normalize, resolve, spec};
use crate::mapping::Mapping;
use crate::rows::{self, CREDIT_TYPES, INVOICE_TYPES, PAYMENT_TYPES, RowCtx, RowView, Settlement};
use crate::values::DateFormat;

/// What is stored already, read once before planning.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    pub customers: Vec<Stored<Customer>>,
    pub contacts: Vec<Stored<Contact>>,
    pub invoices: Vec<Stored<Invoice>>,
    pub credit_notes: Vec<Stored<CreditNote>>,
    pub payments: Vec<Stored<Payment>>,
    pub allocations: Vec<Stored<Allocation>>,
}

/// Options that shape planning.
#[derive(Debug, Clone)]
pub struct PlanOptions<'a> {
    pub kind: RecordKind,
    pub mapping: Option<&'a Mapping>,
    pub allocation_order: AllocationOrder,
    /// The as-of date: default status dates and dates of payments inferred from balances.
    pub today: Date,
}

/// The outcome of planning: changes for the valid rows, and the rejected rows.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: ChangeSet,
    pub layout: Option<Layout>,
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub errors: Vec<RowError>,
    pub headers: ByteRecord,
    /// Rejected records with their error text (for the rejects file).
    pub rejected: Vec<(ByteRecord, String)>,
    pub ignored_columns: Vec<String>,
    pub customers_created: u64,
    pub payments_created: u64,
    pub allocations_created: u64,
}

/// Records planned per line, so a row rejected late (allocation) can still be dropped.
struct Lined<T> {
    line: u64,
    change: Option<Change<T>>,
}

/// The invoice numbers seen in a file, to merge or reject repeats.
///
/// Numbers are not copied: a slot points to the record of a first occurrence, an index into
/// `plan.changes.invoices` (the records planned so far), or with [`UNCHANGED`] set an index
/// into `unchanged` (first occurrences equal to their stored record).
///
/// While the numbers arrive in ascending order, as in files sorted by number, a new number
/// cannot repeat an earlier one and nothing is looked up: a hash table over a million numbers
/// costs a cache miss or two per row. The first number out of order builds the table.
struct SeenInvoices<'a> {
    hasher: Hasher,
    table: Option<hashbrown::HashTable<SeenInvoice>>,
    /// While ascending: the slot of the greatest (last) number.
    last: Option<usize>,
    /// Line of each planned invoice.
    lines: Vec<u64>,
    unchanged: Vec<(u64, &'a Stored<Invoice>)>,
}

/// A table entry (16 bytes: the table has one per invoice).
struct SeenInvoice {
    hash: u64,
    slot: usize,
}

/// Marks a slot of `SeenInvoices::unchanged`.
const UNCHANGED: usize = 1 << (usize::BITS - 1);

impl<'a> SeenInvoices<'a> {
    fn new() -> Self {
        SeenInvoices {
            hasher: Hasher::default(),
            table: None,
            last: None,
            lines: Vec::new(),
            unchanged: Vec::new(),
        }
    }

    /// (line, record) of the first occurrence in `slot`.
    fn first<'p>(&'p self, planned: &'p [Change<Invoice>], slot: usize) -> (u64, &'p Invoice) {
        match slot & UNCHANGED {
            0 => (self.lines[slot], planned[slot].record()),
            _ => {
                let (line, s) = self.unchanged[slot & !UNCHANGED];
                (line, &s.record)
            }
        }
    }

    /// (line, record) of the first occurrence of `number`, if it was seen.
    fn find<'p>(
        &'p mut self,
        planned: &'p [Change<Invoice>],
        number: &str,
    ) -> Option<(u64, &'p Invoice)> {
        if self.table.is_none() {
            let last = self.last?;
            if self.first(planned, last).1.number.as_str() < number {
                return None;
            }
            self.build_table(planned);
        }
        let this = &*self;
        let table = this.table.as_ref()?;
        let hash = this.hasher.hash_one(number);
        let e = table.find(hash, |e| {
            e.hash == hash && this.first(planned, e.slot).1.number == number
        })?;
        Some(this.first(planned, e.slot))
    }

    fn build_table(&mut self, planned: &[Change<Invoice>]) {
        let slots = (0..planned.len()).chain((0..self.unchanged.len()).map(|j| j | UNCHANGED));
        let mut table = hashbrown::HashTable::with_capacity(slots.size_hint().0);
        for slot in slots {
            let hash = self
                .hasher
                .hash_one(self.first(planned, slot).1.number.as_str());
            table.insert_unique(hash, SeenInvoice { hash, slot }, |e| e.hash);
        }
        self.table = Some(table);
    }

    /// Records a first occurrence (after `find` said it is one).
    fn insert(&mut self, planned: &[Change<Invoice>], slot: usize) {
        if self.table.is_none() {
            self.last = Some(slot);
            return;
        }
        let hash = self
            .hasher
            .hash_one(self.first(planned, slot).1.number.as_str());
        if let Some(t) = &mut self.table {
            t.insert_unique(hash, SeenInvoice { hash, slot }, |e| e.hash);
        }
    }
}

/// How many bytes are read between two progress calls.
const PROGRESS_EVERY: u64 = 64 * 1024;

fn pay_from_invoice(id: String, inv: &Invoice, amount: i64, on: Date) -> Payment {
    Payment {
        external_id: id,
        customer: inv.customer.clone(),
        source: inv.source.clone(),
        received_on: on,
        currency: inv.currency,
        amount,
        method: None,
        reference: None,
        payer_name: None,
    }
}

/// Deterministic key of a payment without id: a hash of its normalized fields.
pub fn payment_hash(p: &Payment) -> String {
    let mut h = Sha256::new();
    for part in [
        p.customer.as_str(),
        &p.received_on.to_string(),
        &p.amount.to_string(),
        p.currency.code(),
        p.reference.as_deref().unwrap_or(""),
        p.method.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    let d = h.finalize();
    let hex: String = d.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("row:{hex}")
}

/// Reads CSV from `input` and plans the import. `progress(bytes_read)` is called now and then.
pub fn plan<R: Read>(
    input: R,
    file: &str,
    existing: &Existing,
    org: &Organization,
    opts: &PlanOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Plan, ImportError> {
    let default_mapping = Mapping::default();
    let mapping = opts.mapping.unwrap_or(&default_mapping);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(input);
    let mut rec = ByteRecord::new();
    let csv_err = |e: csv::Error| ImportError::Csv {
        file: file.to_string(),
        line: e.position().map(|p| p.line()).unwrap_or(0),
        message: e.to_string(),
    };
    let header_err = |message: String, found: Vec<String>| ImportError::Header {
        file: file.to_string(),
        message,
        expected: spec(opts.kind)
            .iter()
            .map(|(f, req, _)| {
                if *req {
                    format!("{}*", f.name())
                } else {
                    f.name().to_string()
                }
            })
            .collect(),
        found,
    };
    // The header: the first non-blank record.
    let headers_raw = loop {
        if !rdr.read_byte_record(&mut rec).map_err(csv_err)? {
            return Err(header_err(
                "the file is empty (no header row)".into(),
                vec![],
            ));
        }
        if !rec.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            break rec.clone();
        }
    };
    let mut headers = Vec::with_capacity(headers_raw.len());
    for (i, h) in headers_raw.iter().enumerate() {
        match std::str::from_utf8(h) {
            Ok(s) => headers.push(s.trim_start_matches('\u{feff}').trim().to_string()),
            Err(_) => {
                return Err(header_err(
                    format!(
                        "header column {} is not valid UTF-8 (save the file as UTF-8)",
                        i + 1
                    ),
                    headers,
                ));
            }
        }
    }
    let cols = resolve(opts.kind, headers.clone(), &mapping.columns).map_err(|missing| {
        let names: Vec<&str> = missing.iter().map(|f| f.name()).collect();
        header_err(
            format!("missing required column(s) {}", names.join(", ")),
            headers.clone(),
        )
    })?;
    // Mapping column names must exist: a typo would otherwise silently drop data.
    for (f, h) in &mapping.columns {
        if !headers.iter().any(|x| normalize(x) == normalize(h)) {
            return Err(header_err(
                format!(
                    "the mapping names column '{h}' for {} but the file has no such column",
                    f.name()
                ),
                headers.clone(),
            ));
        }
    }
    let date_formats: Vec<DateFormat> = if !mapping.date_formats.is_empty() {
        mapping.date_formats.clone()
    } else {
        let pats: &[&str] = match cols.layout {
            Layout::QuickBooks => &["%Y-%m-%d", "%m/%d/%Y"],
            Layout::Xero => &["%Y-%m-%d", "%d/%m/%Y", "%d %b %Y"],
            _ => &["%Y-%m-%d"],
        };
        pats.iter()
            .filter_map(|p| DateFormat::parse(p).ok())
            .collect()
    };
    let source = mapping.source.clone().unwrap_or_else(|| match cols.layout {
        Layout::QuickBooks => "quickbooks".into(),
        Layout::Xero => "xero".into(),
        _ => "csv".into(),
    });
    let ctx = RowCtx {
        cols: &cols,
        mapping,
        date_formats: &date_formats,
        decimal: if opts.mapping.is_some() {
            mapping.decimal
        } else {
            DecimalStyle::POINT
        },
        source: &source,
        today: opts.today,
    };
    let fallback = mapping.currency.unwrap_or(org.base_currency);

    let mut st = State::new(existing);
    let mut plan = Plan {
        headers: headers_raw,
        layout: Some(cols.layout),
        ignored_columns: cols.ignored.clone(),
        ..Plan::default()
    };
    // Raw records of rows that failed, kept for the rejects file.
    let mut raw_by_line: FastMap<u64, ByteRecord> = FastMap::default();
    let mut next_progress = PROGRESS_EVERY;
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // A CSV syntax error (e.g. invalid UTF-8 is not one; an unterminated quote is not either): stop with its location.
                return Err(csv_err(e));
            }
        }
        let pos = rdr.position().byte();
        if pos >= next_progress {
            progress(pos);
            next_progress = pos + PROGRESS_EVERY;
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let mut row = RowView::new(&ctx, &rec, line);
        if row.is_blank() {
            continue;
        }
        plan.rows += 1;
        let ok = match opts.kind {
            RecordKind::Customers => st.customer_row(&mut row, fallback, &mut plan),
            RecordKind::Contacts => st.contact_row(&mut row, &mut plan),
            RecordKind::Invoices => {
                st.invoice_row(&mut row, mapping.create_customers, fallback, &mut plan)
            }
            RecordKind::CreditNotes => st.credit_row(&mut row, fallback, &mut plan),
            RecordKind::Payments => st.payment_row(&mut row, fallback, &mut plan),
        };
        if !ok || !row.errors.is_empty() {
            raw_by_line.insert(line, rec.clone());
            plan.errors.append(&mut row.errors);
        }
    }
    progress(rdr.position().byte());
    st.allocate(opts, &mut plan);
    // Drop everything planned for rejected lines; the rest goes into the change set.
    let bad: FastSet<u64> = plan.errors.iter().map(|e| e.line).collect();
    st.finish(&bad, &mut plan);
    let mut lines: Vec<u64> = bad.into_iter().collect();
    lines.sort_unstable();
    for l in lines {
        let msg: Vec<String> = plan
            .errors
            .iter()
            .filter(|e| e.line == l)
            .map(|e| e.to_string())
            .collect();
        if let Some(r) = raw_by_line.remove(&l) {
            plan.rejected.push((r, msg.join("; ")));
        }
    }
    Ok(plan)
}

struct State<'a> {
    ex: &'a Existing,
    customers: FastMap<&'a str, &'a Stored<Customer>>,
    contacts: FastMap<&'a str, &'a Stored<Contact>>,
    invoices: FastMap<&'a str, &'a Stored<Invoice>>,
    credits: FastMap<&'a str, &'a Stored<CreditNote>>,
    payments: FastMap<&'a str, &'a Stored<Payment>>,
    allocated: FastMap<String, i64>,
    /// Keys seen in this file → (first line, record) to find duplicates.
    seen: FastMap<String, u64>,
    /// Invoice numbers seen in this file: duplicates are compared without copying records.
    seen_invoices: SeenInvoices<'a>,
    new_customers: FastMap<String, (u64, Customer)>,
    c_customers: Vec<Lined<Customer>>,
    c_contacts: Vec<Lined<Contact>>,
    c_credits: Vec<(Lined<CreditNote>, Option<String>)>,
    c_payments: Vec<(Lined<Payment>, Vec<String>)>,
    /// Payments and allocations derived from invoice rows.
    derived: Vec<(u64, Option<Payment>, Allocation)>,
    hash_counts: FastMap<String, u32>,
}

impl<'a> State<'a> {
    fn new(ex: &'a Existing) -> Self {
        State {
            ex,
            customers: index(&ex.customers, |c| c.external_id.as_str()),
            contacts: index(&ex.contacts, |c| c.external_id.as_str()),
            invoices: index(&ex.invoices, |c| c.number.as_str()),
            credits: index(&ex.credit_notes, |c| c.number.as_str()),
            payments: index(&ex.payments, |c| c.external_id.as_str()),
            allocated: allocated(&ex.allocations),
            seen: FastMap::default(),
            seen_invoices: SeenInvoices::new(),
            new_customers: FastMap::default(),
            c_customers: Vec::new(),
            c_contacts: Vec::new(),
            c_credits: Vec::new(),
            c_payments: Vec::new(),
            derived: Vec::new(),
            hash_counts: FastMap::default(),
        }
    }

    fn count<T>(plan: &mut Plan, c: &Option<Change<T>>) {
        match c {
            None => plan.unchanged += 1,
            Some(Change::Insert(_)) => plan.inserted += 1,
            Some(Change::Update { .. }) => plan.updated += 1,
        }
    }

    /// Records `key` for `line`; false (and an error) when it was already in the file.
    fn first_time(&mut self, row: &mut RowView<'_>, f: Field, key: &str, what: &str) -> bool {
        match self.seen.get(key) {
            Some(first) => {
                let first = *first;
                row.error(
                    f,
                    key,
                    format!("duplicate {what} within the file (first on line {first})"),
                );
                false
            }
            None => {
                self.seen.insert(key.to_string(), row.line);
                true
            }
        }
    }

    fn customer_currency(&self, key: &str) -> Option<Currency> {
        self.customers.get(key).map(|c| c.currency)
    }

    fn customer_row(&mut self, row: &mut RowView<'_>, fallback: Currency, plan: &mut Plan) -> bool {
        let Some(c) = rows::customer(row, fallback) else {
            return false;
        };
        if !self.first_time(row, Field::CustomerId, &c.external_id.clone(), "customer") {
            return false;
        }
        let ch = change(self.customers.get(c.external_id.as_str()).copied(), c);
        Self::count(plan, &ch);
        self.c_customers.push(Lined {
            line: row.line,
            change: ch,
        });
        true
    }

    fn contact_row(&mut self, row: &mut RowView<'_>, plan: &mut Plan) -> bool {
        let Some(c) = rows::contact(row) else {
            return false;
        };
        if !self.customers.contains_key(c.customer.as_str()) {
            row.error(
                Field::CustomerId,
                &c.customer,
                "unknown customer (import customers first)",
            );
            return false;
        }
        if !self.first_time(row, Field::ContactId, &c.external_id.clone(), "contact") {
            return false;
        }
        let ch = change(self.contacts.get(c.external_id.as_str()).copied(), c);
        Self::count(plan, &ch);
        self.c_contacts.push(Lined {
            line: row.line,
            change: ch,
        });
        true
    }

    fn invoice_row(
        &mut self,
        row: &mut RowView<'_>,
        create: bool,
        fallback: Currency,
        plan: &mut Plan,
    ) -> bool {
        if !rows::type_matches(row, INVOICE_TYPES) {
            plan.skipped += 1;
            return true;
        }
        let customers = &self.customers;
        let new_customers = &self.new_customers;
        let info = |k: &str| {
            customers
                .get(k)
                .map(|c| (c.currency, c.payment_terms_days))
                .or_else(|| new_customers.get(k).map(|(_, c)| (c.currency, None)))
        };
        let errors_before = row.errors.len();
        let Some(mut ir) = rows::invoice(row, &info, create, fallback) else {
            if row.errors.len() == errors_before {
                plan.skipped += 1; // a draft
                return true;
            }
            return false;
        };
        let number = ir.invoice.number.as_str();
        // Xero repeats the invoice on every line-item row: identical repeats are merged.
        if let Some((first, record)) = self.seen_invoices.find(&plan.changes.invoices, number) {
            // The first occurrence is planned or equal to the stored record.
            if *record == ir.invoice {
                plan.skipped += 1;
                return true;
            }
            row.error(Field::InvoiceNumber, number, format!("duplicate invoice number within the file (first on line {first}, with different values)"));
            return false;
        }
        if create
            && !self.customers.contains_key(ir.invoice.customer.as_str())
            && !self.new_customers.contains_key(&ir.invoice.customer)
        {
            let key = ir.invoice.customer.clone();
            let c = Customer {
                external_id: key.clone(),
                name: ir.customer_name.clone().unwrap_or_else(|| key.clone()),
                segment: None,
                tags: Vec::new(),
                country: ir.customer_country.clone(),
                time_zone: None,
                locale: None,
                currency: ir.invoice.currency,
                payment_terms_days: None,
                credit_limit: None,
                collector: None,
                autopay: false,
            };
            self.new_customers.insert(key, (row.line, c));
        }
        let stored = self.invoices.get(ir.invoice.number.as_str()).copied();
        if let Some(s) = stored {
            // A defaulted status date must not turn every re-import into an update.
            if ir.status_date_defaulted && s.status == ir.invoice.status {
                ir.invoice.status_date = s.status_date;
            }
        }
        let number = ir.invoice.number.as_str();
        let already = self.allocated.get(number).copied().unwrap_or(0);
        if ir.invoice.total < already {
            row.error(
                Field::Total,
                &arflow_domain::money::format_minor(ir.invoice.total, ir.invoice.currency),
                format!(
                    "the total is less than the {} already applied to this invoice",
                    arflow_domain::money::format_minor(already, ir.invoice.currency)
                ),
            );
            return false;
        }
        if let Some(s) = stored
            && already > 0
        {
            // Money is applied to this invoice: its currency and customer are
            // what that money was matched against, and voiding it would make
            // the money vanish from every report.
            if s.currency != ir.invoice.currency || s.customer != ir.invoice.customer {
                row.error(
                    Field::Currency,
                    ir.invoice.currency.code(),
                    format!(
                        "invoice {number} has payments or credits applied, so its customer ({}) and currency ({}) cannot change",
                        s.customer, s.currency
                    ),
                );
                return false;
            }
            if ir.invoice.status == InvoiceStatus::Void && s.status != InvoiceStatus::Void {
                row.error(
                    Field::Status,
                    "void",
                    format!("invoice {number} has payments or credits applied and cannot be voided; credit it or write it off instead"),
                );
                return false;
            }
        }
        let inv = &ir.invoice;
        match ir.settlement {
            Settlement::None => {}
            Settlement::Settled(on) if on < inv.issue_date => {
                let column = if row.get(Field::PaidDate).is_some() {
                    Field::PaidDate
                } else {
                    Field::SettledDate
                };
                row.error(
                    column,
                    &on.to_string(),
                    format!("settled before the invoice was issued ({})", inv.issue_date),
                );
                return false;
            }
            Settlement::Settled(on) => {
                let id = format!("settle:{number}");
                let open = inv.total - already;
                if !self.payments.contains_key(id.as_str()) && open > 0 {
                    let p = pay_from_invoice(id.clone(), inv, open, on);
                    let a = Allocation {
                        invoice: number.to_string(),
                        source: AllocationSource::Payment(id),
                        amount: open,
                        applied_on: on,
                    };
                    self.derived.push((row.line, Some(p), a));
                }
            }
            Settlement::Paid { amount, on } => {
                // "Paid" without a date is recorded on the import date, but never before the invoice.
                let on = on.max(inv.issue_date);
                let need = amount - already;
                if need > 0 {
                    let mut id = format!("balance:{number}");
                    if self.payments.contains_key(id.as_str()) {
                        // More has been paid since the last import: a further payment, keyed by the new paid total.
                        id = format!("balance:{number}:{amount}");
                    }
                    if !self.payments.contains_key(id.as_str()) {
                        let p = pay_from_invoice(id.clone(), inv, need, on);
                        let a = Allocation {
                            invoice: number.to_string(),
                            source: AllocationSource::Payment(id),
                            amount: need,
                            applied_on: on,
                        };
                        self.derived.push((row.line, Some(p), a));
                    }
                }
            }
        }
        let ch = change(stored, ir.invoice);
        Self::count(plan, &ch);
        let seen = &mut self.seen_invoices;
        let slot = match (ch, stored) {
            (Some(ch), _) => {
                plan.changes.invoices.push(ch);
                seen.lines.push(row.line);
                plan.changes.invoices.len() - 1
            }
            (None, Some(s)) => {
                seen.unchanged.push((row.line, s));
                (seen.unchanged.len() - 1) | UNCHANGED
            }
            (None, None) => unreachable!("a record without a stored one is an insert"),
        };
        seen.insert(&plan.changes.invoices, slot);
        true
    }

    fn credit_row(&mut self, row: &mut RowView<'_>, fallback: Currency, plan: &mut Plan) -> bool {
        if !rows::type_matches(row, CREDIT_TYPES) {
            plan.skipped += 1;
            return true;
        }
        let cc = |k: &str| self.customer_currency(k);
        let Some((cn, inv)) = rows::credit_note(row, &cc, fallback) else {
            return false;
        };
        if !self.first_time(
            row,
            Field::CreditNoteNumber,
            &cn.number.clone(),
            "credit note number",
        ) {
            return false;
        }
        if let Some(n) = &inv {
            match self.invoices.get(n.as_str()) {
                None => {
                    row.error(Field::InvoiceNumber, n, "unknown invoice");
                    return false;
                }
                Some(i) if i.customer != cn.customer || i.currency != cn.currency => {
                    row.error(
                        Field::InvoiceNumber,
                        n,
                        format!(
                            "invoice {n} belongs to customer {} in {}, not {} in {}",
                            i.customer, i.currency, cn.customer, cn.currency
                        ),
                    );
                    return false;
                }
                _ => {}
            }
        }
        let stored = self.credits.get(cn.number.as_str()).copied();
        if let Some(s) = stored
            && (s.total != cn.total
                || s.currency != cn.currency
                || s.customer != cn.customer
                || s.issue_date != cn.issue_date)
        {
            let v = arflow_domain::money::format_minor(cn.total, cn.currency);
            row.error(Field::Total, &v, "a recorded credit note cannot change amount, currency, customer or date; void it in the source and import a new one");
            return false;
        }
        let ch = change(stored, cn);
        Self::count(plan, &ch);
        self.c_credits.push((
            Lined {
                line: row.line,
                change: ch,
            },
            inv,
        ));
        true
    }

    fn payment_row(&mut self, row: &mut RowView<'_>, fallback: Currency, plan: &mut Plan) -> bool {
        if !rows::type_matches(row, PAYMENT_TYPES) {
            plan.skipped += 1;
            return true;
        }
        let cc = |k: &str| self.customer_currency(k);
        let Some((mut p, invoices)) = rows::payment(row, &cc, fallback) else {
            return false;
        };
        if p.external_id.is_empty() {
            // Identical rows in one file are distinct payments: number their occurrences.
            let h = payment_hash(&p);
            let k = self.hash_counts.entry(h.clone()).or_default();
            *k += 1;
            p.external_id = if *k == 1 { h } else { format!("{h}-{k}") };
        } else if !self.first_time(row, Field::PaymentId, &p.external_id.clone(), "payment id") {
            return false;
        }
        for n in &invoices {
            match self.invoices.get(n.as_str()) {
                None => {
                    row.error(Field::InvoiceNumber, n, "unknown invoice");
                    return false;
                }
                Some(i) if i.customer != p.customer || i.currency != p.currency => {
                    row.error(
                        Field::InvoiceNumber,
                        n,
                        format!(
                            "invoice {n} belongs to customer {} in {}, not {} in {}",
                            i.customer, i.currency, p.customer, p.currency
                        ),
                    );
                    return false;
                }
                _ => {}
            }
        }
        let stored = self.payments.get(p.external_id.as_str()).copied();
        if let Some(s) = stored
            && (s.amount != p.amount
                || s.currency != p.currency
                || s.customer != p.customer
                || s.received_on != p.received_on)
        {
            let v = arflow_domain::money::format_minor(p.amount, p.currency);
            row.error(Field::Amount, &v, "a recorded payment cannot change amount, currency, customer or date; void it in the source and import a new one");
            return false;
        }
        let ch = change(stored, p);
        Self::count(plan, &ch);
        self.c_payments.push((
            Lined {
                line: row.line,
                change: ch,
            },
            invoices,
        ));
        true
    }

    /// Allocates new payments and credit notes, in date order, against open balances.
    fn allocate(&mut self, opts: &PlanOptions<'_>, plan: &mut Plan) {
        if self.c_payments.is_empty() && self.c_credits.is_empty() {
            return;
        }
        let mut open = open_items(self.ex.invoices.iter().map(|s| &s.record), &self.allocated);
        // (date, line, is_credit, index)
        let mut order: Vec<(Date, u64, bool, usize)> = Vec::new();
        for (i, (l, _)) in self.c_payments.iter().enumerate() {
            if let Some(Change::Insert(p)) = &l.change {
                order.push((p.received_on, l.line, false, i));
            }
        }
        for (i, (l, _)) in self.c_credits.iter().enumerate() {
            if let Some(Change::Insert(c)) = &l.change {
                order.push((c.issue_date, l.line, true, i));
            }
        }
        // Credits first on the same day: they reduce what a same-day payment settles.
        order.sort_by_key(|(d, l, credit, _)| (*d, !*credit, *l));
        for (_, line, is_credit, i) in order {
            let (customer, currency, amount, date, preferred, source) = if is_credit {
                let (l, inv) = &self.c_credits[i];
                let Some(c) = l.change.as_ref().map(Change::record) else {
                    continue;
                };
                (
                    c.customer.clone(),
                    c.currency,
                    c.total,
                    c.issue_date,
                    inv.iter().cloned().collect::<Vec<_>>(),
                    AllocationSource::CreditNote(c.number.clone()),
                )
            } else {
                let (l, inv) = &self.c_payments[i];
                let Some(p) = l.change.as_ref().map(Change::record) else {
                    continue;
                };
                (
                    p.customer.clone(),
                    p.currency,
                    p.amount,
                    p.received_on,
                    inv.clone(),
                    AllocationSource::Payment(p.external_id.clone()),
                )
            };
            let items = open.entry((customer, currency)).or_default();
            if is_credit && let Some(n) = preferred.first() {
                let avail = items
                    .iter()
                    .find(|it| &it.number == n)
                    .map(|it| it.open)
                    .unwrap_or(0);
                if amount > avail {
                    plan.errors.push(RowError {
                        line,
                        column: "total".into(),
                        value: arflow_domain::money::format_minor(amount, currency),
                        message: format!(
                            "the credit is larger than invoice {n}'s open balance of {}",
                            arflow_domain::money::format_minor(avail, currency)
                        ),
                    });
                    continue;
                }
            }
            let p = allocate(amount, items, &preferred, opts.allocation_order);
            for (inv, amt) in p.applied {
                // Money received before an invoice existed (a prepayment) is
                // applied when the invoice is issued, never before: as-of
                // reports and days-to-pay must not see it earlier.
                let issued = items
                    .iter()
                    .find(|it| it.number == inv)
                    .map(|it| it.issue_date);
                let applied_on = issued.map_or(date, |d| d.max(date));
                self.derived.push((
                    line,
                    None,
                    Allocation {
                        invoice: inv,
                        source: source.clone(),
                        amount: amt,
                        applied_on,
                    },
                ));
            }
        }
    }

    fn finish(self, bad: &FastSet<u64>, plan: &mut Plan) {
        let cs = &mut plan.changes;
        let keep = |l: u64| !bad.contains(&l);
        let mut new_customers: Vec<(u64, Customer)> = self.new_customers.into_values().collect();
        new_customers.sort_by_key(|(l, _)| *l);
        // A created customer is kept if any of its invoices is kept; first line decides for simplicity.
        for (l, c) in new_customers {
            if keep(l) {
                cs.customers.push(Change::Insert(c));
                plan.customers_created += 1;
            }
        }
        cs.customers.extend(
            self.c_customers
                .into_iter()
                .filter(|x| keep(x.line))
                .filter_map(|x| x.change),
        );
        cs.contacts.extend(
            self.c_contacts
                .into_iter()
                .filter(|x| keep(x.line))
                .filter_map(|x| x.change),
        );
        // Invoices were planned in place, in file order; drop those of rejected lines.
        if !bad.is_empty() {
            let mut lines = self.seen_invoices.lines.iter();
            cs.invoices
                .retain(|_| lines.next().is_some_and(|&l| keep(l)));
        }
        cs.credit_notes.extend(
            self.c_credits
                .into_iter()
                .filter(|x| keep(x.0.line))
                .filter_map(|x| x.0.change),
        );
        for (l, _) in self.c_payments.iter().filter(|x| keep(x.0.line)) {
            if matches!(l.change, Some(Change::Insert(_))) {
                plan.payments_created += 1;
            }
        }
        cs.payments.extend(
            self.c_payments
                .into_iter()
                .filter(|x| keep(x.0.line))
                .filter_map(|x| x.0.change),
        );
        for (l, p, a) in self.derived {
            if !keep(l) {
                continue;
            }
            if let Some(p) = p {
                cs.payments.push(Change::Insert(p));
                plan.payments_created += 1;
            }
            cs.allocations.push(a);
            plan.allocations_created += 1;
        }
    }
}
