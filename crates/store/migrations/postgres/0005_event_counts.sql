-- Version 5: `action:` searches by the operation's own index, and events counted per minute as
-- they are stored, so that a chart of events over a month reads a few thousand rows instead of
-- counting every event. SQLite's migration 12 is the same.
-- The search compares operations with ASCII case folded (as SQLite's NOCASE does).
CREATE INDEX events_operation_time ON events (
    translate(operation, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), time
);
CREATE TABLE event_minutes (
    minute BIGINT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO event_minutes (minute, n)
    SELECT floor(time / 60000.0)::BIGINT, COUNT(*) FROM events GROUP BY 1;
