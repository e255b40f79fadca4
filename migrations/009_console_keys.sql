-- Short-lived keys the control plane mints for the web console's data browser
-- (POST .../instances/{id}/console-key): marked so the keys API neither lists nor counts them
-- against max_api_keys, and deleted some time after they expire.
ALTER TABLE api_keys ADD COLUMN console boolean NOT NULL DEFAULT false;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_console_expires
    CHECK (NOT console OR expires_at IS NOT NULL);
CREATE INDEX api_keys_console_expiry_idx ON api_keys (expires_at) WHERE console;
DROP INDEX api_keys_org_live_idx;
CREATE INDEX api_keys_org_live_idx ON api_keys (org_id) WHERE revoked_at IS NULL AND NOT console;
