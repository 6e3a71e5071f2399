-- The node whose lapsed lease a job's latest claim took over (a node that died or
-- stalled mid-job); NULL when the claim found the job waiting. Counted as lease
-- takeovers in /metrics and shown with the job.
ALTER TABLE jobs ADD COLUMN taken_from TEXT;
