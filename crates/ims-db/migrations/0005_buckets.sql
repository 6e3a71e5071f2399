-- Who may use each bucket (issue 11, H2). The owner project reads and writes its bucket;
-- projects it is shared with read it; a bucket without an owner (NULL, or no row at all)
-- is for cloud administrators only. Deleting a project leaves its buckets without owner.
CREATE TABLE buckets (
    name TEXT PRIMARY KEY,
    project_id TEXT REFERENCES projects (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX buckets_project ON buckets (project_id);
CREATE TABLE bucket_shares (
    bucket TEXT NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (bucket, project_id)
);
CREATE INDEX bucket_shares_project ON bucket_shares (project_id);
