-- The seed's five tables, plus server_settings for the server's own secrets (hashed).
-- Times are Unix seconds (REAL, UTC); JSON columns hold compact JSON text.
-- No column ever holds a raw token: only SHA-256 hex digests of them.

CREATE TABLE server_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE agent_groups (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    slug           TEXT NOT NULL UNIQUE,
    config_version INTEGER NOT NULL DEFAULT 1 CHECK (config_version >= 1),
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);

CREATE TABLE agent_inputs (
    id                  TEXT PRIMARY KEY,
    group_id            TEXT NOT NULL REFERENCES agent_groups (id) ON DELETE CASCADE,
    type                TEXT NOT NULL,
    name                TEXT NOT NULL,
    options             TEXT NOT NULL DEFAULT '{}',
    enabled             INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    index_override      TEXT,
    sourcetype_override TEXT,
    source_override     TEXT,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL
);
CREATE INDEX agent_inputs_by_group ON agent_inputs (group_id, created_at);

CREATE TABLE agent_enrollment_tokens (
    id         TEXT PRIMARY KEY,
    group_id   TEXT NOT NULL REFERENCES agent_groups (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label      TEXT,
    max_uses   INTEGER NOT NULL CHECK (max_uses >= 1),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    expires_at REAL NOT NULL,
    revoked_at REAL,
    created_at REAL NOT NULL
);
CREATE INDEX agent_enrollment_tokens_by_group ON agent_enrollment_tokens (group_id, created_at);

CREATE TABLE agent_registrations (
    id                     TEXT PRIMARY KEY,
    group_id               TEXT REFERENCES agent_groups (id) ON DELETE SET NULL,
    token_hash             TEXT NOT NULL UNIQUE,
    enrollment_token_id    TEXT REFERENCES agent_enrollment_tokens (id) ON DELETE SET NULL,
    hostname               TEXT NOT NULL,
    platform               TEXT NOT NULL CHECK (platform IN ('linux', 'kubernetes')),
    os                     TEXT,
    kernel                 TEXT,
    agent_version          TEXT,
    vector_version         TEXT,
    applied_config_version INTEGER NOT NULL DEFAULT 0,
    -- 1 after a group move until the new group's config has been served: heartbeats then
    -- report versions of the old group, so the applied version is held at 0.
    config_reset_pending   INTEGER NOT NULL DEFAULT 0 CHECK (config_reset_pending IN (0, 1)),
    vector_running         INTEGER CHECK (vector_running IN (0, 1)),
    vector_started_at      REAL,
    last_heartbeat_at      REAL,
    went_offline_at        REAL,
    last_config_error      TEXT,
    enrolled_at            REAL NOT NULL,
    revoked_at             REAL
);
CREATE INDEX agent_registrations_by_group ON agent_registrations (group_id);
CREATE INDEX agent_registrations_by_heartbeat ON agent_registrations (last_heartbeat_at);

CREATE TABLE agent_actions (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agent_registrations (id) ON DELETE CASCADE,
    type          TEXT NOT NULL,
    payload       TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled', 'expired')),
    result        TEXT,
    created_at    REAL NOT NULL,
    deadline_at   REAL NOT NULL,
    dispatched_at REAL,
    started_at    REAL,
    finished_at   REAL,
    updated_at    REAL NOT NULL
);
CREATE INDEX agent_actions_by_agent ON agent_actions (agent_id, status, created_at);
CREATE INDEX agent_actions_open_by_deadline ON agent_actions (deadline_at)
    WHERE status IN ('pending', 'running');
