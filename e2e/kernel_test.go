//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// kernel is an unpacked Debian kernel package.
type kernel struct {
	Package string // linux-image-6.1.0-56-amd64
	Version string // Debian package version, 6.1.192-2
	Release string // uname -r, 6.1.0-56-amd64
	Root    string // where the .deb was unpacked
	Vmlinuz string // Root/boot/vmlinuz-<release>
	ModDir  string // Root/lib/modules/<release>
}

// cacheDir returns MAMORI_E2E_CACHE, else $XDG_CACHE_HOME/mamori-e2e,
// else ~/.cache/mamori-e2e.
func cacheDir() (string, error) {
	if d := os.Getenv("MAMORI_E2E_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "mamori-e2e"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(home, ".cache", "mamori-e2e"), nil
}

var dependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-\S+)\s*$`)

// resolveKernelPackage turns the linux-image-amd64 metapackage into the
// concrete package and its candidate version, as apt sees them now.
func resolveKernelPackage() (pkg, version string, err error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache depends linux-image-amd64: %w: %s", err, out)
	}
	m := dependsRE.FindSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("apt-cache depends linux-image-amd64: no linux-image dependency in %q", out)
	}
	pkg = string(m[1])
	out, err = exec.Command("apt-cache", "show", "--no-all-versions", pkg).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache show %s: %w: %s", pkg, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			return pkg, strings.TrimSpace(v), nil
		}
	}
	return "", "", fmt.Errorf("apt-cache show %s: no Version line", pkg)
}

// fetchKernel returns the Debian kernel, downloading and unpacking it into
// the cache the first time a version is seen. MAMORI_E2E_KERNEL_DIR points
// at an already unpacked package instead (no apt at all).
func fetchKernel(logf func(string, ...any)) (*kernel, error) {
	if dir := os.Getenv("MAMORI_E2E_KERNEL_DIR"); dir != "" {
		return kernelFromDir(dir, "", "")
	}
	pkg, version, err := resolveKernelPackage()
	if err != nil {
		// Offline: fall back to the newest cached kernel, if any.
		if k, cerr := newestCachedKernel(); cerr == nil {
			logf("apt unavailable (%v); using cached %s %s", err, k.Package, k.Version)
			return k, nil
		}
		return nil, err
	}
	base, err := cacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, pkg+"_"+version)
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return kernelFromDir(root, pkg, version)
	}
	logf("fetching kernel %s %s into %s", pkg, version, dir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	cmd := exec.Command("apt-get", "download", pkg+"="+version)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apt-get download %s=%s: %w: %s", pkg, version, err, tail(out, 20))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, dir, len(debs))
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}
	// The .deb is no longer needed once unpacked.
	_ = os.Remove(debs[0])
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o644); err != nil {
		return nil, fmt.Errorf("mark %s done: %w", dir, err)
	}
	return kernelFromDir(root, pkg, version)
}

func newestCachedKernel() (*kernel, error) {
	base, err := cacheDir()
	if err != nil {
		return nil, err
	}
	marks, _ := filepath.Glob(filepath.Join(base, "linux-image-*", "done"))
	if len(marks) == 0 {
		return nil, fmt.Errorf("no cached kernel under %s", base)
	}
	dir := filepath.Dir(marks[len(marks)-1])
	pkg, version, _ := strings.Cut(filepath.Base(dir), "_")
	return kernelFromDir(filepath.Join(dir, "root"), pkg, version)
}

// kernelFromDir finds vmlinuz and the module tree in an unpacked package.
func kernelFromDir(root, pkg, version string) (*kernel, error) {
	vms, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vms) != 1 {
		return nil, fmt.Errorf("kernel in %s: expected one boot/vmlinuz-*, found %d", root, len(vms))
	}
	release := strings.TrimPrefix(filepath.Base(vms[0]), "vmlinuz-")
	mod := filepath.Join(root, "lib", "modules", release)
	if _, err := os.Stat(mod); err != nil {
		return nil, fmt.Errorf("kernel in %s: %w", root, err)
	}
	if pkg == "" {
		pkg = "linux-image-" + release
	}
	return &kernel{Package: pkg, Version: version, Release: release, Root: root, Vmlinuz: vms[0], ModDir: mod}, nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
