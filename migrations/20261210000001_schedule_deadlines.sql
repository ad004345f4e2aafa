-- The deadline the evaluator last counted for each schedule, so a cycle reads only the
-- schedules whose deadline may have passed. A script's anchor (last report, last start,
-- schedule set) only moves forward, so a stored deadline is never later than the true one:
-- `deadline_at <= now` finds every missed run (and some the evaluator then counts again).
-- NULL: not counted yet, or the schedule changed.
ALTER TABLE job_schedules ADD COLUMN deadline_at timestamptz;
CREATE INDEX job_schedules_deadline_idx ON job_schedules (deadline_at);
