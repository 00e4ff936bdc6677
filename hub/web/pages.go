package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

// Paging and sizes of the pages.
const (
	pageSize     = 50
	latestOnHome = 10
	chartDays    = 30
	dateLayout   = "2006-01-02"
	timeLayout   = "2006-01-02 15:04:05"
)

// show makes a string an agent sent safe to read: control and format
// characters (bidi overrides and isolates, zero-width ones, escape
// sequences) become a visible ⟦U+XXXX⟧, so that "abc\u202Egpj.exe"
// cannot pass for "abcexe.jpg". html/template then escapes the rest.
func show(s string) string {
	if strings.IndexFunc(s, hidden) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if hidden(r) {
			fmt.Fprintf(&b, "⟦U+%04X⟧", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// hidden reports whether r is a control or format character.
func hidden(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// fmtTime shows t in the hub's zone; "—" for the zero time.
func (s *Web) fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(s.o.Location).Format(timeLayout)
}

// kindOptions are the kinds the violation filter offers.
func kindOptions() []string {
	return append(wire.KindNames(), wire.KindAuditChainBroken)
}

// overviewData is the overview template's data.
type overviewData struct {
	Chart  chart
	Total  int64
	ByKind []kindCount
	Agents store.AgentCounts
	Latest []store.Violation
}

// kindCount is one row of the counts by kind.
type kindCount struct {
	Kind  string
	Count int64
}

// overview is GET /: violations per day for the last 30 days, counts by
// kind and by PC state, the latest violations.
func (s *Web) overview(w http.ResponseWriter, r *http.Request, p *page) {
	p.Nav = "overview"
	ctx := r.Context()
	now := s.o.Now().In(s.o.Location)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.o.Location)
	since := today.AddDate(0, 0, -(chartDays - 1))
	until := today.AddDate(0, 0, 1)
	// Hourly buckets are put on local days here, so days are right in
	// zones with daylight saving time too.
	buckets, err := s.o.Store.ViolationCounts(ctx, since, until, time.Hour)
	if err != nil {
		s.internal(w, r, p, err)
		return
	}
	days := make([]int64, chartDays)
	kinds := map[string]int64{}
	var d overviewData
	for _, b := range buckets {
		t := b.Start.In(s.o.Location)
		i := dayIndex(since, t)
		if i < 0 || i >= chartDays {
			continue
		}
		days[i] += b.Count
		kinds[b.Kind] += b.Count
		d.Total += b.Count
	}
	for k, n := range kinds {
		d.ByKind = append(d.ByKind, kindCount{k, n})
	}
	slices.SortFunc(d.ByKind, func(a, b kindCount) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	d.Chart = newChart(p.L, since, days)
	if d.Agents, err = s.o.Store.AgentCounts(ctx, s.o.Now(), s.o.SilentAfter); err != nil {
		s.internal(w, r, p, err)
		return
	}
	if d.Latest, err = s.o.Store.Violations(ctx, store.ViolationFilter{Newest: true, Limit: latestOnHome}); err != nil {
		s.internal(w, r, p, err)
		return
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "overview", p)
}

// dayIndex is the number of calendar days from the day of since to
// that of t (both in the same zone).
func dayIndex(since, t time.Time) int {
	a := time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, time.UTC)
	b := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a) / (24 * time.Hour))
}

// violationsData is the violations template's data.
type violationsData struct {
	Agents     []string
	Kinds      []string
	Agent      string
	Kind       string
	Since      string
	Until      string
	Violations []store.Violation
	// NewestURL is set on pages after the first; OlderURL when there are
	// older violations.
	NewestURL, OlderURL string
	// CSVURL exports every violation the filters select ("" when the hub
	// has no export).
	CSVURL string
}

// violations is GET /violations: newest first, filtered by agent, kind
// and days (since and until are dates in the hub's zone, both
// included), paged by before= (the id the page continues below).
func (s *Web) violations(w http.ResponseWriter, r *http.Request, p *page) {
	p.Nav = "violations"
	q := r.URL.Query()
	d := violationsData{Kinds: kindOptions(), Agent: q.Get("agent"), Kind: q.Get("kind"), Since: q.Get("since"), Until: q.Get("until")}
	f := store.ViolationFilter{Agent: d.Agent, Kind: d.Kind, Newest: true, Limit: pageSize + 1}
	if d.Since != "" {
		t, err := time.ParseInLocation(dateLayout, d.Since, s.o.Location)
		if err != nil {
			s.fail(w, r, p, http.StatusBadRequest, "error_bad_request", "since="+d.Since)
			return
		}
		f.Since = t
	}
	if d.Until != "" {
		t, err := time.ParseInLocation(dateLayout, d.Until, s.o.Location)
		if err != nil {
			s.fail(w, r, p, http.StatusBadRequest, "error_bad_request", "until="+d.Until)
			return
		}
		f.Until = t.AddDate(0, 0, 1)
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			s.fail(w, r, p, http.StatusBadRequest, "error_bad_request", "before="+v)
			return
		}
		f.Before = n
	}
	agents, err := s.o.Store.Agents(r.Context())
	if err != nil {
		s.internal(w, r, p, err)
		return
	}
	for _, a := range agents {
		d.Agents = append(d.Agents, a.Name)
	}
	rows, err := s.o.Store.Violations(r.Context(), f)
	if err != nil {
		s.internal(w, r, p, err)
		return
	}
	keep := url.Values{}
	for _, k := range []string{"agent", "kind", "since", "until"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		older := url.Values{}
		for k, v := range keep {
			older[k] = v
		}
		older.Set("before", strconv.FormatInt(rows[pageSize-1].ID, 10))
		d.OlderURL = "/violations?" + older.Encode()
	}
	if f.Before > 0 {
		d.NewestURL = "/violations"
		if len(keep) > 0 {
			d.NewestURL += "?" + keep.Encode()
		}
	}
	if s.o.ViolationsCSV != nil {
		d.CSVURL = "/violations.csv"
		if len(keep) > 0 {
			d.CSVURL += "?" + keep.Encode()
		}
	}
	d.Violations = rows
	p.Data = d
	s.render(w, r, http.StatusOK, "violations", p)
}

