-- Accounts, devices, access tokens and User-Interactive Authentication sessions.
-- Timestamps are milliseconds since the Unix epoch.

CREATE TABLE users (
    user_id           TEXT    NOT NULL PRIMARY KEY,
    localpart         TEXT    NOT NULL UNIQUE,
    password_hash     TEXT,
    is_guest          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms     BIGINT  NOT NULL,
    deactivated_at_ms BIGINT
);

CREATE TABLE devices (
    user_id       TEXT   NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id     TEXT   NOT NULL,
    display_name  TEXT,
    created_at_ms BIGINT NOT NULL,
    last_seen_ts  BIGINT,
    last_seen_ip  TEXT,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    token_hash         TEXT   NOT NULL PRIMARY KEY,
    user_id            TEXT   NOT NULL,
    device_id          TEXT   NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    expires_at_ms      BIGINT,
    refresh_token_hash TEXT UNIQUE,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

CREATE INDEX access_tokens_by_device ON access_tokens (user_id, device_id);

CREATE TABLE uia_sessions (
    session_hash  TEXT   NOT NULL PRIMARY KEY,
    action        TEXT   NOT NULL,
    fingerprint   TEXT   NOT NULL,
    user_id       TEXT,
    data          TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

CREATE INDEX uia_sessions_by_expiry ON uia_sessions (expires_at_ms);

-- Completion order is the order of completed_seq.
CREATE TABLE uia_completed_stages (
    session_hash  TEXT   NOT NULL REFERENCES uia_sessions (session_hash) ON DELETE CASCADE,
    stage         TEXT   NOT NULL,
    completed_seq BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (session_hash, stage)
);
