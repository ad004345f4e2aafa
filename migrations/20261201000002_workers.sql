-- Dispatched work (seed 001's parallelism, resource and retry settings, enforced): workers
-- claim a job's tasks on `/task-operations`, hold them under a lease, and finish them.

-- How a job is driven: its own pipeline reports on it, or Jobdeck hands its tasks to
-- workers. Chosen at createJob.
ALTER TABLE jobs
    ADD COLUMN driver text NOT NULL DEFAULT 'reported' CHECK (driver IN ('reported', 'dispatched')),
    ADD COLUMN queue text NOT NULL DEFAULT 'default',
    -- The tasks workers hold now: raised by a claim under the job's row lock, recounted
    -- from the tasks whenever one finishes. The CHECK is the per-job limit, exact.
    ADD COLUMN running_tasks integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT jobs_running_tasks_check
        CHECK (running_tasks >= 0 AND running_tasks <= max_parallel_tasks);

-- What a claim scans: the dispatched jobs that may hand out work, best first.
-- (`dispatch::store::CLAIMABLE_*`; the statuses are compared with the enum in a test.)
CREATE INDEX jobs_claimable_idx ON jobs (queue, priority DESC, created_at, id)
    WHERE driver = 'dispatched' AND status IN ('pending', 'running') AND delete_requested_at IS NULL;

ALTER TABLE job_tasks
    -- The order tasks were added in, also within one call: claims take the oldest first.
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY,
    -- A retry waits until then.
    ADD COLUMN not_before timestamptz,
    -- The holder's last heartbeat: its progress (0-100) and phase.
    ADD COLUMN progress double precision CHECK (progress BETWEEN 0 AND 100),
    ADD COLUMN phase text,
    ADD COLUMN heartbeat_at timestamptz;

-- A job's tasks that wait for a worker, oldest first.
CREATE INDEX job_tasks_pending_idx ON job_tasks (job_id, seq) WHERE status = 'pending';
-- Held tasks (a lease token is set exactly while a worker holds one): by expiry for the
-- lease sweeper, by holder for the capacity a worker already uses.
CREATE INDEX job_tasks_lease_expiry_idx ON job_tasks (leased_until) WHERE lease_token IS NOT NULL;
CREATE INDEX job_tasks_holder_idx ON job_tasks (leased_by) WHERE lease_token IS NOT NULL;

-- Every worker that asked for work: what it serves and declared, and when it last asked.
CREATE TABLE workers (
    id            text PRIMARY KEY,
    queues        text[] NOT NULL,
    -- Declared capacity; NULL means the worker set no bound.
    memory_mb     bigint,
    cpus          double precision,
    actor         text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workers_last_seen_idx ON workers (last_seen_at DESC, id);

-- What a worker measured of a task's process, sent with its heartbeats (one INSERT per
-- heartbeat call). The monitoring issue builds on these.
CREATE TABLE task_metrics (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_id     uuid NOT NULL REFERENCES job_tasks (id) ON DELETE CASCADE,
    worker_id   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    cpu_percent double precision,
    memory_mb   double precision,
    items       bigint
);
CREATE INDEX task_metrics_task_idx ON task_metrics (task_id, id);
CREATE INDEX task_metrics_job_idx ON task_metrics (job_id, at);
