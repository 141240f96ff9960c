//! Human-readable tables and CSV output.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement};

pub struct Table {
    inner: comfy_table::Table,
    right_align_from: usize,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        let mut inner = comfy_table::Table::new();
        inner
            .load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header.to_vec());
        Table {
            inner,
            right_align_from: usize::MAX,
        }
    }

    /// Right-aligns columns from `col` on (numbers).
    pub fn numeric_from(mut self, col: usize) -> Table {
        self.right_align_from = col;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.inner.add_row(cells);
    }

    pub fn print(mut self) {
        if self.right_align_from != usize::MAX {
            let n = self.inner.column_count();
            for c in self.right_align_from..n {
                if let Some(col) = self.inner.column_mut(c) {
                    col.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
        println!("{}", self.inner);
    }
}

/// Writes rows as CSV to stdout.
pub fn print_csv(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    w.flush()?;
    Ok(())
}
