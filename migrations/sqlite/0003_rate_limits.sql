-- Rate-limit buckets shared by every instance: one GCRA "theoretical arrival time" per key.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    tat_ms BIGINT NOT NULL
);
CREATE INDEX rate_limits_tat_ms ON rate_limits (tat_ms);
