-- 0004: organisations, their members and the members' tokens; projects
-- belong to an organisation; alert rules, the alerts they fire and the log
-- of webhook deliveries.

CREATE TABLE orgs (
    id         uuid        PRIMARY KEY,
    slug       text        NOT NULL UNIQUE,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The default organisation (store.DefaultOrgID): every project that
-- existed before organisations did, and every project created without
-- one, belongs to it.
INSERT INTO orgs (id, slug, name) VALUES ('00000000-0000-4000-8000-000000000001', 'default', 'Default');

ALTER TABLE projects ADD COLUMN org_id uuid NOT NULL
    DEFAULT '00000000-0000-4000-8000-000000000001' REFERENCES orgs (id);
CREATE INDEX projects_org_idx ON projects (org_id);

-- A member is one person's membership of one organisation. Organisations
-- are never deleted, so members need no cascade from them.
CREATE TABLE members (
    id         uuid        PRIMARY KEY,
    org_id     uuid        NOT NULL REFERENCES orgs (id),
    name       text        NOT NULL,
    email      text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, email)
);

-- Personal access tokens: only a hex SHA-256 of each is stored.
CREATE TABLE member_tokens (
    id         uuid        PRIMARY KEY,
    member_id  uuid        NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    name       text        NOT NULL DEFAULT '',
    prefix     text        NOT NULL,
    hash       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX member_tokens_member_idx ON member_tokens (member_id, created_at);

-- condition and actions are the JSON of store.AlertCondition and
-- store.AlertActions; condition_type repeats condition's "type" for the
-- scheduler's index. last_period is the start (Unix seconds) of the last
-- evaluation period a node claimed the rule for: the claim is
-- UPDATE … SET last_period = $p WHERE last_period < $p, so each period
-- goes to one node. last_fired_at, with cooldown_seconds, is the same kind
-- of compare-and-set for firing.
CREATE TABLE alert_rules (
    id               uuid        PRIMARY KEY,
    project_id       uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             text        NOT NULL,
    enabled          boolean     NOT NULL DEFAULT true,
    condition_type   text        NOT NULL
                                 CHECK (condition_type IN ('new_issue', 'regression', 'threshold', 'rate_of_change')),
    condition        jsonb       NOT NULL,
    cooldown_seconds integer     NOT NULL CHECK (cooldown_seconds >= 0),
    actions          jsonb       NOT NULL,
    webhook_secret   text        NOT NULL DEFAULT '',
    last_period      bigint      NOT NULL DEFAULT 0,
    last_fired_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_project_idx ON alert_rules (project_id, created_at);
CREATE INDEX alert_rules_scheduled_idx ON alert_rules (last_period)
    WHERE enabled AND condition_type IN ('threshold', 'rate_of_change');

CREATE TABLE alerts (
    id              uuid        PRIMARY KEY,
    rule_id         uuid        NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    project_id      uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rule_name       text        NOT NULL,
    condition       text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('active', 'acknowledged', 'resolved')),
    title           text        NOT NULL,
    issue_id        bigint,
    details         jsonb,
    fired_at        timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz,
    resolved_by     text
);
CREATE INDEX alerts_project_fired_idx ON alerts (project_id, fired_at DESC, id DESC);
CREATE INDEX alerts_rule_idx ON alerts (rule_id);

-- One row per delivery attempt of an alert to a rule's webhook.
CREATE TABLE webhook_deliveries (
    id          uuid        PRIMARY KEY,
    rule_id     uuid        NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    alert_id    uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    url         text        NOT NULL,
    attempt     integer     NOT NULL,
    status_code integer     NOT NULL DEFAULT 0,
    error       text        NOT NULL DEFAULT '',
    success     boolean     NOT NULL,
    duration_ms bigint      NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_rule_idx ON webhook_deliveries (rule_id, at DESC);
CREATE INDEX webhook_deliveries_alert_idx ON webhook_deliveries (alert_id);
CREATE INDEX webhook_deliveries_at_idx ON webhook_deliveries (at);
