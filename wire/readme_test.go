package wire

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the kinds table in ../README.md")

const (
	kindsBegin = "<!-- kinds: generated from wire.Kinds; go test ./wire -update-readme rewrites it -->\n"
	kindsEnd   = "<!-- end of kinds -->\n"
)

// kindsTable renders the kinds table as Markdown.
func kindsTable() string {
	var b strings.Builder
	b.WriteString("| kind | when | severity | article | 日本語 |\n|---|---|---|---|---|\n")
	for _, k := range Kinds {
		b.WriteString("| `" + k.Kind + "` | " + k.When + " | " + k.Severity + " | " + k.Article + " | " + k.TitleJA + " |\n")
	}
	return b.String()
}

// TestREADMEKindsTable holds the README's table of violation kinds to the
// one table in this package.
func TestREADMEKindsTable(t *testing.T) {
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skip("no README beside the module:", err)
	}
	s := string(b)
	i, j := strings.Index(s, kindsBegin), strings.Index(s, kindsEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no kinds table between %q and %q", kindsBegin, kindsEnd)
	}
	want := kindsTable()
	got := s[i+len(kindsBegin) : j]
	if got == want {
		return
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(s[:i+len(kindsBegin)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's kinds table differs from wire.Kinds (go test ./wire -update-readme rewrites it); want:\n%s", want)
}

// TestKindsTable checks the table: every kind once, known severities and
// sources, the texts in both languages, and every remedy naming the
// contact.
func TestKindsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds {
		if seen[k.Kind] {
			t.Errorf("%s twice", k.Kind)
		}
		seen[k.Kind] = true
		switch k.Severity {
		case SeverityCritical, SeverityHigh, SeverityMedium:
		default:
			t.Errorf("%s: severity %q", k.Kind, k.Severity)
		}
		switch k.Source {
		case SourceUSB, SourceMedia, SourceNetwork, SourceLAN:
		default:
			t.Errorf("%s: source %q", k.Kind, k.Source)
		}
		for _, txt := range []string{k.MessageJA, k.MessageEN, k.RemedyJA, k.RemedyEN, k.TitleJA, k.TitleEN, k.When, k.Article} {
			if txt == "" {
				t.Errorf("%s: an empty text", k.Kind)
			}
		}
		for _, r := range []string{k.RemedyJA, k.RemedyEN} {
			if !strings.Contains(r, "{contact}") {
				t.Errorf("%s: remedy without {contact}: %s", k.Kind, r)
			}
		}
		for _, txt := range []string{k.MessageJA, k.MessageEN, k.RemedyJA, k.RemedyEN} {
			for rest := txt; ; {
				i := strings.IndexByte(rest, '{')
				if i < 0 {
					break
				}
				j := strings.IndexByte(rest[i:], '}')
				if j < 0 {
					t.Errorf("%s: unclosed { in %q", k.Kind, txt)
					break
				}
				name := rest[i+1 : i+j]
				found := false
				for _, f := range k.Fields {
					found = found || f == name
				}
				if !found {
					t.Errorf("%s: {%s} is not in Fields %v", k.Kind, name, k.Fields)
				}
				rest = rest[i+j:]
			}
		}
	}
}

func TestExpand(t *testing.T) {
	got := Expand("{a} and {b} but {c}", map[string]string{"a": "{b}", "b": "x"})
	if got != "{b} and x but {c}" {
		t.Errorf("Expand = %q", got)
	}
}
