-- A job's subject is a (kind, id) pair, so jobs can work on entities other than images;
-- `image_id` stays (and is still written) while it migrates. A waiting job's retry time
-- moves out of the lease column into `not_before`.
ALTER TABLE jobs ADD COLUMN subject_kind TEXT;
ALTER TABLE jobs ADD COLUMN subject_id TEXT;
ALTER TABLE jobs ADD COLUMN not_before TEXT;

UPDATE jobs SET subject_kind = 'image', subject_id = image_id WHERE image_id IS NOT NULL;

-- Before this migration a waiting job kept the earliest time to claim it again in
-- `lease_until`; a waiting job holds no lease.
UPDATE jobs SET not_before = lease_until, lease_until = NULL
    WHERE status = 'INIT' AND lease_until IS NOT NULL;

CREATE INDEX jobs_subject ON jobs (subject_kind, subject_id, created_at);
