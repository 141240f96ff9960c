//! Dunning: the organization's settings in words and the pause-all-sending
//! switch, the policies (read, edit, create), the plan (what `arflow dunning
//! plan` shows: every open invoice with its decision and the actions a run
//! would take now, or on another day) and the outbox (every message, and one
//! message with its delivery history and content).
//!
//! A message's HTML part is never put into our pages as markup: it is text
//! the templates produced from customer data, and our origin's pages must not
//! run or style anything they did not ship. The page shows the text part in a
//! `<pre>` (what the customer reads) and the HTML source escaped in a
//! `<details>` block. We do not serve the HTML as its own document either:
//! every response gets the application's one CSP from the middleware, so a
//! laxer per-document policy could not be set, and a same-origin document
//! with someone else's markup is attack surface for no gain.
//!
//! Also here: small helpers the other admin pages (import, settings, audit)
//! share: the organization and its zone, local times, links with queries,
//! pagers.

use std::collections::{BTreeMap, HashMap};

use arflow_domain::charges::Regime;
use arflow_domain::dunning::planner::describe_step;
use arflow_domain::dunning::records::{
    AssignmentScope, DunningSettings, MessageStatus, OutboxMessage, SendWindow,
};
use arflow_domain::dunning::{Channel, Fee, Policy, parse_policy};
use arflow_domain::model::{Organization, Stored};
use arflow_domain::money::{Money, format_minor};
use arflow_dunning::{DunningError, Snapshot};
use arflow_store::{EventFilter, OutboxFilter, Store};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::{Caller, percent_encode};
use crate::problem::{AppError, PageError};
use crate::routes::{ADMIN, Route, VIEWER};

pub fn routes() -> Vec<Route> {
    vec![
        Route::page(Method::GET, "/dunning", VIEWER, dunning_page),
        Route::page(Method::POST, "/dunning/pause", ADMIN, pause),
        Route::page(Method::POST, "/dunning/policies", ADMIN, create_policy),
        Route::page(Method::GET, "/dunning/policies/{name}", VIEWER, policy_page),
        Route::page(Method::POST, "/dunning/policies/{name}", ADMIN, save_policy),
        Route::page(Method::GET, "/dunning/plan", VIEWER, plan_page),
        Route::page(Method::GET, "/dunning/outbox", VIEWER, outbox_page),
        Route::page(Method::GET, "/dunning/outbox/{id}", VIEWER, message_page),
    ]
}

// ---------------------------------------------------------------------------
// Helpers shared by the admin pages.

/// Rows per page in the plan, outbox and audit lists.
pub(crate) const PAGE_SIZE: usize = 50;

/// The caller's organization (never one named by the request).
pub(crate) fn organization(store: &dyn Store, org: i64) -> Result<Organization, AppError> {
    store
        .organization(org)?
        .ok_or_else(|| AppError::NotFound(format!("organization #{org} was not found")))
}

/// The organization's zone; UTC if the stored name is unknown (it is
/// validated when set, so only a damaged database gets here).
pub(crate) fn zone(org: &Organization) -> TimeZone {
    TimeZone::get(&org.time_zone).unwrap_or(TimeZone::UTC)
}

/// "2026-12-03 10:00 CET".
pub(crate) fn local(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// A path segment: like `percent_encode`, and '/' too.
pub(crate) fn segment(s: &str) -> String {
    percent_encode(s).replace('/', "%2F")
}

/// The customer page.
pub(crate) fn customer_href(key: &str) -> String {
    format!("/customers/{}", segment(key))
}

/// The invoice in the invoice list (there is no page per invoice).
pub(crate) fn invoice_href(number: &str) -> String {
    href("/invoices", &[("state", "all"), ("q", number)])
}

/// A trimmed, non-empty query or form value.
pub(crate) fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `path?k=v&...` with the non-empty values percent-encoded.
pub(crate) fn href(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Links to the previous and next page, and what this page shows.
#[derive(Debug, Serialize)]
pub(crate) struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
    pub summary: String,
}

impl Pager {
    /// Page `page` (1-based) of `total` rows; `link(n)` is page n's address.
    pub fn numbered(page: usize, total: usize, link: impl Fn(usize) -> String) -> Pager {
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let first = (page - 1) * PAGE_SIZE;
        let summary = if total == 0 {
            "Nothing to show".to_string()
        } else {
            format!(
                "{}–{} of {total} · page {page} of {pages}",
                (first + 1).min(total),
                (first + PAGE_SIZE).min(total)
            )
        };
        Pager {
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            summary,
        }
    }
}

/// A 1-based page number from a query value; anything else is page 1.
pub(crate) fn page_number(v: &Option<String>) -> usize {
    v.as_deref()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|n| (1..=1_000_000).contains(n))
        .unwrap_or(1)
}

#[derive(Debug, Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

// ---------------------------------------------------------------------------
// The settings in words.

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "Monday"),
    (Weekday::Tuesday, "Tuesday"),
    (Weekday::Wednesday, "Wednesday"),
    (Weekday::Thursday, "Thursday"),
    (Weekday::Friday, "Friday"),
    (Weekday::Saturday, "Saturday"),
    (Weekday::Sunday, "Sunday"),
];

/// "Monday to Friday", "Monday, Wednesday and Friday", "no day".
pub(crate) fn days_in_words(days: &[Weekday]) -> String {
    let on: Vec<usize> = (0..7).filter(|i| days.contains(&WEEKDAYS[*i].0)).collect();
    match on.as_slice() {
        [] => "no day (nothing is ever sent)".to_string(),
        [one] => WEEKDAYS[*one].1.to_string(),
        all if all.len() == 7 => "every day of the week".to_string(),
        run if run.len() > 2 && run.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!(
                "{} to {}",
                WEEKDAYS[run[0]].1,
                WEEKDAYS[run[run.len() - 1]].1
            )
        }
        list => {
            let names: Vec<&str> = list.iter().map(|i| WEEKDAYS[*i].1).collect();
            format!(
                "{} and {}",
                names[..names.len() - 1].join(", "),
                names[names.len() - 1]
            )
        }
    }
}

