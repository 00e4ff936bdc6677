-- The first schema of mamori-hub on SQLite. Times are Unix nanoseconds
-- (UTC); 0 means never. Booleans are 0 or 1.
CREATE TABLE agents (
	name           TEXT PRIMARY KEY,
	token_hash     TEXT NOT NULL UNIQUE,
	created        INTEGER NOT NULL,
	revoked        INTEGER NOT NULL DEFAULT 0,
	asset_id       TEXT NOT NULL DEFAULT '',
	last_seen      INTEGER NOT NULL DEFAULT 0,
	stopped        INTEGER NOT NULL DEFAULT 0,
	chain_seq      INTEGER NOT NULL DEFAULT 0,
	chain_hash     TEXT NOT NULL DEFAULT '',
	chain_broken   INTEGER NOT NULL DEFAULT 0,
	host           TEXT NOT NULL DEFAULT '{}',
	version        TEXT NOT NULL DEFAULT '',
	queue          INTEGER NOT NULL DEFAULT 0,
	policy_version INTEGER NOT NULL DEFAULT 0,
	dropped        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE staff_tokens (
	name       TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL UNIQUE,
	created    INTEGER NOT NULL
);

-- Every event once per (agent, event_id); id is the order of storing.
CREATE TABLE events (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	agent     TEXT NOT NULL REFERENCES agents(name),
	event_id  TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	hash      TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	type      TEXT NOT NULL,
	time      INTEGER NOT NULL,
	received  INTEGER NOT NULL,
	body      TEXT NOT NULL,
	UNIQUE (agent, event_id)
);

CREATE TABLE violations (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id   TEXT NOT NULL,
	agent      TEXT NOT NULL REFERENCES agents(name),
	asset_id   TEXT NOT NULL,
	kind       TEXT NOT NULL,
	severity   TEXT NOT NULL,
	article    TEXT NOT NULL,
	device     TEXT NOT NULL,
	vendor_id  TEXT NOT NULL,
	product_id TEXT NOT NULL,
	serial     TEXT NOT NULL,
	message    TEXT NOT NULL,
	time       INTEGER NOT NULL,
	received   INTEGER NOT NULL
);
CREATE INDEX violations_agent ON violations (agent, id);
CREATE INDEX violations_kind ON violations (kind, id);
CREATE INDEX violations_time ON violations (time);

-- Which PC saw which USB device (vendor, product, serial).
CREATE TABLE devices (
	agent      TEXT NOT NULL REFERENCES agents(name),
	vendor_id  TEXT NOT NULL,
	product_id TEXT NOT NULL,
	serial     TEXT NOT NULL,
	product    TEXT NOT NULL,
	asset_id   TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	seen_count INTEGER NOT NULL,
	PRIMARY KEY (agent, vendor_id, product_id, serial)
);
CREATE INDEX devices_serial ON devices (serial);

CREATE TABLE policies (
	version    INTEGER PRIMARY KEY AUTOINCREMENT,
	changed    INTEGER NOT NULL,
	changed_by TEXT NOT NULL,
	approved   TEXT NOT NULL,
	digest     TEXT NOT NULL
);
