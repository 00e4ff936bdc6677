package prometheus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsSetup is run by the holder in the new network namespace: loopback
// up, and one interface (a veth pair; a bridge or a dummy where the
// kernel has no veth) with an address from TEST-NET-1 (RFC 5737) and a
// default route, so that the agent sees one network, an unapproved one,
// and nothing of the host's. Nothing leaves the namespace.
const netnsSetup = `set -e
ip link set lo up
if ip link add mamori0 type veth peer name mamori1 2>/dev/null; then
	ip link set mamori1 up
elif ! ip link add mamori0 type bridge 2>/dev/null; then
	ip link add mamori0 type dummy
fi
ip addr add 192.0.2.10/24 dev mamori0
ip link set mamori0 up
ip route add default via 192.0.2.1 dev mamori0 onlink
echo ready
exec sleep 3600`

// netns is a network namespace of its own, kept alive by a holder
// process (sleep), that the test's processes join with nsenter.
type netns struct {
	path   string // /proc/PID/ns/net of the holder
	holder *exec.Cmd
}

// newNetns creates the namespace; it is removed with the holder at the
// end of the test.
func newNetns(t *testing.T) *netns {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", netnsSetup)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // not left behind by a test killed on timeout
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare --net: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("setting up the network namespace: %v %q; stderr:\n%s", err, line, stderr.String())
	}
	return &netns{path: fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), holder: cmd}
}

// proc is a process started in the namespace, its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs argv in the namespace (nsenter execs it: the pid is the
// process's own), with stdout and stderr in dir/name.log. It is stopped
// with SIGTERM, then SIGKILL after 5 s, when the test ends.
func (ns *netns) start(t *testing.T, dir, name string, argv ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns.path, "--"}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log (end):\n%s", name, b)
		}
	})
	return p
}

// stop ends the process: SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type dialResult struct {
	conn net.Conn
	err  error
}

type dialRequest struct {
	ctx  context.Context
	addr string
	res  chan dialResult
}

// nsDialer opens TCP connections inside the namespace from this test
// process: one goroutine, locked to its OS thread, moves that thread into
// the namespace with setns(2) and creates every socket there (a socket
// belongs to the namespace it was created in). The thread is never
// unlocked, so it ends with the goroutine and no other goroutine runs in
// the namespace.
type nsDialer struct {
	reqs chan dialRequest
}

func (ns *netns) dialer(t *testing.T) *nsDialer {
	t.Helper()
	d := &nsDialer{reqs: make(chan dialRequest)}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(ns.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ready <- fmt.Errorf("open %s: %w", ns.path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ready <- fmt.Errorf("setns %s: %w", ns.path, err)
			return
		}
		ready <- nil
		for r := range d.reqs {
			var nd net.Dialer
			c, err := nd.DialContext(r.ctx, "tcp", r.addr)
			r.res <- dialResult{c, err}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(d.reqs) })
	return d
}

// DialContext is an http.Transport's DialContext: TCP to a loopback
// address inside the namespace.
func (d *nsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, fmt.Errorf("nsDialer: network %s: only tcp", network)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, errors.New("nsDialer: " + addr + " is not a loopback address")
	}
	r := dialRequest{ctx: ctx, addr: addr, res: make(chan dialResult, 1)}
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-r.res:
		return res.conn, res.err
	case <-ctx.Done():
		go func() {
			if res := <-r.res; res.conn != nil {
				res.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
