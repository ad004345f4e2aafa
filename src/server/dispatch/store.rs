//! The dispatch domain's SQL. Statuses are bound from the enums; batches travel as
//! parallel arrays through `unnest`.
//!
//! Locks, always in this order, so no two calls wait on each other in a cycle: job rows
//! (in id order, or `SKIP LOCKED` by a claim, which never waits), then task rows (in id
//! order). A heartbeat takes task rows only.

use crate::server::tasks::store::progress_from_tasks;

/// A task `t` a worker may take now: pending, its retry time passed, every dependency
/// completed. The one definition, for the claim's choice of jobs and of their tasks. `$10`
/// completed. The status is written out, not bound: only then can the planner of a prepared
/// statement (a generic plan, which sqlx's statements get after five runs) use the partial
/// index `job_tasks_pending_idx`; bound, the claim took 500 ms over 2,000 pending tasks
/// instead of 3 ms. The dependency test is an `OR` so that it stays a probe of
/// `(job_id, name)` per task that has dependencies, never a hash join over every task. A test below and `schema.rs` check that it and the index say
/// `TaskStatus::Pending`.
macro_rules! ready {
    () => {
        "t.status = 'pending'
         AND (t.not_before IS NULL OR t.not_before <= now())
                  AND (cardinality(t.depends_on) = 0
              OR NOT EXISTS (SELECT 1 FROM job_tasks d
                             WHERE d.job_id = t.job_id AND d.name = ANY(t.depends_on)
                               AND d.status <> $10))"
    };
}

