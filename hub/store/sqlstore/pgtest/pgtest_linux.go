//go:build linux

// Package pgtest starts a private PostgreSQL cluster for tests: Debian's
// postgresql in a temporary directory, listening on a unix socket there
// only, run as user postgres when the tests run as root. Each DSN call
// makes a fresh database in it. The store's tests and the hub's system
// tests and benchmarks share it; a test binary calls Stop from TestMain.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// pgCluster is a private PostgreSQL cluster the tests start: in a temp
// dir, listening only on a unix socket there, run as user postgres when
// the tests run as root (initdb refuses root).
type pgCluster struct {
	dir, bin string
	cred     *syscall.Credential
	admin    *sql.DB
	n        atomic.Int64
}

var (
	pgOnce    sync.Once
	pg        *pgCluster
	pgSkipMsg string
	pgErr     error
)

// DSN returns the DSN of a fresh database in the test cluster,
// starting the cluster at the first call. It skips the test when
// PostgreSQL is not installed (or the tests are not root and cannot run
// it), and fails instead when CI=true.
func DSN(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pg, pgSkipMsg, pgErr = startPostgres() })
	if pgErr != nil {
		t.Fatalf("postgres: %v", pgErr)
	}
	if pg == nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgres: %s (CI=true: run scripts/test-deps.sh)", pgSkipMsg)
		}
		t.Skipf("postgres: %s (scripts/test-deps.sh installs it)", pgSkipMsg)
	}
	name := fmt.Sprintf("t%d", pg.n.Add(1))
	if _, err := pg.admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return fmt.Sprintf("postgres:///%s?host=%s&user=postgres&sslmode=disable", name, pg.dir)
}

// startPostgres runs initdb and pg_ctl start; a nil cluster and a reason
// when PostgreSQL is not there.
func startPostgres() (*pgCluster, string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, "no /usr/lib/postgresql/*/bin/initdb (Debian's postgresql is not installed)", nil
	}
	slices.SortFunc(bins, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	c := &pgCluster{bin: filepath.Dir(bins[0])}
	dir, err := os.MkdirTemp("", "mamori-hub-pg-")
	if err != nil {
		return nil, "", err
	}
	c.dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "running as root and there is no user postgres to run the cluster as", nil
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, "", err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// No TCP (listen_addresses empty), the socket in dir, no fsync.
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -F -c max_connections=200", dir)
	if out, err := c.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, "", fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	c.admin, err = sql.Open("pgx", fmt.Sprintf("postgres:///postgres?host=%s&user=postgres&sslmode=disable", dir))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = c.admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		c.stop()
		return nil, "", fmt.Errorf("connect: %w", err)
	}
	return c, "", nil
}

// pgMajor is the major version in a /usr/lib/postgresql/N/bin path.
func pgMajor(p string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return n
}

// run runs one of the cluster's programs as the cluster's user.
func (c *pgCluster) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + c.dir}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// stop stops the cluster and removes its directory.
func (c *pgCluster) stop() {
	if c.admin != nil {
		c.admin.Close()
	}
	c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

// Stop stops the cluster if a test started it.
func Stop() {
	if pg != nil {
		pg.stop()
	}
}
