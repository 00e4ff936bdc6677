//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// vm is one running QEMU guest. ttyS0 is the console, ttyS1 carries the
// agent's output, ttyS2 the harness's control channel.
type vm struct {
	*guest
	t testing.TB
}

// guest is the state of one QEMU process, shared by every vm view.
type guest struct {
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	QMP     *qmpClient
	Console *stream[string] // ttyS0, kernel messages and command echo
	Agent   *stream[string] // ttyS1
	ctl     net.Conn
	ctlOut  *stream[string] // ttyS2 lines
	ctlMu   sync.Mutex
	ctlID   int
	Booted  time.Duration
}

// vmOptions configure a boot.
type vmOptions struct {
	Kernel    string
	Initramfs string
	Append    string
	MemoryMB  int
}

// useKVM reports whether KVM really works: /dev/kvm opens and the CPU
// advertises vmx or svm. Otherwise (a paravirtual host) TCG it is.
func useKVM() bool {
	if os.Getenv("MAMORI_E2E_ACCEL") == "tcg" {
		return false
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	cpu, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	return bytes.Contains(cpu, []byte(" vmx")) || bytes.Contains(cpu, []byte(" svm"))
}

// bootVM starts QEMU and waits until the guest's control channel answers.
func bootVM(t testing.TB, opt vmOptions) *vm {
	t.Helper()
	// unix socket paths must stay short: not under t.TempDir().
	dir, err := os.MkdirTemp("", "me2e")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	v := &vm{t: t, guest: &guest{dir: dir, exited: make(chan struct{}),
		Console: newStream[string](), Agent: newStream[string](), ctlOut: newStream[string]()}}
	names := []string{"con", "agt", "ctl", "qmp"}
	lns := map[string]*net.UnixListener{}
	for _, n := range names {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, n), Net: "unix"})
		if err != nil {
			t.Fatalf("listen %s: %v", n, err)
		}
		lns[n] = ln
	}
	mem := opt.MemoryMB
	if mem == 0 {
		mem = 512
	}
	appendLine := "console=ttyS0 panic=-1 quiet"
	if opt.Append != "" {
		appendLine += " " + opt.Append
	}
	args := []string{
		"-M", "q35", "-m", strconv.Itoa(mem), "-smp", "2",
		"-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", opt.Kernel, "-initrd", opt.Initramfs, "-append", appendLine,
		"-chardev", "socket,id=con,path=" + filepath.Join(dir, "con"), "-serial", "chardev:con",
		"-chardev", "socket,id=agt,path=" + filepath.Join(dir, "agt"), "-serial", "chardev:agt",
		"-chardev", "socket,id=ctl,path=" + filepath.Join(dir, "ctl"), "-serial", "chardev:ctl",
		"-chardev", "socket,id=qmp,path=" + filepath.Join(dir, "qmp"), "-mon", "chardev=qmp,mode=control",
		"-device", "qemu-xhci,id=xhci",
		"-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1",
	}
	if useKVM() {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg,thread=multi")
	}
	v.cmd = exec.Command("qemu-system-x86_64", args...)
	var qemuOut bytes.Buffer
	v.cmd.Stdout, v.cmd.Stderr = &qemuOut, &qemuOut
	start := time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() {
		v.exitErr = v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(v.shutdown)

	conns := map[string]net.Conn{}
	for _, n := range names {
		lns[n].SetDeadline(time.Now().Add(20 * time.Second))
		c, err := lns[n].Accept()
		lns[n].Close()
		if err != nil {
			t.Fatalf("qemu did not connect its %s chardev: %v\nqemu output:\n%s", n, err, qemuOut.String())
		}
		conns[n] = c
	}
	go readLines(conns["con"], v.Console, filepath.Join(dir, "console.log"))
	go readLines(conns["agt"], v.Agent, filepath.Join(dir, "agent.log"))
	go readLines(conns["ctl"], v.ctlOut, "")
	v.ctl = conns["ctl"]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := newQMP(ctx, conns["qmp"])
	if err != nil {
		v.Fatalf("QMP handshake: %v", err)
	}
	v.QMP = q
	timeout := 180 * time.Second
	bctx, bcancel := context.WithTimeout(context.Background(), timeout)
	defer bcancel()
	if _, _, err := v.ctlOut.wait(bctx, 0, func(s string) bool { return s == "@@READY" }); err != nil {
		v.Fatalf("waited %v for the guest's control channel (@@READY on ttyS2): %v", timeout, err)
	}
	v.Booted = time.Since(start)
	t.Logf("guest ready in %v (accel %s)", v.Booted.Round(time.Millisecond), map[bool]string{true: "kvm", false: "tcg"}[useKVM()])
	return v
}

// readLines feeds a connection's lines (CR stripped) into s, and
// optionally into a log file.
func readLines(c net.Conn, s *stream[string], logPath string) {
	var logf *os.File
	if logPath != "" {
		logf, _ = os.Create(logPath)
		defer logf.Close()
	}
	r := bufio.NewReaderSize(c, 1<<16)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			line = strings.ReplaceAll(line, "\r", "")
			if logf != nil {
				fmt.Fprintln(logf, line)
			}
			s.add(line)
		}
		if err != nil {
			s.close(err)
			return
		}
	}
}

