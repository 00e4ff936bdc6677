package svc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/internal/wintest"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"mamori", "mamori-hub", "mamori_2", "a", "x.y", strings.Repeat("a", 64)} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".hidden", "a b", "a/b", "..", "a\nb", "名前", strings.Repeat("a", 65), "x;reboot"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
}

func TestCheckArg(t *testing.T) {
	for _, ok := range []string{"/etc/mamori/mamori.yaml", "--config", "run", "/opt/x-1.2/a_b+c=d@e:f,g"} {
		if err := CheckArg(ok); err != nil {
			t.Errorf("CheckArg(%q) = %v", ok, err)
		}
	}
	bad := []string{"", "a\"b", "a\x00b", "a\nb", "100%"}
	if runtime.GOOS != "windows" {
		bad = append(bad, "/etc/$(reboot)", "a`b`", "a b", "a\\b", "a'b", "a;b", "a|b", "*", "~root")
	}
	for _, s := range bad {
		if err := CheckArg(s); err == nil {
			t.Errorf("CheckArg(%q) accepted", s)
		}
	}
}

// TestSpecConfig: the config kardianos gets holds our unit and script,
// restart on failure after RestartSec on every platform, and refuses what
// could not be written into them safely.
func TestSpecConfig(t *testing.T) {
	exe := "/usr/bin/mamori"
	if runtime.GOOS == "windows" {
		exe = `C:\Program Files\mamori\mamori.exe`
	}
	sp := Spec{Name: "mamori", DisplayName: "mamori endpoint agent", Description: "watches", Executable: exe,
		Arguments: []string{"service", "run", "--config", "/etc/mamori/mamori.yaml"}, ReloadOnHUP: true}
	c, err := sp.Config()
	if err != nil {
		t.Fatal(err)
	}
	o := c.Option
	if c.Executable != exe || strings.Join(c.Arguments, " ") != "service run --config /etc/mamori/mamori.yaml" || c.UserName != "" {
		t.Errorf("config: %+v", c)
	}
	if o["Restart"] != "always" || o["ReloadSignal"] != "HUP" || o["OnFailure"] != "restart" ||
		o["OnFailureDelayDuration"] != "5s" || o["StartType"] != "automatic" || o["DelayedAutoStart"] != false {
		t.Errorf("options: %v", o)
	}
	unit, _ := o["SystemdScript"].(string)
	if !strings.Contains(unit, "RestartSec=5\n") || !strings.Contains(unit, "Restart={{Restart}}") || strings.Contains(unit, "120") {
		t.Errorf("unit template:\n%s", unit)
	}
	script, _ := o["SysvScript"].(string)
	comm := filepath.Base(exe) // mamori.exe on Windows, where no init script is written
	if !strings.Contains(script, "name=mamori\n") || !strings.Contains(script, "comm="+comm+"\n") || !strings.Contains(script, "    reload)") {
		t.Errorf("init script:\n%s", script)
	}
	sp.ReloadOnHUP = false
	c, _ = sp.Config()
	if c.Option["ReloadSignal"] != "" || strings.Contains(c.Option["SysvScript"].(string), "    reload)") {
		t.Error("without ReloadOnHUP, no reload: SIGHUP would end the program")
	}
	long := sp
	long.Executable = filepath.Join(filepath.Dir(exe), "mamori-hub-with-a-long-name")
	if c, err := long.Config(); err != nil || !strings.Contains(c.Option["SysvScript"].(string), "comm=mamori-hub-with\n") {
		t.Errorf("the process name is the kernel's 15 bytes of the base name: %v", err)
	}
	for _, bad := range []Spec{
		{Name: "a b", Executable: exe},
		{Name: "m", Executable: "mamori"},
		{Name: "m", Executable: exe, Arguments: []string{"--config", "/etc/ma\"mori"}},
		{Name: "m", Executable: exe, Description: "two\nlines"},
		{Name: "m", Executable: exe, DisplayName: "{{Path}}"},
	} {
		if _, err := bad.Config(); err == nil {
			t.Errorf("Config(%+v) accepted", bad)
		}
	}
	if runtime.GOOS != "windows" {
		if _, err := (Spec{Name: "m", Executable: "/opt/my programs/mamori"}).Config(); err == nil {
			t.Error("an executable path with a space must be refused: the init script word-splits it")
		}
	}
}