fn window_in_words(w: &SendWindow, org_zone: &str) -> String {
    format!(
        "{} to {}, {}, in each customer's own time zone ({org_zone}, the organization's zone, for customers without one)",
        w.start.strftime("%H:%M"),
        w.end.strftime("%H:%M"),
        days_in_words(&w.days)
    )
}

pub(crate) fn regime_in_words(r: Option<Regime>) -> String {
    match r {
        None => "None: reminders claim no statutory interest or compensation".to_string(),
        Some(r) => format!(
            "{r}: statutory interest and fixed compensation are computed and shown on reminders"
        ),
    }
}

#[derive(Serialize)]
struct Fact {
    id: &'static str,
    label: &'static str,
    text: String,
}

fn settings_in_words(s: &DunningSettings, org: &Organization) -> Vec<Fact> {
    let holidays = if s.holidays.is_empty() {
        "None".to_string()
    } else {
        let list: Vec<String> = s.holidays.iter().map(ToString::to_string).collect();
        format!("No message goes out on {}", list.join(", "))
    };
    let thresholds = if s.min_balance.is_empty() {
        "None: every open balance is chased".to_string()
    } else {
        let list: Vec<String> = s.min_balance.iter().map(ToString::to_string).collect();
        format!(
            "Invoices whose open balance is below {} (per currency) are not chased",
            list.join(", ")
        )
    };
    let days = |n: u32| if n == 1 { "day" } else { "days" };
    vec![
        Fact {
            id: "setting-default-policy",
            label: "Default policy",
            text: format!(
                "'{}', for invoices with no invoice, customer or segment assignment",
                s.default_policy
            ),
        },
        Fact {
            id: "setting-send-window",
            label: "Send window",
            text: window_in_words(&s.send_window, &org.time_zone),
        },
        Fact {
            id: "setting-holidays",
            label: "Holidays",
            text: holidays,
        },
        Fact {
            id: "setting-min-gap",
            label: "Minimum gap",
            text: format!(
                "At least {} {} between two messages to the same customer",
                s.min_gap_days,
                days(s.min_gap_days)
            ),
        },
        Fact {
            id: "setting-weekly-cap",
            label: "Weekly cap",
            text: format!(
                "At most {} message{} to one customer in any 7 days",
                s.weekly_cap,
                if s.weekly_cap == 1 { "" } else { "s" }
            ),
        },
        Fact {
            id: "setting-thresholds",
            label: "Minimum balance",
            text: thresholds,
        },
        Fact {
            id: "setting-interest",
            label: "Statutory interest",
            text: regime_in_words(s.interest_regime),
        },
        Fact {
            id: "setting-promise-grace",
            label: "Promise grace",
            text: format!(
                "A promise to pay is broken {} {} after the promised date if it was not kept",
                s.promise_grace_days,
                days(s.promise_grace_days)
            ),
        },
        Fact {
            id: "setting-started-on",
            label: "Dunning started",
            text: s.started_on.map_or_else(
                || {
                    "Not yet: the first run starts it (steps dated before then are not caught up)"
                        .to_string()
                },
                |d| format!("On {d}; steps dated before then were not caught up"),
            ),
        },
    ]
}

// ---------------------------------------------------------------------------
// GET /dunning

#[derive(Serialize)]
struct PolicyRow {
    name: String,
    href: String,
    steps: usize,
    consolidation: &'static str,
    repeat: Option<String>,
    stored: bool,
    is_default: bool,
    assignments: Vec<String>,
}

fn scope_words(s: &AssignmentScope) -> String {
    match s {
        AssignmentScope::Invoice(k) => format!("invoice {k}"),
        AssignmentScope::Customer(k) => format!("customer {k}"),
        AssignmentScope::Segment(k) => format!("segment {k}"),
    }
}

fn repeat_words(p: &Policy) -> Option<String> {
    p.repeat.map(|r| match r.max_times {
        Some(n) => format!(
            "the last step repeats every {} days, at most {n} times",
            r.every_days
        ),
        None => format!(
            "the last step repeats every {} days until paid",
            r.every_days
        ),
    })
}

pub(crate) fn policy_href(name: &str) -> String {
    format!("/dunning/policies/{}", segment(name))
}

/// What the dunning page shows, read in one go.
struct Overview {
    org: Organization,
    settings: DunningSettings,
    policies: Vec<PolicyRow>,
    problem: Option<String>,
}

fn load_overview(store: &dyn Store, org_id: i64) -> Result<Overview, AppError> {
    let org = organization(store, org_id)?;
    let settings = store.dunning_settings(org_id)?;
    let stored: Vec<String> = store
        .policies(org_id)?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let assignments = store.policy_assignments(org_id)?;
    let (parsed, problem) = match arflow_dunning::snapshot::load_policies(store, org_id) {
        Ok(p) => (p, None),
        Err(DunningError::Store(e)) => return Err(e.into()),
        Err(e) => (HashMap::new(), Some(e.to_string())),
    };
    let mut names: Vec<String> = stored.clone();
    if !names.iter().any(|n| n == "default") {
        names.push("default".to_string());
    }
    names.sort();
    let policies = names
        .into_iter()
        .map(|name| {
            let p = parsed.get(&name);
            PolicyRow {
                href: policy_href(&name),
                steps: p.map_or(0, |p| p.steps.len()),
                consolidation: p.map_or("", |p| p.consolidation.as_str()),
                repeat: p.and_then(repeat_words),
                stored: stored.contains(&name),
                is_default: name == settings.default_policy,
                assignments: assignments
                    .iter()
                    .filter(|a| a.policy == name)
                    .map(|a| scope_words(&a.scope))
                    .collect(),
                name,
            }
        })
        .collect();
    Ok(Overview {
        org,
        settings,
        policies,
        problem,
    })
}

