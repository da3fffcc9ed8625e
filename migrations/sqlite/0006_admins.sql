-- Server administrators: may lock and suspend accounts through the admin API and look up
-- other users' sessions (whois). Granted with `vestibule user grant-admin`.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
