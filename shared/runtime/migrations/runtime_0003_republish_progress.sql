-- A republish of the retained outbox in progress: rows up to republish_through go again,
-- and those up to marked_through have been marked unsent (in chunks, each committed, so a
-- day's outbox is not one transaction and a crash halfway resumes where it stopped).
-- Both are NULL when no republish is pending (shared/runtime/republish.py).
ALTER TABLE broker_epoch
    ADD COLUMN republish_through bigint,
    ADD COLUMN marked_through    bigint;
