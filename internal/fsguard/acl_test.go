package fsguard

import (
	"errors"
	"strings"
	"testing"
)

// Security descriptors as Windows writes them (icacls /save and
// Get-Acl's Sddl on Windows 10 and 11, Wine 8.0's from a prefix).
const (
	sddlProgramData = "O:SYG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICIIO;GA;;;CO)(A;OICI;0x1200a9;;;BU)(A;CI;DCLCRPCR;;;BU)"
	// A folder an installer (SYSTEM) made under ProgramData: inherited,
	// Users may add files to it.
	sddlInstallerDir = "O:BAG:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIIOID;GA;;;CO)(A;OICIID;0x1200a9;;;BU)(A;CIID;DCLCRPCR;;;BU)"
	// The same folder made by a user who got there first.
	sddlUserDir  = "O:S-1-5-21-1004336348-1177238915-682003330-1001G:S-1-5-21-1004336348-1177238915-682003330-513D:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIIOID;GA;;;CO)(A;OICIID;0x1200a9;;;BU)(A;CIID;DCLCRPCR;;;BU)"
	sddlDriveC   = "O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464G:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464D:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CO)(A;OICI;0x1200a9;;;BU)(A;CI;LC;;;BU)(A;CIIO;DC;;;BU)(A;OICIIO;SDGXGWGR;;;AU)(A;;LC;;;AU)"
	sddlProgFile = "O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464G:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464D:PAI(A;;FA;;;S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)(A;CIIO;GA;;;S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)(A;;0x1301bf;;;SY)(A;OICIIO;GA;;;SY)(A;;0x1301bf;;;BA)(A;OICIIO;GA;;;BA)(A;;0x1200a9;;;BU)(A;OICIIO;GXGR;;;BU)(A;OICIIO;GA;;;CO)(A;;0x1200a9;;;AC)(A;OICIIO;GXGR;;;AC)(A;;0x1200a9;;;S-1-15-2-2)(A;OICIIO;GXGR;;;S-1-15-2-2)"
	// The private state directory (PrivateDirSDDL) made by SYSTEM.
	sddlPrivate = "O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"
	// Wine 8.0 makes descriptors from Unix modes: 0755 and 1777 (/tmp).
	wineUser     = "S-1-5-21-0-0-0-1000"
	sddlWine755  = "O:S-1-5-21-0-0-0-1000G:S-1-5-21-0-0-0-513D:(A;OICI;FA;;;SY)(A;OICI;FA;;;S-1-5-21-0-0-0-1000)(A;OICI;0x1200a9;;;WD)"
	sddlWine1777 = "O:S-1-5-21-0-0-0-1000G:S-1-5-21-0-0-0-513D:(A;OICI;FA;;;SY)(A;OICI;FA;;;S-1-5-21-0-0-0-1000)(A;OICI;0x1301ff;;;WD)"
)

