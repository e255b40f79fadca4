-- Usage per API key per UTC day, counted by the gateways and flushed every few seconds.
-- No foreign keys: usage outlives the keys and instances it was counted for (billing, audit).

CREATE TABLE usage_daily (
    day          date NOT NULL,
    key_id       text NOT NULL,
    instance_id  uuid NOT NULL,
    org_id       uuid NOT NULL,
    commands     bigint NOT NULL DEFAULT 0 CHECK (commands >= 0),
    bytes_in     bigint NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
    bytes_out    bigint NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
    denied       bigint NOT NULL DEFAULT 0 CHECK (denied >= 0),
    limited      bigint NOT NULL DEFAULT 0 CHECK (limited >= 0),
    PRIMARY KEY (day, key_id)
);
CREATE INDEX usage_daily_instance_idx ON usage_daily (instance_id, day);
CREATE INDEX usage_daily_org_idx ON usage_daily (org_id, day);

-- One row per applied flush: a gateway retrying a flush whose commit it did not see cannot
-- count the same batch twice.
CREATE TABLE usage_flushes (
    gateway_id  text NOT NULL,
    seq         bigint NOT NULL,
    flushed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, seq)
);
CREATE INDEX usage_flushes_time_idx ON usage_flushes (flushed_at);
