package sqlstore

import (
	"database/sql"
	"strconv"
	"strings"
)

// dialect is all that differs between SQLite and PostgreSQL in the
// store's code; the rest of the SQL is shared (and the schemas are in
// migrations/<name>).
type dialect struct {
	name string
	// dollar placeholders ($1, $2, ...) instead of "?".
	dollar bool
	// lockRow ends a SELECT of the agent row inside the ingest
	// transaction. SQLite needs none: _txlock=immediate holds the
	// database's write lock for the whole transaction.
	lockRow string
	// migrationLock is run first in each migration's transaction, so that
	// hubs starting at once on one database apply a migration once.
	migrationLock string
	// oneWriter is set when the database takes one write transaction at
	// a time (SQLite): the store queues its writers itself.
	oneWriter bool
	// configure sets the pool.
	configure func(*sql.DB)
}

// sqliteDialect is modernc.org/sqlite's.
var sqliteDialect = &dialect{
	name:      "sqlite",
	oneWriter: true,
	configure: func(db *sql.DB) {
		// One writer at a time anyway; a few readers beside it.
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	},
}

// postgresDialect is PostgreSQL's, through pgx's database/sql driver.
var postgresDialect = &dialect{
	name:          "postgres",
	dollar:        true,
	lockRow:       " FOR UPDATE",
	migrationLock: "SELECT pg_advisory_xact_lock(7204171046)",
	configure: func(db *sql.DB) {
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
	},
}

// rebind turns each "?" of query into "$n" for PostgreSQL. The store's
// queries hold no "?" other than placeholders.
func (d *dialect) rebind(query string) string {
	if !d.dollar || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
