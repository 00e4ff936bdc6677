-- The first schema of mamori-hub on PostgreSQL. Times are Unix nanoseconds
-- (UTC); 0 means never. Flags are BOOLEAN.
CREATE TABLE agents (
	name           TEXT PRIMARY KEY,
	token_hash     TEXT NOT NULL UNIQUE,
	created        BIGINT NOT NULL,
	revoked        BOOLEAN NOT NULL DEFAULT FALSE,
	asset_id       TEXT NOT NULL DEFAULT '',
	last_seen      BIGINT NOT NULL DEFAULT 0,
	stopped        BOOLEAN NOT NULL DEFAULT FALSE,
	chain_seq      BIGINT NOT NULL DEFAULT 0,
	chain_hash     TEXT NOT NULL DEFAULT '',
	chain_broken   BOOLEAN NOT NULL DEFAULT FALSE,
	host           TEXT NOT NULL DEFAULT '{}',
	version        TEXT NOT NULL DEFAULT '',
	queue          BIGINT NOT NULL DEFAULT 0,
	policy_version BIGINT NOT NULL DEFAULT 0,
	dropped        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE staff_tokens (
	name       TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL UNIQUE,
	created    BIGINT NOT NULL
);

-- Every event once per (agent, event_id); id is the order of storing.
CREATE TABLE events (
	id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agent     TEXT NOT NULL REFERENCES agents(name),
	event_id  TEXT NOT NULL,
	seq       BIGINT NOT NULL,
	hash      TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	type      TEXT NOT NULL,
	time      BIGINT NOT NULL,
	received  BIGINT NOT NULL,
	body      TEXT NOT NULL,
	UNIQUE (agent, event_id)
);

CREATE TABLE violations (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
	time       BIGINT NOT NULL,
	received   BIGINT NOT NULL
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
	first_seen BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL,
	seen_count BIGINT NOT NULL,
	PRIMARY KEY (agent, vendor_id, product_id, serial)
);
CREATE INDEX devices_serial ON devices (serial);

CREATE TABLE policies (
	version    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	changed    BIGINT NOT NULL,
	changed_by TEXT NOT NULL,
	approved   TEXT NOT NULL,
	digest     TEXT NOT NULL
);
