//! Dated reference-rate tables shipped as data.
//!
//! Each table is a CSV (`valid_from,rate_bp`) embedded with `include_str!`
//! and parsed once on first use. The shipped tables are part of the program,
//! so a malformed one is a bug (the tests parse every table); lookups before
//! the first row are an error, lookups after the last row use the last known
//! rate, so the files must be updated whenever a central bank moves.

use std::sync::OnceLock;

use jiff::civil::Date;

use super::ChargeError;

/// A step function of dated rates in basis points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    pub name: &'static str,
    /// Strictly increasing `valid_from` dates with the rate from that day on.
    pub entries: Vec<(Date, i64)>,
}

impl RateTable {
    /// Parses `valid_from,rate_bp` rows; `#` comments, blank lines and the
    /// header are skipped. Dates must strictly increase.
    pub fn parse(name: &'static str, text: &str) -> Result<RateTable, ChargeError> {
        let mut entries: Vec<(Date, i64)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line == "valid_from,rate_bp" {
                continue;
            }
            let bad = |reason: String| ChargeError::MalformedRateTable {
                table: name,
                line: i + 1,
                reason,
            };
            let (d, r) = line
                .split_once(',')
                .ok_or_else(|| bad(format!("expected 'valid_from,rate_bp', got '{line}'")))?;
            let date: Date = d
                .trim()
                .parse()
                .map_err(|e| bad(format!("bad date '{}': {e}", d.trim())))?;
            let bp: i64 = r
                .trim()
                .parse()
                .map_err(|_| bad(format!("bad rate '{}' (integer basis points)", r.trim())))?;
            if let Some((prev, _)) = entries.last()
                && *prev >= date
            {
                return Err(bad(format!("{date} does not follow {prev}")));
            }
            entries.push((date, bp));
        }
        if entries.is_empty() {
            return Err(ChargeError::MalformedRateTable {
                table: name,
                line: 0,
                reason: "no rows".to_string(),
            });
        }
        Ok(RateTable { name, entries })
    }

    /// The rate in force on `date`: the last row on or before it.
    pub fn rate_on(&self, date: Date) -> Result<i64, ChargeError> {
        let idx = self.entries.partition_point(|(d, _)| *d <= date);
        match idx.checked_sub(1) {
            Some(i) => Ok(self.entries[i].1),
            None => Err(ChargeError::NoReferenceRate {
                table: self.name,
                date,
                first: self.entries[0].0,
            }),
        }
    }
}

const ECB_MRO_CSV: &str = include_str!("rates/ecb_mro.csv");
const BOE_BANK_RATE_CSV: &str = include_str!("rates/boe_bank_rate.csv");
const DE_BASISZINSSATZ_CSV: &str = include_str!("rates/de_basiszinssatz.csv");

fn shipped(
    cell: &'static OnceLock<RateTable>,
    name: &'static str,
    csv: &str,
) -> &'static RateTable {
    cell.get_or_init(|| {
        RateTable::parse(name, csv)
            .unwrap_or_else(|e| panic!("shipped rate table is malformed (a bug): {e}"))
    })
}

/// ECB main refinancing operations rate (EU Directive 2011/7/EU, France L441-10).
pub fn ecb_mro() -> &'static RateTable {
    static CELL: OnceLock<RateTable> = OnceLock::new();
    shipped(&CELL, "ECB main refinancing rate", ECB_MRO_CSV)
}

/// Bank of England Bank Rate (UK Late Payment Act 1998 reference rate).
pub fn boe_bank_rate() -> &'static RateTable {
    static CELL: OnceLock<RateTable> = OnceLock::new();
    shipped(&CELL, "Bank of England Bank Rate", BOE_BANK_RATE_CSV)
}

/// German Basiszinssatz (§ 247 BGB).
pub fn de_basiszinssatz() -> &'static RateTable {
    static CELL: OnceLock<RateTable> = OnceLock::new();
    shipped(&CELL, "Basiszinssatz (§ 247 BGB)", DE_BASISZINSSATZ_CSV)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn every_shipped_table_parses_and_covers_2019_onward() {
        for (name, csv) in [
            ("ecb", ECB_MRO_CSV),
            ("boe", BOE_BANK_RATE_CSV),
            ("de", DE_BASISZINSSATZ_CSV),
        ] {
            let t = RateTable::parse(name, csv).unwrap();
            assert!(t.entries[0].0 <= date(2019, 1, 1), "{name} starts too late");
        }
        // the accessors parse too (and would panic on a bad table)
        assert_eq!(ecb_mro().rate_on(date(2024, 12, 18)).unwrap(), 315);
        assert_eq!(boe_bank_rate().rate_on(date(2023, 8, 3)).unwrap(), 525);
        assert_eq!(de_basiszinssatz().rate_on(date(2023, 1, 1)).unwrap(), 162);
    }

    #[test]
    fn lookups_use_the_last_row_on_or_before_and_reject_dates_before_the_first() {
        let t =
            RateTable::parse("t", "valid_from,rate_bp\n2020-01-01,100\n2021-01-01,-50\n").unwrap();
        assert_eq!(t.rate_on(date(2020, 12, 31)), Ok(100));
        assert_eq!(t.rate_on(date(2021, 1, 1)), Ok(-50));
        assert_eq!(t.rate_on(date(2099, 1, 1)), Ok(-50));
        assert!(matches!(
            t.rate_on(date(2019, 12, 31)),
            Err(ChargeError::NoReferenceRate { .. })
        ));
    }

    #[test]
    fn malformed_tables_are_rejected_with_the_line() {
        for bad in [
            "2020-01-01;100",
            "2020-13-01,100",
            "2020-01-01,1.5",
            "2021-01-01,1\n2020-01-01,2",
            "# only a comment",
        ] {
            assert!(
                matches!(
                    RateTable::parse("t", bad),
                    Err(ChargeError::MalformedRateTable { .. })
                ),
                "{bad}"
            );
        }
    }

    /// § 247(1) BGB: on 1 January and 1 July the Basiszinssatz moves by as
    /// many points as the ECB's most recent MRO rate before that day moved
    /// since the previous adjustment. Checking this ties the two shipped
    /// tables to each other, so a typo in either shows up.
    #[test]
    fn basiszinssatz_follows_the_ecb_rate_as_section_247_bgb_requires() {
        let ecb = ecb_mro();
        let de = de_basiszinssatz();
        let mut prev = date(2019, 1, 1);
        for year in 2019..=2025 {
            for month in [1, 7] {
                let h = date(year, month, 1);
                if h <= prev {
                    continue;
                }
                let d_ecb = ecb.rate_on(h.yesterday().unwrap()).unwrap()
                    - ecb.rate_on(prev.yesterday().unwrap()).unwrap();
                let d_de = de.rate_on(h).unwrap() - de.rate_on(prev).unwrap();
                assert_eq!(d_de, d_ecb, "half-year starting {h}");
                prev = h;
            }
        }
    }
}
