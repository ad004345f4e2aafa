//! The dispatch domain's SQL. Statuses are bound from the enums; batches travel as
//! parallel arrays through `unnest`.
//!
//! Locks, always in this order, so no two calls wait on each other in a cycle: job rows
//! (in id order, or `SKIP LOCKED` by a claim, which never waits), then task rows (in id
//! order). A heartbeat takes task rows only.

use crate::server::tasks::store::progress_from_tasks;

/// A task `t` a worker may take now: pending, its retry time passed, every dependency
/// completed (`$completed`: the parameter bound to `TaskStatus::Completed`). The one
/// definition, for the choice of jobs and of their tasks. The status is written out, not
/// bound: only then can the planner of a prepared statement (a generic plan, which the
/// protocol's connections always use) use the partial index `job_tasks_pending_idx`;
/// bound, the claim took 500 ms over 2,000 pending tasks instead of 3 ms. The dependency
/// test is an `OR` so that it stays a probe of `(job_id, name)` per task that has
/// dependencies, never a hash join over every task. A test below and `schema.rs` check
/// that it and the index say `TaskStatus::Pending`.
macro_rules! ready {
    ($completed:literal) => {
        concat!(
            "t.status = 'pending'
             AND (t.not_before IS NULL OR t.not_before <= now())
             AND (cardinality(t.depends_on) = 0
                  OR NOT EXISTS (SELECT 1 FROM job_tasks d
                                 WHERE d.job_id = t.job_id AND d.name = ANY(t.depends_on)
                                   AND d.status <> ",
            $completed,
            "))"
        )
    };
}

/// What a worker already holds, by the jobs' declared needs (`$1` the worker).
macro_rules! held {
    () => {
        "held AS MATERIALIZED (
            SELECT coalesce(sum(j.max_memory), 0)::bigint AS memory,
                   coalesce(sum(j.max_cpu), 0)::float8 AS cpus
            FROM job_tasks t JOIN jobs j ON j.id = t.job_id
            WHERE t.leased_by = $1 AND t.lease_token IS NOT NULL
        )"
    };
}

/// A job `j` that may hand out work: dispatched, pending or running, not being deleted.
/// Written out, as `jobs_claimable_idx` says it (bound, a generic plan could not use the
/// index and would read every job); a test below checks it against the enums.
macro_rules! claimable {
    () => {
        "j.driver = 'dispatched' AND j.status IN ('pending', 'running')
         AND j.delete_requested_at IS NULL"
    };
}

/// `claimTasks`, first statement: the jobs that may hand out work now, best first, locked
/// `SKIP LOCKED` (a job another call holds is passed over, never waited for): dispatched,
/// of the worker's queues, handing out, below their limit, needing no more than the
/// worker has left, with a ready task. [`CLAIM_SQL`] then reads them afresh: a statement
/// that locks rows sees them as they are, but reads the rest (their tasks, the counts)
/// as they were when it began, and a claim that counted in one statement what another
/// had just changed could go past a job's limit (the CHECK refused it).
///
/// `$1` worker, `$2` queues, `$3` most jobs, `$4`/`$5` declared memory (MB) and cores
/// (NULL: no bound), `$6` `TaskStatus::Completed`.
pub const LOCK_OPEN_JOBS_SQL: &str = concat!(
    "
    WITH ",
    held!(),
    "
    SELECT j.id
    FROM jobs j
    WHERE ",
    claimable!(),
    " AND j.queue = ANY($2)
      AND j.running_tasks < j.max_parallel_tasks
      AND ($4::bigint IS NULL OR j.max_memory <= $4 - (SELECT memory FROM held))
      AND ($5::float8 IS NULL OR j.max_cpu <= $5 - (SELECT cpus FROM held))
      -- LIMIT 1 keeps it a fast-start probe of the pending index (a semi join read
      -- every pending task of every job to build a bitmap).
      AND EXISTS (SELECT 1 FROM job_tasks t
                  WHERE t.job_id = j.id AND t.seq >= j.claim_from AND ",
    ready!("$6"),
    "
                  ORDER BY t.seq LIMIT 1)
    ORDER BY j.priority DESC, j.created_at, j.id
    LIMIT $3
    FOR UPDATE OF j SKIP LOCKED"
);

/// `claimTasks`, second statement, in the transaction that locked the jobs: each gives at
/// most its free room of its oldest ready tasks; the best of those, as many as asked and
/// as fit in what the worker declared minus what it holds, become running under new
/// leases; the jobs' running counts rise by what each gave (the CHECK `running_tasks <=
/// max_parallel_tasks` holds it exact); a pending job starts running, with its event.
///
/// `$1` worker, `$2` the locked jobs, `$3` most tasks, `$4`/`$5` declared memory and cores,
/// `$6` lease seconds, `$7`/`$8`/`$9` the task statuses pending, running, completed,
/// `$10`/`$11` the job statuses running and pending, `$12` the actor's label for the event.
pub const CLAIM_SQL: &str = concat!(
    "
    WITH ",
    held!(),
    ", open_jobs AS (
        SELECT j.id, j.status, j.priority, j.created_at, j.max_memory, j.max_cpu,
               j.max_parallel_tasks - j.running_tasks AS room, j.claim_from
        FROM jobs j
        WHERE j.id = ANY($2)
    ), ready AS (
        SELECT r.id, r.job_id, o.priority, o.created_at AS job_created, o.max_memory, o.max_cpu,
               row_number() OVER (PARTITION BY r.job_id ORDER BY r.seq) AS rn
        FROM open_jobs o
        CROSS JOIN LATERAL (
            SELECT t.id, t.job_id, t.seq
            FROM job_tasks t
            WHERE t.job_id = o.id AND t.seq >= o.claim_from AND ",
    ready!("$9"),
    "
            ORDER BY t.seq
            LIMIT least(o.room, $3)
        ) r
    ), picked AS (
        SELECT x.id FROM (
            SELECT r.id, row_number() OVER w AS n,
                   sum(r.max_memory) OVER w AS memory, sum(r.max_cpu) OVER w AS cpus
            FROM ready r
            WINDOW w AS (ORDER BY r.priority DESC, r.job_created, r.job_id, r.rn)
        ) x
        WHERE x.n <= $3
          AND ($4::bigint IS NULL OR x.memory <= $4 - (SELECT memory FROM held))
          AND ($5::float8 IS NULL OR x.cpus <= $5 - (SELECT cpus FROM held))
    ), claimed AS (
        UPDATE job_tasks t SET
            status = $8,
            attempt = t.attempt + 1,
            lease_token = gen_random_uuid(),
            leased_by = $1,
            leased_until = now() + make_interval(secs => $6),
            started_at = now(),
            finished_at = NULL,
            not_before = NULL,
            progress = NULL,
            phase = NULL,
            heartbeat_at = now(),
            updated_at = now()
        FROM picked p
        WHERE t.id = p.id AND t.status = $7
        RETURNING t.id, t.job_id, t.name, t.payload, t.attempt, t.lease_token, t.leased_until,
                  t.seq
    ), counted AS (
        SELECT job_id, count(*)::int AS n, max(seq) AS last, array_agg(id) AS ids
        FROM claimed GROUP BY job_id
    ), started AS (
        UPDATE jobs j SET
            running_tasks = j.running_tasks + c.n,
            active_tasks = j.running_tasks + c.n,
            -- The first task still pending (this statement sees the ones it took as they
            -- were, and passes over them), else past the last one taken.
            claim_from = coalesce(
                (SELECT t.seq FROM job_tasks t
                 WHERE t.job_id = j.id AND t.status = 'pending' AND t.seq >= j.claim_from
                   AND t.id <> ALL(c.ids)
                 ORDER BY t.seq LIMIT 1),
                c.last + 1),
            status = $10,
            started_at = coalesce(j.started_at, now()),
            updated_at = now()
        FROM counted c
        WHERE j.id = c.job_id
        RETURNING j.id
    ), events AS (
        INSERT INTO job_events (job_id, from_status, to_status, actor, reason)
        SELECT o.id, o.status, $10, $12, 'first task claimed'
        FROM open_jobs o JOIN counted c ON c.job_id = o.id
        WHERE o.status = $11
    )
    SELECT c.id AS task_id, c.job_id, c.name, c.payload, c.attempt, c.lease_token,
           c.leased_until AS lease_expires_at, o.priority, o.max_memory, o.max_cpu
    FROM claimed c JOIN open_jobs o ON o.id = c.job_id
    ORDER BY o.priority DESC, o.created_at, c.job_id"
);

