package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/internal/netnstest"
	"github.com/mamori-agent/mamori/notify/notifytest"
	"github.com/mamori-agent/mamori/wire"
)

// The desktop warnings end to end, every part a process of its own: the
// agent (mamori run, in a network namespace of the test with fixture
// devices), the notifier (mamori notify, as a real unprivileged user in
// the agent's group), a private session bus (dbus-daemon, as that user)
// and a notification service on it that records what it receives.

// openDir makes a directory only root can change and everyone can enter.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mamori-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	return dir
}

// userBinary copies the mamori binary where any user can run it.
func userBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(openDir(t), "mamori")
	src, err := os.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	must(t, dst.Close())
	return bin
}

// desktopConfig: Japanese first, a contact, the socket and group given,
// the city LAN approved; the camera approved, the fingerprint reader's
// approval expired (the fixture's devices).
func desktopConfig(socket, group string) string {
	return `version: 1
agent:
  asset_id: PC-DESK
  language: ja
  rescan_interval: 1h
  contact: "情報政策課 内線 1234"
  local_socket: ` + socket + `
  local_group: ` + group + `
metrics:
  listen: ""
network:
  watch_lan: false
approved:
  networks:
    - name: City LAN
      cidr: 10.20.0.0/16
  usb:
    - name: Hubs
      classes: [hub]
    - name: Keyboards
      classes: [hid]
    - name: Camera of the work lead
      vendor_id: "04a9"
      product_id: "31c0"
      serial: "C767F1C714174C309255F70E4A7B2EE2"
    - name: Old fingerprint reader
      vendor_id: "1c7a"
      product_id: "0570"
      valid_until: 2025-03-31
`
}

// startProcess starts cmd and stops it with SIGTERM when the test ends,
// failing the test if it then exits other than with 0.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s exited: %v\n%s", name, err, out.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGTERM:\n%s", name, out.String())
		}
	})
	return &out
}

