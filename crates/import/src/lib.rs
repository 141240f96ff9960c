//! arflow's CSV importer: native, QuickBooks Online and Xero headers, or a TOML
//! column mapping; every bad cell reported with its line and column; atomic by
//! default; idempotent (re-importing a file changes nothing).
//!
//! Flow: read what is stored → [`plan::plan`] the file into a `ChangeSet`
//! (pure, unit-tested) → `Store::apply` it in one transaction.

pub mod allocate;
pub mod diff;
pub mod error;
pub mod header;
pub mod mapping;
pub mod plan;
pub mod report;
pub mod rows;
pub mod values;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use arflow_domain::allocation::AllocationOrder;
use arflow_domain::model::Organization;
use arflow_store::Store;

pub use error::{ImportError, RowError};
pub use header::{Layout, RecordKind};
pub use mapping::{Mapping, load_mapping, parse_mapping};
pub use plan::{Existing, Plan, PlanOptions};
pub use report::ImportReport;

/// How to import one file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub kind: RecordKind,
    pub mapping: Option<Mapping>,
    /// Apply the valid rows and write the others to `<stem>.rejects.csv` instead of failing.
    pub skip_invalid: bool,
    pub allocation_order: AllocationOrder,
    /// The as-of date (default status dates, dates of payments inferred from open balances).
    pub today: jiff::civil::Date,
    /// How many row errors an error report lists (the rest are counted).
    pub max_errors: usize,
}

impl ImportOptions {
    pub fn new(kind: RecordKind, today: jiff::civil::Date) -> Self {
        ImportOptions {
            kind,
            mapping: None,
            skip_invalid: false,
            allocation_order: AllocationOrder::default(),
            today,
            max_errors: 100,
        }
    }
}

/// Reads everything the planner compares against.
pub fn load_existing(
    store: &dyn Store,
    org: i64,
    kind: RecordKind,
) -> Result<Existing, ImportError> {
    let mut ex = Existing {
        customers: store.customers(org)?,
        ..Existing::default()
    };
    match kind {
        RecordKind::Customers => {}
        RecordKind::Contacts => ex.contacts = store.contacts(org)?,
        RecordKind::Invoices => {
            ex.invoices = store.invoices(org)?;
            ex.payments = store.payments(org)?;
            ex.allocations = store.allocations(org)?;
        }
        RecordKind::CreditNotes | RecordKind::Payments => {
            ex.invoices = store.invoices(org)?;
            ex.credit_notes = store.credit_notes(org)?;
            ex.payments = store.payments(org)?;
            ex.allocations = store.allocations(org)?;
        }
    }
    Ok(ex)
}

/// `dir/name.csv` → `dir/name.rejects.csv`.
pub fn rejects_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    input.with_file_name(format!("{stem}.rejects.csv"))
}

fn write_rejects(path: &Path, plan: &Plan) -> Result<(), ImportError> {
    let io = |e: csv::Error| ImportError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(io)?;
    let mut header = plan.headers.clone();
    header.push_field(b"error");
    w.write_byte_record(&header).map_err(io)?;
    for (rec, msg) in &plan.rejected {
        let mut r = rec.clone();
        // Ragged rows are padded so the error lands in the error column.
        while r.len() < plan.headers.len() {
            r.push_field(b"");
        }
        r.push_field(msg.as_bytes());
        w.write_byte_record(&r).map_err(io)?;
    }
    w.flush().map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Imports one file into the store. Atomic unless `opts.skip_invalid`.
/// `progress(bytes_read, total_bytes)` is called while reading.
pub fn import_file(
    store: &dyn Store,
    org: &Organization,
    path: &Path,
    opts: &ImportOptions,
    actor: &str,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64, u64),
) -> Result<ImportReport, ImportError> {
    if let Some(m) = &opts.mapping
        && let Some(kind) = m.kind
        && kind != opts.kind
    {
        return Err(ImportError::Mapping {
            file: m.file.clone(),
            message: format!(
                "written for {} (kind = \"{}\"), but this is an import of {}",
                kind.as_str(),
                kind.as_str(),
                opts.kind.as_str()
            ),
        });
    }
    let file = File::open(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let existing = load_existing(store, org.id, opts.kind)?;
    let name = path.display().to_string();
    let popts = PlanOptions {
        kind: opts.kind,
        mapping: opts.mapping.as_ref(),
        allocation_order: opts.allocation_order,
        today: opts.today,
    };
    let mut plan = plan::plan(
        BufReader::with_capacity(1 << 20, file),
        &name,
        &existing,
        org,
        &popts,
        &mut |b| progress(b, total),
    )?;
    let mut rejects_file = None;
    if !plan.errors.is_empty() {
        if !opts.skip_invalid {
            let total = plan.errors.len();
            plan.errors.truncate(opts.max_errors.max(1));
            return Err(ImportError::InvalidRows {
                file: name,
                errors: plan.errors,
                total,
            });
        }
        let rp = rejects_path(path);
        write_rejects(&rp, &plan)?;
        rejects_file = Some(rp);
    }
    let applied = if plan.changes.is_empty() {
        Default::default()
    } else {
        store.apply(org.id, &plan.changes, actor, now)?
    };
    let rejected = plan.rejected.len() as u64;
    Ok(ImportReport {
        kind: opts.kind,
        file: path.to_path_buf(),
        layout: plan.layout.unwrap_or(Layout::Native),
        rows: plan.rows,
        inserted: plan.inserted,
        updated: plan.updated,
        unchanged: plan.unchanged,
        skipped: plan.skipped,
        rejected,
        rejects_file,
        applied,
        ignored_columns: plan.ignored_columns,
        customers_created: plan.customers_created,
        payments_created: plan.payments_created,
        allocations_created: plan.allocations_created,
    })
}
