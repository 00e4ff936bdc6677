package config

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// procStatus returns a field of /proc/self/status in KiB.
func procStatus(key string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return -1
}

// TestLoadRSS loads 100,000 entries from YAML and from a ledger in a
// child process (the test binary run again) and checks its peak RSS
// while loading and its RSS once the config and the Policy are built.
func TestLoadRSS(t *testing.T) {
	if f := os.Getenv("MAMORI_CONFIG_RSS_FILE"); f != "" {
		cfg, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		p := NewPolicy(cfg.Approved.USB)
		peak := procStatus("VmHWM")
		runtime.GC()
		debug.FreeOSMemory()
		fmt.Printf("RSS peak=%d after=%d entries=%d\n", peak, procStatus("VmRSS"), p.Len())
		runtime.KeepAlive(cfg)
		runtime.KeepAlive(p)
		return
	}
	if testing.Short() || raceEnabled || runtime.GOOS != "linux" {
		t.Skip("100,000 entries; needs /proc and a build without -race")
	}
	const n = 100_000
	dir := writeFiles(t, map[string]string{
		"c.yaml":      string(bigConfig(n)),
		"ledger.yaml": "version: 1\napproved:\n  usb_ledger: l.csv\n",
		"l.csv":       string(bigLedger(n)),
	})
	for _, c := range []struct {
		file      string
		peakLimit int // KiB
	}{
		{"ledger.yaml", 64 << 10},
		// Measured about 90 MiB: the file's 23 MB and the 17.6 MB list
		// stay alive while the items are read, but reading them (fastRaw)
		// makes little garbage.
		{"c.yaml", 128 << 10},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadRSS$")
		cmd.Env = append(os.Environ(), "MAMORI_CONFIG_RSS_FILE="+filepath.Join(dir, c.file))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.file, err, out)
		}
		var peak, after, entries int
		i := strings.Index(string(out), "RSS ")
		if i < 0 {
			t.Fatalf("%s: %s", c.file, out)
		}
		if _, err := fmt.Sscanf(string(out[i:]), "RSS peak=%d after=%d entries=%d", &peak, &after, &entries); err != nil || entries != n {
			t.Fatalf("%s: %v: %s", c.file, err, out)
		}
		t.Logf("%s: %d entries, peak RSS %d KiB, after load %d KiB", c.file, entries, peak, after)
		if peak > c.peakLimit {
			t.Errorf("%s: peak RSS %d KiB, want at most %d KiB", c.file, peak, c.peakLimit)
		}
		if after > 40<<10 {
			t.Errorf("%s: RSS after load %d KiB, want at most %d KiB", c.file, after, 40<<10)
		}
	}
}
