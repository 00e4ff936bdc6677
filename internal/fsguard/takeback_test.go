package fsguard

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDecideFolder: what MkdirState does with a state folder that exists,
// from descriptors as Windows writes them.
func TestDecideFolder(t *testing.T) {
	system := trustSet{self: sidSystem}
	dir := func(sddl string) folderFacts {
		sd, err := parseSDDL(sddl, nil)
		if err != nil {
			t.Fatal(err)
		}
		return folderFacts{dir: true, sd: sd}
	}
	link := dir("O:SY" + PrivateDirSDDL)
	link.link = true
	file := dir("O:SY" + PrivateDirSDDL)
	file.dir = false
	unreadable := folderFacts{dir: true, sdErr: errors.New("Access is denied.")}
	for _, c := range []struct {
		name string
		f    folderFacts
		self trustSet
		want folderAction
		why  string
	}{
		{"made by the agent", dir("O:SY" + PrivateDirSDDL), system, folderKeep, ""},
		{"made by an administrator's run", dir("O:BA" + PrivateDirSDDL), system, folderKeep, ""},
		{"made by a user before the install", dir(sddlUserDir), system, folderTakeBack, "is owned by S-1-5-21-1004336348-1177238915-682003330-1001, not by SYSTEM"},
		{"a user's folder with a private DACL", dir("O:S-1-5-21-1-2-3-1001" + PrivateDirSDDL), system, folderTakeBack, "is owned by S-1-5-21-1-2-3-1001"},
		{"a user's folder, the agent run by that user", dir(sddlUserDir), trustSet{self: "S-1-5-21-1004336348-1177238915-682003330-1001"}, folderAdopt, "S-1-5-32-545 (Users) write it"},
		{"a junction", link, system, folderTakeBack, "junction"},
		{"a file", file, system, folderTakeBack, "is not a directory"},
		{"owner and DACL unreadable", unreadable, system, folderTakeBack, "cannot be read (Access is denied.)"},
		{"unresolved owner", dir("O:LAD:(A;;FA;;;SY)"), system, folderTakeBack, "is owned by ?LA"},
		{"NULL DACL", dir("O:BAD:NO_ACCESS_CONTROL"), system, folderTakeBack, "NULL DACL"},
		{"the installer's folder: Users read and add", dir(sddlInstallerDir), system, folderAdopt, "S-1-5-32-545 (Users) write it"},
		{"an earlier version's state folder: Users read", dir(sddlPrivate), system, folderAdopt, "is readable by S-1-5-32-545 (Users)"},
		{"Users may only traverse", dir("O:SYD:PAI(A;OICI;FA;;;SY)(A;;0x100020;;;BU)"), system, folderKeep, ""},
		{"Everyone full control", dir("O:BAD:(A;OICI;FA;;;WD)"), system, folderTakeBack, "lets S-1-1-0 (Everyone) delete or rename it or what is in it and change its ACL or owner (access mask 0x1f01ff): what is in it could have been replaced"},
		{"Users may delete what is in it", dir("O:SYD:P(A;OICI;FA;;;SY)(A;;DT;;;BU)"), system, folderTakeBack, "S-1-5-32-545 (Users) delete or rename"},
		{"Users may change the ACL", dir("O:SYD:P(A;OICI;FA;;;SY)(A;;WD;;;BU)"), system, folderTakeBack, "change its ACL or owner"},
		{"Users hold an unusual right", dir("O:SYD:P(A;OICI;FA;;;SY)(A;;0x1000000;;;BU)"), system, folderTakeBack, "do more than read it and add entries"},
		{"inherited by files: Users modify", dir("O:SYD:P(A;OICI;FA;;;SY)(A;OIIO;0x1301bf;;;BU)"), system, folderTakeBack, "passes on to the files created in it an entry that lets S-1-5-32-545 (Users) write it"},
		{"inherited by folders: Users delete", dir("O:SYD:P(A;OICI;FA;;;SY)(A;CIIO;SD;;;BU)"), system, folderTakeBack, "passes on to the folders created in it"},
		{"inherited by folders: Users add", dir("O:SYD:P(A;OICI;FA;;;SY)(A;CIIO;DCLC;;;BU)"), system, folderAdopt, "passes on to what is created in it"},
		{"inherited by files: Users read", dir("O:SYD:P(A;OICI;FA;;;SY)(A;OIIO;FR;;;BU)"), system, folderAdopt, "read it"},
		{"creator owner full control", dir("O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CO)"), system, folderKeep, ""},
		{"creator group full control", dir("O:SYD:P(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CG)"), system, folderTakeBack, "S-1-3-1"},
		{"denied entries are no grant", dir("O:SYD:P(A;OICI;FA;;;SY)(D;OICI;FA;;;WD)"), system, folderKeep, ""},
		{"Wine 0755 of this user", dir(sddlWine755), trustSet{self: wineUser}, folderAdopt, "is readable by S-1-1-0 (Everyone)"},
		{"Wine 0755 seen by SYSTEM", dir(sddlWine755), system, folderTakeBack, "is owned by S-1-5-21-0-0-0-1000"},
		{"Wine 1777", dir(sddlWine1777), trustSet{self: wineUser}, folderTakeBack, "S-1-1-0 (Everyone)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, why := decideFolder(c.f, c.self)
			if got != c.want || !strings.Contains(why, c.why) || (c.want != folderKeep && why == "") {
				t.Errorf("decideFolder = %v, %q; want %v, %q", got, why, c.want, c.why)
			}
		})
	}
}

