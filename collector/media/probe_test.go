package media

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// ---- helpers -----------------------------------------------------------------

// chunkImage is a sparse image: the chunks read from a fixture, zeros
// elsewhere. It counts the bytes read through it.
type chunkImage struct {
	size   int64
	chunks []imgChunk
	read   int64
}

type imgChunk struct {
	off  int64
	data []byte
}

func (c *chunkImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > c.size-off {
		n = int(c.size - off)
	}
	clear(p[:n])
	for _, ch := range c.chunks {
		lo, hi := max(off, ch.off), min(off+int64(n), ch.off+int64(len(ch.data)))
		if lo < hi {
			copy(p[lo-off:hi-off], ch.data[lo-ch.off:hi-ch.off])
		}
	}
	c.read += int64(n)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func loadChunks(t testing.TB, name string) *chunkImage {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "bitlk", name+".chunks.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(zr)
	magic := make([]byte, 15)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "MAMORI-CHUNKS1\n" {
		t.Fatalf("%s: bad magic %q %v", name, magic, err)
	}
	img := &chunkImage{}
	if err := binary.Read(r, binary.LittleEndian, &img.size); err != nil {
		t.Fatal(err)
	}
	for {
		var off int64
		var n uint32
		if err := binary.Read(r, binary.LittleEndian, &off); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			t.Fatal(err)
		}
		img.chunks = append(img.chunks, imgChunk{off, data})
	}
	return img
}

// compactBitLocker moves the FVE metadata blocks of a fixture right after
// its first 8 KiB, so the whole volume fits in a small byte slice (fuzz
// seeds, mutation tests).
func compactBitLocker(t testing.TB, name string) []byte {
	img := loadChunks(t, name)
	head := append([]byte(nil), img.chunks[0].data...)
	at := 0xA0
	if string(head[3:11]) == "MSWIN4.1" {
		at = 0x1A8
	}
	out := head
	for i, ch := range img.chunks[1:] {
		binary.LittleEndian.PutUint64(out[at+16+8*i:], uint64(len(out)))
		out = append(out, ch.data...)
	}
	return out
}

