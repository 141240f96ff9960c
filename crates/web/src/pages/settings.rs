//! Settings, for admins: the organization (name, base currency, time zone),
//! the dunning settings, how email and SMS go out (read from `arflow.toml`,
//! shown only), the users and their roles, and API tokens.
//!
//! Each form re-renders the whole page on a mistake (422), keeping what was
//! typed and naming each wrong field with its value. A generated password
//! and a new token's secret are shown once, on the page that answers the
//! POST (never in a link, never stored: the store keeps only hashes).

use std::collections::HashMap;

use arflow_domain::charges::Regime;
use arflow_domain::dunning::records::DunningSettings;
use arflow_domain::model::Organization;
use arflow_domain::money::{Currency, Money};
use arflow_store::{ApiToken, NewApiToken, NewUser, Role, Scope, StoreError, User};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::dunning::{days_in_words, given, local, organization, regime_in_words, zone};
use crate::AppState;
use crate::access::Caller;
use crate::problem::{AppError, FieldError, PageError};
use crate::routes::{ADMIN, Route};
use crate::secrets;

pub fn routes() -> Vec<Route> {
    vec![
        Route::page(Method::GET, "/settings", ADMIN, settings_page),
        Route::page(
            Method::POST,
            "/settings/organization",
            ADMIN,
            save_organization,
        ),
        Route::page(Method::POST, "/settings/dunning", ADMIN, save_dunning),
        Route::page(Method::POST, "/settings/users", ADMIN, create_user),
        Route::page(Method::POST, "/settings/users/{id}", ADMIN, update_user),
        Route::page(Method::POST, "/settings/tokens", ADMIN, create_token),
        Route::page(
            Method::POST,
            "/settings/tokens/{id}/revoke",
            ADMIN,
            revoke_token,
        ),
    ]
}

// ---------------------------------------------------------------------------
// Forms as shown (what is stored, or what was typed) with their mistakes.

#[derive(Debug, Clone, Default, Serialize)]
struct OrgForm {
    name: String,
    base_currency: String,
    time_zone: String,
    confirm_currency: bool,
    errors: Vec<FieldError>,
    invalid: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct DayBox {
    key: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
struct DunningForm {
    window_start: String,
    window_end: String,
    days: Vec<DayBox>,
    holidays: String,
    min_gap_days: String,
    weekly_cap: String,
    promise_grace_days: String,
    default_policy: String,
    min_balance: String,
    interest: String,
    errors: Vec<FieldError>,
    invalid: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct UserForm {
    email: String,
    name: String,
    role: String,
    errors: Vec<FieldError>,
    invalid: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct TokenForm {
    user_id: String,
    name: String,
    access: String,
    expires_on: String,
    errors: Vec<FieldError>,
    invalid: Vec<String>,
}

/// A secret shown once.
#[derive(Debug, Clone, Serialize)]
struct Secret {
    /// "password" or "token".
    kind: &'static str,
    /// Whose or which.
    subject: String,
    value: String,
    note: String,
}

/// What one rendering of the page shows besides what is stored.
struct Overrides {
    flash: Option<&'static str>,
    org: Option<OrgForm>,
    dunning: Option<DunningForm>,
    user: Option<UserForm>,
    token: Option<TokenForm>,
    users_error: Option<String>,
    secret: Option<Secret>,
    status: StatusCode,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            flash: None,
            org: None,
            dunning: None,
            user: None,
            token: None,
            users_error: None,
            secret: None,
            status: StatusCode::OK,
        }
    }
}

fn with_errors<T>(
    mut errors: Vec<FieldError>,
    f: impl FnOnce(Vec<FieldError>, Vec<String>) -> T,
) -> T {
    errors.dedup();
    let invalid = errors.iter().map(|e| e.field.clone()).collect();
    f(errors, invalid)
}

// ---------------------------------------------------------------------------
// Stored values as forms.

const DAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Monday, "mon", "Mon"),
    (Weekday::Tuesday, "tue", "Tue"),
    (Weekday::Wednesday, "wed", "Wed"),
    (Weekday::Thursday, "thu", "Thu"),
    (Weekday::Friday, "fri", "Fri"),
    (Weekday::Saturday, "sat", "Sat"),
    (Weekday::Sunday, "sun", "Sun"),
];

const REGIMES: [(&str, Option<Regime>); 5] = [
    ("none", None),
    ("eu", Some(Regime::Eu2011_7)),
    ("uk", Some(Regime::UkLatePayment1998)),
    ("de", Some(Regime::DeBgb288)),
    ("fr", Some(Regime::FrL441_10)),
];

