-- Throughput joins cpu and memory in the rollups (issue 23's speed: `getJobMetrics` read a
-- month of one job's samples raw for it, 0.3 s). A sample's throughput is its task's items
-- per second since that task's previous sample (by time, within the hour before it); a
-- counter that went down (the task started over) has none. The statement that stores
-- samples computes it (`monitoring::rollups::with_rollups!`) from this migration on.
--
-- The samples stored before are not rolled up here: a large user's week of raw samples
-- (50,000,000) took over 15 minutes and 40 GB of temporary files to sort for it, at startup.
-- Their throughput was only ever read raw, within the raw retention, so what is lost is
-- throughput charts of the days before the upgrade.

ALTER TABLE metric_rollups DROP CONSTRAINT metric_rollups_metric_check;
ALTER TABLE metric_rollups ADD CONSTRAINT metric_rollups_metric_check
    CHECK (metric IN ('cpu', 'memory', 'throughput'));

-- Adds the stored samples' values of `metrics` (of the jobs `jobs`, or every job) to the
-- rollups, for samples loaded without the statement that rolls them up (the benchmark's
-- seeding). The rollup rows of those metrics must not hold the samples already.
CREATE FUNCTION metric_rollups_add_all(metrics text[], jobs uuid[] DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO metric_rollups AS r (job_id, metric, grain, bucket, count, sum, min, max, hist)
    SELECT job_id, metric, grain, bucket, sum(n), sum(s), min(lo), max(hi),
           array_agg((bin + 32768)::bigint * 4294967296 + n ORDER BY bin)
    FROM (
        SELECT job_id, metric, grain, date_trunc(grain, at, 'UTC') AS bucket,
               metric_hist_bin(v) AS bin, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi
        FROM (SELECT job_id, at, 'cpu' AS metric, cpu_percent AS v FROM task_metrics
              WHERE cpu_percent IS NOT NULL AND 'cpu' = ANY(metrics)
                AND (jobs IS NULL OR job_id = ANY(jobs))
              UNION ALL
              SELECT job_id, at, 'memory', memory_mb FROM task_metrics
              WHERE memory_mb IS NOT NULL AND 'memory' = ANY(metrics)
                AND (jobs IS NULL OR job_id = ANY(jobs))
              UNION ALL
              SELECT job_id, at, 'throughput', v FROM (
                  SELECT job_id, at,
                         CASE WHEN lag(at) OVER w >= at - interval '1 hour'
                              THEN (items - lag(items) OVER w)::float8
                                   / nullif(extract(epoch FROM at - lag(at) OVER w), 0)::float8
                         END AS v
                  FROM task_metrics
                  WHERE items IS NOT NULL AND 'throughput' = ANY(metrics)
                    AND (jobs IS NULL OR job_id = ANY(jobs))
                  WINDOW w AS (PARTITION BY job_id, task_id ORDER BY at, id)
              ) rates
              WHERE v >= 0) samples
        CROSS JOIN (VALUES ('minute'), ('hour')) AS grains (grain)
        GROUP BY 1, 2, 3, 4, 5
    ) bins
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (job_id, metric, grain, bucket) DO UPDATE SET
        count = r.count + excluded.count,
        sum = r.sum + excluded.sum,
        min = least(r.min, excluded.min),
        max = greatest(r.max, excluded.max),
        hist = metric_hist_merge(r.hist, excluded.hist)
$$;

