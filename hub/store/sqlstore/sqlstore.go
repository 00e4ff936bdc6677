// Package sqlstore implements store.Store over database/sql, for SQLite
// (modernc.org/sqlite, pure Go) and PostgreSQL (pgx).
//
// The SQL is written once and is the same for both dialects but for what
// dialect.go holds: placeholders ("?" or "$1"), the lock taken on an
// agent's row while its batch is stored, and the lock around migrations.
// Upserts use INSERT ... ON CONFLICT, which both speak alike. The schema
// is in numbered migrations per dialect (migrations/<dialect>/NNNN_*.sql),
// embedded, applied in order at Open.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	// The drivers: "sqlite" and "pgx".
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

//go:embed migrations
var migrations embed.FS

// Store is a store.Store on a SQL database. It is safe for concurrent
// use, by several processes on one database too.
type Store struct {
	db *sql.DB
	d  *dialect
	// wmu serialises this process's ingest and heartbeat transactions
	// when the dialect has one writer at a time (SQLite): they queue
	// here instead of in SQLite's busy handler, which sleeps whole
	// milliseconds between tries and leaves the database idle meanwhile.
	wmu sync.Mutex
	// waiting are the batches waiting for a group commit (SQLite), under
	// gmu; see Ingest.
	gmu     sync.Mutex
	waiting []*groupReq
	// insertQ caches the multi-row INSERT of events, deviceQ the upsert
	// of devices, by row count.
	insertQ sync.Map
	deviceQ sync.Map
	violQ   sync.Map
	// stmts are the prepared statements of the ingest, by query (see
	// Store.stmt); closed by Close.
	stmts sync.Map
	// stop ends the checkpointer (SQLite); done is closed when it has.
	stop chan struct{}
	done chan struct{}
}

// Open opens the database named by dsn and brings its schema up to date:
// "sqlite:///abs/path.db" (or "sqlite://rel/path.db") for SQLite, or a
// "postgres://" or "postgresql://" URL for PostgreSQL (pgx's syntax).
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		d          *dialect
		driver, ds string
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		p := strings.TrimPrefix(dsn, "sqlite://")
		if p == "" || strings.ContainsAny(p, "?#") {
			return nil, fmt.Errorf("database %q: want sqlite:///path/to/hub.db (a path without ? or #)", dsn)
		}
		if err := createPrivate(p); err != nil {
			return nil, err
		}
		d, driver, ds = sqliteDialect, "sqlite", sqliteDSN(p)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		d, driver, ds = postgresDialect, "pgx", dsn
	default:
		return nil, fmt.Errorf("database: want sqlite:///path or postgres://..., not %q", redact(dsn))
	}
	db, err := sql.Open(driver, ds)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d.name, err)
	}
	d.configure(db)
	s := &Store{db: db, d: d}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if d.oneWriter {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.checkpoint(checkpointEvery)
	}
	return s, nil
}

// checkpointEvery is how often the checkpointer copies the WAL back
// into the database file.
const checkpointEvery = 250 * time.Millisecond

// checkpoint runs SQLite's WAL checkpoints beside the writer rather than
// in it. With automatic checkpoints (the default, at 1,000 WAL pages)
// the commit that crosses the mark copies the pages and syncs the
// database file while every other batch waits for the write lock; here
// a PASSIVE checkpoint (sqlite3_wal_checkpoint_v2, which waits for no
// one) runs every period on a connection of its own, and the writer
// only appends to the WAL. A checkpoint that fails is tried again at
// the next tick: the WAL only grows meanwhile; no data is at risk.
func (s *Store) checkpoint(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// createPrivate creates the SQLite database file p, empty and readable
// by its owner only, when it does not exist: SQLite would create it with
// the process's umask (often world-readable), and it holds every record,
// the token hashes and the sessions' CSRF tokens. SQLite gives the WAL
// and shared-memory files the database file's mode. A missing directory
// is an error that says what to do.
func createPrivate(p string) error {
	dir := filepath.Dir(p)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("database directory %s does not exist: create it (mkdir -m 700 %s)", dir, dir)
		}
		return fmt.Errorf("database directory: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("database directory %s is not a directory", dir)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the database %s: %w", p, err)
	}
	return f.Close()
}

