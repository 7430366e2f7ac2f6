-- Schema version 2: what a replica keeps about syncing.
-- Released schemas are never edited; changes go in a new numbered file.

-- Ops a server refused. Their `ops.pending` is 2: kept, shown to the
-- enumerator, never sent again as they are.
CREATE TABLE rejections (
    seq         INTEGER PRIMARY KEY,  -- ops.seq
    code        TEXT    NOT NULL,     -- machine-readable (sync::RejectionCode)
    reason      TEXT    NOT NULL,     -- for a person
    rejected_at INTEGER NOT NULL      -- local wall ms
);

-- Compiled form definitions: received from the server on a device,
-- published by an admin or M&E officer on the server.
CREATE TABLE forms (
    form_id      TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    definition   TEXT    NOT NULL,    -- FormDefinition as JSON
    published_at INTEGER NOT NULL,    -- server wall ms
    PRIMARY KEY (form_id, version)
) WITHOUT ROWID;
