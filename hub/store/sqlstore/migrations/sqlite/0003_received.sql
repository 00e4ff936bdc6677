-- Retention prunes by the hub's time of receipt: an index on it finds the
-- rows past retention wherever they are, even rows stored while the hub's
-- clock ran ahead and was set right later.
CREATE INDEX events_received ON events (received);
CREATE INDEX violations_received ON violations (received);
