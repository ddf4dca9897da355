-- The first schema of the embedded store. Ids are UUID text, times are Unix milliseconds,
-- JSON documents are text.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE workflow_versions (
    id          TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    number      INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name, number)
);

CREATE TABLE events (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    key                 TEXT NOT NULL,
    payload             TEXT NOT NULL,
    additional_metadata TEXT NOT NULL,
    scope               TEXT,
    created_at          INTEGER NOT NULL
);

CREATE TABLE runs (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    workflow_version_id TEXT NOT NULL REFERENCES workflow_versions (id),
    input               TEXT NOT NULL,
    additional_metadata TEXT NOT NULL,
    event_id            TEXT,
    created_at          INTEGER NOT NULL,
    status              TEXT NOT NULL,
    finished_at         INTEGER
);

-- Recovery reads only what is unfinished.
CREATE INDEX runs_unfinished ON runs (tenant_id) WHERE finished_at IS NULL;

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    tenant_id   TEXT NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    worker_id   TEXT,
    released    INTEGER NOT NULL,
    queued_seq  INTEGER NOT NULL,
    output      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);

CREATE INDEX tasks_by_run ON tasks (run_id);

CREATE TABLE task_history (
    task_id   TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    worker_id TEXT,
    detail    TEXT
);

CREATE INDEX task_history_by_task ON task_history (task_id);

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    actions       TEXT NOT NULL,
    capacity      TEXT NOT NULL,
    paused        INTEGER NOT NULL,
    registered_at INTEGER NOT NULL
);

CREATE TABLE logs (
    task_id   TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    at        INTEGER NOT NULL,
    level     TEXT,
    message   TEXT NOT NULL
);

CREATE INDEX logs_by_task ON logs (task_id);
