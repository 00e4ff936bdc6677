package agent

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/wire"
)

// No state outside the hash chain decides what is recorded. The open
// appearances (which devices are attached, which violations were already
// recorded for them, which volumes are mounted) are rebuilt at start from
// the audit log itself: from the last agent_started record, which carries
// what was open when it was written, through the records after it. Editing
// or deleting a side file therefore changes nothing, and editing the log
// breaks its chain, which is recorded.

// priorRun is what the audit log says about the previous run.
type priorRun struct {
	bootID  string // of the last agent_started; "" when unknown
	open    OpenState
	records int
	last    replayRecord // the last record of the log
}

// replayRecord is the part of an audit record the replay reads.
type replayRecord struct {
	Seq     uint64                `json:"seq"`
	Type    string                `json:"type"`
	Time    time.Time             `json:"time"`
	Path    string                `json:"path"`
	Kind    string                `json:"kind"`
	Agent   *AgentRecord          `json:"agent"`
	Device  *OpenDevice           `json:"device"`
	Volume  *OpenVolume           `json:"volume"`
	Medium  *struct{ Key string } `json:"medium"`
	Vendor  string                `json:"vendor_id"`
	Product string                `json:"product_id"`
	Serial  *string               `json:"serial"`
	Source  string                `json:"source"`
	Subject string                `json:"subject"`
	Inst    string                `json:"instance"`
	Open    *OpenState            `json:"open"`
	Until   *time.Time            `json:"until"`
}

var agentStartedMarker = []byte(`"type":"` + TypeAgentStarted + `"`)

