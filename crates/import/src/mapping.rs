//! TOML mapping files for layouts arflow does not know (see docs/import-mapping.md).

use std::collections::BTreeMap;
use std::path::Path;

use arflow_domain::money::{Currency, DecimalStyle};
use serde::Deserialize;

use crate::error::ImportError;
use crate::header::{Field, RecordKind};
use crate::values::DateFormat;

/// A parsed, validated mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Where the mapping was read from, for error messages.
    pub file: String,
    /// The kind the mapping is written for, if it says.
    pub kind: Option<RecordKind>,
    /// Recorded as the invoices' / payments' `source` (default "csv").
    pub source: Option<String>,
    /// Tried in order.
    pub date_formats: Vec<DateFormat>,
    pub decimal: DecimalStyle,
    /// Currency when the row has none and the customer gives none.
    pub currency: Option<Currency>,
    /// Create missing customers from invoice rows.
    pub create_customers: bool,
    /// Field → header name in the file.
    pub columns: Vec<(Field, String)>,
    /// Field → (cell text → replacement), applied before parsing.
    pub values: Vec<(Field, Vec<(String, String)>)>,
    /// Field → value used when the column is absent or the cell empty.
    pub constants: Vec<(Field, String)>,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            file: String::new(),
            kind: None,
            source: None,
            date_formats: Vec::new(),
            decimal: DecimalStyle::POINT,
            currency: None,
            create_customers: false,
            columns: Vec::new(),
            values: Vec::new(),
            constants: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    kind: Option<String>,
    source: Option<String>,
    date_format: Option<OneOrMany>,
    decimal_separator: Option<String>,
    thousands_separator: Option<String>,
    currency: Option<String>,
    #[serde(default)]
    create_customers: bool,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, toml::Value>>,
    #[serde(default)]
    constants: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

fn one_char(s: &str, what: &str) -> Result<char, String> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("{what} must be a single character, got '{s}'")),
    }
}

fn field(name: &str, section: &str) -> Result<Field, String> {
    Field::from_name(name).ok_or_else(|| {
        let all: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
        format!(
            "[{section}] names unknown field '{name}' (known: {})",
            all.join(", ")
        )
    })
}

/// Parses mapping text; `file` only names it in errors.
pub fn parse_mapping(text: &str, file: &str) -> Result<Mapping, ImportError> {
    let err = |message: String| ImportError::Mapping {
        file: file.to_string(),
        message,
    };
    // toml's error text carries the line and column.
    let raw: Raw = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    let kind = raw
        .kind
        .as_deref()
        .map(str::parse::<RecordKind>)
        .transpose()
        .map_err(err)?;
    let date_formats = match raw.date_format {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![DateFormat::parse(&s).map_err(err)?],
        Some(OneOrMany::Many(v)) => v
            .iter()
            .map(|s| DateFormat::parse(s))
            .collect::<Result<_, _>>()
            .map_err(err)?,
    };
    let decimal_char = match raw.decimal_separator.as_deref() {
        None => '.',
        Some(s) => one_char(s, "decimal_separator").map_err(err)?,
    };
    if decimal_char != '.' && decimal_char != ',' {
        return Err(err(format!(
            "decimal_separator must be \".\" or \",\", got '{decimal_char}'"
        )));
    }
    let thousands = match raw.thousands_separator.as_deref() {
        None if decimal_char == ',' => Some('.'),
        None => Some(','),
        Some("") => None,
        Some(s) => Some(one_char(s, "thousands_separator").map_err(err)?),
    };
    if thousands == Some(decimal_char) {
        return Err(err(
            "thousands_separator cannot equal decimal_separator".into()
        ));
    }
    let currency = raw
        .currency
        .as_deref()
        .map(Currency::parse)
        .transpose()
        .map_err(|e| err(e.to_string()))?;
    let mut columns = Vec::new();
    for (k, v) in &raw.columns {
        columns.push((field(k, "columns").map_err(err)?, v.clone()));
    }
    let mut values = Vec::new();
    for (k, table) in &raw.values {
        let f = field(k, "values").map_err(err)?;
        let mut pairs = Vec::new();
        for (from, to) in table {
            let to = scalar(to).ok_or_else(|| {
                err(format!(
                    "[values.{k}] '{from}' must map to a string, number or boolean"
                ))
            })?;
            pairs.push((from.clone(), to));
        }
        values.push((f, pairs));
    }
    let mut constants = Vec::new();
    for (k, v) in &raw.constants {
        let f = field(k, "constants").map_err(err)?;
        constants.push((
            f,
            scalar(v).ok_or_else(|| {
                err(format!(
                    "[constants] {k} must be a string, number or boolean"
                ))
            })?,
        ));
    }
    Ok(Mapping {
        file: file.to_string(),
        kind,
        source: raw.source,
        date_formats,
        decimal: DecimalStyle {
            decimal: decimal_char,
            thousands,
        },
        currency,
        create_customers: raw.create_customers,
        columns,
        values,
        constants,
    })
}

/// Reads and parses a mapping file.
pub fn load_mapping(path: &Path) -> Result<Mapping, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_mapping(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_mapping() {
        let m = parse_mapping(
            r#"
kind = "invoices"
date_format = "d.m.Y"
decimal_separator = ","
currency = "EUR"
create_customers = true
[columns]
invoice_number = "Belegnr"
settled_date = "Bezahlt am"
[values.disputed]
Ja = true
Nein = false
[constants]
status = "open"
"#,
            "m.toml",
        )
        .unwrap();
        assert_eq!(m.kind, Some(RecordKind::Invoices));
        assert_eq!(
            m.decimal,
            DecimalStyle {
                decimal: ',',
                thousands: Some('.')
            }
        );
        assert_eq!(m.columns[0], (Field::InvoiceNumber, "Belegnr".to_string()));
        assert_eq!(m.values[0].1[0], ("Ja".to_string(), "true".to_string()));
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = parse_mapping("currency = \"USD\"\n[columns\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_mapping("[columns]\nnope = \"x\"\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field 'nope'"), "{e}");
    }
}
