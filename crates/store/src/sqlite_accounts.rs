//! SQLite implementation of [`AccountStore`].
//!
//! Writes are one `BEGIN IMMEDIATE` transaction each (see
//! [`crate::sqlite_dunning`]); timestamps are fixed-width text so session and
//! token expiry and the failed-login window compare correctly in SQL.

use arflow_domain::dunning::records::Task;
use arflow_domain::model::Stored;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use r2d2_sqlite::rusqlite::{Connection, Row, params};

use crate::StoreError;
use crate::accounts::{
    AccountStore, ApiToken, IdempotentReply, NewApiToken, NewUser, Note, Role, Session, User,
};
use crate::accounts_shared::{
    self as sh, LOGIN_FAILURES_KEPT, before, map_email_taken, normalize_email, user_not_found,
};
use crate::common::{corrupt, unknown};
use crate::dunning_shared::{conflict, not_found};
use crate::sqlite::{SqliteStore, date_text, map_err};
use crate::sqlite_dunning::{
    col, find_customer, find_invoice, insert_event, load_open_task, opt_ts, opt_ts_col,
    organization, query, query_opt, ts, ts_col,
};

const USER_COLUMNS: &str =
    "u.id, u.org_id, u.email, u.name, u.role, u.password_hash, u.created_at, u.disabled";

/// A user from the eight [`USER_COLUMNS`] starting at column `i`.
fn user_at(r: &Row<'_>, i: usize) -> Result<User, StoreError> {
    Ok(User {
        id: col(r, i)?,
        org: col(r, i + 1)?,
        email: col(r, i + 2)?,
        name: col(r, i + 3)?,
        role: sh::parse_role(&col::<String>(r, i + 4)?)?,
        password_hash: col(r, i + 5)?,
        created_at: ts_col(r, i + 6)?,
        disabled: col(r, i + 7)?,
    })
}

fn user_row(r: &Row<'_>) -> Result<User, StoreError> {
    user_at(r, 0)
}

fn load_user(conn: &Connection, org: i64, id: i64) -> Result<Option<User>, StoreError> {
    query_opt(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.org_id = ?1 AND u.id = ?2"),
        params![org, id],
        user_row,
    )
}

/// Deletes every session of the user; how many there were.
fn end_sessions(conn: &Connection, user_id: i64) -> Result<u64, StoreError> {
    let n = conn
        .execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])
        .map_err(map_err)?;
    Ok(n as u64)
}

const TOKEN_COLUMNS: &str =
    "t.id, t.org_id, t.user_id, t.name, t.token_hash, t.scopes, t.created_at, t.expires_at,
    t.last_used_at, t.revoked_at";

fn token_row(r: &Row<'_>) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: col(r, 0)?,
        org: col(r, 1)?,
        user_id: col(r, 2)?,
        name: col(r, 3)?,
        token_hash: col(r, 4)?,
        scopes: sh::parse_scopes(&col::<String>(r, 5)?)?,
        created_at: ts_col(r, 6)?,
        expires_at: opt_ts_col(r, 7)?,
        last_used_at: opt_ts_col(r, 8)?,
        revoked_at: opt_ts_col(r, 9)?,
    })
}

impl SqliteStore {
    /// Changes an open task as `change` says; logs the event `event` builds
    /// unless nothing changed.
    fn change_task(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
        change: impl FnOnce(&Task) -> Task,
        event: fn(&Task, &Task) -> crate::events::NewEvent,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let task = load_open_task(tx, org, id)?;
            let after = change(&task.record);
            if after == task.record {
                return Ok(());
            }
            tx.execute(
                "UPDATE tasks SET assignee = ?1, snoozed_until = ?2 WHERE id = ?3 AND org_id = ?4",
                params![after.assignee, after.snoozed_until.map(date_text), id, org],
            )
            .map_err(map_err)?;
            insert_event(tx, org, actor, now, &event(&task.record, &after))
        })
    }
}

impl AccountStore for SqliteStore {
    fn users(&self, org: i64) -> Result<Vec<User>, StoreError> {
        self.read(|c| {
            query(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.org_id = ?1 ORDER BY u.email"),
                [org],
                user_row,
            )
        })
    }

    fn user(&self, org: i64, id: i64) -> Result<Option<User>, StoreError> {
        self.read(|c| load_user(c, org, id))
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.read(|c| {
            query_opt(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = ?1"),
                [normalize_email(email)],
                user_row,
            )
        })
    }

