-- What the fleet pages (and the admin API beside them) need at 10,000 agents and more.

-- One batch id for all the actions one request created (a bulk upgrade from the fleet pages or
-- POST /api/v1/admin/actions), so their aggregate progress can be read back. NULL for actions
-- created before this migration.
ALTER TABLE agent_actions ADD COLUMN batch_id TEXT;
CREATE INDEX agent_actions_by_batch ON agent_actions (batch_id, status) WHERE batch_id IS NOT NULL;

-- The agents list is ordered by (hostname, enrolled_at, id) and paged with LIMIT/OFFSET: with
-- these covering indexes a page of the whole fleet or of one group is an index walk, at any
-- offset, instead of a sort of every row. Heartbeats change none of these columns.
CREATE INDEX agent_registrations_by_hostname ON agent_registrations (hostname, enrolled_at, id);
CREATE INDEX agent_registrations_by_group_hostname
    ON agent_registrations (group_id, hostname, enrolled_at, id);
