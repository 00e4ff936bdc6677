package media

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/internal/wintest"
)

func TestParseMountInfo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []Mount
		wantErr string // substring; "" means no error
	}{
		{
			name: "root ext4 of this machine",
			in:   "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534\n",
			want: []Mount{{ID: 26, ParentID: 1, MajorMinor: "254:0", Root: "/", MountPoint: "/",
				Options: []string{"rw", "relatime"}, FSType: "ext4", Source: "/dev/vda",
				SuperOptions: []string{"rw", "discard", "resv_strict", "resuid=65534", "resgid=65534"}}},
		},
		{
			name: "usb stick in the VM, vfat",
			in:   "30 1 8:1 / /mnt rw,relatime - vfat /dev/sda1 rw,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro\n",
			want: []Mount{{ID: 30, ParentID: 1, MajorMinor: "8:1", Root: "/", MountPoint: "/mnt",
				Options: []string{"rw", "relatime"}, FSType: "vfat", Source: "/dev/sda1",
				SuperOptions: []string{"rw", "fmask=0022", "dmask=0022", "codepage=437", "iocharset=ascii", "shortname=mixed", "errors=remount-ro"}}},
		},
		{
			name: "optional fields and escapes, udisks mount of a label with space, tab, newline, backslash",
			in:   `412 29 8:17 / /media/user/MY\040STICK\011x\012y\134z ro,nosuid,nodev shared:330 master:1 - exfat /dev/sdb1 ro,fmask=0022` + "\n",
			want: []Mount{{ID: 412, ParentID: 29, MajorMinor: "8:17", Root: "/", MountPoint: "/media/user/MY STICK\tx\ny\\z",
				Options: []string{"ro", "nosuid", "nodev"}, Optional: []string{"shared:330", "master:1"},
				FSType: "exfat", Source: "/dev/sdb1", SuperOptions: []string{"ro", "fmask=0022"}}},
		},
		{
			name: "fuse subtype, no source options",
			in:   "50 26 0:45 / /home/u/remote rw,nosuid,nodev,relatime - fuse.sshfs u@h:/ \n",
			want: []Mount{{ID: 50, ParentID: 26, MajorMinor: "0:45", Root: "/", MountPoint: "/home/u/remote",
				Options: []string{"rw", "nosuid", "nodev", "relatime"}, FSType: "fuse.sshfs", Source: "u@h:/"}},
		},
		{
			name: "tmpfs with a name that looks like an option separator",
			in:   "27 26 0:24 / /mnt/x ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755",
			want: []Mount{{ID: 27, ParentID: 26, MajorMinor: "0:24", Root: "/", MountPoint: "/mnt/x",
				Options: []string{"ro", "nosuid", "nodev", "relatime"}, FSType: "tmpfs", Source: "model_tools_unavailable",
				SuperOptions: []string{"ro", "size=4k", "mode=755"}}},
		},
		{
			name: "bad escapes are kept literally",
			in:   `1 0 8:1 / /a\9b\04\400 rw - vfat /dev/sda1 rw`,
			want: []Mount{{ID: 1, ParentID: 0, MajorMinor: "8:1", Root: "/", MountPoint: `/a\9b\04\400`,
				Options: []string{"rw"}, FSType: "vfat", Source: "/dev/sda1", SuperOptions: []string{"rw"}}},
		},
		{name: "empty", in: ""},
		{name: "blank lines", in: "\n\n  \n"},
		{name: "too few fields", in: "1 2 8:1 /", wantErr: "line 1: 4 fields"},
		{name: "no separator", in: "1 2 8:1 / /mnt rw shared:1 vfat /dev/sda1 rw", wantErr: `line 1: no "-"`},
		{name: "separator too early", in: "1 2 8:1 / - rw vfat /dev/sda1 rw", wantErr: `line 1: no "-"`},
		{name: "too many after separator", in: "1 2 8:1 / /mnt rw - vfat /dev/sda1 rw extra", wantErr: "4 fields after"},
		{name: "too few after separator", in: "1 2 8:1 / /mnt rw - vfat /dev/sda1", wantErr: "2 fields after"},
		{name: "bad id", in: "x 2 8:1 / /mnt rw - vfat /dev/sda1 rw", wantErr: "mount ID"},
		{name: "negative parent", in: "1 -2 8:1 / /mnt rw - vfat /dev/sda1 rw", wantErr: "parent ID"},
		{name: "huge id", in: "99999999999999999999 2 8:1 / /mnt rw - vfat /dev/sda1 rw", wantErr: "mount ID"},
		{name: "bad major:minor", in: "1 2 8-1 / /mnt rw - vfat /dev/sda1 rw", wantErr: "major:minor"},
		{name: "hex major:minor", in: "1 2 8:a / /mnt rw - vfat /dev/sda1 rw", wantErr: "major:minor"},
		{name: "double space", in: "1 2 8:1 /  /mnt rw - vfat /dev/sda1 rw", wantErr: "empty root or mount point"},
		{name: "empty fstype", in: "1 2 8:1 / /mnt rw -  /dev/sda1 rw", wantErr: "empty file-system type"},
		{name: "empty optional field", in: "1 2 8:1 / /mnt rw shared:1  - vfat /dev/sda1 rw", wantErr: "empty optional"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMountInfo([]byte(tc.in))
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseMountInfoKeepsGoodLines(t *testing.T) {
	in := "21 26 0:20 / /proc rw,relatime - proc proc rw\n" +
		"garbage\n" +
		"30 1 8:1 / /mnt ro,relatime - vfat /dev/sda1 rw\n" +
		"1 2 3\n"
	got, err := parseMountInfo([]byte(in))
	if len(got) != 2 || got[0].MountPoint != "/proc" || got[1].MountPoint != "/mnt" {
		t.Fatalf("good lines not kept: %+v", got)
	}
	if err == nil || !strings.Contains(err.Error(), "line 2:") || !strings.Contains(err.Error(), "line 4:") {
		t.Fatalf("error %v does not name lines 2 and 4", err)
	}
	if !got[1].ReadOnly() || got[0].ReadOnly() {
		t.Errorf("ReadOnly wrong: %v %v", got[0].ReadOnly(), got[1].ReadOnly())
	}
}

func TestParseMountInfoCapsErrors(t *testing.T) {
	in := strings.Repeat("bad\n", 1000)
	_, err := parseMountInfo([]byte(in))
	if err == nil || !strings.Contains(err.Error(), "990 more bad lines") {
		t.Fatalf("error = %v", err)
	}
	if n := strings.Count(err.Error(), "\n"); n > maxMountInfoErrors+1 {
		t.Errorf("error has %d lines", n)
	}
}

func TestReadMountInfo(t *testing.T) {
	// This machine's own mountinfo: it must parse without a single bad line.
	if _, err := os.Stat("/proc/self/mountinfo"); err == nil {
		got, err := ReadMountInfo("/proc")
		if err != nil {
			t.Fatal(err)
		}
		var root bool
		for _, m := range got {
			root = root || m.MountPoint == "/"
		}
		if !root {
			t.Errorf("no / among %d mounts", len(got))
		}
	}
	dir := wintest.TempDir(t)
	if _, err := ReadMountInfo(dir); err == nil || !strings.Contains(err.Error(), "read "+safe.String(filepath.Join(dir, "self", "mountinfo"))) {
		t.Errorf("missing file: error = %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "self", "mountinfo"), []byte("30 1 8:1 / /mnt rw - vfat /dev/sda1 rw\nbad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMountInfo(dir)
	if len(got) != 1 || err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("got %v, %v", got, err)
	}
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add([]byte("26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"))
	f.Add([]byte(`412 29 8:17 / /media/user/MY\040STICK ro,nosuid shared:330 master:1 - exfat /dev/sdb1 ro` + "\n"))
	f.Add([]byte("1 2 8:1 / /mnt rw - vfat /dev/sda1 rw extra\n\\\\\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, _ := parseMountInfo(b)
		for _, m := range mounts {
			if m.FSType == "" || m.MountPoint == "" || !validMajorMinor(m.MajorMinor) {
				t.Fatalf("accepted a bad mount: %+v", m)
			}
		}
	})
}
