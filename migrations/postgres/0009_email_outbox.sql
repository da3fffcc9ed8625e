-- Verification emails leave through a durable outbox: requestToken stores the session and its
-- email in one transaction and answers at once; any instance drains the outbox, retrying
-- while the SMTP server is unreachable, so no email is lost on a restart.
CREATE TABLE email_outbox (
    id                 BIGSERIAL PRIMARY KEY,
    sid                TEXT    NOT NULL REFERENCES threepid_validations (sid) ON DELETE CASCADE,
    -- 'verification' (the link and code) or 'address_in_use' (a notice to the owner).
    kind               TEXT    NOT NULL,
    recipient          TEXT    NOT NULL,
    purpose            TEXT    NOT NULL,
    code               TEXT    NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    -- An instance sending this email holds it until then; afterwards another may retry it.
    claimed_until_ms   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX email_outbox_by_due ON email_outbox (next_attempt_at_ms);
CREATE UNIQUE INDEX email_outbox_by_session ON email_outbox (sid);

-- A session whose email the SMTP server refused for good: its code can never arrive.
ALTER TABLE threepid_validations ADD COLUMN delivery_failed_at_ms BIGINT NULL;
-- Whose account a session's confirmation page names (the requester of an address addition).
ALTER TABLE threepid_validations ADD COLUMN requester TEXT NULL;
