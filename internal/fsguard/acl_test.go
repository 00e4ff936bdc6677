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
	const dir, file, anc = kindDir, kindFile, kindAncestor
	for _, c := range []struct {
		name string
		sddl string
		self trustSet
		kind sdKind
		want string // "" safe, else a part of the problem
	}{
		{"private dir", sddlPrivate, system, dir, ""},
		{"private dir on the way", sddlPrivate, system, anc, ""},
		{"the literal private DACL owned by Administrators", "O:BA" + PrivateDirSDDL, system, dir, ""},
		{"ProgramData on the way: Users may add, not delete", sddlProgramData, system, anc, ""},
		{"ProgramData itself as the state dir", sddlProgramData, system, dir, "S-1-5-32-545 (Users) write it"},
		{"installer's folder as the state dir", sddlInstallerDir, system, dir, "S-1-5-32-545 (Users) write it (access mask 0x116)"},
		{"installer's folder on the way to the config", sddlInstallerDir, system, anc, ""},
		{"a user's folder", sddlUserDir, system, dir, "is owned by S-1-5-21-1004336348-1177238915-682003330-1001"},
		{"a user's folder on the way", sddlUserDir, system, anc, "is owned by"},
		{"a user's folder, run as that user", sddlUserDir, trustSet{self: "S-1-5-21-1004336348-1177238915-682003330-1001"}, anc, ""},
		{"C: on the way", sddlDriveC, system, anc, ""},
		{"C: as the state dir", sddlDriveC, system, dir, "S-1-5-32-545 (Users) write it (access mask 0x4)"},
		{"C:'s inherit-only entry for Authenticated Users on the state dir", "O:BAD:PAI(A;OICI;FA;;;SY)(A;OICIIO;SDGXGWGR;;;AU)", system, dir,
			"passes on to what is created in it an entry that lets S-1-5-11 (Authenticated Users) write it and delete or rename it or what is in it (access mask 0xe0010000)"},
		{"Program Files on the way", sddlProgFile, system, anc, ""},
		{"Program Files itself: Users only read what is created", sddlProgFile, system, dir, ""},
		{"Everyone full control", "O:BAG:SYD:(A;OICI;FA;;;WD)", system, dir, "S-1-1-0 (Everyone) write it and delete or rename it or what is in it and change its ACL or owner (access mask 0x1f01ff)"},
		{"Everyone full control on a file", "O:BAG:SYD:(A;;FA;;;WD)", system, file, "S-1-1-0 (Everyone) write it"},
		{"Everyone full control on the way", "O:BAD:(A;OICI;FA;;;WD)", system, anc, "delete or rename what is in it"},
		{"Authenticated Users modify", "O:BAD:(A;;0x1301bf;;;AU)", system, file, "S-1-5-11 (Authenticated Users)"},
		{"Users may only write attributes", "O:BAD:(A;;0x120180;;;BU)", system, file, ""},
		{"Users may change the ACL", "O:BAD:(A;;WD;;;BU)", system, file, "change its ACL or owner"},
		{"generic write", "O:BAD:(A;;GW;;;IU)", system, file, "S-1-5-4 (Interactive) write it"},
		{"generic write on the way adds only", "O:BAD:(A;;GW;;;IU)", system, anc, ""},
		{"delete alone", "O:BAD:(A;;SD;;;BU)", system, file, "delete or rename it"},

		// Inherit-only entries grant nothing on the object itself, but
		// what the agent creates in a directory it keeps gets them.
		{"inherit-only full control for Everyone on the state dir", "O:SYD:(A;OICIIO;FA;;;WD)(A;;FA;;;SY)", system, dir, "passes on to what is created in it an entry that lets S-1-1-0 (Everyone) write it and delete or rename it or what is in it and change its ACL or owner (access mask 0x1f01ff)"},
		{"inherit-only full control for Everyone on a file", "O:SYD:(A;OICIIO;FA;;;WD)(A;;FA;;;SY)", system, file, ""},
		{"inherit-only full control for Everyone on the way", "O:SYD:(A;OICIIO;FA;;;WD)(A;;FA;;;SY)", system, anc, ""},
		{"inherit-only modify for Users, files only", "O:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OIIO;0x1301bf;;;BU)", system, dir, "an entry that lets S-1-5-32-545 (Users) write it and delete or rename it or what is in it (access mask 0x1301bf)"},
		{"inherit-only write for Users, folders only", "O:SYD:P(A;OICI;FA;;;SY)(A;CIIO;GW;;;BU)", system, dir, "an entry that lets S-1-5-32-545 (Users) write it (access mask 0x40000000)"},
		{"inherited, not inherit-only: judged on the object first", "O:SYD:P(A;OICI;FA;;;SY)(A;OI;0x116;;;BU)", system, dir, "S-1-5-32-545 (Users) write it (access mask 0x116)"},
		{"inherit-only read for Users is no write", "O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;GR;;;BU)", system, dir, ""},
		{"inherit-only for SYSTEM and Administrators", "O:SYD:P(A;OICIIO;GA;;;SY)(A;OICIIO;GA;;;BA)(A;;FA;;;SY)", system, dir, ""},
		{"creator owner inherit-only: the agent creates", "O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CO)", system, dir, ""},
		{"creator group inherit-only: the creator's primary group", "O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CG)", system, dir, "an entry that lets S-1-3-1 write it and delete or rename it or what is in it and change its ACL or owner (access mask 0x10000000)"},
		{"denied inherit-only entry is no grant", "O:SYD:P(A;OICI;FA;;;SY)(D;OICIIO;FA;;;WD)", system, dir, ""},
		{"inherit-only entry for this process's user", "O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;FA;;;" + wineUser + ")", trustSet{self: wineUser}, dir, ""},

		{"creator owner on the object matches no one", "O:SYD:(A;;FA;;;CO)", system, dir, ""},
		{"owner rights", "O:SYD:(A;;FA;;;OW)", system, dir, ""},
		{"denied entries do not excuse an allowed one", "O:BAD:(D;;FA;;;WD)(A;;FA;;;WD)", system, file, "Everyone"},
		{"denied entry alone", "O:BAD:(D;;FA;;;WD)(A;;FA;;;SY)", system, file, ""},
		{"callback entry counts", `O:BAD:(XA;;FA;;;WD;(WIN://SYSAPPID Contains "x"))`, system, file, "Everyone"},
		{"NULL DACL", "O:BAD:NO_ACCESS_CONTROL", system, dir, "NULL DACL"},
		{"no DACL part", "O:BAG:SY", system, anc, "NULL DACL"},
		{"empty DACL", "O:BAD:P", system, dir, ""},
		{"empty protected DACL then SACL", "O:BAD:PS:AI", system, dir, ""},
		{"owned by TrustedInstaller", "O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464D:(A;;FA;;;SY)", system, file, ""},
		{"no owner part", "D:(A;;FA;;;SY)", system, file, "is owned by (unknown)"},
		{"domain-relative owner unresolved", "O:LAD:(A;;FA;;;SY)", system, file, "is owned by ?LA"},
		{"Wine 0755, its user", sddlWine755, trustSet{self: wineUser}, dir, ""},
		{"Wine 0755 seen by SYSTEM", sddlWine755, system, anc, "is owned by S-1-5-21-0-0-0-1000"},
		{"Wine /tmp 1777 on the way", sddlWine1777, trustSet{self: wineUser}, anc, "S-1-1-0 (Everyone) delete or rename what is in it"},
		{"numeric rights in decimal", "O:BAD:(A;;278;;;BU)", system, file, "write it"},
		{"object entry", "O:BAD:(OA;;WP;bf967a7f-0de6-11d0-a285-00aa003049e2;;BU)", system, file, ""},
		{"audit entry is no grant", "O:BAD:(A;;FA;;;SY)S:(AU;SAFA;FA;;;WD)", system, file, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			sd, err := parseSDDL(c.sddl, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := judgeSD(sd, c.self, c.kind)
			switch {
			case c.want == "" && got != "":
				t.Errorf("judged unsafe: %s", got)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Errorf("judged %q, want it to say %q", got, c.want)
			}
		})
	}
}

