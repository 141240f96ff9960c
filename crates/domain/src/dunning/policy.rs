//! The dunning policy model and its TOML format.
//!
//! A policy is a named, ordered list of steps, kept by the user in version
//! control (the shipped default is `policies/default.toml`). It is read with
//! [`parse_policy`](super::parse_policy), which reports **every** mistake with
//! its `file:line:column`, and written back with [`Policy::to_toml`].
//!
//! # Format
//!
//! ```toml
//! name = "default"            # required, non-empty
//! consolidation = "customer"  # optional: "customer" (default) or "invoice"
//!
//! [[steps]]                   # at least one step, in chronological order
//! anchor = "before_due"       # before_due | after_due | after_previous_step | after_broken_promise
//! offset_days = 3             # integer >= 0 (days before/after the anchor)
//! channel = "email"           # email | sms | task (a human task, e.g. "call the customer")
//! template = "upcoming"       # template name: non-empty, no whitespace
//! tone = "friendly"           # friendly | neutral | firm | final
//! # optional: the step applies only when every given condition holds
//! conditions = { min_open_balance = "500.00 EUR", segments = ["smb"], tags = ["vip"], currencies = ["EUR", "USD"] }
//! # optional: a late fee, exactly one of
//! fee = { fixed = "15.00 EUR" }   # or { percent = 1.5 } or { monthly_rate = 1.0 }
//!
//! [repeat]                    # optional: repeat the last step ...
//! every_days = 14             # ... every N days (N >= 1)
//! max_times = 3               # ... at most this many times (>= 1); omit for "until paid"
//! ```
//!
//! Keys:
//! - top level: `name`, `consolidation`, `steps`, `repeat`;
//! - a step: `anchor`, `offset_days`, `channel`, `template`, `tone`, `conditions`, `fee`;
//! - `conditions`: `min_open_balance`, `segments`, `tags`, `currencies`;
//! - `fee`: `fixed`, `percent`, `monthly_rate`;
//! - `repeat`: `every_days`, `max_times`.
//!
//! Anchors: `before_due` / `after_due` count from the invoice due date,
//! `after_previous_step` from the day the previous step ran (so it cannot be
//! the first step), `after_broken_promise` from the date of a promise to pay
//! that was not kept.
//!
//! Amounts are written `"<decimal> <ISO 4217 code>"` with a decimal point
//! (`"15.00 EUR"`, `"1500 JPY"`) and kept as integer minor units; percentages
//! and monthly rates are kept as integer basis points (`1.5` → 150), at most
//! two decimals. Money is never a float.
//!
//! # Validation
//!
//! Besides syntax, unknown keys (the known ones are listed), wrong types and
//! unknown values (the valid ones are listed), the parser checks that:
//! - the policy has a name and at least one step;
//! - `after_previous_step` is not the first step;
//! - steps are in chronological order: wherever two steps' days relative to
//!   the due date are both determined ([`Policy::schedule`]), a later step
//!   does not fall before an earlier one (e.g. a `before_due` step after an
//!   `after_due` step);
//! - no step duplicates another (same anchor, offset, channel, template and
//!   conditions);
//! - amounts and currencies are valid, fees and balances not negative.
//!
//! Error paths index steps from 0 (`steps[0]` is the first `[[steps]]`).
//! Consent to SMS and opt-outs are checked at run time, not here.

use std::fmt;

use crate::money::{Currency, Money};

/// What a step's `offset_days` counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// `offset_days` days before the invoice due date.
    BeforeDue,
    /// `offset_days` days after the invoice due date (0: on the due date).
    AfterDue,
    /// `offset_days` days after the previous step ran.
    AfterPreviousStep,
    /// `offset_days` days after a promise to pay was broken.
    AfterBrokenPromise,
}

/// How a step reaches the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    /// A task for a human collector, such as calling the customer.
    Task,
}

/// The tone of the message, from gentle to last warning.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Friendly,
    Neutral,
    Firm,
    Final,
}

/// How invoices are grouped into messages at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Consolidation {
    /// One message per customer and currency, listing every invoice at that step.
    #[default]
    Customer,
    /// One message per invoice.
    Invoice,
}

macro_rules! named_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// What the value is called in a policy file.
            pub const KIND: &'static str = $what;

            /// The name used in policy files.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// Parses the name used in policy files (exact, lowercase).
            pub fn parse(name: &str) -> Option<$ty> {
                match name {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(Anchor, "an anchor", {
    BeforeDue => "before_due",
    AfterDue => "after_due",
    AfterPreviousStep => "after_previous_step",
    AfterBrokenPromise => "after_broken_promise",
});
named_enum!(Channel, "a channel", { Email => "email", Sms => "sms", Task => "task" });
named_enum!(Tone, "a tone", {
    Friendly => "friendly",
    Neutral => "neutral",
    Firm => "firm",
    Final => "final",
});
named_enum!(Consolidation, "a consolidation", {
    Customer => "customer",
    Invoice => "invoice",
});

/// Conditions a step applies under; empty lists and `None` mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Conditions {
    /// Only when the customer's open balance (in this currency) is at least this.
    pub min_open_balance: Option<Money>,
    /// Only for customers in one of these segments.
    pub segments: Vec<String>,
    /// Only for customers with at least one of these tags.
    pub tags: Vec<String>,
    /// Only for invoices in one of these currencies.
    pub currencies: Vec<Currency>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.min_open_balance.is_none()
            && self.segments.is_empty()
            && self.tags.is_empty()
            && self.currencies.is_empty()
    }
}

