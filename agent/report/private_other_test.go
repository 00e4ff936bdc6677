//go:build !windows

package report

import "testing"

// privateFile does nothing here: the tests write their token files with
// mode 0600, the private file of Unix.
func privateFile(*testing.T, string) {}
