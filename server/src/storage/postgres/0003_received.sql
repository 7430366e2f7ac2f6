-- PostgreSQL schema version 3: when the server received each op (ms),
-- for exports' "server received time". NULL for ops received before.
ALTER TABLE ops ADD COLUMN received_ms bigint;
