-- Version 4: the queue's default order, what needs attention first: level, then the newest
-- arrival in the store (AlertSort::Attention, ORDER BY level DESC, created DESC, id DESC).
-- SQLite's migration 11 is the same.
CREATE INDEX alerts_attention ON alerts (level, created, id);
