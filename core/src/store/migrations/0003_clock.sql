-- Schema version 3: time corrected by the server's clock.
-- Released schemas are never edited; changes go in a new numbered file.

-- 1 once an op was put in a request to a server (a server may hold it);
-- a local op never sent may still be re-stamped. Ops written before this
-- version count as sent.
ALTER TABLE ops ADD COLUMN sent INTEGER NOT NULL DEFAULT 1;

-- Ops this device replaced with copies stamped in server-corrected time:
-- refused for a clock too far ahead, or stamped before the device knew the
-- server's time. The replaced op is gone from `ops`; its replacement holds
-- the same fields for the same entity.
CREATE TABLE reissued (
    old_op      BLOB    PRIMARY KEY,
    old_hlc     INTEGER NOT NULL,     -- this node's stamp, packed
    new_op      BLOB    NOT NULL,
    new_hlc     INTEGER NOT NULL,     -- the copy's stamp: later bases map through it
    reason      TEXT    NOT NULL,     -- 'clock_ahead' or 'uncorrected'
    reissued_at INTEGER NOT NULL      -- local wall ms
);
CREATE INDEX reissued_by_old_hlc ON reissued (old_hlc);
