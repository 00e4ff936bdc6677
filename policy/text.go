// Package policy judges what the collectors saw against the approved
// lists: a USB device against approved.usb, a medium against its entry's
// require_encryption, the links, gateways and neighbours against
// approved.networks and approved.lan_devices. Its findings are
// wire.Violation values whose texts come from the one kinds table
// (wire.Kinds), in the configured language with the contact of the config.
//
// It decides only: it reads nothing from the system and records nothing.
package policy

import (
	"github.com/mamori-agent/mamori/wire"
)

// Texts fills violations from the kinds table.
type Texts struct {
	// Language is "ja" or "en": which text goes into Violation.Message.
	Language string
	// Contact replaces {contact} in every remedy (agent.contact).
	Contact string
}

// Violation builds the violation of kind about device (a bus path, an
// interface name, a MAC) with the template values given; "contact" is
// added. An unknown kind panics: kinds are constants of package wire.
func (t Texts) Violation(kind, device string, values map[string]string) *wire.Violation {
	k, ok := wire.KindOf(kind)
	if !ok {
		panic("policy: unknown violation kind " + kind)
	}
	vals := make(map[string]string, len(values)+1)
	for n, v := range values {
		vals[n] = v
	}
	vals["contact"] = t.Contact
	v := &wire.Violation{Kind: kind, Device: device, Severity: k.Severity, Article: k.Article,
		MessageJA: wire.Expand(k.MessageJA, vals), MessageEN: wire.Expand(k.MessageEN, vals),
		RemedyJA: wire.Expand(k.RemedyJA, vals), RemedyEN: wire.Expand(k.RemedyEN, vals)}
	v.Message = v.MessageJA
	if t.Language == "en" {
		v.Message = v.MessageEN
	}
	return v
}
