-- 0001: Mesher's schema: projects, API keys, processor modules, pipelines,
-- node-wide meta values, events (partitioned by day) and the issues they are
-- grouped into. All times are timestamptz and read back in UTC.

CREATE TABLE projects (
    id         uuid        PRIMARY KEY,
    slug       text        NOT NULL UNIQUE,
    name       text        NOT NULL,
    settings   jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Only a hex SHA-256 of each key is stored; prefix tells keys apart in lists.
CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    project_id uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       text        NOT NULL DEFAULT '',
    prefix     text        NOT NULL,
    hash       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_project_idx ON api_keys (project_id, created_at);

-- A processor's versions, identified by the SHA-256 of their bytes. The
-- current version is the one with the highest upload_seq: every upload,
-- including a re-upload of bytes already stored, takes the next value of the
-- sequence. A sequence rather than a timestamp, so that two uploads in the
-- same microsecond, or from nodes whose clocks disagree, still have an order.
CREATE SEQUENCE modules_upload_seq;
CREATE TABLE modules (
    name       text        NOT NULL,
    sha256     text        NOT NULL,
    size       integer     NOT NULL,
    manifest   jsonb       NOT NULL DEFAULT '{}',
    wasm       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), -- first upload of these bytes
    upload_seq bigint      NOT NULL DEFAULT nextval('modules_upload_seq'),
    PRIMARY KEY (name, sha256)
);
ALTER SEQUENCE modules_upload_seq OWNED BY modules.upload_seq;
CREATE INDEX modules_current_idx ON modules (name, upload_seq DESC);
CREATE INDEX modules_sha256_idx ON modules (sha256);

-- steps is the JSON array of store.Step: [{"name": …, "version": …, "config": …}].
CREATE TABLE pipelines (
    project_id uuid        PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    steps      jsonb       NOT NULL DEFAULT '[]',
    revision   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipelines_steps_idx ON pipelines USING gin (steps jsonb_path_ops);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Level order for escalation: debug < info < warning < error < fatal; an
-- unknown level ranks as error, as at ingestion.
CREATE FUNCTION mesher_level_rank(level text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE level WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warning' THEN 2
                            WHEN 'error' THEN 3 WHEN 'fatal' THEN 4 ELSE 3 END $$;

CREATE TABLE issues (
    id                  bigserial   PRIMARY KEY,
    project_id          uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    fingerprint         text        NOT NULL,
    title               text        NOT NULL,
    level               text        NOT NULL,
    status              text        NOT NULL DEFAULT 'unresolved'
                                    CHECK (status IN ('unresolved', 'resolved', 'archived')),
    count               bigint      NOT NULL DEFAULT 0,
    first_seen          timestamptz NOT NULL, -- earliest event timestamp
    last_seen           timestamptz NOT NULL, -- latest event timestamp
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Triage, filled by the application API.
    assigned_to         text,        -- a user or team
    resolved_at         timestamptz, -- set when resolved, cleared on regression
    resolved_in_release text,        -- "resolved in next release": regress only on a later release
    archived_until      timestamptz, -- archived (snoozed) until then; NULL = until resolved by hand
    regressed_at        timestamptz, -- last time an event reopened it
    UNIQUE (project_id, fingerprint)
);
CREATE INDEX issues_project_last_seen_idx ON issues (project_id, status, last_seen DESC);

-- Events are partitioned by day on received_at, not on timestamp:
-- received_at is the accepting node's clock, so every insert lands in today's
-- partition (or yesterday's, near midnight), and the partitions created ahead
-- of time always cover it. timestamp is the client's claim — events arrive
-- days late, from devices with wrong clocks, or years in the future — and
-- would need partitions for any date. Retention ages data by when it was
-- stored too, which is what a user expects of "keep 30 days": a partition
-- older than every project's retention is dropped whole, and a project with
-- a shorter one has its rows deleted from the few partitions in between.
--
-- events_default catches a row whose day has no partition yet (the partition
-- job was late, or a node's clock jumped): Commit never fails for want of a
-- partition, and an acked event is never refused. It is not a place rows
-- stay: every run of the partition job moves the rows it holds into their
-- day's new partition (see the postgres store's MaintainPartitions).
--
-- Uniqueness of (project_id, id) cannot be a constraint here: a unique index
-- of a partitioned table must include the partition key, and a resend
-- arrives with a new received_at. It lives in event_ids instead.
CREATE TABLE events (
    id          uuid        NOT NULL,
    project_id  uuid        NOT NULL,
    issue_id    bigint      NOT NULL,
    fingerprint text        NOT NULL,
    title       text        NOT NULL,
    level       text        NOT NULL,
    message     text        NOT NULL DEFAULT '',
    environment text        NOT NULL DEFAULT '',
    release     text        NOT NULL DEFAULT '',
    tags        jsonb,      -- {"key": "value"}; NULL when none
    "timestamp" timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    body        jsonb,
    flags       jsonb,
    -- Full-text search over the title (weighted higher), the message and the
    -- exception values ({"exception": {"values": [{"value": …}]}} or
    -- {"exception": [{"value": …}]}). The 'simple' configuration does not
    -- stem or drop stop words: error text is full of identifiers and
    -- English stemming would mangle them.
    search      tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, title), 'A')
        || to_tsvector('simple'::regconfig, message)
        || jsonb_to_tsvector('simple'::regconfig,
               coalesce(jsonb_path_query_array(body, '$.exception.values[*].value')
                        || jsonb_path_query_array(body, '$.exception[*].value'), '[]'),
               '["string"]')
    ) STORED
) PARTITION BY RANGE (received_at);

-- (project_id, received_at, id) serves a project's timeline and, with the
-- received_at kept in event_ids, the exact lookup of one event.
CREATE INDEX events_project_received_idx ON events (project_id, received_at, id);
CREATE INDEX events_issue_received_idx ON events (issue_id, received_at);
CREATE INDEX events_fingerprint_idx ON events (fingerprint);
CREATE INDEX events_tags_idx ON events USING gin (tags jsonb_path_ops);
CREATE INDEX events_search_idx ON events USING gin (search);

CREATE TABLE events_default PARTITION OF events DEFAULT;

-- event_ids makes Commit idempotent across partitions: one row per stored
-- event, inserted in the same transaction as the event, with ON CONFLICT DO
-- NOTHING telling a new event from a resend. received_at is the stored
-- event's, so an event is found in its partition, and retention prunes this
-- table with the partitions it drops (the BRIN index makes that range scan
-- cheap while costing next to nothing per insert: rows arrive in
-- received_at order). There is no foreign key to projects: its check would
-- cost a lookup per event; Commit learns of an unknown project from the
-- issues upsert, in the same transaction.
CREATE TABLE event_ids (
    project_id  uuid        NOT NULL,
    event_id    uuid        NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, event_id)
);
CREATE INDEX event_ids_received_idx ON event_ids USING brin (received_at);
