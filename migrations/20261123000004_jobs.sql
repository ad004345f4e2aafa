-- Job control (seed 001's BatchJob) and the recap pipeline's rows (seed 002). The status
-- lists here are the ones in src/model/job.rs; the state machine itself lives there, and
-- every transition is a conditional update under the job's row lock.

CREATE TABLE jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind                text NOT NULL DEFAULT 'batch' CHECK (kind IN ('batch', 'recap')),
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled')),
    product_id          text,
    sending_group_id    text,
    user_id             text,
    trigger_source      text NOT NULL DEFAULT 'user' CHECK (trigger_source IN ('system', 'user')),
    priority            smallint NOT NULL CHECK (priority BETWEEN 1 AND 10),
    max_parallel_tasks  integer NOT NULL CHECK (max_parallel_tasks >= 1),
    max_attempts        integer NOT NULL CHECK (max_attempts >= 1),
    retry_interval      integer NOT NULL CHECK (retry_interval >= 0),
    retry_on_errors     text[] NOT NULL DEFAULT '{}',
    max_memory          bigint NOT NULL DEFAULT 0 CHECK (max_memory >= 0),
    max_cpu             double precision NOT NULL DEFAULT 0 CHECK (max_cpu >= 0),
    current_phase       text,
    progress_percentage double precision NOT NULL DEFAULT 0
                        CHECK (progress_percentage BETWEEN 0 AND 100),
    active_tasks        integer NOT NULL DEFAULT 0 CHECK (active_tasks >= 0),
    error_count         integer NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    stages              text[] NOT NULL DEFAULT '{}',
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- deleteJob on a live job: it goes when its pipeline next calls, or after the grace.
    delete_requested_at timestamptz,
    CONSTRAINT jobs_batch_target_check
        CHECK (kind = 'recap' OR (product_id IS NOT NULL AND sending_group_id IS NOT NULL)),
    -- A finished time exactly when the run has ended.
    CONSTRAINT jobs_finished_at_check
        CHECK ((finished_at IS NOT NULL) = (status IN ('completed', 'failed', 'cancelled')))
);

-- The jobs page: newest first, by key, optionally within one status or kind.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_kind_created_idx ON jobs (kind, created_at DESC, id DESC);
-- The deletion sweeper looks only at jobs waiting to go.
CREATE INDEX jobs_delete_requested_idx ON jobs (delete_requested_at)
    WHERE delete_requested_at IS NOT NULL;

CREATE TABLE job_tasks (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name          text NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    attempt       integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    -- Names of other tasks of the same job; the service refuses cycles.
    depends_on    text[] NOT NULL DEFAULT '{}',
    articles      bigint NOT NULL DEFAULT 0 CHECK (articles >= 0),
    clusters      bigint NOT NULL DEFAULT 0 CHECK (clusters >= 0),
    message       text,
    -- Dispatched work (a later issue): the worker holding the task and until when.
    lease_token   uuid,
    leased_by     text,
    leased_until  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_tasks_job_name_key UNIQUE (job_id, name),
    CONSTRAINT job_tasks_finished_at_check
        CHECK ((finished_at IS NOT NULL) = (status IN ('completed', 'failed', 'cancelled')))
);

CREATE TABLE job_phases (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name        text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX job_phases_job_idx ON job_phases (job_id, id);
-- At most one open phase per job.
CREATE UNIQUE INDEX job_phases_open_key ON job_phases (job_id) WHERE finished_at IS NULL;

CREATE TABLE job_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    reason      text
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);

CREATE TABLE job_logs (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_name text,
    level     text NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message   text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_logs_job_idx ON job_logs (job_id, id);

-- Every error_details a pipeline sent, not only the last.
CREATE TABLE job_errors (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_name text,
    code      text NOT NULL,
    class     text NOT NULL CHECK (class IN ('transient', 'resource', 'input', 'unknown')),
    message   text NOT NULL,
    stack     text,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_errors_job_idx ON job_errors (job_id, id);

-- Seed 002: the articles a recap job took in, with their feed and the user they came from.
CREATE TABLE recap_job_articles (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    feed_id          text NOT NULL,
    original_user_id text NOT NULL,
    genre            text NOT NULL,
    article_id       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recap_job_articles_job_idx ON recap_job_articles (job_id, genre);

-- Deleted jobs, so a pipeline still calling learns "gone" (410) rather than "never was".
CREATE TABLE job_tombstones (
    job_id     uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_tombstones_deleted_idx ON job_tombstones (deleted_at);