func TestJudgeSDDL(t *testing.T) {
	system := trustSet{self: sidSystem}
	for _, c := range []struct {
		name     string
		sddl     string
		self     trustSet
		ancestor bool
		want     string // "" safe, else a part of the problem
		loose    bool   // only the DACL is wrong (MkdirAll may make it private)
	}{
		{"private dir", sddlPrivate, system, false, "", false},
		{"private dir on the way", sddlPrivate, system, true, "", false},
		{"the literal private DACL owned by Administrators", "O:BA" + PrivateDirSDDL, system, false, "", false},
		{"ProgramData on the way: Users may add, not delete", sddlProgramData, system, true, "", false},
		{"ProgramData itself as the state dir", sddlProgramData, system, false, "S-1-5-32-545 (Users) write it", true},
		{"installer's folder as the state dir", sddlInstallerDir, system, false, "S-1-5-32-545 (Users) write it (access mask 0x116)", true},
		{"installer's folder on the way to the config", sddlInstallerDir, system, true, "", false},
		{"a user's folder", sddlUserDir, system, false, "is owned by S-1-5-21-1004336348-1177238915-682003330-1001", false},
		{"a user's folder on the way", sddlUserDir, system, true, "is owned by", false},
		{"a user's folder, run as that user", sddlUserDir, trustSet{self: "S-1-5-21-1004336348-1177238915-682003330-1001"}, true, "", false},
		{"C: on the way", sddlDriveC, system, true, "", false},
		{"Program Files on the way", sddlProgFile, system, true, "", false},
		{"Program Files itself", sddlProgFile, system, false, "", false},
		{"Everyone full control", "O:BAG:SYD:(A;OICI;FA;;;WD)", system, false, "S-1-1-0 (Everyone) write it and delete or rename it or what is in it and change its ACL or owner", true},
		{"Everyone full control on the way", "O:BAD:(A;OICI;FA;;;WD)", system, true, "delete or rename what is in it", true},
		{"Authenticated Users modify", "O:BAD:(A;;0x1301bf;;;AU)", system, false, "S-1-5-11 (Authenticated Users)", true},
		{"Users may only write attributes", "O:BAD:(A;;0x120180;;;BU)", system, false, "", false},
		{"Users may change the ACL", "O:BAD:(A;;WD;;;BU)", system, false, "change its ACL or owner", true},
		{"generic write", "O:BAD:(A;;GW;;;IU)", system, false, "S-1-5-4 (Interactive) write it", true},
		{"generic write on the way adds only", "O:BAD:(A;;GW;;;IU)", system, true, "", false},
		{"delete alone", "O:BAD:(A;;SD;;;BU)", system, false, "delete or rename it", true},
		{"inherit-only full control for Everyone", "O:SYD:(A;OICIIO;FA;;;WD)(A;;FA;;;SY)", system, false, "", false},
		{"creator owner on the object matches no one", "O:SYD:(A;;FA;;;CO)", system, false, "", false},
		{"owner rights", "O:SYD:(A;;FA;;;OW)", system, false, "", false},
		{"denied entries do not excuse an allowed one", "O:BAD:(D;;FA;;;WD)(A;;FA;;;WD)", system, false, "Everyone", true},
		{"denied entry alone", "O:BAD:(D;;FA;;;WD)(A;;FA;;;SY)", system, false, "", false},
		{"callback entry counts", `O:BAD:(XA;;FA;;;WD;(WIN://SYSAPPID Contains "x"))`, system, false, "Everyone", true},
		{"NULL DACL", "O:BAD:NO_ACCESS_CONTROL", system, false, "NULL DACL", true},
		{"no DACL part", "O:BAG:SY", system, true, "NULL DACL", true},
		{"empty DACL", "O:BAD:P", system, false, "", false},
		{"empty protected DACL then SACL", "O:BAD:PS:AI", system, false, "", false},
		{"owned by TrustedInstaller", "O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464D:(A;;FA;;;SY)", system, false, "", false},
		{"no owner part", "D:(A;;FA;;;SY)", system, false, "is owned by (unknown)", false},
		{"domain-relative owner unresolved", "O:LAD:(A;;FA;;;SY)", system, false, "is owned by ?LA", false},
		{"Wine 0755, its user", sddlWine755, trustSet{self: wineUser}, false, "", false},
		{"Wine 0755 seen by SYSTEM", sddlWine755, system, true, "is owned by S-1-5-21-0-0-0-1000", false},
		{"Wine /tmp 1777 on the way", sddlWine1777, trustSet{self: wineUser}, true, "S-1-1-0 (Everyone) delete or rename what is in it", true},
		{"numeric rights in decimal", "O:BAD:(A;;278;;;BU)", system, false, "write it", true},
		{"object entry", "O:BAD:(OA;;WP;bf967a7f-0de6-11d0-a285-00aa003049e2;;BU)", system, false, "", false},
		{"audit entry is no grant", "O:BAD:(A;;FA;;;SY)S:(AU;SAFA;FA;;;WD)", system, false, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sd, err := parseSDDL(c.sddl, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := judgeSD(sd, c.self, c.ancestor)
			switch {
			case c.want == "" && got != "":
				t.Errorf("judged unsafe: %s", got)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Errorf("judged %q, want it to say %q", got, c.want)
			}
			if l := looseDACLOnly(sd, c.self); l != c.loose && !c.ancestor {
				t.Errorf("looseDACLOnly = %v, want %v", l, c.loose)
			}
		})
	}
}

