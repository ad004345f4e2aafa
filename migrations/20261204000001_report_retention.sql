-- Seed 003's report history (job_reports) in daily partitions by arrival, dropped whole past
-- JOBDECK_REPORT_RETENTION_DAYS, like the samples (issue 23, item 6).

ALTER TABLE job_reports RENAME TO job_reports_unpartitioned;
ALTER TABLE job_reports_unpartitioned RENAME CONSTRAINT job_reports_pkey TO job_reports_unpartitioned_pkey;
ALTER INDEX idx_job_reports_job_finished RENAME TO job_reports_unpartitioned_job_finished_idx;

-- PostgreSQL 15 has no identity columns on a partitioned table, so the id comes from a
-- sequence; a partitioned table's key must hold its partition column.
CREATE SEQUENCE job_reports_report_id_seq AS bigint;
CREATE TABLE job_reports (
  id BIGINT NOT NULL DEFAULT nextval('job_reports_report_id_seq'),
  job_status_id UUID NOT NULL REFERENCES job_status(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('success', 'error')),
  finished_at TIMESTAMPTZ NOT NULL,
  started_at TIMESTAMPTZ NULL,
  duration_ms BIGINT NULL CHECK (duration_ms >= 0),
  message TEXT NULL,
  tool_id UUID NULL,
  received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
ALTER SEQUENCE job_reports_report_id_seq OWNED BY job_reports.id;
CREATE INDEX idx_job_reports_job_finished ON job_reports(job_status_id, finished_at DESC);
CREATE TABLE job_reports_default PARTITION OF job_reports DEFAULT;

-- A report is dated by its arrival, so partitions are made from today (and three days ahead),
-- plus one for each of the last 90 days with reports; older reports go to the default
-- partition, whose rows past the retention maintenance deletes (`monitoring::retention`).
DO $$
DECLARE
    day date;
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    FOR day IN
        SELECT generate_series(today, today + 3, interval '1 day')::date
        UNION
        SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM job_reports_unpartitioned
        WHERE received_at >= now() - interval '90 days' AND received_at < now() + interval '3 days'
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF job_reports FOR VALUES FROM (%L) TO (%L)',
            'job_reports_p' || to_char(day, 'YYYYMMDD'),
            day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
END $$;

INSERT INTO job_reports (id, job_status_id, title, status, finished_at, started_at, duration_ms, message, tool_id, received_at)
SELECT id, job_status_id, title, status, finished_at, started_at, duration_ms, message, tool_id, received_at
FROM job_reports_unpartitioned;
SELECT setval('job_reports_report_id_seq', coalesce((SELECT max(id) FROM job_reports_unpartitioned), 0) + 1, false);

DROP TABLE job_reports_unpartitioned;

