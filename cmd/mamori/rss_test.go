//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeLedger writes a CSV ledger of n approved sticks, as Excel saves it
// (UTF-8 with BOM, CRLF), with the Japanese column names.
func writeLedger(t testing.TB, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	must(t.(*testing.T), err)
	w := bufio.NewWriter(f)
	w.WriteString("\ufeff名称,ベンダーID,プロダクトID,シリアル番号,責任者,承認者,有効期間開始,有効期間終了,暗号化必須\r\n")
	for i := range n {
		fmt.Fprintf(w, "台帳 %06d 番 USB メモリ,%04x,%04x,SN%010d,委託先作業責任者 %d,情報政策課,2026-04-01,2027-03-31,○\r\n",
			i, 0x0951+i%7, 0x1666+i%13, i, i%50)
	}
	must(t.(*testing.T), w.Flush())
	must(t.(*testing.T), f.Close())
}

// TestRunRSS100k: the running agent with 100,000 approved entries from a
// ledger, measured resident after load and again after a reload (SIGHUP)
// of the same config (README, Performance). The target is 40 MB; this
// release measures about 38 MB both times (the idle agent alone is about
// 18.5 MB, 14 MB of it the binary's own pages; the entries about 20 MB),
// so the test holds it to the target. A reload used to leave the agent at
// 80 MB and more: the first config stayed referenced, and the replaced
// lists were not given back to the system until the next collection.
func TestRunRSS100k(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 100,000 entries")
	}
	f := newFixture(t)
	ledger := filepath.Join(filepath.Dir(f.config), "ledger.csv")
	writeLedger(t, ledger, 100_000)
	cfg, err := os.ReadFile(f.config)
	must(t, err)
	must(t, os.WriteFile(f.config, []byte(strings.Replace(string(cfg), "approved:\n", "approved:\n  usb_ledger: ledger.csv\n", 1)), 0o644))
	cmd, stderr := startRun(t, f)
	const limitKB = 40 * 1000
	check := func(when string) {
		t.Helper()
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		must(t, err)
		var rssKB, hwmKB int
		for line := range strings.Lines(string(b)) {
			fields := strings.Fields(line)
			if len(fields) >= 2 && fields[0] == "VmRSS:" {
				rssKB, _ = strconv.Atoi(fields[1])
			}
			if len(fields) >= 2 && fields[0] == "VmHWM:" {
				hwmKB, _ = strconv.Atoi(fields[1])
			}
		}
		t.Logf("mamori run with 100,000 ledger entries: RSS %d kB %s, peak %d kB", rssKB, when, hwmKB)
		if rssKB == 0 || rssKB > limitKB {
			// Its log only once it has ended (the builder is not safe to
			// read while the process writes to it).
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("RSS %d kB %s, want at most %d kB (the target, 40 MB)\n%s", rssKB, when, limitKB, stderr.String())
		}
	}
	check("after load")
	must(t, cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, f.state, `"type":"config_reloaded"`)
	// The agent gives the memory back right after it records the reload.
	time.Sleep(500 * time.Millisecond)
	check("after a reload")
}