func TestUntrustedName(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("JST", 9*3600))
	if got := untrustedName("mamori", now, 1); got != "mamori.untrusted-20260102T060405" {
		t.Errorf("first name %q", got)
	}
	if got := untrustedName("mamori", now, 3); got != "mamori.untrusted-20260102T060405-3" {
		t.Errorf("third name %q", got)
	}
}

func FuzzDecideFolder(f *testing.F) {
	for _, s := range []string{sddlProgramData, sddlInstallerDir, sddlUserDir, sddlPrivate, sddlWine1777, "O:BAD:NO_ACCESS_CONTROL"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sd, err := parseSDDL(s, nil)
		if err != nil {
			return
		}
		a, why := decideFolder(folderFacts{dir: true, sd: sd}, trustSet{self: sidSystem})
		if a != folderKeep && why == "" {
			t.Fatalf("%v without a reason", a)
		}
		if a == folderKeep && (judgeSD(sd, trustSet{self: sidSystem}, kindDir) != "" || judgeRead(sd, trustSet{self: sidSystem}, kindDir) != "") {
			t.Fatalf("kept a folder the judges refuse: %q", s)
		}
	})
}

// TestAlternateName: the alternate folder's name is the state folder's,
// the tag, the time in UTC and 16 hex digits; isAlternateName takes
// exactly that shape (any case of the base, as Windows names go) and
// nothing else: not a folder taken back, not a name a few characters
// off.
func TestAlternateName(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("JST", 9*3600))
	rnd := [8]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	got := alternateName("mamori", now, rnd)
	if got != "mamori.alternate-20260102T060405-0123456789abcdef" {
		t.Fatalf("alternateName = %q", got)
	}
	if !isAlternateName("mamori", got) || !isAlternateName("MAMORI", got) || !isAlternateName("mamori", "Mamori"+got[6:]) {
		t.Errorf("isAlternateName refuses %q", got)
	}
	for _, n := range []string{
		"mamori",
		"mamori.untrusted-20260102T060405",
		"mamori.alternate-20260102T060405",
		"mamori.alternate-20260102T060405-0123456789abcde",
		"mamori.alternate-20260102T060405-0123456789abcdef0",
		"mamori.alternate-20260102T060405-0123456789ABCDEF",
		"mamori.alternate-20260102T060405-0123456789abcdeg",
		"mamori.alternate-20260102T060405_0123456789abcdef",
		"mamori.alternate-20261302T060405-0123456789abcdef",
		"mamori.alternate-2026010ZT060405-0123456789abcdef",
		"mamorx.alternate-20260102T060405-0123456789abcdef",
		"mamori.ALTERNATE-20260102T060405-0123456789abcdef",
		"other.alternate-20260102T060405-0123456789abcdef",
		"mamori2.alternate-20260102T060405-0123456789abcde",
		"",
	} {
		if isAlternateName("mamori", n) {
			t.Errorf("isAlternateName(%q) = true", n)
		}
	}
}

// TestNewestAlternates: the names of alternate folders, newest first by
// the time in them whatever the case of the base, others left out, at
// most max.
func TestNewestAlternates(t *testing.T) {
	names := []string{
		"mamori.alternate-20260102T060405-0000000000000002",
		"ProgramData-junk",
		"MAMORI.alternate-20270102T060405-0000000000000001",
		"mamori.untrusted-20280102T060405",
		"mamori.alternate-20250102T060405-ffffffffffffffff",
		"mamori",
	}
	got, more := newestAlternates("mamori", names, 10)
	want := []string{names[2], names[0], names[4]}
	if !slices.Equal(got, want) || more {
		t.Errorf("newestAlternates = %v, %v; want %v, false", got, more, want)
	}
	got, more = newestAlternates("mamori", names, 2)
	if !slices.Equal(got, want[:2]) || !more {
		t.Errorf("newestAlternates(max 2) = %v, %v; want %v, true", got, more, want[:2])
	}
	if got, more := newestAlternates("mamori", nil, 2); len(got) != 0 || more {
		t.Errorf("newestAlternates(none) = %v, %v", got, more)
	}
}

// TestFindingString: a finding reads as one line, the path, why it is
// not trusted and what was done.
func TestFindingString(t *testing.T) {
	f := Finding{Path: `C:\ProgramData\mamori`, Problem: "is owned by S-1-5-21-1-2-3-1001", Done: `moved aside unread to C:\ProgramData\mamori.untrusted-20260102T060405`}
	if got, want := f.String(), `C:\ProgramData\mamori is owned by S-1-5-21-1-2-3-1001; moved aside unread to C:\ProgramData\mamori.untrusted-20260102T060405`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
