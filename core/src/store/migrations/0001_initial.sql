-- Schema version 1: the op log, merged entity state and conflicts.
-- Released schemas are never edited; changes go in a new numbered file.

-- Node id and the last HLC issued or observed (the clock survives restarts).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;

-- The append-only op log. `seq` is this replica's order of arrival.
CREATE TABLE ops (
    seq        INTEGER PRIMARY KEY,
    op_id      BLOB    NOT NULL UNIQUE,
    hlc        INTEGER NOT NULL,      -- (wall ms << 16) | counter
    node       INTEGER NOT NULL,
    base_hlc   INTEGER,               -- entity version the writer saw; NULL on create
    base_node  INTEGER,
    collection INTEGER NOT NULL,      -- CollectionSchema::code
    entity     BLOB    NOT NULL,
    pending    INTEGER NOT NULL       -- 1: written here, not yet acknowledged by a server
);
CREATE INDEX ops_by_entity ON ops (collection, entity);
CREATE INDEX ops_pending ON ops (seq) WHERE pending = 1;

-- What each op wrote: a JSON object, field path -> value. An op a server
-- holds (acknowledged, or received from it) whose every field is still its
-- entity's winning value is compacted: its row here is deleted, and its
-- values are those of its entity's fields stamped with its HLC. The first
-- later op on that entity puts the row back before it changes anything
-- (store/batch.rs), so no value is ever lost.
CREATE TABLE op_fields (
    seq    INTEGER PRIMARY KEY,       -- ops.seq
    fields TEXT    NOT NULL
);

-- Merged state: one row per entity. `doc` holds the winning values,
-- `stamps` the HLC of each field's winning write (see store/codec.rs).
-- `key1`/`key2` copy the fields the collection's schema lists in
-- `indexed`, in that order, so list filters use an index without SQLite
-- parsing JSON on every write.
CREATE TABLE entities (
    collection    INTEGER NOT NULL,
    id            BLOB    NOT NULL,
    doc           TEXT    NOT NULL,
    stamps        BLOB    NOT NULL,
    deleted       INTEGER NOT NULL,
    has_conflicts INTEGER NOT NULL DEFAULT 0,
    compacted     INTEGER NOT NULL DEFAULT 0,  -- 1: some op of this entity is compacted
    key1,
    key2,
    UNIQUE (collection, id)
);
CREATE INDEX entities_key1 ON entities (collection, key1) WHERE key1 IS NOT NULL;
CREATE INDEX entities_key2 ON entities (collection, key2) WHERE key2 IS NOT NULL;

-- Pairs of concurrent writes of different values to one field.
CREATE TABLE conflicts (
    id            INTEGER PRIMARY KEY,
    collection    INTEGER NOT NULL,
    entity        BLOB    NOT NULL,
    field         TEXT    NOT NULL,
    older_op      BLOB    NOT NULL,
    older_hlc     INTEGER NOT NULL,
    older_node    INTEGER NOT NULL,
    older_value   TEXT    NOT NULL,
    newer_op      BLOB    NOT NULL,
    newer_hlc     INTEGER NOT NULL,
    newer_node    INTEGER NOT NULL,
    newer_value   TEXT    NOT NULL,
    resolved_op   BLOB,
    resolved_hlc  INTEGER,
    resolved_node INTEGER,
    UNIQUE (older_op, newer_op, field)
);
CREATE INDEX conflicts_by_field ON conflicts (collection, entity, field);
CREATE INDEX conflicts_open ON conflicts (id) WHERE resolved_op IS NULL;
