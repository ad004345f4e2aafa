-- Jobs counted per UTC day of creation, kind and status (issue 23's speed: fetchJobHistory's
-- aggregates over wide filters read these instead of every job). A change to a job appends
-- deltas in its own transaction (insert-only, so concurrent changes never wait on a shared
-- counter row); every portal folds them into job_rollups in small batches
-- (`monitoring::job_rollups`), and a read sums both, so it is exact at any moment.

CREATE TABLE job_rollups (
    day         date NOT NULL,
    kind        text NOT NULL,
    status      text NOT NULL,
    jobs        bigint NOT NULL,
    -- Jobs with both a start and a finish, and their summed run time (microseconds: exact).
    timed       bigint NOT NULL,
    duration_us bigint NOT NULL,
    PRIMARY KEY (day, kind, status)
);

CREATE TABLE job_rollup_deltas (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    day         date NOT NULL,
    kind        text NOT NULL,
    status      text NOT NULL,
    jobs        integer NOT NULL,
    timed       integer NOT NULL,
    duration_us bigint NOT NULL
);

-- What a job adds to its rollup, one rule for the triggers, the backfill and the reads
-- (`monitoring::store::HISTORY_ROLLUP_AGGREGATES_SQL`): its day, whether it ran (a start and a
-- finish) and for how long.
CREATE FUNCTION job_rollup_day(created_at timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (created_at AT TIME ZONE 'UTC')::date $$;
CREATE FUNCTION job_timed(started_at timestamptz, finished_at timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (started_at IS NOT NULL AND finished_at IS NOT NULL)::integer $$;
CREATE FUNCTION job_duration_us(started_at timestamptz, finished_at timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce((extract(epoch FROM finished_at - started_at) * 1000000)::bigint, 0) $$;

CREATE FUNCTION job_rollup_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO job_rollup_deltas (day, kind, status, jobs, timed, duration_us)
        VALUES (job_rollup_day(OLD.created_at), OLD.kind, OLD.status, -1,
                -job_timed(OLD.started_at, OLD.finished_at),
                -job_duration_us(OLD.started_at, OLD.finished_at));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO job_rollup_deltas (day, kind, status, jobs, timed, duration_us)
        VALUES (job_rollup_day(NEW.created_at), NEW.kind, NEW.status, 1,
                job_timed(NEW.started_at, NEW.finished_at),
                job_duration_us(NEW.started_at, NEW.finished_at));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_rollup_insert_delete AFTER INSERT OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION job_rollup_delta();
-- Progress updates rewrite the status unchanged; only a real change counts.
CREATE TRIGGER jobs_rollup_update AFTER UPDATE OF status, kind, created_at, started_at, finished_at ON jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind
          OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.started_at IS DISTINCT FROM NEW.started_at
          OR OLD.finished_at IS DISTINCT FROM NEW.finished_at)
    EXECUTE FUNCTION job_rollup_delta();

INSERT INTO job_rollups (day, kind, status, jobs, timed, duration_us)
SELECT job_rollup_day(created_at), kind, status, count(*),
       sum(job_timed(started_at, finished_at)), sum(job_duration_us(started_at, finished_at))
FROM jobs
GROUP BY 1, 2, 3;

-- TRUNCATE fires no row trigger; emptying jobs that way would leave the rollups counting.
CREATE FUNCTION job_rollups_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE job_rollups, job_rollup_deltas;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_rollup_truncate AFTER TRUNCATE ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION job_rollups_truncate();
