package web_test

// Tests in a real headless browser (Debian's chromium; scripts/test-deps.sh
// installs it). The login page is shot with chromium's own --screenshot
// and --dump-dom; the pages behind a login are driven over the DevTools
// protocol on a pipe (--remote-debugging-pipe: fd 3 in, fd 4 out, JSON
// messages ending in NUL), which lets the test log in through the real
// form, so the session cookie, its SameSite and the CSRF field are
// exercised as a person's browser would, with no test-only door in the
// hub. Screenshots are checked as PNGs (size, share of non-white pixels,
// the chart's bar colour); set MAMORI_SCREENSHOT_DIR to keep them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/hubtest"
)

const shotW, shotH = 1280, 900

// chromium returns the browser's path; it skips the test when there is
// none, and fails it when CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium in PATH (CI=true: run scripts/test-deps.sh)")
	}
	t.Skip("no chromium in PATH: the browser tests are skipped (scripts/test-deps.sh installs Debian's chromium)")
	return ""
}

// browserFlags are the flags of every chromium run: headless, as root
// in a container (no sandbox, no /dev/shm), no first-run noise.
func browserFlags(profile string) []string {
	return []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--no-default-browser-check", "--disable-extensions", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + profile, fmt.Sprintf("--window-size=%d,%d", shotW, shotH)}
}

// checkPNG decodes a screenshot and checks it: the size, and that it is
// not blank (at least minInk of its pixels not near white). It returns
// the image and keeps it under MAMORI_SCREENSHOT_DIR when set.
func checkPNG(t *testing.T, name string, data []byte, minInk float64) image.Image {
	t.Helper()
	if dir := os.Getenv("MAMORI_SCREENSHOT_DIR"); dir != "" {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, name+".png"), data, 0o644)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	b := img.Bounds()
	if b.Dx() != shotW || b.Dy() != shotH {
		t.Fatalf("%s: %dx%d, want %dx%d", name, b.Dx(), b.Dy(), shotW, shotH)
	}
	var ink int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bb < 0xf000 {
				ink++
			}
		}
	}
	if share := float64(ink) / float64(b.Dx()*b.Dy()); share < minInk {
		t.Fatalf("%s: blank? only %.2f%% of the pixels are not white", name, 100*share)
	}
	return img
}

// countColour counts the pixels within 12 of the colour r, g, b.
func countColour(img image.Image, r, g, b uint8) int {
	near := func(v uint32, w uint8) bool { d := int(v>>8) - int(w); return d > -12 && d < 12 }
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr, r) && near(pg, g) && near(pb, b) {
				n++
			}
		}
	}
	return n
}

// TestBrowserLoginPage shoots the login page with chromium's own
// command-line --screenshot and --dump-dom.
func TestBrowserLoginPage(t *testing.T) {
	bin := chromium(t)
	h := hubtest.New(t)
	dir := t.TempDir()
	shot := filepath.Join(dir, "login.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(browserFlags(filepath.Join(dir, "profile")), "--screenshot="+shot, h.URL+"/login?lang=en")
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, "login", data, 0.02)

	args = append(browserFlags(filepath.Join(dir, "profile2")), "--dump-dom", h.URL+"/login")
	dom, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	for _, s := range []string{`<html lang="ja">`, `action="/login"`, `name="csrf"`, `type="password"`, "ログイン"} {
		if !strings.Contains(string(dom), s) {
			t.Errorf("login DOM lacks %q:\n%s", s, dom)
		}
	}
}