// TestJudgeRead: who untrusted may read a token file or list the state
// directory, as mode 0600 and 0700 refuse on Unix.
func TestJudgeRead(t *testing.T) {
	system := trustSet{self: sidSystem}
	for _, c := range []struct {
		name string
		sddl string
		self trustSet
		kind sdKind
		want string
	}{
		{"private file", "O:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)", system, kindFile, ""},
		{"private file of this process's user", "O:" + wineUser + "D:(A;;FA;;;SY)(A;;FA;;;" + wineUser + ")", trustSet{self: wineUser}, kindFile, ""},
		{"a file in the old state dir: Users read", "O:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1200a9;;;BU)", system, kindFile, "is readable by S-1-5-32-545 (Users) (access mask 0x1200a9)"},
		{"Wine 0644: Everyone reads", "O:S-1-5-21-0-0-0-1000D:(A;;FA;;;SY)(A;;FA;;;S-1-5-21-0-0-0-1000)(A;;0x1200a9;;;WD)", trustSet{self: wineUser}, kindFile, "S-1-1-0 (Everyone)"},
		{"generic read", "O:SYD:(A;;GR;;;AU)", system, kindFile, "S-1-5-11 (Authenticated Users)"},
		{"generic all", "O:SYD:(A;;GA;;;IU)", system, kindFile, "S-1-5-4 (Interactive)"},
		{"extended attributes only", "O:SYD:(A;;0x8;;;BU)", system, kindFile, "Users"},
		{"execute and attributes only", "O:SYD:(A;;FX;;;BU)(A;;0x120080;;;WD)", system, kindFile, ""},
		{"write only is CheckFile's", "O:SYD:(A;;FW;;;BU)", system, kindFile, ""},
		{"inherit-only read on a file grants nothing", "O:SYD:(A;;FA;;;SY)(A;OICIIO;FR;;;BU)", system, kindFile, ""},
		{"inherit-only read on the state dir: what is created there", "O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;FR;;;BU)", system, kindDir, "passes on to what is created in it an entry that lets S-1-5-32-545 (Users) read it (access mask 0x120089)"},
		{"list the state dir", "O:SYD:P(A;OICI;FA;;;SY)(A;;0x1200a9;;;BU)", system, kindDir, "is readable by S-1-5-32-545 (Users)"},
		{"traverse the state dir only", "O:SYD:P(A;OICI;FA;;;SY)(A;;0x100020;;;BU)", system, kindDir, ""},
		{"the private DACL", "O:SY" + PrivateDirSDDL, system, kindDir, ""},
		{"creator owner", "O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CO)(A;;FA;;;CO)", system, kindDir, ""},
		{"creator group inherit-only", "O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;GR;;;CG)", system, kindDir, "S-1-3-1"},
		{"denied read alone", "O:SYD:(A;;FA;;;SY)(D;;FR;;;WD)", system, kindFile, ""},
		{"NULL DACL", "O:SYD:NO_ACCESS_CONTROL", system, kindFile, "readable by everyone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sd, err := parseSDDL(c.sddl, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := judgeRead(sd, c.self, c.kind)
			switch {
			case c.want == "" && got != "":
				t.Errorf("judged readable: %s", got)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Errorf("judged %q, want it to say %q", got, c.want)
			}
		})
	}
}

