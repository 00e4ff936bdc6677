package fsguard

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Windows access control, judged the way CheckDir and CheckFile judge
// Unix modes: who may change a file or directory, and so what the agent
// reads and writes as SYSTEM. The judging is pure (a security descriptor
// in SDDL text, parsed into secDesc) so that it is tested on every OS
// with descriptors as Windows writes them; check_windows.go reads them
// from the file system (GetNamedSecurityInfo, then SDDL).

// PrivateDirSDDL is the DACL of a private directory (the agent's state
// directory under %ProgramData%): protected from inheritance, full
// control for SYSTEM and Administrators and nothing for anyone else (the
// audit log, the report queue and a hub token kept there are not for
// users to read, as the 0700 state directory on Linux), inherited by
// everything below. MkdirAll gives it to a directory it
// creates (and to the process's own user, when that is neither).
const PrivateDirSDDL = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// Well-known SIDs that may own and change what the agent trusts, besides
// the process's own user.
const (
	sidSystem         = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
	sidTrustedInstall = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
	// CREATOR OWNER and CREATOR GROUP stand for the creator in ACEs that
	// are inherited; an ACE of theirs on an object itself matches no one.
	sidCreatorOwner = "S-1-3-0"
	sidCreatorGroup = "S-1-3-1"
	// OWNER RIGHTS is the owner, who is trusted already or refused.
	sidOwnerRights = "S-1-3-4"
)

// File and standard access rights (winnt.h) that matter here.
const (
	rightReadData    = 0x1 // FILE_READ_DATA, FILE_LIST_DIRECTORY
	rightWriteData   = 0x2 // FILE_WRITE_DATA, FILE_ADD_FILE
	rightAppendData  = 0x4 // FILE_APPEND_DATA, FILE_ADD_SUBDIRECTORY
	rightReadEA      = 0x8 // FILE_READ_EA: extended attributes hold data too
	rightDeleteChild = 0x40
	rightDelete      = 0x10000
	rightWriteDAC    = 0x40000
	rightWriteOwner  = 0x80000
	rightGenericAll  = 0x10000000
	rightGenericWr   = 0x40000000
	rightGenericRd   = 0x80000000
)

// unsafeSelf are the rights that let their holder change a file's content
// or a directory's entries, replace it, or give itself those rights.
const unsafeSelf = rightWriteData | rightAppendData | rightDeleteChild | rightDelete |
	rightWriteDAC | rightWriteOwner | rightGenericAll | rightGenericWr

// unsafeAncestor are the rights on a directory on the way that let their
// holder replace what lies below it: delete or rename entries, or take
// the directory over. Adding entries alone is allowed, as a sticky /tmp
// is on Unix: %ProgramData% and C:\ let Users create folders.
const unsafeAncestor = rightDeleteChild | rightDelete | rightWriteDAC | rightWriteOwner | rightGenericAll

// readRights are the rights that let their holder read a file's content
// (or list a directory): what a private file (a token, a key) grants no
// one untrusted, as mode 0600 on Unix. GENERIC_EXECUTE maps to
// FILE_GENERIC_EXECUTE, which reads no data.
const readRights = rightReadData | rightReadEA | rightGenericRd | rightGenericAll

// ACE flags (SDDL): OI and CI make an entry inherited by files and
// folders created below, IO makes it apply to them only (not to the
// object that holds it).
const (
	aceObjectInherit    = "OI"
	aceContainerInherit = "CI"
	aceInheritOnly      = "IO"
)

// secDesc is a security descriptor as judged: the owner's SID and the
// DACL's entries. nullDACL is a missing DACL, which grants everyone
// everything.
type secDesc struct {
	owner    string // "S-1-5-18", or an unresolved alias "?XX"
	nullDACL bool
	aces     []ace
}

// ace is one access control entry.
type ace struct {
	typ   string // "A" allowed, "D" denied, "XA" callback allowed, ...
	flags []string
	mask  uint32
	sid   string
}

