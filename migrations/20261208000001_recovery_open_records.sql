-- The recovery page lists open records (not recovered) newest first by default; most records
-- of a large user are recovered, so the list reads this index instead of skipping them.
CREATE INDEX error_records_open_at_idx ON error_records (at DESC, id DESC)
    WHERE recovery_status <> 'recovered';
