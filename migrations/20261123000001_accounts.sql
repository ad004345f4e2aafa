-- Accounts: users, their browser sessions and API tokens. Secrets are stored only as hashes.

CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Stored lower-cased, so the unique constraint is case-insensitive.
  email TEXT NOT NULL CONSTRAINT users_email_key UNIQUE CHECK (email = lower(email) AND email <> ''),
  display_name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  disabled BOOLEAN NOT NULL DEFAULT false,
  must_change_password BOOLEAN NOT NULL DEFAULT false,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The cookie holds a random id; only its SHA-256 is stored.
CREATE TABLE sessions (
  id_hash BYTEA PRIMARY KEY,
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at TIMESTAMPTZ NOT NULL,
  client_addr TEXT NULL
);
CREATE INDEX idx_sessions_user ON sessions(user_id);
CREATE INDEX idx_sessions_expires ON sessions(expires_at);

CREATE TABLE api_tokens (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name TEXT NOT NULL CHECK (name <> ''),
  token_hash BYTEA NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE,
  -- 'jd_' and the first characters, so a person can tell tokens apart.
  prefix TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'worker')),
  -- NULL when created on the command line.
  owner_id UUID NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at TIMESTAMPTZ NULL,
  last_used_at TIMESTAMPTZ NULL,
  revoked_at TIMESTAMPTZ NULL
);
-- `jobdeck token revoke --name N` names one live token.
CREATE UNIQUE INDEX api_tokens_live_name_key ON api_tokens(name) WHERE revoked_at IS NULL;
CREATE INDEX idx_api_tokens_owner ON api_tokens(owner_id, created_at DESC);
