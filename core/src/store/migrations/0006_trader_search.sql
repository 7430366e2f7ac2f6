-- Schema version 6: the index an enumerator finds a trader by (store/search.rs).
-- Released schemas are never edited; changes go in a new numbered file.
--
-- A full-text table over each trader's `full_name` and the digits of their
-- `phone`, with SQLite's trigram tokenizer: any three or more letters of a
-- name, accents ignored ("Josee" finds "Josée"), or any three or more
-- digits of a phone ("3456" finds "+250 788 123 456") are looked up in the
-- index. Its rowid is the trader's rowid in `entities`; triggers keep it
-- in step with every write of a trader (collection code 1, schema.rs), so
-- no write path can forget it.
CREATE VIRTUAL TABLE trader_search USING fts5(
    name,
    phone,
    tokenize = 'trigram remove_diacritics 1'
);

-- What the index holds of each trader, defined once for the triggers and
-- the backfill below.
CREATE VIEW trader_search_source AS
SELECT rowid AS entity_rowid,
       json_extract(doc, '$.full_name') AS name,
       replace(replace(replace(replace(replace(json_extract(doc, '$.phone'),
           ' ', ''), '-', ''), '+', ''), '(', ''), ')', '') AS phone
FROM entities WHERE collection = 1;

CREATE TRIGGER trader_search_insert AFTER INSERT ON entities WHEN new.collection = 1 BEGIN
    INSERT INTO trader_search (rowid, name, phone)
    SELECT entity_rowid, name, phone FROM trader_search_source WHERE entity_rowid = new.rowid;
END;

CREATE TRIGGER trader_search_update AFTER UPDATE OF doc ON entities WHEN new.collection = 1 BEGIN
    DELETE FROM trader_search WHERE rowid = old.rowid;
    INSERT INTO trader_search (rowid, name, phone)
    SELECT entity_rowid, name, phone FROM trader_search_source WHERE entity_rowid = new.rowid;
END;

CREATE TRIGGER trader_search_delete AFTER DELETE ON entities WHEN old.collection = 1 BEGIN
    DELETE FROM trader_search WHERE rowid = old.rowid;
END;

INSERT INTO trader_search (rowid, name, phone)
SELECT entity_rowid, name, phone FROM trader_search_source;
