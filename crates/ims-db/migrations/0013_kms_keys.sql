-- KMS keys (issue 15). `material` is what the key's backend needs to find its material:
-- for the built-in KMS, the material sealed under the master key (never in the clear);
-- for an external KMS, its object id. `kms_master` holds one value sealed under the
-- master key, so that a start with another master key is refused.
CREATE TABLE kms_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    alias TEXT NOT NULL,
    description TEXT NOT NULL,
    spec TEXT NOT NULL,
    usage TEXT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL,
    default_key BIGINT NOT NULL,
    backend TEXT NOT NULL,
    material TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deletion_at TEXT,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX kms_keys_alias ON kms_keys (project_id, alias);
CREATE INDEX kms_keys_project ON kms_keys (project_id, created_at, id);
CREATE INDEX kms_keys_deletion ON kms_keys (state, deletion_at);
CREATE TABLE kms_master (
    id TEXT PRIMARY KEY,
    check_value TEXT NOT NULL
);