/// A late fee charged at a step. Rates are integer basis points (1.5 % = 150).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fee {
    /// A fixed amount per invoice.
    Fixed(Money),
    /// A one-off percentage of the open amount, in basis points.
    Percent { basis_points: u32 },
    /// Interest per month overdue, in basis points.
    MonthlyRate { basis_points: u32 },
}

/// One step of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub anchor: Anchor,
    pub offset_days: u32,
    pub channel: Channel,
    pub template: String,
    pub tone: Tone,
    pub conditions: Conditions,
    pub fee: Option<Fee>,
}

/// Repeats the last step every `every_days` days, `max_times` times or until paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub every_days: u32,
    /// `None`: unbounded (until the invoice is paid or the policy changes).
    pub max_times: Option<u32>,
}

/// A validated dunning policy. Build one with [`parse_policy`](super::parse_policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub consolidation: Consolidation,
    /// Never empty, in chronological order.
    pub steps: Vec<Step>,
    pub repeat: Option<Repeat>,
}

impl Policy {
    /// Each step's day relative to the invoice due date, where it is
    /// determined: `before_due` → `-offset`, `after_due` → `+offset`,
    /// `after_previous_step` → previous + offset. `None` for
    /// `after_broken_promise` steps (they depend on a promise date) and for
    /// `after_previous_step` steps that follow one.
    pub fn schedule(&self) -> Vec<Option<i64>> {
        due_offsets(self.steps.iter().map(|s| Some((s.anchor, s.offset_days))))
    }

    /// The policy in its TOML format; [`parse_policy`](super::parse_policy)
    /// reads it back to an equal policy.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("name = {}\n", quote(&self.name)));
        out.push_str(&format!(
            "consolidation = {}\n",
            quote(self.consolidation.as_str())
        ));
        for step in &self.steps {
            out.push_str("\n[[steps]]\n");
            out.push_str(&format!("anchor = {}\n", quote(step.anchor.as_str())));
            out.push_str(&format!("offset_days = {}\n", step.offset_days));
            out.push_str(&format!("channel = {}\n", quote(step.channel.as_str())));
            out.push_str(&format!("template = {}\n", quote(&step.template)));
            out.push_str(&format!("tone = {}\n", quote(step.tone.as_str())));
            if !step.conditions.is_empty() {
                let c = &step.conditions;
                let mut parts = Vec::new();
                if let Some(m) = c.min_open_balance {
                    parts.push(format!("min_open_balance = {}", quote(&m.to_string())));
                }
                if !c.segments.is_empty() {
                    parts.push(format!("segments = {}", quote_list(&c.segments)));
                }
                if !c.tags.is_empty() {
                    parts.push(format!("tags = {}", quote_list(&c.tags)));
                }
                if !c.currencies.is_empty() {
                    let codes: Vec<String> =
                        c.currencies.iter().map(|c| c.code().to_string()).collect();
                    parts.push(format!("currencies = {}", quote_list(&codes)));
                }
                out.push_str(&format!("conditions = {{ {} }}\n", parts.join(", ")));
            }
            match step.fee {
                None => {}
                Some(Fee::Fixed(m)) => {
                    out.push_str(&format!("fee = {{ fixed = {} }}\n", quote(&m.to_string())));
                }
                Some(Fee::Percent { basis_points }) => {
                    out.push_str(&format!(
                        "fee = {{ percent = {} }}\n",
                        format_basis_points(basis_points)
                    ));
                }
                Some(Fee::MonthlyRate { basis_points }) => {
                    out.push_str(&format!(
                        "fee = {{ monthly_rate = {} }}\n",
                        format_basis_points(basis_points)
                    ));
                }
            }
        }
        if let Some(repeat) = self.repeat {
            out.push_str("\n[repeat]\n");
            out.push_str(&format!("every_days = {}\n", repeat.every_days));
            if let Some(max) = repeat.max_times {
                out.push_str(&format!("max_times = {max}\n"));
            }
        }
        out
    }
}

/// Days relative to the due date for a sequence of (anchor, offset) pairs;
/// `None` entries (steps that failed to parse) are undetermined.
pub(crate) fn due_offsets(steps: impl Iterator<Item = Option<(Anchor, u32)>>) -> Vec<Option<i64>> {
    let mut out: Vec<Option<i64>> = Vec::new();
    for step in steps {
        let day = step.and_then(|(anchor, offset)| {
            let offset = i64::from(offset);
            match anchor {
                Anchor::BeforeDue => Some(-offset),
                Anchor::AfterDue => Some(offset),
                Anchor::AfterPreviousStep => out.last().copied().flatten().map(|p| p + offset),
                Anchor::AfterBrokenPromise => None,
            }
        });
        out.push(day);
    }
    out
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// 150 → "1.50" (a TOML float).
fn format_basis_points(bp: u32) -> String {
    format!("{}.{:02}", bp / 100, bp % 100)
}
