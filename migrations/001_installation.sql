-- One row naming this RedisGate deployment: every gateway and control process that shares this
-- database reports the same installation id (health checks, logs, metrics).
CREATE TABLE installation (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    singleton   boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton),
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO installation DEFAULT VALUES;
