//! IBM's public accounts-receivable sample as ledger facts.
//!
//! `WA_Fn-UseC_-Accounts-Receivable.csv` (2,466 invoices, 100 customers, all
//! settled; see `shared/data/ibm-ar/README.md`) is the public benchmark for
//! payment prediction. This reads its text (the caller reads the file) into
//! what `arflow import` would produce with `examples/ibm-ar.toml`: one USD
//! invoice per row, one payment of the whole total on `SettledDate`, the
//! `Disputed` flag recorded at issue and `PaperlessBill` as paperless.
//! `DaysToSettle` and `DaysLate` are outcomes and are not read.

use std::collections::HashMap;

use jiff::civil::Date;

use super::PredictError;
use super::data::{ExtraFacts, InvoiceAttributes};
use crate::ledger::{AllocationFact, CustomerFact, InvoiceFact, LedgerFacts};
use crate::money::{Currency, DecimalStyle, Money};

#[derive(Debug, Clone)]
pub struct IbmSample {
    pub facts: LedgerFacts,
    pub extra: ExtraFacts,
}

fn us_date(s: &str) -> Option<Date> {
    let mut it = s.trim().split('/');
    let m: i8 = it.next()?.parse().ok()?;
    let d: i8 = it.next()?.parse().ok()?;
    let y: i16 = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Date::new(y, m, d).ok()
}

/// Parses the sample's CSV text (comma-separated, no quoting, CRLF or LF).
pub fn read_ibm_csv(text: &str) -> Result<IbmSample, PredictError> {
    let err = |line: usize, message: String| PredictError::Sample { line, message };
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .ok_or_else(|| err(1, "empty file".into()))?
        .1
        .trim_start_matches('\u{feff}');
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| err(1, format!("missing column {name}")))
    };
    let c_customer = column("customerID")?;
    let c_number = column("invoiceNumber")?;
    let c_issue = column("InvoiceDate")?;
    let c_due = column("DueDate")?;
    let c_amount = column("InvoiceAmount")?;
    let c_disputed = column("Disputed")?;
    let c_settled = column("SettledDate")?;
    let c_paperless = column("PaperlessBill")?;
    let mut facts = LedgerFacts {
        base_currency: Currency::USD,
        customers: Vec::new(),
        invoices: Vec::new(),
        allocations: Vec::new(),
    };
    let mut extra = ExtraFacts::default();
    let mut customers: HashMap<String, i64> = HashMap::new();
    for (k, line) in lines {
        let line_no = k + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != names.len() {
            return Err(err(
                line_no,
                format!("{} fields, expected {}", f.len(), names.len()),
            ));
        }
        let date = |c: usize| {
            us_date(f[c]).ok_or_else(|| err(line_no, format!("'{}' is not a m/d/yyyy date", f[c])))
        };
        let issue = date(c_issue)?;
        let due = date(c_due)?;
        let settled = if f[c_settled].is_empty() {
            None
        } else {
            Some(date(c_settled)?)
        };
        let total = Money::parse(f[c_amount], Currency::USD, DecimalStyle::POINT)
            .map_err(|e| err(line_no, e.to_string()))?
            .minor;
        let next_id = customers.len() as i64 + 1;
        let customer_id = *customers
            .entry(f[c_customer].to_string())
            .or_insert_with(|| {
                facts.customers.push(CustomerFact {
                    id: next_id,
                    external_id: f[c_customer].to_string(),
                    name: f[c_customer].to_string(),
                    segment: None,
                });
                next_id
            });
        let id = facts.invoices.len() as i64 + 1;
        if f[c_number].is_empty() {
            return Err(err(line_no, "empty invoiceNumber".into()));
        }
        facts.invoices.push(InvoiceFact {
            id,
            customer_id,
            issue_date: issue,
            due_date: due,
            currency: Currency::USD,
            total,
            closed: None,
        });
        if let Some(on) = settled {
            facts.allocations.push(AllocationFact {
                invoice_id: id,
                applied_on: on,
                amount: total,
                from_credit_note: false,
            });
        }
        let disputed = match f[c_disputed] {
            "Yes" => true,
            "No" => false,
            other => {
                return Err(err(
                    line_no,
                    format!("Disputed '{other}' is neither Yes nor No"),
                ));
            }
        };
        let paperless = match f[c_paperless] {
            "Electronic" => Some(true),
            "Paper" => Some(false),
            _ => None,
        };
        extra.invoices.push(InvoiceAttributes {
            invoice_id: id,
            disputed_on: disputed.then_some(issue),
            paperless,
        });
    }
    Ok(IbmSample { facts, extra })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "countryCode,customerID,PaperlessDate,invoiceNumber,InvoiceDate,DueDate,InvoiceAmount,Disputed,SettledDate,PaperlessBill,DaysToSettle,DaysLate\r\n\
391,0379-NEVHP,4/6/2013,0000611365,1/2/2013,2/1/2013,55.94,No,1/15/2013,Paper,13,0\r\n\
406,8976-AMJEO,3/3/2012,0007900770,1/26/2013,2/25/2013,61.74,Yes,3/3/2013,Electronic,36,6\r\n\
391,0379-NEVHP,4/6/2013,0000611366,7/3/2013,8/2/2013,65.8,No,7/8/2013,Electronic,5,0\r\n";

    #[test]
    fn reads_rows_as_invoices_payments_and_attributes() {
        let s = read_ibm_csv(TEXT).unwrap();
        assert_eq!(s.facts.customers.len(), 2);
        assert_eq!(s.facts.invoices.len(), 3);
        assert_eq!(s.facts.invoices[2].customer_id, 1);
        assert_eq!(s.facts.invoices[2].total, 6580);
        assert_eq!(
            s.facts.allocations[1].applied_on,
            jiff::civil::date(2013, 3, 3)
        );
        assert_eq!(
            s.extra.invoices[1].disputed_on,
            Some(jiff::civil::date(2013, 1, 26))
        );
        assert_eq!(s.extra.invoices[0].paperless, Some(false));
    }

    #[test]
    fn bad_rows_are_located() {
        let bad = TEXT.replace("1/26/2013", "2013-01-26");
        match read_ibm_csv(&bad) {
            Err(PredictError::Sample { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        assert!(read_ibm_csv("a,b\n1,2\n").is_err());
    }
}
