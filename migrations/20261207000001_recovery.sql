-- Error recovery (seed 004): an error record for every failure, whichever door it came
-- through, grouped by a fingerprint, and the retry settings per error type.
--
-- The records are written by triggers, not by each caller, so no door can forget them: a
-- job's or task's failure (`job_errors`, from updateBatchJob, updateTasks and failTasks)
-- and a script's `error` report (`job_reports`, from the webhook). Success closes them the
-- same way: the task's, the job's, or the script's next successful report.

-- A message with what varies between repeats of one problem taken out: UUIDs, quoted
-- values, paths, long hex ids and numbers, in that order (a UUID holds numbers, a path may
-- hold an id), so "job 42 failed reading /tmp/a.csv" and "job 7 failed reading /srv/b.csv"
-- are one pattern.
CREATE FUNCTION error_pattern(message text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(btrim(regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(coalesce(message, ''),
            '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<uuid>', 'g'),
            '''[^'']*''', '<value>', 'g'),
            '"[^"]*"', '<value>', 'g'),
            '(?:[A-Za-z]:)?(?:[/\\][^\s/\\:,;()<>]+){2,}[/\\]?', '<path>', 'g'),
            '\m(?:0x)?(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\M', '<id>', 'g'),
            '[0-9]+(?:\.[0-9]+)?', '<n>', 'g'),
            '\s+', ' ', 'g')), 500)
$$;

-- The group a record belongs to: its type and its pattern.
CREATE FUNCTION error_fingerprint(error_type text, message text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(md5(error_type || E'\n' || error_pattern(message)), 16)
$$;

-- A script reports only a message; its type is the first word of it that reads as an error
-- code (`PARSE_ERROR`, `E_TIMEOUT`) or an exception's name (`ValueError`,
-- `TimeoutException`), else SCRIPT_ERROR.
CREATE FUNCTION report_error_type(message text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        substring(message FROM '\m([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\M'),
        substring(message FROM '\m([A-Z][A-Za-z0-9]*(?:Error|Exception))\M'),
        'SCRIPT_ERROR')
$$;

CREATE TABLE error_records (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A controlled job's failure (job_id, and task_id for a task's), or a script's report
    -- (job_status_id): exactly one of the two owners.
    job_id            uuid REFERENCES jobs (id) ON DELETE CASCADE,
    task_id           uuid REFERENCES job_tasks (id) ON DELETE CASCADE,
    job_status_id     uuid REFERENCES job_status (id) ON DELETE CASCADE,
    error_type        text NOT NULL,
    error_class       text NOT NULL CHECK (error_class IN ('transient', 'resource', 'input', 'unknown')),
    error_message     text NOT NULL,
    stack_trace       text,
    fingerprint       text NOT NULL,
    at                timestamptz NOT NULL,
    -- The retries the work had had when this failure happened.
    retry_count       integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    recovery_status   text NOT NULL DEFAULT 'pending'
                      CHECK (recovery_status IN ('pending', 'in_progress', 'recovered', 'failed')),
    -- [{timestamp, method, result}], appended to, never rewritten.
    recovery_attempts jsonb NOT NULL DEFAULT '[]',
    recovered_at      timestamptz,
    -- The attempt that succeeded, for a task's record recovered by its task.
    recovered_attempt integer,
    -- The worker that held the task when it failed.
    worker_id         text,
    CONSTRAINT error_records_owner_check CHECK (num_nonnulls(job_id, job_status_id) = 1),
    CONSTRAINT error_records_task_check CHECK (task_id IS NULL OR job_id IS NOT NULL),
    CONSTRAINT error_records_recovered_check
        CHECK ((recovered_at IS NOT NULL) = (recovery_status = 'recovered'))
);

-- A job's records: closed with it, and read by analyzeErrors' job_ids. Closing a task's or a
-- script's looks only at their open ones.
CREATE INDEX error_records_job_at_idx ON error_records (job_id, at) WHERE job_id IS NOT NULL;
CREATE INDEX error_records_open_task_idx ON error_records (task_id)
    WHERE task_id IS NOT NULL AND recovery_status IN ('pending', 'in_progress', 'failed');
CREATE INDEX error_records_open_script_idx ON error_records (job_status_id, at)
    WHERE job_status_id IS NOT NULL AND recovery_status IN ('pending', 'in_progress', 'failed');
