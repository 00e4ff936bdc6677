//go:build e2e

// Command sysdump runs inside the e2e guest and prints a sysfs device
// tree for the harness's fixture recorder: "D dir", "L path target" and
// "F mode path base64(content)" lines. The device's directory is walked
// recursively; its ancestors up to /sys/devices without subdirectories.
// A shell loop did the same with several forks per file, which took
// minutes under TCG.
package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

var skipDirs = map[string]bool{"queue": true, "trace": true, "mq": true, "integrity": true,
	"holders": true, "slaves": true}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sysdump /sys/bus/usb/devices/X")
		os.Exit(2)
	}
	dev, err := filepath.EvalSymlinks(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	dump(w, dev, true)
	for p := filepath.Dir(dev); p != "/sys/devices" && p != "/" && p != "."; p = filepath.Dir(p) {
		dump(w, p, false)
	}
}

func dump(w *bufio.Writer, dir string, recurse bool) {
	fmt.Fprintf(w, "D %s\n", dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "read %s: %v\n", dir, err)
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err == nil {
				fmt.Fprintf(w, "L %s %s\n", p, t)
			}
		case e.IsDir():
			if recurse && !skipDirs[e.Name()] {
				dump(w, p, true)
			}
		default:
			info, err := e.Info()
			if err != nil || info.Mode().Perm()&0o400 == 0 {
				continue
			}
			data, ok := readTimeout(p, 2*time.Second)
			if !ok {
				data = nil
			}
			fmt.Fprintf(w, "F %o %s %s\n", info.Mode().Perm(), p, base64.StdEncoding.EncodeToString(data))
		}
	}
}

// readTimeout reads a sysfs attribute, giving up on one that blocks.
func readTimeout(p string, d time.Duration) ([]byte, bool) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := os.ReadFile(p)
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err == nil
	case <-time.After(d):
		return nil, false
	}
}
