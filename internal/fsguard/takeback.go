package fsguard

import (
	"fmt"
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
