-- Replicas on one database (adze-cluster): who is alive, who owns each tenant, and the
-- tables calls, answers and assignments travel through between replicas. A NOTIFY wakes
-- the reader; the rows are the truth, so a lost notification only delays.

CREATE TABLE replicas (
    id         uuid PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per tenant: the replica running its actor until `expires_at`, renewed while it
-- lives. `epoch` counts owners.
CREATE TABLE tenant_leases (
    tenant_id  uuid PRIMARY KEY,
    owner      uuid NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX tenant_leases_by_expiry ON tenant_leases (expires_at);

-- A call for a tenant's actor made on another replica; its owner takes it.
CREATE TABLE replica_calls (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    sender     uuid NOT NULL,
    call       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX replica_calls_by_tenant ON replica_calls (tenant_id, id);

CREATE TABLE replica_replies (
    call_id bigint PRIMARY KEY,
    sender  uuid NOT NULL,
    reply   text NOT NULL
);

CREATE INDEX replica_replies_by_sender ON replica_replies (sender);

-- What an owner sends down a worker's listen stream held by another replica, in id
-- order; a NULL assignment says the owner closed the stream.
CREATE TABLE replica_deliveries (
    id         bigserial PRIMARY KEY,
    replica    uuid NOT NULL,
    stream     uuid NOT NULL,
    assignment text
);

CREATE INDEX replica_deliveries_by_replica ON replica_deliveries (replica, id);
