-- Digest logins (ZStack): the argon2 hash of each password's SHA-512 hex, stored
-- whenever a password is set; sessions keyed by the SHA-256 of their id.
CREATE TABLE password_verifiers (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sha512_verifier TEXT NOT NULL
);

CREATE TABLE sessions (
    digest TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

-- Asynchronous API calls a client polls (ZStack api-jobs), linked to the durable job
-- doing the work; `result` is the rendered reply or error once finished.
CREATE TABLE api_calls (
    id TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    caller TEXT NOT NULL,
    project_id TEXT NOT NULL,
    job_id TEXT,
    subject_id TEXT,
    state TEXT NOT NULL,
    result TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX api_calls_expires ON api_calls (expires_at);
