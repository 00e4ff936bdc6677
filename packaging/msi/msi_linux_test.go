package msi

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/config"
)

// needTools skips without wixl and msitools when not root (scripts/
// test-deps.sh installs them as root); as root their absence fails.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Geteuid() != 0 {
				t.Skipf("%s not found and not root: scripts/test-deps.sh (as root) installs wixl and msitools", tool)
			}
			t.Fatalf("%s not found: run scripts/test-deps.sh", tool)
		}
	}
}

// buildMSI runs scripts/msi.sh for package version ver into a new
// directory and returns the MSI's path.
func buildMSI(t *testing.T, ver string) string {
	t.Helper()
	dist := t.TempDir()
	cmd := exec.Command("../../scripts/msi.sh")
	cmd.Env = append(os.Environ(), "PKG_VERSION="+ver, "DIST="+dist)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/msi.sh: %v\n%s", err, out)
	}
	p := filepath.Join(dist, "mamori-"+ver+"-x64.msi")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("scripts/msi.sh made no %s:\n%s", p, out)
	}
	return p
}

// table is one table of an MSI as `msiinfo export` writes it: rows of
// columns by name.
func table(t *testing.T, msi, name string) []map[string]string {
	t.Helper()
	out, err := exec.Command("msiinfo", "export", msi, name).Output()
	if err != nil {
		t.Fatalf("msiinfo export %s: %v", name, err)
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("msiinfo export %s: %q", name, out)
	}
	cols := strings.Split(lines[0], "\t")
	var rows []map[string]string
	for _, l := range lines[3:] {
		f := strings.Split(l, "\t")
		row := map[string]string{}
		for i, c := range cols {
			if i < len(f) {
				row[c] = f[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// row returns the row of rows whose column key is value.
func row(t *testing.T, rows []map[string]string, key, value string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r[key] == value {
			return r
		}
	}
	t.Fatalf("no row with %s %q in %v", key, value, rows)
	return nil
}

func TestMSIVersion(t *testing.T) {
	for _, c := range []struct{ pkg, commits, want string }{
		{"1.2.3", "0", "1.2.3"},
		{"1.2.3~rc1", "0", "1.2.3"},
		{"1.2.3+git4.abc1234", "0", "1.2.3"},
		{"1.2.3+git4.abc1234.dirty", "0", "1.2.3"},
		{"1.2", "0", "1.2.0"},
		{"1.2~rc1", "0", "1.2.0"},
		{"0.0~git20260511T093000.abc1234", "417", "0.0.417"},
		{"0.0~git20260511T093000.abc1234+dirty", "417", "0.0.417"},
		{"255.255.65535", "0", "255.255.65535"},
		{"256.0.0", "0", ""},
		{"1.2.65536", "0", ""},
		{"0.0~git20260511T093000.abc1234", "70000", ""},
		{"v1.2.3", "0", ""},
		{"dev", "0", ""},
	} {
		out, err := exec.Command("../../scripts/msi.sh", "msi-version", c.pkg, c.commits).Output()
		got := strings.TrimSpace(string(out))
		if c.want == "" {
			if err == nil {
				t.Errorf("msi-version %s = %q, want a refusal", c.pkg, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("msi-version %s %s = %q, %v; want %s", c.pkg, c.commits, got, err, c.want)
		}
	}
}

// TestMSIExampleConfig: the config the MSI installs loads, and leaves
// out what differs on Windows (state dir, USB backend, local socket) so
// that the Windows defaults apply.
func TestMSIExampleConfig(t *testing.T) {
	cfg, err := config.Load("mamori.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.StateDir != config.DefaultStateDir || cfg.USB.Backend != config.DefaultUSBBackend {
		t.Errorf("state dir %q, USB backend %q: want the defaults", cfg.Agent.StateDir, cfg.USB.Backend)
	}
	b, _ := os.ReadFile("mamori.yaml")
	for _, key := range []string{"state_dir:", "backend:", "local_socket:", "local_group:", "/var/", "/run/"} {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); !strings.HasPrefix(l, "#") && strings.Contains(l, key) {
				t.Errorf("the Windows example config sets %q: %s", key, l)
			}
		}
	}
}

// TestMSITables builds the MSI and reads its tables back: the binary
// and the config under Program Files (where standard users create
// nothing; mamori.exe's default config there), the config as a
// permanent, never-overwritten component, the service (LocalSystem,
// automatic, "service run" with the config), its control (started on
// install, stopped on install and uninstall, removed on uninstall),
// restart on failure, nothing in ProgramData: the state folder is the
// agent's to make (or take back).
func TestMSITables(t *testing.T) {
	needTools(t, "wixl", "msibuild", "msiinfo", "msiextract")
	start := time.Now()
	msi := buildMSI(t, "1.2.3+git4.abc1234")
	t.Logf("built in %s", time.Since(start).Round(time.Millisecond))

	props := table(t, msi, "Property")
	if v := row(t, props, "Property", "ProductVersion")["Value"]; v != "1.2.3" {
		t.Errorf("ProductVersion %q", v)
	}
	if v := row(t, props, "Property", "UpgradeCode")["Value"]; v != "{9E174FD4-84C6-440B-8D72-36EC4A292ED6}" {
		t.Errorf("UpgradeCode %q: it must never change", v)
	}
	row(t, props, "Property", "ALLUSERS")

	dirs := table(t, msi, "Directory")
	if d := row(t, dirs, "Directory", "INSTALLDIR"); d["Directory_Parent"] != "ProgramFiles64Folder" || d["DefaultDir"] != "mamori" {
		t.Errorf("INSTALLDIR %v", d)
	}
	for _, d := range dirs {
		if d["Directory"] == "CommonAppDataFolder" || d["Directory_Parent"] == "CommonAppDataFolder" {
			t.Errorf("Directory %v: the MSI makes nothing in ProgramData (the state folder is the agent's)", d)
		}
	}

	files := table(t, msi, "File")
	if len(files) != 2 {
		t.Errorf("%d files, want mamori.exe and mamori.yaml only (the state folder is the agent's): %v", len(files), files)
	}
	exe := row(t, files, "FileName", "mamori.exe")
	conf := row(t, files, "FileName", "mamori.yaml")
	src, err := os.ReadFile("mamori.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if conf["FileSize"] != itoa(len(src)) {
		t.Errorf("mamori.yaml size %s, the example is %d bytes", conf["FileSize"], len(src))
	}

	comps := table(t, msi, "Component")
	agent := row(t, comps, "Component", exe["Component_"])
	if agent["Directory_"] != "INSTALLDIR" || agent["Attributes"] != "256" || agent["KeyPath"] != exe["File"] {
		t.Errorf("the binary's component %v: want 64-bit (256) in INSTALLDIR", agent)
	}
	cc := row(t, comps, "Component", conf["Component_"])
	// 64-bit 0x100 | Permanent 0x10 | NeverOverwrite 0x80.
	if cc["Directory_"] != "INSTALLDIR" || cc["Attributes"] != "400" || cc["KeyPath"] != conf["File"] {
		t.Errorf("the config's component %v: want 64-bit, Permanent and NeverOverwrite (400) in INSTALLDIR", cc)
	}
	if cc["ComponentId"] == "{CC68A700-C204-403F-B623-9471D3DA0CCC}" {
		t.Errorf("the config's component keeps the GUID it had in ProgramData: a component that moves needs a new one")
	}

	si := row(t, table(t, msi, "ServiceInstall"), "Name", "mamori")
	for k, want := range map[string]string{
		"ServiceType":  "16", // SERVICE_WIN32_OWN_PROCESS
		"StartType":    "2",  // SERVICE_AUTO_START
		"ErrorControl": "1",
		"StartName":    "LocalSystem",
		"Arguments":    `service run --name mamori --config "[INSTALLDIR]mamori.yaml"`,
		"Component_":   exe["Component_"],
	} {
		if si[k] != want {
			t.Errorf("ServiceInstall %s = %q, want %q", k, si[k], want)
		}
	}
	sc := row(t, table(t, msi, "ServiceControl"), "Name", "mamori")
	// msidbServiceControlEvent: Start 0x1, Stop 0x2, UninstallStop
	// 0x20, UninstallDelete 0x80.
	if sc["Event"] != "163" || sc["Wait"] != "1" || sc["Component_"] != exe["Component_"] {
		t.Errorf("ServiceControl %v: want event 163 (start on install, stop on install and uninstall, delete on uninstall), wait", sc)
	}
	fa := row(t, table(t, msi, "MsiServiceConfigFailureActions"), "Name", "mamori")
	if fa["Actions"] != "1[~]1[~]1" || fa["DelayActions"] != "5000[~]5000[~]5000" || fa["ResetPeriod"] != "86400" || fa["Event"] != "1" {
		t.Errorf("failure actions %v: want restart after 5 s, reset after a day", fa)
	}
	seq := table(t, msi, "InstallExecuteSequence")
	order := map[string]int{}
	for _, r := range seq {
		order[r["Action"]] = atoi(t, r["Sequence"])
	}
	for _, pair := range [][2]string{{"InstallFiles", "InstallServices"}, {"InstallServices", "MsiConfigureServices"},
		{"MsiConfigureServices", "StartServices"}, {"StopServices", "DeleteServices"}, {"DeleteServices", "RemoveFiles"}} {
		a, aok := order[pair[0]]
		b, bok := order[pair[1]]
		if !aok || !bok || a >= b {
			t.Errorf("InstallExecuteSequence: %s (%d) must come before %s (%d)", pair[0], a, pair[1], b)
		}
	}
	if rf := table(t, msi, "RemoveFile"); len(rf) != 0 {
		t.Errorf("RemoveFile rows %v: an uninstall must leave the state dir", rf)
	}
	if cf := table(t, msi, "CreateFolder"); slices.ContainsFunc(cf, func(r map[string]string) bool { return r["Directory_"] != "INSTALLDIR" }) {
		t.Errorf("CreateFolder %v: the MSI creates no folder but its own", cf)
	}
	for _, lock := range []string{"LockPermissions", "MsiLockPermissionsEx"} {
		if slices.Contains(tableNames(t, msi), lock) {
			t.Errorf("the MSI has a %s table: it sets no ACL (the state folder is the agent's)", lock)
		}
	}

	// The files in the cabinet: the example config as is, a Windows
	// executable.
	x := t.TempDir()
	if out, err := exec.Command("msiextract", "-C", x, msi).CombinedOutput(); err != nil {
		t.Fatalf("msiextract: %v\n%s", err, out)
	}
	var gotConf, gotExe []byte
	filepath.WalkDir(x, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
		case d.Name() == "mamori.yaml":
			gotConf, _ = os.ReadFile(p)
		case d.Name() == "mamori.exe":
			gotExe, _ = os.ReadFile(p)
		}
		return nil
	})
	if !bytes.Equal(gotConf, src) {
		t.Errorf("the MSI's mamori.yaml differs from packaging/msi/mamori.yaml")
	}
	if !bytes.HasPrefix(gotExe, []byte("MZ")) || !bytes.Contains(gotExe, []byte("1.2.3+git4.abc1234")) || itoa(len(gotExe)) != exe["FileSize"] {
		t.Errorf("the MSI's mamori.exe: %d bytes (table says %s), want a Windows executable carrying its version", len(gotExe), exe["FileSize"])
	}
	sum, err := exec.Command("msiinfo", "suminfo", msi).Output()
	if err != nil || !strings.Contains(string(sum), "Template: x64;1033") {
		t.Errorf("summary information: %v\n%s", err, sum)
	}
}

// TestMSIUnderWine builds two versions of the MSI and has Wine 8.0's
// msiexec install the first, upgrade to the second and remove it
// (TestWindowsMSI in msi_windows_test.go, through scripts/wine/test.sh).
func TestMSIUnderWine(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs Wine in a throw-away prefix on an overlay mount: root only (scripts/wine/README)")
	}
	needTools(t, "wixl", "msibuild", "wine")
	oldMSI, newMSI := buildMSI(t, "1.2.3"), buildMSI(t, "1.2.4")
	start := time.Now()
	cmd := exec.Command("../../scripts/wine/test.sh", "-count=1", "-v", "-run", "^TestWindowsMSI$", "./packaging/msi/")
	cmd.Env = append(os.Environ(), "MAMORI_WINE_QUIET=1",
		"MAMORI_MSI_OLD="+winePath(oldMSI), "MAMORI_MSI_NEW="+winePath(newMSI))
	out, err := cmd.CombinedOutput()
	t.Logf("under Wine in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("scripts/wine/test.sh: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestWindowsMSI ") {
		t.Fatalf("TestWindowsMSI did not pass under Wine")
	}
}

// tableNames lists the tables of an MSI (msiinfo tables).
func tableNames(t *testing.T, msi string) []string {
	t.Helper()
	out, err := exec.Command("msiinfo", "tables", msi).Output()
	if err != nil {
		t.Fatalf("msiinfo tables: %v", err)
	}
	return strings.Fields(string(out))
}

// winePath is a Unix path as Wine's drive Z: shows it.
func winePath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
