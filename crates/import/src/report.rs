//! What an import did, for people and for `--json`.

use std::path::PathBuf;

use arflow_store::AppliedCounts;
use serde::Serialize;

use crate::header::{Layout, RecordKind};

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub kind: RecordKind,
    pub file: PathBuf,
    /// The layout recognized from the header (native, quick-books, xero) or "mapping".
    pub layout: Layout,
    /// Data rows read (blank rows not counted).
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Rows deliberately not imported: other transaction types, drafts, repeated line-item rows.
    pub skipped: u64,
    pub rejected: u64,
    pub rejects_file: Option<PathBuf>,
    pub applied: AppliedCounts,
    pub ignored_columns: Vec<String>,
    pub customers_created: u64,
    pub payments_created: u64,
    pub allocations_created: u64,
}
