// Package fsguardtest gives tests a real unprivileged user to attack with:
// when the tests run as root it creates (once) the system user mamoritest
// and runs commands as that user with setpriv, so that what a test proves
// about ownership and permissions holds for a real second account, not a
// simulation. Tests that need it are skipped, with the reason, when not
// run as root or when useradd or setpriv are missing.
package fsguardtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// UserName is the account the tests create and act as.
const UserName = "mamoritest"

// User is an unprivileged account.
type User struct {
	Name     string
	UID, GID int
}

var (
	once    sync.Once
	theUser User
	userErr error
)

// NeedRoot skips t unless the test runs as root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("%s: needs root (run the tests as root, e.g. in the CI container, to make this attack real)", why)
	}
}

// Unprivileged returns the test user, creating it with useradd if it does
// not exist yet. It skips t when not root or when the user cannot be made.
func Unprivileged(t testing.TB) User {
	t.Helper()
	NeedRoot(t, "act as an unprivileged user")
	once.Do(func() { theUser, userErr = ensureUser() })
	if userErr != nil {
		t.Skipf("cannot create the unprivileged test user %s: %v", UserName, userErr)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skipf("setpriv (util-linux) is needed to act as %s: %v", UserName, err)
	}
	return theUser
}

func ensureUser() (User, error) {
	u, err := user.Lookup(UserName)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return User{}, err
		}
		out, err := exec.Command("useradd", "-M", "-r", "-s", "/usr/sbin/nologin", UserName).CombinedOutput()
		if err != nil {
			return User{}, errors.New("useradd: " + err.Error() + ": " + string(bytes.TrimSpace(out)))
		}
		if u, err = user.Lookup(UserName); err != nil {
			return User{}, err
		}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return User{}, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return User{}, err
	}
	return User{Name: UserName, UID: uid, GID: gid}, nil
}

// Run runs the shell script as u (real and effective uid and gid, no
// supplementary groups) and fails t if it fails.
func (u User) Run(t testing.TB, script string) {
	t.Helper()
	if out, err := u.Command(script).CombinedOutput(); err != nil {
		t.Fatalf("as %s: %s: %v\n%s", u.Name, script, err, out)
	}
}

// Command returns a command that runs the shell script as u.
func (u User) Command(script string) *exec.Cmd {
	return exec.Command("setpriv", "--reuid="+strconv.Itoa(u.UID), "--regid="+strconv.Itoa(u.GID),
		"--clear-groups", "--", "/bin/sh", "-c", script)
}

// ReachableDir returns a new directory, owned by root with mode 0755,
// that other users can reach (t.TempDir's directories are 0700).
func ReachableDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Mkdir makes a directory owned by u with the given mode.
func (u User) Mkdir(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // not cut by the umask
		t.Fatal(err)
	}
	if err := os.Chown(path, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
}
