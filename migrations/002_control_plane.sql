-- The control plane: users, their refresh sessions, organizations with role memberships, org
-- quotas and the audit log. Instances and API keys arrive in a later migration.

CREATE TABLE users (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email              text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name               text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    password_hash      text NOT NULL,
    is_platform_admin  boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique whatever their case: Alice@x.org and alice@x.org are one account.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- A session is one login (a device); its refresh tokens rotate on every use. A token used a
-- second time means it was stolen, and the whole session (the token family) is revoked.
CREATE TABLE sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    remember_me   boolean NOT NULL,
    user_agent    text NOT NULL DEFAULT '',
    client_addr   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoked_why   text CHECK (revoked_why IN ('logout', 'user', 'reuse', 'password'))
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at, id);

-- Only the SHA-256 digest of a refresh token is kept.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    personal    boolean NOT NULL DEFAULT false,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Foreign keys get an index on the referencing side, so deleting a user does not scan.
CREATE INDEX organizations_created_by_idx ON organizations (created_by);

CREATE TABLE memberships (
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
-- "Which orgs is this user in" (GET /v1/me, /v1/orgs) pages by (created_at, org_id).
CREATE INDEX memberships_user_idx ON memberships (user_id, created_at, org_id);
CREATE INDEX memberships_org_page_idx ON memberships (org_id, created_at, user_id);

-- One row per org; creating transactions lock it (SELECT ... FOR UPDATE) to check a quota.
CREATE TABLE org_quotas (
    org_id         uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    max_instances  integer NOT NULL CHECK (max_instances >= 0),
    max_memory_mb  integer NOT NULL CHECK (max_memory_mb >= 0),
    max_api_keys   integer NOT NULL CHECK (max_api_keys >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- No foreign keys on org_id and target: the record of a deletion outlives what was deleted.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       uuid,
    actor_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    text NOT NULL,
    client_addr  text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    before       jsonb,
    after        jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org_idx ON audit_log (org_id, id DESC);
CREATE INDEX audit_log_org_action_idx ON audit_log (org_id, action, id DESC);
CREATE INDEX audit_log_org_actor_idx ON audit_log (org_id, actor_id, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id);
