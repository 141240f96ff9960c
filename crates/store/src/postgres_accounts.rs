//! PostgreSQL implementation of [`AccountStore`].
//!
//! Same semantics as SQLite. A row about to change is read `FOR UPDATE`
//! first, so concurrent changes of one user, token or task take turns and
//! each logs the change it made.

use arflow_domain::dunning::records::Task;
use arflow_domain::model::Stored;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use postgres::{GenericClient, Row, Transaction};

use crate::StoreError;
use crate::accounts::{
    AccountStore, ApiToken, IdempotentReply, NewApiToken, NewUser, Note, Role, Session, User,
};
use crate::accounts_shared::{
    self as sh, LOGIN_FAILURES_KEPT, before, map_email_taken, normalize_email, user_not_found,
};
use crate::common::{corrupt, truncate_micros, unknown};
use crate::dunning_shared::{conflict, not_found};
use crate::postgres::{PostgresStore, date_text, g};
use crate::postgres_dunning::{
    execute, find_customer, find_invoice, insert_event, load_open_task, opt_ts, opt_ts_col,
    organization, query, query_opt, ts, ts_col,
};

const USER_COLUMNS: &str =
    "u.id, u.org_id, u.email, u.name, u.role, u.password_hash, u.created_at, u.disabled";

/// A user from the eight [`USER_COLUMNS`] starting at column `i`.
fn user_at(r: &Row, i: usize) -> Result<User, StoreError> {
    Ok(User {
        id: g(r, i)?,
        org: g(r, i + 1)?,
        email: g(r, i + 2)?,
        name: g(r, i + 3)?,
        role: sh::parse_role(g(r, i + 4)?)?,
        password_hash: g(r, i + 5)?,
        created_at: ts_col(r, i + 6)?,
        disabled: g(r, i + 7)?,
    })
}

fn user_row(r: &Row) -> Result<User, StoreError> {
    user_at(r, 0)
}

/// The user, locked for the rest of the transaction when `lock`.
fn load_user<C: GenericClient>(
    c: &mut C,
    org: i64,
    id: i64,
    lock: bool,
) -> Result<Option<User>, StoreError> {
    query_opt(
        c,
        &format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.org_id = $1 AND u.id = $2{}",
            if lock { " FOR UPDATE" } else { "" }
        ),
        &[&org, &id],
        user_row,
    )
}

/// Deletes every session of the user; how many there were.
fn end_sessions<C: GenericClient>(c: &mut C, user_id: i64) -> Result<u64, StoreError> {
    execute(c, "DELETE FROM sessions WHERE user_id = $1", &[&user_id])
}

const TOKEN_COLUMNS: &str =
    "t.id, t.org_id, t.user_id, t.name, t.token_hash, t.scopes, t.created_at, t.expires_at,
    t.last_used_at, t.revoked_at";

fn token_row(r: &Row) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: g(r, 0)?,
        org: g(r, 1)?,
        user_id: g(r, 2)?,
        name: g(r, 3)?,
        token_hash: g(r, 4)?,
        scopes: sh::parse_scopes(g(r, 5)?)?,
        created_at: ts_col(r, 6)?,
        expires_at: opt_ts_col(r, 7)?,
        last_used_at: opt_ts_col(r, 8)?,
        revoked_at: opt_ts_col(r, 9)?,
    })
}

impl PostgresStore {
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
            execute(
                tx,
                "UPDATE tasks SET assignee = $1, snoozed_until = $2::text::date WHERE id = $3 AND org_id = $4",
                &[
                    &after.assignee,
                    &after.snoozed_until.map(date_text),
                    &id,
                    &org,
                ],
            )?;
            insert_event(tx, org, actor, now, event(&task.record, &after))
        })
    }
}

impl AccountStore for PostgresStore {
    fn users(&self, org: i64) -> Result<Vec<User>, StoreError> {
        query(
            &mut *self.conn()?,
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.org_id = $1 ORDER BY u.email"),
            &[&org],
            user_row,
        )
    }