fn regime_key(r: Option<Regime>) -> &'static str {
    REGIMES
        .iter()
        .find(|(_, x)| *x == r)
        .map_or("none", |(k, _)| k)
}

fn org_form(org: &Organization) -> OrgForm {
    OrgForm {
        name: org.name.clone(),
        base_currency: org.base_currency.code().to_string(),
        time_zone: org.time_zone.clone(),
        ..OrgForm::default()
    }
}

fn dunning_form(s: &DunningSettings) -> DunningForm {
    DunningForm {
        window_start: s.send_window.start.strftime("%H:%M").to_string(),
        window_end: s.send_window.end.strftime("%H:%M").to_string(),
        days: DAYS
            .iter()
            .map(|(d, key, label)| DayBox {
                key,
                label,
                checked: s.send_window.days.contains(d),
            })
            .collect(),
        holidays: s
            .holidays
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        min_gap_days: s.min_gap_days.to_string(),
        weekly_cap: s.weekly_cap.to_string(),
        promise_grace_days: s.promise_grace_days.to_string(),
        default_policy: s.default_policy.clone(),
        min_balance: s
            .min_balance
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        interest: regime_key(s.interest_regime).to_string(),
        ..DunningForm::default()
    }
}

#[derive(Serialize)]
struct UserRow {
    id: i64,
    email: String,
    name: String,
    role: &'static str,
    disabled: bool,
    created: String,
    is_me: bool,
}

#[derive(Serialize)]
struct TokenRow {
    id: i64,
    name: String,
    user: String,
    scopes: String,
    created: String,
    expires: Option<String>,
    last_used: Option<String>,
    revoked: Option<String>,
    state: &'static str,
}

fn token_rows(
    tokens: &[ApiToken],
    users: &[User],
    tz: &TimeZone,
    now: jiff::Timestamp,
) -> Vec<TokenRow> {
    let emails: HashMap<i64, &str> = users.iter().map(|u| (u.id, u.email.as_str())).collect();
    let mut rows: Vec<TokenRow> = tokens
        .iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name.clone(),
            user: emails
                .get(&t.user_id)
                .map_or_else(|| format!("user #{}", t.user_id), |e| e.to_string()),
            scopes: t
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created: local(t.created_at, tz),
            expires: t.expires_at.map(|x| local(x, tz)),
            last_used: t.last_used_at.map(|x| local(x, tz)),
            revoked: t.revoked_at.map(|x| local(x, tz)),
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|x| x <= now) {
                "expired"
            } else {
                "active"
            },
        })
        .collect();
    rows.sort_by_key(|r| (r.state != "active", -r.id));
    rows
}

// ---------------------------------------------------------------------------
// The page.

async fn render(app: &AppState, caller: &Caller, o: Overrides) -> Result<Response, PageError> {
    let org_id = caller.org;
    let (org, settings, policies, users, tokens) = app
        .blocking(move |store| {
            let org = organization(store, org_id)?;
            let settings = store.dunning_settings(org_id)?;
            let mut policies: Vec<String> = store
                .policies(org_id)?
                .into_iter()
                .map(|p| p.name)
                .collect();
            if !policies.iter().any(|p| p == "default") {
                policies.push("default".to_string());
            }
            policies.sort();
            let users = store.users(org_id)?;
            let tokens = store.api_tokens(org_id)?;
            Ok((org, settings, policies, users, tokens))
        })
        .await?;
    let tz = zone(&org);
    let now = app.clock.now();
    let mut user_rows: Vec<UserRow> = users
        .iter()
        .map(|u| UserRow {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role.as_str(),
            disabled: u.disabled,
            created: local(u.created_at, &tz),
            is_me: u.id == caller.user_id,
        })
        .collect();
    user_rows.sort_by(|a, b| a.email.cmp(&b.email));
    let token_list = token_rows(&tokens, &users, &tz, now);
    let today = tz.to_datetime(now).date();
    let org_f = o.org.unwrap_or_else(|| org_form(&org));
    let dunning_f = o.dunning.unwrap_or_else(|| dunning_form(&settings));
    let user_f = o.user.unwrap_or_else(|| UserForm {
        role: "viewer".to_string(),
        ..UserForm::default()
    });
    let token_f = o.token.unwrap_or_else(|| TokenForm {
        access: "read".to_string(),
        ..TokenForm::default()
    });
    let window_words = format!(
        "Now: {} to {}, {}.",
        settings.send_window.start.strftime("%H:%M"),
        settings.send_window.end.strftime("%H:%M"),
        days_in_words(&settings.send_window.days)
    );
    let mut r = app.views.render(
        "settings.html",
        super::chrome(
            caller,
            &org.name,
            "settings",
            "Settings",
            o.flash,
            context! {
                org_form => org_f,
                org_slug => org.slug,
                dunning => dunning_f,
                window_words => window_words,
                paused => settings.paused,
                policies => policies,
                regimes => REGIMES.iter().map(|(k, r)| context! { key => k, label => match r {
                    None => "None".to_string(),
                    Some(r) => r.to_string(),
                }, words => regime_in_words(*r) }).collect::<Vec<_>>(),
                delivery => app.config.delivery.iter().map(|(k, v)| context! { label => k, value => v }).collect::<Vec<_>>(),
                users => user_rows,
                users_error => o.users_error,
                roles => ["viewer", "collector", "admin"],
                user_form => user_f,
                tokens => token_list,
                token_form => token_f,
                active_users => users.iter().filter(|u| !u.disabled).map(|u| context! { id => u.id, email => u.email.clone(), role => u.role.as_str() }).collect::<Vec<_>>(),
                secret => o.secret,
                today => today.to_string(),
                min_password => secrets::MIN_PASSWORD_LEN,
            },
        ),
    )?;
    *r.status_mut() = o.status;
    Ok(r)
}

