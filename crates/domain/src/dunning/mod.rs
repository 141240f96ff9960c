//! Dunning: the policies that decide when and how customers are reminded of
//! what they owe.
//!
//! - [`policy`]: the policy model, its TOML format and its validation;
//! - [`records`]: holds, disputes, promises, step progress, outbox messages,
//!   tasks, charges and the organization's dunning settings;
//! - [`calendar`]: the send window in the customer's time zone;
//! - [`planner`]: the pure planner that decides what is due now and explains
//!   every open invoice.

pub mod calendar;
pub mod planner;
pub mod policy;
pub mod records;

mod parse;

#[cfg(test)]
mod tests;

pub use parse::{PolicyError, PolicyErrorKind, parse_policy};
pub use policy::{Anchor, Channel, Conditions, Consolidation, Fee, Policy, Repeat, Step, Tone};

#[cfg(test)]
mod planner_tests;

/// The shipped default policy (`policies/default.toml`), used until the
/// organization stores its own policy named `default`.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../../policies/default.toml");
