package localapi

import (
	"fmt"
	"net"
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
	return p, cerr
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