#[derive(Debug, Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

async fn settings_page(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<OkQuery>,
) -> Result<Response, PageError> {
    render(
        &app,
        &caller,
        Overrides {
            flash: super::flash(q.ok.as_deref()),
            ..Overrides::default()
        },
    )
    .await
}

fn invalid(status: StatusCode) -> Overrides {
    Overrides {
        status,
        ..Overrides::default()
    }
}

// ---------------------------------------------------------------------------
// POST /settings/organization

#[derive(Debug, Deserialize)]
pub struct OrgInput {
    name: Option<String>,
    base_currency: Option<String>,
    time_zone: Option<String>,
    confirm_currency: Option<String>,
}

async fn save_organization(
    State(app): State<AppState>,
    caller: Caller,
    Form(f): Form<OrgInput>,
) -> Result<Response, PageError> {
    let name = f.name.unwrap_or_default().trim().to_string();
    let currency_text = f.base_currency.unwrap_or_default().trim().to_string();
    let zone_text = f.time_zone.unwrap_or_default().trim().to_string();
    let confirmed = given(&f.confirm_currency).is_some();
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(FieldError::new(
            "name",
            None,
            "the organization needs a name",
        ));
    } else if name.chars().count() > 200 {
        errors.push(FieldError::new(
            "name",
            Some(&name),
            "at most 200 characters",
        ));
    }
    let currency = match Currency::parse(&currency_text) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(FieldError::new(
                "base_currency",
                Some(&currency_text),
                format!("{e} (a three-letter ISO 4217 code, e.g. EUR, USD, GBP)"),
            ));
            None
        }
    };
    if let Err(e) = TimeZone::get(&zone_text) {
        errors.push(FieldError::new(
            "time_zone",
            Some(&zone_text),
            format!(
                "not a time zone of the IANA database (e.g. Europe/Berlin, America/New_York, UTC): {e}"
            ),
        ));
    }
    let org_id = caller.org;
    let current = app
        .blocking(move |store| organization(store, org_id))
        .await?;
    if let Some(c) = currency
        && c != current.base_currency
        && !confirmed
    {
        errors.push(FieldError::new(
            "base_currency",
            Some(c.code()),
            format!(
                "changing the base currency from {} to {} restates every report and total in {}; amounts in other currencies need FX rates to it. Tick the box to confirm",
                current.base_currency.code(),
                c.code(),
                c.code()
            ),
        ));
    }
    let typed = OrgForm {
        name: name.clone(),
        base_currency: currency_text.clone(),
        time_zone: zone_text.clone(),
        confirm_currency: confirmed,
        ..OrgForm::default()
    };
    if !errors.is_empty() {
        let form = with_errors(errors, |errors, invalid| OrgForm {
            errors,
            invalid,
            ..typed
        });
        return render(
            &app,
            &caller,
            Overrides {
                org: Some(form),
                ..invalid(StatusCode::UNPROCESSABLE_ENTITY)
            },
        )
        .await;
    }
    let updated = Organization {
        name,
        base_currency: currency.unwrap_or(current.base_currency),
        time_zone: zone_text,
        ..current
    };
    let (actor, now) = (caller.email.clone(), app.clock.now());
    app.blocking(move |store| Ok(store.update_organization(&updated, &actor, now)?))
        .await?;
    Ok(Redirect::to("/settings?ok=settings_saved#organization").into_response())
}

