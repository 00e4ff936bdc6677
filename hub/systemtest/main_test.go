package systemtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mamori-agent/mamori/hub/store/sqlstore/pgtest"
)

// agentBin and hubBin are the mamori and mamori-hub binaries, built once
// in TestMain.
var agentBin, hubBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mamori-systemtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	agentBin, hubBin = filepath.Join(dir, "mamori"), filepath.Join(dir, "mamori-hub")
	for bin, pkg := range map[string]string{agentBin: "../../cmd/mamori", hubBin: "../../cmd/mamori-hub"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(2)
		}
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}
