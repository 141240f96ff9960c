-- Payment-prediction models: one row per trained model, versions increasing
-- per organization. The card (what it was trained on, its holdout figures)
-- and the model itself are JSON text written by arflow_domain::predict
-- (text, not jsonb: the model is read back byte for byte).
CREATE TABLE models (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id),
    version    BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    card       TEXT NOT NULL,
    model      TEXT NOT NULL,
    CONSTRAINT models_org_version_key UNIQUE (org_id, version),
    CONSTRAINT models_version_positive CHECK (version > 0)
);

-- Exception alerts become tasks of kind 'alert'.
ALTER TABLE tasks DROP CONSTRAINT tasks_kind_known;
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_known
    CHECK (kind IN ('step', 'unreachable', 'bounce', 'broken_promise', 'in_doubt', 'delivery_failed', 'alert'));
