package fsguard

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Taking the state folder back (Windows).
//
// %ProgramData% lets every user create a folder in it, and the folder's
// creator then owns it (CREATOR OWNER: full control). A standard user can
// therefore make C:\ProgramData\mamori before mamori is installed, or put
// files, junctions or links in it, and keep handles to it open. Refusing
// such a folder (as CheckDir does) leaves the agent unable to start until
// someone repairs it by hand; taking it over in place (a new owner and
// DACL) is never provably safe: the DACL says nothing of what the user
// changed before, of the handles they keep open (which keep the access
// they were opened with), or of what they planted deep inside. So the
// agent running as SYSTEM does what an installer that finds a squatted
// folder should: it renames the folder aside, unfollowed and unread, to
// NAME.untrusted-YYYYMMDDThhmmss (UTC) beside it, and makes a fresh
// private folder, which no one else has ever had a handle to. Nothing
// that was in the old folder (an audit log, a report queue, a token) is
// read or trusted; it is kept, not deleted, for whoever investigates, and
// the agent logs loudly what it did and why.
//
// A folder whose owner is trusted and that lets others at most read it
// or add entries (the folder an installer made in %ProgramData%, which
// inherits Users' right to add files and folders; a state folder of an
// earlier version that let Users read) is made private in place instead,
// so that the installer's config in it stays where it is; entries
// someone else put in it (owned by someone untrusted, or links) are moved
// aside, unread, into NAME.untrusted-YYYYMMDDThhmmss. A handle such a
// user opened before keeps its right to add entries: what they add later
// is owned by them, and is found and moved aside at the next start.

// folderAction is what MkdirState does with a state folder that exists.
type folderAction int

const (
	// folderKeep: private and trusted already; used as it is.
	folderKeep folderAction = iota
	// folderAdopt: trusted owner, others may at most read it or add
	// entries: made private in place, what others put in it moved aside.
	folderAdopt
	// folderTakeBack: anything else: renamed aside and replaced by a
	// fresh private folder; nothing in it is read.
	folderTakeBack
)

func (a folderAction) String() string {
	switch a {
	case folderKeep:
		return "keep"
	case folderAdopt:
		return "adopt"
	}
	return "take back"
}

// folderFacts is what is known of an existing state folder, read from a
// handle opened without following a link.
type folderFacts struct {
	// link: a junction, symbolic link or other reparse point
	// (FILE_ATTRIBUTE_REPARSE_POINT).
	link bool
	// dir: a directory (FILE_ATTRIBUTE_DIRECTORY).
	dir bool
	// sdErr: why its owner and DACL could not be read (nil: sd holds them).
	sdErr error
	sd    secDesc
}

// addOrRead are the rights on a directory that let their holder at most
// read it and add entries: FILE_LIST_DIRECTORY, FILE_ADD_FILE,
// FILE_ADD_SUBDIRECTORY, FILE_READ_EA, FILE_WRITE_EA, FILE_TRAVERSE,
// FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES, READ_CONTROL, SYNCHRONIZE
// and GENERIC_READ, GENERIC_WRITE, GENERIC_EXECUTE (which map to those).
// Anything else (DELETE, FILE_DELETE_CHILD, WRITE_DAC, WRITE_OWNER,
// GENERIC_ALL, ACCESS_SYSTEM_SECURITY, ...) lets its holder replace or
// take over what is in it.
const addOrRead = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x80 | 0x100 | 0x20000 | 0x100000 |
	rightGenericRd | rightGenericWr | 0x20000000

