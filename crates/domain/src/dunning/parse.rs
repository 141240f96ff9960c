//! Reading a policy file: structural parsing over spanned TOML values so that
//! every mistake is reported, each with its location.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::policy::{
    Anchor, Channel, Conditions, Consolidation, Fee, Policy, Repeat, Step, Tone, due_offsets,
};
use crate::money::{Currency, Money, MoneyError};

const ROOT_KEYS: &[&str] = &["name", "consolidation", "steps", "repeat"];
const STEP_KEYS: &[&str] = &[
    "anchor",
    "offset_days",
    "channel",
    "template",
    "tone",
    "conditions",
    "fee",
];
const CONDITION_KEYS: &[&str] = &["min_open_balance", "segments", "tags", "currencies"];
const FEE_KEYS: &[&str] = &["fixed", "percent", "monthly_rate"];
const REPEAT_KEYS: &[&str] = &["every_days", "max_times"];

/// What kind of mistake a [`PolicyError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyErrorKind {
    /// The text is not valid TOML.
    Syntax,
    UnknownKey,
    MissingKey,
    WrongType,
    /// A value of the right type that is not allowed (unknown anchor, negative offset, bad amount…).
    InvalidValue,
    /// The policy has no steps.
    Empty,
    /// Steps out of chronological order, or `after_previous_step` first.
    Order,
    Duplicate,
}

/// One mistake in a policy file, with its location.
///
/// Displays as `file:line:column: path: message`, e.g.
/// `policies/x.toml:12:5: steps[2].anchor: 'after_dew' is not an anchor (expected before_due, after_due, after_previous_step, after_broken_promise)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Where in the policy, e.g. `steps[2].anchor`; empty for syntax errors.
    pub path: String,
    pub kind: PolicyErrorKind,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// Parses and validates a policy written in the TOML format described in
/// [`policy`](super::policy). `file` is only used in error locations.
///
/// Returns every error found, sorted by position, not just the first.
pub fn parse_policy(text: &str, file: &str) -> Result<Policy, Vec<PolicyError>> {
    let mut cx = Cx {
        text,
        file,
        errors: Vec::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for e in syntax_errors {
            let span = e.span().unwrap_or(0..0);
            let message = e
                .message()
                .trim()
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ");
            cx.push(span, "", PolicyErrorKind::Syntax, message);
        }
        return Err(cx.finish());
    }
    let policy = cx.policy(root.get_ref());
    match policy {
        Some(p) if cx.errors.is_empty() => Ok(p),
        _ => Err(cx.finish()),
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

struct Cx<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<PolicyError>,
}

/// A step as read, kept even when some fields are wrong so that the
/// cross-step checks can still run on what is known.
struct Draft {
    span: Range<usize>,
    anchor: Option<(Anchor, Range<usize>)>,
    offset_days: Option<u32>,
    step: Option<Step>,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn get<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}

fn found(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string '{s}'"),
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(f) => format!("the float {}", f.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// Parses a plain decimal ("1.5", "-2", "3.25") scaled by 10^decimals.
/// `Err(true)` when it has more significant decimals than that.
fn scaled_decimal(s: &str, decimals: u32) -> Result<i64, bool> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(false);
    }
    if frac.len() > decimals as usize && frac[decimals as usize..].bytes().any(|b| b != b'0') {
        return Err(true);
    }
    let mut value: i64 = 0;
    for b in int.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or(false)?;
    }
    for i in 0..decimals as usize {
        let d = frac.as_bytes().get(i).map_or(0, |b| b - b'0');
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d)))
            .ok_or(false)?;
    }
    Ok(if negative { -value } else { value })
}

