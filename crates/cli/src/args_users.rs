//! Arguments of `arflow user`: accounts for the web application and API tokens.

use arflow_store::{Role, Scope};
use clap::{Args, Subcommand};

fn role(s: &str) -> Result<Role, String> {
    Role::parse(&s.trim().to_lowercase())
        .ok_or_else(|| format!("'{s}' is not a role: use admin, collector or viewer"))
}

fn scope(s: &str) -> Result<Scope, String> {
    Scope::parse(&s.trim().to_lowercase())
        .ok_or_else(|| format!("'{s}' is not a scope: use read or write"))
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user who logs in to the web application. Without
    /// --password-stdin a password is generated and printed once.
    Add {
        /// The login (lower-cased), unique across the database.
        email: String,
        /// admin (everything), collector (also notes, holds, disputes,
        /// promises, tasks) or viewer (reads only).
        #[arg(long, value_parser = role)]
        role: Role,
        /// Display name (default: the part of the email before the @).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// The organization's users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a new password (generated and printed once unless
    /// --password-stdin); ends the user's sessions.
    Passwd {
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role: admin, collector or viewer.
    Role {
        email: String,
        #[arg(value_parser = role)]
        role: Role,
    },
    /// Stop a user from logging in: ends their sessions and refuses their API tokens.
    Disable { email: String },
    /// Let a disabled user log in again.
    Enable { email: String },
    /// API tokens for the REST API.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; its secret is printed once.
    Create {
        /// The user the token acts as (it never exceeds the user's role).
        email: String,
        /// What the token is for, e.g. "nightly export".
        #[arg(long)]
        name: String,
        /// read (GET requests) or write (also changes); repeat for both.
        #[arg(long = "scope", value_parser = scope, value_delimiter = ',', default_value = "read")]
        scopes: Vec<Scope>,
        /// The token stops working after this many days (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// The organization's API tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token now: requests with it are refused from then on.
    Revoke { id: i64 },
}
