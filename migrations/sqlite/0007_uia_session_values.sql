-- What a UIA session remembers: each completed stage's record (named by the stage type) and the
-- values an operation keeps across requests. One row per name, written in the same transaction
-- as the stage's completion, so concurrent requests on one session never overwrite each other.
CREATE TABLE uia_session_values (
    session_hash TEXT NOT NULL REFERENCES uia_sessions (session_hash) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (session_hash, name)
);

ALTER TABLE uia_sessions DROP COLUMN data;