// TestBrowserPages logs in through the form in chromium and checks each
// page's DOM and screenshot, with hostile strings from agents on them.
func TestBrowserPages(t *testing.T) {
	bin := chromium(t)
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	b := startBrowser(t, bin)

	// The pages send a browser to the login form.
	b.navigate(h.URL + "/violations")
	if p := b.evalString("location.pathname + location.search"); p != "/login?next=%2Fviolations" {
		t.Fatalf("without a session at %q", p)
	}
	// A PC's token is refused.
	b.eval(fmt.Sprintf(`document.getElementById("token").value = %q; document.querySelector('form[action="/login"]').requestSubmit()`, s.Agent))
	b.waitLoad()
	if txt := b.evalString("document.body.innerText"); !strings.Contains(txt, "端末用のトークンではログインできません") {
		t.Fatalf("agent token: %s", txt)
	}
	// The staff token opens a session and goes on to the page asked for.
	b.eval(fmt.Sprintf(`document.getElementById("token").value = %q; document.querySelector('form[action="/login"]').requestSubmit()`, s.Admin))
	b.waitLoad()
	if p := b.evalString("location.pathname"); p != "/violations" {
		t.Fatalf("after login at %q", p)
	}
	if c := b.evalString("document.cookie"); strings.Contains(c, "mamori_session") {
		t.Fatalf("the session cookie is readable by scripts: %q", c)
	}

	pages := []struct {
		name, path string
		// texts the page shows (innerText), hostile strings as text.
		texts []string
	}{
		{"overview", "/", []string{"日別の違反件数（過去30日）", "許可されていない USB 記憶媒体", "監査ログの連続性の破損", hostileDevice}},
		{"violations", "/violations", []string{"さらに古い違反", hostileDevice, hostileSerial, "invoice⟦U+202E⟧gpj.exe <b>bold</b> copied", hostileAsset}},
		{"agents", "/agents", []string{"pc-001", "pc-002", "応答なし", "停止", "改ざんの疑い", "pc⟦U+202E⟧exe.<svg onload=alert(1)>", "Microsoft Windows 11 Pro"}},
		{"devices", "/devices", []string{"SHARED-SERIAL", "2 台の端末で確認", hostileProduct}},
		{"agents-en", "/agents?lang=en", []string{"PCs", "silent", "stopped", "broken", "Log out"}},
	}
	for _, p := range pages {
		b.navigate(h.URL + p.path)
		if got := b.evalString("location.pathname"); got != strings.SplitN(p.path, "?", 2)[0] {
			t.Fatalf("%s: at %q", p.name, got)
		}
		text := b.evalString("document.body.innerText")
		for _, want := range p.texts {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the page does not show %q", p.name, want)
			}
		}
		// No script ran and no markup an agent sent became an element.
		if title := b.evalString("document.title"); strings.Contains(title, "PWNED") {
			t.Errorf("%s: a script ran: title %q", p.name, title)
		}
		if n := b.evalString(`String(document.querySelectorAll("script, img, iframe, b, i, svg[onload], [onerror]").length)`); n != "0" {
			t.Errorf("%s: %s elements from agents' strings", p.name, n)
		}
		if strings.Contains(text, "\u202E") {
			t.Errorf("%s: a raw right-to-left override is shown", p.name)
		}
		dom := b.evalString("document.documentElement.outerHTML")
		if !strings.Contains(dom, "&lt;") {
			t.Errorf("%s: nothing escaped in the DOM?", p.name)
		}
		img := checkPNG(t, p.name, b.screenshot(), 0.03)
		if p.name == "overview" {
			// The chart's bars (#2f6db5) are drawn: 55 violations over 7 days.
			if n := countColour(img, 0x2f, 0x6d, 0xb5); n < 2000 {
				t.Errorf("overview: only %d pixels of bar colour: no chart?", n)
			}
			if n := b.evalString(`String(document.querySelectorAll("svg.chart rect.bar").length)`); n != "30" {
				t.Errorf("overview: %s bars", n)
			}
		}
	}

	// The language switch is a link; the choice is kept (agents-en above
	// chose English).
	b.navigate(h.URL + "/devices")
	if l := b.evalString("document.documentElement.lang"); l != "en" {
		t.Fatalf("English was not kept: lang %q", l)
	}
	b.eval(`document.querySelector("a.lang").click()`)
	b.waitLoad()
	if l := b.evalString("document.documentElement.lang"); l != "ja" {
		t.Fatalf("after the switch: lang %q", l)
	}
	b.navigate(h.URL + "/")
	if l := b.evalString("document.documentElement.lang"); l != "ja" {
		t.Fatalf("Japanese was not kept: lang %q", l)
	}

	// Logout through its form ends the session.
	b.eval(`document.querySelector('form[action="/logout"] button').click()`)
	b.waitLoad()
	if p := b.evalString("location.pathname"); p != "/login" {
		t.Fatalf("after logout at %q", p)
	}
	b.navigate(h.URL + "/agents")
	if p := b.evalString("location.pathname"); p != "/login" {
		t.Fatalf("after logout /agents shows %q", p)
	}
}

