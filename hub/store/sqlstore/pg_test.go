package sqlstore

import (
	"testing"

	"github.com/mamori-agent/mamori/hub/store/sqlstore/pgtest"
)

// postgresDSN is a fresh database in the test cluster (package pgtest).
func postgresDSN(t *testing.T) string { return pgtest.DSN(t) }

func stopPostgres() { pgtest.Stop() }
