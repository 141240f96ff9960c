-- Dunning (PostgreSQL): settings, policies and their assignments, holds,
-- disputes, promises, step progress, the outbox, tasks, charges, bounces.
-- Money is BIGINT minor units plus a currency; dates are DATE; timestamps
-- are TIMESTAMPTZ. Rows refer to customers and invoices by id, so a key
-- resolves within its organization once, when written. Constraint names are
-- the ones error::constraint_message knows.

-- One row per organization; none means the defaults.
CREATE TABLE dunning_settings (
    org_id     BIGINT PRIMARY KEY REFERENCES organizations (id),
    settings   JSONB NOT NULL,   -- DunningSettings
    paused     BOOLEAN NOT NULL, -- copy of settings.paused: claiming filters on it
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE policies (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id),
    name       TEXT NOT NULL,
    source     TEXT NOT NULL, -- the TOML as the user wrote it
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT policies_org_name_key UNIQUE (org_id, name)
);

-- The scope is kept as its key: a segment is not a row anywhere.
CREATE TABLE policy_assignments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id),
    scope_kind TEXT NOT NULL,
    scope_key  TEXT NOT NULL,
    policy_id  BIGINT NOT NULL REFERENCES policies (id),
    CONSTRAINT policy_assignments_org_scope_key UNIQUE (org_id, scope_kind, scope_key),
    CONSTRAINT policy_assignments_scope_known CHECK (scope_kind IN ('invoice', 'customer', 'segment'))
);

CREATE TABLE holds (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT REFERENCES customers (id),
    invoice_id  BIGINT REFERENCES invoices (id),
    reason      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    expires_on  DATE,
    ended_at    TIMESTAMPTZ,
    ended_by    TEXT,
    CONSTRAINT holds_one_scope CHECK ((customer_id IS NULL) <> (invoice_id IS NULL))
);
CREATE INDEX holds_org_idx ON holds (org_id);

CREATE TABLE disputes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES organizations (id),
    invoice_id  BIGINT NOT NULL REFERENCES invoices (id),
    reason      TEXT NOT NULL,
    opened_at   TIMESTAMPTZ NOT NULL,
    opened_by   TEXT NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolved_by TEXT,
    resolution  TEXT
);
CREATE INDEX disputes_org_invoice_idx ON disputes (org_id, invoice_id);
-- At most one open dispute per invoice, even under concurrent writers.
CREATE UNIQUE INDEX disputes_one_open_key ON disputes (org_id, invoice_id) WHERE resolved_at IS NULL;

CREATE TABLE promises (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       BIGINT NOT NULL REFERENCES organizations (id),
    customer_id  BIGINT REFERENCES customers (id),
    invoice_id   BIGINT REFERENCES invoices (id),
    amount       BIGINT, -- NULL: the whole open balance of the scope
    currency     TEXT,
    promised_on  DATE NOT NULL,
    grace_days   INTEGER NOT NULL,
    made_at      TIMESTAMPTZ NOT NULL,
    made_by      TEXT NOT NULL,
    note         TEXT,
    cancelled_at TIMESTAMPTZ,
    cancelled_by TEXT,
    CONSTRAINT promises_one_scope CHECK ((customer_id IS NULL) <> (invoice_id IS NULL)),
    CONSTRAINT promises_amount_currency CHECK ((amount IS NULL) = (currency IS NULL)),
    CONSTRAINT promises_amount_positive CHECK (amount IS NULL OR amount > 0),
    CONSTRAINT promises_grace_days_nonnegative CHECK (grace_days >= 0)
);
CREATE INDEX promises_org_idx ON promises (org_id);

-- One row per step done for an invoice: the exactly-once guard of a run.
CREATE TABLE dunning_steps (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id),
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    policy     TEXT NOT NULL,
    step       TEXT NOT NULL, -- StepKey's compact form: s3, r2, p17.5
    done_on    DATE NOT NULL,
    done_at    TIMESTAMPTZ NOT NULL,
    outcome    JSONB NOT NULL, -- StepOutcome
    CONSTRAINT dunning_steps_once UNIQUE (org_id, invoice_id, policy, step)
);

