package embedded

// schemaTeamsAlerts is the schema step of organisations, members and their
// tokens, projects' organisations, alert rules, alerts and webhook
// deliveries; PostgreSQL's migrations/0004_teams_alerts.sql.
//
// projects.org_id has no foreign key: SQLite cannot add a column with
// REFERENCES and a non-NULL default while foreign keys are on, and
// rebuilding projects would mean rebuilding every table that refers to it.
// CreateProject checks the organisation instead; organisations are never
// deleted.
const schemaTeamsAlerts = `
CREATE TABLE orgs (
    id         TEXT    PRIMARY KEY,
    slug       TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO orgs (id, slug, name, created_at)
    VALUES ('00000000-0000-4000-8000-000000000001', 'default', 'Default', CAST(unixepoch('subsec') * 1000000 AS INTEGER));

ALTER TABLE projects ADD COLUMN org_id TEXT NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001';
CREATE INDEX projects_org_idx ON projects (org_id);

CREATE TABLE members (
    id         TEXT    PRIMARY KEY,
    org_id     TEXT    NOT NULL REFERENCES orgs (id),
    name       TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at INTEGER NOT NULL,
    UNIQUE (org_id, email)
);

CREATE TABLE member_tokens (
    id         TEXT    PRIMARY KEY,
    member_id  TEXT    NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL DEFAULT '',
    prefix     TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX member_tokens_member_idx ON member_tokens (member_id, created_at);

CREATE TABLE alert_rules (
    id               TEXT    PRIMARY KEY,
    project_id       TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    enabled          INTEGER NOT NULL,
    condition_type   TEXT    NOT NULL
                             CHECK (condition_type IN ('new_issue', 'regression', 'threshold', 'rate_of_change')),
    condition        TEXT    NOT NULL,
    cooldown_seconds INTEGER NOT NULL CHECK (cooldown_seconds >= 0),
    actions          TEXT    NOT NULL,
    webhook_secret   TEXT    NOT NULL DEFAULT '',
    last_period      INTEGER NOT NULL DEFAULT 0,
    last_fired_at    INTEGER,
    created_at       INTEGER NOT NULL
);
CREATE INDEX alert_rules_project_idx ON alert_rules (project_id, created_at);

CREATE TABLE alerts (
    id              TEXT    PRIMARY KEY,
    rule_id         TEXT    NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    project_id      TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rule_name       TEXT    NOT NULL,
    condition       TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('active', 'acknowledged', 'resolved')),
    title           TEXT    NOT NULL,
    issue_id        INTEGER,
    details         TEXT,
    fired_at        INTEGER NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    resolved_at     INTEGER,
    resolved_by     TEXT
);
CREATE INDEX alerts_project_fired_idx ON alerts (project_id, fired_at DESC, id DESC);
CREATE INDEX alerts_rule_idx ON alerts (rule_id);

CREATE TABLE webhook_deliveries (
    id          TEXT    PRIMARY KEY,
    rule_id     TEXT    NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    alert_id    TEXT    NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    url         TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT '',
    success     INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_rule_idx ON webhook_deliveries (rule_id, at DESC);
CREATE INDEX webhook_deliveries_alert_idx ON webhook_deliveries (alert_id);
CREATE INDEX webhook_deliveries_at_idx ON webhook_deliveries (at);
`
