-- Web sessions of security staff (the login form). id_hash is the
-- SHA-256 of the cookie's session id; token_hash the staff token's hash
-- the session was opened with (replacing that token ends the session).
CREATE TABLE sessions (
	id_hash    TEXT PRIMARY KEY,
	staff      TEXT NOT NULL,
	token_hash TEXT NOT NULL,
	csrf       TEXT NOT NULL,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires);
