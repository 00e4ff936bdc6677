//go:build unix

package report

import (
	"fmt"
	"os"
)

// checkSecret refuses a secret file (a token, a private key) that group
// or others can read: anyone who reads the token can speak for this PC.
func checkSecret(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return fmt.Errorf("unsafe: %s is readable by group or others (mode %04o): anyone who reads it can speak for this PC; fix: chmod go-rwx %s", path, perm, path)
	}
	return nil
}
