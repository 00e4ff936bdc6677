package localapi

import (
	"fmt"
	"strings"
)

// The named pipe's path and security descriptor on Windows, as pure
// functions (tested on every system; used by listen_windows.go and
// dial_windows.go).

// pipePrefix is what every pipe path starts with (the local machine's
// named pipe file system; a remote \\host\pipe\ is not taken).
const pipePrefix = `\\.\pipe\`

// maxPipeName is the longest NAME taken, in bytes (Windows allows 256
// characters for the whole path).
const maxPipeName = 200

// pipeReaderMask is the access mask a reader is granted in the pipe's
// DACL: FILE_GENERIC_READ (0x120089) | FILE_WRITE_DATA (0x2); see
// pipeReaderAccess.
const pipeReaderMask = 0x12008B

// checkPipePath accepts \\.\pipe\NAME with NAME of 1 to maxPipeName
// letters, digits, '.', '_' and '-' (the prefix in any case).
func checkPipePath(path string) error {
	if len(path) < len(pipePrefix) || !strings.EqualFold(path[:len(pipePrefix)], pipePrefix) {
		return fmt.Errorf(`on Windows the local API is a named pipe: want \\.\pipe\NAME (such as \\.\pipe\mamori), got %q`, path)
	}
	name := path[len(pipePrefix):]
	if name == "" || len(name) > maxPipeName {
		return fmt.Errorf("pipe %q: want a name of 1 to %d characters", path, maxPipeName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("pipe %q: a name of letters, digits, '.', '_' and '-' only", path)
		}
	}
	return nil
}

// pipeSDDL is the pipe's security descriptor in SDDL
// (learn.microsoft.com/windows/win32/secauthz/security-descriptor-string-format):
// owner and primary group owner ("SY" or "BA"); a protected DACL that
// denies NETWORK logons (NU) everything and gives SYSTEM and
// Administrators everything (GA), and the group whose SID is group
// ("S-1-5-32-545"; "" none) pipeReaderMask.
func pipeSDDL(owner, group string) string {
	s := fmt.Sprintf("O:%sG:%sD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)", owner, owner)
	if group != "" {
		s += fmt.Sprintf("(A;;0x%X;;;%s)", pipeReaderMask, group)
	}
	return s
}
