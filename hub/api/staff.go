package api

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

// Paging of GET /api/v1/violations.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Violation is one violation as the API shows it.
type Violation struct {
	ID        int64     `json:"id"`
	EventID   string    `json:"event_id,omitempty"`
	Agent     string    `json:"agent"`
	AssetID   string    `json:"asset_id"`
	Kind      string    `json:"kind"`
	Severity  string    `json:"severity"`
	Article   string    `json:"article"`
	Device    string    `json:"device"`
	VendorID  string    `json:"vendor_id"`
	ProductID string    `json:"product_id"`
	Serial    string    `json:"serial"`
	Message   string    `json:"message"`
	Time      time.Time `json:"time"`
	Received  time.Time `json:"received"`
}

// ViolationList is the answer of GET /api/v1/violations. NextCursor,
// when set, is the cursor= of the next page.
type ViolationList struct {
	HubTime    time.Time   `json:"hub_time"`
	Violations []Violation `json:"violations"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// Agent is one agent as the API shows it.
type Agent struct {
	Name     string     `json:"name"`
	AssetID  string     `json:"asset_id"`
	LastSeen *time.Time `json:"last_seen"`
	// State is ok, silent or stopped; Chain intact or broken.
	State         string      `json:"state"`
	Chain         string      `json:"chain"`
	ChainSeq      uint64      `json:"chain_seq"`
	Revoked       bool        `json:"revoked,omitempty"`
	Host          interface{} `json:"host"`
	Version       string      `json:"version"`
	Queue         int         `json:"queue"`
	PolicyVersion int64       `json:"policy_version"`
	Dropped       int64       `json:"dropped"`
}

// AgentList is the answer of GET /api/v1/agents.
type AgentList struct {
	HubTime time.Time `json:"hub_time"`
	Agents  []Agent   `json:"agents"`
}

// Device is one device seen on one PC.
type Device struct {
	VendorID  string    `json:"vendor_id"`
	ProductID string    `json:"product_id"`
	Serial    string    `json:"serial"`
	Product   string    `json:"product"`
	Agent     string    `json:"agent"`
	AssetID   string    `json:"asset_id"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int64     `json:"count"`
}

// DeviceList is the answer of GET /api/v1/devices.
type DeviceList struct {
	HubTime time.Time `json:"hub_time"`
	Devices []Device  `json:"devices"`
}

// violationFilter reads agent, kind, since, until (RFC 3339), cursor and
// limit from q.
func violationFilter(q url.Values, paged bool) (store.ViolationFilter, error) {
	f := store.ViolationFilter{Agent: q.Get("agent"), Kind: q.Get("kind")}
	var err error
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			if *p.t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return f, bad("%s: want an RFC 3339 time like 2026-04-01T09:00:00+09:00", p.name)
			}
		}
	}
	if !paged {
		return f, nil
	}
	if v := q.Get("cursor"); v != "" {
		if f.After, err = strconv.ParseInt(v, 10, 64); err != nil || f.After < 0 {
			return f, bad("cursor: not one this hub gave")
		}
	}
	f.Limit = DefaultLimit
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > MaxLimit {
			return f, bad("limit: want 1 to %d", MaxLimit)
		}
	}
	return f, nil
}