    fn user(&self, org: i64, id: i64) -> Result<Option<User>, StoreError> {
        load_user(&mut *self.conn()?, org, id, false)
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        query_opt(
            &mut *self.conn()?,
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1"),
            &[&normalize_email(email)],
            user_row,
        )
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
            let id: i64 = query_opt(
                tx,
                "INSERT INTO users (org_id, email, name, role, password_hash, created_at, disabled)
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE) RETURNING id",
                &[
                    &org,
                    &email,
                    &user.name,
                    &user.role.as_str(),
                    &user.password_hash,
                    &ts(now)?,
                ],
                |r| g(r, 0),
            )
            .map_err(|e| map_email_taken(e, &email))?
            .ok_or_else(|| StoreError::Database("INSERT … RETURNING returned no row".into()))?;
            insert_event(tx, org, actor, now, sh::user_created(&email, user))?;
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
            let user = load_user(tx, org, user_id, true)?.ok_or(user_not_found(user_id))?;
            execute(
                tx,
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND org_id = $3",
                &[&password_hash, &user_id, &org],
            )?;
            let ended = end_sessions(tx, user_id)?;
            insert_event(tx, org, actor, now, sh::password_changed(&user, ended))
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
            let user = load_user(tx, org, user_id, true)?.ok_or(user_not_found(user_id))?;
            if user.role == role {
                return Ok(());
            }
            execute(
                tx,
                "UPDATE users SET role = $1 WHERE id = $2 AND org_id = $3",
                &[&role.as_str(), &user_id, &org],
            )?;
            insert_event(tx, org, actor, now, sh::role_changed(&user, role))
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
            let user = load_user(tx, org, user_id, true)?.ok_or(user_not_found(user_id))?;
            if user.disabled == disabled {
                return Ok(());
            }
            execute(
                tx,
                "UPDATE users SET disabled = $1 WHERE id = $2 AND org_id = $3",
                &[&disabled, &user_id, &org],
            )?;
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
                sh::disabled_changed(&user, disabled, ended),
            )
        })
    }

    fn create_session(&self, session: &Session, now: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            // FOR SHARE: a concurrent disable or password change waits for
            // this session to exist, then ends it.
            let user = query_opt(
                tx,
                &format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.org_id = $1 AND u.id = $2 FOR SHARE"
                ),
                &[&session.org, &session.user_id],
                user_row,
            )?
            .ok_or(user_not_found(session.user_id))?;
            if user.disabled {
                return Err(conflict(format!("user {} is disabled", user.email)));
            }
            execute(
                tx,
                "INSERT INTO sessions (id_hash, user_id, org_id, csrf_token, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &session.id_hash,
                    &session.user_id,
                    &session.org,
                    &session.csrf_token,
                    &ts(session.created_at)?,
                    &ts(session.expires_at)?,
                ],
            )?;
            insert_event(
                tx,
                session.org,
                &user.email,
                now,
                sh::logged_in(&user, session.expires_at),
            )
        })
    }

    fn session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Session, User)>, StoreError> {
        query_opt(
            &mut *self.conn()?,
            &format!(
                "SELECT s.id_hash, s.user_id, s.org_id, s.csrf_token, s.created_at, s.expires_at, {USER_COLUMNS}
                 FROM sessions s JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND NOT u.disabled"
            ),
            &[&id_hash, &ts(now)?],
            |r| {
                Ok((
                    Session {
                        id_hash: g(r, 0)?,
                        user_id: g(r, 1)?,
                        org: g(r, 2)?,
                        csrf_token: g(r, 3)?,
                        created_at: ts_col(r, 4)?,
                        expires_at: ts_col(r, 5)?,
                    },
                    user_at(r, 6)?,
                ))
            },
        )
    }

    fn extend_session(&self, id_hash: &str, expires_at: Timestamp) -> Result<(), StoreError> {
        execute(
            &mut *self.conn()?,
            "UPDATE sessions SET expires_at = $1 WHERE id_hash = $2",
            &[&ts(expires_at)?, &id_hash],
        )?;
        Ok(())
    }

    fn delete_session(&self, id_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        self.write(|tx| {
            // DELETE … RETURNING: of two concurrent logouts, one logs it.
            let found = query_opt(
                tx,
                "DELETE FROM sessions s USING users u WHERE s.id_hash = $1 AND u.id = s.user_id
                 RETURNING s.org_id, u.email",
                &[&id_hash],
                |r| Ok((g::<i64>(r, 0)?, g::<String>(r, 1)?)),
            )?;
            let Some((org, email)) = found else {
                return Ok(());
            };
            insert_event(tx, org, &email, now, sh::logged_out(&email))
        })
    }

    fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        execute(
            &mut *self.conn()?,
            "DELETE FROM sessions WHERE expires_at <= $1",
            &[&ts(now)?],
        )
    }

    fn record_login_failure(
        &self,
        email: &str,
        ip: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            execute(
                tx,
                "DELETE FROM login_failures WHERE at < $1",
                &[&ts(before(now, LOGIN_FAILURES_KEPT))?],
            )?;
            execute(
                tx,
                "INSERT INTO login_failures (email, ip, at) VALUES ($1, $2, $3)",
                &[&normalize_email(email), &ip, &ts(now)?],
            )?;
            Ok(())
        })
    }

    fn login_failures(
        &self,
        email: &str,
        now: Timestamp,
        window: SignedDuration,
    ) -> Result<u32, StoreError> {
        let n: i64 = query_opt(
            &mut *self.conn()?,
            "SELECT count(*) FROM login_failures WHERE email = $1 AND at > $2",
            &[&normalize_email(email), &ts(before(now, window))?],
            |r| g(r, 0),
        )?
        .unwrap_or(0);
        u32::try_from(n).map_err(|_| corrupt("login failure count", n))
    }

    fn clear_login_failures(&self, email: &str) -> Result<(), StoreError> {
        execute(
            &mut *self.conn()?,
            "DELETE FROM login_failures WHERE email = $1",
            &[&normalize_email(email)],
        )?;
        Ok(())
    }

    fn create_api_token(
        &self,
        org: i64,
        token: &NewApiToken,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            let owner =
                load_user(tx, org, token.user_id, false)?.ok_or(user_not_found(token.user_id))?;
            let id: i64 = query_opt(
                tx,
                "INSERT INTO api_tokens (org_id, user_id, name, token_hash, scopes, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &org,
                    &token.user_id,
                    &token.name,
                    &token.token_hash,
                    &sh::scopes_text(&token.scopes),
                    &ts(now)?,
                    &opt_ts(token.expires_at)?,
                ],
                |r| g(r, 0),
            )?
            .ok_or_else(|| StoreError::Database("INSERT … RETURNING returned no row".into()))?;
            insert_event(
                tx,
                org,
                actor,
                now,
                sh::api_token_created(id, token, &owner.email),
            )?;
            Ok(id)
        })
    }

    fn api_tokens(&self, org: i64) -> Result<Vec<ApiToken>, StoreError> {
        query(
            &mut *self.conn()?,
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.org_id = $1 ORDER BY t.id"),
            &[&org],
            token_row,
        )
    }

    fn api_token_by_hash(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(ApiToken, User)>, StoreError> {
        let mut conn = self.conn()?;
        let found = query_opt(
            &mut *conn,
            &format!(
                "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                 FROM api_tokens t JOIN users u ON u.id = t.user_id AND u.org_id = t.org_id
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL
                   AND (t.expires_at IS NULL OR t.expires_at > $2) AND NOT u.disabled"
            ),
            &[&token_hash, &ts(now)?],
            |r| Ok((token_row(r)?, user_at(r, 10)?)),
        )?;
        let Some((mut token, user)) = found else {
            return Ok(None);
        };
        if sh::needs_touch(token.last_used_at, now) {
            // Conditional, so concurrent requests write it once.
            let n = execute(
                &mut *conn,
                "UPDATE api_tokens SET last_used_at = $1
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
                &[&ts(now)?, &token.id, &ts(before(now, sh::LAST_USED_EVERY))?],
            )?;
            if n == 1 {
                token.last_used_at = Some(truncate_micros(now));
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
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.org_id = $1 AND t.id = $2 FOR UPDATE"
                ),
                &[&org, &id],
                token_row,
            )?
            .ok_or(not_found("API token", id))?;
            if token.revoked_at.is_some() {
                return Err(conflict(format!("API token #{id} is already revoked")));
            }
            execute(
                tx,
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND org_id = $3",
                &[&ts(now)?, &id, &org],
            )?;
            let owner = load_user(tx, org, token.user_id, false)?.ok_or_else(|| {
                corrupt(
                    "API token",
                    format!("#{id} has no user in its organization"),
                )
            })?;
            let after = ApiToken {
                revoked_at: Some(truncate_micros(now)),
                ..token
            };
            insert_event(
                tx,
                org,
                actor,
                now,
                sh::api_token_revoked(&after, &owner.email),
            )
        })
    }

    fn notes(&self, org: i64, customer: &str) -> Result<Vec<Stored<Note>>, StoreError> {
        query(
            &mut *self.conn()?,
            "SELECT n.id, c.external_id, i.number, n.author, n.body, n.created_at
             FROM notes n JOIN customers c ON c.id = n.customer_id LEFT JOIN invoices i ON i.id = n.invoice_id
             WHERE n.org_id = $1 AND c.external_id = $2 ORDER BY n.created_at, n.id",
            &[&org, &customer],
            |r| {
                Ok(Stored {
                    id: g(r, 0)?,
                    record: Note {
                        customer: g(r, 1)?,
                        invoice: g(r, 2)?,
                        author: g(r, 3)?,
                        body: g(r, 4)?,
                        created_at: ts_col(r, 5)?,
                    },
                })
            },
        )
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
            crate::postgres_dunning::complete_open_task(tx, org, id, actor, now)?;
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
        query_opt(
            &mut *self.conn()?,
            "SELECT request_hash, status, body, created_at FROM idempotency_replies
             WHERE org_id = $1 AND key = $2",
            &[&org, &key],
            |r| {
                let status: i32 = g(r, 1)?;
                Ok(IdempotentReply {
                    request_hash: g(r, 0)?,
                    status: u16::try_from(status).map_err(|_| corrupt("reply status", status))?,
                    body: g(r, 2)?,
                    created_at: ts_col(r, 3)?,
                })
            },
        )
    }

    fn save_idempotent_reply(
        &self,
        org: i64,
        key: &str,
        reply: &IdempotentReply,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            organization(tx, org)?;
            let n = execute(
                tx,
                "INSERT INTO idempotency_replies (org_id, key, request_hash, status, body, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, key) DO NOTHING",
                &[
                    &org,
                    &key,
                    &reply.request_hash,
                    &i32::from(reply.status),
                    &reply.body,
                    &ts(reply.created_at)?,
                ],
            )?;
            Ok(n == 1)
        })
    }

    fn ledger_version(&self, org: i64) -> Result<i64, StoreError> {
        query_opt(
            &mut *self.conn()?,
            "SELECT ledger_version FROM organizations WHERE id = $1",
            &[&org],
            |r| g(r, 0),
        )?
        .ok_or(not_found("organization", org))
    }
}

/// Inserts a note (and its `note.added` event) inside the caller's transaction.
fn insert_note(tx: &mut Transaction<'_>, org: i64, note: &Note) -> Result<i64, StoreError> {
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
    let id: i64 = query_opt(
        tx,
        "INSERT INTO notes (org_id, customer_id, invoice_id, author, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            &org,
            &customer_id,
            &invoice_id,
            &note.author,
            &note.body,
            &ts(note.created_at)?,
        ],
        |r| g(r, 0),
    )?
    .ok_or_else(|| StoreError::Database("INSERT … RETURNING returned no row".into()))?;
    insert_event(
        tx,
        org,
        &note.author,
        note.created_at,
        sh::note_added(id, note),
    )?;
    Ok(id)
}