-- The recovery page and the analysis read by period, type and fingerprint.
CREATE INDEX error_records_at_idx ON error_records (at DESC, id DESC);
CREATE INDEX error_records_type_at_idx ON error_records (error_type, at DESC);
CREATE INDEX error_records_fingerprint_at_idx ON error_records (fingerprint, at DESC);

-- One statement per batch of errors (the callers insert many rows at once). A record's
-- status starts from where its work already is, as the statement that reported the error
-- may have moved it first (`updateBatchJob` to failed with error_details; `updateTasks`
-- to completed with them): recovered with a completed task or job, failed with an ended
-- job, else pending. A worker that shut down (WORKER_SHUTDOWN, `model::dispatch::codes`)
-- gave its task back: not a failure of the work, so no record.
CREATE FUNCTION error_record_status(job_status text, task_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN job_status = 'completed' OR task_status = 'completed' THEN 'recovered'
                WHEN job_status IN ('failed', 'cancelled') THEN 'failed'
                ELSE 'pending' END
$$;

CREATE FUNCTION error_records_from_job_errors() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO error_records (job_id, task_id, error_type, error_class, error_message,
                               stack_trace, fingerprint, at, retry_count, recovery_status,
                               recovered_at, recovered_attempt, worker_id)
    SELECT e.job_id, t.id, e.code, e.class, e.message, e.stack,
           error_fingerprint(e.code, e.message), e.at, greatest(coalesce(t.attempt, 1) - 1, 0),
           s.status, CASE WHEN s.status = 'recovered' THEN coalesce(t.finished_at, j.finished_at, now()) END,
           CASE WHEN s.status = 'recovered' AND t.status = 'completed' THEN t.attempt END,
           t.leased_by
    FROM added e
    JOIN jobs j ON j.id = e.job_id
    LEFT JOIN job_tasks t ON t.job_id = e.job_id AND t.name = e.task_name
    CROSS JOIN LATERAL (SELECT error_record_status(j.status, t.status) AS status) s
    WHERE e.code <> 'WORKER_SHUTDOWN';
    RETURN NULL;
END $$;

CREATE TRIGGER job_errors_records AFTER INSERT ON job_errors
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION error_records_from_job_errors();

-- A script's error report opens a record; its success report closes those that came
-- before it (by finished_at: a late report of an older run closes nothing newer).
CREATE FUNCTION error_records_from_job_reports() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO error_records (job_status_id, error_type, error_class, error_message,
                               fingerprint, at)
    SELECT r.job_status_id, t.error_type, 'unknown', coalesce(r.message, ''),
           error_fingerprint(t.error_type, r.message), r.finished_at
    FROM added r, LATERAL (SELECT report_error_type(r.message) AS error_type) t
    WHERE r.status = 'error';
    UPDATE error_records e SET recovery_status = 'recovered', recovered_at = s.finished_at
    FROM (SELECT job_status_id, max(finished_at) AS finished_at FROM added
          WHERE status = 'success' GROUP BY job_status_id) s
    WHERE e.job_status_id = s.job_status_id
      AND e.recovery_status IN ('pending', 'in_progress', 'failed')
      AND e.at <= s.finished_at;
    RETURN NULL;
END $$;

CREATE TRIGGER job_reports_records AFTER INSERT ON job_reports
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION error_records_from_job_reports();

-- A task that completes recovers its records, once per statement over the tasks it
-- changed (job_tasks already keeps transition tables for its task counts, so this adds one
-- call per statement, not per row); the finished tasks are counted per worker and hour for
-- the failure rates of `analyzeErrors`.
CREATE FUNCTION error_records_tasks_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE error_records e SET recovery_status = 'recovered', recovered_at = n.finished_at,
                               recovered_attempt = n.attempt
    FROM new_tasks n JOIN old_tasks o ON o.id = n.id
    WHERE n.status = 'completed' AND o.status <> 'completed'
      AND e.task_id = n.id AND e.recovery_status IN ('pending', 'in_progress', 'failed');
    INSERT INTO worker_rollup_deltas (hour, worker_id, completed, failed)
    SELECT date_trunc('hour', n.finished_at), n.leased_by, count(*), 0
    FROM new_tasks n JOIN old_tasks o ON o.id = n.id
    WHERE n.status = 'completed' AND o.status <> 'completed'
      AND n.leased_by IS NOT NULL AND n.finished_at IS NOT NULL
    GROUP BY 1, 2;
    RETURN NULL;
END $$;

-- Per worker and hour, the attempts it completed (above) and failed (the records' trigger
-- below): a worker's failure rate. Written as deltas, like every rollup here (below).
CREATE TABLE worker_task_rollups (
    hour      timestamptz NOT NULL,
    worker_id text NOT NULL,
    completed bigint NOT NULL,
    failed    bigint NOT NULL,
    PRIMARY KEY (hour, worker_id)
);
CREATE TABLE worker_rollup_deltas (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hour      timestamptz NOT NULL,
    worker_id text NOT NULL,
    completed bigint NOT NULL,
    failed    bigint NOT NULL
);

CREATE TRIGGER job_tasks_records AFTER UPDATE ON job_tasks
    REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks FOR EACH STATEMENT
    EXECUTE FUNCTION error_records_tasks_finished();

CREATE FUNCTION error_records_job_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'completed' THEN
        UPDATE error_records SET recovery_status = 'recovered', recovered_at = NEW.finished_at
        WHERE job_id = NEW.id AND recovery_status IN ('pending', 'in_progress', 'failed');
    ELSE
        UPDATE error_records SET recovery_status = 'failed'
        WHERE job_id = NEW.id AND recovery_status IN ('pending', 'in_progress');
    END IF;
    RETURN NULL;
END $$;

-- A cancelled job's open records end failed too: its work will not succeed.
CREATE TRIGGER jobs_records AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status <> NEW.status)
    EXECUTE FUNCTION error_records_job_finished();