// shutdown stops QEMU; on failure it keeps the logs when
// MAMORI_E2E_KEEP is set.
func (v *vm) shutdown() {
	if v.cmd.Process != nil {
		select {
		case <-v.exited:
		default:
			if v.QMP != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, _ = v.QMP.Do(ctx, "quit", nil)
				cancel()
			}
			select {
			case <-v.exited:
			case <-time.After(3 * time.Second):
				_ = v.cmd.Process.Kill()
				<-v.exited
			}
		}
	}
	if os.Getenv("MAMORI_E2E_KEEP") != "" {
		v.t.Logf("guest logs kept in %s", v.dir)
		return
	}
	os.RemoveAll(v.dir)
}

// diag is what a failure shows: the tail of the console and of the
// agent's stream.
func (v *vm) diag() string {
	var b strings.Builder
	select {
	case <-v.exited:
		fmt.Fprintf(&b, "\nqemu exited: %v", v.exitErr)
	default:
	}
	fmt.Fprintf(&b, "\n--- guest console (ttyS0), last 50 lines ---\n%s", tailLines(v.Console, 50))
	if v.Agent.mark() > 0 {
		// The agent's JSON log lines; its local warnings (several lines
		// of prose each) would crowd them out.
		var lines []string
		for _, it := range v.Agent.since(0) {
			if strings.HasPrefix(it.Val, "{") {
				lines = append(lines, it.Val)
			}
		}
		lines = lines[max(0, len(lines)-20):]
		fmt.Fprintf(&b, "--- agent log (ttyS1), last %d JSON lines ---\n%s\n", len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

// Fatalf fails the test with the guest's console tail attached.
func (v *vm) Fatalf(format string, args ...any) {
	v.t.Helper()
	v.t.Fatalf(format+"%s", append(args, v.diag())...)
}

// Errorf reports a failed assertion with the guest's console tail.
func (v *vm) Errorf(format string, args ...any) {
	v.t.Helper()
	v.t.Errorf(format+"%s", append(args, v.diag())...)
}

// errNonZero is returned by Exec when the script exits non-zero.
var errNonZero = errors.New("non-zero exit")

// Exec runs a shell script in the guest and returns its combined output.
func (v *vm) Exec(timeout time.Duration, script string) (string, error) {
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	v.ctlID++
	id := strconv.Itoa(v.ctlID)
	from := v.ctlOut.mark()
	req := id + " " + base64.StdEncoding.EncodeToString([]byte(script)) + "\n"
	if _, err := v.ctl.Write([]byte(req)); err != nil {
		return "", fmt.Errorf("send command %s: %w", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, next, err := v.ctlOut.wait(ctx, from, func(s string) bool { return s == "@@BEGIN "+id })
	if err != nil {
		return "", fmt.Errorf("waited %v for the guest to run %q: %w", timeout, abbreviate(script), err)
	}
	end, _, err := v.ctlOut.wait(ctx, next, func(s string) bool { return strings.HasPrefix(s, "@@END "+id+" ") })
	if err != nil {
		return "", fmt.Errorf("waited %v for the output of %q: %w", timeout, abbreviate(script), err)
	}
	var enc strings.Builder
	for _, it := range v.ctlOut.since(next) {
		if it.Val == end.Val {
			break
		}
		enc.WriteString(it.Val)
	}
	out, err := base64.StdEncoding.DecodeString(enc.String())
	if err != nil {
		return "", fmt.Errorf("decode output of %q: %w", abbreviate(script), err)
	}
	rc, _ := strconv.Atoi(strings.TrimPrefix(end.Val, "@@END "+id+" "))
	if rc != 0 {
		return string(out), fmt.Errorf("guest command %q exited %d: %w: %s", abbreviate(script), rc, errNonZero, out)
	}
	return string(out), nil
}

// Run runs a script in the guest and fails the test if it fails.
func (v *vm) Run(script string) string {
	v.t.Helper()
	out, err := v.Exec(60*time.Second, script)
	if err != nil {
		v.Fatalf("%v", err)
	}
	return out
}

// WaitGuest polls a guest script until it exits 0, failing after timeout
// with what it waited for.
func (v *vm) WaitGuest(what string, timeout time.Duration, script string) string {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		// Checks are idempotent: an attempt that gets no answer is sent
		// again under a new id (a late answer to the old one is ignored).
		out, err := v.Exec(min(10*time.Second, max(time.Until(deadline), time.Second)), script)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			v.Fatalf("waited %v for %s (guest check %q): %v", timeout, what, abbreviate(script), err)
		}
		if !errors.Is(err, errNonZero) {
			v.t.Logf("guest check %q got no answer, asking again: %v", abbreviate(script), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Do runs a QMP command and fails the test on error.
func (v *vm) Do(cmd string, args any) json.RawMessage {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := v.QMP.Do(ctx, cmd, args)
	if err != nil {
		v.Fatalf("%v", err)
	}
	return r
}

// WaitEvent waits for a QMP event named name whose data satisfies match.
func (v *vm) WaitEvent(from int, name string, timeout time.Duration, match func(json.RawMessage) bool) stamped[qmpEvent] {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ev, _, err := v.QMP.Events.wait(ctx, from, func(e qmpEvent) bool {
		return e.Event == name && (match == nil || match(e.Data))
	})
	if err != nil {
		v.Fatalf("waited %v for QMP event %s: %v", timeout, name, err)
	}
	return ev
}

func abbreviate(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// with returns a view of v that reports failures to t (a subtest).
func (v *vm) with(t testing.TB) *vm { return &vm{guest: v.guest, t: t} }
