-- SPEC §11.1 and §11.2: each agent's latest data-plane report and health, a short history of
-- its health transitions, and what the HEC-compatible ingest has counted.
-- Times are Unix seconds (REAL, UTC); JSON columns hold compact JSON text.

-- The latest heartbeat's `dataPlane` (normalised JSON, NULL when absent or null) and `health`
-- (its state is `health_state`, added by 002_rollouts; reason and since here).
ALTER TABLE agent_registrations ADD COLUMN data_plane TEXT;
ALTER TABLE agent_registrations ADD COLUMN health_reason TEXT;
ALTER TABLE agent_registrations ADD COLUMN health_since REAL;

-- Ingest totals of the agent (uncompressed event bytes), the server time of its last event, and
-- a tumbling 10 s window (start, events in it, events in the one before) for events per second.
ALTER TABLE agent_registrations ADD COLUMN ingest_events INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_registrations ADD COLUMN ingest_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_registrations ADD COLUMN ingest_last_event_at REAL;
ALTER TABLE agent_registrations ADD COLUMN ingest_window_start REAL;
ALTER TABLE agent_registrations ADD COLUMN ingest_window_events INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_registrations ADD COLUMN ingest_prev_window_events INTEGER NOT NULL DEFAULT 0;

-- One row per health transition (state change, or a new cause within the same bad state),
-- the newest 50 kept per agent.
CREATE TABLE agent_health_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id TEXT NOT NULL REFERENCES agent_registrations (id) ON DELETE CASCADE,
    at       REAL NOT NULL,
    state    TEXT NOT NULL CHECK (state IN ('healthy', 'degraded', 'failed')),
    reason   TEXT,
    since    REAL
);
CREATE INDEX agent_health_history_by_agent ON agent_health_history (agent_id, id);

-- Ingest counters per (group, agent, index, sourcetype, source), flushed in batches. No foreign
-- keys: a batch flushed after its group was deleted must not fail the whole flush.
CREATE TABLE ingest_counters (
    group_id      TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    index_name    TEXT NOT NULL,
    sourcetype    TEXT NOT NULL,
    source        TEXT NOT NULL,
    events        INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    last_event_at REAL NOT NULL,
    PRIMARY KEY (group_id, agent_id, index_name, sourcetype, source)
);
CREATE INDEX ingest_counters_by_agent ON ingest_counters (agent_id);
