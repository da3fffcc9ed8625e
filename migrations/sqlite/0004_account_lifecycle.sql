-- What an account gains after registration: profile fields, login tokens, registration
-- tokens, accepted terms, and the operator's lock and suspension.

ALTER TABLE users ADD COLUMN locked_at_ms INTEGER;
ALTER TABLE users ADD COLUMN suspended_at_ms INTEGER;

-- One row per profile field; the value is JSON text.
CREATE TABLE profile_fields (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    field   TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, field)
);

-- Single-use m.login.token tokens, stored hashed.
CREATE TABLE login_tokens (
    token_hash    TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX login_tokens_by_expiry ON login_tokens (expires_at_ms);

-- Operator-issued registration tokens. A use is counted as completed when an account is
-- created with it; until then a UIA session holds a reservation that lapses with the session.
CREATE TABLE registration_tokens (
    token         TEXT    NOT NULL PRIMARY KEY,
    uses_allowed  INTEGER,
    completed     INTEGER NOT NULL DEFAULT 0,
    expires_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE registration_token_reservations (
    session_hash  TEXT    NOT NULL PRIMARY KEY,
    token         TEXT    NOT NULL REFERENCES registration_tokens (token) ON DELETE CASCADE,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX registration_token_reservations_by_token
    ON registration_token_reservations (token, expires_at_ms);

-- Policy versions each user accepted through m.login.terms.
CREATE TABLE accepted_terms (
    user_id        TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    policy         TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    accepted_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, policy, version)
);