// needTool finds a program; without it the test is skipped, except in CI
// where every test must run.
func needTool(t *testing.T, name string) string {
	t.Helper()
	skipLinuxTools(t, name)
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (required in CI)", name)
	}
	t.Skipf("%s not installed", name)
	return ""
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(needTool(t, name), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// sparseFile makes an empty file of the given size.
func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(wintest.TempDir(t), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func probeFile(t *testing.T, path string) (Info, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Probe(f, st.Size())
}

// blkid returns blkid's low-level probe of path, or nil when blkid is not
// installed outside CI.
func blkid(t *testing.T, path string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("blkid"); err != nil && os.Getenv("CI") != "true" {
		return nil
	}
	out, err := exec.Command(needTool(t, "blkid"), "-p", "-o", "export", path).Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
		t.Fatalf("blkid: %v", err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// ---- BitLocker (real images) -----------------------------------------------

func TestProbeBitLockerImages(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enc      string
		clearKey bool
	}{
		{"bitlk-aes-xts-128", EncryptionBitLocker, false},
		{"bitlk-aes-cbc-128-4k", EncryptionBitLocker, false},
		{"bitlk-aes-xts-128-eow", EncryptionBitLocker, false},
		{"bitlk-clearkey-aes-cbc-128", EncryptionNone, true},
		{"bitlk-togo-aes-xts-128", EncryptionBitLockerToGo, false},
		{"bitlk-togo-aes-cbc-128", EncryptionBitLockerToGo, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := loadChunks(t, tc.name)
			info, err := Probe(img, img.size)
			if err != nil {
				t.Fatal(err)
			}
			want := Info{Kind: KindCrypto, Encryption: tc.enc, FSType: FSBitLocker, ClearKey: tc.clearKey}
			if info != want {
				t.Errorf("got %+v, want %+v", info, want)
			}
			if info.Encrypted() == tc.clearKey {
				t.Errorf("Encrypted() = %v", info.Encrypted())
			}
			if img.read > MaxProbeRead {
				t.Errorf("read %d bytes", img.read)
			}
			// Unknown size: the same answer.
			if info2, err := Probe(img, 0); err != nil || info2 != info {
				t.Errorf("size 0: %+v, %v", info2, err)
			}
		})
	}
}

func TestProbeBitLockerDamaged(t *testing.T) {
	base := compactBitLocker(t, "bitlk-aes-xts-128")
	blockOff := func(b []byte, i int) int { return int(binary.LittleEndian.Uint64(b[0xB0+8*i:])) }
	probe := func(b []byte) (Info, error) { return Probe(bytes.NewReader(b), int64(len(b))) }

	if info, err := probe(base); err != nil || info.Encryption != EncryptionBitLocker {
		t.Fatalf("compact image: %+v, %v", info, err)
	}

	// First block damaged: the second copy decides.
	b := bytes.Clone(base)
	b[blockOff(b, 0)] = 'X'
	if info, err := probe(b); err != nil || info.Encryption != EncryptionBitLocker {
		t.Errorf("block 0 damaged: %+v, %v", info, err)
	}

	// All blocks damaged: a BitLocker header nobody can unlock is not
	// counted as encrypted, and the error names each block.
	for i := range 3 {
		b[blockOff(b, i)] = 'X'
	}
	info, err := probe(b)
	if info.Encryption != EncryptionNone || info.FSType != FSBitLocker || err == nil ||
		!strings.Contains(err.Error(), "block 2") || !strings.Contains(err.Error(), "no -FVE-FS- signature") {
		t.Errorf("all blocks damaged: %+v, %v", info, err)
	}

	// Metadata offsets past the end of the medium.
	b = bytes.Clone(base)
	for i := range 3 {
		binary.LittleEndian.PutUint64(b[0xB0+8*i:], 1<<40)
	}
	if info, err := probe(b); info.Encrypted() || err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("offsets past end: %+v, %v", info, err)
	}

	// Suspend protection by hand: turn the password VMK into a clear key
	// in every copy.
	b = bytes.Clone(base)
	for i := range 3 {
		entries := b[blockOff(b, i)+112:]
		for off := 0; ; {
			n := int(binary.LittleEndian.Uint16(entries[off:]))
			if n == 0 {
				break
			}
			if binary.LittleEndian.Uint16(entries[off+2:]) == fveEntryVMK {
				binary.LittleEndian.PutUint16(entries[off+fveVMKProtectionAt:], 0)
				break
			}
			off += n
		}
	}
	if info, err := probe(b); err != nil || info.Encrypted() || !info.ClearKey {
		t.Errorf("clear key set by hand: %+v, %v", info, err)
	}

	// An entry whose size runs past the metadata.
	b = bytes.Clone(base)
	for i := range 3 {
		binary.LittleEndian.PutUint16(b[blockOff(b, i)+112:], 0xFFF0)
	}
	if info, err := probe(b); info.Encrypted() || err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("entry size too large: %+v, %v", info, err)
	}

	// A plain FAT32 volume that is not To Go (no GUID) stays FAT.
	togo := compactBitLocker(t, "bitlk-togo-aes-xts-128")
	clear(togo[0x1A8:0x1B8])
	if info, _ := probe(togo); info.FSType == FSBitLocker || info.Encrypted() {
		t.Errorf("To Go without GUID: %+v", info)
	}
}