// browser is a headless chromium driven over the DevTools protocol on a
// pipe, with one page target.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	w       *os.File
	mu      sync.Mutex
	id      int
	waiting map[int]chan cdpMessage
	events  chan cdpMessage
	session string
}

// cdpMessage is a DevTools protocol message: an answer (ID) or an event
// (Method).
type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// startBrowser starts chromium with --remote-debugging-pipe and opens a
// page of shotW x shotH.
func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("--remote-debugging-pipe needs file descriptors 3 and 4 (not on Windows)")
	}
	toChrome, ourW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ourR, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := append(browserFlags(filepath.Join(t.TempDir(), "profile")), "--remote-debugging-pipe", "about:blank")
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{t: t, cmd: cmd, w: ourW, waiting: map[int]chan cdpMessage{}, events: make(chan cdpMessage, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(ourR)
		for {
			msg, err := r.ReadBytes(0)
			if err != nil {
				return
			}
			var m cdpMessage
			if json.Unmarshal(msg[:len(msg)-1], &m) != nil {
				continue
			}
			if m.ID != 0 {
				b.mu.Lock()
				ch := b.waiting[m.ID]
				delete(b.waiting, m.ID)
				b.mu.Unlock()
				if ch != nil {
					ch <- m
				}
				continue
			}
			select {
			case b.events <- m:
			default: // nobody waits for it
			}
		}
	}()
	t.Cleanup(func() {
		ourW.Close() // chromium exits when its pipe closes
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		ourR.Close()
		<-done
		if t.Failed() {
			t.Logf("chromium's stderr:\n%s", stderr.String())
		}
	})
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": shotW, "height": shotH, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

// call sends one command and decodes its result into out.
func (b *browser) call(session, method string, params any, out any) {
	b.t.Helper()
	b.mu.Lock()
	b.id++
	id := b.id
	ch := make(chan cdpMessage, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.w.Write(append(data, 0)); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			b.t.Fatalf("%s: %s", method, m.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				b.t.Fatalf("%s: %v", method, err)
			}
		}
	case <-time.After(30 * time.Second):
		b.t.Fatalf("%s: no answer from chromium in 30 s", method)
	}
}

// drain forgets the events so far.
func (b *browser) drain() {
	for {
		select {
		case <-b.events:
		default:
			return
		}
	}
}

// waitLoad waits for the page's load event.
func (b *browser) waitLoad() {
	b.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-b.events:
			if m.Method == "Page.loadEventFired" && m.SessionID == b.session {
				return
			}
		case <-deadline:
			b.t.Fatal("the page did not load in 30 s")
		}
	}
}

// navigate loads url and waits for its load event.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.drain()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, &res)
	if res.ErrorText != "" {
		b.t.Fatalf("navigate %s: %s", url, res.ErrorText)
	}
	b.waitLoad()
}

// eval runs a script in the page from DevTools (not the page's own: the
// pages have none, and their CSP allows none) and returns its value.
// Events before it are forgotten, so a waitLoad after it waits for the
// navigation it starts.
func (b *browser) eval(expr string) json.RawMessage {
	b.t.Helper()
	b.drain()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		b.t.Fatalf("eval %s: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value
}

// evalString is eval of an expression whose value is a string.
func (b *browser) evalString(expr string) string {
	b.t.Helper()
	var s string
	if err := json.Unmarshal(b.eval(expr), &s); err != nil {
		b.t.Fatalf("eval %s: not a string: %v", expr, err)
	}
	return s
}

// screenshot returns a PNG of the viewport.
func (b *browser) screenshot() []byte {
	b.t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &res)
	data, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		b.t.Fatal(errors.New("screenshot: " + err.Error()))
	}
	return data
}
