//! Validating new ledger records with the CSV importer's own row rules
//! (`arflow_import::rows`), so a record the API accepts is one `arflow
//! import` would accept and the error messages read the same.
//!
//! The request's fields become one record of a file whose header is the
//! importer's native column names; each error the importer reports for a
//! column comes back as a [`FieldError`] on the JSON field it came from.

use arflow_domain::money::{Currency, DecimalStyle};
use arflow_import::header::{Field, RecordKind, resolve};
use arflow_import::mapping::Mapping;
use arflow_import::rows::{RowCtx, RowView};
use arflow_import::values::{self, DateFormat};
use csv::ByteRecord;
use jiff::civil::Date;

use super::extract::ApiError;
use crate::problem::FieldError;

/// What `source` the API records on invoices, credit notes and payments.
pub const SOURCE: &str = "api";

/// One record's cells, and where each came from in the JSON body.
pub struct Cells {
    kind: RecordKind,
    headers: Vec<String>,
    values: Vec<String>,
    pointers: Vec<(Field, String)>,
}

impl Cells {
    pub fn new(kind: RecordKind) -> Cells {
        Cells {
            kind,
            headers: Vec::new(),
            values: Vec::new(),
            pointers: Vec::new(),
        }
    }

    /// A cell for `field` from the JSON field at `pointer`, when given.
    pub fn text(&mut self, field: Field, pointer: &str, value: Option<&str>) -> &mut Cells {
        if let Some(v) = value {
            self.headers.push(field.name().to_string());
            self.values.push(v.to_string());
            self.pointers.push((field, pointer.to_string()));
        }
        self
    }

    pub fn flag(&mut self, field: Field, pointer: &str, value: Option<bool>) -> &mut Cells {
        self.text(
            field,
            pointer,
            value.map(|b| if b { "true" } else { "false" }),
        )
    }

    fn pointer(&self, column: &str) -> String {
        self.pointers
            .iter()
            .find(|(f, _)| f.name() == column)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| format!("/{column}"))
    }

    /// Runs one of the importer's row readers on the cells.
    pub fn read<T>(
        &self,
        today: Date,
        read: impl FnOnce(&mut RowView<'_>) -> Option<T>,
    ) -> Result<T, ApiError> {
        let cols = resolve(self.kind, self.headers.clone(), &[]).map_err(|missing| {
            ApiError::fields(
                missing
                    .iter()
                    .map(|f| {
                        FieldError::new(&self.pointer(f.name()), None, "required value is missing")
                    })
                    .collect(),
            )
        })?;
        let mapping = Mapping::default();
        let formats = [iso()];
        let ctx = RowCtx {
            cols: &cols,
            mapping: &mapping,
            date_formats: &formats,
            decimal: DecimalStyle::POINT,
            source: SOURCE,
            today,
        };
        let mut record = ByteRecord::new();
        for v in &self.values {
            record.push_field(v.as_bytes());
        }
        let mut row = RowView::new(&ctx, &record, 1);
        let out = read(&mut row);
        if !row.errors.is_empty() {
            return Err(ApiError::fields(
                row.errors
                    .iter()
                    .map(|e| {
                        let value = (!e.value.is_empty()).then_some(e.value.as_str());
                        FieldError::new(&self.pointer(&e.column), value, e.message.clone())
                    })
                    .collect(),
            ));
        }
        out.ok_or_else(|| ApiError::invalid("", None, "the record is not valid"))
    }
}

pub fn iso() -> DateFormat {
    DateFormat::parse(DateFormat::ISO).unwrap_or(DateFormat::Strtime("%Y-%m-%d".to_string()))
}

/// The longest text a field takes (the pages' limit too).
const MAX_TEXT: usize = 10_000;

/// Collects field errors of a request, to report them all at once.
#[derive(Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, pointer: &str, value: Option<&str>, reason: impl Into<String>) {
        self.0.push(FieldError::new(pointer, value, reason));
    }

    pub fn check(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.0))
        }
    }

    /// A date (ISO 8601, years 1900 to 2199, as in imports).
    pub fn date(&mut self, pointer: &str, raw: &str) -> Option<Date> {
        match values::parse_date(raw.trim(), &[iso()]) {
            Ok(d) => Some(d),
            Err(e) => {
                self.add(pointer, Some(raw), e);
                None
            }
        }
    }

    pub fn currency(&mut self, pointer: &str, raw: &str) -> Option<Currency> {
        match values::parse_currency(raw.trim()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.add(pointer, Some(raw), e);
                None
            }
        }
    }

    /// An amount more than zero in `currency`, parsed like an import cell.
    pub fn positive_amount(&mut self, pointer: &str, raw: &str, currency: Currency) -> Option<i64> {
        match values::parse_amount(raw.trim(), currency, DecimalStyle::POINT) {
            Ok(0) => {
                self.add(pointer, Some(raw), "must be more than 0");
                None
            }
            Ok(a) => Some(a),
            Err(e) => {
                self.add(pointer, Some(raw), e);
                None
            }
        }
    }

    /// Trimmed text that must not be empty nor hold control characters.
    pub fn text(&mut self, pointer: &str, raw: &str) -> Option<String> {
        let t = raw.trim();
        if t.is_empty() {
            self.add(pointer, None, "required value is missing");
            return None;
        }
        // The pages' limit: a note or a reason, not a document.
        if t.chars().count() > MAX_TEXT {
            self.add(
                pointer,
                None,
                format!("is longer than {MAX_TEXT} characters"),
            );
            return None;
        }
        if t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.add(
                pointer,
                Some(&t.escape_default().to_string()),
                "contains a control character",
            );
            return None;
        }
        Some(t.to_string())
    }

    /// Like [`Errors::text`] for an optional field (empty means absent).
    pub fn opt_text(&mut self, pointer: &str, raw: Option<&str>) -> Option<String> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            Some(t) => self.text(pointer, t),
            None => None,
        }
    }
}