// replay reads the log back from the last agent_started and rebuilds the
// appearances open at its end.
func replay(dir, bootID string) (priorRun, []audit.Damage, error) {
	var p priorRun
	entries, damage, err := audit.ReadBack(dir, func(line []byte) bool {
		return bytes.Contains(line, agentStartedMarker)
	})
	if err != nil {
		return p, damage, err
	}
	devices := map[string]*OpenDevice{}
	volumes := map[string]OpenVolume{}
	subjects := map[subjectKey]*wire.OpenSubject{}
	for _, e := range entries {
		var r replayRecord
		if err := json.Unmarshal(e.Line, &r); err != nil {
			damage = append(damage, audit.Damage{Kind: "unreadable_record", File: audit.CurrentName, Seq: e.Seq,
				Reason: fmt.Sprintf("record cannot be read back: %v", err)})
			continue
		}
		p.records++
		p.last = r
		switch r.Type {
		case TypeAgentStarted:
			clear(devices)
			clear(volumes)
			clear(subjects)
			p.bootID = ""
			if r.Agent != nil {
				p.bootID = r.Agent.BootID
				if o := r.Agent.Open; o != nil {
					for i := range o.Devices {
						d := o.Devices[i]
						devices[d.Path] = &d
					}
					for _, v := range o.Volumes {
						volumes[volumeKeyOf(v.Device, v.MountPoint)] = v
					}
					for i := range o.Subjects {
						s := o.Subjects[i]
						subjects[subjectKey{s.Source, s.ID}] = &s
					}
				}
			}
		case TypeDeviceAdded:
			d := OpenDevice{Path: r.Path, VendorID: r.Vendor, ProductID: r.Product, Serial: r.Serial}
			if r.Device != nil {
				d.BusNum, d.DevNum = r.Device.BusNum, r.Device.DevNum
			}
			devices[r.Path] = &d
		case TypeDeviceRemoved:
			delete(devices, r.Path)
		case wire.TypeAgentOpenState:
			// The rest of what the agent_started before it carried.
			if o := r.Open; o != nil {
				for i := range o.Subjects {
					s := o.Subjects[i]
					subjects[subjectKey{s.Source, s.ID}] = &s
				}
			}
		case wire.TypeLinkAdded, wire.TypeLinkRenamed, wire.TypeAddressAdded, wire.TypeLinkUp, wire.TypeSSIDChanged, wire.TypeRouteChanged:
			if r.Subject != "" {
				subjects[subjectKey{r.Source, r.Subject}] = &wire.OpenSubject{Source: r.Source, ID: r.Subject, Instance: r.Inst}
			}
		case wire.TypeLinkRemoved, wire.TypeAddressRemoved, wire.TypeLinkDown, wire.TypeViolationCleared:
			delete(subjects, subjectKey{r.Source, r.Subject})
			if idx, ok := strings.CutPrefix(r.Subject, "link:"); ok && r.Type == wire.TypeLinkRemoved {
				// What was on the link ended with it.
				for k := range subjects {
					if k.source == r.Source && (k.id == "up:"+idx || k.id == "ssid:"+idx || strings.HasPrefix(k.id, "addr:"+idx+":")) {
						delete(subjects, k)
					}
				}
			}
		case TypeViolation:
			if r.Subject != "" {
				// A network or LAN violation is an appearance of its own.
				k := subjectKey{r.Source, r.Subject}
				s := subjects[k]
				if s == nil {
					s = &wire.OpenSubject{Source: r.Source, ID: r.Subject}
					subjects[k] = s
				}
				s.Recorded = append(s.Recorded, r.Kind)
				s.Until = r.Until
				continue
			}
			if d, ok := devices[r.Path]; ok {
				k := r.Kind
				if r.Kind == KindMediaUnencrypted && r.Medium != nil {
					k = KindMediaUnencrypted + ":" + r.Medium.Key
				}
				d.Recorded = append(d.Recorded, k)
			}
		case TypeVolumeMounted:
			if r.Volume != nil {
				volumes[volumeKeyOf(r.Volume.Device, r.Volume.MountPoint)] = *r.Volume
			}
		case TypeVolumeUnmounted:
			if r.Volume != nil {
				delete(volumes, volumeKeyOf(r.Volume.Device, r.Volume.MountPoint))
			}
		}
	}
	p.open = OpenState{Devices: []OpenDevice{}, Volumes: []OpenVolume{}}
	for _, k := range sortedKeys(devices) {
		p.open.Devices = append(p.open.Devices, *devices[k])
	}
	for _, k := range sortedKeys(volumes) {
		p.open.Volumes = append(p.open.Volumes, volumes[k])
	}
	for _, s := range subjects {
		p.open.Subjects = append(p.open.Subjects, *s)
	}
	slices.SortFunc(p.open.Subjects, func(a, b wire.OpenSubject) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.ID, b.ID))
	})
	// A run of this release always states its boot id; the same boot id
	// now means the devices still attached are the same appearances.
	if bootID == "" || p.bootID != bootID {
		p.bootID = ""
	}
	return p, damage, nil
}

// thisBoot returns the appearances to carry over: those of the previous
// run when it was in this boot, none otherwise.
func (p priorRun) thisBoot() OpenState {
	if p.bootID == "" {
		return OpenState{Devices: []OpenDevice{}, Volumes: []OpenVolume{}}
	}
	return p.open
}

// uncleanStop says how the previous run ended when it did not end with
// agent_stopped; "" when it did, or when there was none.
func (p priorRun) uncleanStop() string {
	if p.records == 0 || p.last.Type == TypeAgentStopped {
		return ""
	}
	return fmt.Sprintf("the previous run did not end with agent_stopped (a crash, kill -9, power loss, or records cut off the end): its last record is seq %d, %s at %s",
		p.last.Seq, p.last.Type, p.last.Time.Format(time.RFC3339))
}

// closePreviousBoot ends the appearances that the previous run left open
// in an earlier boot: the devices were unplugged or the PC rebooted, and
// whatever is attached now is a new appearance.
func (a *Agent) closePreviousBoot(p priorRun) {
	if p.bootID != "" {
		return
	}
	for _, d := range p.open.Devices {
		a.emit(&Event{Type: TypeDeviceRemoved, Source: "usb", Trigger: "start", Path: d.Path,
			VendorID: d.VendorID, ProductID: d.ProductID, Serial: d.Serial,
			Message: "appearance ended by a reboot (or an unknown boot) while the agent was not running"})
	}
	for _, v := range p.open.Volumes {
		a.emit(&Event{Type: TypeVolumeUnmounted, Source: "media", Trigger: "start", Path: v.USBDevice,
			Message: "mount ended by a reboot (or an unknown boot) while the agent was not running",
			Volume:  volumeOf(v)})
	}
}