// violationsCSV is GET /violations.csv: the API's export of the
// violations the page's filters select (dates in the hub's zone, both
// days included), oldest first, for Excel.
func (s *Web) violationsCSV(w http.ResponseWriter, r *http.Request, p *page) {
	q := r.URL.Query()
	out := url.Values{}
	for _, k := range []string{"agent", "kind"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	for _, k := range []string{"since", "until"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		t, err := time.ParseInLocation(dateLayout, v, s.o.Location)
		if err != nil {
			s.fail(w, r, p, http.StatusBadRequest, "error_bad_request", k+"="+v)
			return
		}
		if k == "until" {
			t = t.AddDate(0, 0, 1)
		}
		out.Set(k, t.Format(time.RFC3339))
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = out.Encode()
	s.o.ViolationsCSV(w, r2)
}

// devicesCSV is GET /devices.csv: the API's export of the devices the
// page's filters select.
func (s *Web) devicesCSV(w http.ResponseWriter, r *http.Request, p *page) {
	s.o.DevicesCSV(w, r)
}

// agentRow is one PC as the agents page shows it.
type agentRow struct {
	store.Agent
	State, Chain string
}

// agents is GET /agents.
func (s *Web) agents(w http.ResponseWriter, r *http.Request, p *page) {
	p.Nav = "agents"
	rows, err := s.o.Store.Agents(r.Context())
	if err != nil {
		s.internal(w, r, p, err)
		return
	}
	now := s.o.Now()
	out := make([]agentRow, 0, len(rows))
	for _, a := range rows {
		out = append(out, agentRow{Agent: a, State: a.State(now, s.o.SilentAfter), Chain: a.Chain()})
	}
	p.Data = out
	s.render(w, r, http.StatusOK, "agents", p)
}

// deviceGroup is one device (vendor, product, serial) and the PCs that
// saw it.
type deviceGroup struct {
	VendorID, ProductID, Serial, Product string
	Seen                                 []store.Device
}

// devicesData is the devices template's data.
type devicesData struct {
	Serial, VendorID, ProductID string
	Groups                      []deviceGroup
	// CSVURL exports the devices the filters select ("" when the hub
	// has no export).
	CSVURL string
}

// devices is GET /devices: the inventory, one row per device with the
// PCs that saw it.
func (s *Web) devices(w http.ResponseWriter, r *http.Request, p *page) {
	p.Nav = "devices"
	q := r.URL.Query()
	d := devicesData{Serial: q.Get("serial"), VendorID: q.Get("vendor_id"), ProductID: q.Get("product_id")}
	rows, err := s.o.Store.Devices(r.Context(), store.DeviceFilter{Agent: q.Get("agent"), Serial: d.Serial, VendorID: d.VendorID, ProductID: d.ProductID})
	if err != nil {
		s.internal(w, r, p, err)
		return
	}
	for _, dev := range rows {
		n := len(d.Groups)
		if n == 0 || d.Groups[n-1].VendorID != dev.VendorID || d.Groups[n-1].ProductID != dev.ProductID || d.Groups[n-1].Serial != dev.Serial {
			d.Groups = append(d.Groups, deviceGroup{VendorID: dev.VendorID, ProductID: dev.ProductID, Serial: dev.Serial})
			n++
		}
		g := &d.Groups[n-1]
		if dev.Product != "" {
			g.Product = dev.Product
		}
		g.Seen = append(g.Seen, dev)
	}
	if s.o.DevicesCSV != nil {
		keep := url.Values{}
		for _, k := range []string{"serial", "vendor_id", "product_id"} {
			if v := q.Get(k); v != "" {
				keep.Set(k, v)
			}
		}
		d.CSVURL = "/devices.csv"
		if len(keep) > 0 {
			d.CSVURL += "?" + keep.Encode()
		}
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "devices", p)
}
