-- Seed 003: tools, the last result per job (job_status), and every accepted report (job_reports).

CREATE TABLE tools (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE job_status (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  job_key TEXT UNIQUE NOT NULL,
  title TEXT NOT NULL,
  tool_id UUID NULL REFERENCES tools(id) ON DELETE SET NULL,
  last_status TEXT NOT NULL CHECK (last_status IN ('success', 'error')),
  last_finished_at TIMESTAMPTZ NOT NULL,
  last_message TEXT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_job_status_last_status ON job_status(last_status);
CREATE INDEX idx_job_status_last_finished_at ON job_status(last_finished_at DESC);

-- Beyond the seed: the run history behind durations, trends and success rates.
CREATE TABLE job_reports (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_status_id UUID NOT NULL REFERENCES job_status(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('success', 'error')),
  finished_at TIMESTAMPTZ NOT NULL,
  started_at TIMESTAMPTZ NULL,
  duration_ms BIGINT NULL CHECK (duration_ms >= 0),
  message TEXT NULL,
  tool_id UUID NULL,
  received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_job_reports_job_finished ON job_reports(job_status_id, finished_at DESC);
