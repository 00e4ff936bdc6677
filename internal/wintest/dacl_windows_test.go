package wintest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// othersMay reads path's DACL back (GetNamedSecurityInfoW) and tells
// whether anyone but SYSTEM, Administrators and this process's user may
// read or write its data. It errs towards yes: an allowing entry for any
// other SID counts, a denying one only for Everyone; under Wine, which
// makes the descriptor from the Unix mode, Everyone's entries are the
// "others" bits.
func othersMay(t *testing.T, path string) (read, write bool) {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo %s: %v", path, err)
	}
	t.Logf("%s: %s", path, sd)
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatalf("the DACL of %s: %v", path, err)
	}
	if dacl == nil {
		return true, true // a NULL DACL lets everyone do anything
	}
	trusted := map[string]bool{"S-1-5-18": true, "S-1-5-32-544": true, SelfSID(t): true}
	const (
		readBits  = windows.FILE_READ_DATA | windows.GENERIC_READ | windows.GENERIC_ALL
		writeBits = windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA | windows.GENERIC_WRITE | windows.GENERIC_ALL
	)
	var granted, denied windows.ACCESS_MASK
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			t.Fatalf("GetAce %d of %s: %v", i, path, err)
		}
		if ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0 {
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String()
		switch ace.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE:
			if !trusted[sid] {
				granted |= ace.Mask &^ denied
			}
		case windows.ACCESS_DENIED_ACE_TYPE:
			if sid == "S-1-1-0" {
				denied |= ace.Mask &^ granted
			}
		default:
			t.Fatalf("%s: entry %d of type %d, which this test cannot judge", path, i, ace.Header.AceType)
		}
	}
	return granted&readBits != 0, granted&writeBits != 0
}

// TestSetDACLRefuses: an SDDL that does not parse, or that holds no DACL
// (which would set a NULL DACL, everyone's), is refused naming the path,
// and the file keeps what it had.
func TestSetDACLRefuses(t *testing.T) {
	p := filepath.Join(TempDir(t), "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	PrivateFile(t, p)
	for _, sddl := range []string{"D:P(A;;FA;;;NOSUCH)", "O:SY", "nonsense"} {
		if err := setDACL(p, sddl); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), sddl) {
			t.Errorf("setDACL(%q) = %v, want a refusal naming the file and the SDDL", sddl, err)
		}
	}
	if r, w := othersMay(t, p); r || w {
		t.Errorf("after refused SDDLs others may read %v, write %v", r, w)
	}
}

// TestEveryoneSDDLRights: what EveryoneSDDL grants Everyone is read back
// as such: reading alone, or everything.
func TestEveryoneSDDLRights(t *testing.T) {
	p := filepath.Join(TempDir(t), "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	SetDACL(t, p, EveryoneSDDL(t, "FR"))
	if r, w := othersMay(t, p); !r || w {
		t.Errorf("EveryoneSDDL(FR): others may read %v, write %v; want read only", r, w)
	}
	SetDACL(t, p, EveryoneSDDL(t, "FA"))
	if r, w := othersMay(t, p); !r || !w {
		t.Errorf("EveryoneSDDL(FA): others may read %v, write %v; want both", r, w)
	}
}