// ---------------------------------------------------------------------------
// POST /settings/dunning

#[derive(Debug, Deserialize)]
pub struct DunningInput {
    window_start: Option<String>,
    window_end: Option<String>,
    day_mon: Option<String>,
    day_tue: Option<String>,
    day_wed: Option<String>,
    day_thu: Option<String>,
    day_fri: Option<String>,
    day_sat: Option<String>,
    day_sun: Option<String>,
    holidays: Option<String>,
    min_gap_days: Option<String>,
    weekly_cap: Option<String>,
    promise_grace_days: Option<String>,
    default_policy: Option<String>,
    min_balance: Option<String>,
    interest: Option<String>,
}

fn number(
    field: &str,
    text: &str,
    min: u32,
    max: u32,
    what: &str,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    match text.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errors.push(FieldError::new(
                field,
                Some(text),
                format!("{what}: a whole number from {min} to {max}"),
            ));
            None
        }
    }
}

/// The non-empty entries of a list typed one per line (commas also
/// separate), with their 1-based line numbers.
fn entries(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .flat_map(|(i, line)| {
            line.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(move |s| (i + 1, s.to_string()))
        })
        .collect()
}

/// The settings typed in the form applied to `before`, or every mistake.
fn parse_dunning(
    f: &DunningInput,
    before: &DunningSettings,
    policies: &[String],
) -> Result<DunningSettings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut s = before.clone();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let time = |field: &str, v: &str, errors: &mut Vec<FieldError>| match v.trim().parse::<Time>() {
        Ok(t) => Some(t),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                Some(v),
                "not a time of day (HH:MM, 24-hour, e.g. 08:00)",
            ));
            None
        }
    };
    let start = time("window_start", &text(&f.window_start), &mut errors);
    let end = time("window_end", &text(&f.window_end), &mut errors);
    if let (Some(a), Some(b)) = (start, end) {
        if a >= b {
            errors.push(FieldError::new(
                "window_end",
                Some(&b.strftime("%H:%M").to_string()),
                format!(
                    "the window must close after it opens ({}); windows across midnight are not supported",
                    a.strftime("%H:%M")
                ),
            ));
        } else {
            s.send_window.start = a;
            s.send_window.end = b;
        }
    }
    let ticked = [
        &f.day_mon, &f.day_tue, &f.day_wed, &f.day_thu, &f.day_fri, &f.day_sat, &f.day_sun,
    ];
    let days: Vec<Weekday> = DAYS
        .iter()
        .zip(ticked)
        .filter(|(_, t)| given(t).is_some())
        .map(|((d, _, _), _)| *d)
        .collect();
    if days.is_empty() {
        errors.push(FieldError::new(
            "days",
            None,
            "tick at least one day messages may go out on (to stop sending, use the pause switch)",
        ));
    } else {
        s.send_window.days = days;
    }
    let mut holidays = Vec::new();
    for (line, entry) in entries(&text(&f.holidays)) {
        match entry.parse::<Date>() {
            Ok(d) => holidays.push(d),
            Err(_) => errors.push(FieldError::new(
                "holidays",
                Some(&entry),
                format!("line {line}: not a date (YYYY-MM-DD, e.g. 2026-12-25)"),
            )),
        }
    }
    holidays.sort_unstable();
    holidays.dedup();
    s.holidays = holidays;
    if let Some(n) = number(
        "min_gap_days",
        &text(&f.min_gap_days),
        0,
        90,
        "minimum gap in days",
        &mut errors,
    ) {
        s.min_gap_days = n;
    }
    if let Some(n) = number(
        "weekly_cap",
        &text(&f.weekly_cap),
        1,
        21,
        "messages per customer in 7 days",
        &mut errors,
    ) {
        s.weekly_cap = n;
    }
    if let Some(n) = number(
        "promise_grace_days",
        &text(&f.promise_grace_days),
        0,
        90,
        "grace days after a promised date",
        &mut errors,
    ) {
        s.promise_grace_days = n;
    }
    let policy = text(&f.default_policy).trim().to_string();
    if policies.contains(&policy) {
        s.default_policy = policy;
    } else {
        errors.push(FieldError::new(
            "default_policy",
            Some(&policy),
            format!("no such policy (known: {})", policies.join(", ")),
        ));
    }
    let mut mins: Vec<Money> = Vec::new();
    for (line, entry) in entries(&text(&f.min_balance)) {
        match Money::parse_tagged(&entry) {
            Ok(m) if m.minor < 0 => errors.push(FieldError::new(
                "min_balance",
                Some(&entry),
                format!("line {line}: a threshold cannot be negative"),
            )),
            Ok(m) if mins.iter().any(|x| x.currency == m.currency) => errors.push(FieldError::new(
                "min_balance",
                Some(&entry),
                format!("line {line}: a second threshold for {}", m.currency.code()),
            )),
            Ok(m) => mins.push(m),
            Err(e) => errors.push(FieldError::new(
                "min_balance",
                Some(&entry),
                format!("line {line}: {e}"),
            )),
        }
    }
    s.min_balance = mins;
    let key = text(&f.interest);
    match REGIMES.iter().find(|(k, _)| *k == key.trim()) {
        Some((_, r)) => s.interest_regime = *r,
        None => errors.push(FieldError::new(
            "interest",
            Some(&key),
            "choose one of the listed regimes",
        )),
    }
    if errors.is_empty() {
        Ok(s)
    } else {
        Err(errors)
    }
}

