package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

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

// checkUnixSocketPath accepts an absolute path that fits a unix socket
// address (checkLocalSocket on Unix).
func checkUnixSocketPath(s string) error {
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

// PipePrefix begins the name of every local named pipe on Windows.
const PipePrefix = `\\.\pipe\`

// MaxPipeNameLen is the most bytes agent.local_socket's pipe name (after
// PipePrefix) has here (Windows allows 256 characters in all).
const MaxPipeNameLen = 200

// checkPipeName accepts a local named pipe, \\.\pipe\NAME, NAME of
// letters, digits, '.', '_' and '-' (checkLocalSocket on Windows; the
// agent makes the pipe with FILE_FLAG_FIRST_PIPE_INSTANCE).
func checkPipeName(s string) error {
	name, ok := strings.CutPrefix(s, PipePrefix)
	if !ok {
		return fmt.Errorf("want a local named pipe %sNAME, got %q", PipePrefix, s)
	}
	if name == "" || len(name) > MaxPipeNameLen {
		return fmt.Errorf("a pipe name has 1 to %d bytes after %s, got %d", MaxPipeNameLen, PipePrefix, len(name))
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("a pipe name has letters, digits, '.', '_' and '-' only, got %q", s)
		}
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
