-- PostgreSQL schema version 2: how far off each device's clock was at
-- its last sync (server minus device, ms).
ALTER TABLE devices ADD COLUMN clock_offset_ms bigint;
