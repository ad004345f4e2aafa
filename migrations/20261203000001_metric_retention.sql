-- Monitoring data that lasts (issue 23, item 6): raw samples in daily partitions, dropped
-- whole past their retention, and rollups per job per minute and per hour that outlive them.

-- A value's histogram bin: 16 bins per doubling, so a bin's middle is within 2.2 % of every
-- value in it; values below 2^-8 (0.004) share bin -128, read back as 0.
CREATE FUNCTION metric_hist_bin(v double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN v < 0.00390625 THEN -128 ELSE least(floor(ln(v) / ln(2.0::double precision) * 16), 32000)::integer END $$;

-- A histogram is a sorted array of (bin + 32768) << 32 | count, one element per bin used.
CREATE FUNCTION metric_hist_merge(a bigint[], b bigint[]) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT array_agg(bin * 4294967296 + n ORDER BY bin)
        FROM (SELECT e >> 32 AS bin, sum(e & 4294967295)::bigint AS n
              FROM unnest(a || b) AS e GROUP BY 1) bins
    $$;

CREATE TABLE metric_rollups (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    metric text NOT NULL CHECK (metric IN ('cpu', 'memory')),
    grain  text NOT NULL CHECK (grain IN ('minute', 'hour')),
    bucket timestamptz NOT NULL,
    count  bigint NOT NULL,
    sum    double precision NOT NULL,
    min    double precision NOT NULL,
    max    double precision NOT NULL,
    hist   bigint[] NOT NULL,
    PRIMARY KEY (job_id, metric, grain, bucket)
);
-- Retention deletes by age; rows arrive roughly in time order, so a BRIN index is enough.
CREATE INDEX metric_rollups_bucket_brin ON metric_rollups USING brin (bucket);

-- task_metrics becomes partitioned by day. PostgreSQL 15 has no identity columns on a
-- partitioned table, so the id comes from a sequence.
ALTER TABLE task_metrics RENAME TO task_metrics_unpartitioned;
ALTER TABLE task_metrics_unpartitioned RENAME CONSTRAINT task_metrics_pkey TO task_metrics_unpartitioned_pkey;
ALTER INDEX task_metrics_task_idx RENAME TO task_metrics_unpartitioned_task_idx;
ALTER INDEX task_metrics_job_idx RENAME TO task_metrics_unpartitioned_job_idx;

CREATE SEQUENCE task_metrics_sample_id_seq AS bigint;
CREATE TABLE task_metrics (
    id          bigint NOT NULL DEFAULT nextval('task_metrics_sample_id_seq'),
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_id     uuid REFERENCES job_tasks (id) ON DELETE CASCADE,
    worker_id   text,
    at          timestamptz NOT NULL DEFAULT now(),
    cpu_percent double precision,
    memory_mb   double precision,
    items       bigint
) PARTITION BY RANGE (at);
ALTER SEQUENCE task_metrics_sample_id_seq OWNED BY task_metrics.id;
CREATE INDEX task_metrics_task_idx ON task_metrics (task_id, id);
CREATE INDEX task_metrics_job_idx ON task_metrics (job_id, at);
-- Catches a sample for a day that has no partition (one reported long after, or one that
-- arrived before maintenance made its day); maintenance deletes its old rows.
CREATE TABLE task_metrics_default PARTITION OF task_metrics DEFAULT;

-- A partition for the week the default retention keeps, today and the next three days, and
-- each of the last 60 days that has samples; older samples go to the default partition, whose
-- rows past the retention maintenance deletes (`monitoring::retention`). (A sample dated
-- decades back must not make thousands of partitions.)
DO $$
DECLARE
    day date;
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    FOR day IN
        SELECT generate_series(today - 7, today + 3, interval '1 day')::date
        UNION
        SELECT DISTINCT (at AT TIME ZONE 'UTC')::date FROM task_metrics_unpartitioned
        WHERE at >= now() - interval '60 days' AND at < now() + interval '3 days'
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF task_metrics FOR VALUES FROM (%L) TO (%L)',
            'task_metrics_p' || to_char(day, 'YYYYMMDD'),
            day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
END $$;

INSERT INTO task_metrics (id, job_id, task_id, worker_id, at, cpu_percent, memory_mb, items)
SELECT id, job_id, task_id, worker_id, at, cpu_percent, memory_mb, items
FROM task_metrics_unpartitioned;
SELECT setval('task_metrics_sample_id_seq', coalesce((SELECT max(id) FROM task_metrics_unpartitioned), 0) + 1, false);

INSERT INTO metric_rollups (job_id, metric, grain, bucket, count, sum, min, max, hist)
SELECT job_id, metric, grain, bucket, sum(n), sum(s), min(lo), max(hi),
       array_agg((bin + 32768)::bigint * 4294967296 + n ORDER BY bin)
FROM (
    SELECT job_id, metric, grain, date_trunc(grain, at, 'UTC') AS bucket, metric_hist_bin(v) AS bin,
           count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi
    FROM (SELECT job_id, at, 'cpu' AS metric, cpu_percent AS v FROM task_metrics_unpartitioned
          WHERE cpu_percent IS NOT NULL
          UNION ALL
          SELECT job_id, at, 'memory', memory_mb FROM task_metrics_unpartitioned
          WHERE memory_mb IS NOT NULL) samples
    CROSS JOIN (VALUES ('minute'), ('hour')) AS grains (grain)
    GROUP BY 1, 2, 3, 4, 5
) bins
GROUP BY 1, 2, 3, 4;

DROP TABLE task_metrics_unpartitioned;
