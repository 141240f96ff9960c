-- Payment-prediction models: one row per trained model, versions increasing
-- per organization. The card (what it was trained on, its holdout figures)
-- and the model itself are JSON text written by arflow_domain::predict.
CREATE TABLE models (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES organizations (id),
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    card       TEXT NOT NULL,
    model      TEXT NOT NULL,
    CONSTRAINT models_org_version_key UNIQUE (org_id, version),
    CONSTRAINT models_version_positive CHECK (version > 0)
);

-- Exception alerts become tasks of kind 'alert'. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt (nothing refers to it).
CREATE TABLE tasks_new (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    key           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    customer_id   INTEGER NOT NULL REFERENCES customers (id),
    invoices      TEXT NOT NULL, -- JSON array of invoice numbers
    title         TEXT NOT NULL,
    detail        TEXT NOT NULL,
    due_on        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    status        TEXT NOT NULL,
    assignee      TEXT,
    snoozed_until TEXT,
    completed_at  TEXT,
    completed_by  TEXT,
    message_key   TEXT,
    CONSTRAINT tasks_org_key_key UNIQUE (org_id, key),
    CONSTRAINT tasks_kind_known
        CHECK (kind IN ('step', 'unreachable', 'bounce', 'broken_promise', 'in_doubt', 'delivery_failed', 'alert')),
    CONSTRAINT tasks_status_known CHECK (status IN ('open', 'done'))
);
INSERT INTO tasks_new (id, org_id, key, kind, customer_id, invoices, title, detail, due_on, created_at,
                       status, assignee, snoozed_until, completed_at, completed_by, message_key)
SELECT id, org_id, key, kind, customer_id, invoices, title, detail, due_on, created_at,
       status, assignee, snoozed_until, completed_at, completed_by, message_key
FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_org_status_idx ON tasks (org_id, status);
