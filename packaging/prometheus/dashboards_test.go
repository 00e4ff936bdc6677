package prometheus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboardDir holds the Grafana dashboards.
const dashboardDir = "../grafana"

// dsUID is the data source every panel and target names: the input
// variable Grafana's import asks for (and a data source variable of the
// same name, for file provisioning).
const dsUID = "${DS_PROMETHEUS}"

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ H, W, X, Y int }

type target struct {
	Expr       string `json:"expr"`
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
}

type panel struct {
	ID         int     `json:"id"`
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource *dsRef  `json:"datasource"`
	GridPos    gridPos `json:"gridPos"`
	Targets    []target
	Panels     []panel `json:"panels"` // a collapsed row's
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *dsRef          `json:"datasource"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

type dashboard struct {
	file   string
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

// loadDashboards reads every dashboard of dashboardDir.
func loadDashboards(t *testing.T) []*dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", dashboardDir, err)
	}
	var out []*dashboard
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &dashboard{file: filepath.Base(f)}
		if err := json.Unmarshal(data, d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

// allPanels returns the panels, those inside collapsed rows included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// query is one PromQL expression of a dashboard, where it comes from.
type query struct {
	where string // "file: panel title / refId"
	expr  string // as in the dashboard
}

// queries lists every target expression of every panel.
func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{where: fmt.Sprintf("%s: %q / %s", d.file, p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	return out
}

// builtins stand for Grafana's own variables when a query is run by
// hand: a rate window of four 15 s scrapes, a 5 minute dashboard range.
var builtins = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "5m",
}

var varRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// values returns what the dashboard's variables stand for by default:
// the current value, or the "All" value for a multi-value variable left
// at All.
func (d *dashboard) values() map[string]string {
	v := map[string]string{}
	for k, b := range builtins {
		v[k] = b
	}
	for _, x := range d.Templating.List {
		switch cur := x.Current.Value.(type) {
		case string:
			v[x.Name] = cur
		case []any:
			if len(cur) == 1 && cur[0] == "$__all" {
				v[x.Name] = x.AllValue
			} else {
				var s []string
				for _, e := range cur {
					s = append(s, fmt.Sprint(e))
				}
				v[x.Name] = strings.Join(s, "|")
			}
		}
	}
	return v
}

// expand replaces the variables in expr; it fails on one it does not know.
func expand(expr string, vars map[string]string) (string, error) {
	var err error
	out := varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sm := varRef.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		v, ok := vars[name]
		if !ok {
			err = fmt.Errorf("unknown variable $%s", name)
			return m
		}
		return v
	})
	return out, err
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// variableQuery turns a query variable's label_values(SELECTOR, LABEL)
// into PromQL that returns one series per value, and the label.
func variableQuery(def string) (expr, label string, err error) {
	m := labelValues.FindStringSubmatch(strings.TrimSpace(def))
	if m == nil {
		return "", "", fmt.Errorf("not label_values(selector, label): %q", def)
	}
	return fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), m[2], nil
}

func TestDashboardsWellFormed(t *testing.T) {
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q, title %q: both needed", d.file, d.UID, d.Title)
		}
		if f, ok := uids[d.UID]; ok {
			t.Errorf("%s: uid %s also in %s", d.file, d.UID, f)
		}
		uids[d.UID] = d.file
		if d.SchemaVersion < 36 {
			t.Errorf("%s: schemaVersion %d, want 36 or later", d.file, d.SchemaVersion)
		}
		if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
			t.Errorf("%s: __inputs %+v, want the one data source input DS_PROMETHEUS", d.file, d.Inputs)
		}
		vars := d.values()
		hasDSVar := false
		for _, v := range d.Templating.List {
			switch v.Type {
			case "datasource":
				hasDSVar = hasDSVar || v.Name == "DS_PROMETHEUS"
			case "query":
				if v.Datasource == nil || v.Datasource.UID != dsUID {
					t.Errorf("%s: variable %s: data source %+v, want %s", d.file, v.Name, v.Datasource, dsUID)
				}
				if _, _, err := variableQuery(v.Definition); err != nil {
					t.Errorf("%s: variable %s: %v", d.file, v.Name, err)
				}
			}
		}
		if !hasDSVar {
			t.Errorf("%s: no data source variable DS_PROMETHEUS (file provisioning needs it)", d.file)
		}

		ids := map[int]bool{}
		var boxes []panel
		for _, p := range d.allPanels() {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", d.file, p.ID)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: %q: gridPos %+v outside the 24-column grid", d.file, p.Title, g)
			}
			for _, o := range boxes {
				h := o.GridPos
				if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					t.Errorf("%s: %q overlaps %q", d.file, p.Title, o.Title)
				}
			}
			boxes = append(boxes, p)
			if p.Type == "row" {
				continue
			}
			if p.Title == "" {
				t.Errorf("%s: panel %d has no title", d.file, p.ID)
			}
			if p.Datasource == nil || p.Datasource.UID != dsUID {
				t.Errorf("%s: %q: data source %+v, want %s", d.file, p.Title, p.Datasource, dsUID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: %q: no queries", d.file, p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: %q: refId %q empty or repeated", d.file, p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
				if tg.Datasource == nil || tg.Datasource.UID != dsUID {
					t.Errorf("%s: %q/%s: data source %+v, want %s", d.file, p.Title, tg.RefID, tg.Datasource, dsUID)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: %q/%s: empty expression", d.file, p.Title, tg.RefID)
				}
				if _, err := expand(tg.Expr, vars); err != nil {
					t.Errorf("%s: %q/%s: %v", d.file, p.Title, tg.RefID, err)
				}
			}
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"job": "mamori", "instance": ".*", "__rate_interval": "1m"}
	for _, tc := range []struct{ in, want string }{
		{`rate(x{job=~"$job", instance=~"$instance"}[$__rate_interval])`, `rate(x{job=~"mamori", instance=~".*"}[1m])`},
		{`x{job=~"${job}"}`, `x{job=~"mamori"}`},
		{`x{job=~"${job:regex}"}`, `x{job=~"mamori"}`},
		{`x{job=~"[[job]]"}`, `x{job=~"mamori"}`},
		{`sum(x)`, `sum(x)`},
	} {
		got, err := expand(tc.in, vars)
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := expand(`x{a="$nosuch"}`, vars); err == nil {
		t.Error("expand of an unknown variable: no error")
	}
	if e, l, err := variableQuery(`label_values(up{job=~"$job"}, instance)`); err != nil || l != "instance" || e != `count by (instance) (up{job=~"$job"})` {
		t.Errorf("variableQuery: %q %q %v", e, l, err)
	}
	if _, _, err := variableQuery(`query_result(up)`); err == nil {
		t.Error("variableQuery(query_result): no error")
	}
}