-- What exists already gets its records: every stored error, open or closed by what its
-- work did since.
INSERT INTO error_records (job_id, task_id, error_type, error_class, error_message,
                           stack_trace, fingerprint, at, retry_count, recovery_status,
                           recovered_at)
SELECT e.job_id, t.id, e.code, e.class, e.message, e.stack, error_fingerprint(e.code, e.message),
       e.at, greatest(coalesce(t.attempt, 1) - 1, 0), s.status,
       CASE WHEN s.status = 'recovered' THEN coalesce(t.finished_at, j.finished_at, now()) END
FROM job_errors e
JOIN jobs j ON j.id = e.job_id
LEFT JOIN job_tasks t ON t.job_id = e.job_id AND t.name = e.task_name
CROSS JOIN LATERAL (SELECT error_record_status(j.status, t.status) AS status) s
WHERE e.code <> 'WORKER_SHUTDOWN';

INSERT INTO error_records (job_status_id, error_type, error_class, error_message, fingerprint,
                           at, recovery_status, recovered_at)
SELECT r.job_status_id, t.error_type, 'unknown', coalesce(r.message, ''),
       error_fingerprint(t.error_type, r.message), r.finished_at,
       CASE WHEN s.finished_at IS NULL THEN 'pending' ELSE 'recovered' END, s.finished_at
FROM job_reports r
CROSS JOIN LATERAL (SELECT report_error_type(r.message) AS error_type) t
LEFT JOIN LATERAL (SELECT min(n.finished_at) AS finished_at FROM job_reports n
                   WHERE n.job_status_id = r.job_status_id AND n.status = 'success'
                     AND n.finished_at >= r.finished_at) s ON true
WHERE r.status = 'error';

