//! Times generation and CSV writing:
//! `cargo run --release -p arflow-demo --example demo_timing -- 1000000 100000 /tmp/arflow-demo`

use std::path::PathBuf;
use std::time::Instant;

use arflow_demo::{DemoParams, stream, write_csv};
use jiff::civil::date;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let mut params = DemoParams::new(date(2025, 6, 30));
    params.invoices = arg(0, 1_000_000);
    params.customers = arg(1, 100_000);
    let dir = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("arflow-demo-timing"));

    let t = Instant::now();
    let chunks = stream(&params);
    println!("planned customers and issue dates in {:.2?}", t.elapsed());
    let (mut invoices, mut payments, mut allocations) = (0, 0, 0);
    for c in chunks {
        invoices += c.invoices.len();
        payments += c.payments.len();
        allocations += c.allocations.len();
    }
    println!(
        "generated {invoices} invoices, {payments} payments, {allocations} allocations in {:.2?}",
        t.elapsed()
    );

    let t = Instant::now();
    let counts = write_csv(&params, &dir)?;
    println!(
        "wrote {counts:?} to {} in {:.2?}",
        dir.display(),
        t.elapsed()
    );
    Ok(())
}