// violations is GET /api/v1/violations: oldest first, paged by cursor.
func (a *API) violations(w http.ResponseWriter, r *http.Request, _ store.Principal) {
	f, err := violationFilter(r.URL.Query(), true)
	if err != nil {
		a.problem(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	rows, err := a.o.Store.Violations(r.Context(), f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := ViolationList{HubTime: a.o.Now().UTC(), Violations: []Violation{}}
	if len(rows) > limit {
		rows = rows[:limit]
		out.NextCursor = strconv.FormatInt(rows[limit-1].ID, 10)
	}
	for _, v := range rows {
		out.Violations = append(out.Violations, Violation(v))
	}
	a.writeJSON(w, http.StatusOK, out)
}

// agents is GET /api/v1/agents.
func (a *API) agents(w http.ResponseWriter, r *http.Request, _ store.Principal) {
	rows, err := a.o.Store.Agents(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	now := a.o.Now()
	out := AgentList{HubTime: now.UTC(), Agents: []Agent{}}
	for _, ag := range rows {
		v := Agent{
			Name: ag.Name, AssetID: ag.AssetID, State: ag.State(now, a.o.SilentAfter), Chain: ag.Chain(),
			ChainSeq: ag.ChainSeq, Revoked: ag.Revoked, Host: ag.Host, Version: ag.Version, Queue: ag.Queue,
			PolicyVersion: ag.PolicyVersion, Dropped: ag.Dropped,
		}
		if !ag.LastSeen.IsZero() {
			t := ag.LastSeen
			v.LastSeen = &t
		}
		out.Agents = append(out.Agents, v)
	}
	a.writeJSON(w, http.StatusOK, out)
}

// deviceFilter reads agent, vendor_id, product_id and serial from q.
func deviceFilter(q url.Values) store.DeviceFilter {
	return store.DeviceFilter{Agent: q.Get("agent"), VendorID: q.Get("vendor_id"), ProductID: q.Get("product_id"), Serial: q.Get("serial")}
}

// devices is GET /api/v1/devices: on which PCs a device or serial was
// seen.
func (a *API) devices(w http.ResponseWriter, r *http.Request, _ store.Principal) {
	rows, err := a.o.Store.Devices(r.Context(), deviceFilter(r.URL.Query()))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := DeviceList{HubTime: a.o.Now().UTC(), Devices: []Device{}}
	for _, d := range rows {
		out.Devices = append(out.Devices, Device{
			VendorID: d.VendorID, ProductID: d.ProductID, Serial: d.Serial, Product: d.Product, Agent: d.Agent,
			AssetID: d.AssetID, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, Count: d.Count,
		})
	}
	a.writeJSON(w, http.StatusOK, out)
}

// utf8BOM starts every CSV export: Excel on a Japanese Windows PC reads a
// CSV file without it as Shift_JIS.
const utf8BOM = "\uFEFF"

// csvWriter starts a CSV answer named file: UTF-8 with BOM, CRLF lines.
func (a *API) csvWriter(w http.ResponseWriter, file string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(utf8BOM))
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return cw
}

// cell makes an agent's string safe in a spreadsheet: a cell that starts
// with = + - @ or a tab or CR would be read as a formula (CSV injection),
// so it gets a leading apostrophe, which Excel shows as text.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvTime is a time as Excel reads it, in the export's zone.
func (a *API) csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(a.o.Location).Format("2006-01-02 15:04:05")
}

// ViolationsCSV serves the violations CSV export to a caller that has
// checked the request comes from security staff (the pages' session):
// the same file as GET /api/v1/violations.csv, with its query
// (agent, kind, since, until as RFC 3339).
func (a *API) ViolationsCSV(w http.ResponseWriter, r *http.Request) {
	a.violationsCSV(w, r, store.Principal{})
}

// DevicesCSV is ViolationsCSV for GET /api/v1/devices.csv.
func (a *API) DevicesCSV(w http.ResponseWriter, r *http.Request) {
	a.devicesCSV(w, r, store.Principal{})
}

// violationsCSV is GET /api/v1/violations.csv: every violation the
// filters (agent, kind, since, until) select, oldest first.
func (a *API) violationsCSV(w http.ResponseWriter, r *http.Request, _ store.Principal) {
	f, err := violationFilter(r.URL.Query(), false)
	if err != nil {
		a.problem(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit = MaxLimit
	rows, err := a.o.Store.Violations(r.Context(), f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	cw := a.csvWriter(w, "violations.csv")
	cw.Write([]string{"id", "time", "agent", "asset_id", "kind", "severity", "article", "device",
		"vendor_id", "product_id", "serial", "message"})
	for len(rows) > 0 {
		for _, v := range rows {
			cw.Write([]string{strconv.FormatInt(v.ID, 10), a.csvTime(v.Time), cell(v.Agent), cell(v.AssetID),
				cell(v.Kind), cell(v.Severity), cell(v.Article), cell(v.Device), cell(v.VendorID),
				cell(v.ProductID), cell(v.Serial), cell(v.Message)})
		}
		if len(rows) < f.Limit {
			break
		}
		f.After = rows[len(rows)-1].ID
		if rows, err = a.o.Store.Violations(r.Context(), f); err != nil {
			// The header is sent: the log says why the file is cut.
			a.o.Logger.Error("violations.csv cut short", "err", err)
			break
		}
	}
	cw.Flush()
}

// devicesCSV is GET /api/v1/devices.csv.
func (a *API) devicesCSV(w http.ResponseWriter, r *http.Request, _ store.Principal) {
	rows, err := a.o.Store.Devices(r.Context(), deviceFilter(r.URL.Query()))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	cw := a.csvWriter(w, "devices.csv")
	cw.Write([]string{"vendor_id", "product_id", "serial", "product", "agent", "asset_id", "first_seen", "last_seen", "count"})
	for _, d := range rows {
		cw.Write([]string{cell(d.VendorID), cell(d.ProductID), cell(d.Serial), cell(d.Product), cell(d.Agent),
			cell(d.AssetID), a.csvTime(d.FirstSeen), a.csvTime(d.LastSeen), strconv.FormatInt(d.Count, 10)})
	}
	cw.Flush()
}
