-- Fair job claiming looks up, for each waiting job's project, how many of its jobs run
-- and when it last started one; admission counts a project's waiting and running jobs.
CREATE INDEX jobs_project_status ON jobs (project_id, status);
CREATE INDEX jobs_project_begin ON jobs (project_id, begin_time);