/// `claimTasks`, in one statement: the jobs that may hand out work now, best first, are
/// locked `SKIP LOCKED` (a job another claim holds is passed over, never waited for); each
/// gives at most its free room of its oldest ready tasks (pending, retry time passed,
/// dependencies completed); the best of those, as many as asked and as fit in what the
/// worker declared minus what it holds, become running under new leases; the jobs'
/// running counts rise by what each gave (the CHECK `running_tasks <= max_parallel_tasks`
/// holds it exact); a pending job starts running, with its event.
///
/// `$1` worker, `$2` queues, `$3` most tasks, `$4`/`$5` declared memory (MB) and cores
/// (NULL: no bound), `$6` lease seconds, `$7` `JobStatus::HANDING_OUT`, `$8`/`$9`/`$10` the
/// task statuses pending, running, completed, `$11` `JobDriver::Dispatched`, `$12`/`$13` the
/// job statuses running and pending, `$14` the actor's label for the event.
pub const CLAIM_SQL: &str = concat!(
    "
    WITH held AS MATERIALIZED (
        SELECT coalesce(sum(j.max_memory), 0)::bigint AS memory,
               coalesce(sum(j.max_cpu), 0)::float8 AS cpus
        FROM job_tasks t JOIN jobs j ON j.id = t.job_id
        WHERE t.leased_by = $1 AND t.lease_token IS NOT NULL
    ), open_jobs AS (
        SELECT j.id, j.status, j.priority, j.created_at, j.max_memory, j.max_cpu,
               j.max_parallel_tasks - j.running_tasks AS room
        FROM jobs j
        WHERE j.driver = $11 AND j.queue = ANY($2) AND j.status = ANY($7)
          AND j.delete_requested_at IS NULL
          AND j.running_tasks < j.max_parallel_tasks
          AND ($4::bigint IS NULL OR j.max_memory <= $4 - (SELECT memory FROM held))
          AND ($5::float8 IS NULL OR j.max_cpu <= $5 - (SELECT cpus FROM held))
          -- LIMIT 1 keeps it a fast-start probe of the pending index (a semi join read
          -- every pending task of every job to build a bitmap).
          AND EXISTS (SELECT 1 FROM job_tasks t WHERE t.job_id = j.id AND ",
    ready!(),
    "
                      ORDER BY t.seq LIMIT 1)
        ORDER BY j.priority DESC, j.created_at, j.id
        LIMIT $3
        FOR UPDATE OF j SKIP LOCKED
    ), ready AS (
        SELECT r.id, r.job_id, o.priority, o.created_at AS job_created, o.max_memory, o.max_cpu,
               row_number() OVER (PARTITION BY r.job_id ORDER BY r.seq) AS rn
        FROM open_jobs o
        CROSS JOIN LATERAL (
            SELECT t.id, t.job_id, t.seq
            FROM job_tasks t
            WHERE t.job_id = o.id AND ",
    ready!(),
    "
            ORDER BY t.seq
            LIMIT least(o.room, $3)
            FOR UPDATE OF t
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
            status = $9,
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
        WHERE t.id = p.id AND t.status = $8
        RETURNING t.id, t.job_id, t.name, t.payload, t.attempt, t.lease_token, t.leased_until
    ), counted AS (
        SELECT job_id, count(*)::int AS n FROM claimed GROUP BY job_id
    ), started AS (
        UPDATE jobs j SET
            running_tasks = j.running_tasks + c.n,
            active_tasks = j.running_tasks + c.n,
            status = $12,
            started_at = coalesce(j.started_at, now()),
            updated_at = now()
        FROM counted c
        WHERE j.id = c.job_id
        RETURNING j.id
    ), events AS (
        INSERT INTO job_events (job_id, from_status, to_status, actor, reason)
        SELECT o.id, o.status, $12, $14, 'first task claimed'
        FROM open_jobs o JOIN counted c ON c.job_id = o.id
        WHERE o.status = $13
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

pub const INSERT_METRICS_SQL: &str = "
    INSERT INTO task_metrics (job_id, task_id, worker_id, cpu_percent, memory_mb, items)
    SELECT m.job_id, m.task_id, $1, m.cpu, m.memory, m.items
    FROM unnest($2::uuid[], $3::uuid[], $4::float8[], $5::float8[], $6::bigint[])
        AS m(job_id, task_id, cpu, memory, items)";

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
           j.queue, j.max_attempts, j.retry_interval, j.retry_on_errors,
           j.running_tasks >= j.max_parallel_tasks AS full,
           EXISTS (SELECT 1 FROM job_tasks t
                   WHERE t.job_id = j.id AND t.status = 'pending'
                     AND cardinality(t.depends_on) > 0) AS has_waiting_dependents
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

/// `$2` completed.
pub const COMPLETE_TASKS_SQL: &str = "
    UPDATE job_tasks SET
        status = $2, finished_at = now(), lease_token = NULL, leased_until = NULL,
        progress = 100, updated_at = now()
    WHERE id = ANY($1)";

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
/// returns whether every task completed and whether one failed for good. `$2` running,
/// `$3` completed, `$4` failed.
pub const FOLLOW_SQL: &str = concat!(
    "
    WITH c AS (
        SELECT t.job_id,
               count(*) FILTER (WHERE t.status = $2)::int AS running,
               count(*) FILTER (WHERE t.status = $3) AS completed,
               count(*) FILTER (WHERE t.status = $4) AS failed,
               count(*) AS total,
               coalesce(sum(t.progress) FILTER (WHERE t.status = $2), 0) AS running_progress,
               (array_agg(t.phase ORDER BY t.heartbeat_at DESC)
                    FILTER (WHERE t.status = $2 AND t.phase IS NOT NULL))[1] AS phase
        FROM job_tasks t WHERE t.job_id = ANY($1) GROUP BY t.job_id
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
    WHERE j.id = c.job_id
    RETURNING j.id, c.completed = c.total AS all_completed, c.failed > 0 AS has_failed"
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

/// The claim and finishing statements are planned once per connection and reused: their
/// plans do not depend on the values bound (the statuses that choose an index are written
/// out), and planning the claim anew took 2 to 5 ms, longer than running it (under 1 ms).
/// PostgreSQL would otherwise keep choosing custom plans, which it estimates cheaper.
pub const GENERIC_PLANS_SQL: &str = "SET LOCAL plan_cache_mode = force_generic_plan";

/// A queue name per committed change that may have freed work: every portal's listener
/// hears it and wakes its waiting claims of that queue (`wakeup`).
pub const NOTIFY_SQL: &str = "SELECT pg_notify($1, $2)";

#[cfg(test)]
mod tests {
    use crate::model::TaskStatus;

    #[test]
    fn the_ready_rule_names_the_pending_status_as_its_index_does() {
        let literal = format!("t.status = '{}'", TaskStatus::Pending.as_str());
        assert_eq!(super::CLAIM_SQL.matches(&literal).count(), 2);
    }
}