impl Cx<'_> {
    fn finish(mut self) -> Vec<PolicyError> {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn push(
        &mut self,
        span: Range<usize>,
        path: &str,
        kind: PolicyErrorKind,
        message: impl Into<String>,
    ) {
        let (line, column) = self.line_col(span.start);
        self.errors.push(PolicyError {
            file: self.file.to_string(),
            line,
            column,
            path: path.to_string(),
            kind,
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, v: &Value<'_>, path: &str, expected: &str) {
        let message = format!("expected {expected}, found {}", found(v.get_ref()));
        self.push(v.span(), path, PolicyErrorKind::WrongType, message);
    }

    fn check_keys(&mut self, table: &DeTable<'_>, path: &str, known: &[&str]) {
        for (k, _) in table.iter() {
            let key = k.get_ref().as_ref();
            if !known.contains(&key) {
                let message = format!("unknown key '{key}' (expected {})", known.join(", "));
                self.push(
                    k.span(),
                    &child(path, key),
                    PolicyErrorKind::UnknownKey,
                    message,
                );
            }
        }
    }

    fn missing(&mut self, span: Range<usize>, path: &str, key: &str, what: &str) {
        let message = format!("missing key '{key}' ({what})");
        self.push(
            span,
            &child(path, key),
            PolicyErrorKind::MissingKey,
            message,
        );
    }

    fn string<'v>(&mut self, v: &'v Value<'_>, path: &str) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(v, path, "a string");
                None
            }
        }
    }

    fn integer(&mut self, v: &Value<'_>, path: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    let message = format!("{} is too large", i.as_str());
                    self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
                    None
                }
            },
            _ => {
                self.wrong_type(v, path, "an integer");
                None
            }
        }
    }

    /// A count of days or times in `min..=36500`.
    fn count(&mut self, v: &Value<'_>, path: &str, min: i64) -> Option<u32> {
        let n = self.integer(v, path)?;
        if n < min {
            let message = if min == 0 {
                format!("{n} is negative (expected a number of days, 0 or more)")
            } else {
                format!("{n} is too small (expected {min} or more)")
            };
            self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
            return None;
        }
        if n > 36_500 {
            let message = format!("{n} is too large (expected at most 36500)");
            self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
            return None;
        }
        u32::try_from(n).ok()
    }

    fn named<T: Copy>(
        &mut self,
        v: &Value<'_>,
        path: &str,
        kind: &str,
        all: &[T],
        name: fn(&T) -> &'static str,
    ) -> Option<T> {
        let s = self.string(v, path)?;
        if let Some(t) = all.iter().find(|t| name(t) == s) {
            return Some(*t);
        }
        let valid: Vec<&str> = all.iter().map(name).collect();
        let message = format!("'{s}' is not {kind} (expected {})", valid.join(", "));
        self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
        None
    }

    fn table<'v, 'i>(&mut self, v: &'v Value<'i>, path: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, path, "a table");
                None
            }
        }
    }

    fn string_list(&mut self, v: &Value<'_>, path: &str) -> Option<Vec<(String, Range<usize>)>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, path, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match self.string(item, &item_path) {
                Some(s) if s.trim().is_empty() => {
                    self.push(
                        item.span(),
                        &item_path,
                        PolicyErrorKind::InvalidValue,
                        "empty string",
                    );
                    ok = false;
                }
                Some(s) => out.push((s.to_string(), item.span())),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// "15.00 EUR": a decimal amount with a decimal point, then an ISO 4217 code.
    fn money(&mut self, v: &Value<'_>, path: &str) -> Option<Money> {
        let s = self.string(v, path)?;
        let result = Money::parse_tagged(s);
        match result {
            Ok(m) if m.minor < 0 => {
                let message = format!("'{s}' is negative (expected an amount of 0 or more)");
                self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
                None
            }
            Ok(m) => Some(m),
            Err(e @ MoneyError::NotTagged(_)) => {
                self.push(v.span(), path, PolicyErrorKind::InvalidValue, e.to_string());
                None
            }
            Err(e) => {
                let message = format!("'{s}': {e} (expected e.g. \"15.00 EUR\")");
                self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
                None
            }
        }
    }

    /// A percentage (integer or float, at most two decimals, 0 < x ≤ 100) as basis points.
    fn basis_points(&mut self, v: &Value<'_>, path: &str) -> Option<u32> {
        let text = match v.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => i.as_str(),
            DeValue::Float(f) => f.as_str(),
            _ => {
                self.wrong_type(v, path, "a percentage (a number such as 1.5)");
                return None;
            }
        };
        let message = match scaled_decimal(text, 2) {
            Ok(bp) if bp > 0 && bp <= 10_000 => return u32::try_from(bp).ok(),
            Ok(_) => format!("{text} is out of range (expected more than 0 and at most 100)"),
            Err(true) => {
                format!("{text} has more than two decimals (rates are kept in basis points)")
            }
            Err(false) => format!("{text} is not a plain decimal percentage (expected e.g. 1.5)"),
        };
        self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
        None
    }

    fn policy(&mut self, root: &DeTable<'_>) -> Option<Policy> {
        self.check_keys(root, "", ROOT_KEYS);
        let name = match get(root, "name") {
            Some(v) => match self.string(v, "name") {
                Some(s) if s.trim().is_empty() => {
                    self.push(
                        v.span(),
                        "name",
                        PolicyErrorKind::InvalidValue,
                        "the name is empty",
                    );
                    None
                }
                other => other.map(str::to_string),
            },
            None => {
                self.missing(0..0, "", "name", "every policy needs a name");
                None
            }
        };
        let consolidation = match get(root, "consolidation") {
            Some(v) => self.named(
                v,
                "consolidation",
                Consolidation::KIND,
                Consolidation::ALL,
                Consolidation::as_str,
            ),
            None => Some(Consolidation::default()),
        };
        let steps = self.steps(root);
        let repeat = match get(root, "repeat") {
            Some(v) => self.repeat(v).map(Some),
            None => Some(None),
        };
        Some(Policy {
            name: name?,
            consolidation: consolidation?,
            steps: steps?,
            repeat: repeat?,
        })
    }

    fn repeat(&mut self, v: &Value<'_>) -> Option<Repeat> {
        let table = self.table(v, "repeat")?;
        self.check_keys(table, "repeat", REPEAT_KEYS);
        let every_days = match get(table, "every_days") {
            Some(e) => self.count(e, "repeat.every_days", 1),
            None => {
                self.missing(
                    v.span(),
                    "repeat",
                    "every_days",
                    "how many days between repeats",
                );
                None
            }
        };
        let max_times = match get(table, "max_times") {
            Some(m) => self.count(m, "repeat.max_times", 1).map(Some),
            None => Some(None),
        };
        Some(Repeat {
            every_days: every_days?,
            max_times: max_times?,
        })
    }

    fn steps(&mut self, root: &DeTable<'_>) -> Option<Vec<Step>> {
        let empty = "the policy has no steps (add at least one [[steps]] table)";
        let Some(v) = get(root, "steps") else {
            self.push(0..0, "steps", PolicyErrorKind::Empty, empty);
            return None;
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, "steps", "an array of tables ([[steps]])");
            return None;
        };
        if items.is_empty() {
            self.push(v.span(), "steps", PolicyErrorKind::Empty, empty);
            return None;
        }
        let drafts: Vec<Draft> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.step(item, &format!("steps[{i}]")))
            .collect();

        if let Some(Draft {
            anchor: Some((Anchor::AfterPreviousStep, span)),
            ..
        }) = drafts.first()
        {
            self.push(
                span.clone(),
                "steps[0].anchor",
                PolicyErrorKind::Order,
                "the first step cannot be after_previous_step (there is no previous step)",
            );
        }

        let days = due_offsets(
            drafts
                .iter()
                .map(|d| d.anchor.as_ref().map(|a| a.0).zip(d.offset_days)),
        );
        let mut latest: Option<(usize, i64)> = None;
        for (i, day) in days.iter().enumerate() {
            let Some(day) = *day else { continue };
            match latest {
                Some((j, before)) if day < before => {
                    let span = drafts[i]
                        .anchor
                        .as_ref()
                        .map_or(drafts[i].span.clone(), |a| a.1.clone());
                    let message = format!(
                        "this step falls {} but steps[{j}] falls {}: steps must be in chronological order",
                        describe_day(day),
                        describe_day(before)
                    );
                    self.push(
                        span,
                        &format!("steps[{i}]"),
                        PolicyErrorKind::Order,
                        message,
                    );
                }
                _ => latest = Some((i, day)),
            }
        }

        for i in 0..drafts.len() {
            let Some(step) = &drafts[i].step else {
                continue;
            };
            let duplicate = (0..i).find(|&j| {
                drafts[j].step.as_ref().is_some_and(|other| {
                    other.anchor == step.anchor
                        && other.offset_days == step.offset_days
                        && other.channel == step.channel
                        && other.template == step.template
                        && other.conditions == step.conditions
                })
            });
            if let Some(j) = duplicate {
                let message = format!(
                    "duplicates steps[{j}] (same anchor, offset_days, channel, template and conditions)"
                );
                let span = drafts[i].span.clone();
                self.push(
                    span,
                    &format!("steps[{i}]"),
                    PolicyErrorKind::Duplicate,
                    message,
                );
            }
        }

        drafts.into_iter().map(|d| d.step).collect()
    }

    fn step(&mut self, v: &Value<'_>, path: &str) -> Draft {
        let mut draft = Draft {
            span: v.span(),
            anchor: None,
            offset_days: None,
            step: None,
        };
        let Some(table) = self.table(v, path) else {
            return draft;
        };
        self.check_keys(table, path, STEP_KEYS);
        let span = v.span();
        let anchor = match get(table, "anchor") {
            Some(a) => {
                let parsed = self.named(
                    a,
                    &child(path, "anchor"),
                    Anchor::KIND,
                    Anchor::ALL,
                    Anchor::as_str,
                );
                draft.anchor = parsed.map(|p| (p, a.span()));
                parsed
            }
            None => {
                self.missing(span.clone(), path, "anchor", "what offset_days counts from");
                None
            }
        };
        let offset_days = match get(table, "offset_days") {
            Some(o) => self.count(o, &child(path, "offset_days"), 0),
            None => {
                self.missing(
                    span.clone(),
                    path,
                    "offset_days",
                    "days from the anchor, 0 or more",
                );
                None
            }
        };
        draft.offset_days = offset_days;
        let channel = match get(table, "channel") {
            Some(c) => self.named(
                c,
                &child(path, "channel"),
                Channel::KIND,
                Channel::ALL,
                Channel::as_str,
            ),
            None => {
                self.missing(span.clone(), path, "channel", "email, sms or task");
                None
            }
        };
        let template = match get(table, "template") {
            Some(t) => {
                let p = child(path, "template");
                match self.string(t, &p) {
                    Some(s)
                        if s.is_empty()
                            || s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                    {
                        let message = format!(
                            "'{s}' is not a template name (expected a non-empty name without spaces)"
                        );
                        self.push(t.span(), &p, PolicyErrorKind::InvalidValue, message);
                        None
                    }
                    other => other.map(str::to_string),
                }
            }
            None => {
                self.missing(
                    span.clone(),
                    path,
                    "template",
                    "the template to send or the task to create",
                );
                None
            }
        };
        let tone = match get(table, "tone") {
            Some(t) => self.named(t, &child(path, "tone"), Tone::KIND, Tone::ALL, Tone::as_str),
            None => {
                self.missing(
                    span.clone(),
                    path,
                    "tone",
                    "friendly, neutral, firm or final",
                );
                None
            }
        };
        let conditions = match get(table, "conditions") {
            Some(c) => self.conditions(c, &child(path, "conditions")),
            None => Some(Conditions::default()),
        };
        let fee = match get(table, "fee") {
            Some(f) => self.fee(f, &child(path, "fee")).map(Some),
            None => Some(None),
        };
        draft.step = (|| {
            Some(Step {
                anchor: anchor?,
                offset_days: offset_days?,
                channel: channel?,
                template: template?,
                tone: tone?,
                conditions: conditions?,
                fee: fee?,
            })
        })();
        draft
    }

    fn conditions(&mut self, v: &Value<'_>, path: &str) -> Option<Conditions> {
        let table = self.table(v, path)?;
        self.check_keys(table, path, CONDITION_KEYS);
        let min_open_balance = match get(table, "min_open_balance") {
            Some(m) => self.money(m, &child(path, "min_open_balance")).map(Some),
            None => Some(None),
        };
        let mut list = |key: &str| match get(table, key) {
            Some(l) => self.string_list(l, &child(path, key)),
            None => Some(Vec::new()),
        };
        let segments = list("segments");
        let tags = list("tags");
        let codes = list("currencies");
        let currencies = codes.and_then(|codes| {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, (code, span)) in codes.into_iter().enumerate() {
                match Currency::parse(&code) {
                    Ok(c) => out.push(c),
                    Err(e) => {
                        ok = false;
                        let p = format!("{}[{i}]", child(path, "currencies"));
                        self.push(span, &p, PolicyErrorKind::InvalidValue, e.to_string());
                    }
                }
            }
            ok.then_some(out)
        });
        let strings = |l: Vec<(String, Range<usize>)>| l.into_iter().map(|(s, _)| s).collect();
        Some(Conditions {
            min_open_balance: min_open_balance?,
            segments: segments.map(strings)?,
            tags: tags.map(strings)?,
            currencies: currencies?,
        })
    }

    fn fee(&mut self, v: &Value<'_>, path: &str) -> Option<Fee> {
        let table = self.table(v, path)?;
        self.check_keys(table, path, FEE_KEYS);
        let given: Vec<&str> = FEE_KEYS
            .iter()
            .copied()
            .filter(|k| get(table, k).is_some())
            .collect();
        if given.len() != 1 {
            let message = format!(
                "a fee needs exactly one of {} (found {})",
                FEE_KEYS.join(", "),
                if given.is_empty() {
                    "none".to_string()
                } else {
                    given.join(", ")
                }
            );
            self.push(v.span(), path, PolicyErrorKind::InvalidValue, message);
            return None;
        }
        let key = given[0];
        let value = get(table, key)?;
        let p = child(path, key);
        match key {
            "fixed" => match self.money(value, &p)? {
                m if m.minor == 0 => {
                    self.push(
                        value.span(),
                        &p,
                        PolicyErrorKind::InvalidValue,
                        "a fixed fee of 0 charges nothing (remove the fee instead)",
                    );
                    None
                }
                m => Some(Fee::Fixed(m)),
            },
            "percent" => self
                .basis_points(value, &p)
                .map(|basis_points| Fee::Percent { basis_points }),
            _ => self
                .basis_points(value, &p)
                .map(|basis_points| Fee::MonthlyRate { basis_points }),
        }
    }
}

fn describe_day(day: i64) -> String {
    match day {
        0 => "on the due date".to_string(),
        1 => "1 day after the due date".to_string(),
        -1 => "1 day before the due date".to_string(),
        d if d < 0 => format!("{} days before the due date", -d),
        d => format!("{d} days after the due date"),
    }
}
