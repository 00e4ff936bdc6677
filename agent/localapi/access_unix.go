//go:build unix

package localapi

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
)

// access is who may connect on unix: root and this user as RoleAdmin,
// the members of gid (-1: none), the group named group, as RoleReader.
type access struct {
	gid   int
	group string
}

// newAccess looks group up ("": none).
func newAccess(group string) (access, error) {
	if group == "" {
		return access{gid: -1}, nil
	}
	g, err := LookupGroup(group)
	if err != nil {
		return access{}, err
	}
	return access{gid: g, group: group}, nil
}

// LookupGroup returns the gid of group, a name or a number.
func LookupGroup(group string) (int, error) {
	if n, err := strconv.Atoi(group); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", group, err)
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q has gid %q, not a number", group, g.Gid)
	}
	return n, nil
}

// peer reads c's credentials (peerOf) and gives the peer its role ("":
// refused).
func (a access) peer(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("a %T is not a unix socket connection", c)
	}
	p, err := peerOf(uc)
	if err != nil {
		return Peer{}, err
	}
	p.Role = a.role(p)
	return p, nil
}

// userName returns the name of p's uid in the user database, "" when
// unknown.
func (a access) userName(p Peer) string {
	if p.UID < 0 {
		return ""
	}
	u, err := user.LookupId(strconv.Itoa(p.UID))
	if err != nil {
		return ""
	}
	return u.Username
}

// role returns the role of p, "" when refused.
func (a access) role(p Peer) string {
	if p.foreign != "" {
		return ""
	}
	if p.UID == 0 || p.UID == os.Geteuid() {
		return RoleAdmin
	}
	if p.UID < 0 {
		// The system does not tell credentials: the socket's mode and
		// group were the check.
		return RoleReader
	}
	if a.gid >= 0 {
		if p.GID == a.gid {
			return RoleReader
		}
		for _, g := range p.Groups {
			if g == a.gid {
				return RoleReader
			}
		}
	}
	return ""
}

// name names p in the answers: "uid 1000".
func (a access) name(p Peer) string { return "uid " + strconv.Itoa(p.UID) }

// refusal says why p was refused (role "").
func (a access) refusal(p Peer) string {
	if p.foreign != "" {
		return fmt.Sprintf("uid %d: %s", p.UID, p.foreign)
	}
	if a.gid < 0 {
		return fmt.Sprintf("uid %d is not root, and the agent lets no group read (agent.local_group is empty)", p.UID)
	}
	return fmt.Sprintf("uid %d is neither root nor in group %s", p.UID, a.group)
}