// decideFolder says what to do with an existing state folder, f, for the
// trust set t, and why in words for the log: folderTakeBack for a link,
// something not a directory, a folder whose owner or DACL cannot be read
// (what cannot be judged is not trusted), owned by someone untrusted, with
// a NULL DACL, or whose DACL lets someone untrusted do more than read it
// and add entries, or change what is created in it (an inheritable entry
// giving write, delete or ACL rights on files, or more than adding
// entries on folders); folderAdopt for a trusted folder that others may
// read or add entries to (judgeSD or judgeRead find fault); else
// folderKeep. Pure, so that it is tested on every OS.
func decideFolder(f folderFacts, t trustSet) (folderAction, string) {
	switch {
	case f.link:
		return folderTakeBack, "is a junction, symbolic link or other reparse point"
	case f.sdErr != nil:
		return folderTakeBack, fmt.Sprintf("its owner and ACL cannot be read (%v)", f.sdErr)
	case !f.dir:
		return folderTakeBack, "is not a directory"
	case !t.trusted(f.sd.owner):
		return folderTakeBack, fmt.Sprintf("is owned by %s, not by SYSTEM, Administrators, TrustedInstaller or this process's user (%s): whoever made it could have put or changed anything in it, and may hold it open", describeSID(f.sd.owner), describeSID(t.self))
	case f.sd.nullDACL:
		return folderTakeBack, "has no DACL (a NULL DACL lets everyone do everything)"
	}
	for _, a := range f.sd.aces {
		if a.allows() && !t.trusted(a.sid) && !ignored(a.sid) && a.mask&^addOrRead != 0 {
			return folderTakeBack, fmt.Sprintf("lets %s %s (access mask %#x): what is in it could have been replaced",
				describeSID(a.sid), beyondWords(a.mask), a.mask)
		}
		if !a.inherits() || inheritedByTrusted(a.sid, t) {
			continue
		}
		if a.has(aceObjectInherit) && a.mask&unsafeSelf != 0 {
			return folderTakeBack, fmt.Sprintf("passes on to the files created in it an entry that lets %s %s (access mask %#x): what is in it could have been changed",
				describeSID(a.sid), rightsWords(a.mask&unsafeSelf, false), a.mask)
		}
		if a.has(aceContainerInherit) && a.mask&^addOrRead != 0 {
			return folderTakeBack, fmt.Sprintf("passes on to the folders created in it an entry that lets %s %s (access mask %#x): what is in them could have been replaced",
				describeSID(a.sid), beyondWords(a.mask), a.mask)
		}
	}
	if p := judgeSD(f.sd, t, kindDir); p != "" {
		return folderAdopt, p
	}
	if p := judgeRead(f.sd, t, kindDir); p != "" {
		return folderAdopt, p
	}
	return folderKeep, ""
}

// beyondWords names what mask lets its holder do beyond reading and
// adding entries.
func beyondWords(mask uint32) string {
	if w := rightsWords(mask&unsafeSelf&^(rightWriteData|rightAppendData|rightGenericWr), false); w != "" {
		return w
	}
	return "do more than read it and add entries"
}

// untrustedName is the name a folder called base is renamed to, or what
// is moved out of it is put in: "mamori.untrusted-20260102T150405" for
// the time now (UTC); try > 1 adds "-2", "-3", ... for a name taken.
func untrustedName(base string, now time.Time, try int) string {
	n := base + ".untrusted-" + now.UTC().Format("20060102T150405")
	if try > 1 {
		n += fmt.Sprintf("-%d", try)
	}
	return n
}

// An alternate state folder (Windows).
//
// Taking a folder back renames it, and Windows refuses to rename a folder
// someone holds open without FILE_SHARE_DELETE (ERROR_SHARING_VIOLATION),
// or one with a file in it held open (ERROR_ACCESS_DENIED). Any user may
// make C:\ProgramData\mamori before mamori is installed and keep such a
// handle for as long as they like. Refusing to start then would let them
// keep the agent from ever running, so PrepareState falls back to an
// alternate folder beside it, NAME.alternate-YYYYMMDDThhmmss-XXXXXXXXXXXXXXXX
// (UTC, 16 random hex digits), made private with CreateDirectory in one
// call as the state folder is, in the same parent, whose ancestors passed
// the same checks. The name is random because anyone may make any name in
// %ProgramData%: a fixed alternate (C:\ProgramData\mamori-agent) could be
// squatted and held the same way, a random one cannot be foreseen, and a
// name taken already only makes CreateDirectory fail and another be
// drawn. What cannot be made fit is recorded (Finding), never all clear.
//
// Every start tries the take-back again. The alternate found beside the
// configured folder at the next start is the agent's own when it is a
// directory owned by SYSTEM, Administrators, TrustedInstaller or this
// process's user with a private DACL (decideFolder keeps it): no one else
// can make such a folder, whatever they name it. The alternate in use is
// also remembered in the registry, where users cannot write, and judged
// first, so that folders named like alternates cannot push it out of the
// names judged (remember_windows.go). While the configured
// folder cannot be made fit, the agent keeps recording in that alternate,
// so that the audit chain goes on there. Once the configured folder is
// free (the squatted one moved aside, or removed), the alternate is
// renamed to the configured name, with its audit log, report queue and
// copies in it: the agent is back in the configured folder and its chain
// goes on unbroken; a fresh folder is made there only when there is no
// alternate. A configured folder that is fit as it is (an administrator
// made it private by hand) is used, and an alternate left beside it is
// logged at Warn, not read.

