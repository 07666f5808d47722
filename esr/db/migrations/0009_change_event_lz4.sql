-- change_event.changes compressed with lz4 instead of pglz (issue 4): a full file's assignment events
-- are over the 2 kB at which PostgreSQL compresses a row, and pglz cost the sink's backend ~7% of its CPU
-- (lz4 compresses about as well, several times faster). Only rows written from now on are compressed this
-- way; older ones stay as they are, and reading either gives the same values. A server built without lz4
-- keeps pglz.
DO $$
BEGIN
    ALTER TABLE esr.change_event ALTER COLUMN changes SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this server has no lz4: change_event.changes stays compressed with pglz';
END
$$;
