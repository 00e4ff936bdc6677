//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// initramfsSpec says what goes into the guest's initramfs.
type initramfsSpec struct {
	Kernel  *kernel
	Busybox string   // host path of a static busybox
	Mamori  string   // host path of a static mamori, "" for none
	Sysdump string   // host path of the static e2e/sysdump helper
	Modules []string // top-level module names
	// Extra maps more files into the image: guest path → host path.
	Extra map[string]string
	// ModuleArgs are insmod arguments per module, e.g.
	// {"usb_storage": "delay_use=0"}.
	ModuleArgs map[string]string
	// Later are modules carried but not loaded at boot: /etc/modules.later
	// lists them and those of their dependencies the boot does not load,
	// in order, with their ModuleArgs; /bin/e2e-modules-later loads them.
	Later []string
	// Programs are dynamically linked host programs, carried at the same
	// path with every shared library ldd names and the ELF interpreter.
	Programs []string
	// Data maps read-only files into the image (0644, parent directories
	// made): guest path → host path.
	Data map[string]string
}

// initScript is the guest's /init. It mounts the pseudo file systems,
// loads the modules in dependency order, then starts the control channel
// on ttyS2 and stays as a reaper forever (PID 1 must not exit). ttyS0 is the console, ttyS1 the
// agent's clean output stream.
const initScript = `#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run /var/lib/mamori /mnt
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
while read -r name args; do
	[ -n "$name" ] || continue
	insmod /lib/modules/$name.ko $args || echo "e2e: insmod $name failed" >/dev/console
done </etc/modules.load
mount -t configfs configfs /sys/kernel/config
ip link set lo up
hostname e2e
stty -F /dev/ttyS1 115200 raw -echo
stty -F /dev/ttyS2 115200 raw -echo
echo "e2e: init done" >/dev/console
# PID 1 only reaps: processes the tests start in the background (the
# agent, its output pipe) are reparented here when their shell exits, so
# their exit signals never interrupt the control loop's read on ttyS2.
/bin/e2e-control &
while :; do sleep 1; done
`

// controlScript serves commands on ttyS2. A request is one line
// "ID BASE64(script)"; the reply is "@@BEGIN ID", the base64 of the
// script's combined output, "@@END ID RC". Base64 keeps binary sysfs
// attributes and stray control bytes from breaking the framing.
const controlScript = `#!/bin/sh
exec 3<>/dev/ttyS2
printf '\n@@READY\n' >&3
while IFS= read -r line <&3; do
	id=${line%% *}
	printf '%s' "${line#* }" | base64 -d >/tmp/e2e-cmd.sh 2>/dev/null
	echo "e2e[$id]\$ $(head -c 200 /tmp/e2e-cmd.sh | tr '\n' ';')" >/dev/console
	sh /tmp/e2e-cmd.sh >/tmp/e2e-out 2>&1 </dev/null
	rc=$?
	printf '\n@@BEGIN %s\n' "$id" >&3
	base64 /tmp/e2e-out >&3
	printf '@@END %s %d\n' "$id" "$rc" >&3
done
echo "e2e: control channel closed" >/dev/console
sleep 1000000
`

// modulesLaterScript loads /etc/modules.later (the spec's Later modules,
// dependencies first), skipping what is loaded already.
const modulesLaterScript = `#!/bin/sh
rc=0
while read -r name args; do
	[ -n "$name" ] || continue
	[ -d /sys/module/$name ] && continue
	insmod /lib/modules/$name.ko $args || { echo "e2e: insmod $name failed" >&2; rc=1; }
done </etc/modules.later
exit $rc
`