func waitFile(t *testing.T, path string, what func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Lstat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared:\n%s", path, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// asUser runs the mamori binary bin as u and returns its output and exit
// code.
func asUser(t *testing.T, bin string, cred *syscall.Credential, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return string(out), code
}

// TestDesktopWarningsEndToEnd: violations open before the notifier
// connected (unapproved storage, an unapproved device, an expired
// approval) and one that happens while it watches (an unapproved
// network) reach the desktop's notification service, from the user's
// notifier, in Japanese first with English below; each is recorded as
// shown; mamori status answers root and the group, and refuses others.
func TestDesktopWarningsEndToEnd(t *testing.T) {
	notifytest.RequireDaemon(t)
	netnstest.Require(t)
	group, _ := notifytest.NewGroup(t, "mamori-w")
	u := notifytest.NewUser(t, "mamori-n", group)
	other := notifytest.NewUser(t, "mamori-o")
	f := newFixture(t)
	sock := filepath.Join(openDir(t), "agent.sock")
	must(t, os.WriteFile(f.config, []byte(desktopConfig(sock, group)), 0o644))

	// The PC's network: an interface that will get an address on no
	// approved network.
	ns := netnstest.New(t, "mamori-nt")
	ns.IP("link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ns.IP("link", "set", "d1", "up")
	ns.IP("link", "set", "d0", "up")
	agentOut := startProcess(t, "mamori run", exec.Command("ip", append([]string{"netns", "exec", ns.Name(), binary}, append(f.args("run"), "--state-dir", f.state)...)...))
	waitFile(t, sock, agentOut.String)

	// The user's session: its runtime directory and bus, the desktop's
	// notification service, and the notifier.
	rt := filepath.Join(openDir(t), strconv.Itoa(u.UID))
	must(t, os.Mkdir(rt, 0o700))
	must(t, os.Chown(rt, u.UID, u.GID))
	bus := notifytest.StartBus(t, notifytest.BusOptions{Socket: filepath.Join(rt, "bus"), UID: u.UID, GID: u.GID})
	srv := notifytest.Serve(t, bus.Address, "body", "body-markup", "persistence")
	bin := userBinary(t)
	notifier := exec.Command(bin, "notify", "--socket", sock)
	notifier.Dir = "/"
	notifier.Env = []string{"PATH=/usr/bin:/bin", "HOME=/", "DBUS_SESSION_BUS_ADDRESS=" + bus.Address}
	notifier.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential(t)}
	notifierOut := startProcess(t, "mamori notify", notifier)

	srv.Wait(t, "the three USB warnings", 30*time.Second, func(rs []notifytest.Received) bool { return len(rs) >= 3 })
	// While it watches: the network.
	ns.IP("addr", "add", "192.168.77.5/24", "dev", "d0")
	got := srv.Wait(t, "the network warning", 30*time.Second, func(rs []notifytest.Received) bool { return len(rs) >= 4 })
	if len(got) != 4 {
		t.Fatalf("%d notifications:\n%s\nnotifier:\n%s", len(got), notifytest.Dump(got), notifierOut)
	}
	find := func(summary string) notifytest.Received {
		t.Helper()
		for _, r := range got {
			if r.Summary == summary {
				return r
			}
		}
		t.Fatalf("no notification %q:\n%s", summary, notifytest.Dump(got))
		return notifytest.Received{}
	}
	for _, tc := range []struct {
		summary string
		body    []string
	}{
		{"許可されていない USB 記憶媒体（第6条・第7条）", []string{
			"Alcor Micro Corp. (058f:8468)（ポート 8-1.4）\n直ちに取り外してください。使用する場合は、事前に甲（情報政策課 内線 1234）の許可を得て、承認リストに登録してもらってください。",
			"\n\nUnapproved USB storage (articles 6 and 7)\nAlcor Micro Corp. (058f:8468), port 8-1.4\nUnplug it now. Before using it, get the city's prior permission (contact: 情報政策課 内線 1234) and have it added to the approved list."}},
		{"USB 機器の承認の期限切れ（第11条）", []string{
			"EgisTec EgisTec Touch Fingerprint Sensor（シリアル W700B41B、ポート ",
			"甲（情報政策課 内線 1234）に承認の更新を依頼してください。",
			"\n\nUSB approval expired (article 11)\nEgisTec EgisTec Touch Fingerprint Sensor, serial W700B41B, port ",
			"ask the city (情報政策課 内線 1234) to renew the approval"}},
		{"許可されていない USB 機器（第11条）", []string{"ポート", "\n\nUnapproved USB device (article 11)\n"}},
		{"許可されていないネットワークへの接続（第9条）", []string{
			"（d0）、アドレス 192.168.77.5/24\n直ちに d0 の接続を切ってください。ネットワークに接続する前に甲（情報政策課 内線 1234）の許可を得てください。",
			"\n\nUnapproved network (article 9)\n", "on d0, address 192.168.77.5/24\nDisconnect d0 now. Get the city's permission (contact: 情報政策課 内線 1234)"}},
	} {
		r := find(tc.summary)
		for _, b := range tc.body {
			if !strings.Contains(r.Body, b) {
				t.Errorf("%s: body lacks %q:\n%s", tc.summary, b, r.Body)
			}
		}
		if r.AppName != "mamori" || r.Urgency() != 2 || r.SenderUID != u.UID || r.ProcUID != u.UID {
			t.Errorf("%s: app %q urgency %d from uid %d/%d, want mamori, 2, uid %d", tc.summary, r.AppName, r.Urgency(), r.SenderUID, r.ProcUID, u.UID)
		}
	}

	t.Logf("notifications:\n%s", notifytest.Dump(got))
	// Every warning shown is in the audit log, with whom it reached.
	recs := waitWarningRecords(t, f.state, 4)
	for _, rec := range recs {
		w := rec.Warning
		if rec.Type != wire.TypeWarningShown || len(w.Shown) != 1 || w.Shown[0].UID != u.UID || w.Shown[0].User != u.Name || w.Shown[0].Via != wire.ViaNotifier {
			t.Errorf("warning record %+v %+v", rec, w)
		}
	}

	// mamori status: root and the group read it; others may not.
	out, code := asUser(t, binary, nil, "status", "--socket", sock)
	if code != 1 || !strings.Contains(out, "4 open violation(s) / 未解消の違反 4 件") || !strings.Contains(out, "許可されていない USB 記憶媒体（第6条・第7条）: Alcor Micro Corp.") ||
		!strings.Contains(out, "d0") || !strings.Contains(out, "Desktop notifiers: "+u.Name) {
		t.Errorf("status as root: exit %d\n%s", code, out)
	}
	out, code = asUser(t, bin, u.Credential(t), "status", "--socket", sock, "--json")
	var st localapi.Status
	if code != 1 || json.Unmarshal([]byte(out), &st) != nil || len(st.Violations) != 4 || st.Agent.AssetID != "PC-DESK" || len(st.Notifiers) != 1 {
		t.Errorf("status as a member of the group: exit %d\n%s", code, out)
	}
	out, code = asUser(t, bin, other.Credential(t), "status", "--socket", sock)
	if code != 2 || !strings.Contains(out, "permission denied") || !strings.Contains(out, "Only root and members of group "+group+" (agent.local_group) may ask: as root, run adduser "+other.Name+" "+group) {
		t.Errorf("status as another user: exit %d\n%s", code, out)
	}
	// Another user's notifier is turned away and exits 0 (the agent
	// reaches that session by a notifier of its own).
	out, code = asUser(t, bin, other.Credential(t), "notify", "--socket", sock)
	if code != 0 || !strings.Contains(out, "may not read the agent's warnings") {
		t.Errorf("notify as another user: exit %d\n%s", code, out)
	}
}

// warningRecordOf is the part of an audit record the tests look at.
type warningRecordOf struct {
	Type    string              `json:"type"`
	Warning *wire.WarningRecord `json:"warning"`
}

func waitWarningRecords(t *testing.T, state string, n int) []warningRecordOf {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(state, "audit.jsonl"))
		var out []warningRecordOf
		for l := range bytes.SplitSeq(b, []byte("\n")) {
			var r warningRecordOf
			if json.Unmarshal(l, &r) == nil && r.Warning != nil {
				out = append(out, r)
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d warning records of %d:\n%s", len(out), n, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStatusRefusedNamesGroup: a user not in the socket's group is told
// which group and how to get in; mamori notify without a session bus
// says so.
func TestStatusRefusedNamesGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs mamori as another user")
	}
	sock := filepath.Join(openDir(t), "agent.sock")
	srv, err := localapi.Listen(localapi.Options{Path: sock, Group: "4242", Agent: "mamori test",
		Status: func() (*localapi.Status, error) { return &localapi.Status{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	bin := userBinary(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	out, code := asUser(t, bin, nobody, "status", "--socket", sock)
	if code != statusUnreachable || !strings.Contains(out, "permission denied") ||
		!strings.Contains(out, "Only root and members of group 4242 (agent.local_group) may ask: as root, run adduser nobody 4242") {
		t.Errorf("status as a user not in the group: exit %d\n%s", code, out)
	}
	// The notifier without a session bus: it says why nothing will
	// show, and waits for the agent all the same.
	cmd := exec.Command(bin, "notify", "--socket", filepath.Join(openDir(t), "none.sock"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil || !strings.Contains(stderr.String(), "no session bus") || !strings.Contains(stderr.String(), "--bus ADDRESS") {
		t.Errorf("notify without a bus: %v\n%s", err, stderr.String())
	}
}