func (a ace) has(flag string) bool {
	for _, f := range a.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// grants reports whether the entry grants rights to someone: an allowed
// entry (plain, object or callback), whether on the object or inherited
// by what is created in it. Denied entries are not subtracted: the judge
// errs towards refusing.
func (a ace) grants() bool {
	switch a.typ {
	case "A", "OA", "XA", "ZA":
		return true
	}
	return false
}

// allows reports whether the entry grants rights on the object itself:
// an allowed entry that is not inherit-only (IO). An inherit-only entry
// grants nothing on the object; what it gives the files and folders
// created in it is judged by judgeSD for a directory (inherits).
func (a ace) allows() bool { return a.grants() && !a.has(aceInheritOnly) }

// inherits reports whether the entry is inherited by files or folders
// created in the directory that holds it (OI or CI, inherit-only or not).
func (a ace) inherits() bool {
	return a.grants() && (a.has(aceObjectInherit) || a.has(aceContainerInherit))
}

// trustSet is who may own and change what the agent trusts: SYSTEM,
// Administrators, TrustedInstaller and the process's own user.
type trustSet struct{ self string }

func (t trustSet) trusted(sid string) bool {
	switch sid {
	case sidSystem, sidAdministrators, sidTrustedInstall, sidOwnerRights:
		return true
	}
	return t.self != "" && sid == t.self
}

// ignored reports SIDs whose entries on an object match no one.
func ignored(sid string) bool { return sid == sidCreatorOwner || sid == sidCreatorGroup }

// inheritedByTrusted reports whether an inheritable entry for sid goes to
// someone trusted on what is created: CREATOR OWNER becomes the creator,
// which in a directory the agent keeps is the agent. CREATOR GROUP
// becomes the creator's primary group, which for an administrator's
// "mamori run" is "None" or "Domain Users" (every user): not trusted.
func inheritedByTrusted(sid string, t trustSet) bool {
	return t.trusted(sid) || sid == sidCreatorOwner
}

// sdKind is what judgeSD judges a descriptor as.
type sdKind int

const (
	// kindFile is a file checked (a config, a token, a binary).
	kindFile sdKind = iota
	// kindDir is a directory checked (the state directory): its own
	// rights, and those its inheritable entries give the files and
	// folders created in it.
	kindDir
	// kindAncestor is a directory on the way: adding entries is allowed,
	// and its inheritable entries are judged where they land (the next
	// directory on the way has its own DACL).
	kindAncestor
)

// judgeSD says what is wrong with sd for an object the agent trusts,
// judged as kind. It returns "" when nothing is, else the problem in words
// for an UnsafeError ("is owned by S-1-5-21-...", "lets S-1-5-32-545
// (Users) write it (access mask 0x116)"). An inherit-only entry (IO)
// grants nothing on the object itself; on a directory checked (kindDir)
// every inheritable entry (OI or CI) is judged as the rights it will give
// on what the agent creates there.
func judgeSD(sd secDesc, t trustSet, kind sdKind) string {
	if !t.trusted(sd.owner) {
		return fmt.Sprintf("is owned by %s, not by SYSTEM, Administrators, TrustedInstaller or this process's user (%s)", describeSID(sd.owner), describeSID(t.self))
	}
	if sd.nullDACL {
		return "has no DACL (a NULL DACL lets everyone do everything)"
	}
	bad := uint32(unsafeSelf)
	if kind == kindAncestor {
		bad = unsafeAncestor
	}
	for _, a := range sd.aces {
		if !a.allows() || t.trusted(a.sid) || ignored(a.sid) {
			continue
		}
		if m := a.mask & bad; m != 0 {
			return fmt.Sprintf("lets %s %s (access mask %#x)", describeSID(a.sid), rightsWords(m, kind == kindAncestor), a.mask)
		}
	}
	if kind == kindDir {
		for _, a := range sd.aces {
			if !a.inherits() || inheritedByTrusted(a.sid, t) {
				continue
			}
			if m := a.mask & unsafeSelf; m != 0 {
				return fmt.Sprintf("passes on to what is created in it an entry that lets %s %s (access mask %#x)", describeSID(a.sid), rightsWords(m, false), a.mask)
			}
		}
	}
	return ""
}

// judgeRead says who untrusted may read the object sd describes (a file
// for kindFile; a directory's list of entries and, through its
// inheritable entries, what is created in it for kindDir): "" when no one
// may, else the problem in words ("is readable by S-1-5-32-545 (Users)
// (access mask 0x1200a9)"). The owner and who may change the object are
// judgeSD's; a NULL DACL lets everyone read.
func judgeRead(sd secDesc, t trustSet, kind sdKind) string {
	if sd.nullDACL {
		return "is readable by everyone (it has no DACL: a NULL DACL lets everyone do everything)"
	}
	for _, a := range sd.aces {
		if !a.allows() || t.trusted(a.sid) || ignored(a.sid) {
			continue
		}
		if a.mask&readRights != 0 {
			return fmt.Sprintf("is readable by %s (access mask %#x)", describeSID(a.sid), a.mask)
		}
	}
	if kind == kindDir {
		for _, a := range sd.aces {
			if !a.inherits() || inheritedByTrusted(a.sid, t) {
				continue
			}
			if a.mask&readRights != 0 {
				return fmt.Sprintf("passes on to what is created in it an entry that lets %s read it (access mask %#x)", describeSID(a.sid), a.mask)
			}
		}
	}
	return ""
}

// offenders are the SIDs that sd, judged as kind, lets someone untrusted
// hold any of mask by: entries on the object itself and, for a directory
// checked, inheritable ones. An icacls fix removes them.
func offenders(sd secDesc, t trustSet, kind sdKind, mask uint32) []string {
	var out []string
	for _, a := range sd.aces {
		onObject := a.allows() && !t.trusted(a.sid) && !ignored(a.sid)
		inherited := kind == kindDir && a.inherits() && !inheritedByTrusted(a.sid, t)
		if (onObject || inherited) && a.mask&mask != 0 && !slices.Contains(out, a.sid) {
			out = append(out, a.sid)
		}
	}
	return out
}

// rightsWords names what mask lets its holder do.
func rightsWords(m uint32, ancestor bool) string {
	var w []string
	if m&(rightWriteData|rightAppendData|rightGenericWr|rightGenericAll) != 0 {
		w = append(w, "write it")
	}
	if m&(rightDelete|rightDeleteChild|rightGenericAll) != 0 {
		if ancestor {
			w = append(w, "delete or rename what is in it")
		} else {
			w = append(w, "delete or rename it or what is in it")
		}
	}
	if m&(rightWriteDAC|rightWriteOwner|rightGenericAll) != 0 {
		w = append(w, "change its ACL or owner")
	}
	return strings.Join(w, " and ")
}

// sidNames names the well-known SIDs in messages.
var sidNames = map[string]string{
	"S-1-1-0":         "Everyone",
	"S-1-5-11":        "Authenticated Users",
	"S-1-5-32-545":    "Users",
	"S-1-5-4":         "Interactive",
	"S-1-5-32-546":    "Guests",
	sidSystem:         "SYSTEM",
	sidAdministrators: "Administrators",
	sidTrustedInstall: "TrustedInstaller",
}

func describeSID(sid string) string {
	if sid == "" {
		return "(unknown)"
	}
	if n, ok := sidNames[sid]; ok {
		return sid + " (" + n + ")"
	}
	return sid
}

// sddlAliases are the SID strings of the SDDL aliases that are the same
// on every machine (sddl.h); domain-relative ones (LA, DA, ...) are
// resolved by the system (check_windows.go) or stay unknown.
var sddlAliases = map[string]string{
	"AN": "S-1-5-7", "AO": "S-1-5-32-548", "AU": "S-1-5-11", "BA": sidAdministrators, "BG": "S-1-5-32-546",
	"BO": "S-1-5-32-551", "BU": "S-1-5-32-545", "CG": sidCreatorGroup, "CO": sidCreatorOwner, "ED": "S-1-5-9",
	"HI": "S-1-16-12288", "IU": "S-1-5-4", "LS": "S-1-5-19", "LW": "S-1-16-4096", "ME": "S-1-16-8192",
	"MU": "S-1-5-32-558", "NO": "S-1-5-32-556", "NS": "S-1-5-20", "NU": "S-1-5-2", "OW": sidOwnerRights,
	"PO": "S-1-5-32-550", "PS": "S-1-5-10", "PU": "S-1-5-32-547", "RC": "S-1-5-12", "RD": "S-1-5-32-555",
	"RE": "S-1-5-32-552", "RU": "S-1-5-32-554", "SI": "S-1-16-16384", "SO": "S-1-5-32-549", "SU": "S-1-5-6",
	"SY": sidSystem, "WD": "S-1-1-0", "AC": "S-1-15-2-1", "WR": "S-1-5-33", "IS": "S-1-5-32-568",
	"CY": "S-1-5-32-569", "ER": "S-1-5-32-573", "CD": "S-1-5-32-574", "RA": "S-1-5-32-575", "ES": "S-1-5-32-576",
	"MS": "S-1-5-32-577", "HA": "S-1-5-32-578", "AA": "S-1-5-32-579", "RM": "S-1-5-32-580", "MP": "S-1-16-8448",
	"AS": "S-1-18-1", "SS": "S-1-18-2", "UD": "S-1-5-84-0-0-0-0-0",
}

// sddlRights are the SDDL access right codes (sddl.h).
var sddlRights = map[string]uint32{
	"GA": 0x10000000, "GR": 0x80000000, "GW": 0x40000000, "GX": 0x20000000,
	"RC": 0x20000, "SD": 0x10000, "WD": 0x40000, "WO": 0x80000,
	"RP": 0x10, "WP": 0x20, "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "LO": 0x80, "DT": 0x40, "CR": 0x100,
	"FA": 0x1f01ff, "FR": 0x120089, "FW": 0x120116, "FX": 0x1200a0,
	"KA": 0xf003f, "KR": 0x20019, "KW": 0x20006, "KX": 0x20019,
	"NR": 0x2, "NW": 0x1, "NX": 0x4,
}

// errSDDL is wrapped by parseSDDL's errors.
var errSDDL = errors.New("malformed SDDL")

// maxSDDL bounds the text parseSDDL reads: a DACL has at most 64 KiB of
// entries, each at least 8 bytes, whose SDDL is about 40 characters.
const maxSDDL = 1 << 20

// parseSDDL parses a security descriptor in SDDL, as
// ConvertSecurityDescriptorToStringSecurityDescriptor writes it:
// "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICIID;0x1200a9;;;BU)". resolve maps
// an alias that is not the same on every machine ("LA") to its SID; nil,
// or a failure, keeps it as "?LA", which no one trusts. A descriptor
// without a D: part has a NULL DACL; "D:NO_ACCESS_CONTROL" is one too.
// Errors wrap errSDDL and say where.
func parseSDDL(s string, resolve func(alias string) (string, bool)) (secDesc, error) {
	if len(s) > maxSDDL {
		return secDesc{}, fmt.Errorf("%w: %d bytes", errSDDL, len(s))
	}
	sd := secDesc{nullDACL: true}
	p := &sddlParser{s: s, resolve: resolve}
	seen := map[byte]bool{}
	for p.i < len(s) {
		if p.i+1 >= len(s) || s[p.i+1] != ':' || strings.IndexByte("OGDS", s[p.i]) < 0 {
			return secDesc{}, p.errorf("want O:, G:, D: or S:")
		}
		part := s[p.i]
		if seen[part] {
			return secDesc{}, p.errorf("a second %c: part", part)
		}
		seen[part] = true
		p.i += 2
		switch part {
		case 'O', 'G':
			sid, err := p.sid()
			if err != nil {
				return secDesc{}, err
			}
			if part == 'O' {
				sd.owner = sid
			}
		case 'D', 'S':
			aces, null, err := p.acl()
			if err != nil {
				return secDesc{}, err
			}
			if part == 'D' {
				sd.aces, sd.nullDACL = aces, null
			}
		}
	}
	return sd, nil
}

// sddlParser reads an SDDL string from position i.
type sddlParser struct {
	s       string
	i       int
	resolve func(string) (string, bool)
}

func (p *sddlParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d of %q: %s", errSDDL, p.i, truncate(p.s), fmt.Sprintf(format, args...))
}

// sid reads a SID: "S-1-..." (digits and dashes) or a two-letter alias.
func (p *sddlParser) sid() (string, error) {
	rest := p.s[p.i:]
	if strings.HasPrefix(rest, "S-") {
		n := 2
		for n < len(rest) && (rest[n] == '-' || rest[n] >= '0' && rest[n] <= '9') {
			n++
		}
		p.i += n
		return rest[:n], nil
	}
	if len(rest) < 2 || !isUpper(rest[0]) || !isUpper(rest[1]) {
		return "", p.errorf("want a SID")
	}
	p.i += 2
	return resolveAlias(rest[:2], p.resolve), nil
}

// aclFlags are the flags an ACL may carry before its entries.
var aclFlags = []string{"NO_ACCESS_CONTROL", "P", "AR", "AI"}

// acl reads an ACL: its flags, then its entries in parentheses; null
// reports NO_ACCESS_CONTROL (a NULL DACL).
func (p *sddlParser) acl() (aces []ace, null bool, err error) {
flags:
	for {
		for _, f := range aclFlags {
			if strings.HasPrefix(p.s[p.i:], f) && !strings.HasPrefix(p.s[p.i:], f+":") {
				p.i += len(f)
				null = null || f == "NO_ACCESS_CONTROL"
				continue flags
			}
		}
		break
	}
	for p.i < len(p.s) && p.s[p.i] == '(' {
		end := matchParen(p.s[p.i:])
		if end < 0 {
			return nil, false, p.errorf("an entry without its )")
		}
		a, err := parseACE(p.s[p.i+1:p.i+end], p.resolve)
		if err != nil {
			return nil, false, p.errorf("%v", err)
		}
		aces = append(aces, a)
		p.i += end + 1
	}
	return aces, null, nil
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// parseSID turns an SDDL SID field ("S-1-5-18" or an alias) into a SID
// string.
func parseSID(s string, resolve func(string) (string, bool)) string {
	if strings.HasPrefix(s, "S-") {
		return s
	}
	return resolveAlias(s, resolve)
}

// resolveAlias is the SID of an SDDL alias: the table of aliases that are
// the same everywhere, then resolve, else "?" and the alias.
func resolveAlias(alias string, resolve func(string) (string, bool)) string {
	if sid, ok := sddlAliases[alias]; ok {
		return sid
	}
	if resolve != nil {
		if sid, ok := resolve(alias); ok {
			return sid
		}
	}
	return "?" + alias
}

// matchParen returns the index of the ) closing the ( at s[0], or -1.
func matchParen(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// parseACE parses "type;flags;rights;object;inherit_object;sid" (a
// conditional entry's seventh field, its condition, is not judged).
func parseACE(s string, resolve func(string) (string, bool)) (ace, error) {
	f := strings.SplitN(s, ";", 7)
	if len(f) < 6 {
		return ace{}, fmt.Errorf("entry %q has %d fields, want 6", truncate(s), len(f))
	}
	if f[0] == "" || f[5] == "" {
		return ace{}, fmt.Errorf("entry %q without a type or a SID", truncate(s))
	}
	a := ace{typ: f[0], sid: parseSID(f[5], resolve)}
	for fl := f[1]; fl != ""; fl = fl[2:] {
		if len(fl) < 2 {
			return ace{}, fmt.Errorf("entry %q: flags %q", truncate(s), f[1])
		}
		a.flags = append(a.flags, fl[:2])
	}
	m, err := parseRights(f[2])
	if err != nil {
		return ace{}, fmt.Errorf("entry %q: %w", truncate(s), err)
	}
	a.mask = m
	return a, nil
}

// parseRights parses an access mask: a number ("0x1200a9", decimal or
// octal as strtoul reads them) or two-letter codes ("FA", "LCSWRPWP").
func parseRights(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 0, 32)
		if err != nil {
			return 0, fmt.Errorf("%w: rights %q", errSDDL, truncate(s))
		}
		return uint32(n), nil
	}
	var m uint32
	for r := s; r != ""; r = r[2:] {
		if len(r) < 2 {
			return 0, fmt.Errorf("%w: rights %q", errSDDL, truncate(s))
		}
		v, ok := sddlRights[r[:2]]
		if !ok {
			return 0, fmt.Errorf("%w: rights %q: unknown code %q", errSDDL, truncate(s), r[:2])
		}
		m |= v
	}
	return m, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
