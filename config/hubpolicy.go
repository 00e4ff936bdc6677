package config

import (
	"fmt"
	"slices"
)

// MaxHubApprovedSize is the largest approved-lists document from the hub
// that ParseApproved reads, in bytes (the hub refuses larger ones, see
// hub.MaxApprovedSize).
const MaxHubApprovedSize = 4 << 20

// hubApprovedKeys are the keys of the hub's approved lists: the approved:
// section without the ledger keys (a ledger is a file on the PC, not
// something the hub can hand out).
var hubApprovedKeys = []string{"usb", "networks", "lan_devices"}

// HubPolicyFile names the hub's approved lists of a version as the file
// in errors and in the entries' File ("hub policy v7").
func HubPolicyFile(version int64) string {
	return fmt.Sprintf("hub policy v%d", version)
}

// ParseApproved checks data, the approved lists the hub serves: a YAML
// document whose top level is the content of a config file's approved:
// section (usb, networks, lan_devices; no ledgers). It is read by the
// same code as a config file's approved: section, with the same rules
// and limits, and every problem is reported as an *Error naming file
// (HubPolicyFile: "hub policy v7"), line and column, in an ErrorList.
// The entries' File is file and their Line the line in data.
func ParseApproved(file string, data []byte) (*ApprovedLists, error) {
	if len(data) > MaxHubApprovedSize {
		return nil, ErrorList{{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxHubApprovedSize)}}
	}
	st := newLoadState(nil)
	st.wholeDoc = true
	p := &parser{file: file, st: st}
	var a ApprovedLists
	if p.checkText(data) {
		p.data = data
		if root := p.decode(data, "usb:, networks: or lan_devices: required"); root != nil {
			p.approvedWith(root, &a, hubApprovedKeys)
		}
	}
	if len(p.errs) > 0 {
		p.sortErrors()
		return nil, p.errs
	}
	a.USB = slices.Clip(st.entries)
	return &a, nil
}

// Merged is the approved lists in force: a config file's lists merged
// with the hub's (MergeApproved).
type Merged struct {
	Lists ApprovedLists
	// Replaced names the local entries that an entry of the hub's took
	// the place of ("usb:Camera", "networks:Office", "lan_devices:Printer").
	Replaced []string
}

// MergeApproved merges the hub's approved lists into the local ones (the
// config file's, with its ledgers): the hub's entries first, then every
// local entry that the hub's lists do not replace.
//
// The hub's lists are the city's one place for approvals, so a local
// entry with the name of one of the hub's is replaced by it (as a
// centrally managed device-control policy overrides a local one): a
// renewal, a narrowing or an end date set at the hub takes effect on
// every PC, even one whose config file still has an older copy of the
// entry. A LAN device registered at the hub also replaces a local one
// with its MAC. Otherwise both lists apply: a device approved by a valid
// entry of either is approved (among equally specific valid entries the
// hub's, being first, is the one named in records). Replaced lists the
// local entries left out, so the record of the change names them.
//
// The local ledger settings (USBLedgers, USBLedgerEncoding) are kept.
// Neither list is changed; the result shares their entries.
func MergeApproved(local, hub *ApprovedLists) Merged {
	var m Merged
	m.Lists = *local
	if hub == nil {
		return m
	}
	names := make(map[string]bool, len(hub.USB))
	for i := range hub.USB {
		names[hub.USB[i].Name] = true
	}
	usb := make([]USBEntry, 0, len(hub.USB)+len(local.USB))
	usb = append(usb, hub.USB...)
	for i := range local.USB {
		if names[local.USB[i].Name] {
			m.Replaced = append(m.Replaced, "usb:"+local.USB[i].Name)
			continue
		}
		usb = append(usb, local.USB[i])
	}
	if len(usb) > MaxApprovedUSB {
		usb = usb[:MaxApprovedUSB]
	}
	m.Lists.USB = usb

	clear(names)
	for i := range hub.Networks {
		names[hub.Networks[i].Name] = true
	}
	nets := slices.Clone(hub.Networks)
	for i := range local.Networks {
		if names[local.Networks[i].Name] {
			m.Replaced = append(m.Replaced, "networks:"+local.Networks[i].Name)
			continue
		}
		nets = append(nets, local.Networks[i])
	}
	m.Lists.Networks = nets

	clear(names)
	macs := make(map[string]bool, len(hub.LANDevices))
	for i := range hub.LANDevices {
		names[hub.LANDevices[i].Name] = true
		macs[string(hub.LANDevices[i].MAC)] = true
	}
	lan := slices.Clone(hub.LANDevices)
	for i := range local.LANDevices {
		d := &local.LANDevices[i]
		if names[d.Name] || macs[string(d.MAC)] {
			m.Replaced = append(m.Replaced, "lan_devices:"+d.Name)
			continue
		}
		lan = append(lan, *d)
	}
	m.Lists.LANDevices = lan
	return m
}
