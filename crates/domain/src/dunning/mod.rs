//! Dunning: the policies that decide when and how customers are reminded of
//! what they owe.
//!
//! This module holds the policy model, its TOML format and its validation
//! ([`policy`]). Planning actual reminders from a policy and the ledger comes
//! later and builds on [`Policy::schedule`].

pub mod policy;

mod parse;

#[cfg(test)]
mod tests;

pub use parse::{PolicyError, PolicyErrorKind, parse_policy};
pub use policy::{Anchor, Channel, Conditions, Consolidation, Fee, Policy, Repeat, Step, Tone};
