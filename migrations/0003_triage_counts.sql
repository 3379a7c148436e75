-- 0003: issue triage (discarding, and what discarding dropped), and the
-- counts that keep dashboards fast on large projects.

-- A discarded issue keeps its status; its new events are dropped at
-- ingestion and counted in dropped.
ALTER TABLE issues
    ADD COLUMN discarded_at timestamptz,
    ADD COLUMN dropped      bigint NOT NULL DEFAULT 0;
-- The issue list without a status filter, by last seen then id.
CREATE INDEX issues_project_seen_idx ON issues (project_id, last_seen DESC, id DESC);
-- Health: issues created today.
CREATE INDEX issues_project_created_idx ON issues (project_id, created_at);
-- The few issues ingestion drops and the spike job watches, across
-- projects.
CREATE INDEX issues_discarded_idx ON issues (id) WHERE discarded_at IS NOT NULL;
CREATE INDEX issues_archived_idx ON issues (id) WHERE status = 'archived';

-- Events received per issue, level and UTC hour, kept by Commit in the
-- transaction that stores the events (see the postgres store's
-- counts.go). The top issues, an issue's timeline and the spike job read
-- this instead of events: a project's week is a hundred thousand rows here
-- (issues × hours × levels) and millions there. Retention leaves it alone
-- (issues keep their counts too).
CREATE TABLE issue_counts (
    issue_id   bigint      NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    project_id uuid        NOT NULL,
    hour       timestamptz NOT NULL,
    level      text        NOT NULL,
    n          bigint      NOT NULL,
    PRIMARY KEY (issue_id, hour, level)
);
CREATE INDEX issue_counts_project_idx ON issue_counts (project_id, hour) INCLUDE (level, issue_id, n);

-- The same per project: the volume and level dashboards and the health's
-- events of the last 24 hours read a few rows per hour.
CREATE TABLE event_counts (
    project_id uuid        NOT NULL,
    hour       timestamptz NOT NULL,
    level      text        NOT NULL,
    n          bigint      NOT NULL,
    PRIMARY KEY (project_id, hour, level)
);

-- Events received per tag value and UTC day, for the top values of a tag.
-- Days rather than hours: a tag with a value per user would otherwise
-- hold a row for most events. No foreign key: its check would lock the
-- project row in every commit.
CREATE TABLE tag_counts (
    project_id uuid        NOT NULL,
    key        text        NOT NULL,
    day        timestamptz NOT NULL,
    value      text        NOT NULL,
    n          bigint      NOT NULL,
    PRIMARY KEY (project_id, key, day, value)
);

-- The events stored before this migration. Keys and values are cut to
-- 200 characters (store.MaxTagLength), as Commit cuts them.
INSERT INTO issue_counts (issue_id, project_id, hour, level, n)
    SELECT issue_id, project_id, date_trunc('hour', received_at, 'UTC'), level, count(*)
    FROM events GROUP BY 1, 2, 3, 4;
INSERT INTO event_counts (project_id, hour, level, n)
    SELECT project_id, hour, level, sum(n) FROM issue_counts GROUP BY 1, 2, 3;
INSERT INTO tag_counts (project_id, key, day, value, n)
    SELECT e.project_id, left(t.key, 200), date_trunc('day', e.received_at, 'UTC'), left(t.value, 200), count(*)
    FROM events e, jsonb_each_text(e.tags) t
    WHERE jsonb_typeof(e.tags) = 'object'
    GROUP BY 1, 2, 3, 4;
