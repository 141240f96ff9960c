-- Accounts for the web application: users, sessions, API tokens, failed
-- logins, customer notes, Idempotency-Key replies, and the ledger version
-- read caches key on. Timestamps are fixed-width RFC 3339 UTC text (six
-- fractional digits, see 0003_dunning.sql) because session and token
-- expiry and the failed-login window compare them in SQL. Secrets are never
-- stored: sessions and tokens as the SHA-256 (hex) of the client's value,
-- passwords as Argon2id PHC strings. Constraint names are the ones
-- error::constraint_message knows.

-- Grows with every committed change to the organization's ledger.
ALTER TABLE organizations ADD COLUMN ledger_version INTEGER NOT NULL DEFAULT 0;

-- An email is unique across the database: a login names its organization.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    email         TEXT NOT NULL, -- lower-cased
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_role_known CHECK (role IN ('viewer', 'collector', 'admin'))
);
CREATE INDEX users_org_idx ON users (org_id);

CREATE TABLE sessions (
    id_hash    TEXT NOT NULL CONSTRAINT sessions_id_hash_key PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    org_id     INTEGER NOT NULL REFERENCES organizations (id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL REFERENCES organizations (id),
    user_id      INTEGER NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL,
    scopes       TEXT NOT NULL, -- sorted, space-separated
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_scopes_known CHECK (scopes IN ('read', 'write', 'read write'))
);
CREATE INDEX api_tokens_org_idx ON api_tokens (org_id);

-- Rate limiting of logins, shared by every web server on the database.
CREATE TABLE login_failures (
    id    INTEGER PRIMARY KEY,
    email TEXT NOT NULL, -- lower-cased
    ip    TEXT NOT NULL,
    at    TEXT NOT NULL
);
CREATE INDEX login_failures_email_at_idx ON login_failures (email, at);
CREATE INDEX login_failures_at_idx ON login_failures (at);

CREATE TABLE notes (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    invoice_id  INTEGER REFERENCES invoices (id),
    author      TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    CONSTRAINT notes_body_nonempty CHECK (length(trim(body)) > 0)
);
CREATE INDEX notes_org_customer_idx ON notes (org_id, customer_id);

CREATE TABLE idempotency_replies (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL REFERENCES organizations (id),
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    CONSTRAINT idempotency_replies_org_key_key UNIQUE (org_id, key),
    CONSTRAINT idempotency_replies_status_known CHECK (status BETWEEN 100 AND 599)
);

-- Keyset paging of the audit log (newest first, before an id).
CREATE INDEX events_org_id_idx ON events (org_id, id);
