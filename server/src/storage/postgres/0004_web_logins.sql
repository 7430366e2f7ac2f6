-- PostgreSQL schema version 4: dashboard logins, and the ops each device
-- reported still waiting on it at its last sync.
ALTER TABLE devices ADD COLUMN pending_ops bigint;

-- An argon2id hash (PHC string) for users who log in to the dashboard.
ALTER TABLE users ADD COLUMN password_hash text;

-- Dashboard sessions: only the SHA-256 of the cookie's 256-bit secret.
CREATE TABLE web_sessions (
    token_hash bytea  PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id),
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
);

-- Possible duplicate traders an M&E officer judged distinct people.
CREATE TABLE distinct_traders (
    project_id   bigint NOT NULL,
    traders      text   NOT NULL,
    decided_by   bigint NOT NULL,
    decided_at   bigint NOT NULL,
    PRIMARY KEY (project_id, traders)
);
