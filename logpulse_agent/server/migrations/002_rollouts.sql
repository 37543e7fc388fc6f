-- Staged, health-gated rollouts (SPEC §11.3): the group's policy, the versions a group has had
-- (so an older one is served byte for byte), rollouts with their admitted agents, and their audit.

-- The group's rollout policy as compact JSON; NULL is {"strategy": "immediate"}.
ALTER TABLE agent_groups ADD COLUMN rollout_policy TEXT;
-- While a rollout holds agents back: the version served to every agent it has not admitted
-- (its `from`); NULL when every agent is served config_version.
ALTER TABLE agent_groups ADD COLUMN held_version INTEGER;
-- The running or paused config rollout whose admitted agents are served config_version; NULL
-- after a halt or an abort (then every agent gets held_version).
ALTER TABLE agent_groups ADD COLUMN admitting_rollout_id TEXT;

-- The health state the latest heartbeat showed ('healthy' | 'degraded' | 'failed'), as the
-- rollout machine reads it; admission records it to tell "was healthy before" (SPEC §11.3).
ALTER TABLE agent_registrations ADD COLUMN health_state TEXT;

-- The inputs of each group version, as the renderer sees them (JSON list), taken when the
-- version is created: an older version can be rendered after its inputs changed.
CREATE TABLE config_versions (
    group_id   TEXT NOT NULL REFERENCES agent_groups (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    inputs     TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (group_id, version)
);

-- Rendered bodies, written once at their first render and never changed: the bytes (and so
-- the etag) of a version stay the same across restarts and renderer or setting changes.
CREATE TABLE config_bodies (
    group_id TEXT NOT NULL REFERENCES agent_groups (id) ON DELETE CASCADE,
    version  INTEGER NOT NULL,
    platform TEXT NOT NULL,
    body     BLOB NOT NULL,
    etag     TEXT NOT NULL,
    PRIMARY KEY (group_id, version, platform)
);

CREATE TABLE rollouts (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('config', 'upgrade')),
    group_id         TEXT REFERENCES agent_groups (id) ON DELETE CASCADE,
    state            TEXT NOT NULL
                     CHECK (state IN ('running', 'paused', 'halted', 'completed', 'aborted',
                                      'replaced')),
    from_version     INTEGER,          -- config rollouts
    to_version       INTEGER,          -- config rollouts
    target_version   TEXT,             -- upgrade rollouts: the agent version
    deadline_seconds INTEGER,          -- upgrade rollouts: each action's deadline
    policy           TEXT NOT NULL,    -- {"phases", "soakSeconds", "maxFailures"}
    phase            INTEGER NOT NULL DEFAULT 0,
    phase_started_at REAL NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    reason           TEXT,
    started_by       TEXT NOT NULL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    finished_at      REAL
);
CREATE INDEX rollouts_by_group ON rollouts (group_id, created_at);
CREATE INDEX rollouts_open ON rollouts (state) WHERE state IN ('running', 'paused');

-- One row per agent a rollout admitted (upgrade rollouts also list members not yet admitted,
-- admitted_at NULL). active = 1 while the rollout is running or paused.
CREATE TABLE rollout_agents (
    rollout_id        TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    agent_id          TEXT NOT NULL REFERENCES agent_registrations (id) ON DELETE CASCADE,
    active            INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    phase             INTEGER,         -- the phase that admitted it
    admitted_at       REAL,
    live_at_admission INTEGER NOT NULL DEFAULT 0 CHECK (live_at_admission IN (0, 1)),
    heard             INTEGER NOT NULL DEFAULT 0 CHECK (heard IN (0, 1)),  -- beat since admitted
    gone              INTEGER NOT NULL DEFAULT 0 CHECK (gone IN (0, 1)),   -- revoked/moved away
    was_healthy       INTEGER NOT NULL DEFAULT 0 CHECK (was_healthy IN (0, 1)),
    action_id         TEXT,            -- upgrade rollouts
    reached_at        REAL,            -- applied `to` / upgraded
    etag_confirmed    INTEGER NOT NULL DEFAULT 0 CHECK (etag_confirmed IN (0, 1)),
    healthy_since     REAL,            -- first healthy heartbeat after reaching the target
    failed_at         REAL,
    failure           TEXT,
    PRIMARY KEY (rollout_id, agent_id)
) WITHOUT ROWID;  -- a rollout's rows lie together: its per-second tally reads one range
CREATE INDEX rollout_agents_active ON rollout_agents (agent_id) WHERE active = 1;

-- The audit trail: started, phase admitted/passed, halted, paused, resumed, aborted, replaced,
-- completed, and each failure, with who did it and why.
CREATE TABLE rollout_events (
    id         INTEGER PRIMARY KEY,
    rollout_id TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    at         REAL NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    phase      INTEGER,
    reason     TEXT
);
CREATE INDEX rollout_events_by_rollout ON rollout_events (rollout_id, id);