func TestParseFVEEntries(t *testing.T) {
	entry := func(size, typ, prot uint16) []byte {
		e := make([]byte, size)
		binary.LittleEndian.PutUint16(e, size)
		binary.LittleEndian.PutUint16(e[2:], typ)
		if int(size) >= fveMinVMKEntryLength {
			binary.LittleEndian.PutUint16(e[fveVMKProtectionAt:], prot)
		}
		return e
	}
	cat := func(es ...[]byte) []byte { return bytes.Join(es, nil) }
	for _, tc := range []struct {
		name    string
		in      []byte
		clear   bool
		wantErr string
	}{
		{"password vmk", cat(entry(64, 7, 0), entry(224, 2, 0x2000)), false, ""},
		{"clear key among others", cat(entry(224, 2, 0x2000), entry(160, 2, 0)), true, ""},
		{"padding after entries", cat(entry(224, 2, 0x0800), make([]byte, 40)), false, ""},
		{"no vmk", cat(entry(64, 7, 0)), false, "no volume master key"},
		{"empty", nil, false, "no volume master key"},
		{"entry too small", []byte{4, 0, 2, 0, 0, 0, 0, 0}, false, "size 4 out of range"},
		{"vmk too small", cat(entry(16, 2, 0)), false, "too small"},
		{"past end", cat(entry(64, 2, 0)[:40]), false, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear, err := parseFVEEntries(tc.in)
			if clear != tc.clear {
				t.Errorf("clear = %v", clear)
			}
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// ---- images made with real tools ---------------------------------------------

func TestProbeMkfs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int64
		tool  string
		args  []string // the image path is appended
		want  Info     // UUID checked against blkid when set to "*"
		blkid string   // blkid TYPE
	}{
		{"fat12", 1 << 20, "mkfs.vfat", []string{"-n", "MY STICK"}, Info{Kind: KindFileSystem, FSType: FSVFAT, Label: "MY STICK", UUID: "*"}, "vfat"},
		{"fat16", 32 << 20, "mkfs.vfat", []string{"-F", "16", "-n", "F16"}, Info{Kind: KindFileSystem, FSType: FSVFAT, Label: "F16", UUID: "*"}, "vfat"},
		{"fat32", 64 << 20, "mkfs.vfat", []string{"-F", "32", "-n", "CONTRACTOR"}, Info{Kind: KindFileSystem, FSType: FSVFAT, Label: "CONTRACTOR", UUID: "*"}, "vfat"},
		{"fat32 no label", 64 << 20, "mkfs.vfat", []string{"-F", "32"}, Info{Kind: KindFileSystem, FSType: FSVFAT, UUID: "*"}, "vfat"},
		{"exfat", 8 << 20, "mkfs.exfat", []string{"-L", "Données"}, Info{Kind: KindFileSystem, FSType: FSExFAT, Label: "Données", UUID: "*"}, "exfat"},
		{"exfat no label", 8 << 20, "mkfs.exfat", nil, Info{Kind: KindFileSystem, FSType: FSExFAT, UUID: "*"}, "exfat"},
		{"ext2", 4 << 20, "mkfs.ext2", []string{"-q", "-L", "e2"}, Info{Kind: KindFileSystem, FSType: FSExt2, Label: "e2", UUID: "*"}, "ext2"},
		{"ext3", 8 << 20, "mkfs.ext3", []string{"-q", "-L", "e3"}, Info{Kind: KindFileSystem, FSType: FSExt3, Label: "e3", UUID: "*"}, "ext3"},
		{"ext4", 8 << 20, "mkfs.ext4", []string{"-q", "-L", "backup"}, Info{Kind: KindFileSystem, FSType: FSExt4, Label: "backup", UUID: "*"}, "ext4"},
		{"ntfs", 16 << 20, "mkfs.ntfs", []string{"-F", "-Q", "-q", "-L", "Win Daten"}, Info{Kind: KindFileSystem, FSType: FSNTFS, Label: "Win Daten", UUID: "*"}, "ntfs"},
		{"ntfs 4k clusters 4k sectors", 16 << 20, "mkfs.ntfs", []string{"-F", "-Q", "-q", "-s", "4096", "-c", "4096", "-L", "big"}, Info{Kind: KindFileSystem, FSType: FSNTFS, Label: "big", UUID: "*"}, "ntfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := sparseFile(t, tc.size)
			run(t, tc.tool, append(tc.args, img)...)
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
			if b := blkid(t, img); b != nil {
				// blkid's export format mangles non-ASCII ("M-CM-)"): compare
				// ASCII labels only.
				label := b["LABEL"]
				if strings.Contains(label, "M-") {
					label = info.Label
				}
				if b["TYPE"] != tc.blkid || b["UUID"] != info.UUID || strings.ReplaceAll(label, `\ `, " ") != info.Label {
					t.Errorf("blkid says %v, Probe %+v", b, info)
				}
			}
		})
	}
}

