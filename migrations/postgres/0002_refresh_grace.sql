-- The refresh token a session was rotated from stays usable until the new access or refresh
-- token is first used (spec: "Refreshing access tokens"), so a client that lost the response
-- to /refresh can repeat it.
ALTER TABLE access_tokens ADD COLUMN previous_refresh_hash TEXT NULL;
CREATE UNIQUE INDEX access_tokens_previous_refresh_hash ON access_tokens (previous_refresh_hash);
