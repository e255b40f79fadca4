-- Instances (each backed by a real Redis), the operator's backend servers for the static
-- provisioner, and API keys. The gateway looks keys up by their public id (the primary key).

CREATE TABLE backend_servers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    host        text NOT NULL CHECK (length(host) BETWEEN 1 AND 255),
    port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    username    text,
    password    text,
    tls         boolean NOT NULL DEFAULT false,
    -- how many dbs the server has (its `databases` setting): instances get one each
    databases   integer NOT NULL DEFAULT 16 CHECK (databases BETWEEN 1 AND 1000000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX backend_servers_name_key ON backend_servers (lower(name));

CREATE TABLE instances (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    memory_mb        integer NOT NULL CHECK (memory_mb BETWEEN 1 AND 1048576),
    eviction_policy  text NOT NULL DEFAULT 'noeviction' CHECK (eviction_policy IN (
        'noeviction', 'allkeys-lru', 'allkeys-lfu', 'allkeys-random',
        'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl')),
    persistence      boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'provisioning'
                     CHECK (status IN ('provisioning', 'running', 'failed')),
    status_reason    text NOT NULL DEFAULT '',
    provisioner      text NOT NULL CHECK (provisioner IN ('local', 'static')),
    server_id        uuid REFERENCES backend_servers (id) ON DELETE RESTRICT,
    -- where the data lives; null until provisioned. The password is never shown to users.
    backend_host     text,
    backend_port     integer,
    backend_db       integer NOT NULL DEFAULT 0,
    backend_username text,
    backend_password text,
    backend_tls      boolean NOT NULL DEFAULT false,
    backend_shared   boolean NOT NULL DEFAULT false,
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX instances_org_name_key ON instances (org_id, lower(name));
CREATE INDEX instances_org_page_idx ON instances (org_id, created_at, id);
-- one instance per db of a static server
CREATE UNIQUE INDEX instances_server_db_key ON instances (server_id, backend_db)
    WHERE server_id IS NOT NULL;

CREATE TABLE api_keys (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z2-7]{12}$'),  -- the public id in rg_<id>_…
    instance_id   uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    org_id        uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    digest        text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),  -- SHA-256 of the token
    scopes        text NOT NULL,  -- canonical form (redisgate.scopes)
    expires_at    timestamptz,
    last_used_at  timestamptz,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX api_keys_instance_page_idx ON api_keys (instance_id, created_at, id);
-- the API-key quota counts an org's live keys
CREATE INDEX api_keys_org_live_idx ON api_keys (org_id) WHERE revoked_at IS NULL;