// TestCleanup: after kardianos removed a SysV init script, its rc links
// go too, and only those that point at it.
func TestCleanup(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SysV init scripts and rc links: Unix only (Wine's symlinks are not POSIX ones)")
	}
	etc := t.TempDir()
	for _, l := range RCLinks(etc, "x") {
		os.MkdirAll(filepath.Dir(l), 0o755)
		if err := os.Symlink("/etc/init.d/x", l); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(etc, "rc2.d", "S50y")
	os.Symlink("/etc/init.d/y", other)
	foreign := filepath.Join(etc, "rc3.d", "S50x2")
	os.Symlink("/etc/init.d/x", foreign) // not a name kardianos makes
	if st, ok := platformStatus(PlatformSysV, etc, "x"); !ok || st != StateNotInstalled {
		t.Errorf("no init script: %v %v, want not installed", st, ok)
	}
	cleanup(PlatformSysV, etc, "x")
	for _, l := range RCLinks(etc, "x") {
		if _, err := os.Lstat(l); err == nil {
			t.Errorf("%s left", l)
		}
	}
	for _, l := range []string{other, foreign} {
		if _, err := os.Lstat(l); err != nil {
			t.Errorf("%s removed", l)
		}
	}
	if len(RCLinks(etc, "x")) != 7 {
		t.Error("want 7 rc links")
	}
	os.MkdirAll(filepath.Join(etc, "init.d"), 0o755)
	os.WriteFile(InitScript(etc, "x"), nil, 0o755)
	if _, ok := platformStatus(PlatformSysV, etc, "x"); ok {
		t.Error("with its init script, the status is the service manager's to tell")
	}
}

// TestInstallCheck: without start-stop-daemon or service(8), a SysV
// install is refused with the package to install.
func TestInstallCheck(t *testing.T) {
	t.Setenv("PATH", wintest.TempDir(t))
	if err := platformInstallCheck(PlatformSysV); err == nil || !strings.Contains(err.Error(), "start-stop-daemon") {
		t.Errorf("SysV without start-stop-daemon: %v", err)
	}
	if err := platformInstallCheck(PlatformSystemd); err != nil {
		t.Errorf("systemd: %v", err)
	}
}

// TestInstallRefusesPackageUnit: where a package installed the unit of
// that name, install refuses rather than write a unit that would take the
// hardened one's place.
func TestInstallRefusesPackageUnit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("install checks for root first")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewControl(Spec{Name: "mamori-pkgtest", DisplayName: "t", Description: "t", Executable: exe, Arguments: []string{"service", "run"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c.PackageUnitDirs = []string{dir}
	if err := os.WriteFile(filepath.Join(dir, "mamori-pkgtest.service"), []byte("[Service]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.Service.Platform() != PlatformSystemd {
		t.Skip("only under systemd would a unit written here replace the package's")
	}
	err = c.Install()
	if !errors.Is(err, ErrInstalled) || !strings.Contains(err.Error(), "comes with the package") {
		t.Fatalf("install over a package's unit: %v", err)
	}
}

// TestLogTail: the end of a service's log as a failed start shows it:
// the last lines only, blank ones left out, long ones cut, control and
// bidirectional-format characters (an escape sequence a device name
// could carry) and invalid UTF-8 made harmless.
func TestLogTail(t *testing.T) {
	if got := logTail(nil); got != "" {
		t.Errorf("nothing: %q", got)
	}
	var b strings.Builder
	for i := 1; i <= 15; i++ {
		fmt.Fprintf(&b, "line %d\n\n", i)
	}
	got := logTail([]byte(b.String()))
	lines := strings.Split(got, "\n")
	if len(lines) != logTailLines || lines[0] != "  line 6" || lines[len(lines)-1] != "  line 15" {
		t.Errorf("last lines:\n%s", got)
	}
	got = logTail([]byte("mamori service run: state dir \x1b[2J\u202eevil\u0085 \xff\r\nend\t1\n"))
	if want := "  mamori service run: state dir ?[2J?evil? \uFFFD\n  end\t1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	long := strings.Repeat("é", logLineBytes) // 2 bytes each: cut inside one
	got = logTail([]byte(long))
	if !utf8.ValidString(got) || len(got) > logLineBytes+len("  …") || !strings.HasSuffix(got, "é…") {
		t.Errorf("long line: %d bytes %q", len(got), got)
	}
}

// TestLogSince: what a SysV service's log file got after a mark, from the
// start of a file that shrank, nothing for a file that cannot be read or
// on another platform.
func TestLogSince(t *testing.T) {
	if os.Geteuid() != 0 || runtime.GOOS != "linux" {
		t.Skip("writes /var/log/NAME.log: needs root on Linux")
	}
	name := fmt.Sprintf("mamori-logsince-test-%d", os.Getpid())
	p := LogFile(name)
	t.Cleanup(func() { os.Remove(p) })
	if got := logSince(PlatformSysV, name, 0); got != "" || logMark(PlatformSysV, name) != 0 {
		t.Errorf("no file: %q", got)
	}
	if err := os.WriteFile(p, []byte("old run: failed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mark := logMark(PlatformSysV, name)
	if mark != int64(len("old run: failed\n")) {
		t.Errorf("mark %d", mark)
	}
	if got := logSince(PlatformSysV, name, mark); got != "" {
		t.Errorf("nothing new: %q", got)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new run: refused\n")
	f.Close()
	if got := logSince(PlatformSysV, name, mark); got != "  new run: refused" {
		t.Errorf("after the mark: %q", got)
	}
	if got := logSince(PlatformSystemd, name, 0); got != "" {
		t.Errorf("systemd: %q", got)
	}
	// Rotated: shorter than the mark.
	os.WriteFile(p, []byte("x\n"), 0o600)
	if got := logSince(PlatformSysV, name, 1000); got != "  x" {
		t.Errorf("shrunk: %q", got)
	}
	// More than logTailBytes new: the first, partial line is left out.
	os.WriteFile(p, []byte(strings.Repeat("y", logTailBytes)+"\nlast\n"), 0o600)
	if got := logSince(PlatformSysV, name, 0); got != "  last" {
		t.Errorf("long: %q", got)
	}
}