/// What was typed in the new-policy form, and what is wrong with it.
#[derive(Default, Serialize)]
struct NewPolicyForm {
    name: String,
    from: String,
    error: Option<String>,
}

async fn render_dunning(
    app: &AppState,
    caller: &Caller,
    flash: Option<&str>,
    form: NewPolicyForm,
    status: StatusCode,
) -> Result<Response, PageError> {
    let org_id = caller.org;
    let o = app
        .blocking(move |store| load_overview(store, org_id))
        .await?;
    let facts = settings_in_words(&o.settings, &o.org);
    let mut r = app.views.render(
        "dunning.html",
        super::chrome(
            caller,
            &o.org.name,
            "dunning",
            "Dunning",
            flash,
            context! {
                paused => o.settings.paused,
                facts => facts,
                policies => o.policies,
                policy_problem => o.problem,
                new_policy => form,
            },
        ),
    )?;
    *r.status_mut() = status;
    Ok(r)
}

async fn dunning_page(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<OkQuery>,
) -> Result<Response, PageError> {
    render_dunning(
        &app,
        &caller,
        super::flash(q.ok.as_deref()),
        NewPolicyForm {
            from: "default".to_string(),
            ..NewPolicyForm::default()
        },
        StatusCode::OK,
    )
    .await
}

// ---------------------------------------------------------------------------
// POST /dunning/pause

#[derive(Debug, Deserialize)]
pub struct PauseForm {
    paused: String,
}

async fn pause(
    State(app): State<AppState>,
    caller: Caller,
    Form(f): Form<PauseForm>,
) -> Result<Response, PageError> {
    let paused = match f.paused.trim() {
        "true" => true,
        "false" => false,
        other => {
            return Err(AppError::invalid("paused", Some(other), "must be true or false").into());
        }
    };
    let (org, actor, now) = (caller.org, caller.email.clone(), app.clock.now());
    app.blocking(move |store| {
        let mut s = store.dunning_settings(org)?;
        if s.paused != paused {
            s.paused = paused;
            store.set_dunning_settings(org, &s, &actor, now)?;
        }
        Ok(())
    })
    .await?;
    let code = if paused { "paused" } else { "resumed" };
    Ok(Redirect::to(&format!("/dunning?ok={code}")).into_response())
}

// ---------------------------------------------------------------------------
// Policies

