-- Schema version 4: when this replica first held each op.
-- Released schemas are never edited; changes go in a new numbered file.

-- Local wall ms (server-corrected once known) at which the op was
-- appended here: written here, or received from elsewhere. On a server
-- this is the "server received time" exports show. NULL for ops appended
-- before this version.
ALTER TABLE ops ADD COLUMN received_ms INTEGER;
