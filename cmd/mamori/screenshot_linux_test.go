package main

import (
	"bufio"
	"bytes"
	bin "encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/notify/notifytest"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the screenshot of TestNotifyScreenshot to ../../notify/testdata/notification-ja.png (check it by eye before committing)")

// dunstrc: a notification wide enough for the body, in a font with
// Japanese glyphs (fonts-ipafont-gothic), critical ones framed in red and
// kept until dismissed.
const dunstrc = `[global]
    font = IPAGothic 12
    width = 780
    height = 600
    origin = top-right
    offset = 16x16
    frame_width = 3
    padding = 12
    horizontal_padding = 14
    markup = full
    format = "<b>%s</b>\n%b"
    icon_position = off
    show_age_threshold = -1
[urgency_critical]
    background = "#fff5f5"
    foreground = "#1a1a1a"
    frame_color = "#c00000"
    timeout = 0
`

// screenshotWarning is a warning as the agent makes it for an unapproved
// stick, with the texts of the kinds table and a contact.
func screenshotWarning() *localapi.Warning {
	texts := policy.Texts{Language: "ja", Contact: "情報政策課 内線 1234"}
	v := texts.Violation(wire.KindUSBStorageUnapproved, "1-2",
		map[string]string{"device": "SanDisk Ultra Fit (0781:5583, serial 4C530001)", "port": "1-2"})
	k, _ := wire.KindOf(v.Kind)
	return &localapi.Warning{ID: "screenshot-1", Time: time.Now(), Kind: v.Kind, Severity: v.Severity, Article: v.Article,
		Device: v.Device, Key: v.Kind + "|" + v.Device, Texts: []localapi.Text{
			{Lang: "ja", Title: k.TitleJA, Rule: "第6条・第7条", Subject: "SanDisk Ultra Fit（シリアル 4C530001、ポート 1-2）", Message: v.MessageJA, Remedy: v.RemedyJA},
			{Lang: "en", Title: k.TitleEN, Rule: "articles 6 and 7", Subject: "SanDisk Ultra Fit, serial 4C530001, port 1-2", Message: v.MessageEN, Remedy: v.RemedyEN},
		}}
}

// TestNotifyScreenshot: a Japanese warning shown by mamori notify --once
// through a real notification daemon (dunst) on a virtual X display
// (Xvfb), on a private session bus; the screen is taken with xwd and
// kept as a PNG. The test checks that the notification was drawn (ink in
// the notification's corner of an otherwise black screen, the red frame
// of a critical one); that the Japanese text is legible is checked by
// eye on the committed notify/testdata/notification-ja.png (-update-screenshot
// rewrites it).
func TestNotifyScreenshot(t *testing.T) {
	for _, tool := range []string{"Xvfb", "dunst", "xwd"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing; scripts/test-deps.sh installs it", tool)
			}
			t.Skipf("%s not installed (apt-get install xvfb dunst x11-apps)", tool)
		}
	}
	dir := t.TempDir()
	display := startXvfb(t)
	bus := notifytest.StartBus(t, notifytest.BusOptions{})
	must(t, os.WriteFile(filepath.Join(dir, "dunstrc"), []byte(dunstrc), 0o644))
	dunst := exec.Command("dunst", "-config", filepath.Join(dir, "dunstrc"))
	dunst.Env = []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + bus.Address, "HOME=" + dir, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	startProcess(t, "dunst", dunst)
	waitBusName(t, bus.Address, "org.freedesktop.Notifications")

	line, err := json.Marshal(localapi.Message{Type: localapi.TypeWarning, Warning: screenshotWarning()})
	must(t, err)
	cmd := exec.Command(binary, "notify", "--once", "--bus", bus.Address)
	cmd.Stdin = bytes.NewReader(append(line, '\n'))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `{"type":"shown","id":"screenshot-1"}`) {
		t.Fatalf("mamori notify --once: %v\n%s", err, out)
	}

	// dunst draws at once; give it a moment, then take the screen until
	// the notification is on it.
	var img *image.RGBA
	var box image.Rectangle
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		img = screenshot(t, display)
		box = inkBox(img)
		if box.Dx() > 300 && box.Dy() > 100 || time.Now().After(deadline) {
			break
		}
	}
	path := filepath.Join(dir, "notification-ja.png")
	writePNG(t, path, img)
	t.Logf("screenshot: %s; the notification at %v", path, box)
	// The rest of the screen is Xvfb's black: the notification is the
	// one drawn box, big enough for its lines, with its light background
	// and dark text.
	if box.Dx() < 300 || box.Dy() < 100 {
		t.Fatalf("nothing like a notification drawn: the drawn box is %v (%s)", box, path)
	}
	light, dark := 0, 0
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			c := img.RGBAAt(x, y)
			switch l := (int(c.R) + int(c.G) + int(c.B)) / 3; {
			case l > 0xe0:
				light++
			case l < 0x80:
				dark++
			}
		}
	}
	if area := box.Dx() * box.Dy(); light < area/2 || dark < 2000 {
		t.Fatalf("the notification has %d light and %d dark pixels of %d: no text on its background? (%s)", light, dark, area, path)
	}
	if *updateScreenshot {
		writePNG(t, "../../notify/testdata/notification-ja.png", img.SubImage(box.Inset(-8).Intersect(img.Bounds())))
	}
}