-- Seed 004's RetryConfig, one per error type: how a failure of that type is retried
-- (`recovery::backoff`); whether it is retried at all is the job's list.
CREATE TABLE retry_configs (
    error_type       text PRIMARY KEY,
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    -- Seconds.
    initial_delay    double precision NOT NULL CHECK (initial_delay >= 0),
    max_delay        double precision NOT NULL CHECK (max_delay >= initial_delay),
    backoff_factor   double precision NOT NULL CHECK (backoff_factor >= 1),
    -- [{field, operator, value}], checked by `recovery::input` before it is stored.
    retry_conditions jsonb NOT NULL DEFAULT '[]',
    updated_by       text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- `analyzeErrors` reads these, not the records: per hour (of the error), type and
-- fingerprint, the errors and how they ended. The triggers on error_records only append
-- deltas (no row lock another transaction could wait on, whatever order its statements
-- run in); `recovery::rollups::fold` moves them into the rollups every second, and a read
-- sums both, so it is exact whenever it runs.
CREATE TABLE error_rollups (
    hour               timestamptz NOT NULL,
    error_type         text NOT NULL,
    fingerprint        text NOT NULL,
    pattern            text NOT NULL,
    errors             bigint NOT NULL,
    recovered          bigint NOT NULL,
    failed             bigint NOT NULL,
    -- The recovered records that know the attempt that succeeded (a task's), and those
    -- attempts summed: their mean.
    attempted          bigint NOT NULL,
    recovered_attempts bigint NOT NULL,
    first_at           timestamptz,
    last_at            timestamptz,
    PRIMARY KEY (hour, error_type, fingerprint)
);
CREATE TABLE error_rollup_deltas (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hour               timestamptz NOT NULL,
    error_type         text NOT NULL,
    fingerprint        text NOT NULL,
    pattern            text NOT NULL,
    errors             bigint NOT NULL,
    recovered          bigint NOT NULL,
    failed             bigint NOT NULL,
    attempted          bigint NOT NULL,
    recovered_attempts bigint NOT NULL,
    first_at           timestamptz,
    last_at            timestamptz
);

CREATE FUNCTION error_rollups_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO error_rollup_deltas (hour, error_type, fingerprint, pattern, errors, recovered,
                                     failed, attempted, recovered_attempts, first_at, last_at)
    SELECT date_trunc('hour', a.at), a.error_type, a.fingerprint,
           min(error_pattern(a.error_message)), count(*),
           count(*) FILTER (WHERE a.recovery_status = 'recovered'),
           count(*) FILTER (WHERE a.recovery_status = 'failed'),
           count(a.recovered_attempt) FILTER (WHERE a.recovery_status = 'recovered'),
           coalesce(sum(a.recovered_attempt) FILTER (WHERE a.recovery_status = 'recovered'), 0),
           min(a.at), max(a.at)
    FROM added a
    GROUP BY 1, 2, 3;
    INSERT INTO worker_rollup_deltas (hour, worker_id, completed, failed)
    SELECT date_trunc('hour', a.at), a.worker_id, 0, count(*)
    FROM added a WHERE a.worker_id IS NOT NULL
    GROUP BY 1, 2;
    RETURN NULL;
END $$;

-- A record's change of status moves it between the counts of the hour it happened in;
-- type, fingerprint and time of a record are never changed.
CREATE FUNCTION error_rollups_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO error_rollup_deltas (hour, error_type, fingerprint, pattern, errors, recovered,
                                     failed, attempted, recovered_attempts)
    SELECT date_trunc('hour', n.at), n.error_type, n.fingerprint, '', 0,
           sum((n.recovery_status = 'recovered')::int - (o.recovery_status = 'recovered')::int),
           sum((n.recovery_status = 'failed')::int - (o.recovery_status = 'failed')::int),
           sum((n.recovery_status = 'recovered' AND n.recovered_attempt IS NOT NULL)::int
               - (o.recovery_status = 'recovered' AND o.recovered_attempt IS NOT NULL)::int),
           sum(CASE WHEN n.recovery_status = 'recovered' THEN coalesce(n.recovered_attempt, 0) ELSE 0 END
               - CASE WHEN o.recovery_status = 'recovered' THEN coalesce(o.recovered_attempt, 0) ELSE 0 END)
    FROM new_records n JOIN old_records o ON o.id = n.id
    WHERE n.recovery_status <> o.recovery_status
       OR n.recovered_attempt IS DISTINCT FROM o.recovered_attempt
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

-- What exists already (the backfill above), before the triggers that keep it.
INSERT INTO error_rollups (hour, error_type, fingerprint, pattern, errors, recovered, failed,
                           attempted, recovered_attempts, first_at, last_at)
SELECT date_trunc('hour', at), error_type, fingerprint, min(error_pattern(error_message)),
       count(*), count(*) FILTER (WHERE recovery_status = 'recovered'),
       count(*) FILTER (WHERE recovery_status = 'failed'), 0, 0,
       min(at), max(at)
FROM error_records GROUP BY 1, 2, 3;

CREATE TRIGGER error_records_rollup_insert AFTER INSERT ON error_records
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION error_rollups_added();
CREATE TRIGGER error_records_rollup_update AFTER UPDATE ON error_records
    REFERENCING OLD TABLE AS old_records NEW TABLE AS new_records FOR EACH STATEMENT
    EXECUTE FUNCTION error_rollups_changed();

-- createJob's warnings (`jobs::warnings`): a product's or sending group's failed jobs of the
-- last day, and a product's newest jobs.
CREATE INDEX jobs_failed_product_idx ON jobs (product_id, finished_at) WHERE status = 'failed';
CREATE INDEX jobs_failed_group_idx ON jobs (sending_group_id, finished_at) WHERE status = 'failed';
CREATE INDEX jobs_product_created_idx ON jobs (product_id, created_at DESC) WHERE product_id IS NOT NULL;
