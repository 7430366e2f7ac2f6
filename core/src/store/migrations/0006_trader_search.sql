-- Schema version 6: the index an enumerator finds a trader by (store/search.rs).
-- Released schemas are never edited; changes go in a new numbered file.
--
-- A full-text table over each trader's `full_name` and the digits of their
-- `phone`, with SQLite's trigram tokenizer: any three or more letters of a
-- name, accents ignored ("Josee" finds "Josée"), or any three or more
-- digits of a phone ("3456" finds "+250 788 123 456") are looked up in the
-- index. Its rowid is the trader's rowid in `entities`.
--
-- Indexing a trader costs tens of microseconds, too much for every write
-- of a sync that pulls a registry (or for a server, which never searches
-- this way). So the store's write paths (store/batch.rs, store/clock.rs)
-- only queue a trader whose name or phone an op wrote
-- (`trader_search_stale`), and a search first indexes what is queued, in
-- one transaction (`Store::refresh_trader_search`). Not triggers: a
-- trigger on `entities`, even one that does nothing for other
-- collections, slowed every remote batch by a fifth (docs/benchmarks.md).
CREATE VIRTUAL TABLE trader_search USING fts5(
    name,
    phone,
    tokenize = 'trigram remove_diacritics 1'
);

-- Traders written since the index was last brought up to date.
CREATE TABLE trader_search_stale (entity_rowid INTEGER PRIMARY KEY);

-- What the index holds of each trader (collection code 1, schema/mod.rs).
CREATE VIEW trader_search_source AS
SELECT rowid AS entity_rowid,
       json_extract(doc, '$.full_name') AS name,
       replace(replace(replace(replace(replace(json_extract(doc, '$.phone'),
           ' ', ''), '-', ''), '+', ''), '(', ''), ')', '') AS phone
FROM entities WHERE collection = 1;

INSERT INTO trader_search_stale (entity_rowid) SELECT rowid FROM entities WHERE collection = 1;
