-- The first schema of the PostgreSQL store. Ids are uuid, times are Unix milliseconds in
-- bigint. Documents the store itself reads (workflow specs, worker actions and capacity)
-- are jsonb; payloads the engine passes through untouched (inputs, outputs, metadata)
-- are text, so they come back byte for byte.

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE tokens (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    revoked_at bigint
);

CREATE TABLE workflow_versions (
    id          uuid PRIMARY KEY,
    workflow_id uuid NOT NULL,
    tenant_id   uuid NOT NULL,
    name        text NOT NULL,
    number      bigint NOT NULL,
    spec        jsonb NOT NULL,
    created_at  bigint NOT NULL,
    -- Also the index behind "the latest version of this workflow".
    UNIQUE (tenant_id, name, number)
);

CREATE TABLE events (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL,
    key                 text NOT NULL,
    payload             text NOT NULL,
    additional_metadata text NOT NULL,
    scope               text,
    created_at          bigint NOT NULL
);

-- Runs and tasks are rewritten several times in their short lives; free space in each
-- page lets those updates stay on the page (HOT) since they change no indexed column.
CREATE TABLE runs (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL,
    workflow_version_id uuid NOT NULL REFERENCES workflow_versions (id),
    input               text NOT NULL,
    additional_metadata text NOT NULL,
    event_id            uuid,
    created_at          bigint NOT NULL,
    status              text NOT NULL,
    finished_at         bigint
) WITH (fillfactor = 80);

-- Recovery reads only what is unfinished, per tenant, oldest first.
CREATE INDEX runs_unfinished ON runs (tenant_id, created_at) WHERE finished_at IS NULL;

CREATE TABLE tasks (
    id          uuid PRIMARY KEY,
    run_id      uuid NOT NULL REFERENCES runs (id),
    tenant_id   uuid NOT NULL,
    position    bigint NOT NULL,
    name        text NOT NULL,
    status      text NOT NULL,
    attempt     bigint NOT NULL,
    worker_id   uuid,
    released    boolean NOT NULL,
    queued_seq  bigint NOT NULL,
    output      text,
    error       text,
    created_at  bigint NOT NULL,
    started_at  bigint,
    finished_at bigint
) WITH (fillfactor = 70);

CREATE INDEX tasks_by_run ON tasks (run_id, position);

-- seq keeps the order entries were committed in, which `at` alone cannot (equal times).
CREATE TABLE task_history (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id   uuid NOT NULL,
    attempt   bigint NOT NULL,
    at        bigint NOT NULL,
    kind      text NOT NULL,
    worker_id uuid,
    detail    text
);

CREATE INDEX task_history_by_task ON task_history (task_id, seq);

CREATE TABLE workers (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    name          text NOT NULL,
    actions       jsonb NOT NULL,
    capacity      jsonb NOT NULL,
    paused        boolean NOT NULL,
    registered_at bigint NOT NULL
);

CREATE INDEX workers_by_tenant ON workers (tenant_id);

CREATE TABLE logs (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id   uuid NOT NULL,
    tenant_id uuid NOT NULL,
    at        bigint NOT NULL,
    level     text,
    message   text NOT NULL
);

CREATE INDEX logs_by_task ON logs (task_id, seq);