fn typed_dunning(f: &DunningInput) -> DunningForm {
    let ticked = [
        &f.day_mon, &f.day_tue, &f.day_wed, &f.day_thu, &f.day_fri, &f.day_sat, &f.day_sun,
    ];
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    DunningForm {
        window_start: text(&f.window_start),
        window_end: text(&f.window_end),
        days: DAYS
            .iter()
            .zip(ticked)
            .map(|((_, key, label), t)| DayBox {
                key,
                label,
                checked: given(t).is_some(),
            })
            .collect(),
        holidays: text(&f.holidays).replace("\r\n", "\n"),
        min_gap_days: text(&f.min_gap_days),
        weekly_cap: text(&f.weekly_cap),
        promise_grace_days: text(&f.promise_grace_days),
        default_policy: text(&f.default_policy),
        min_balance: text(&f.min_balance).replace("\r\n", "\n"),
        interest: text(&f.interest),
        ..DunningForm::default()
    }
}

async fn save_dunning(
    State(app): State<AppState>,
    caller: Caller,
    Form(f): Form<DunningInput>,
) -> Result<Response, PageError> {
    let org_id = caller.org;
    let (before, policies) = app
        .blocking(move |store| {
            let s = store.dunning_settings(org_id)?;
            let mut names: Vec<String> = store
                .policies(org_id)?
                .into_iter()
                .map(|p| p.name)
                .collect();
            if !names.iter().any(|n| n == "default") {
                names.push("default".to_string());
            }
            names.sort();
            Ok((s, names))
        })
        .await?;
    let after = match parse_dunning(&f, &before, &policies) {
        Ok(s) => s,
        Err(errors) => {
            let form = with_errors(errors, |errors, invalid| DunningForm {
                errors,
                invalid,
                ..typed_dunning(&f)
            });
            return render(
                &app,
                &caller,
                Overrides {
                    dunning: Some(form),
                    ..invalid(StatusCode::UNPROCESSABLE_ENTITY)
                },
            )
            .await;
        }
    };
    let (actor, now) = (caller.email.clone(), app.clock.now());
    app.blocking(move |store| {
        // Only the fields of the form: the pause switch (and the start
        // date) may have moved since the form was read.
        let current = store.dunning_settings(org_id)?;
        let next = DunningSettings {
            paused: current.paused,
            started_on: current.started_on,
            ..after
        };
        if next != current {
            store.set_dunning_settings(org_id, &next, &actor, now)?;
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/settings?ok=settings_saved#dunning").into_response())
}

// ---------------------------------------------------------------------------
// Users

fn parse_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                && email.len() <= 254
        }
        None => false,
    };
    if valid {
        Ok(email)
    } else {
        Err("not an email address (one @, a domain, no spaces: like anna@example.com)".to_string())
    }
}

#[derive(Debug, Deserialize)]
pub struct NewUserInput {
    email: Option<String>,
    name: Option<String>,
    role: Option<String>,
    password: Option<String>,
}

