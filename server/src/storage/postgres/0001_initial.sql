-- PostgreSQL schema version 1: every project's ops, merged state,
-- conflicts and forms, shared by any number of `mpaka serve` processes.
-- Released schemas are never edited; changes go in a new numbered file.
-- The layout mirrors the device store (core/src/store/migrations), with a
-- project_id in front of every key.

-- One row per project: the last server sequence handed out. A pushing
-- transaction locks this row first (SELECT ... FOR UPDATE) and holds it to
-- its commit, so a project's sequence numbers are assigned in commit order
-- (see ARCHITECTURE.md, "The pull cursor with several server processes").
CREATE TABLE project_heads (
    project_id bigint PRIMARY KEY,
    last_seq   bigint NOT NULL
);

-- The op log. `op` is the op as a device sent it (JSON), what pulls return.
CREATE TABLE ops (
    project_id bigint NOT NULL,
    seq        bigint NOT NULL,
    op_id      uuid   NOT NULL,
    hlc        bigint NOT NULL,     -- (wall ms << 16) | counter
    node       bigint NOT NULL,
    collection bigint NOT NULL,     -- CollectionSchema::code
    entity     uuid   NOT NULL,
    op         text   NOT NULL,
    PRIMARY KEY (project_id, seq),
    UNIQUE (project_id, op_id)
);
CREATE INDEX ops_by_entity ON ops (project_id, collection, entity);

-- Merged state, in the columns EntityState::to_columns writes.
CREATE TABLE entities (
    project_id    bigint  NOT NULL,
    collection    bigint  NOT NULL,
    id            uuid    NOT NULL,
    doc           text    NOT NULL,
    stamps        bytea   NOT NULL,
    deleted       boolean NOT NULL,
    has_conflicts boolean NOT NULL,
    PRIMARY KEY (project_id, collection, id)
);

-- Pairs of concurrent writes of different values to one field.
CREATE TABLE conflicts (
    id            bigserial PRIMARY KEY,
    project_id    bigint NOT NULL,
    collection    bigint NOT NULL,
    entity        uuid   NOT NULL,
    field         text   NOT NULL,
    older_op      uuid   NOT NULL,
    older_hlc     bigint NOT NULL,
    older_node    bigint NOT NULL,
    older_value   text   NOT NULL,
    newer_op      uuid   NOT NULL,
    newer_hlc     bigint NOT NULL,
    newer_node    bigint NOT NULL,
    newer_value   text   NOT NULL,
    resolved_op   uuid,
    resolved_hlc  bigint,
    resolved_node bigint,
    UNIQUE (project_id, older_op, newer_op, field)
);
CREATE INDEX conflicts_by_field ON conflicts (project_id, collection, entity, field);

-- Compiled forms, as published.
CREATE TABLE forms (
    project_id   bigint NOT NULL,
    form_id      text   NOT NULL,
    version      text   NOT NULL,
    title        text   NOT NULL,
    definition   text   NOT NULL,   -- FormDefinition as JSON
    published_at bigint NOT NULL,   -- server wall ms
    PRIMARY KEY (project_id, form_id, version)
);

-- The accounts (server/src/accounts/schema.sql is the SQLite twin; the
-- queries in accounts/mod.rs run on both).
CREATE TABLE projects (
    id         bigserial PRIMARY KEY,
    slug       text   NOT NULL UNIQUE,
    name       text   NOT NULL,
    created_at bigint NOT NULL
);

-- project_id 0: server-wide (admins).
CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    project_id bigint NOT NULL,
    username   text   NOT NULL,
    role       text   NOT NULL CHECK (role IN ('admin', 'me_officer', 'enumerator')),
    created_at bigint NOT NULL,
    UNIQUE (project_id, username)
);

-- Only the SHA-256 of a token is stored; tokens are 256 random bits.
CREATE TABLE devices (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    project_id   bigint NOT NULL,
    node_id      bigint,
    name         text   NOT NULL,
    token_hash   bytea  NOT NULL UNIQUE,
    enrolled_at  bigint NOT NULL,
    revoked_at   bigint,
    last_sync_at bigint,
    ops_received bigint NOT NULL DEFAULT 0,
    ops_rejected bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX devices_node ON devices (project_id, node_id) WHERE node_id IS NOT NULL;

-- One-time enrollment codes, stored hashed.
CREATE TABLE enrollments (
    code_hash  bytea  PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id),
    issued_by  bigint NOT NULL,
    issued_at  bigint NOT NULL,
    expires_at bigint NOT NULL,
    used_at    bigint,
    device_id  bigint
);

-- Submissions whose merged answers break a rule of their form.
CREATE TABLE review_flags (
    project_id bigint NOT NULL,
    entity     text   NOT NULL,
    form_id    text   NOT NULL,
    version    text   NOT NULL,
    errors     text   NOT NULL,  -- JSON: [{question, instance, message}]
    flagged_at bigint NOT NULL,
    PRIMARY KEY (project_id, entity)
);