// StateDir is the state directory PrepareState made fit to use, or that
// FindState says the agent uses, and what was found on the way.
type StateDir struct {
	// Configured is the path asked for (agent.state_dir), as given.
	Configured string
	// Path is the directory to use: Configured, or, when Alternate, an
	// absolute path beside it.
	Path string
	// Alternate says that Path is an alternate folder
	// (NAME.alternate-YYYYMMDDThhmmss-XXXXXXXXXXXXXXXX), because the
	// configured folder could not be made fit (Windows only).
	Alternate bool
	// Findings are what was found in place of the state folder that is
	// not to be trusted, and what was done about it, in order: each was
	// logged at Error already, and is for the caller to record (it is an
	// attack on the agent, or the trace of one). Empty when nothing was.
	Findings []Finding
}

// Finding is one untrusted thing PrepareState found where the state
// folder is, and what it did about it.
type Finding struct {
	// Path is what was found: the configured state folder.
	Path string
	// Problem says why it is not trusted, as decideFolder words it ("is
	// owned by S-1-5-21-... , not by SYSTEM, ...", "lets S-1-1-0
	// (Everyone) ...", "holds entries someone else put there: "token"":
	// the names someone else chose are quoted, strconv.Quote).
	Problem string
	// Done says what was done: "moved aside unread to ...", or why it
	// could not be and which alternate folder is used instead.
	Done string
}

// String is the finding in one line: "PATH PROBLEM; DONE".
func (f Finding) String() string {
	return f.Path + " " + f.Problem + "; " + f.Done
}

// alternateTag is what follows NAME in an alternate folder's name.
const alternateTag = ".alternate-"

// alternateName is the name of an alternate folder for a state folder
// called base, made at now, with the random bytes rnd:
// "mamori.alternate-20260102T150405-0123456789abcdef" (UTC).
func alternateName(base string, now time.Time, rnd [8]byte) string {
	return fmt.Sprintf("%s%s%s-%x", base, alternateTag, now.UTC().Format("20060102T150405"), rnd[:])
}

// isAlternateName reports whether name has the exact shape alternateName
// gives for base: the tag, a valid time, a dash and 16 lower-case hex
// digits. base is matched without regard to case, as Windows names are.
// Pure; what a name says proves nothing (anyone may make any name): a
// folder so named is used only once judged.
func isAlternateName(base, name string) bool {
	if len(name) != len(base)+len(alternateTag)+15+1+16 || !strings.EqualFold(name[:len(base)], base) {
		return false
	}
	rest := name[len(base):]
	if !strings.HasPrefix(rest, alternateTag) {
		return false
	}
	rest = rest[len(alternateTag):]
	if _, err := time.Parse("20060102T150405", rest[:15]); err != nil || rest[15] != '-' {
		return false
	}
	for _, c := range rest[16:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newestAlternates keeps, of names, those isAlternateName takes for base,
// newest first (by the time in the name, then the rest), at most max of
// them; more reports that some were left out. Pure.
func newestAlternates(base string, names []string, max int) (out []string, more bool) {
	for _, n := range names {
		if isAlternateName(base, n) {
			out = append(out, n)
		}
	}
	// The names differ only after base, whose case may differ: compare
	// what follows it.
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(b[len(base):], a[len(base):]) })
	if len(out) > max {
		return out[:max], true
	}
	return out, false
}

// PrepareState creates or takes back the agent's state directory path, as
// MkdirState does, and returns the directory to use. On Windows, when the
// folder at path cannot be made fit (someone holds it open so that it
// cannot be moved aside, what someone put in it cannot be moved out, it
// fails CheckDir after), it does not fail: it records in an alternate
// private folder beside it, NAME.alternate-YYYYMMDDThhmmss-XXXXXXXXXXXXXXXX
// (the one found from an earlier start, else a new one), logs that at
// Error, and tries the configured folder again at every start, moving the
// alternate back in its place once it is free (the doc above). Everything
// untrusted it found is in StateDir.Findings, for the caller to record.
// log nil: discarded. The error is for a directory on the way that is not
// safe (CheckDir's error: nothing there is taken back, and a folder beside
// it would be no safer), or for neither the folder nor an alternate that
// could be made (I/O, a full disk); it names the path. On Unix it is
// MkdirState: Path is path, and nothing is ever moved.
func PrepareState(path string, log *slog.Logger) (StateDir, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return prepareState(path, log, time.Now())
}

// FindState says, without changing anything, which directory the agent
// records in for the state directory path: path, or on Windows the
// alternate folder beside it that PrepareState uses while the folder at
// path is one it would take back (owned by someone untrusted, a link, an
// ACL that let others replace what is in it) or is missing; Findings then
// says why path is not used. It is for readers of the state directory
// (audit verify) run as an administrator. The error says that the folder
// at path is not to be trusted and no alternate the agent made is beside
// it: nothing there was recorded by the agent. On Unix Path is path.
func FindState(path string) (StateDir, error) {
	return findState(path)
}
