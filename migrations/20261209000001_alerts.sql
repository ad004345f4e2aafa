-- Issue 25: schedules and start signals of reported scripts; alert rules, their channels and
-- current states; the append-only log of every state change, whose deliveries are the
-- notification outbox; silences and notes.

-- A script's expected schedule: a cron expression in a time zone, or a period.
CREATE TABLE job_schedules (
    job_key        text PRIMARY KEY,
    cron           text,
    timezone       text NOT NULL DEFAULT 'UTC',
    period_seconds integer CHECK (period_seconds > 0),
    grace_seconds  integer NOT NULL DEFAULT 300 CHECK (grace_seconds >= 0),
    updated_by     text NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT job_schedules_one_kind_check CHECK ((cron IS NULL) <> (period_seconds IS NULL))
);

-- The latest start signal of each script (`POST /api/monitor/job-start`).
CREATE TABLE job_starts (
    job_key     text PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_channels (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE,
    kind       text NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    -- A URL, or an email address.
    target     text NOT NULL,
    -- The Standard Webhooks signing secret (`whsec_` + base64) of a webhook channel.
    secret     text,
    language   text NOT NULL DEFAULT 'ja' CHECK (language IN ('ja', 'en')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_channels_secret_check CHECK ((kind = 'webhook') = (secret IS NOT NULL))
);

CREATE TABLE alert_rules (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text NOT NULL,
    -- 'all'; 'job_kind' with script, batch or recap; 'job_key' with a script's key or a job's id.
    scope_kind         text NOT NULL CHECK (scope_kind IN ('all', 'job_kind', 'job_key')),
    scope_value        text,
    kind               text NOT NULL
                       CHECK (kind IN ('missed_run', 'stuck', 'failure_rate', 'duration_anomaly', 'error_spike')),
    params             jsonb NOT NULL DEFAULT '{}',
    pending_for        integer NOT NULL DEFAULT 0 CHECK (pending_for >= 0),
    min_runs           integer NOT NULL DEFAULT 0 CHECK (min_runs >= 0),
    severity           text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    -- Seconds between reminders while firing and unacknowledged; NULL: notify once.
    repeat_interval    integer CHECK (repeat_interval > 0),
    enabled            boolean NOT NULL DEFAULT true,
    built_in           boolean NOT NULL DEFAULT false,
    -- Claimed by the evaluator (FOR UPDATE SKIP LOCKED) and moved on by its interval.
    next_evaluation_at timestamptz NOT NULL DEFAULT '-infinity',
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_rules_scope_check CHECK ((scope_kind = 'all') = (scope_value IS NULL))
);
CREATE INDEX alert_rules_due_idx ON alert_rules (next_evaluation_at) WHERE enabled;
CREATE INDEX alert_rules_scope_idx ON alert_rules (scope_value, scope_kind);

CREATE TABLE alert_rule_channels (
    rule_id    uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, channel_id)
);
CREATE INDEX alert_rule_channels_channel_idx ON alert_rule_channels (channel_id);

-- What each rule currently sees for each subject it judges; a subject that is fine has no row.
CREATE TABLE alert_states (
    rule_id         uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    -- 'script:<key>', 'job:<id>', 'kind:<kind>' or 'fingerprint:<fp>'.
    subject         text NOT NULL,
    -- For silences and the job pages: the script's key or the job's id, and its kind.
    job_key         text,
    job_kind        text,
    label           text NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'firing')),
    pending_since   timestamptz NOT NULL,
    fired_at        timestamptz,
    notified_at     timestamptz,
    facts           jsonb NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    snoozed_until   timestamptz,
    snoozed_by      text,
    PRIMARY KEY (rule_id, subject)
);
CREATE INDEX alert_states_firing_idx ON alert_states (fired_at DESC, rule_id, subject) WHERE state = 'firing';
CREATE INDEX alert_states_job_idx ON alert_states (job_key) WHERE job_key IS NOT NULL;

-- Every change of an alert's state, and every reminder; never updated.
CREATE TABLE alert_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id    uuid NOT NULL,
    rule_name  text NOT NULL,
    kind       text NOT NULL,
    severity   text NOT NULL,
    subject    text NOT NULL,
    job_key    text,
    job_kind   text,
    label      text NOT NULL,
    from_state text NOT NULL CHECK (from_state IN ('ok', 'pending', 'firing')),
    to_state   text NOT NULL CHECK (to_state IN ('ok', 'pending', 'firing', 'resolved')),
    reminder   boolean NOT NULL DEFAULT false,
    -- A silence covered it: it owes no notification.
    silenced   boolean NOT NULL DEFAULT false,
    facts      jsonb NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX alert_events_job_idx ON alert_events (job_key, at DESC) WHERE job_key IS NOT NULL;
CREATE INDEX alert_events_at_idx ON alert_events (at DESC, id DESC);

CREATE FUNCTION alert_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_events is append-only';
END $$;
CREATE TRIGGER alert_events_append_only BEFORE UPDATE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION alert_events_append_only();

-- The outbox: one row per notification an event owes a channel, written in the event's
-- transaction, claimed by a conditional update, retried with backoff.
CREATE TABLE alert_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    channel_id      uuid NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Queued: when to try; sending: when the claim lapses and another process may retry.
    next_attempt_at timestamptz NOT NULL,
    sent_at         timestamptz,
    last_error      text,
    CONSTRAINT alert_deliveries_event_channel_key UNIQUE (event_id, channel_id)
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at)
    WHERE status IN ('queued', 'sending');

CREATE TABLE alert_delivery_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    ok          boolean NOT NULL,
    status_code integer,
    error       text,
    duration_ms integer NOT NULL
);
CREATE INDEX alert_delivery_attempts_delivery_idx ON alert_delivery_attempts (delivery_id, id);

CREATE TABLE alert_silences (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    scope_kind  text NOT NULL CHECK (scope_kind IN ('all', 'job_kind', 'job_key')),
    scope_value text,
    ends_at     timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_silences_scope_check CHECK ((scope_kind = 'all') = (scope_value IS NULL))
);
CREATE INDEX alert_silences_ends_idx ON alert_silences (ends_at);

CREATE TABLE alert_notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id    uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_notes_alert_idx ON alert_notes (rule_id, subject, id);

-- An error_spike rule on one script reads that script's records in its window.
CREATE INDEX error_records_script_at_idx ON error_records (job_status_id, at)
    WHERE job_status_id IS NOT NULL;

-- The defaults every script gets, new ones included: its first failure, and a missed run
-- once it has a schedule. They have no channel until an operator gives them one; they show
-- on the incidents page regardless.
INSERT INTO alert_rules (name, scope_kind, scope_value, kind, params, severity, built_in, created_by)
VALUES ('スクリプトの失敗', 'job_kind', 'script', 'failure_rate', '{"consecutive": 1}', 'warning', true, 'system'),
       ('実行漏れ', 'job_kind', 'script', 'missed_run', '{}', 'critical', true, 'system');
