-- Third-party identifiers (email): verification sessions the homeserver runs itself,
-- addresses attached to accounts, bindings made at identity servers, and OpenID tokens that
-- identity servers use to learn who a client is.

-- One row per (client_secret, medium, address, purpose); the token is stored hashed.
CREATE TABLE threepid_validations (
    sid              TEXT    NOT NULL PRIMARY KEY,
    client_secret    TEXT    NOT NULL,
    medium           TEXT    NOT NULL,
    address          TEXT    NOT NULL,
    purpose          TEXT    NOT NULL,
    send_attempt     BIGINT NOT NULL,
    token_hash       TEXT    NOT NULL,
    next_link        TEXT,
    failed_attempts  BIGINT NOT NULL DEFAULT 0,
    created_at_ms    BIGINT NOT NULL,
    expires_at_ms    BIGINT NOT NULL,
    validated_at_ms  BIGINT
);
CREATE UNIQUE INDEX threepid_validations_by_request
    ON threepid_validations (client_secret, medium, address, purpose);
CREATE INDEX threepid_validations_by_expiry ON threepid_validations (expires_at_ms);

-- An address belongs to at most one account.
CREATE TABLE user_threepids (
    medium          TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    validated_at_ms BIGINT NOT NULL,
    added_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_by_user ON user_threepids (user_id);

-- Bindings this server made at identity servers, with the session that proves them (what
-- the identity server accepts to unbind).
CREATE TABLE threepid_bindings (
    user_id        TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    medium         TEXT NOT NULL,
    address        TEXT NOT NULL,
    id_server      TEXT NOT NULL,
    sid            TEXT NOT NULL,
    client_secret  TEXT NOT NULL,
    bound_address  TEXT NOT NULL,
    PRIMARY KEY (user_id, medium, address, id_server)
);

-- OpenID tokens (POST /user/{userId}/openid/request_token), stored hashed.
CREATE TABLE openid_tokens (
    token_hash    TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX openid_tokens_by_expiry ON openid_tokens (expires_at_ms);
