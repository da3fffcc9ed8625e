-- Refresh-token reuse detection (security review F12).
--
-- The refresh token a session was rotated from is accepted again only until
-- previous_refresh_until_ms, a short grace after the rotation, no longer "until the new tokens
-- are first used". Windows left open by the old rule close now.
ALTER TABLE access_tokens ADD COLUMN previous_refresh_until_ms INTEGER;
UPDATE access_tokens SET previous_refresh_hash = NULL;

-- Refresh tokens once valid for a device and since rotated away, as SHA-256 digests. Presenting
-- one after its grace revokes the device. Remembered until forget_at_ms, and deleted with the
-- device.
CREATE TABLE spent_refresh_tokens (
    token_hash   TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    device_id    TEXT    NOT NULL,
    forget_at_ms INTEGER NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX spent_refresh_tokens_by_device ON spent_refresh_tokens (user_id, device_id);
CREATE INDEX spent_refresh_tokens_by_forget_time ON spent_refresh_tokens (forget_at_ms);
