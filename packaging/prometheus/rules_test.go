package prometheus

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-agent/mamori/wire"
)

// ruleFiles are the alerting rules; ruleTests their promtool unit tests.
var (
	ruleFiles = []string{"mamori-agent.rules.yml", "mamori-hub.rules.yml"}
	ruleTests = []string{"mamori-agent.rules.test.yml", "mamori-hub.rules.test.yml"}
)

// rule is one alerting rule, as far as the tests read it.
type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	file        string
}

// loadRules reads every rule of ruleFiles.
func loadRules(t *testing.T) []rule {
	t.Helper()
	var all []rule
	for _, f := range ruleFiles {
		var doc struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				r.file = f
				all = append(all, r)
			}
		}
	}
	if len(all) == 0 {
		t.Fatal("no rules read")
	}
	return all
}

// tool finds a command of Debian's prometheus package. As root (CI) a
// missing one fails the test; otherwise it skips, since only root can
// install it (scripts/test-deps.sh).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Geteuid() == 0 || os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed: run scripts/test-deps.sh (Debian's prometheus package)", name)
	}
	t.Skipf("%s not installed and not root to install it (scripts/test-deps.sh installs Debian's prometheus package)", name)
	return ""
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(tool(t, "promtool"), append([]string{"check", "rules"}, ruleFiles...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestPromtoolTestRules(t *testing.T) {
	out, err := exec.Command(tool(t, "promtool"), append([]string{"test", "rules"}, ruleTests...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	if bytes.Count(out, []byte("SUCCESS")) != len(ruleTests) {
		t.Fatalf("promtool test rules: want %d SUCCESS:\n%s", len(ruleTests), out)
	}
}

// annotations every alert carries, in both languages.
var annotationKeys = []string{"summary", "summary_ja", "description", "description_ja", "runbook", "runbook_ja"}

func TestRulesLabelledAndAnnotated(t *testing.T) {
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			t.Errorf("%s: a recording rule (%s): these files hold alerts only", r.file, r.Record)
			continue
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: %s: severity %q, want critical or warning", r.file, r.Alert, s)
		}
		if !strings.HasPrefix(r.Alert, "Mamori") {
			t.Errorf("%s: %s: alert names start with Mamori", r.file, r.Alert)
		}
		for _, k := range annotationKeys {
			v := strings.TrimSpace(r.Annotations[k])
			switch {
			case v == "":
				t.Errorf("%s: %s: annotation %s missing", r.file, r.Alert, k)
			case strings.HasSuffix(k, "_ja") && !hasJapanese(v):
				t.Errorf("%s: %s: %s has no Japanese text: %q", r.file, r.Alert, k, v)
			case !strings.HasSuffix(k, "_ja") && hasJapanese(v):
				t.Errorf("%s: %s: %s should be English: %q", r.file, r.Alert, k, v)
			}
		}
		for k := range r.Annotations {
			if !slices.Contains(annotationKeys, k) {
				t.Errorf("%s: %s: unexpected annotation %s", r.file, r.Alert, k)
			}
		}
	}
}

// hasJapanese reports whether s holds hiragana, katakana or kanji.
func hasJapanese(s string) bool {
	for _, r := range s {
		if (r >= 0x3040 && r <= 0x30ff) || (r >= 0x4e00 && r <= 0x9fff) {
			return true
		}
	}
	return false
}

// TestRulesTestedBothWays checks that the promtool tests hold, for every
// alert (and each of its severities), a case where it fires and one
// where it must not.
func TestRulesTestedBothWays(t *testing.T) {
	type key struct{ alert, severity string }
	fires := map[key]bool{}
	silent := map[string]bool{}
	for _, f := range ruleTests {
		var doc struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				Name      string `yaml:"name"`
				AlertTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []struct {
						ExpLabels map[string]string `yaml:"exp_labels"`
					} `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range doc.Tests {
			for _, at := range tc.AlertTest {
				if len(at.ExpAlerts) == 0 {
					silent[at.Alertname] = true
				}
				for _, a := range at.ExpAlerts {
					fires[key{at.Alertname, a.ExpLabels["severity"]}] = true
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		if !fires[key{r.Alert, r.Labels["severity"]}] {
			t.Errorf("%s: no promtool test where %s (severity %s) fires", r.file, r.Alert, r.Labels["severity"])
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no promtool test where %s must not fire", r.file, r.Alert)
		}
	}
}

var kindMatcher = regexp.MustCompile(`kind(=~|!~)"([^"]*)"`)

// TestViolationSeveritySplit holds the kinds listed in the violation
// alerts to mamori's kinds table: critical and high kinds alert as
// critical, the rest (and kinds added later) as warning.
func TestViolationSeveritySplit(t *testing.T) {
	var critical []string
	for _, k := range wire.Kinds {
		switch k.Severity {
		case wire.SeverityCritical, wire.SeverityHigh:
			critical = append(critical, k.Kind)
		case wire.SeverityMedium:
		default:
			t.Errorf("kind %s: severity %q this test does not know: decide which alert it belongs to", k.Kind, k.Severity)
		}
	}
	sort.Strings(critical)
	seen := map[string]int{}
	for _, r := range loadRules(t) {
		if r.Alert != "MamoriViolation" && r.Alert != "MamoriHubViolation" {
			continue
		}
		seen[r.Alert]++
		ms := kindMatcher.FindAllStringSubmatch(r.Expr, -1)
		if len(ms) == 0 {
			t.Errorf("%s: %s: no kind matcher in %s", r.file, r.Alert, r.Expr)
			continue
		}
		op := map[string]string{"critical": "=~", "warning": "!~"}[r.Labels["severity"]]
		want := slices.Clone(critical)
		if r.Alert == "MamoriHubViolation" && op == "!~" {
			// The hub raises audit_chain_broken itself; it has its own alert.
			want = append(want, wire.KindAuditChainBroken)
			sort.Strings(want)
		}
		for _, m := range ms {
			got := strings.Split(m[2], "|")
			sort.Strings(got)
			if m[1] != op || !slices.Equal(got, want) {
				t.Errorf("%s: %s severity %s: matcher kind%s%q, want kind%s%q", r.file, r.Alert, r.Labels["severity"], m[1], m[2], op, strings.Join(want, "|"))
			}
		}
	}
	if seen["MamoriViolation"] != 2 || seen["MamoriHubViolation"] != 2 {
		t.Errorf("want a critical and a warning rule each for MamoriViolation and MamoriHubViolation, got %v", seen)
	}
}

// TestRulesFilesAreUTF8 guards the Japanese text against a bad encoding.
func TestRulesFilesAreUTF8(t *testing.T) {
	files, _ := filepath.Glob("*.yml")
	files = append(files, "README.md")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(b) || bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
			t.Errorf("%s: not UTF-8 without a BOM", f)
		}
	}
}
