package agent

import (
	"github.com/mamori-agent/mamori/internal/gztest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// gptReader lays out the card in the reader of encryptionConfig as a
// disk Windows partitioned: sda of 64 MiB whose first sectors are head
// (collector/media/testdata/gpt: msr16 for the GPT sgdisk made, partition
// 1 a 16 MiB Microsoft Reserved partition at sector 2048, partition 2
// basic data from 34816 to 131038; mbr16 for the same partitions in an
// MBR), sda1 all zero but for msrData at its start, sda2 a real LUKS2
// volume (cryptsetup). dev/sda, dev/sda1 and dev/sda2 are sparse files.
func gptReader(t *testing.T, head string, msrData []byte) *testEnv {
	t.Helper()
	cryptsetup := tool(t, "cryptsetup")
	e := newEnv(t, encryptionConfig, reader)
	link := filepath.Join(e.sysfs, "class/block/sda1")
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Dir(dir)
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sparse := func(name string, size int64, at int64, b []byte) string {
		t.Helper()
		p := filepath.Join(e.dev, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	classBlock := filepath.Join(e.sysfs, "class/block")
	symlink := func(target, name string) {
		t.Helper()
		rel, err := filepath.Rel(classBlock, target)
		if err == nil {
			err = os.Symlink(rel, filepath.Join(classBlock, name))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(disk, "size"), "131072\n")
	symlink(disk, "sda")
	for _, p := range []struct{ n, start, size int }{{1, 2048, 32768}, {2, 34816, 131038 - 34816 + 1}} {
		name := "sda" + strconv.Itoa(p.n)
		write(filepath.Join(disk, name, "partition"), strconv.Itoa(p.n)+"\n")
		write(filepath.Join(disk, name, "start"), strconv.Itoa(p.start)+"\n")
		write(filepath.Join(disk, name, "size"), strconv.Itoa(p.size)+"\n")
		if p.n == 2 {
			symlink(filepath.Join(disk, name), name)
		}
	}
	sparse("sda", 64<<20, 0, gptFixture(t, head))
	sparse("sda1", 32768*512, 0, msrData)
	img := sparse("sda2", (131038-34816+1)*512, 0, nil)
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("mamori test key"), 0o600)
	run(t, cryptsetup, "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", "--key-file", key, img)
	return e
}

func gptFixture(t *testing.T, name string) []byte {
	t.Helper()
	return gztest.Read(t, filepath.Join("..", "collector", "media", "testdata", "gpt", name+".head.gz"))
}

// TestRequireEncryptionReservedPartition: a disk Windows partitioned
// (GPT, a Microsoft Reserved partition as Windows leaves it, a LUKS2
// data partition) passes require_encryption on Linux: the reserved
// partition is no unit, as on Windows. The same reserved partition with
// data written at its start, or the same partitions in an MBR (no GPT
// type to tell them by), or a disk whose GPT cannot be read, fail it.
func TestRequireEncryptionReservedPartition(t *testing.T) {
	for _, tc := range []struct {
		name      string
		head      string
		msrData   []byte
		noDisk    bool
		violation bool
	}{
		{name: "zeroed reserved partition", head: "msr16"},
		{name: "data at the reserved partition's start", head: "msr16", msrData: []byte("exfiltrated"), violation: true},
		{name: "MBR disk", head: "mbr16", violation: true},
		{name: "whole disk unreadable", head: "msr16", noDisk: true, violation: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := gptReader(t, tc.head, tc.msrData)
			if tc.noDisk {
				os.Remove(filepath.Join(e.dev, "sda"))
			}
			r := e.start(Options{})
			if tc.violation {
				e.waitFor("media_unencrypted", func(rs []record) bool {
					return count(rs, TypeViolation, "8-1.4", KindMediaUnencrypted) == 1
				})
			}
			e.waitFor("rescans", func(rs []record) bool { return testutilRescans(r) >= 5 })
			r.stop(t)
			recs := e.records()
			want := 0
			if tc.violation {
				want = 1
			}
			if n := count(recs, TypeViolation, "", ""); n != want {
				t.Fatalf("want %d violations, got %d:\n%s", want, n, dump(recs))
			}
		})
	}
}
