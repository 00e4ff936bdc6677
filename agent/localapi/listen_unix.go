//go:build unix

package localapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mamori-agent/mamori/internal/fsguard"
)

// listen makes the socket at opts.Path with opts.Mode (zero: 0660
// with a group, 0600 without) and the group of acc: its directory made
// 0755 when missing and checked with fsguard; a stale socket of ours
// removed; the new one bound under a temporary name in the same
// directory, given its mode and group, and renamed into place, so that
// it never exists at path with other permissions. remove deletes it
// again if the file at path is still it.
func listen(opts Options, acc access) (net.Listener, func(), error) {
	path, mode, gid := opts.Path, opts.Mode, acc.gid
	if mode == 0 {
		mode = 0o600
		if gid >= 0 {
			mode = 0o660
		}
	}
	dir := filepath.Dir(path)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := fsguard.CheckDir(dir); err != nil {
		return nil, nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, nil, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, ".mamori-"+hex.EncodeToString(rnd[:]))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, func(), error) {
		ln.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("give the socket group %d: %w", gid, err))
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("chmod the socket: %w", err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("put the socket in place: %w", err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("stat the socket: %w", err))
	}
	remove := func() {
		if cur, err := os.Lstat(path); err == nil && os.SameFile(cur, fi) {
			os.Remove(path)
		}
	}
	return ln, remove, nil
}

// clearStale removes what is at path when it is a socket this user owns
// that nobody answers on (a previous agent's, after a crash). Anything
// else there is an error: another agent serving, or a file someone else
// put there.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s is %s, not a socket: remove it, or set agent.local_socket elsewhere", path, fsguard.Describe(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is a socket another user owns: remove it, or set agent.local_socket elsewhere", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another agent is serving it (a second mamori run?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: cannot tell whether it is stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}
