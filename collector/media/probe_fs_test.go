package media

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// needToolPkg is needTool with the Debian package named in the skip
// message, so that a skipped format says what to install.
func needToolPkg(t *testing.T, name, pkg string) string {
	t.Helper()
	skipLinuxTools(t, name)
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (Debian package %s, required in CI)", name, pkg)
	}
	t.Skipf("%s not installed (Debian package %s)", name, pkg)
	return ""
}

func runPkg(t *testing.T, name, pkg string, args ...string) {
	t.Helper()
	cmd := exec.Command(needToolPkg(t, name, pkg), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// makeFormatImage makes a small image of a format Probe knows besides the
// Windows ones and ext, with the real tool. It returns the image path.
func makeFormatImage(t *testing.T, format string) string {
	t.Helper()
	src := filepath.Join(wintest.TempDir(t), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	switch format {
	case "btrfs":
		img := sparseFile(t, 120<<20)
		runPkg(t, "mkfs.btrfs", "btrfs-progs", "-q", "-f", "-L", "usb", img)
		return img
	case "xfs":
		img := sparseFile(t, 300<<20)
		runPkg(t, "mkfs.xfs", "xfsprogs", "-q", "-f", "-L", "xlabel", img)
		return img
	case "f2fs":
		img := sparseFile(t, 64<<20)
		runPkg(t, "mkfs.f2fs", "f2fs-tools", "-q", "-f", "-l", "f2ラベル", img)
		return img
	case "f2fs-csum":
		img := sparseFile(t, 64<<20)
		runPkg(t, "mkfs.f2fs", "f2fs-tools", "-q", "-f", "-O", "sb_checksum", "-l", "csum", img)
		return img
	case "iso9660":
		img := filepath.Join(wintest.TempDir(t), "img")
		runPkg(t, "genisoimage", "genisoimage", "-quiet", "-V", "ISO_LABEL", "-J", "-o", img, src)
		return img
	case "udf":
		img := sparseFile(t, 8<<20)
		runPkg(t, "mkudffs", "udftools", "--label=UDFラベル", img)
		return img
	case "udf-2k":
		img := sparseFile(t, 8<<20)
		runPkg(t, "mkudffs", "udftools", "--blocksize=2048", "--label=Disc", img)
		return img
	case "squashfs":
		img := filepath.Join(wintest.TempDir(t), "img")
		runPkg(t, "mksquashfs", "squashfs-tools", src, img, "-quiet", "-noappend")
		return img
	case "swap":
		img := sparseFile(t, 8<<20)
		runPkg(t, "mkswap", "util-linux", "-q", "-L", "swlabel", img)
		return img
	}
	t.Fatalf("unknown format %s", format)
	return ""
}

// TestProbeMoreFormats: every format blkid names on a USB stick is named
// by Probe too, with the label and UUID blkid reads, so that a caller can
// tell a plain medium from one Probe did not look at.
func TestProbeMoreFormats(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   Info // UUID "*": checked against blkid
	}{
		{"btrfs", Info{Kind: KindFileSystem, FSType: FSBtrfs, Label: "usb", UUID: "*"}},
		{"xfs", Info{Kind: KindFileSystem, FSType: FSXFS, Label: "xlabel", UUID: "*"}},
		{"f2fs", Info{Kind: KindFileSystem, FSType: FSF2FS, Label: "f2ラベル", UUID: "*"}},
		{"f2fs-csum", Info{Kind: KindFileSystem, FSType: FSF2FS, Label: "csum", UUID: "*"}},
		{"iso9660", Info{Kind: KindFileSystem, FSType: FSISO9660, Label: "ISO_LABEL", UUID: "*"}},
		{"udf", Info{Kind: KindFileSystem, FSType: FSUDF, Label: "UDFラベル"}},
		{"udf-2k", Info{Kind: KindFileSystem, FSType: FSUDF, Label: "Disc"}},
		{"squashfs", Info{Kind: KindFileSystem, FSType: FSSquashFS}},
		{"swap", Info{Kind: KindOther, FSType: FSSwap, Label: "swlabel", UUID: "*"}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			img := makeFormatImage(t, tc.format)
			info, err := probeFile(t, img)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.UUID == "*" {
				if info.UUID == "" {
					t.Error("no UUID")
				}
				tc.want.UUID = info.UUID
			}
			if info != tc.want {
				t.Errorf("got %+v, want %+v", info, tc.want)
			}
			if info.Encrypted() {
				t.Error("plain format counted as encrypted")
			}
			if b := blkid(t, img); b != nil {
				typ, _, _ := strings.Cut(tc.format, "-")
				if b["TYPE"] != typ {
					t.Errorf("blkid TYPE %q, Probe %q", b["TYPE"], info.FSType)
				}
				if tc.format != "udf" && tc.format != "udf-2k" && b["UUID"] != info.UUID {
					t.Errorf("blkid UUID %q, Probe %q", b["UUID"], info.UUID)
				}
				if l := b["LABEL"]; !strings.Contains(l, "M-") && l != info.Label {
					t.Errorf("blkid LABEL %q, Probe %q", l, info.Label)
				}
			}
			// The same answer with the size unknown (a block device
			// whose size could not be read).
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if info2, err := Probe(f, 0); err != nil || info2 != info {
				t.Errorf("size 0: %+v, %v", info2, err)
			}
		})
	}
}

// TestProbeFormatsDamaged: a magic without the rest of its structure is
// not that format (blkid's checksum and geometry checks), and a damaged
// structure never panics.
func TestProbeFormatsDamaged(t *testing.T) {
	for _, tc := range []struct {
		format string
		off    int64 // a byte covered by the checksum or sanity check
	}{
		{"btrfs", 0x10000 + 0x12B},    // label byte: CRC32C mismatch
		{"xfs", 0x6C},                 // label byte: CRC32C mismatch (v5)
		{"f2fs-csum", 0x400 + 0x7C},   // label unit: f2fs CRC mismatch
		{"iso9660", 0x8000 + 156 + 2}, // root directory LBA
	} {
		t.Run(tc.format, func(t *testing.T) {
			b, err := os.ReadFile(makeFormatImage(t, tc.format))
			if err != nil {
				t.Fatal(err)
			}
			b[tc.off] ^= 0x55
			info, err := Probe(bytes.NewReader(b), int64(len(b)))
			if err != nil || info.Kind != KindUnknown {
				t.Errorf("%+v, %v", info, err)
			}
		})
	}
}

// TestProbeSeedImages: the stored images (fuzz seeds) probe as what made
// them, so the fuzzer starts from every format.
func TestProbeSeedImages(t *testing.T) {
	seeds := fuzzSeeds(t)
	for name, want := range map[string]Info{
		"btrfs.img":    {Kind: KindFileSystem, FSType: FSBtrfs, Label: "usb"},
		"xfs.img":      {Kind: KindFileSystem, FSType: FSXFS, Label: "xlabel"},
		"f2fs.img":     {Kind: KindFileSystem, FSType: FSF2FS, Label: "lab"},
		"iso9660.img":  {Kind: KindFileSystem, FSType: FSISO9660, Label: "ISO_LABEL"},
		"udf.img":      {Kind: KindFileSystem, FSType: FSUDF, Label: "UDFラベル"},
		"squashfs.img": {Kind: KindFileSystem, FSType: FSSquashFS},
		"swap.img":     {Kind: KindOther, FSType: FSSwap, Label: "swlabel"},
	} {
		b, ok := seeds[name]
		if !ok {
			t.Errorf("%s: no seed", name)
			continue
		}
		info, err := Probe(bytes.NewReader(b), int64(len(b)))
		info.UUID = ""
		if err != nil || info != want {
			t.Errorf("%s: %+v, %v", name, info, err)
		}
	}
}

// FuzzLabel: the label decoders never panic, always give valid UTF-8 and
// never make up a U+FFFD the input did not hold.
func FuzzLabel(f *testing.F) {
	for _, s := range []string{"\x83\x65\x83\x58\x83\x67", "\x05\xe5\xe5", "plain", "\xff\xfe\x00\xd8", "\x1b[31m", ""} {
		f.Add([]byte(s), 932)
		f.Add([]byte(s), 850)
	}
	f.Fuzz(func(t *testing.T, b []byte, cp int) {
		hasFFFD := bytes.Contains(b, []byte("\uFFFD"))
		u16 := utf16Units(b, false)
		for _, u := range u16 {
			if u == 0xFFFD {
				hasFFFD = true
			}
		}
		for _, out := range []string{utf8Label(b), codePageLabel(b, cp), utf16Label(u16), fatLabel(append(b, make([]byte, 11)...)[:11], cp)} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 %q", out)
			}
			if !hasFFFD && strings.ContainsRune(out, utf8.RuneError) {
				t.Fatalf("U+FFFD made up: %q from %q", out, b)
			}
		}
	})
}

// skipLinuxTools skips a test that makes its media with Linux tools
// (mkfs.*, cryptsetup, blkid) when it runs as a Windows binary (under
// Wine): Wine starts a Linux program but cannot wait for it, and gives it
// Windows paths. The same tests run on Linux; what they check is the
// probe, which is the same code on Windows.
func skipLinuxTools(t *testing.T, name string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skipf("%s is a Linux tool: this test runs on Linux", name)
	}
}
