//go:build unix

package report

import (
	"fmt"
	"io/fs"
)

// superuser is who the agent reads its secrets as.
const superuser = "root"

// privateFix is the command that makes the file path readable by its
// owner alone.
func privateFix(path string) string { return "`chmod 600 " + path + "`" }

// checkSecret refuses a secret file (a token, a private key), fi its
// FileInfo, that group or others can read: anyone who reads the token
// can speak for this PC.
func checkSecret(path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return fmt.Errorf("unsafe: %s is readable by group or others (mode %04o): anyone who reads it can speak for this PC; fix: chmod 600 %s", path, perm, path)
	}
	return nil
}
