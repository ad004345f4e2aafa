-- The incidents page pages by (last_finished_at, job_key) within failing and healthy jobs.
CREATE INDEX idx_job_status_status_recent ON job_status(last_status, last_finished_at DESC, job_key DESC);
CREATE INDEX idx_job_status_recent ON job_status(last_finished_at DESC, job_key DESC);
DROP INDEX idx_job_status_last_finished_at;
