-- Job monitoring (seed 000): `fetchJobHistory` sorted by each field it allows stays a range
-- scan of an index on that field's sort key (`monitoring::store::HISTORY_*`, whose key
-- expressions these repeat exactly), and reported pipelines' samples (`reportMetrics`) join
-- the workers' in `task_metrics`.

-- A reported pipeline's sample may be of the whole job (no task) and has no worker.
ALTER TABLE task_metrics
    ALTER COLUMN task_id DROP NOT NULL,
    ALTER COLUMN worker_id DROP NOT NULL;

-- Sort keys: a job not yet started or finished sorts as the latest (infinity), so a key is
-- never NULL and `(key, id)` compares as a row.
CREATE INDEX jobs_history_started_idx ON jobs ((coalesce(started_at, 'infinity'::timestamptz)), id);
CREATE INDEX jobs_history_finished_idx ON jobs ((coalesce(finished_at, 'infinity'::timestamptz)), id);
CREATE INDEX jobs_history_priority_idx ON jobs (priority, id);
CREATE INDEX jobs_history_duration_idx
    ON jobs ((coalesce(extract(epoch FROM finished_at - started_at), 'Infinity'::numeric)), id);
-- The `user_id` filter, newest first.
CREATE INDEX jobs_history_user_idx ON jobs (user_id, created_at DESC, id DESC)
    WHERE user_id IS NOT NULL;
-- The `error_types` filter: jobs that had an error of a code.
CREATE INDEX job_errors_code_idx ON job_errors (code, job_id);
-- `getJobInfo`'s task details, a page at a time in the order the tasks were added.
CREATE INDEX job_tasks_job_seq_idx ON job_tasks (job_id, seq);
