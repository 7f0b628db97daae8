-- Version 2: what the pipeline changed lately, for resuming alert folding after a takeover or a
-- restart (backfilled events fold into alerts whose event times are long past) and for the
-- API processes' live stream. SQLite's migration 9 is the same.
CREATE INDEX alerts_updated ON alerts (updated);
CREATE INDEX incidents_updated ON incidents (updated);
