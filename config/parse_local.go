package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// DefaultLocalGroup is agent.local_group when the file leaves it out:
// "users" (gid 100 on every Debian system, base-passwd's group for local
// users). On Debian 12 adduser does not put new users in it by default
// (ADD_EXTRA_GROUPS=0): a person at the PC outside it still gets every
// warning, through the notifier the agent starts in their session, but
// cannot run `mamori status` (adduser NAME users lets them).
const DefaultLocalGroup = "users"

// MaxLocalSocketLen is the longest agent.local_socket, in bytes: a unix
// socket address holds 108 bytes with the terminating NUL.
const MaxLocalSocketLen = 107

// groupName is what a group name may be (useradd's default
// NAME_REGEX for groups, with the Samba machine-account "$").
var groupName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}\$?$`)

// localAPI reads agent.local_socket and agent.local_group (either may be
// nil: absent). An empty value, or the key with nothing after it, turns
// the socket off or lets root only.
func (p *parser) localAPI(sock, group *yaml.Node, a *Agent) {
	if sock != nil {
		a.LocalSocket = ""
		if !isNull(sock) {
			if s, ok := p.scalar("agent.local_socket", sock); ok && s != "" {
				if err := checkLocalSocket(s); err != nil {
					p.errorf(sock, "agent.local_socket: %v", err)
				} else {
					a.LocalSocket = filepath.Clean(s)
				}
			}
		}
	}
	if group != nil {
		a.LocalGroup = ""
		if !isNull(group) {
			if s, ok := p.scalar("agent.local_group", group); ok && s != "" {
				if err := checkGroup(s); err != nil {
					p.errorf(group, "agent.local_group: %v", err)
				} else {
					a.LocalGroup = s
				}
			}
		}
	}
}

// checkLocalSocket accepts an absolute path that fits a unix socket
// address.
func checkLocalSocket(s string) error {
	if !filepath.IsAbs(s) {
		return fmt.Errorf("want an absolute path, got %q", s)
	}
	if len(s) > MaxLocalSocketLen {
		return fmt.Errorf("a socket path has at most %d bytes, got %d", MaxLocalSocketLen, len(s))
	}
	if filepath.Clean(s) != s && filepath.Clean(s)+"/" != s {
		return fmt.Errorf("want a clean path (no \"..\", \".\" or doubled \"/\"), got %q", s)
	}
	return nil
}

// checkGroup accepts a group name or a numeric gid.
func checkGroup(s string) error {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n == 0 {
			return fmt.Errorf("gid 0 is root's group: leave the key empty (\"\") to let root only")
		}
		return nil
	}
	if !groupName.MatchString(s) {
		return fmt.Errorf("want a group name (lower-case letters, digits, '_' and '-', at most 32 bytes) or a gid, got %q", s)
	}
	if s == "root" {
		return fmt.Errorf("root's group: leave the key empty (\"\") to let root only")
	}
	return nil
}