func TestProbeLUKS(t *testing.T) {
	needTool(t, "cryptsetup")
	key := filepath.Join(wintest.TempDir(t), "key")
	if err := os.WriteFile(key, []byte("not a secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	format := func(t *testing.T, typ string, extra ...string) string {
		img := sparseFile(t, 20<<20)
		args := append([]string{"luksFormat", "-q", "--type", typ, "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
			"--key-file", key}, extra...)
		run(t, "cryptsetup", append(args, img)...)
		return img
	}
	t.Run("luks1", func(t *testing.T) {
		img := format(t, "luks1")
		info, err := probeFile(t, img)
		if err != nil || info.Encryption != EncryptionLUKS1 || info.FSType != FSLUKS || info.UUID == "" {
			t.Fatalf("%+v, %v", info, err)
		}
		if b := blkid(t, img); b != nil && (b["TYPE"] != "crypto_LUKS" || b["UUID"] != info.UUID || b["VERSION"] != "1") {
			t.Errorf("blkid %v", b)
		}
	})
	t.Run("luks2", func(t *testing.T) {
		img := format(t, "luks2", "--label", "secret\x1bstuff")
		info, err := probeFile(t, img)
		if err != nil || info.Encryption != EncryptionLUKS2 || info.Label != `secret\x1bstuff` || info.UUID == "" {
			t.Fatalf("%+v, %v", info, err)
		}
		if b := blkid(t, img); b != nil && (b["TYPE"] != "crypto_LUKS" || b["UUID"] != info.UUID || b["VERSION"] != "2") {
			t.Errorf("blkid %v", b)
		}
		// Wipe the primary header: the secondary still says LUKS2.
		f, err := os.OpenFile(img, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, 4096), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		info2, err := probeFile(t, img)
		if err != nil || info2.Encryption != EncryptionLUKS2 || info2.UUID != info.UUID {
			t.Errorf("primary wiped: %+v, %v", info2, err)
		}
	})
	t.Run("luks2 large metadata", func(t *testing.T) {
		img := format(t, "luks2", "--luks2-metadata-size", "64k")
		clearPrimary(t, img)
		if info, err := probeFile(t, img); err != nil || info.Encryption != EncryptionLUKS2 {
			t.Errorf("secondary at 64 KiB: %+v, %v", info, err)
		}
	})
}

func clearPrimary(t *testing.T, img string) {
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 512), 0); err != nil {
		t.Fatal(err)
	}
}

// TestProbeFATLabels edits FAT images by hand: hostile label bytes, the
// root-directory entry winning over the boot sector, and a label far down
// the FAT32 root directory chain.
func TestProbeFATLabels(t *testing.T) {
	img := sparseFile(t, 1<<20)
	run(t, "mkfs.vfat", "-n", "BOOTLABEL", img)
	base, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	rootDir := func(b []byte) int {
		bps := int(binary.LittleEndian.Uint16(b[0x0B:]))
		return (int(binary.LittleEndian.Uint16(b[0x0E:])) + int(b[0x10])*int(binary.LittleEndian.Uint16(b[0x16:]))) * bps
	}
	probe := func(b []byte) Info {
		t.Helper()
		info, err := Probe(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	rd := rootDir(base)
	if string(base[rd:rd+11]) != "BOOTLABEL  " {
		t.Fatalf("mkfs.vfat did not write a root label entry: %q", base[rd:rd+11])
	}

	b := bytes.Clone(base)
	copy(b[rd:], "ROOTLABEL  ")
	if got := probe(b).Label; got != "ROOTLABEL" {
		t.Errorf("root entry should win: %q", got)
	}

	// Shift-JIS bytes and the 0x05 lead-byte escape, read without a code
	// page: not UTF-8, so every byte that is not part of a character is
	// kept as \xNN (udev's ID_FS_LABEL_ENC form), never as U+FFFD or as a
	// raw escape character.
	b = bytes.Clone(base)
	copy(b[rd:], "\x05\x65\x83\x58\x83\x67   \x1b[")
	if got, want := probe(b).Label, `\xe5e\x83X\x83g   \x1b[`; got != want {
		t.Errorf("hostile label %q, want %q", got, want)
	}

	// Deleted and long-name entries before the label are skipped.
	b = bytes.Clone(base)
	copy(b[rd+64:], b[rd:rd+32])
	clear(b[rd : rd+64])
	b[rd] = 0xE5
	b[rd+32] = 0x41
	b[rd+32+11] = 0x0F
	if got := probe(b).Label; got != "BOOTLABEL" {
		t.Errorf("after deleted and LFN entries: %q", got)
	}

	// No root entry: no label, whatever the boot sector says (blkid since
	// util-linux 2.32, MS-DOS and Windows: Windows leaves a stale copy in
	// the boot sector when it removes a label).
	b = bytes.Clone(base)
	clear(b[rd : rd+32])
	copy(b[0x2B:], "OTHER      ")
	if got := probe(b).Label; got != "" {
		t.Errorf("boot sector label used: %q", got)
	}
	if bl := blkidBytes(t, b); bl != nil && (bl["LABEL"] != "" || bl["LABEL_FATBOOT"] != "OTHER") {
		t.Errorf("blkid %v", bl)
	}
	// "NO NAME" in the root directory is a label like any other there.
	b = bytes.Clone(base)
	copy(b[rd:], "NO NAME    ")
	if got := probe(b).Label; got != "NO NAME" {
		t.Errorf("NO NAME entry: %q", got)
	}
	// An entry with the volume attribute but a start cluster is no label.
	b = bytes.Clone(base)
	b[rd+26] = 5
	if got := probe(b).Label; got != "" {
		t.Errorf("entry with a cluster: %q", got)
	}

	// A root directory that says it is 65535 entries long on a 1 MiB
	// medium: an error, not a panic, and the boot-sector facts kept.
	b = bytes.Clone(base)
	binary.LittleEndian.PutUint16(b[0x11:], 0xFFFF)
	binary.LittleEndian.PutUint16(b[0x16:], 0xFFFF)
	info, err := Probe(bytes.NewReader(b), int64(len(b)))
	if err == nil || info.FSType != FSVFAT || info.UUID == "" {
		t.Errorf("huge root dir: %+v, %v", info, err)
	}
}

func TestProbeFAT32LabelInLaterCluster(t *testing.T) {
	img := sparseFile(t, 64<<20)
	run(t, "mkfs.vfat", "-F", "32", "-s", "1", "-n", "FARAWAY", img)
	// Fill the first root-directory cluster with files so the label entry
	// moves to a later cluster: easiest with mtools, else skip.
	if _, err := exec.LookPath("mcopy"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mtools not installed (required in CI)")
		}
		t.Skip("mtools not installed")
	}
	// Relabel after filling, so the new label entry is written at the end.
	src := filepath.Join(wintest.TempDir(t), "f")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		run(t, "mcopy", "-i", img, src, fmt.Sprintf("::/F%02d.TXT", i))
	}
	run(t, "mlabel", "-i", img, "-c")
	run(t, "mlabel", "-i", img, "::LATER")
	info, err := probeFile(t, img)
	if err != nil || info.Label != "LATER" {
		t.Errorf("%+v, %v", info, err)
	}
	if b := blkid(t, img); b != nil && b["LABEL"] != "LATER" {
		t.Errorf("blkid %v", b)
	}
}

