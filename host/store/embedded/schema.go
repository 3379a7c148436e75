package embedded

// schema is the embedded store's schema, one entry per version: entry i
// takes a database from version i to i+1 (PRAGMA user_version). Released
// entries are never edited; a change is a new entry.
//
// It mirrors the PostgreSQL schema (package migrations) with SQLite's means:
// times are INTEGER microseconds since the Unix epoch, UTC; JSON is TEXT;
// there are no partitions (a single node's events fit one table, and
// retention deletes by received_at), so events' own UNIQUE (project_id, id)
// makes resends idempotent; full-text search is an FTS5 table.
var schema = []string{`
CREATE TABLE projects (
    id         TEXT    PRIMARY KEY,
    slug       TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    settings   TEXT    NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY,
    project_id TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL DEFAULT '',
    prefix     TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_project_idx ON api_keys (project_id, created_at);

-- The current version of a processor has the highest upload_seq; every
-- upload, a re-upload of stored bytes included, takes the next one.
CREATE TABLE modules (
    name       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    manifest   TEXT    NOT NULL DEFAULT '{}',
    wasm       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    upload_seq INTEGER NOT NULL,
    PRIMARY KEY (name, sha256)
);
CREATE INDEX modules_current_idx ON modules (name, upload_seq DESC);
CREATE INDEX modules_sha256_idx ON modules (sha256);

CREATE TABLE pipelines (
    project_id TEXT    PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    steps      TEXT    NOT NULL DEFAULT '[]',
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE issues (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
    project_id          TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    fingerprint         TEXT    NOT NULL,
    title               TEXT    NOT NULL,
    level               TEXT    NOT NULL,
    status              TEXT    NOT NULL DEFAULT 'unresolved'
                                CHECK (status IN ('unresolved', 'resolved', 'archived')),
    count               INTEGER NOT NULL DEFAULT 0,
    first_seen          INTEGER NOT NULL,
    last_seen           INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    assigned_to         TEXT,
    resolved_at         INTEGER,
    resolved_in_release TEXT,
    archived_until      INTEGER,
    regressed_at        INTEGER,
    UNIQUE (project_id, fingerprint)
);
CREATE INDEX issues_project_last_seen_idx ON issues (project_id, status, last_seen DESC);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY, -- rowid, and the rowid of events_fts
    id          TEXT    NOT NULL,
    project_id  TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    issue_id    INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    level       TEXT    NOT NULL,
    message     TEXT    NOT NULL DEFAULT '',
    environment TEXT    NOT NULL DEFAULT '',
    release     TEXT    NOT NULL DEFAULT '',
    tags        TEXT,
    timestamp   INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        TEXT,
    flags       TEXT,
    UNIQUE (project_id, id)
);
CREATE INDEX events_project_received_idx ON events (project_id, received_at);
CREATE INDEX events_issue_received_idx ON events (issue_id, received_at);

-- Title, message and exception values, as in PostgreSQL's search column;
-- Commit writes a row for each event, rowid = events.seq (the exception
-- values are read from the body in Go: SQLite's JSON functions cost more
-- than the rest of the insert). Contentless: the text lives in events;
-- contentless_delete lets retention delete rows.
CREATE VIRTUAL TABLE events_fts USING fts5 (title, message, exception, content = '', contentless_delete = 1);
CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
    DELETE FROM events_fts WHERE rowid = old.seq;
END;
`, schemaTeamsAlerts, schemaTriage}
