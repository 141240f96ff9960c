//! arflow's pure core: money, the receivables ledger and its analytics.
//!
//! Nothing in this crate performs I/O, reads the clock or draws randomness:
//! callers pass in the facts, the instant and the seed.

pub mod allocation;
pub mod analytics;
pub mod charges;
pub mod clock;
pub mod dunning;
pub mod fx;
pub mod ledger;
pub mod model;
pub mod money;
pub mod predict;

pub use jiff::civil::Date;
pub use money::{Currency, DecimalStyle, Money, MoneyError};
