//! The ledger as native CSV import files (docs/csv-schema.md), written while
//! it is generated, one customer at a time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use arflow_domain::model::AllocationSource;
use arflow_domain::money::format_minor;

use crate::{CustomerLedger, DemoParams, stream};

pub(crate) const CUSTOMER_COLUMNS: &[&str] = &[
    "customer_id",
    "name",
    "currency",
    "segment",
    "tags",
    "country",
    "time_zone",
    "locale",
    "payment_terms_days",
    "credit_limit",
    "collector",
    "autopay",
];
pub(crate) const CONTACT_COLUMNS: &[&str] = &[
    "customer_id",
    "contact_id",
    "name",
    "email",
    "phone",
    "role",
    "primary",
    "email_opt_out",
    "sms_consent",
    "sms_opt_out",
    "call_opt_out",
];
/// No `paid_date`: payments come from payments.csv.
pub(crate) const INVOICE_COLUMNS: &[&str] = &[
    "invoice_number",
    "customer_id",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "tax",
    "po_number",
    "external_id",
    "status",
    "status_date",
    "disputed",
    "paperless",
];
pub(crate) const CREDIT_NOTE_COLUMNS: &[&str] = &[
    "credit_note_number",
    "customer_id",
    "issue_date",
    "currency",
    "total",
    "reason",
    "external_id",
    "invoice_number",
];
pub(crate) const PAYMENT_COLUMNS: &[&str] = &[
    "payment_id",
    "customer_id",
    "received_on",
    "currency",
    "amount",
    "method",
    "reference",
    "payer_name",
    "invoice_number",
];

/// Rows written per file (and allocations they re-create).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvCounts {
    pub customers: usize,
    pub contacts: usize,
    pub invoices: usize,
    pub credit_notes: usize,
    pub payments: usize,
    pub allocations: usize,
}

fn b(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

type Writer = csv::Writer<BufWriter<File>>;

fn open(dir: &Path, name: &str, header: &[&str]) -> io::Result<Writer> {
    let file = File::create(dir.join(name))?;
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, file));
    w.write_record(header)?;
    Ok(w)
}

struct Files {
    customers: Writer,
    contacts: Writer,
    invoices: Writer,
    credit_notes: Writer,
    payments: Writer,
}

/// Generates the ledger for `params` into `dir` (created if missing):
/// customers.csv, contacts.csv, invoices.csv, credit-notes.csv, payments.csv.
/// Holds only one customer's records at a time.
pub fn write_csv(params: &DemoParams, dir: &Path) -> io::Result<CsvCounts> {
    write_csv_as(params, dir, CsvLayout::Ledger)
}

/// Which files [`write_csv_as`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvLayout {
    /// The five native files; payments.csv re-creates every allocation.
    Ledger,
    /// customers.csv and one invoices.csv with a `paid_date` column set on
    /// every fully settled invoice (the date it was settled); partial
    /// payments and credit notes are not written. One self-contained file
    /// for benchmarks that compare with tools reading a single CSV.
    InvoicesWithPaidDate,
}

/// Like [`write_csv`], in the chosen layout.
pub fn write_csv_as(params: &DemoParams, dir: &Path, layout: CsvLayout) -> io::Result<CsvCounts> {
    if layout == CsvLayout::InvoicesWithPaidDate {
        return write_invoices_with_paid_date(params, dir);
    }
    std::fs::create_dir_all(dir)?;
    let mut files = Files {
        customers: open(dir, "customers.csv", CUSTOMER_COLUMNS)?,
        contacts: open(dir, "contacts.csv", CONTACT_COLUMNS)?,
        invoices: open(dir, "invoices.csv", INVOICE_COLUMNS)?,
        credit_notes: open(dir, "credit-notes.csv", CREDIT_NOTE_COLUMNS)?,
        payments: open(dir, "payments.csv", PAYMENT_COLUMNS)?,
    };
    let mut counts = CsvCounts::default();
    for chunk in stream(params) {
        write_chunk(&mut files, &chunk, &mut counts)?;
    }
    for w in [
        files.customers,
        files.contacts,
        files.invoices,
        files.credit_notes,
        files.payments,
    ] {
        w.into_inner()
            .map_err(|e| e.into_error())?
            .into_inner()
            .map_err(|e| e.into_error())?;
    }
    Ok(counts)
}

