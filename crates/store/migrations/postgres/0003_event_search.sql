-- Version 3: the events search. The source address's AS and country as known when the event was
-- stored, lookups by address, account, AS and country, and the token index of words, resources and the
-- principal's names (tokens the caller computes, see `cloudsentinel_core::row`). SQLite's
-- migration 10 is the same (an FTS5 table there). Events stored before have none of these.
ALTER TABLE events ADD COLUMN asn BIGINT;
ALTER TABLE events ADD COLUMN country TEXT;
ALTER TABLE events ADD COLUMN words TEXT[];
CREATE INDEX events_ip_time ON events (source_ip, time);
CREATE INDEX events_account_time ON events (account, time);
CREATE INDEX events_asn_time ON events (asn, time) WHERE asn IS NOT NULL;
CREATE INDEX events_country_time ON events (country, time) WHERE country IS NOT NULL;
CREATE INDEX events_words ON events USING gin (words);
