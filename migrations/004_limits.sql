-- Data-plane limits (docs/limits.md) on API keys and instances, and each org's defaults for
-- its instances. NULL inherits: a key's limit is its own (its instance's applies as well),
-- an instance's is the tighter of its own and its org's, and an org's NULL is the gateway's
-- default_* setting. 0 is a real limit (nothing allowed). daily_* are stored for the
-- usage accounting that will enforce them.

ALTER TABLE api_keys
    ADD COLUMN ops_per_second    integer CHECK (ops_per_second >= 0),
    ADD COLUMN burst             integer CHECK (burst >= 1),
    ADD COLUMN max_connections   integer CHECK (max_connections >= 0),
    ADD COLUMN max_request_bytes bigint  CHECK (max_request_bytes >= 0),
    ADD COLUMN daily_commands    bigint  CHECK (daily_commands >= 0),
    ADD COLUMN daily_bytes       bigint  CHECK (daily_bytes >= 0);

ALTER TABLE instances
    ADD COLUMN ops_per_second    integer CHECK (ops_per_second >= 0),
    ADD COLUMN burst             integer CHECK (burst >= 1),
    ADD COLUMN max_connections   integer CHECK (max_connections >= 0),
    ADD COLUMN max_request_bytes bigint  CHECK (max_request_bytes >= 0),
    ADD COLUMN daily_commands    bigint  CHECK (daily_commands >= 0),
    ADD COLUMN daily_bytes       bigint  CHECK (daily_bytes >= 0);

-- Every org has a quota row (created with the org); its limit defaults sit beside it.
ALTER TABLE org_quotas
    ADD COLUMN ops_per_second    integer CHECK (ops_per_second >= 0),
    ADD COLUMN burst             integer CHECK (burst >= 1),
    ADD COLUMN max_connections   integer CHECK (max_connections >= 0),
    ADD COLUMN max_request_bytes bigint  CHECK (max_request_bytes >= 0),
    ADD COLUMN daily_commands    bigint  CHECK (daily_commands >= 0),
    ADD COLUMN daily_bytes       bigint  CHECK (daily_bytes >= 0);
