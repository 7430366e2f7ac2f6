-- The server's accounts: projects, users, devices and their tokens,
-- enrollment codes, and review flags. Survey data lives in one core store
-- per project (projects/<slug>.mpaka), never here.

CREATE TABLE IF NOT EXISTS projects (
    id         INTEGER PRIMARY KEY,
    slug       TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- project_id 0: server-wide (admins).
CREATE TABLE IF NOT EXISTS users (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    username   TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'me_officer', 'enumerator')),
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, username)
);

-- A device (or an API client, without a node id) holding a token. Only the
-- SHA-256 of the token is stored; tokens are 256 random bits.
CREATE TABLE IF NOT EXISTS devices (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    project_id   INTEGER NOT NULL,
    node_id      INTEGER,
    name         TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE,
    enrolled_at  INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_sync_at INTEGER,
    ops_received INTEGER NOT NULL DEFAULT 0,
    ops_rejected INTEGER NOT NULL DEFAULT 0,
    clock_offset_ms INTEGER   -- server minus device clock at the last sync
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_node ON devices (project_id, node_id) WHERE node_id IS NOT NULL;

-- One-time enrollment codes, stored hashed.
CREATE TABLE IF NOT EXISTS enrollments (
    code_hash  BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    issued_by  INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    device_id  INTEGER
);

-- Submissions whose merged answers break a rule of their form: kept,
-- exported with the flag, listed for review.
CREATE TABLE IF NOT EXISTS review_flags (
    project_id INTEGER NOT NULL,
    entity     TEXT    NOT NULL,
    form_id    TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    errors     TEXT    NOT NULL,  -- JSON: [{question, instance, message}]
    flagged_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, entity)
);

-- Possible duplicate traders an M&E officer judged distinct people: the
-- group's record ids, sorted and comma-separated. A group that gains a
-- record has another key and is listed again.
CREATE TABLE IF NOT EXISTS distinct_traders (
    project_id   INTEGER NOT NULL,
    traders      TEXT    NOT NULL,
    decided_by   INTEGER NOT NULL,
    decided_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, traders)
);

-- Dashboard sessions: only the SHA-256 of the cookie's 256-bit secret.
-- (users.password_hash, an argon2id PHC string, is added at open.)
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