fn write_invoices_with_paid_date(params: &DemoParams, dir: &Path) -> io::Result<CsvCounts> {
    std::fs::create_dir_all(dir)?;
    let mut customers = open(dir, "customers.csv", CUSTOMER_COLUMNS)?;
    let mut header = INVOICE_COLUMNS.to_vec();
    header.push("paid_date");
    let mut invoices = open(dir, "invoices.csv", &header)?;
    let mut counts = CsvCounts::default();
    for chunk in stream(params) {
        write_customer(&mut customers, &chunk.customer)?;
        counts.customers += 1;
        // Settled on the date the allocations first reach the total.
        let mut applied: HashMap<&str, Vec<(jiff::civil::Date, i64)>> = HashMap::new();
        for a in &chunk.allocations {
            applied
                .entry(a.invoice.as_str())
                .or_default()
                .push((a.applied_on, a.amount));
        }
        for i in &chunk.invoices {
            let paid_date = applied.get_mut(i.number.as_str()).and_then(|v| {
                v.sort_unstable();
                let mut sum = 0;
                v.iter()
                    .find(|(_, amount)| {
                        sum += amount;
                        sum >= i.total
                    })
                    .map(|(d, _)| d.to_string())
            });
            write_invoice(&mut invoices, i, Some(paid_date.as_deref().unwrap_or("")))?;
            counts.invoices += 1;
        }
    }
    for w in [customers, invoices] {
        w.into_inner()
            .map_err(|e| e.into_error())?
            .into_inner()
            .map_err(|e| e.into_error())?;
    }
    Ok(counts)
}

fn write_customer(w: &mut Writer, cu: &arflow_domain::model::Customer) -> io::Result<()> {
    let cur = cu.currency;
    let terms = cu
        .payment_terms_days
        .map(|t| t.to_string())
        .unwrap_or_default();
    let limit = cu
        .credit_limit
        .map(|l| format_minor(l, cur))
        .unwrap_or_default();
    w.write_record([
        cu.external_id.as_str(),
        &cu.name,
        cur.code(),
        opt(&cu.segment),
        &cu.tags.join(";"),
        opt(&cu.country),
        opt(&cu.time_zone),
        opt(&cu.locale),
        &terms,
        &limit,
        opt(&cu.collector),
        b(cu.autopay),
    ])?;
    Ok(())
}

/// One invoices.csv row; `paid_date` adds that trailing column when given.
fn write_invoice(
    w: &mut Writer,
    i: &arflow_domain::model::Invoice,
    paid_date: Option<&str>,
) -> io::Result<()> {
    let status_date = i.status_date.map(|d| d.to_string()).unwrap_or_default();
    let paperless = i.paperless.map(b).unwrap_or("");
    let issue = i.issue_date.to_string();
    let due = i.due_date.to_string();
    let total = format_minor(i.total, i.currency);
    let tax = format_minor(i.tax, i.currency);
    let mut row: Vec<&str> = vec![
        i.number.as_str(),
        &i.customer,
        &issue,
        &due,
        i.currency.code(),
        &total,
        &tax,
        opt(&i.po_number),
        opt(&i.external_id),
        i.status.as_str(),
        &status_date,
        b(i.disputed),
        paperless,
    ];
    if let Some(p) = paid_date {
        row.push(p);
    }
    w.write_record(row)?;
    Ok(())
}

fn write_chunk(f: &mut Files, c: &CustomerLedger, counts: &mut CsvCounts) -> io::Result<()> {
    let cu = &c.customer;
    write_customer(&mut f.customers, cu)?;
    counts.customers += 1;

    for k in &c.contacts {
        let p = &k.preferences;
        f.contacts.write_record([
            k.customer.as_str(),
            &k.external_id,
            &k.name,
            opt(&k.email),
            opt(&k.phone),
            opt(&k.role),
            b(k.is_primary),
            b(p.email_opt_out),
            b(p.sms_consent),
            b(p.sms_opt_out),
            b(p.call_opt_out),
        ])?;
        counts.contacts += 1;
    }

    for i in &c.invoices {
        write_invoice(&mut f.invoices, i, None)?;
        counts.invoices += 1;
    }

    // Which invoices each credit note and payment settles, in allocation order.
    let mut targets: HashMap<&AllocationSource, Vec<&str>> =
        HashMap::with_capacity(c.payments.len() + c.credit_notes.len());
    for a in &c.allocations {
        targets
            .entry(&a.source)
            .or_default()
            .push(a.invoice.as_str());
        counts.allocations += 1;
    }

    for n in &c.credit_notes {
        let key = AllocationSource::CreditNote(n.number.clone());
        let invoices = targets.get(&key).map(|v| v.join(";")).unwrap_or_default();
        f.credit_notes.write_record([
            n.number.as_str(),
            &n.customer,
            &n.issue_date.to_string(),
            n.currency.code(),
            &format_minor(n.total, n.currency),
            opt(&n.reason),
            opt(&n.external_id),
            &invoices,
        ])?;
        counts.credit_notes += 1;
    }

    for p in &c.payments {
        let key = AllocationSource::Payment(p.external_id.clone());
        let invoices = targets.get(&key).map(|v| v.join(";")).unwrap_or_default();
        f.payments.write_record([
            p.external_id.as_str(),
            &p.customer,
            &p.received_on.to_string(),
            p.currency.code(),
            &format_minor(p.amount, p.currency),
            opt(&p.method),
            opt(&p.reference),
            opt(&p.payer_name),
            &invoices,
        ])?;
        counts.payments += 1;
    }
    Ok(())
}
