package media

import (
	"testing"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// needWine skips a test that defines drives through Wine's mount manager
// (wintest.MapDrive) on real Windows, where defining drive letters would
// change the machine.
func needWine(t *testing.T) {
	t.Helper()
	if !wintest.IsWine() {
		t.Skip("defines drive letters through Wine's mount manager: runs under Wine only (scripts/wine/test.sh)")
	}
}
