//go:build e2e

package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// env is what every test shares: the kernel, the initramfs and the work
// directory, built once per `go test` run.
type env struct {
	Kernel    *kernel
	Work      string
	Initramfs string        // with delay_use=0 for usb_storage
	Spec      initramfsSpec // what Initramfs was built from
	Mamori    string        // "" when it did not build
	MamoriErr error
	Setup     time.Duration
}

var (
	setupOnce sync.Once
	shared    *env
	setupErr  error
	workDir   string
)

func TestMain(m *testing.M) {
	var err error
	workDir, err = os.MkdirTemp("", "mamori-e2e-work")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	if os.Getenv("MAMORI_E2E_KEEP") == "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// setup fetches the kernel, builds mamori and the initramfs, once.
func setup(t testing.TB) *env {
	t.Helper()
	setupOnce.Do(func() {
		start := time.Now()
		shared, setupErr = doSetup(t.Logf)
		if shared != nil {
			shared.Setup = time.Since(start)
		}
	})
	if setupErr != nil {
		t.Fatalf("e2e setup: %v", setupErr)
	}
	return shared
}

func doSetup(logf func(string, ...any)) (*env, error) {
	for _, tool := range []string{"qemu-system-x86_64", "mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found (run scripts/e2e-deps.sh): %w", tool, err)
		}
	}
	e := &env{Work: workDir}
	k, err := fetchKernel(logf)
	if err != nil {
		return nil, err
	}
	e.Kernel = k
	logf("kernel %s %s (%s)", k.Package, k.Version, k.Release)
	bb, err := findBusybox()
	if err != nil {
		return nil, err
	}
	sysdump := filepath.Join(e.Work, "e2e-sysdump")
	if err := goBuild(sysdump, "./e2e/sysdump", "e2e"); err != nil {
		return nil, err
	}
	e.Mamori, e.MamoriErr = buildMamori(e.Work)
	if e.MamoriErr != nil {
		logf("mamori did not build; agent scenarios will fail: %v", e.MamoriErr)
	}
	spec := initramfsSpec{Kernel: k, Busybox: bb, Mamori: e.Mamori, Sysdump: sysdump, Modules: guestModules,
		ModuleArgs: map[string]string{"usb_storage": "delay_use=0"}}
	e.Spec = spec
	e.Initramfs = filepath.Join(e.Work, "initramfs.cpio.gz")
	if err := buildInitramfs(e.Initramfs, spec); err != nil {
		return nil, err
	}
	return e, nil
}

// buildMamori builds the static agent from the repository root, or uses
// MAMORI_E2E_BIN.
func buildMamori(work string) (string, error) {
	if p := os.Getenv("MAMORI_E2E_BIN"); p != "" {
		if !isStaticELF(p) {
			return "", fmt.Errorf("MAMORI_E2E_BIN=%s is not a static ELF", p)
		}
		return p, nil
	}
	out := filepath.Join(work, "mamori")
	if err := goBuild(out, "./cmd/mamori", ""); err != nil {
		return "", err
	}
	return out, nil
}

// goBuild builds a static linux/amd64 binary from the repository root.
func goBuild(out, pkg, tags string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, tail(b, 20))
	}
	return nil
}

// boot starts a guest from the shared initramfs.
func boot(t testing.TB, e *env) *vm {
	t.Helper()
	return bootVM(t, vmOptions{Kernel: e.Kernel.Vmlinuz, Initramfs: e.Initramfs})
}

// makeStickImage writes a raw disk image of sizeMB with an MBR and one
// FAT partition (label) starting at 1 MiB, holding one small file.
func makeStickImage(path string, sizeMB int, label string) error {
	size := int64(sizeMB) << 20
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("size %s: %w", path, err)
	}
	const start = 2048 // sectors
	mbr := make([]byte, 512)
	p := mbr[446:462]
	p[0] = 0x00
	p[1], p[2], p[3] = 0xfe, 0xff, 0xff // CHS: use LBA
	p[4] = 0x0c                         // FAT32 LBA
	p[5], p[6], p[7] = 0xfe, 0xff, 0xff
	binary.LittleEndian.PutUint32(p[8:], start)
	binary.LittleEndian.PutUint32(p[12:], uint32(size/512-start))
	binary.LittleEndian.PutUint32(mbr[440:], 0x4d414d4f) // disk id
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		f.Close()
		return fmt.Errorf("write MBR %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if out, err := exec.Command("mkfs.vfat", "-n", label, "--offset", fmt.Sprint(start), path,
		fmt.Sprint((size-start*512)/1024)).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.vfat %s: %w: %s", path, err, out)
	}
	readme := filepath.Join(filepath.Dir(path), "README.TXT")
	if err := os.WriteFile(readme, []byte("mamori e2e test stick\r\n"), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", path, start*512), readme, "::README.TXT").CombinedOutput(); err != nil {
		return fmt.Errorf("mcopy to %s: %w: %s", path, err, out)
	}
	return nil
}

func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}
