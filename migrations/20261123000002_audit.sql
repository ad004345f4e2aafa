-- Who did what, written in the same transaction as the change it records.

CREATE TABLE audit_events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at TIMESTAMPTZ NOT NULL DEFAULT now(),
  actor_user_id UUID NULL REFERENCES users(id) ON DELETE SET NULL,
  actor_token_id UUID NULL REFERENCES api_tokens(id) ON DELETE SET NULL,
  -- The actor as it was named then (an email, a token's name, 'cli', 'system'); kept when
  -- the user or token is gone.
  actor TEXT NOT NULL,
  client_addr TEXT NULL,
  action TEXT NOT NULL,
  target TEXT NULL,
  details JSONB NOT NULL DEFAULT '{}',
  outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure'))
);
CREATE INDEX idx_audit_events_action ON audit_events(action, id DESC);
CREATE INDEX idx_audit_events_actor ON audit_events(actor, id DESC);
-- The login limit counts recent failures per account and per client address.
CREATE INDEX idx_audit_events_login_target ON audit_events(target, at) WHERE action = 'login';
CREATE INDEX idx_audit_events_login_addr ON audit_events(client_addr, at) WHERE action = 'login';
