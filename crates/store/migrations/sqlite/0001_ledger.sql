-- arflow ledger schema (SQLite). Money is INTEGER minor units plus a
-- three-letter currency; dates are ISO 'YYYY-MM-DD' text (sorts and compares
-- correctly as text); timestamps are RFC 3339 text in UTC.
-- Constraint names are the ones error::constraint_message knows.

CREATE TABLE organizations (
    id            INTEGER PRIMARY KEY,
    slug          TEXT NOT NULL CONSTRAINT organizations_slug_key UNIQUE,
    name          TEXT NOT NULL,
    base_currency TEXT NOT NULL CHECK (length(base_currency) = 3),
    time_zone     TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE customers (
    id                 INTEGER PRIMARY KEY,
    org_id             INTEGER NOT NULL REFERENCES organizations (id),
    external_id        TEXT NOT NULL,
    name               TEXT NOT NULL,
    segment            TEXT,
    tags               TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
    country            TEXT,
    time_zone          TEXT,
    locale             TEXT,
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    payment_terms_days INTEGER,
    credit_limit       INTEGER,
    collector          TEXT,
    autopay            INTEGER NOT NULL,
    CONSTRAINT customers_org_external_id_key UNIQUE (org_id, external_id)
);

CREATE TABLE contacts (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    customer_id   INTEGER NOT NULL REFERENCES customers (id),
    external_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    email         TEXT,
    phone         TEXT,
    role          TEXT,
    is_primary    INTEGER NOT NULL,
    email_opt_out INTEGER NOT NULL,
    sms_consent   INTEGER NOT NULL,
    sms_opt_out   INTEGER NOT NULL,
    call_opt_out  INTEGER NOT NULL,
    CONSTRAINT contacts_org_external_id_key UNIQUE (org_id, external_id)
);
CREATE INDEX contacts_org_customer_idx ON contacts (org_id, customer_id);

CREATE TABLE invoices (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    number      TEXT NOT NULL,
    external_id TEXT,
    source      TEXT NOT NULL,
    issue_date  TEXT NOT NULL,
    due_date    TEXT NOT NULL,
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    total       INTEGER NOT NULL,
    tax         INTEGER NOT NULL,
    po_number   TEXT,
    status      TEXT NOT NULL,
    status_date TEXT,
    disputed    INTEGER NOT NULL,
    paperless   INTEGER,
    CONSTRAINT invoices_org_number_key UNIQUE (org_id, number),
    CONSTRAINT invoices_due_after_issue CHECK (due_date >= issue_date),
    CONSTRAINT invoices_total_nonnegative CHECK (total >= 0),
    CONSTRAINT invoices_tax_within_total CHECK (tax >= 0 AND (tax <= total OR total < 0)), -- a negative total is reported by invoices_total_nonnegative alone
    CONSTRAINT invoices_status_known CHECK (status IN ('open', 'void', 'written_off'))
);
CREATE INDEX invoices_org_customer_idx ON invoices (org_id, customer_id);

CREATE TABLE credit_notes (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    number      TEXT NOT NULL,
    external_id TEXT,
    source      TEXT NOT NULL,
    issue_date  TEXT NOT NULL,
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    total       INTEGER NOT NULL,
    reason      TEXT,
    CONSTRAINT credit_notes_org_number_key UNIQUE (org_id, number),
    CONSTRAINT credit_notes_total_positive CHECK (total > 0)
);
CREATE INDEX credit_notes_org_customer_idx ON credit_notes (org_id, customer_id);

CREATE TABLE payments (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    external_id TEXT NOT NULL,
    source      TEXT NOT NULL,
    received_on TEXT NOT NULL,
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    amount      INTEGER NOT NULL,
    method      TEXT,
    reference   TEXT,
    payer_name  TEXT,
    CONSTRAINT payments_org_external_id_key UNIQUE (org_id, external_id),
    CONSTRAINT payments_amount_positive CHECK (amount > 0)
);
CREATE INDEX payments_org_customer_idx ON payments (org_id, customer_id);

CREATE TABLE allocations (
    id             INTEGER PRIMARY KEY,
    org_id         INTEGER NOT NULL REFERENCES organizations (id),
    invoice_id     INTEGER NOT NULL REFERENCES invoices (id),
    payment_id     INTEGER REFERENCES payments (id),
    credit_note_id INTEGER REFERENCES credit_notes (id),
    amount         INTEGER NOT NULL,
    applied_on     TEXT NOT NULL,
    CONSTRAINT allocations_one_source CHECK ((payment_id IS NULL) <> (credit_note_id IS NULL)),
    CONSTRAINT allocations_amount_positive CHECK (amount > 0)
);
CREATE INDEX allocations_org_invoice_idx ON allocations (org_id, invoice_id);

CREATE TABLE fx_rates (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    from_currency TEXT NOT NULL CHECK (length(from_currency) = 3),
    to_currency   TEXT NOT NULL CHECK (length(to_currency) = 3),
    valid_on      TEXT NOT NULL,
    rate_e12      INTEGER NOT NULL, -- decimal rate scaled by 10^12 (fx::RATE_SCALE)
    CONSTRAINT fx_rates_org_pair_date_key UNIQUE (org_id, from_currency, to_currency, valid_on),
    CONSTRAINT fx_rates_rate_positive CHECK (rate_e12 > 0)
);

-- Append-only log: the application never updates or deletes events.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL REFERENCES organizations (id),
    recorded_at  TEXT NOT NULL,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_key   TEXT NOT NULL,
    customer_key TEXT,
    summary      TEXT NOT NULL,
    data         TEXT NOT NULL -- JSON
);
CREATE INDEX events_org_customer_idx ON events (org_id, customer_key);
CREATE INDEX events_org_entity_idx ON events (org_id, entity_type, entity_key);
