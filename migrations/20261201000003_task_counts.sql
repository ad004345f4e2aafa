-- A job's task counts, kept on its row so that finishing a task does not recount the job
-- (that recount took 1-3 ms over 2,000 tasks, under the job's row lock, on every
-- completion). Kept by the database itself, whatever statement changes the tasks, so no
-- caller can forget them.
ALTER TABLE jobs
    ADD COLUMN tasks_total integer NOT NULL DEFAULT 0,
    ADD COLUMN tasks_completed integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT jobs_task_counts_check
        CHECK (tasks_completed >= 0 AND tasks_completed <= tasks_total),
    -- No pending task of the job has a `seq` below this: claims read the pending index
    -- from here, not from the job's first task (until vacuum, the index still holds an
    -- entry for every task already taken; stepping over them halved single-task claims at
    -- 2,000 tasks a job). A claim moves it past what it took; a task that becomes pending
    -- again moves it back (below).
    ADD COLUMN claim_from bigint NOT NULL DEFAULT 0;

UPDATE jobs j SET tasks_total = c.total, tasks_completed = c.completed
FROM (SELECT job_id, count(*) AS total, count(*) FILTER (WHERE status = 'completed') AS completed
      FROM job_tasks GROUP BY job_id) c
WHERE j.id = c.job_id;

-- One UPDATE of each job a statement touched, after the statement (per-row triggers would
-- write a job row once per task). Every path that changes whether a task is completed, or
-- adds or removes tasks, already holds their job's row lock, so taking it here adds no wait
-- and no lock-order cycle; a statement that changes no task's completion (a claim, a
-- heartbeat, which holds no job lock) writes no job row. A new path that completes tasks
-- must lock their job first.
CREATE FUNCTION job_tasks_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE jobs j SET tasks_total = j.tasks_total + d.total,
                          tasks_completed = j.tasks_completed + d.completed
        FROM (SELECT job_id, count(*) AS total,
                     count(*) FILTER (WHERE status = 'completed') AS completed
              FROM new_tasks GROUP BY job_id) d
        WHERE j.id = d.job_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE jobs j SET tasks_total = j.tasks_total - d.total,
                          tasks_completed = j.tasks_completed - d.completed
        FROM (SELECT job_id, count(*) AS total,
                     count(*) FILTER (WHERE status = 'completed') AS completed
              FROM old_tasks GROUP BY job_id) d
        WHERE j.id = d.job_id;
    ELSE
        UPDATE jobs j SET tasks_completed = j.tasks_completed + d.completed
        FROM (SELECT n.job_id,
                     sum((n.status = 'completed')::int - (o.status = 'completed')::int) AS completed
              FROM new_tasks n JOIN old_tasks o ON o.id = n.id
              WHERE (n.status = 'completed') <> (o.status = 'completed')
              GROUP BY n.job_id) d
        WHERE j.id = d.job_id;
        UPDATE jobs j SET claim_from = d.low
        FROM (SELECT n.job_id, min(n.seq) AS low
              FROM new_tasks n JOIN old_tasks o ON o.id = n.id
              WHERE n.status = 'pending' AND o.status <> 'pending'
              GROUP BY n.job_id) d
        WHERE j.id = d.job_id AND d.low < j.claim_from;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_tasks_count_insert AFTER INSERT ON job_tasks
    REFERENCING NEW TABLE AS new_tasks FOR EACH STATEMENT EXECUTE FUNCTION job_tasks_count();
CREATE TRIGGER job_tasks_count_update AFTER UPDATE ON job_tasks
    REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION job_tasks_count();
CREATE TRIGGER job_tasks_count_delete AFTER DELETE ON job_tasks
    REFERENCING OLD TABLE AS old_tasks FOR EACH STATEMENT EXECUTE FUNCTION job_tasks_count();

-- The running tasks of a job, for its running count and progress (bounded by its limit).
CREATE INDEX job_tasks_held_by_job_idx ON job_tasks (job_id) WHERE lease_token IS NOT NULL;
-- Whether a completion may make a waiting task ready (a probe, not a scan of every
-- pending task of the job).
CREATE INDEX job_tasks_waiting_on_others_idx ON job_tasks (job_id)
    WHERE status = 'pending' AND cardinality(depends_on) > 0;
-- Every claim and completion writes an entry into each index whose predicate the task
-- enters; the lease sweeper's look for expired leases every 2 s reads the held tasks
-- through the index above instead (there are at most as many as tasks running).
DROP INDEX job_tasks_lease_expiry_idx;
