-- What every node must see of repeated attempts, so that N nodes behind a load balancer
-- guard as one: signed requests already received (the replay guard: SHA-256 of access
-- key and signature, when first accepted, when its date leaves the window), and
-- consecutive failed password checks per account (SHA-256 of the account key).
CREATE TABLE signature_uses (
    digest TEXT PRIMARY KEY,
    first_used_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX signature_uses_expires ON signature_uses (expires_at);

CREATE TABLE login_failures (
    digest TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_at TEXT NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_at);