    fn create_user(
        &self,
        org: i64,
        user: &NewUser,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let email = normalize_email(&user.email);
        self.write(|tx| {
            organization(tx, org)?;
            tx.execute(
                "INSERT INTO users (org_id, email, name, role, password_hash, created_at, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                params![
                    org,
                    email,
                    user.name,
                    user.role.as_str(),
                    user.password_hash,
                    ts(now)
                ],
            )
            .map_err(|e| map_email_taken(map_err(e), &email))?;
            let id = tx.last_insert_rowid();
            insert_event(tx, org, actor, now, &sh::user_created(&email, user))?;
            Ok(id)
        })
    }

    fn set_password(
        &self,
        org: i64,
        user_id: i64,
        password_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let user = load_user(tx, org, user_id)?.ok_or(user_not_found(user_id))?;
            tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2 AND org_id = ?3",
                params![password_hash, user_id, org],
            )
            .map_err(map_err)?;
            let ended = end_sessions(tx, user_id)?;
            insert_event(tx, org, actor, now, &sh::password_changed(&user, ended))
        })
    }

    fn set_role(
        &self,
        org: i64,
        user_id: i64,
        role: Role,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let user = load_user(tx, org, user_id)?.ok_or(user_not_found(user_id))?;
            if user.role == role {
                return Ok(());
            }
            tx.execute(
                "UPDATE users SET role = ?1 WHERE id = ?2 AND org_id = ?3",
                params![role.as_str(), user_id, org],
            )
            .map_err(map_err)?;
            insert_event(tx, org, actor, now, &sh::role_changed(&user, role))
        })
    }

    fn set_disabled(
        &self,
        org: i64,
        user_id: i64,
        disabled: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let user = load_user(tx, org, user_id)?.ok_or(user_not_found(user_id))?;
            if user.disabled == disabled {
                return Ok(());
            }
            tx.execute(
                "UPDATE users SET disabled = ?1 WHERE id = ?2 AND org_id = ?3",
                params![disabled, user_id, org],
            )
            .map_err(map_err)?;
            let ended = if disabled {
                end_sessions(tx, user_id)?
            } else {
                0
            };
            insert_event(
                tx,
                org,
                actor,
                now,
                &sh::disabled_changed(&user, disabled, ended),
            )
        })
    }

    fn create_session(&self, session: &Session, now: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            let user = load_user(tx, session.org, session.user_id)?
                .ok_or(user_not_found(session.user_id))?;
            if user.disabled {
                return Err(conflict(format!("user {} is disabled", user.email)));
            }
            tx.execute(
                "INSERT INTO sessions (id_hash, user_id, org_id, csrf_token, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    session.id_hash,
                    session.user_id,
                    session.org,
                    session.csrf_token,
                    ts(session.created_at),
                    ts(session.expires_at)
                ],
            )
            .map_err(map_err)?;
            insert_event(
                tx,
                session.org,
                &user.email,
                now,
                &sh::logged_in(&user, session.expires_at),
            )
        })
    }

    fn session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Session, User)>, StoreError> {
        self.read(|c| {
            query_opt(
                c,
                &format!(
                    "SELECT s.id_hash, s.user_id, s.org_id, s.csrf_token, s.created_at, s.expires_at, {USER_COLUMNS}
                     FROM sessions s JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
                     WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0"
                ),
                params![id_hash, ts(now)],
                |r| {
                    Ok((
                        Session {
                            id_hash: col(r, 0)?,
                            user_id: col(r, 1)?,
                            org: col(r, 2)?,
                            csrf_token: col(r, 3)?,
                            created_at: ts_col(r, 4)?,
                            expires_at: ts_col(r, 5)?,
                        },
                        user_at(r, 6)?,
                    ))
                },
            )
        })
    }

    fn extend_session(&self, id_hash: &str, expires_at: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sessions SET expires_at = ?1 WHERE id_hash = ?2",
                params![ts(expires_at), id_hash],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn delete_session(&self, id_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            let found = query_opt(
                tx,
                "SELECT s.org_id, u.email FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1",
                [id_hash],
                |r| Ok((col::<i64>(r, 0)?, col::<String>(r, 1)?)),
            )?;
            let Some((org, email)) = found else {
                return Ok(());
            };
            tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])
                .map_err(map_err)?;
            insert_event(tx, org, &email, now, &sh::logged_out(&email))
        })
    }

    fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(|tx| {
            let n = tx
                .execute("DELETE FROM sessions WHERE expires_at <= ?1", [ts(now)])
                .map_err(map_err)?;
            Ok(n as u64)
        })
    }

    fn record_login_failure(
        &self,
        email: &str,
        ip: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM login_failures WHERE at < ?1",
                [ts(before(now, LOGIN_FAILURES_KEPT))],
            )
            .map_err(map_err)?;
            tx.execute(
                "INSERT INTO login_failures (email, ip, at) VALUES (?1, ?2, ?3)",
                params![normalize_email(email), ip, ts(now)],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn login_failures(
        &self,
        email: &str,
        now: Timestamp,
        window: SignedDuration,
    ) -> Result<u32, StoreError> {
        self.read(|c| {
            let n: i64 = query(
                c,
                "SELECT count(*) FROM login_failures WHERE email = ?1 AND at > ?2",
                params![normalize_email(email), ts(before(now, window))],
                |r| col(r, 0),
            )?
            .into_iter()
            .next()
            .unwrap_or(0);
            u32::try_from(n).map_err(|_| corrupt("login failure count", n))
        })
    }

    fn clear_login_failures(&self, email: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM login_failures WHERE email = ?1",
                [normalize_email(email)],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn create_api_token(
        &self,
        org: i64,
        token: &NewApiToken,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            let owner = load_user(tx, org, token.user_id)?.ok_or(user_not_found(token.user_id))?;
            tx.execute(
                "INSERT INTO api_tokens (org_id, user_id, name, token_hash, scopes, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    org,
                    token.user_id,
                    token.name,
                    token.token_hash,
                    sh::scopes_text(&token.scopes),
                    ts(now),
                    opt_ts(token.expires_at)
                ],
            )
            .map_err(map_err)?;
            let id = tx.last_insert_rowid();
            insert_event(
                tx,
                org,
                actor,
                now,
                &sh::api_token_created(id, token, &owner.email),
            )?;
            Ok(id)
        })
    }

    fn api_tokens(&self, org: i64) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|c| {
            query(
                c,
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.org_id = ?1 ORDER BY t.id"
                ),
                [org],
                token_row,
            )
        })
    }

    fn api_token_by_hash(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(ApiToken, User)>, StoreError> {
        let found = self.read(|c| {
            query_opt(
                c,
                &format!(
                    "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                     FROM api_tokens t JOIN users u ON u.id = t.user_id AND u.org_id = t.org_id
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL
                       AND (t.expires_at IS NULL OR t.expires_at > ?2) AND u.disabled = 0"
                ),
                params![token_hash, ts(now)],
                |r| Ok((token_row(r)?, user_at(r, 10)?)),
            )
        })?;
        let Some((mut token, user)) = found else {
            return Ok(None);
        };
        if sh::needs_touch(token.last_used_at, now) {
            // Conditional, so concurrent requests write it once.
            let n = self.write(|tx| {
                tx.execute(
                    "UPDATE api_tokens SET last_used_at = ?1
                     WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?3)",
                    params![ts(now), token.id, ts(before(now, sh::LAST_USED_EVERY))],
                )
                .map_err(map_err)
            })?;
            if n == 1 {
                token.last_used_at = Some(crate::common::truncate_micros(now));
            }
        }
        Ok(Some((token, user)))
    }

    fn revoke_api_token(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let token = query_opt(
                tx,
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.org_id = ?1 AND t.id = ?2"
                ),
                params![org, id],
                token_row,
            )?
            .ok_or(not_found("API token", id))?;
            if token.revoked_at.is_some() {
                return Err(conflict(format!("API token #{id} is already revoked")));
            }
            tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND org_id = ?3",
                params![ts(now), id, org],
            )
            .map_err(map_err)?;
            let owner = load_user(tx, org, token.user_id)?.ok_or_else(|| {
                corrupt(
                    "API token",
                    format!("#{id} has no user in its organization"),
                )
            })?;
            let after = ApiToken {
                revoked_at: Some(crate::common::truncate_micros(now)),
                ..token
            };
            insert_event(
                tx,
                org,
                actor,
                now,
                &sh::api_token_revoked(&after, &owner.email),
            )
        })
    }

    fn notes(&self, org: i64, customer: &str) -> Result<Vec<Stored<Note>>, StoreError> {
        self.read(|c| {
            query(
                c,
                "SELECT n.id, c.external_id, i.number, n.author, n.body, n.created_at
                 FROM notes n JOIN customers c ON c.id = n.customer_id LEFT JOIN invoices i ON i.id = n.invoice_id
                 WHERE n.org_id = ?1 AND c.external_id = ?2 ORDER BY n.created_at, n.id",
                params![org, customer],
                |r| {
                    Ok(Stored {
                        id: col(r, 0)?,
                        record: Note {
                            customer: col(r, 1)?,
                            invoice: col(r, 2)?,
                            author: col(r, 3)?,
                            body: col(r, 4)?,
                            created_at: ts_col(r, 5)?,
                        },
                    })
                },
            )
        })
    }

    fn add_note(&self, org: i64, note: &Note) -> Result<i64, StoreError> {
        self.write(|tx| insert_note(tx, org, note))
    }

    fn complete_task_with_note(
        &self,
        org: i64,
        id: i64,
        actor: &str,
        now: Timestamp,
        note: &Note,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            crate::sqlite_dunning::complete_open_task(tx, org, id, actor, now)?;
            insert_note(tx, org, note)
        })
    }

    fn assign_task(
        &self,
        org: i64,
        id: i64,
        assignee: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.change_task(
            org,
            id,
            actor,
            now,
            |t| Task {
                assignee: assignee.map(str::to_owned),
                ..t.clone()
            },
            sh::task_assigned,
        )
    }

    fn snooze_task(
        &self,
        org: i64,
        id: i64,
        until: Option<Date>,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.change_task(
            org,
            id,
            actor,
            now,
            |t| Task {
                snoozed_until: until,
                ..t.clone()
            },
            sh::task_snoozed,
        )
    }

    fn idempotent_reply(&self, org: i64, key: &str) -> Result<Option<IdempotentReply>, StoreError> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT request_hash, status, body, created_at FROM idempotency_replies
                 WHERE org_id = ?1 AND key = ?2",
                params![org, key],
                |r| {
                    let status: i64 = col(r, 1)?;
                    Ok(IdempotentReply {
                        request_hash: col(r, 0)?,
                        status: u16::try_from(status)
                            .map_err(|_| corrupt("reply status", status))?,
                        body: col(r, 2)?,
                        created_at: ts_col(r, 3)?,
                    })
                },
            )
        })
    }

    fn save_idempotent_reply(
        &self,
        org: i64,
        key: &str,
        reply: &IdempotentReply,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            organization(tx, org)?;
            let n = tx
                .execute(
                    "INSERT INTO idempotency_replies (org_id, key, request_hash, status, body, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (org_id, key) DO NOTHING",
                    params![
                        org,
                        key,
                        reply.request_hash,
                        reply.status,
                        reply.body,
                        ts(reply.created_at)
                    ],
                )
                .map_err(map_err)?;
            Ok(n == 1)
        })
    }

    fn ledger_version(&self, org: i64) -> Result<i64, StoreError> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT ledger_version FROM organizations WHERE id = ?1",
                [org],
                |r| col(r, 0),
            )?
            .ok_or(not_found("organization", org))
        })
    }
}

/// Inserts a note (and its `note.added` event) inside the caller's transaction.
fn insert_note(tx: &Connection, org: i64, note: &Note) -> Result<i64, StoreError> {
    let customer_id = find_customer(tx, org, &note.customer)?
        .ok_or_else(|| unknown("customer", &note.customer))?;
    let invoice_id = match &note.invoice {
        None => None,
        Some(number) => {
            let (id, owner) =
                find_invoice(tx, org, number)?.ok_or_else(|| unknown("invoice", number))?;
            if owner != note.customer {
                return Err(sh::invoice_of_another_customer(
                    number,
                    &owner,
                    &note.customer,
                ));
            }
            Some(id)
        }
    };
    tx.execute(
        "INSERT INTO notes (org_id, customer_id, invoice_id, author, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            org,
            customer_id,
            invoice_id,
            note.author,
            note.body,
            ts(note.created_at)
        ],
    )
    .map_err(map_err)?;
    let id = tx.last_insert_rowid();
    insert_event(
        tx,
        org,
        &note.author,
        note.created_at,
        &sh::note_added(id, note),
    )?;
    Ok(id)
}
