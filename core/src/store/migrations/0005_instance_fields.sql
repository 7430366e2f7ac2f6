-- Schema version 5: repeat instances as their own fields (core/src/answers.rs).
-- Released schemas are never edited; changes go in a new numbered file.
--
-- Nothing stored changes: whole-repeat writes of earlier releases stay as
-- they are and read as positional instances. But a server does not send a
-- device of an earlier release the ops that write instance fields or
-- derived values (it could not read them), while its cursor moves past
-- them; so a store upgraded from an earlier release pulls from the start
-- once, to receive what it was not sent. Applying an op twice is a no-op.
DELETE FROM meta WHERE key = 'sync_cursor';
