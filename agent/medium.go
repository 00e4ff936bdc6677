package agent

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/policy"
)

// A medium is its own subject: a stick's disk, the card in each slot of a
// reader, each LUN. Under require_encryption every medium is judged when it
// appears, by one rule: it is shown to be encrypted, or it is a violation.
// Only a recognised encryption container (LUKS1/2, BitLocker with its
// protection on) passes; a plain file system, a medium without any
// signature, one that could not be read, and anything mounted straight
// from the USB block device all fail.

// encryptionSchemes are the containers that count as encrypted.
var encryptionSchemes = []string{
	media.EncryptionLUKS1, media.EncryptionLUKS2, media.EncryptionBitLocker, media.EncryptionBitLockerToGo,
}

// mediumFinding is a medium that is not shown to be encrypted, with its
// violation.
type mediumFinding struct {
	medium    *MediumRecord
	violation *Violation
}

// judgeMedia is the one judge of media, for scan and run alike: under an
// approval that requires encryption, every medium of d not shown to be
// encrypted is a media_unencrypted violation. vols are the mounted
// volumes on d.
func (c *sources) judgeMedia(pol *policy.USBPolicy, d *usb.Device, dec policy.USBDecision, vols []media.Volume) []mediumFinding {
	if !dec.RequiresEncryption(d) {
		return nil
	}
	var out []mediumFinding
	for _, m := range c.media(d, vols) {
		if !m.Encrypted {
			out = append(out, mediumFinding{m, pol.Unencrypted(d, dec.Entry, m)})
		}
	}
	return out
}

// judgeMedium sets m's verdict, key and description.
func judgeMedium(m *MediumRecord) {
	m.Encrypted = len(m.Units) > 0
	var key, seen strings.Builder
	key.WriteString(m.Disk + "@" + strconv.FormatInt(m.Size, 10))
	for _, u := range m.Units {
		if !u.Encrypted {
			m.Encrypted = false
		}
		fmt.Fprintf(&key, "/%s:%s:%s", u.Name, u.FSType, u.Encryption)
		if u.Error != "" {
			key.WriteString(":unreadable")
		}
		if seen.Len() > 0 {
			seen.WriteString("; ")
		}
		seen.WriteString(u.Name + ": " + describeUnit(u))
	}
	if len(m.Units) == 0 {
		seen.WriteString(m.Disk + ": no partition the kernel lists")
	}
	m.Key, m.Seen = key.String(), seen.String()
}

func describeUnit(u MediumUnit) string {
	var s string
	switch {
	case u.Error != "":
		s = "could not be read (" + u.Error + ")"
	case u.Encryption != "" && u.ClearKey:
		s = u.Encryption + " with its protection suspended (clear key)"
	case u.Encryption != "" && u.MountedDirectly:
		s = u.Encryption + " signature, but its data is mounted without decryption (directly or through a mapping that is not dm-crypt) as " + u.FSType
	case u.Encryption != "":
		s = u.Encryption
	case u.FSType != "":
		s = "plain " + u.FSType
	default:
		s = "no recognised signature (random or wiped data, or a container such as VeraCrypt that cannot be told apart)"
	}
	if u.MountedDirectly && u.Encryption == "" {
		s += ", mounted"
	}
	return s
}

// mediumViolationKey is what an appearance records for a medium found
// unencrypted.
func mediumViolationKey(m *MediumRecord) string { return KindMediaUnencrypted + ":" + m.Key }
