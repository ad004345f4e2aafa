-- Each job carries the error codes and classes it ever had (`jobs.error_types`, kept by a
-- trigger on `job_errors`), so `fetchJobHistory`'s `error_types` filter is an array overlap
-- on the job row (a GIN index), and the day rollups count jobs by it too: an error filter
-- over 30 days read every matching error and its job (1.2 s p99 at a million jobs) and now
-- reads a few rollup rows a day.

-- Writers wait while the backfill and the rollups' rebuild run (one pass over the jobs;
-- seconds at a million), so no delta is counted twice or lost.
LOCK TABLE jobs, job_errors, job_rollups, job_rollup_deltas IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE jobs ADD COLUMN error_types text[] NOT NULL DEFAULT '{}';
CREATE INDEX jobs_error_types_idx ON jobs USING gin (error_types);

-- Errors are only ever added (a job's go with it), so the set only grows. One UPDATE per
-- statement: the callers insert a call's errors with one statement, after locking their jobs.
-- Under concurrent additions the UPDATE re-reads the row it waited for, so none is lost.
CREATE FUNCTION job_error_types_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs j
    SET error_types = ARRAY(SELECT DISTINCT t FROM unnest(j.error_types || a.types) AS t ORDER BY t)
    FROM (SELECT job_id, array_agg(DISTINCT t) AS types
          FROM added, unnest(ARRAY[code, class]) AS t
          GROUP BY job_id) a
    WHERE j.id = a.job_id AND NOT j.error_types @> a.types;
    RETURN NULL;
END $$;
CREATE TRIGGER job_errors_types AFTER INSERT ON job_errors
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION job_error_types_add();

UPDATE jobs j SET error_types = e.types
FROM (SELECT job_id, array_agg(DISTINCT t ORDER BY t) AS types
      FROM job_errors, unnest(ARRAY[code, class]) AS t
      GROUP BY job_id) e
WHERE j.id = e.job_id;

-- The rollups gain the key.
TRUNCATE job_rollups, job_rollup_deltas;
ALTER TABLE job_rollups
    ADD COLUMN error_types text[] NOT NULL DEFAULT '{}',
    DROP CONSTRAINT job_rollups_pkey,
    ADD PRIMARY KEY (day, kind, status, error_types);
ALTER TABLE job_rollup_deltas ADD COLUMN error_types text[] NOT NULL DEFAULT '{}';

CREATE OR REPLACE FUNCTION job_rollup_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO job_rollup_deltas (day, kind, status, error_types, jobs, timed, duration_us)
        VALUES (job_rollup_day(OLD.created_at), OLD.kind, OLD.status, OLD.error_types, -1,
                -job_timed(OLD.started_at, OLD.finished_at),
                -job_duration_us(OLD.started_at, OLD.finished_at));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO job_rollup_deltas (day, kind, status, error_types, jobs, timed, duration_us)
        VALUES (job_rollup_day(NEW.created_at), NEW.kind, NEW.status, NEW.error_types, 1,
                job_timed(NEW.started_at, NEW.finished_at),
                job_duration_us(NEW.started_at, NEW.finished_at));
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER jobs_rollup_update ON jobs;
CREATE TRIGGER jobs_rollup_update
    AFTER UPDATE OF status, kind, created_at, started_at, finished_at, error_types ON jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind
          OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.started_at IS DISTINCT FROM NEW.started_at
          OR OLD.finished_at IS DISTINCT FROM NEW.finished_at
          OR OLD.error_types IS DISTINCT FROM NEW.error_types)
    EXECUTE FUNCTION job_rollup_delta();

INSERT INTO job_rollups (day, kind, status, error_types, jobs, timed, duration_us)
SELECT job_rollup_day(created_at), kind, status, error_types, count(*),
       sum(job_timed(started_at, finished_at)), sum(job_duration_us(started_at, finished_at))
FROM jobs
GROUP BY 1, 2, 3, 4;
