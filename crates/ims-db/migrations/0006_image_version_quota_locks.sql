-- Lost updates (L6): every save of an image compares and advances `version`, so of two
-- edits that read the same revision only one is written; the other gets a conflict (and
-- the service retries metadata edits on the fresh row).
ALTER TABLE images ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Count quota (M7): a create first upserts its project's row here. The upsert takes the
-- row's lock on PostgreSQL and the write lock on SQLite, so the creates of one project
-- count their images one after another, inside the transaction that inserts.
-- `creates` only counts how often the lock was taken; nothing reads it as usage.
CREATE TABLE project_quota_locks (
    project_id TEXT PRIMARY KEY,
    creates BIGINT NOT NULL
);
