//! Import errors. Every row problem is located: file, physical line, column, value.

use std::fmt;
use std::path::PathBuf;

use arflow_store::StoreError;
use serde::Serialize;

/// One problem with one cell (or one row when `column` is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Physical line where the record starts (1-based; the header is line 1).
    pub line: u64,
    /// The column as named in the file (with the arflow field in parentheses when it differs).
    pub column: String,
    pub value: String,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(
                f,
                "line {}, column {}, value '{}': {}",
                self.line, self.column, self.value, self.message
            )
        }
    }
}

fn list_errors(errors: &[RowError], total: usize) -> String {
    let mut s = String::new();
    for e in errors {
        s.push_str("\n  ");
        s.push_str(&e.to_string());
    }
    if total > errors.len() {
        s.push_str(&format!("\n  ... and {} more", total - errors.len()));
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The header row is unusable: a required column is missing, or the file is empty.
    #[error("{file}: {message}; expected columns: {}; found: {}", expected.join(", "), found.join(", "))]
    Header {
        file: String,
        message: String,
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("mapping {file}: {message}")]
    Mapping { file: String, message: String },
    /// Some rows are invalid; nothing was written (unless skip_invalid was set).
    #[error("{file}: {total} invalid row value(s), nothing was imported{}", list_errors(errors, *total))]
    InvalidRows {
        file: String,
        errors: Vec<RowError>,
        total: usize,
    },
    #[error("{file}: the file is not valid CSV at line {line}: {message}")]
    Csv {
        file: String,
        line: u64,
        message: String,
    },
    #[error("could not write the import: {0}")]
    Store(#[from] StoreError),
}