/// Records that a worker asked (`claim::seen` calls it at most every `SEEN_EVERY` per
/// worker and portal; here again at most once a second, for several portals).
pub const SEEN_WORKER_SQL: &str = "
    INSERT INTO workers AS w (id, queues, memory_mb, cpus, actor)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (id) DO UPDATE SET
        queues = excluded.queues, memory_mb = excluded.memory_mb, cpus = excluded.cpus,
        actor = excluded.actor, last_seen_at = now()
    WHERE w.last_seen_at < now() - interval '1 second'
       OR w.queues IS DISTINCT FROM excluded.queues
       OR w.memory_mb IS DISTINCT FROM excluded.memory_mb
       OR w.cpus IS DISTINCT FROM excluded.cpus";

/// A heartbeat's `last_seen_at` only (it does not restate the worker's queues).
pub const HEARD_WORKER_SQL: &str = "
    UPDATE workers SET last_seen_at = now()
    WHERE id = $1 AND last_seen_at < now() - interval '10 seconds'";

/// `heartbeat`: extends the leases presented with their current token and keeps what the
/// tasks report; returns each extended task with its job's status. A task row another
/// change holds just now is passed over (`SKIP LOCKED`: a heartbeat never waits, so it
/// cannot deadlock with a job's change) and answered by [`STILL_HELD_SQL`]. `$6` lease
/// seconds, `$7` running.
pub const HEARTBEAT_SQL: &str = "
    WITH input AS (
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::float8[], $4::text[], $5::text[])
            AS i(id, token, progress, phase, message)
    ), locked AS (
        SELECT t.id FROM job_tasks t JOIN input i ON i.id = t.id
        WHERE t.lease_token = i.token AND t.status = $7
        ORDER BY t.id
        FOR UPDATE OF t SKIP LOCKED
    )
    UPDATE job_tasks t SET
        leased_until = now() + make_interval(secs => $6),
        heartbeat_at = now(),
        progress = coalesce(i.progress, t.progress),
        phase = coalesce(i.phase, t.phase),
        message = coalesce(i.message, t.message),
        updated_at = now()
    FROM input i, jobs j
    WHERE t.id IN (SELECT id FROM locked) AND i.id = t.id AND j.id = t.job_id
      AND t.lease_token = i.token AND t.status = $7
    RETURNING t.id, t.job_id, t.name, j.status AS job_status,
              j.delete_requested_at IS NOT NULL AS deleting";

