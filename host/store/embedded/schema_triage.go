package embedded

// schemaTriage mirrors PostgreSQL migration 0003: discarded issues and
// what discarding dropped, and the counts the dashboards read (per issue,
// level and hour; per project, level and hour; per tag value and day),
// filled from the events already stored. Hours and days are INTEGER microseconds, like every time here.
const schemaTriage = `
ALTER TABLE issues ADD COLUMN discarded_at INTEGER;
ALTER TABLE issues ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;
CREATE INDEX issues_project_seen_idx ON issues (project_id, last_seen DESC, id DESC);
CREATE INDEX issues_project_created_idx ON issues (project_id, created_at);
CREATE INDEX issues_discarded_idx ON issues (id) WHERE discarded_at IS NOT NULL;
CREATE INDEX issues_archived_idx ON issues (id) WHERE status = 'archived';

CREATE TABLE issue_counts (
    issue_id   INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    project_id TEXT    NOT NULL,
    hour       INTEGER NOT NULL,
    level      TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (issue_id, hour, level)
) WITHOUT ROWID;
CREATE INDEX issue_counts_project_idx ON issue_counts (project_id, hour, level, issue_id, n);

CREATE TABLE event_counts (
    project_id TEXT    NOT NULL,
    hour       INTEGER NOT NULL,
    level      TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, level)
) WITHOUT ROWID;

CREATE TABLE tag_counts (
    project_id TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    value      TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (project_id, key, day, value)
) WITHOUT ROWID;

INSERT INTO issue_counts (issue_id, project_id, hour, level, n)
    SELECT issue_id, project_id, received_at - (received_at % 3600000000), level, count(*)
    FROM events GROUP BY 1, 3, 4;
INSERT INTO event_counts (project_id, hour, level, n)
    SELECT project_id, hour, level, sum(n) FROM issue_counts GROUP BY 1, 2, 3;
INSERT INTO tag_counts (project_id, key, day, value, n)
    SELECT e.project_id, substr(t.key, 1, 200), e.received_at - (e.received_at % 86400000000), substr(t.value, 1, 200), count(*)
    FROM events e, json_each(e.tags) t
    WHERE json_type(e.tags) = 'object'
    GROUP BY 1, 2, 3, 4;
`
