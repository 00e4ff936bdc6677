package policy

import (
	"strings"

	"github.com/mamori-agent/mamori/wire"
)

// textValue is one template value that may read differently per language:
// ja goes into the Japanese texts, en into the English ones.
type textValue struct {
	name, ja, en string
}

// same returns a template value that reads the same in both languages.
func same(name, v string) textValue { return textValue{name: name, ja: v, en: v} }

// violationLang is Texts.Violation with values that differ per language
// (network_unapproved's {detail} is a sentence, not a name).
func (t Texts) violationLang(kind, device string, values ...textValue) *wire.Violation {
	v := new(wire.Violation)
	t.fillLang(v, kind, device, values)
	return v
}

// fillLang fills v as violationLang does. It expands the templates the
// way wire.Expand does, without building a replacer per text, into one
// string that the four texts share: a judge of 10,000 neighbours builds
// many of these.
func (t Texts) fillLang(v *wire.Violation, kind, device string, values []textValue) {
	k, ok := wire.KindOf(kind)
	if !ok {
		panic("policy: unknown violation kind " + kind)
	}
	var b strings.Builder
	b.Grow(len(k.MessageJA) + len(k.MessageEN) + len(k.RemedyJA) + len(k.RemedyEN) + 256)
	t.expand(&b, k.MessageJA, values, false)
	e1 := b.Len()
	t.expand(&b, k.MessageEN, values, true)
	e2 := b.Len()
	t.expand(&b, k.RemedyJA, values, false)
	e3 := b.Len()
	t.expand(&b, k.RemedyEN, values, true)
	all := b.String()
	*v = wire.Violation{Kind: kind, Device: device, Severity: k.Severity, Article: k.Article,
		MessageJA: all[:e1], MessageEN: all[e1:e2], RemedyJA: all[e2:e3], RemedyEN: all[e3:]}
	v.Message = v.MessageJA
	if t.Language == "en" {
		v.Message = v.MessageEN
	}
}

// expand writes template to b with each {name} replaced by its value in
// values (the English one when en), {contact} by t.Contact. Like
// wire.Expand, a name without a value is left as it is, and values are not
// expanded again.
func (t Texts) expand(b *strings.Builder, template string, values []textValue, en bool) {
	lookup := func(name string) (string, bool) {
		for i := range values {
			if values[i].name == name {
				if en {
					return values[i].en, true
				}
				return values[i].ja, true
			}
		}
		if name == "contact" {
			return t.Contact, true
		}
		return "", false
	}
	s := template
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return
		}
		j := strings.IndexByte(s[i+1:], '}')
		if j < 0 {
			b.WriteString(s)
			return
		}
		name := s[i+1 : i+1+j]
		if strings.IndexByte(name, '{') >= 0 {
			// "{{x}": the name starts at the later brace.
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		if v, ok := lookup(name); ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+2])
		}
		s = s[i+j+2:]
	}
}