async fn create_user(
    State(app): State<AppState>,
    caller: Caller,
    Form(f): Form<NewUserInput>,
) -> Result<Response, PageError> {
    let raw_email = f.email.clone().unwrap_or_default();
    let name_text = f.name.clone().unwrap_or_default().trim().to_string();
    let role_text = f.role.clone().unwrap_or_default();
    let password = f.password.clone().unwrap_or_default();
    let mut errors = Vec::new();
    let email = match parse_email(&raw_email) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.push(FieldError::new("email", Some(raw_email.trim()), e));
            None
        }
    };
    let role = Role::parse(role_text.trim());
    if role.is_none() {
        errors.push(FieldError::new(
            "role",
            Some(&role_text),
            "choose viewer, collector or admin",
        ));
    }
    if name_text.chars().count() > 200 {
        errors.push(FieldError::new(
            "name",
            Some(&name_text),
            "at most 200 characters",
        ));
    }
    let generated = password.is_empty();
    if !generated && password.chars().count() < secrets::MIN_PASSWORD_LEN {
        errors.push(FieldError::new(
            "password",
            None,
            format!(
                "at least {} characters (or leave it empty to generate one)",
                secrets::MIN_PASSWORD_LEN
            ),
        ));
    }
    let typed = UserForm {
        email: raw_email.trim().to_string(),
        name: name_text.clone(),
        role: role_text.clone(),
        ..UserForm::default()
    };
    let fail = |errors: Vec<FieldError>| {
        let form = with_errors(errors, |errors, invalid| UserForm {
            errors,
            invalid,
            ..typed.clone()
        });
        Overrides {
            user: Some(form),
            ..invalid(StatusCode::UNPROCESSABLE_ENTITY)
        }
    };
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        return render(&app, &caller, fail(errors)).await;
    };
    let password = if generated {
        secrets::random_password().map_err(|e| AppError::Internal(e.to_string()))?
    } else {
        password
    };
    let name = if name_text.is_empty() {
        email.split('@').next().unwrap_or_default().to_string()
    } else {
        name_text
    };
    let (org, actor, now) = (caller.org, caller.email.clone(), app.clock.now());
    let (e, p) = (email.clone(), password.clone());
    let created = app
        .blocking(move |store| {
            let hash = secrets::hash_password(&p).map_err(|e| AppError::Internal(e.to_string()))?;
            let user = NewUser {
                email: e,
                name,
                role,
                password_hash: hash,
            };
            match store.create_user(org, &user, &actor, now) {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict(_) | StoreError::Constraint { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    if !created {
        let err = FieldError::new("email", Some(&email), "this address already has an account");
        return render(&app, &caller, fail(vec![err])).await;
    }
    if !generated {
        return Ok(Redirect::to("/settings?ok=user_created#users").into_response());
    }
    render(
        &app,
        &caller,
        Overrides {
            flash: super::flash(Some("user_created")),
            secret: Some(Secret {
                kind: "password",
                subject: email.clone(),
                value: password,
                note: format!(
                    "Give this password to {email} over a safe channel. It is shown only now: arflow keeps only its hash."
                ),
            }),
            ..Overrides::default()
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct UserAction {
    action: Option<String>,
    role: Option<String>,
}

async fn update_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Form(f): Form<UserAction>,
) -> Result<Response, PageError> {
    let not_found = || AppError::NotFound(format!("there is no user #{id}"));
    let Ok(user_id) = id.parse::<i64>() else {
        return Err(not_found().into());
    };
    let org = caller.org;
    let Some(user) = app
        .blocking(move |store| Ok(store.user(org, user_id)?))
        .await?
    else {
        return Err(not_found().into());
    };
    let action = given(&f.action).unwrap_or_default();
    let refuse = |message: String| Overrides {
        users_error: Some(message),
        ..invalid(StatusCode::UNPROCESSABLE_ENTITY)
    };
    let myself = user.id == caller.user_id;
    let (actor, now) = (caller.email.clone(), app.clock.now());
    match action.as_str() {
        "role" => {
            let text = f.role.clone().unwrap_or_default();
            let Some(role) = Role::parse(text.trim()) else {
                return render(
                    &app,
                    &caller,
                    refuse(format!(
                        "'{text}' is not a role (viewer, collector or admin)"
                    )),
                )
                .await;
            };
            if myself && role != Role::Admin {
                return render(
                    &app,
                    &caller,
                    refuse(
                        "You cannot take the admin role from yourself: ask another admin, so the organization always keeps one."
                            .to_string(),
                    ),
                )
                .await;
            }
            if role != user.role {
                app.blocking(move |store| Ok(store.set_role(org, user_id, role, &actor, now)?))
                    .await?;
            }
        }
        "disable" | "enable" => {
            let disable = action == "disable";
            if myself && disable {
                return render(
                    &app,
                    &caller,
                    refuse("You cannot disable your own account.".to_string()),
                )
                .await;
            }
            if user.disabled != disable {
                app.blocking(move |store| {
                    Ok(store.set_disabled(org, user_id, disable, &actor, now)?)
                })
                .await?;
            }
        }
        "reset_password" => {
            if myself {
                return render(
                    &app,
                    &caller,
                    refuse(
                        "Resetting your own password here would end your session; ask another admin or use `arflow user passwd`."
                            .to_string(),
                    ),
                )
                .await;
            }
            let password =
                secrets::random_password().map_err(|e| AppError::Internal(e.to_string()))?;
            let p = password.clone();
            app.blocking(move |store| {
                let hash =
                    secrets::hash_password(&p).map_err(|e| AppError::Internal(e.to_string()))?;
                Ok(store.set_password(org, user_id, &hash, &actor, now)?)
            })
            .await?;
            return render(
                &app,
                &caller,
                Overrides {
                    flash: super::flash(Some("user_updated")),
                    secret: Some(Secret {
                        kind: "password",
                        subject: user.email.clone(),
                        value: password,
                        note: format!(
                            "The new password of {}: their sessions have ended. It is shown only now.",
                            user.email
                        ),
                    }),
                    ..Overrides::default()
                },
            )
            .await;
        }
        other => {
            return render(
                &app,
                &caller,
                refuse(format!(
                    "'{other}' is not something that can be done to a user (role, disable, enable, reset_password)"
                )),
            )
            .await;
        }
    }
    Ok(Redirect::to("/settings?ok=user_updated#users").into_response())
}

// ---------------------------------------------------------------------------
// API tokens

#[derive(Debug, Deserialize)]
pub struct NewTokenInput {
    user_id: Option<String>,
    name: Option<String>,
    access: Option<String>,
    expires_on: Option<String>,
}

async fn create_token(
    State(app): State<AppState>,
    caller: Caller,
    Form(f): Form<NewTokenInput>,
) -> Result<Response, PageError> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default().trim().to_string();
    let typed = TokenForm {
        user_id: text(&f.user_id),
        name: text(&f.name),
        access: text(&f.access),
        expires_on: text(&f.expires_on),
        ..TokenForm::default()
    };
    let org_id = caller.org;
    let user = match typed.user_id.parse::<i64>() {
        Ok(id) => {
            app.blocking(move |store| Ok(store.user(org_id, id)?))
                .await?
        }
        Err(_) => None,
    };
    let org = app
        .blocking(move |store| organization(store, org_id))
        .await?;
    let tz = zone(&org);
    let now = app.clock.now();
    let today = tz.to_datetime(now).date();
    let mut errors = Vec::new();
    match &user {
        None => errors.push(FieldError::new(
            "user_id",
            Some(&typed.user_id),
            "choose a user of this organization",
        )),
        Some(u) if u.disabled => errors.push(FieldError::new(
            "user_id",
            Some(&u.email),
            "this user is disabled: their tokens would be refused",
        )),
        Some(_) => {}
    }
    if typed.name.is_empty() {
        errors.push(FieldError::new(
            "name",
            None,
            "name the token after what uses it (e.g. \"ERP sync\")",
        ));
    } else if typed.name.chars().count() > 100 {
        errors.push(FieldError::new(
            "name",
            Some(&typed.name),
            "at most 100 characters",
        ));
    }
    let scopes = match typed.access.as_str() {
        "read" => Some(vec![Scope::Read]),
        "write" => Some(vec![Scope::Read, Scope::Write]),
        other => {
            errors.push(FieldError::new(
                "access",
                Some(other),
                "choose read, or read and write",
            ));
            None
        }
    };
    let expires_at = if typed.expires_on.is_empty() {
        None
    } else {
        match typed.expires_on.parse::<Date>() {
            Ok(d) if d <= today => {
                errors.push(FieldError::new(
                    "expires_on",
                    Some(&typed.expires_on),
                    format!("must be after today ({today})"),
                ));
                None
            }
            // Valid through the chosen day, in the organization's zone.
            Ok(d) => match d
                .tomorrow()
                .ok()
                .and_then(|t| tz.to_timestamp(t.to_datetime(Time::midnight())).ok())
            {
                Some(t) => Some(t),
                None => {
                    errors.push(FieldError::new(
                        "expires_on",
                        Some(&typed.expires_on),
                        "too far in the future",
                    ));
                    None
                }
            },
            Err(_) => {
                errors.push(FieldError::new(
                    "expires_on",
                    Some(&typed.expires_on),
                    "not a date (YYYY-MM-DD)",
                ));
                None
            }
        }
    };
    let (Some(user), Some(scopes), true) = (user, scopes, errors.is_empty()) else {
        let form = with_errors(errors, |errors, invalid| TokenForm {
            errors,
            invalid,
            ..typed
        });
        return render(
            &app,
            &caller,
            Overrides {
                token: Some(form),
                ..invalid(StatusCode::UNPROCESSABLE_ENTITY)
            },
        )
        .await;
    };
    let secret = secrets::new_api_token().map_err(|e| AppError::Internal(e.to_string()))?;
    let token = NewApiToken {
        user_id: user.id,
        name: typed.name.clone(),
        token_hash: secrets::sha256_hex(&secret),
        scopes: scopes.clone(),
        expires_at,
    };
    let actor = caller.email.clone();
    app.blocking(move |store| Ok(store.create_api_token(org_id, &token, &actor, now)?))
        .await?;
    let access = if scopes.contains(&Scope::Write) {
        "read and write"
    } else {
        "read-only"
    };
    render(
        &app,
        &caller,
        Overrides {
            secret: Some(Secret {
                kind: "token",
                subject: typed.name.clone(),
                value: secret,
                note: format!(
                    "A {access} token acting as {} ({}){}. Send it as \"Authorization: Bearer …\". Copy it now: it is shown only once, arflow keeps only its hash.",
                    user.email,
                    user.role.as_str(),
                    expires_at.map_or_else(String::new, |t| format!(", valid until {}", local(t, &tz)))
                ),
            }),
            ..Overrides::default()
        },
    )
    .await
}

async fn revoke_token(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Ok(token_id) = id.parse::<i64>() else {
        return Err(AppError::NotFound(format!("there is no API token #{id}")).into());
    };
    let (org, actor, now) = (caller.org, caller.email.clone(), app.clock.now());
    app.blocking(move |store| Ok(store.revoke_api_token(org, token_id, &actor, now)?))
        .await?;
    Ok(Redirect::to("/settings?ok=token_revoked#tokens").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> DunningInput {
        DunningInput {
            window_start: Some("09:00".into()),
            window_end: Some("17:30".into()),
            day_mon: Some("on".into()),
            day_tue: None,
            day_wed: Some("on".into()),
            day_thu: None,
            day_fri: None,
            day_sat: None,
            day_sun: None,
            holidays: Some("2026-12-25\r\n2026-12-24, 2026-12-25\n".into()),
            min_gap_days: Some("4".into()),
            weekly_cap: Some("3".into()),
            promise_grace_days: Some("5".into()),
            default_policy: Some("default".into()),
            min_balance: Some("10.00 EUR\n5 USD".into()),
            interest: Some("eu".into()),
        }
    }

    #[test]
    fn dunning_settings_parse_from_the_form() {
        let before = DunningSettings {
            paused: true,
            ..DunningSettings::default()
        };
        let s = parse_dunning(&input(), &before, &["default".to_string()]).unwrap();
        assert_eq!(s.send_window.start, Time::constant(9, 0, 0, 0));
        assert_eq!(
            s.send_window.days,
            vec![Weekday::Monday, Weekday::Wednesday]
        );
        assert_eq!(
            s.holidays,
            vec![
                jiff::civil::date(2026, 12, 24),
                jiff::civil::date(2026, 12, 25)
            ]
        );
        assert_eq!(
            (s.min_gap_days, s.weekly_cap, s.promise_grace_days),
            (4, 3, 5)
        );
        assert_eq!(s.min_balance.len(), 2);
        assert_eq!(s.interest_regime, Some(Regime::Eu2011_7));
        assert!(s.paused, "the pause switch is not part of the form");
    }

    #[test]
    fn dunning_mistakes_are_located() {
        let f = DunningInput {
            window_start: Some("18:00".into()),
            window_end: Some("8am".into()),
            day_mon: None,
            day_wed: None,
            holidays: Some("2026-12-25\n2026-02-30".into()),
            weekly_cap: Some("0".into()),
            min_balance: Some("10 EUR\n-1.00 USD\n3 EUR".into()),
            default_policy: Some("nope".into()),
            ..input()
        };
        let errors =
            parse_dunning(&f, &DunningSettings::default(), &["default".to_string()]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "window_end",
                "days",
                "holidays",
                "weekly_cap",
                "default_policy",
                "min_balance",
                "min_balance"
            ]
        );
        let h = &errors[2];
        assert_eq!(h.value.as_deref(), Some("2026-02-30"));
        assert!(h.reason.starts_with("line 2:"), "{}", h.reason);
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(
            parse_email(" Anna@Example.com ").unwrap(),
            "anna@example.com"
        );
        assert!(parse_email("anna").is_err());
        assert!(parse_email("an na@example.com").is_err());
        assert!(parse_email("anna@localhost").is_err());
    }
}