// legacyState is the side file of the USB-core release: no longer read.
const legacyState = "appearances.json"

// prepareStateDir makes the state directory dir (agent.state_dir) fit to
// use with fsguard.PrepareState and returns where the agent records: on
// Unix dir, created mode 0700 when missing, and refused when someone
// other than root or this user owns or can write it (the agent, running
// as root, must not write where others can plant links); on Windows a
// folder it cannot trust (someone else made it, a junction or link, an
// ACL that let others replace what is in it) is renamed aside unread to
// NAME.untrusted-YYYYMMDDThhmmss and replaced by a fresh private folder,
// so that nothing someone else planted there (an audit log, a report
// queue, a token) is read; and when it cannot be moved (someone holds it
// open without sharing delete, which any user can do to a folder they
// made in %ProgramData% before mamori was installed), the agent does not
// refuse to start: it records in a private alternate folder beside it,
// NAME.alternate-YYYYMMDDThhmmss-XXXXXXXXXXXXXXXX, the same one at every
// start while the folder stays held (its audit chain goes on there), and
// the alternate is moved back in place at the first start after the
// folder was let go. fsguard logs at Error what it moved and why;
// Findings says it for recordStateDir. Then the side file of the USB-core
// release is removed. The error names the directory.
func prepareStateDir(dir string, log *slog.Logger) (fsguard.StateDir, error) {
	sd, err := fsguard.PrepareState(dir, log)
	if err != nil {
		return sd, fmt.Errorf("state dir: %w", err)
	}
	os.Remove(filepath.Join(sd.Path, legacyState))
	return sd, nil
}

// KindStateDirUntrusted begins the message of the audit_damaged record of
// each untrusted thing found in place of the state folder (Windows): a
// folder someone else made or could change, moved aside; one held open
// so that it could not be, with the alternate folder the agent records
// in instead; entries someone else put in it, moved out.
const KindStateDirUntrusted = "state_dir_untrusted"

// useStateDir makes sd.Path the state directory of this run: the audit
// log, the report queue, the copies of the hub's lists and clock, and
// mamori status use a.cfg.Agent.StateDir, which keeps it across reloads
// (putInForce). The config the agent was given is not changed: a copy is.
func (a *Agent) useStateDir(sd fsguard.StateDir) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if sd.Path == a.cfg.Agent.StateDir {
		return
	}
	c := *a.cfg
	c.Agent.StateDir = sd.Path
	a.cfg = &c
}

// recordStateDir records each of sd's findings as audit_damaged, source
// agent, its message "state_dir_untrusted: PATH PROBLEM; DONE" (the
// names of entries someone else put there are quoted by fsguard; the
// rest is the configured path, the agent's own names and Windows' error
// texts): it is an attack on the agent's own records, counted in
// mamori_events_total{action="audit_damaged"} (the MamoriAuditChainBroken
// alert) and sent to the hub. fsguard logged each at Error already.
// Called with a.mu held, after agent_started.
func (a *Agent) recordStateDir(sd fsguard.StateDir, trigger string) {
	for _, f := range sd.Findings {
		a.emit(&Event{Type: TypeAuditDamaged, Source: wire.SourceAgent, Trigger: trigger,
			Message: KindStateDirUntrusted + ": " + f.String()})
	}
}

// StateDir returns the directory the agent records in: agent.state_dir,
// or on Windows the alternate folder beside it that Run uses while the
// configured one cannot be made fit (prepareStateDir). Before Run has
// prepared it, agent.state_dir.
func (a *Agent) StateDir() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.Agent.StateDir
}

func volumeOf(v OpenVolume) *wire.Volume {
	return &wire.Volume{Device: v.Device, MountPoint: v.MountPoint, USBDevice: v.USBDevice}
}