/// Policy names: what the URL, the store and the TOML `name` share.
fn check_policy_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("give the new policy a name".to_string());
    }
    if name.chars().count() > 64 {
        return Err("a policy name has at most 64 characters".to_string());
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if !name.chars().all(ok_char) {
        return Err(
            "a policy name uses only lower-case letters a-z, digits, '-' and '_' (e.g. enterprise-eu)"
                .to_string(),
        );
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("a policy name starts with a letter or a digit".to_string());
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct NewPolicy {
    name: Option<String>,
    from: Option<String>,
}

async fn create_policy(
    State(app): State<AppState>,
    caller: Caller,
    Form(f): Form<NewPolicy>,
) -> Result<Response, PageError> {
    let name = f.name.unwrap_or_default().trim().to_string();
    let from = given(&f.from).unwrap_or_else(|| "default".to_string());
    let fail = |error: String| NewPolicyForm {
        name: name.clone(),
        from: from.clone(),
        error: Some(error),
    };
    if let Err(e) = check_policy_name(&name) {
        return render_dunning(
            &app,
            &caller,
            None,
            fail(e),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let (org, actor, now) = (caller.org, caller.email.clone(), app.clock.now());
    let (n, base) = (name.clone(), from.clone());
    let outcome = app
        .blocking(move |store| {
            let stored = store.policies(org)?;
            if stored.iter().any(|p| p.name == n) || n == "default" {
                return Ok(Err(format!(
                    "a policy named '{n}' already exists: open it to edit it"
                )));
            }
            let policies = match arflow_dunning::snapshot::load_policies(store, org) {
                Ok(p) => p,
                Err(DunningError::Store(e)) => return Err(e.into()),
                Err(e) => return Ok(Err(e.to_string())),
            };
            let Some(template) = policies.get(&base) else {
                return Ok(Err(format!("there is no policy '{base}' to start from")));
            };
            let policy = Policy {
                name: n.clone(),
                ..template.clone()
            };
            store.put_policy(org, &n, &policy.to_toml(), &actor, now)?;
            Ok(Ok(()))
        })
        .await?;
    match outcome {
        Ok(()) => {
            Ok(Redirect::to(&format!("{}?ok=policy_created", policy_href(&name))).into_response())
        }
        Err(e) => {
            render_dunning(
                &app,
                &caller,
                None,
                fail(e),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Serialize)]
struct StepRow {
    number: usize,
    when: String,
    anchor: &'static str,
    offset_days: u32,
    channel: &'static str,
    template: String,
    tone: &'static str,
    conditions: Vec<String>,
    fee: Option<String>,
}

fn basis_points(bp: u32) -> String {
    format!("{}.{:02} %", bp / 100, bp % 100)
}

fn step_rows(p: &Policy) -> Vec<StepRow> {
    p.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let c = &s.conditions;
            let mut conditions = Vec::new();
            if let Some(m) = c.min_open_balance {
                conditions.push(format!("open balance at least {m}"));
            }
            if !c.segments.is_empty() {
                conditions.push(format!("segment {}", c.segments.join(" or ")));
            }
            if !c.tags.is_empty() {
                conditions.push(format!("tagged {}", c.tags.join(" or ")));
            }
            if !c.currencies.is_empty() {
                let codes: Vec<&str> = c.currencies.iter().map(|c| c.code()).collect();
                conditions.push(format!("in {}", codes.join(" or ")));
            }
            StepRow {
                number: i + 1,
                when: describe_step(s),
                anchor: s.anchor.as_str(),
                offset_days: s.offset_days,
                channel: s.channel.as_str(),
                template: s.template.clone(),
                tone: s.tone.as_str(),
                conditions,
                fee: s.fee.map(|f| match f {
                    Fee::Fixed(m) => format!("{m} per invoice"),
                    Fee::Percent { basis_points: bp } => {
                        format!("{} of the open amount", basis_points(bp))
                    }
                    Fee::MonthlyRate { basis_points: bp } => {
                        format!("{} per month overdue", basis_points(bp))
                    }
                }),
            }
        })
        .collect()
}

/// One located mistake in a policy text.
#[derive(Debug, Serialize)]
struct SourceError {
    line: usize,
    column: usize,
    path: String,
    message: String,
}

/// What the policy page shows.
struct PolicyView {
    org: Organization,
    name: String,
    /// The stored text, or the shipped default's.
    source: String,
    stored: Option<Timestamp>,
    is_default: bool,
    assignments: Vec<String>,
}

fn load_policy(store: &dyn Store, org_id: i64, name: &str) -> Result<PolicyView, AppError> {
    let org = organization(store, org_id)?;
    let stored = store.policies(org_id)?.into_iter().find(|p| p.name == name);
    let (source, updated) = match stored {
        Some(p) => (p.source, Some(p.updated_at)),
        None if name == "default" => (
            arflow_domain::dunning::DEFAULT_POLICY_TOML.to_string(),
            None,
        ),
        None => {
            return Err(AppError::NotFound(format!(
                "there is no policy named '{name}'"
            )));
        }
    };
    let settings = store.dunning_settings(org_id)?;
    let assignments = store
        .policy_assignments(org_id)?
        .iter()
        .filter(|a| a.policy == name)
        .map(|a| scope_words(&a.scope))
        .collect();
    Ok(PolicyView {
        org,
        name: name.to_string(),
        source,
        stored: updated,
        is_default: settings.default_policy == name,
        assignments,
    })
}

/// Renders the policy page; `draft` is the text being edited (with its
/// mistakes) when it differs from what is stored.
async fn render_policy(
    app: &AppState,
    caller: &Caller,
    name: String,
    flash: Option<&str>,
    draft: Option<(String, Vec<SourceError>)>,
) -> Result<Response, PageError> {
    let org_id = caller.org;
    let n = name.clone();
    let v = app
        .blocking(move |store| load_policy(store, org_id, &n))
        .await?;
    let tz = zone(&v.org);
    // The steps table shows what is stored (and used), not the draft.
    let (steps, consolidation, repeat, stored_problem) =
        match parse_policy(&v.source, &format!("policy '{}'", v.name)) {
            Ok(p) => (
                step_rows(&p),
                p.consolidation.as_str(),
                repeat_words(&p),
                None,
            ),
            Err(errors) => (
                Vec::new(),
                "",
                None,
                Some(
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            ),
        };
    let status = if draft.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let (text, errors) = draft.unwrap_or_else(|| (v.source.clone(), Vec::new()));
    let mut r = app.views.render(
        "policy.html",
        super::chrome(
            caller,
            &v.org.name,
            "dunning",
            &format!("Policy {}", v.name),
            flash,
            context! {
                policy_name => v.name,
                action => policy_href(&name),
                source => v.source,
                stored => v.stored.is_some(),
                updated_at => v.stored.map(|t| local(t, &tz)),
                is_default => v.is_default,
                assignments => v.assignments,
                steps => steps,
                consolidation => consolidation,
                repeat => repeat,
                stored_problem => stored_problem,
                draft => text,
                errors => errors,
            },
        ),
    )?;
    *r.status_mut() = status;
    Ok(r)
}

async fn policy_page(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OkQuery>,
) -> Result<Response, PageError> {
    render_policy(&app, &caller, name, super::flash(q.ok.as_deref()), None).await
}

#[derive(Debug, Deserialize)]
pub struct PolicySource {
    source: String,
}

/// The line and column of the top-level `name` key, for the name check.
fn name_key_position(text: &str) -> (usize, usize) {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('[') {
            break;
        }
        if let Some(rest) = t.strip_prefix("name")
            && rest.trim_start().starts_with('=')
        {
            return (i + 1, line.len() - t.len() + 1);
        }
    }
    (1, 1)
}

async fn save_policy(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Form(f): Form<PolicySource>,
) -> Result<Response, PageError> {
    // Browsers send textareas with CRLF line ends; store what the user sees.
    let text = f.source.replace("\r\n", "\n");
    // The policy must exist (or be the shipped default) to be edited here.
    let (org, n) = (caller.org, name.clone());
    app.blocking(move |store| load_policy(store, org, &n).map(|_| ()))
        .await?;
    let errors: Vec<SourceError> = match parse_policy(&text, &name) {
        Ok(p) if p.name == name => Vec::new(),
        Ok(p) => {
            let (line, column) = name_key_position(&text);
            vec![SourceError {
                line,
                column,
                path: "name".to_string(),
                message: format!(
                    "the text names the policy '{}', but this is policy '{name}': keep name = \"{name}\" (create a new policy to use another name)",
                    p.name
                ),
            }]
        }
        Err(errors) => errors
            .into_iter()
            .map(|e| SourceError {
                line: e.line,
                column: e.column,
                path: e.path,
                message: e.message,
            })
            .collect(),
    };
    if !errors.is_empty() {
        return render_policy(&app, &caller, name, None, Some((text, errors))).await;
    }
    let (org, actor, now, n) = (
        caller.org,
        caller.email.clone(),
        app.clock.now(),
        name.clone(),
    );
    app.blocking(move |store| {
        let unchanged = store
            .policies(org)?
            .iter()
            .any(|p| p.name == n && p.source == text);
        if !unchanged {
            store.put_policy(org, &n, &text, &actor, now)?;
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("{}?ok=policy_saved", policy_href(&name))).into_response())
}

// ---------------------------------------------------------------------------
// GET /dunning/plan

const DECISIONS: [(&str, &str); 6] = [
    ("due", "Due now"),
    ("deferred", "Deferred"),
    ("waiting", "Waiting"),
    ("finished", "Finished"),
    ("paused", "Paused"),
    ("stopped", "Not chased"),
];

#[derive(Debug, Deserialize)]
pub struct PlanQuery {
    date: Option<String>,
    customer: Option<String>,
    decision: Option<String>,
    page: Option<String>,
    apage: Option<String>,
}

#[derive(Serialize)]
struct DecisionRow {
    invoice: String,
    invoice_href: String,
    customer: String,
    customer_href: String,
    customer_name: String,
    due_date: String,
    open: i64,
    currency: &'static str,
    policy: Option<String>,
    policy_href: Option<String>,
    state: &'static str,
    /// The badge style of the state.
    badge: &'static str,
    step: Option<String>,
    why: String,
    skipped: Vec<String>,
}

#[derive(Serialize)]
struct ActionRow {
    key: String,
    customer: String,
    customer_href: String,
    customer_name: String,
    channel: &'static str,
    requested_channel: &'static str,
    fallback_reason: Option<String>,
    recipient: Option<String>,
    policy: String,
    step: String,
    template: String,
    tone: &'static str,
    invoices: Vec<String>,
    open: i64,
    currency: &'static str,
    send_at: String,
    when: String,
    charges: Vec<String>,
}

#[derive(Serialize)]
struct BrokenRow {
    promise: i64,
    customer: String,
    customer_href: String,
    promised: String,
    promised_on: String,
    invoices: Vec<String>,
}

#[derive(Serialize)]
struct Count {
    state: &'static str,
    label: &'static str,
    count: usize,
    href: String,
    active: bool,
}

/// The plan, computed and worded.
struct PlanView {
    as_of: String,
    paused: bool,
    decisions: Vec<DecisionRow>,
    actions: Vec<ActionRow>,
    broken: Vec<BrokenRow>,
}

/// `now`, or the same local time of day on `date` in the organization's zone
/// (as `arflow dunning plan --date` does).
fn plan_instant(now: Timestamp, date: Option<Date>, tz: &TimeZone) -> Result<Timestamp, String> {
    let Some(date) = date else { return Ok(now) };
    let time = tz.to_datetime(now).time();
    tz.to_timestamp(date.to_datetime(time))
        .map_err(|e| format!("{date} is out of range: {e}"))
}

fn compute_plan(
    store: &dyn Store,
    org: &Organization,
    at: Timestamp,
    customer: Option<&str>,
) -> Result<Result<PlanView, String>, AppError> {
    let tz = zone(org);
    let snapshot = match Snapshot::load(store, org, at) {
        Ok(s) => s,
        Err(DunningError::Store(e)) => return Err(e.into()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    if let Some(c) = customer
        && snapshot.customer(c).is_none()
    {
        return Ok(Err(format!("there is no customer '{c}'")));
    }
    let plan = match snapshot.plan() {
        Ok(p) => p,
        Err(DunningError::Store(e)) => return Err(e.into()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let name_of = |id: &str| {
        snapshot
            .customer(id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    };
    let mut decisions: Vec<_> = plan
        .decisions
        .iter()
        .filter(|d| customer.is_none_or(|c| d.customer == c))
        .collect();
    decisions.sort_by(|a, b| {
        (a.customer, a.due_date, a.invoice).cmp(&(b.customer, b.due_date, b.invoice))
    });
    let decisions = decisions
        .into_iter()
        .map(|d| DecisionRow {
            invoice: d.invoice.to_string(),
            invoice_href: invoice_href(d.invoice),
            customer: d.customer.to_string(),
            customer_href: customer_href(d.customer),
            customer_name: name_of(d.customer),
            due_date: d.due_date.to_string(),
            open: d.open,
            currency: d.currency.code(),
            policy: d.policy.map(str::to_string),
            policy_href: d.policy.map(policy_href),
            state: d.decision.state(),
            badge: match d.decision.state() {
                "due" => "sending",
                "deferred" => "snoozed",
                "finished" => "done",
                "paused" => "hold",
                other => other,
            },
            step: d.decision.step().map(|s| s.template.to_string()),
            why: d.why(&plan),
            skipped: d
                .skipped
                .iter()
                .map(|(k, r)| format!("step {k} passed over: {r}"))
                .collect(),
        })
        .collect();
    let mut actions: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| customer.is_none_or(|c| a.customer == c))
        .collect();
    actions.sort_by(|a, b| (&a.customer, a.send_at, &a.key).cmp(&(&b.customer, b.send_at, &b.key)));
    let actions = actions
        .into_iter()
        .map(|a| {
            let when = match a.channel {
                Channel::Task => "now (a task for a person)".to_string(),
                _ => TimeZone::get(&a.time_zone).map_or_else(
                    |_| a.send_at.to_string(),
                    |z| {
                        a.send_at
                            .to_zoned_datetime(z)
                            .strftime("%a %Y-%m-%d %H:%M %Z")
                            .to_string()
                    },
                ),
            };
            ActionRow {
                key: a.key.clone(),
                customer: a.customer.clone(),
                customer_href: customer_href(&a.customer),
                customer_name: name_of(&a.customer),
                channel: a.channel.as_str(),
                requested_channel: a.requested_channel.as_str(),
                fallback_reason: a.fallback_reason.clone(),
                recipient: a.recipient.clone(),
                policy: a.policy.clone(),
                step: a.step.to_string(),
                template: a.template.clone(),
                tone: a.tone.as_str(),
                invoices: a.invoices.iter().map(|i| i.number.clone()).collect(),
                open: a.invoices.iter().map(|i| i.open).sum(),
                currency: a.currency.code(),
                send_at: a.send_at.to_string(),
                when,
                charges: a
                    .charges
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {} on {}",
                            Money::new(c.amount.minor, c.amount.currency),
                            c.kind.as_str().replace('_', " "),
                            c.invoice
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let broken = plan
        .broken_promises
        .iter()
        .filter(|b| customer.is_none_or(|c| b.customer == c))
        .map(|b| BrokenRow {
            promise: b.promise,
            customer: b.customer.clone(),
            customer_href: customer_href(&b.customer),
            promised: b
                .amount
                .map_or_else(|| "the open balance".to_string(), |m| m.to_string()),
            promised_on: b.promised_on.to_string(),
            invoices: b.invoices.clone(),
        })
        .collect();
    Ok(Ok(PlanView {
        as_of: at
            .to_zoned_datetime(tz)
            .strftime("%A %Y-%m-%d %H:%M %Z")
            .to_string(),
        paused: snapshot.settings.paused,
        decisions,
        actions,
        broken,
    }))
}

async fn plan_page(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<PlanQuery>,
) -> Result<Response, PageError> {
    let date_text = given(&q.date).unwrap_or_default();
    let customer = given(&q.customer);
    let decision = given(&q.decision).unwrap_or_default();
    let page = page_number(&q.page);
    let apage = page_number(&q.apage);
    let mut problems: Vec<String> = Vec::new();
    let date = if date_text.is_empty() {
        None
    } else {
        match date_text.parse::<Date>() {
            Ok(d) => Some(d),
            Err(_) => {
                problems.push(format!(
                    "date '{date_text}' is not a date (expected YYYY-MM-DD, e.g. 2027-01-15)"
                ));
                None
            }
        }
    };
    if !decision.is_empty() && !DECISIONS.iter().any(|(s, _)| *s == decision) {
        problems.push(format!(
            "decision '{decision}' is unknown (expected due, deferred, waiting, finished, paused or stopped)"
        ));
    }
    let now = app.clock.now();
    let (org_id, cust) = (caller.org, customer.clone());
    let ok = problems.is_empty();
    let (org, view, customers) = app
        .blocking(move |store| {
            let org = organization(store, org_id)?;
            let customers: Vec<(String, String)> = store
                .customers(org_id)?
                .into_iter()
                .map(|c| (c.record.external_id, c.record.name))
                .collect();
            if !ok {
                return Ok((org, None, customers));
            }
            let at = match plan_instant(now, date, &zone(&org)) {
                Ok(t) => t,
                Err(e) => return Ok((org, Some(Err(e)), customers)),
            };
            let view = compute_plan(store, &org, at, cust.as_deref())?;
            Ok((org, Some(view), customers))
        })
        .await?;
    let view = match view {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            problems.push(e);
            None
        }
        None => None,
    };
    let today = zone(&org).to_datetime(now).date().to_string();
    let link = |decision: &str, page: usize, apage: usize| {
        let (p, a) = (page.to_string(), apage.to_string());
        href(
            "/dunning/plan",
            &[
                ("date", date_text.as_str()),
                ("customer", customer.as_deref().unwrap_or("")),
                ("decision", decision),
                ("page", if page > 1 { p.as_str() } else { "" }),
                ("apage", if apage > 1 { a.as_str() } else { "" }),
            ],
        )
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut ctx_rows: Vec<DecisionRow> = Vec::new();
    let mut ctx_actions: Vec<ActionRow> = Vec::new();
    let mut counts: Vec<Count> = Vec::new();
    let (mut pager, mut apager) = (None, None);
    let (mut total, mut shown_total, mut action_total) = (0usize, 0usize, 0usize);
    let (mut as_of, mut paused, mut broken) = (String::new(), false, Vec::new());
    if let Some(v) = view {
        total = v.decisions.len();
        let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &v.decisions {
            *by_state.entry(d.state).or_default() += 1;
        }
        counts = DECISIONS
            .iter()
            .map(|(state, label)| Count {
                state,
                label,
                count: by_state.get(state).copied().unwrap_or(0),
                href: link(state, 1, 1),
                active: decision == *state,
            })
            .collect();
        let rows: Vec<DecisionRow> = v
            .decisions
            .into_iter()
            .filter(|d| decision.is_empty() || d.state == decision)
            .collect();
        shown_total = rows.len();
        let page = page.min(rows.len().div_ceil(PAGE_SIZE).max(1));
        pager = Some(Pager::numbered(page, rows.len(), |n| {
            link(&decision, n, apage)
        }));
        ctx_rows = rows
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect();
        if decision.is_empty() || decision == "due" {
            action_total = v.actions.len();
            let apage = apage.min(v.actions.len().div_ceil(PAGE_SIZE).max(1));
            apager = Some(Pager::numbered(apage, v.actions.len(), |n| {
                link(&decision, page, n)
            }));
            ctx_actions = v
                .actions
                .into_iter()
                .skip((apage - 1) * PAGE_SIZE)
                .take(PAGE_SIZE)
                .collect();
        }
        as_of = v.as_of;
        paused = v.paused;
        broken = v.broken;
    }
    let customer_options: Vec<_> = customers
        .iter()
        .map(|(k, n)| context! { key => k, name => n })
        .collect();
    let mut r = app.views.render(
        "plan.html",
        super::chrome(
            &caller,
            &org.name,
            "dunning",
            "Dunning plan",
            None,
            context! {
                problems => problems,
                date => date_text,
                today => today,
                customer => customer.clone().unwrap_or_default(),
                decision => decision,
                decisions => DECISIONS.iter().map(|(s, l)| context! { state => s, label => l }).collect::<Vec<_>>(),
                customers => customer_options,
                as_of => as_of,
                paused => paused,
                counts => counts,
                total => total,
                shown_total => shown_total,
                rows => ctx_rows,
                pager => pager,
                actions => ctx_actions,
                action_total => action_total,
                apager => apager,
                broken => broken,
                all_href => link("", 1, 1),
            },
        ),
    )?;
    *r.status_mut() = status;
    Ok(r)
}

// ---------------------------------------------------------------------------
// The outbox

#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    status: Option<String>,
    customer: Option<String>,
    page: Option<String>,
}

#[derive(Serialize)]
struct MessageRow {
    id: i64,
    href: String,
    key: String,
    customer: String,
    customer_href: String,
    customer_name: String,
    channel: &'static str,
    recipient: String,
    subject: String,
    status: &'static str,
    attempts: u32,
    created_at: String,
    created: String,
    sent_at: Option<String>,
    sent: Option<String>,
    last_error: Option<String>,
}

fn message_row(
    m: &Stored<OutboxMessage>,
    tz: &TimeZone,
    names: &HashMap<String, String>,
) -> MessageRow {
    MessageRow {
        id: m.id,
        href: format!("/dunning/outbox/{}", m.id),
        key: m.key.clone(),
        customer: m.customer.clone(),
        customer_href: customer_href(&m.customer),
        customer_name: names
            .get(&m.customer)
            .cloned()
            .unwrap_or_else(|| m.customer.clone()),
        channel: m.channel.as_str(),
        recipient: m.recipient.clone(),
        subject: if m.subject.is_empty() {
            // SMS have no subject: the start of the text stands in.
            let t: String = m.body_text.chars().take(80).collect();
            if m.body_text.chars().count() > 80 {
                format!("{t}…")
            } else {
                t
            }
        } else {
            m.subject.clone()
        },
        status: m.status.as_str(),
        attempts: m.attempts,
        created_at: m.created_at.to_string(),
        created: local(m.created_at, tz),
        sent_at: m.sent_at.map(|t| t.to_string()),
        sent: m.sent_at.map(|t| local(t, tz)),
        last_error: m.last_error.clone(),
    }
}

async fn outbox_page(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<OutboxQuery>,
) -> Result<Response, PageError> {
    let status_text = given(&q.status).unwrap_or_default();
    let customer = given(&q.customer);
    let page = page_number(&q.page);
    let mut problems = Vec::new();
    let status = if status_text.is_empty() {
        None
    } else {
        match MessageStatus::parse(&status_text) {
            Some(s) => Some(s),
            None => {
                problems.push(format!(
                    "status '{status_text}' is unknown (expected one of {})",
                    MessageStatus::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                None
            }
        }
    };
    let ok = problems.is_empty();
    let (org_id, cust) = (caller.org, customer.clone());
    // The store lists newest first with a limit: read up to this page and
    // one more row, to know whether there is a next page.
    let limit = u32::try_from(page * PAGE_SIZE + 1).unwrap_or(u32::MAX);
    let (org, messages, names) = app
        .blocking(move |store| {
            let org = organization(store, org_id)?;
            let names: HashMap<String, String> = store
                .customers(org_id)?
                .into_iter()
                .map(|c| (c.record.external_id, c.record.name))
                .collect();
            let messages = if ok {
                store.outbox(
                    org_id,
                    &OutboxFilter {
                        status,
                        customer: cust,
                        limit: Some(limit),
                    },
                )?
            } else {
                Vec::new()
            };
            Ok((org, messages, names))
        })
        .await?;
    let tz = zone(&org);
    let has_next = messages.len() > page * PAGE_SIZE;
    let rows: Vec<MessageRow> = messages
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|m| message_row(m, &tz, &names))
        .collect();
    let link = |n: usize| {
        let p = n.to_string();
        href(
            "/dunning/outbox",
            &[
                ("status", status_text.as_str()),
                ("customer", customer.as_deref().unwrap_or("")),
                ("page", if n > 1 { p.as_str() } else { "" }),
            ],
        )
    };
    let first = (page - 1) * PAGE_SIZE;
    let pager = Pager {
        prev: (page > 1).then(|| link(page - 1)),
        next: has_next.then(|| link(page + 1)),
        summary: if rows.is_empty() {
            "No messages".to_string()
        } else {
            format!(
                "Messages {}–{} · page {page}",
                first + 1,
                first + rows.len()
            )
        },
    };
    let mut customer_options: Vec<(String, String)> = names.into_iter().collect();
    customer_options.sort();
    let mut r = app.views.render(
        "outbox.html",
        super::chrome(
            &caller,
            &org.name,
            "dunning",
            "Outbox",
            None,
            context! {
                problems => problems,
                status => status_text,
                statuses => MessageStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                customer => customer.unwrap_or_default(),
                customers => customer_options.iter().map(|(k, n)| context! { key => k, name => n }).collect::<Vec<_>>(),
                messages => rows,
                pager => pager,
            },
        ),
    )?;
    if !ok {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

#[derive(Serialize)]
struct HistoryRow {
    at: String,
    when: String,
    kind: String,
    actor: String,
    summary: String,
}

#[derive(Serialize)]
struct InvoiceLine {
    number: String,
    issue_date: String,
    due_date: String,
    open: i64,
    days_overdue: i64,
    fee: i64,
    interest: i64,
    compensation: i64,
}

async fn message_page(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || AppError::NotFound(format!("there is no message #{id}"));
    let Ok(message_id) = id.parse::<i64>() else {
        return Err(not_found().into());
    };
    let org_id = caller.org;
    let (org, message, events, customer_name) = app
        .blocking(move |store| {
            let org = organization(store, org_id)?;
            let Some(m) = store.message(org_id, message_id)? else {
                return Ok((org, None, Vec::new(), None));
            };
            let events = store.events(
                org_id,
                &EventFilter {
                    entity_type: Some("message".to_string()),
                    entity_key: Some(m.key.clone()),
                    ..EventFilter::default()
                },
            )?;
            let name = store
                .customers(org_id)?
                .into_iter()
                .find(|c| c.external_id == m.customer)
                .map(|c| c.record.name);
            Ok((org, Some(m), events, name))
        })
        .await?;
    let Some(m) = message else {
        return Err(not_found().into());
    };
    let tz = zone(&org);
    let customer_tz = TimeZone::get(&m.time_zone).unwrap_or_else(|_| tz.clone());
    let mut history: Vec<HistoryRow> = events
        .iter()
        .map(|e| HistoryRow {
            at: e.recorded_at.to_string(),
            when: local(e.recorded_at, &tz),
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            summary: e.summary.clone(),
        })
        .collect();
    history.reverse(); // oldest first: a history reads forwards
    let currency = m.currency;
    let invoices: Vec<InvoiceLine> = m
        .invoices
        .iter()
        .map(|i| InvoiceLine {
            number: i.number.clone(),
            issue_date: i.issue_date.to_string(),
            due_date: i.due_date.to_string(),
            open: i.open,
            days_overdue: i.days_overdue,
            fee: i.fee,
            interest: i.interest,
            compensation: i.compensation,
        })
        .collect();
    let total_open: i64 = m.invoices.iter().map(|i| i.open).sum();
    let has_charges = m
        .invoices
        .iter()
        .any(|i| i.fee != 0 || i.interest != 0 || i.compensation != 0);
    let in_customer_zone = |t: Timestamp| {
        t.to_zoned_datetime(customer_tz.clone())
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let title = if m.subject.is_empty() {
        format!("Message #{}", m.id)
    } else {
        m.subject.clone()
    };
    let r = app.views.render(
        "message.html",
        super::chrome(
            &caller,
            &org.name,
            "dunning",
            &title,
            None,
            context! {
                message => context! {
                    id => m.id,
                    key => m.key,
                    customer_href => customer_href(&m.customer),
                    customer => m.customer,
                    customer_name => customer_name.unwrap_or_else(|| m.customer.clone()),
                    channel => m.channel.as_str(),
                    contact => m.contact,
                    recipient => m.recipient,
                    policy => m.policy,
                    policy_href => policy_href(&m.policy),
                    step => m.step.to_string(),
                    template => m.template,
                    locale => m.locale,
                    currency => currency.code(),
                    subject => m.subject,
                    time_zone => m.time_zone,
                    status => m.status.as_str(),
                    attempts => m.attempts,
                    created_at => m.created_at.to_string(),
                    created => local(m.created_at, &tz),
                    not_before_at => m.not_before.to_string(),
                    not_before => in_customer_zone(m.not_before),
                    next_attempt_at => m.next_attempt_at.to_string(),
                    next_attempt => in_customer_zone(m.next_attempt_at),
                    sent_at => m.sent_at.map(|t| t.to_string()),
                    sent => m.sent_at.map(|t| local(t, &tz)),
                    last_error => m.last_error,
                    provider_id => m.provider_id,
                    claimed_by => m.claimed_by,
                    lease_until => m.lease_until.map(|t| local(t, &tz)),
                    body_text => m.body_text,
                    body_html => m.body_html,
                    total_open => total_open,
                    total_open_text => format_minor(total_open, currency),
                },
                invoices => invoices,
                has_charges => has_charges,
                history => history,
            },
        ),
    )?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_as_words() {
        use Weekday::*;
        assert_eq!(
            days_in_words(&[Monday, Tuesday, Wednesday, Thursday, Friday]),
            "Monday to Friday"
        );
        assert_eq!(
            days_in_words(&[Friday, Monday, Wednesday]),
            "Monday, Wednesday and Friday"
        );
        assert_eq!(days_in_words(&[Saturday, Sunday]), "Saturday and Sunday");
        assert_eq!(days_in_words(&[]), "no day (nothing is ever sent)");
        assert_eq!(days_in_words(&[Tuesday]), "Tuesday");
    }

    #[test]
    fn policy_names_are_checked() {
        assert!(check_policy_name("enterprise-eu_2").is_ok());
        assert!(check_policy_name("").is_err());
        assert!(check_policy_name("Big Customers").is_err());
        assert!(check_policy_name("-x").is_err());
        assert!(check_policy_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn links_and_pagers() {
        assert_eq!(
            href("/dunning/plan", &[("customer", "C 1&2"), ("date", "")]),
            "/dunning/plan?customer=C%201%262"
        );
        let p = Pager::numbered(2, 120, |n| format!("/x?page={n}"));
        assert_eq!(p.prev.as_deref(), Some("/x?page=1"));
        assert_eq!(p.next.as_deref(), Some("/x?page=3"));
        assert_eq!(p.summary, "51–100 of 120 · page 2 of 3");
        assert_eq!(
            Pager::numbered(1, 0, |_| String::new()).summary,
            "Nothing to show"
        );
        assert_eq!(page_number(&Some("0".into())), 1);
        assert_eq!(page_number(&Some("7".into())), 7);
    }

    #[test]
    fn finds_the_name_key() {
        assert_eq!(name_key_position("# c\n  name = \"x\"\n"), (2, 3));
        assert_eq!(name_key_position("[[steps]]\nname = 1\n"), (1, 1));
    }
}