/// Of the leases a heartbeat passed over, those still current as last committed.
pub const STILL_HELD_SQL: &str = "
    SELECT t.id FROM job_tasks t
    JOIN unnest($1::uuid[], $2::uuid[]) AS i(id, token) ON i.id = t.id AND t.lease_token = i.token
    WHERE t.status = $3";

/// Stores the samples and adds them to the rollups (`monitoring::rollups`).
pub const INSERT_METRICS_SQL: &str = crate::server::monitoring::with_rollups!(
    "$2::uuid[]",
    "INSERT INTO task_metrics (job_id, task_id, worker_id, cpu_percent, memory_mb, items)
     SELECT m.job_id, m.task_id, $1, m.cpu, m.memory, m.items
     FROM unnest($2::uuid[], $3::uuid[], $4::float8[], $5::float8[], $6::bigint[])
         AS m(job_id, task_id, cpu, memory, items)"
);

pub const INSERT_LOGS_SQL: &str = "
    INSERT INTO job_logs (job_id, task_name, level, message)
    SELECT l.job_id, l.task_name, $1, l.message
    FROM unnest($2::uuid[], $3::text[], $4::text[]) AS l(job_id, task_name, message)";

pub const INSERT_ERRORS_SQL: &str = "
    WITH e AS (
        INSERT INTO job_errors (job_id, task_name, code, class, message, stack)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[])
    )
    INSERT INTO job_logs (job_id, task_name, level, message)
    SELECT l.job_id, l.task_name, $7, l.code || ': ' || l.message
    FROM unnest($1::uuid[], $2::text[], $3::text[], $5::text[])
        AS l(job_id, task_name, code, message)";

