package hub

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOfTheAgent checks that the hub and its command
// depend on wire alone of mamori's packages shared with the agent, besides
// the generic helpers under internal/ named in shared.
func TestImportsNothingOfTheAgent(t *testing.T) {
	// shared are helpers that know nothing of either side: safe opening
	// of root-owned files, the service manager glue, the file:line:col
	// error.
	shared := map[string]bool{"internal/fsguard": true, "internal/svc": true, "internal/fileerr": true}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/mamori-agent/mamori/hub/...", "github.com/mamori-agent/mamori/cmd/mamori-hub").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/mamori-agent/mamori/"
	for _, p := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(p, mod)
		if !ok {
			continue
		}
		if !strings.HasPrefix(rest, "hub") && rest != "wire" && rest != "cmd/mamori-hub" && !shared[rest] {
			t.Errorf("the hub depends on %s", p)
		}
	}
}