func TestOffenders(t *testing.T) {
	sd, err := parseSDDL("O:SYD:(A;;FA;;;SY)(A;;0x1200a9;;;BU)(A;OICIIO;FA;;;WD)(A;;FA;;;CO)(A;;FW;;;AU)(A;;FR;;;BU)", nil)
	if err != nil {
		t.Fatal(err)
	}
	system := trustSet{self: sidSystem}
	if got := strings.Join(offenders(sd, system, kindFile, readRights), " "); got != "S-1-5-32-545" {
		t.Errorf("file readers %q", got)
	}
	if got := strings.Join(offenders(sd, system, kindDir, unsafeSelf), " "); got != "S-1-1-0 S-1-5-11" {
		t.Errorf("dir writers %q", got)
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
	if p := judgeSD(sd, trustSet{self: sidSystem}, kindDir); p != "" {
		t.Fatalf("the private DACL is judged unsafe: %s", p)
	}
	if p := judgeRead(sd, trustSet{self: sidSystem}, kindDir); p != "" {
		t.Fatalf("the private DACL is judged readable: %s", p)
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
		for _, k := range []sdKind{kindFile, kindDir, kindAncestor} {
			judgeSD(sd, trustSet{self: sidSystem}, k)
			judgeSD(sd, trustSet{}, k)
			judgeRead(sd, trustSet{self: sidSystem}, k)
			offenders(sd, trustSet{}, k, readRights|unsafeSelf)
		}
	})
}
