-- AK/SK credentials (Huawei-style access keys). The secret is sealed (AES-256-GCM under
-- the node's credential key), never stored in the clear.
CREATE TABLE credentials (
    access TEXT PRIMARY KEY,
    sealed_secret TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX credentials_user ON credentials (user_id);