// inkBox returns the smallest rectangle holding every pixel of img that
// is not black.
func inkBox(img *image.RGBA) image.Rectangle {
	var box image.Rectangle
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c := img.RGBAAt(x, y); c.R|c.G|c.B != 0 {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box
}

// startXvfb starts a virtual X display and returns its name (":N").
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	x := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1024x640x24", "-nolisten", "tcp", "-nolisten", "unix")
	x.ExtraFiles = []*os.File{w}
	startProcessKill(t, "Xvfb", x)
	w.Close()
	num := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		num <- strings.TrimSpace(l)
	}()
	select {
	case n := <-num:
		if n == "" {
			t.Fatal("Xvfb did not start")
		}
		return ":" + n
	case <-time.After(20 * time.Second):
		t.Fatal("Xvfb said no display number")
		return ""
	}
}

// startProcessKill starts cmd and kills it when the test ends (Xvfb
// exits non-zero on a signal).
func startProcessKill(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// waitBusName waits until name has an owner on the bus at address.
func waitBusName(t *testing.T, address, name string) {
	t.Helper()
	conn, err := dbus.Connect(address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var has bool
		if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err == nil && has {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the bus", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot takes the whole screen of display with xwd.
func screenshot(t *testing.T, display string) *image.RGBA {
	t.Helper()
	out, err := exec.Command("xwd", "-root", "-silent", "-display", display).Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	img, err := decodeXWD(out)
	if err != nil {
		t.Fatalf("xwd output: %v", err)
	}
	return img
}

// decodeXWD decodes an X Window Dump of a TrueColor ZPixmap (what xwd
// makes of an Xvfb screen of depth 24): a header of 32-bit big-endian
// fields, the colormap, then the pixels, each bytes_per_line/width bytes
// in the byte order the header gives, split by the colour masks.
func decodeXWD(b []byte) (*image.RGBA, error) {
	if len(b) < 100 {
		return nil, errors.New("too short for a header")
	}
	f := func(i int) uint32 { return bin.BigEndian.Uint32(b[4*i:]) }
	headerSize, version, format := f(0), f(1), f(2)
	width, height, byteOrder := int(f(4)), int(f(5)), f(7)
	bytesPerLine, visual := int(f(12)), f(13)
	masks := [3]uint32{f(14), f(15), f(16)}
	ncolors := int(f(19))
	if version != 7 || format != 2 || visual != 4 && visual != 5 {
		return nil, fmt.Errorf("version %d, format %d, visual class %d: not a TrueColor ZPixmap of version 7", version, format, visual)
	}
	if width <= 0 || height <= 0 || width > 1<<14 || height > 1<<14 || bytesPerLine%width != 0 {
		return nil, fmt.Errorf("size %dx%d, %d bytes a line", width, height, bytesPerLine)
	}
	bpp := bytesPerLine / width
	start := int(headerSize) + 12*ncolors
	if bpp < 3 || bpp > 4 || start+bytesPerLine*height > len(b) {
		return nil, fmt.Errorf("%d bytes a pixel, %d bytes of %d needed", bpp, len(b), start+bytesPerLine*height)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	channel := func(p, mask uint32) uint8 {
		if mask == 0 {
			return 0
		}
		for mask&1 == 0 {
			mask >>= 1
			p >>= 1
		}
		return uint8((p & mask) * 255 / mask)
	}
	for y := range height {
		row := b[start+y*bytesPerLine:]
		for x := range width {
			px := row[x*bpp : x*bpp+bpp]
			var p uint32
			for i := range bpp {
				if byteOrder == 0 { // LSBFirst
					p |= uint32(px[i]) << (8 * i)
				} else {
					p = p<<8 | uint32(px[i])
				}
			}
			img.SetRGBA(x, y, color.RGBA{channel(p, masks[0]), channel(p, masks[1]), channel(p, masks[2]), 255})
		}
	}
	return img, nil
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	must(t, png.Encode(&buf, img))
	must(t, os.WriteFile(path, buf.Bytes(), 0o644))
}