func TestParseSDDL(t *testing.T) {
	sd, err := parseSDDL(sddlInstallerDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sd.owner != sidAdministrators || sd.nullDACL || len(sd.aces) != 5 {
		t.Fatalf("parsed %+v", sd)
	}
	last := sd.aces[4]
	if last.typ != "A" || last.sid != "S-1-5-32-545" || last.mask != 0x116 || !last.has("CI") || !last.has("ID") || last.has("IO") {
		t.Errorf("last entry %+v", last)
	}
	if co := sd.aces[2]; co.sid != sidCreatorOwner || co.mask != rightGenericAll || !co.has("IO") {
		t.Errorf("creator owner entry %+v", co)
	}
	resolved, err := parseSDDL("O:LAD:(A;;FA;;;LA)", func(a string) (string, bool) {
		return "S-1-5-21-1-2-3-500", a == "LA"
	})
	if err != nil || resolved.owner != "S-1-5-21-1-2-3-500" || resolved.aces[0].sid != "S-1-5-21-1-2-3-500" {
		t.Errorf("resolved %+v, %v", resolved, err)
	}

	for _, bad := range []string{
		"X:BA", "O:", "O:b", "O:BAO:SY", "D:(A;;FA;;;SY", "D:(A;;FA;;)", "D:(;;FA;;;SY)", "D:(A;;ZZ;;;SY)",
		"D:(A;;F;;;SY)", "D:(A;C;FA;;;SY)", "D:(A;;0x1ffffffff;;;SY)", "D:(A;;0xzz;;;SY)", "D:junk(A;;FA;;;SY)",
		"D:(A;;FA;;;SY)junk", "O:BA:", strings.Repeat("D:", maxSDDL),
	} {
		if _, err := parseSDDL(bad, nil); !errors.Is(err, errSDDL) {
			t.Errorf("parseSDDL(%.40q) = %v, want errSDDL", bad, err)
		}
	}
}

func TestPrivateDirSDDLIsPrivate(t *testing.T) {
	sd, err := parseSDDL("O:SY"+PrivateDirSDDL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := judgeSD(sd, trustSet{self: sidSystem}, false); p != "" {
		t.Fatalf("the private DACL is judged unsafe: %s", p)
	}
	// Users read and traverse, nothing more.
	for _, a := range sd.aces {
		if a.sid == "S-1-5-32-545" && a.mask != 0x1200a9 {
			t.Errorf("Users get %#x", a.mask)
		}
		if !a.has("OI") || !a.has("CI") {
			t.Errorf("entry %+v is not inherited by files and folders", a)
		}
	}
}

func FuzzParseSDDL(f *testing.F) {
	for _, s := range []string{sddlProgramData, sddlInstallerDir, sddlUserDir, sddlDriveC, sddlProgFile, sddlPrivate,
		sddlWine755, "O:BAD:NO_ACCESS_CONTROL", `O:BAD:(XA;;FA;;;WD;(WIN://SYSAPPID Contains "x"))`, "O:BAD:PS:AI", "D:(A;;0x1;;;S-1-5-21-1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sd, err := parseSDDL(s, nil)
		if err != nil {
			if !errors.Is(err, errSDDL) {
				t.Fatalf("error %v does not wrap errSDDL", err)
			}
			return
		}
		judgeSD(sd, trustSet{self: sidSystem}, false)
		judgeSD(sd, trustSet{}, true)
	})
}