func TestProbeNoSignature(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want Info
	}{
		{"zeros", make([]byte, 1<<20), Info{}},
		{"random-looking", bytes.Repeat([]byte{0x5a, 0xc3, 0x11, 0x9e}, 4096), Info{}},
		{"mbr", mbr(), Info{Kind: KindPartitionTable, PartitionTable: "dos"}},
		{"gpt", gpt(), Info{Kind: KindPartitionTable, PartitionTable: "gpt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Probe(bytes.NewReader(tc.b), int64(len(tc.b)))
			if err != nil || info != tc.want {
				t.Errorf("%+v, %v", info, err)
			}
		})
	}
	if _, err := Probe(bytes.NewReader(make([]byte, 100)), 100); err == nil {
		t.Error("100-byte medium: no error")
	}
}

func mbr() []byte {
	b := make([]byte, 64<<10)
	e := b[0x1BE:]
	e[0] = 0x80
	e[4] = 0x0C // FAT32 LBA
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], 100)
	b[510], b[511] = 0x55, 0xAA
	return b
}

func gpt() []byte {
	b := mbr()
	b[0x1BE+4] = 0xEE
	copy(b[512:], "EFI PART")
	return b
}

// TestProbeExFATNotMBR: an exFAT volume made on a whole disk ends its boot
// sector in 55 AA and has bytes where MBR partition entries would be; it
// must read as exFAT.
func TestProbeExFATNotMBR(t *testing.T) {
	img := sparseFile(t, 8<<20)
	run(t, "mkfs.exfat", "-L", "WHOLE", img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		t.Fatal("exFAT boot sector lacks 55 AA: test premise wrong")
	}
	// Make the partition-entry area look like a real entry as well.
	copy(b[0x1BE:], mbr()[0x1BE:0x1CE])
	info, err := Probe(bytes.NewReader(b), int64(len(b)))
	if err != nil || info.FSType != FSExFAT || info.PartitionTable != "" || info.Label != "WHOLE" {
		t.Errorf("%+v, %v", info, err)
	}
}