// sqliteDSN is the modernc.org/sqlite DSN of the database file at p.
//
// WAL lets readers (the staff's queries) run beside the one writer.
// synchronous is FULL, not NORMAL: in WAL mode NORMAL may lose the last
// transactions on power loss (not corrupt the file), and a batch the hub
// acknowledged is forgotten by the agent, so a lost commit would be lost
// events; FULL syncs the WAL at every commit, one fsync per batch.
// wal_autocheckpoint is 0: Store.checkpoint checkpoints beside the
// writer instead (a process that only runs a CLI command checkpoints at
// Close).
// temp_store is MEMORY: the statement journal of the multi-row INSERTs
// (the pages a statement changes, kept to undo that statement alone)
// stays in memory instead of spilling to a temporary file.
// busy_timeout makes a writer wait for another (the CLI while serve runs)
// instead of failing; _txlock=immediate takes the write lock at BEGIN, so
// two batches of one agent never interleave their reads and writes.
func sqliteDSN(p string) string {
	return "file:" + p + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(MEMORY)&_txlock=immediate"
}

// redact leaves a password out of a DSN shown in an error.
func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i >= 0 {
		return "…" + dsn[i:]
	}
	return dsn
}

// lockWrites takes the write lock of a one-writer dialect; the returned
// func releases it.
func (s *Store) lockWrites() func() {
	if !s.d.oneWriter {
		return func() {}
	}
	s.wmu.Lock()
	return s.wmu.Unlock
}

// Close stops the checkpointer, checkpoints what is left in the WAL
// (SQLite) and closes the database.
func (s *Store) Close() error {
	if s.stop != nil {
		close(s.stop)
		<-s.done
		s.stop = nil
		s.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// DB returns the database, for tests.
func (s *Store) DB() *sql.DB { return s.db }

// migrate applies the migrations of s's dialect not yet applied, each in
// its own transaction, under the dialect's migration lock.
func (s *Store) migrate(ctx context.Context) error {
	dir := path.Join("migrations", s.d.name)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	applied BIGINT NOT NULL
)`); err != nil {
		return fmt.Errorf("migrate %s database: %w", s.d.name, err)
	}
	type mig struct {
		version int
		name    string
	}
	var todo []mig
	for _, e := range entries {
		n, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return fmt.Errorf("migration %s: want NNNN_name.sql", e.Name())
		}
		todo = append(todo, mig{v, e.Name()})
	}
	slices.SortFunc(todo, func(a, b mig) int { return a.version - b.version })
	for _, m := range todo {
		data, err := migrations.ReadFile(path.Join(dir, m.name))
		if err != nil {
			return err
		}
		if err := s.apply(ctx, m.version, string(data)); err != nil {
			return fmt.Errorf("migration %s/%s: %w", s.d.name, m.name, err)
		}
	}
	return nil
}

// apply runs one migration unless it was applied already.
func (s *Store) apply(ctx context.Context, version int, script string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.migrationLock); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range splitSQL(script) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w\n%s", err, stmt)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`),
		version, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

// splitSQL splits a migration into statements: at each ";" that ends a
// line. Comment lines are dropped.
func splitSQL(script string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(script) {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}

// q rewrites a query's placeholders for s's dialect.
func (s *Store) q(query string) string { return s.d.rebind(query) }

// nanos is t as stored: Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// text makes s storable as TEXT in both dialects: PostgreSQL refuses NUL
// and invalid UTF-8, so they become U+FFFD in both.
func text(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// isNoRows reports whether err is sql.ErrNoRows.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
