package wintest

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestOnlyTestsImportIt: wintest is for tests only (it imports testing
// and its helpers fail tests), so no package of the module may import it
// outside its _test.go files, for any system the binaries are built for
// or with any build tag the module uses: otherwise mamori.exe or
// mamori-hub would carry it. It asks `go list` (the go command that
// runs the test: go test puts its GOROOT/bin first on PATH) for the
// non-test imports of every package; it cannot run where Go binaries
// are not built (Windows and Wine runs of the test binary).
func TestOnlyTestsImportIt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("go list runs on the build machine; the Linux run of this test covers GOOS=windows")
	}
	const self = "github.com/mamori-agent/mamori/internal/wintest"
	for _, c := range []struct{ goos, tags string }{
		{"linux", ""}, {"linux", "libusb,e2e"}, {"windows", ""}, {"darwin", ""},
	} {
		cmd := exec.Command("go", "list", "-e", "-tags", c.tags, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GOOS="+c.goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if c.tags != "" {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("GOOS=%s go list -tags %q ./...: %v", c.goos, c.tags, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 10 {
			t.Fatalf("GOOS=%s go list -tags %q ./... listed %d packages:\n%s", c.goos, c.tags, len(lines), out)
		}
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 0 || f[0] == self {
				continue
			}
			for _, imp := range f[1:] {
				if imp == self {
					t.Errorf("GOOS=%s tags %q: %s imports %s outside its tests", c.goos, c.tags, f[0], self)
				}
			}
		}
	}
}