pub const COUNT_ERRORS_SQL: &str = "
    UPDATE jobs j SET error_count = j.error_count + c.n
    FROM unnest($1::uuid[], $2::int4[]) AS c(id, n)
    WHERE j.id = c.id";

/// The jobs of the tasks a finishing call names, locked in id order, with what the retry
/// rule reads.
pub const LOCK_JOBS_OF_TASKS_SQL: &str = "
        SELECT j.id, j.status, j.current_phase, j.stages, j.delete_requested_at, j.driver,
           j.queue, j.max_attempts, j.retry_interval, j.retry_on_errors, j.kind, j.priority,
           j.product_id, j.sending_group_id,
           j.running_tasks >= j.max_parallel_tasks AS full,
           -- A probe of `job_tasks_waiting_on_others_idx` (an EXISTS may be planned as a
           -- hash of every waiting task of every job).
           coalesce((SELECT true FROM job_tasks t
                     WHERE t.job_id = j.id AND t.status = 'pending'
                       AND cardinality(t.depends_on) > 0
                     LIMIT 1), false) AS has_waiting_dependents
    FROM jobs j
    WHERE j.id IN (SELECT job_id FROM job_tasks WHERE id = ANY($1))
    ORDER BY j.id
    FOR UPDATE OF j";

/// The named tasks, locked in id order.
pub const LOCK_TASKS_SQL: &str = "
    SELECT id, job_id, name, status, lease_token, attempt,
           coalesce(leased_until < now(), false) AS expired
    FROM job_tasks WHERE id = ANY($1)
    ORDER BY id
    FOR UPDATE";

/// A worker's completions in one statement: the named tasks still running under the
/// token presented become completed; returns each with its job. `$3` completed, `$4`
/// running.
pub const COMPLETE_HELD_SQL: &str = "
    UPDATE job_tasks t SET
        status = $3, finished_at = now(), lease_token = NULL, leased_until = NULL,
        progress = 100, updated_at = now()
    FROM unnest($1::uuid[], $2::uuid[]) AS i(id, token)
    WHERE t.id = i.id AND t.lease_token = i.token AND t.status = $4
    RETURNING t.id, t.job_id";

/// Back to pending for `delay` seconds (the database's clock, the one claims compare
/// with); `give_back` 1 returns the attempt (a worker's shutdown does not count). `$5`
/// pending. Returns when each may run again.
pub const RETRY_TASKS_SQL: &str = "
    UPDATE job_tasks t SET
        status = $5, not_before = now() + make_interval(secs => i.delay),
        attempt = t.attempt - i.give_back,
        lease_token = NULL, leased_until = NULL, progress = NULL, message = i.message,
        updated_at = now()
    FROM unnest($1::uuid[], $2::float8[], $3::int[], $4::text[])
        AS i(id, delay, give_back, message)
    WHERE t.id = i.id
    RETURNING t.id, t.not_before";

/// `$3` failed.
pub const FAIL_TASKS_SQL: &str = "
    UPDATE job_tasks t SET
        status = $3, finished_at = now(), lease_token = NULL, leased_until = NULL,
        message = i.message, updated_at = now()
    FROM unnest($1::uuid[], $2::text[]) AS i(id, message)
    WHERE t.id = i.id";

