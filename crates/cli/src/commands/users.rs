//! `arflow user`: the web application's users, their roles and API tokens,
//! in the organization the command line opens. Passwords are hashed with
//! Argon2id and tokens stored as their SHA-256 (`arflow_web::secrets`); a
//! generated password or a token's secret is printed once and never again.

use std::io::BufRead;

use anyhow::{Context as _, Result, bail, ensure};
use arflow_store::{ApiToken, NewApiToken, NewUser, Scope, User};
use arflow_web::secrets::{
    MIN_PASSWORD_LEN, hash_password, new_api_token, random_password, sha256_hex,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::args::{TokenCommand, UserArgs, UserCommand};
use crate::context::Context;
use crate::output::Table;

/// Who the log names for changes made from the command line.
const ACTOR: &str = "cli";

pub fn run(ctx: &Context, args: &UserArgs) -> Result<()> {
    let org = ctx.org.id;
    let now = ctx.clock.now();
    match &args.command {
        UserCommand::Add {
            email,
            role,
            name,
            password_stdin,
        } => {
            let email = parse_email(email)?;
            let name = match name {
                Some(n) => {
                    let n = n.trim();
                    ensure!(!n.is_empty(), "--name must not be empty");
                    n.to_string()
                }
                None => email.split('@').next().unwrap_or_default().to_string(),
            };
            let (password, generated) = password(*password_stdin)?;
            let user = NewUser {
                email: email.clone(),
                name,
                role: *role,
                password_hash: hash_password(&password)?,
            };
            ctx.store.create_user(org, &user, ACTOR, now)?;
            println!(
                "User {email} created with role {} in organization \"{}\".",
                role.as_str(),
                ctx.org.name
            );
            if generated {
                print_generated(&password);
            }
        }
        UserCommand::List { json } => {
            let users = ctx.store.users(org)?;
            if *json {
                let list: Vec<Value> = users.iter().map(user_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let mut t = Table::new(&["email", "name", "role", "state", "created"]);
            for u in &users {
                t.row(vec![
                    u.email.clone(),
                    u.name.clone(),
                    u.role.as_str().to_string(),
                    if u.disabled { "disabled" } else { "active" }.to_string(),
                    day(u.created_at),
                ]);
            }
            t.print();
        }
        UserCommand::Passwd {
            email,
            password_stdin,
        } => {
            let user = find_user(ctx, email)?;
            let (password, generated) = password(*password_stdin)?;
            ctx.store
                .set_password(org, user.id, &hash_password(&password)?, ACTOR, now)?;
            println!(
                "Password of {} changed; their sessions have ended.",
                user.email
            );
            if generated {
                print_generated(&password);
            }
        }
        UserCommand::Role { email, role } => {
            let user = find_user(ctx, email)?;
            if user.role == *role {
                println!("{} already has role {}.", user.email, role.as_str());
                return Ok(());
            }
            ctx.store.set_role(org, user.id, *role, ACTOR, now)?;
            println!(
                "{} now has role {} (was {}).",
                user.email,
                role.as_str(),
                user.role.as_str()
            );
        }
        UserCommand::Disable { email } => {
            let user = find_user(ctx, email)?;
            if user.disabled {
                println!("{} is already disabled.", user.email);
                return Ok(());
            }
            ctx.store.set_disabled(org, user.id, true, ACTOR, now)?;
            println!(
                "{} is disabled: their sessions have ended and their API tokens are refused.",
                user.email
            );
        }
        UserCommand::Enable { email } => {
            let user = find_user(ctx, email)?;
            if !user.disabled {
                println!("{} is not disabled.", user.email);
                return Ok(());
            }
            ctx.store.set_disabled(org, user.id, false, ACTOR, now)?;
            println!("{} can log in again.", user.email);
        }
        UserCommand::Token(t) => token(ctx, &t.command, now)?,
    }
    Ok(())
}

fn token(ctx: &Context, command: &TokenCommand, now: Timestamp) -> Result<()> {
    let org = ctx.org.id;
    match command {
        TokenCommand::Create {
            email,
            name,
            scopes,
            expires_in_days,
        } => {
            let user = find_user(ctx, email)?;
            let name = name.trim();
            ensure!(!name.is_empty(), "--name must not be empty");
            let expires_at = expires_in_days
                .map(|d| now.checked_add(SignedDuration::from_hours(24 * i64::from(d))))
                .transpose()
                .context("--expires-in-days is too far in the future")?;
            let secret = new_api_token()?;
            let token = NewApiToken {
                user_id: user.id,
                name: name.to_string(),
                token_hash: sha256_hex(&secret),
                scopes: scopes.clone(),
                expires_at,
            };
            let id = ctx.store.create_api_token(org, &token, ACTOR, now)?;
            let mut scopes = scopes.clone();
            scopes.sort_unstable();
            scopes.dedup();
            println!(
                "API token #{id} \"{name}\" for {} (scopes: {}; {}):",
                user.email,
                scope_list(&scopes),
                expires_at.map_or("does not expire".to_string(), |t| format!(
                    "expires {}",
                    day(t)
                ))
            );
            println!("{secret}");
            println!("This secret will not be shown again: copy it now.");
            if user.disabled {
                println!(
                    "Note: {} is disabled, so the token is refused until the user is enabled.",
                    user.email
                );
            }
        }
        TokenCommand::List { json } => {
            let tokens = ctx.store.api_tokens(org)?;
            let users = ctx.store.users(org)?;
            let owner = |t: &ApiToken| {
                users
                    .iter()
                    .find(|u| u.id == t.user_id)
                    .map_or_else(|| format!("user #{}", t.user_id), |u| u.email.clone())
            };
            if *json {
                let list: Vec<Value> = tokens
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "user": owner(t),
                            "name": t.name,
                            "scopes": t.scopes,
                            "created_at": t.created_at,
                            "last_used_at": t.last_used_at,
                            "expires_at": t.expires_at,
                            "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                "id",
                "user",
                "name",
                "scopes",
                "created",
                "last used",
                "expires",
                "revoked",
            ]);
            for tok in &tokens {
                t.row(vec![
                    tok.id.to_string(),
                    owner(tok),
                    tok.name.clone(),
                    scope_list(&tok.scopes),
                    day(tok.created_at),
                    tok.last_used_at.map_or("-".to_string(), minute),
                    tok.expires_at.map_or("never".to_string(), day),
                    tok.revoked_at.map_or("-".to_string(), day),
                ]);
            }
            t.print();
        }
        TokenCommand::Revoke { id } => {
            ctx.store.revoke_api_token(org, *id, ACTOR, now)?;
            println!("API token #{id} revoked: requests with it are refused from now on.");
        }
    }
    Ok(())
}

/// Lower-cased and trimmed; one `@` with something on both sides, no blanks.
fn parse_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !valid {
        bail!(
            "'{raw}' is not an email address (expected one @ and no spaces, like anna@example.com)"
        );
    }
    Ok(email)
}

/// The user with this email in the organization the command line opened.
fn find_user(ctx: &Context, email: &str) -> Result<User> {
    let email = parse_email(email)?;
    match ctx.store.user_by_email(&email)? {
        Some(u) if u.org == ctx.org.id => Ok(u),
        _ => bail!(
            "there is no user {email} in organization \"{}\" (see `arflow user list`)",
            ctx.org.name
        ),
    }
}

/// The password from the first line of standard input, or a generated one
/// (then `true`: it must be shown).
fn password(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((random_password()?, true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("could not read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    ensure!(
        !password.is_empty(),
        "no password on standard input (give one line, or leave out --password-stdin to generate one)"
    );
    ensure!(
        password.chars().count() >= MIN_PASSWORD_LEN,
        "the password is too short: it must have at least {MIN_PASSWORD_LEN} characters"
    );
    Ok((password, false))
}

fn print_generated(password: &str) {
    println!("Password: {password}");
    println!("It will not be shown again: give it to the user now.");
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "role": u.role,
        "disabled": u.disabled,
        "created_at": u.created_at,
    })
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

fn minute(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}
