-- One batch id for all the actions one request created (a bulk upgrade from the fleet pages or
-- POST /api/v1/admin/actions), so their aggregate progress can be read back. NULL for actions
-- created before this migration.
ALTER TABLE agent_actions ADD COLUMN batch_id TEXT;
CREATE INDEX agent_actions_by_batch ON agent_actions (batch_id, status) WHERE batch_id IS NOT NULL;