/// A dispatched job follows its tasks: its running count, active tasks, progress (completed
/// tasks, plus the progress running ones reported) and the phase a holder reported last;
/// returns whether every task completed. Reads only the held tasks (a job's limit bounds
/// them) and the counts the database keeps on the job row (`tasks_completed`,
/// `tasks_total`): a recount of every task here cost 1-3 ms a completion at 2,000 tasks,
/// under the job's lock. `$2` running.
pub const FOLLOW_SQL: &str = concat!(
    "
    WITH held AS (
        -- LATERAL keeps it a probe of the job's held tasks (joined, a generic plan read
        -- every task).
        SELECT j.id, h.running, h.running_progress, h.phase
        FROM jobs j
        CROSS JOIN LATERAL (
            SELECT count(*)::int AS running,
                   coalesce(sum(t.progress), 0) AS running_progress,
                   (array_agg(t.phase ORDER BY t.heartbeat_at DESC)
                        FILTER (WHERE t.phase IS NOT NULL))[1] AS phase
            FROM job_tasks t
            WHERE t.job_id = j.id AND t.lease_token IS NOT NULL AND t.status = $2
        ) h
        WHERE j.id = ANY($1)
    ), c AS (
        SELECT h.*, j.tasks_completed AS completed, j.tasks_total AS total
        FROM held h JOIN jobs j ON j.id = h.id
    )
    UPDATE jobs j SET
        running_tasks = c.running,
        active_tasks = c.running,
        progress_percentage = ",
    progress_from_tasks!(),
    ",
        current_phase = coalesce(c.phase, j.current_phase),
        updated_at = now()
    FROM c
    WHERE j.id = c.id
    RETURNING j.id, c.total > 0 AND c.completed = c.total AS all_completed"
);

/// A job's failed, completed and all tasks. `$2` failed, `$3` completed.
pub const SETTLED_SQL: &str = "
    SELECT count(*) FILTER (WHERE status = $2), count(*) FILTER (WHERE status = $3), count(*)
    FROM job_tasks WHERE job_id = $1";

/// The heartbeat's follow: only jobs no one else holds now (the next heartbeat catches up).
pub const LOCK_JOBS_NOWAIT_SQL: &str = "
    SELECT id FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED";

/// Leases past their time, a page of jobs at a time, for the sweeper.
pub const EXPIRED_LEASES_SQL: &str = "
    SELECT DISTINCT job_id FROM job_tasks
    WHERE lease_token IS NOT NULL AND leased_until < now()
    LIMIT 100";

/// A locked job's expired leases, with their tokens (the sweeper presents them like a
/// worker would, so a heartbeat that got there first wins). `$2` running.
pub const EXPIRED_TASKS_SQL: &str = "
    SELECT id, lease_token, leased_by FROM job_tasks
    WHERE job_id = $1 AND lease_token IS NOT NULL AND leased_until < now() AND status = $2
    ORDER BY id";

/// A queue name per committed change that may have freed work: every portal's listener
/// hears it and wakes its waiting claims of that queue (`wakeup`).
pub const NOTIFY_SQL: &str = "SELECT pg_notify($1, $2)";

#[cfg(test)]
mod tests {
    use crate::model::{JobDriver, JobStatus, TaskStatus};

    #[test]
    fn the_claimable_rule_names_the_driver_and_statuses_as_its_index_does() {
        let [pending, running] = JobStatus::HANDING_OUT.map(JobStatus::as_str);
        let rule = format!(
            "j.driver = '{}' AND j.status IN ('{pending}', '{running}')",
            JobDriver::Dispatched.as_str()
        );
        assert!(claimable!().contains(&rule), "{}", claimable!());
        assert!(super::LOCK_OPEN_JOBS_SQL.contains(claimable!()));
    }

    #[test]
    fn the_ready_rule_names_the_pending_status_as_its_index_does() {
        let literal = format!("t.status = '{}'", TaskStatus::Pending.as_str());
        assert_eq!(super::LOCK_OPEN_JOBS_SQL.matches(&literal).count(), 1);
        assert_eq!(super::CLAIM_SQL.matches(&literal).count(), 2);
    }
}