func TestProbeNTFSDamaged(t *testing.T) {
	base := testImage(t, "ntfs")
	if info, err := Probe(bytes.NewReader(base), int64(len(base))); err != nil || info.Label != "Win Daten" {
		t.Fatalf("undamaged: %+v, %v", info, err)
	}
	bps := int64(binary.LittleEndian.Uint16(base[0x0B:]))
	cluster := bps * int64(base[0x0D])
	rec := int64(binary.LittleEndian.Uint64(base[0x30:]))*cluster + 3*1024
	for _, tc := range []struct {
		name    string
		edit    func(b []byte)
		wantErr string
	}{
		{"torn write", func(b []byte) { b[rec+510] ^= 0xFF }, "update sequence mismatch"},
		{"no FILE", func(b []byte) { b[rec] = 'X' }, "no FILE signature"},
		{"usa count", func(b []byte) { binary.LittleEndian.PutUint16(b[rec+6:], 200) }, "update sequence"},
		{"attr length", func(b []byte) {
			a := rec + int64(binary.LittleEndian.Uint16(b[rec+0x14:]))
			binary.LittleEndian.PutUint32(b[a+4:], 0xFFFFFF00)
		}, "length"},
		{"mft far away", func(b []byte) { binary.LittleEndian.PutUint64(b[0x30:], 1<<40) }, "past the end"},
		{"record size", func(b []byte) { b[0x40] = 0xE0 }, "record size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(base)
			tc.edit(b)
			info, err := Probe(bytes.NewReader(b), int64(len(b)))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || info.FSType != FSNTFS {
				t.Errorf("%+v, %v", info, err)
			}
		})
	}
}

// ---- fuzz and benchmark ---------------------------------------------------

// fuzzSeeds returns small media of every kind Probe knows.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"mbr": mbr()[:4096], "gpt": gpt()[:4096],
		"luks2": append([]byte("LUKS\xba\xbe\x00\x02"), make([]byte, 600)...),
	}
	for _, n := range []string{"bitlk-aes-xts-128", "bitlk-clearkey-aes-cbc-128", "bitlk-togo-aes-xts-128"} {
		seeds[n] = compactBitLocker(t, n)
	}
	for _, p := range []string{"fat12.img", "exfat.img", "ext4.img", "ntfs.img", "btrfs.img", "xfs.img", "f2fs.img", "iso9660.img", "udf.img", "squashfs.img", "swap.img"} {
		b, err := os.ReadFile(filepath.Join("testdata", "images", p+".gz"))
		if err != nil {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		seeds[p] = raw
	}
	return seeds
}

func FuzzProbe(f *testing.F) {
	seeds := fuzzSeeds(f)
	names := make([]string, 0, len(seeds))
	for n := range seeds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f.Add(seeds[n])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		img := &chunkImage{size: int64(len(b)), chunks: []imgChunk{{0, b}}}
		info, err := Probe(img, int64(len(b)))
		if img.read > MaxProbeRead+headSize {
			t.Fatalf("read %d bytes", img.read)
		}
		if info.ClearKey && info.Encrypted() {
			t.Fatalf("clear key but encrypted: %+v", info)
		}
		if len(b) < 512 && err == nil {
			t.Fatal("short medium without error")
		}
		if !utf8.ValidString(info.Label) {
			t.Fatalf("label not valid UTF-8: %q", info.Label)
		}
		for _, r := range info.Label {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r) && r != 0x200d {
				t.Fatalf("label not sanitised: %q", info.Label)
			}
		}
		if info.Kind != kindOf(info) {
			t.Fatalf("kind %q for %+v", info.Kind, info)
		}
	})
}

func BenchmarkProbe(b *testing.B) {
	seeds := fuzzSeeds(b)
	for _, n := range []string{"bitlk-aes-xts-128", "fat12.img", "exfat.img", "ntfs.img", "ext4.img"} {
		img, ok := seeds[n]
		if !ok {
			continue
		}
		b.Run(n, func(b *testing.B) {
			r := bytes.NewReader(img)
			for b.Loop() {
				if _, err := Probe(r, int64(len(img))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// blkidBytes is blkid on an image held in memory.
func blkidBytes(t *testing.T, b []byte) map[string]string {
	t.Helper()
	p := filepath.Join(wintest.TempDir(t), "img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return blkid(t, p)
}
