//! The parser never panics, whatever bytes it is given.

use std::path::Path;

use arflow_domain::allocation::AllocationOrder;
use arflow_domain::model::Organization;
use arflow_domain::money::Currency;
use arflow_import::{Existing, PlanOptions, RecordKind, plan::plan};
use jiff::civil::date;
use proptest::prelude::*;

const KINDS: [RecordKind; 5] = [
    RecordKind::Customers,
    RecordKind::Contacts,
    RecordKind::Invoices,
    RecordKind::CreditNotes,
    RecordKind::Payments,
];

fn try_all(bytes: &[u8]) {
    let org = Organization {
        id: 1,
        slug: "d".into(),
        name: "d".into(),
        base_currency: Currency::USD,
        time_zone: "UTC".into(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
    };
    for kind in KINDS {
        let opts = PlanOptions {
            kind,
            mapping: None,
            allocation_order: AllocationOrder::OldestDueFirst,
            today: date(2024, 1, 1),
        };
        let _ = plan(
            bytes,
            "f.csv",
            &Existing::default(),
            &org,
            &opts,
            &mut |_| {},
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        try_all(&bytes);
    }

    #[test]
    fn arbitrary_rows_under_a_valid_header_never_panic(body in "(\\PC|[,\"\r\n\u{feff}]){0,300}") {
        for header in ["invoice_number,customer_id,issue_date,total,due_date,status\n", "customer_id,name,currency\n", "customer_id,received_on,amount,invoice_number\n"] {
            try_all(format!("{header}{body}").as_bytes());
        }
    }
}

/// Mutated copies of every fixture: byte flips, truncations, duplicated chunks.
#[test]
fn mutated_fixtures_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let original = std::fs::read(entry.path()).unwrap();
        if original.is_empty() {
            continue;
        }
        for _ in 0..60 {
            let mut b = original.clone();
            for _ in 0..(next() % 6 + 1) {
                let i = (next() as usize) % b.len().max(1);
                match next() % 5 {
                    0 => b[i] = next() as u8,
                    1 => b.truncate(i),
                    2 => b.insert(
                        i.min(b.len()),
                        [b'"', b',', b'\n', b'\r', 0xff][(next() % 5) as usize],
                    ),
                    3 => {
                        let chunk: Vec<u8> = b[i..].iter().take(40).copied().collect();
                        b.splice(i..i, chunk);
                    }
                    _ => b.extend(std::iter::repeat_n(b'9', 5000)),
                }
                if b.is_empty() {
                    break;
                }
            }
            try_all(&b);
        }
    }
}
