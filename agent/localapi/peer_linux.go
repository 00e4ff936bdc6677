package localapi

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerOf reads the peer's credentials as the kernel took them at connect
// time: SO_PEERCRED (uid, gid, pid) and SO_PEERGROUPS (supplementary
// groups, Linux 4.13 and later; none on older kernels).
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var p Peer
	var cerr error
	err = raw.Control(func(fd uintptr) {
		var uc *unix.Ucred
		uc, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if cerr != nil {
			cerr = fmt.Errorf("SO_PEERCRED: %w", cerr)
			return
		}
		p = Peer{UID: int(uc.Uid), GID: int(uc.Gid), PID: int(uc.Pid)}
		p.Groups, cerr = peerGroups(int(fd))
	})
	if err != nil {
		return Peer{}, err
	}
	p.foreign = foreignUserNS(p.PID)
	return p, cerr
}

// procRoot is where foreignUserNS reads the processes' namespaces.
var procRoot = "/proc"

// foreignUserNS says why the process pid is not to be taken at its
// credentials' word ("" when it is): one in another user namespace than
// the agent's. A user given subordinate uids (/etc/subuid: 65,536 to
// every user useradd makes on Debian) can map them into a user
// namespace, setuid to each there while keeping agent.local_group (no
// setgroups), and connect as thousands of uids: each would have its own
// connection, request and warning limits. A desktop's notifier runs in
// the session, in the agent's user namespace.
//
// The namespace is told by /proc/PID/uid_map, which shows the mapping
// of the process's user namespace as seen from the reader's
// (user_namespaces(7)) and, unlike /proc/PID/ns/user, needs no ptrace
// access (the agent's unit has no CAP_SYS_PTRACE): a process in the
// agent's namespace has the agent's map; one in a namespace below it
// maps only the uids its maker could (its own and its subordinate ones),
// never the whole range, so its map differs. A peer whose map cannot be
// read (it has gone, or another PID namespace hides it: pid 0) is
// refused too.
func foreignUserNS(pid int) string {
	self, err := os.ReadFile(procRoot + "/self/uid_map")
	if err != nil {
		// No user namespaces in this kernel: nothing to compare.
		return ""
	}
	if pid <= 0 {
		return "its process cannot be seen from the agent's PID namespace"
	}
	m, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/uid_map")
	if err != nil {
		return fmt.Sprintf("the user namespace of its process %d cannot be read (%v)", pid, err)
	}
	if !bytes.Equal(m, self) {
		return fmt.Sprintf("its process %d runs in another user namespace (uid map %q, the agent's %q): a container, not a desktop session",
			pid, strings.Join(strings.Fields(string(m)), " "), strings.Join(strings.Fields(string(self)), " "))
	}
	return ""
}

// peerGroups reads SO_PEERGROUPS: an array of 32-bit gids, its length
// asked for again when the first buffer is too small (ERANGE).
func peerGroups(fd int) ([]int, error) {
	n := 64
	for range 3 {
		buf := make([]uint32, n)
		size := uint32(4 * n)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch e {
		case 0:
			out := make([]int, 0, size/4)
			for _, g := range buf[:size/4] {
				out = append(out, int(g))
			}
			return out, nil
		case unix.ERANGE:
			n = int(size/4) + 1
			continue
		case unix.ENOPROTOOPT:
			return nil, nil // an old kernel: the primary group only
		default:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", e)
		}
	}
	return nil, fmt.Errorf("SO_PEERGROUPS: the group list kept growing")
}