// buildInitramfs writes a gzip-compressed newc cpio to path.
func buildInitramfs(path string, spec initramfsSpec) error {
	mods, err := resolveModules(spec.Kernel.ModDir, spec.Modules)
	if err != nil {
		return err
	}
	var raw bytes.Buffer
	c := newCPIO(&raw)
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys",
		"dev", "tmp", "run", "mnt", "var", "var/lib", "lib", "lib/modules", "root"} {
		c.Dir(d)
	}
	bb, err := os.ReadFile(spec.Busybox)
	if err != nil {
		return fmt.Errorf("read busybox: %w", err)
	}
	c.File("bin/busybox", 0o755, bb)
	applets, err := busyboxApplets(spec.Busybox)
	if err != nil {
		return err
	}
	for _, a := range applets {
		if filepath.Base(a) == "busybox" || a == "bin/busybox" {
			continue // a self-link gives ELOOP
		}
		// Relative-free absolute target keeps it simple.
		c.Symlink(a, "/bin/busybox")
	}
	c.File("init", 0o755, []byte(initScript))
	c.File("bin/e2e-control", 0o755, []byte(controlScript))
	var load strings.Builder
	for _, m := range mods {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			return fmt.Errorf("read module: %w", err)
		}
		c.File("lib/modules/"+m.Name+".ko", 0o644, data)
		fmt.Fprintf(&load, "%s %s\n", m.Name, spec.ModuleArgs[m.Name])
	}
	c.File("etc/modules.load", 0o644, []byte(load.String()))
	if len(spec.Later) > 0 {
		later, err := resolveModules(spec.Kernel.ModDir, append(append([]string{}, spec.Modules...), spec.Later...))
		if err != nil {
			return err
		}
		var list strings.Builder
		for _, m := range later[len(mods):] {
			data, err := os.ReadFile(m.Path)
			if err != nil {
				return fmt.Errorf("read module: %w", err)
			}
			c.File("lib/modules/"+m.Name+".ko", 0o644, data)
			fmt.Fprintf(&list, "%s %s\n", m.Name, spec.ModuleArgs[m.Name])
		}
		c.File("etc/modules.later", 0o644, []byte(list.String()))
		c.File("bin/e2e-modules-later", 0o755, []byte(modulesLaterScript))
	}
	for _, prog := range spec.Programs {
		files, err := programFiles(prog)
		if err != nil {
			return err
		}
		for _, f := range files {
			if c.names[strings.TrimPrefix(f, "/")] {
				continue // a library two programs share
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("read %s (for %s): %w", f, prog, err)
			}
			c.Parents(f)
			c.File(f, 0o755, data)
		}
	}
	for guestPath, hostPath := range spec.Data {
		data, err := os.ReadFile(hostPath)
		if err != nil {
			return fmt.Errorf("read %s: %w", hostPath, err)
		}
		c.Parents(guestPath)
		c.File(guestPath, 0o644, data)
	}
	c.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	c.File("etc/group", 0o644, []byte("root:x:0:\n"))
	if spec.Sysdump != "" {
		data, err := os.ReadFile(spec.Sysdump)
		if err != nil {
			return fmt.Errorf("read sysdump: %w", err)
		}
		c.File("bin/e2e-sysdump", 0o755, data)
	}
	for guestPath, hostPath := range spec.Extra {
		data, err := os.ReadFile(hostPath)
		if err != nil {
			return fmt.Errorf("read %s: %w", hostPath, err)
		}
		c.File(guestPath, 0o755, data)
	}
	if spec.Mamori != "" {
		data, err := os.ReadFile(spec.Mamori)
		if err != nil {
			return fmt.Errorf("read mamori: %w", err)
		}
		c.File("bin/mamori", 0o755, data)
	}
	if err := c.Close(); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create initramfs: %w", err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs: %w", err)
	}
	return f.Close()
}

// programFiles returns prog, the shared libraries ldd resolves for it
// and its ELF interpreter: host paths, which are also the guest paths.
func programFiles(prog string) ([]string, error) {
	out, err := exec.Command("ldd", prog).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", prog, err, out)
	}
	files := []string{prog}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			files = append(files, f[2])
		case len(f) >= 3 && f[1] == "=>":
			return nil, fmt.Errorf("ldd %s: library not found: %s", prog, strings.TrimSpace(l))
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			files = append(files, f[0]) // the interpreter
		}
	}
	return files, nil
}

// busyboxApplets lists applet paths ("bin/ls", "usr/bin/wget") of bb.
func busyboxApplets(bb string) ([]string, error) {
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bb, err)
	}
	var list []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			list = append(list, strings.TrimPrefix(l, "/"))
		}
	}
	return list, nil
}

// findBusybox returns MAMORI_E2E_BUSYBOX or the busybox-static binary.
func findBusybox() (string, error) {
	for _, p := range []string{os.Getenv("MAMORI_E2E_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"} {
		if p != "" && isStaticELF(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no static busybox (install busybox-static, or set MAMORI_E2E_BUSYBOX)")
}

// isStaticELF reports whether p is an ELF executable without an
// interpreter (statically linked).
func isStaticELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