CREATE TABLE outbox_messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          BIGINT NOT NULL REFERENCES organizations (id),
    key             TEXT NOT NULL,
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    channel         TEXT NOT NULL,
    contact         TEXT,
    recipient       TEXT NOT NULL,
    policy          TEXT NOT NULL,
    step            TEXT NOT NULL,
    template        TEXT NOT NULL,
    locale          TEXT NOT NULL,
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    invoices        JSONB NOT NULL, -- array of MessageInvoice
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    token           TEXT NOT NULL,
    time_zone       TEXT NOT NULL,
    not_before      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_by      TEXT,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    provider_id     TEXT,
    sent_at         TIMESTAMPTZ,
    CONSTRAINT outbox_messages_org_key_key UNIQUE (org_id, key),
    CONSTRAINT outbox_messages_status_known
        CHECK (status IN ('queued', 'claimed', 'sending', 'sent', 'in_doubt', 'failed', 'cancelled')),
    CONSTRAINT outbox_messages_channel_known CHECK (channel IN ('email', 'sms', 'task')),
    CONSTRAINT outbox_messages_attempts_nonnegative CHECK (attempts >= 0)
);
-- Claiming looks for queued rows whose next attempt is due; lease expiry
-- for claimed and sending rows.
CREATE INDEX outbox_messages_claim_idx ON outbox_messages (status, next_attempt_at);
CREATE INDEX outbox_messages_org_customer_idx ON outbox_messages (org_id, customer_id);

CREATE TABLE tasks (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        BIGINT NOT NULL REFERENCES organizations (id),
    key           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    customer_id   BIGINT NOT NULL REFERENCES customers (id),
    invoices      JSONB NOT NULL, -- array of invoice numbers
    title         TEXT NOT NULL,
    detail        TEXT NOT NULL,
    due_on        DATE NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    status        TEXT NOT NULL,
    assignee      TEXT,
    snoozed_until DATE,
    completed_at  TIMESTAMPTZ,
    completed_by  TEXT,
    message_key   TEXT,
    CONSTRAINT tasks_org_key_key UNIQUE (org_id, key),
    CONSTRAINT tasks_kind_known
        CHECK (kind IN ('step', 'unreachable', 'bounce', 'broken_promise', 'in_doubt', 'delivery_failed')),
    CONSTRAINT tasks_status_known CHECK (status IN ('open', 'done'))
);
CREATE INDEX tasks_org_status_idx ON tasks (org_id, status);

CREATE TABLE charges (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       BIGINT NOT NULL REFERENCES organizations (id),
    key          TEXT NOT NULL,
    invoice_id   BIGINT NOT NULL REFERENCES invoices (id),
    kind         TEXT NOT NULL,
    amount       BIGINT NOT NULL,
    currency     TEXT NOT NULL CHECK (length(currency) = 3),
    charged_on   DATE NOT NULL,
    description  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    waived_at    TIMESTAMPTZ,
    waived_by    TEXT,
    waive_reason TEXT,
    CONSTRAINT charges_org_key_key UNIQUE (org_id, key),
    CONSTRAINT charges_kind_known CHECK (kind IN ('late_fee', 'interest', 'compensation')),
    CONSTRAINT charges_amount_nonnegative CHECK (amount >= 0)
);
CREATE INDEX charges_org_invoice_idx ON charges (org_id, invoice_id);

-- Addresses are stored lower-cased (by the application, identically on both
-- backends), so the unique key is the case-insensitive address.
CREATE TABLE bounces (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id),
    address    TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    reason     TEXT NOT NULL,
    cleared_at TIMESTAMPTZ,
    CONSTRAINT bounces_org_address_key UNIQUE (org_id, address)
);
