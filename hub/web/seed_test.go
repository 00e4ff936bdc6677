package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/hubtest"
	"github.com/mamori-agent/mamori/wire"
)

// Hostile strings agents send: markup, a script, an attribute breaking
// out of its quotes, and a right-to-left override that would show
// "invoice‮gpj.exe" as "invoiceexe.jpg".
const (
	hostileDevice  = `<script>document.title='PWNED'</script>Evil USB`
	hostileSerial  = `"><img src=x onerror="document.title='PWNED'">`
	hostileMessage = "invoice\u202Egpj.exe <b>bold</b> copied"
	hostileAsset   = `<i>A-0001</i>`
	hostileHost    = "pc\u202Eexe.<svg onload=alert(1)>"
	hostileProduct = `<iframe src="https://example.com/"></iframe>Stick`
)

// seeded is what seed made.
type seeded struct {
	Admin, Agent string
	// Violations counts the violations of pc-001.
	Violations int
}

// seed fills a test hub through its API as agents do: pc-001 (ok, 55
// violations over several days, hostile strings everywhere), pc-002
// (never heard from: silent), pc-003 (stopped cleanly), pc-004 (its
// audit chain broken). now is the hub's time.
func seed(t *testing.T, h *hubtest.Hub, now time.Time) seeded {
	t.Helper()
	s := seeded{Admin: h.AdminToken(), Agent: h.AddAgent("pc-001")}
	h.AddAgent("pc-002")
	tok3 := h.AddAgent("pc-003")
	tok4 := h.AddAgent("pc-004")
	post(t, h, s.Agent, wire.PathHeartbeat, wire.Heartbeat{Schema: 1, AssetID: hostileAsset, Version: "1.0.0", Time: now,
		Host: wire.HostFacts{Hostname: hostileHost, OS: "linux", Platform: "debian", PlatformVersion: "12.8",
			KernelVersion: "6.1.0", BootTime: now.Add(-3 * time.Hour), HostID: "host-<1>"}})
	post(t, h, tok3, wire.PathHeartbeat, wire.Heartbeat{Schema: 1, AssetID: "A-0003", Version: "1.0.0", Time: now,
		Host: wire.HostFacts{Hostname: "pc-003", OS: "windows", Platform: "Microsoft Windows 11 Pro", PlatformVersion: "10.0.22631"}, Stopping: true})

	var evs []wire.BatchEvent
	kinds := []string{wire.KindUSBStorageUnapproved, wire.KindUSBDeviceUnapproved, wire.KindMediaUnencrypted, wire.KindNetworkUnapproved}
	for i := range 55 {
		serial := fmt.Sprintf("SN%04d", i)
		device, msg := fmt.Sprintf("USB stick %d", i), fmt.Sprintf("violation number %d", i)
		if i == 54 { // the newest: first on every list
			serial, device, msg = hostileSerial, hostileDevice, hostileMessage
		}
		day := i % 7 // spread over the last week
		ev := wire.Event{
			Time: now.AddDate(0, 0, -day).Add(-time.Duration(i) * time.Minute), Type: wire.TypeViolation, Source: wire.SourceUSB,
			VendorID: "0781", ProductID: fmt.Sprintf("55%02d", i%3), Serial: &serial,
			Device:    &wire.USBDevice{Path: "1-4", VendorID: "0781", Manufacturer: "SanDisk", Product: hostileProduct, Serial: &serial},
			Violation: &wire.Violation{Kind: kinds[i%len(kinds)], Device: device, Severity: wire.SeverityHigh, Article: "6, 7", Message: msg},
		}
		evs = append(evs, batchEvent(t, fmt.Sprintf("e-%d", i), uint64(i+1), ev))
	}
	post(t, h, s.Agent, wire.PathEvents, wire.Batch{Schema: 1, AssetID: hostileAsset, Events: evs})
	s.Violations = 55

	// pc-004 sends records 1-2, then 5: records 3 and 4 were cut.
	removed := func(id string, seq uint64) wire.BatchEvent {
		serial := "SHARED-SERIAL" // the same stick on pc-004 and pc-003
		return batchEvent(t, id, seq, wire.Event{Time: now.Add(-time.Hour), Type: wire.TypeDeviceRemoved, Source: wire.SourceUSB,
			VendorID: "0951", ProductID: "1666", Serial: &serial,
			Device: &wire.USBDevice{Path: "2-1", VendorID: "0951", ProductID: "1666", Manufacturer: "Kingston", Product: "DataTraveler", Serial: &serial}})
	}
	post(t, h, tok4, wire.PathEvents, wire.Batch{Schema: 1, AssetID: "A-0004", Events: []wire.BatchEvent{removed("r1", 1), removed("r2", 2)}})
	post(t, h, tok4, wire.PathEvents, wire.Batch{Schema: 1, AssetID: "A-0004", Events: []wire.BatchEvent{removed("r5", 5)}})
	post(t, h, tok3, wire.PathEvents, wire.Batch{Schema: 1, AssetID: "A-0003", Events: []wire.BatchEvent{removed("x1", 1)}})
	return s
}

// batchEvent wraps ev as the agent's record seq; post hashes it.
func batchEvent(t *testing.T, id string, seq uint64, ev wire.Event) wire.BatchEvent {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return wire.BatchEvent{ID: id, Seq: seq, Event: raw}
}

// lastRecord is the last record (seq, hash) posted with each token.
var lastRecord = map[string]struct {
	seq  uint64
	hash string
}{}

// chainUp fills in the hashes of a batch's events as the agent's audit log
// makes them, continuing the token's chain where seq follows its last
// record (a gap starts from the zero hash, as a cut log would show).
func chainUp(token string, b *wire.Batch) {
	for i := range b.Events {
		e := &b.Events[i]
		prev := strings.Repeat("0", 64)
		if l, ok := lastRecord[token]; ok && l.seq+1 == e.Seq {
			prev = l.hash
		}
		e.PrevHash, e.Hash = prev, wire.RecordHash(e.Seq, prev, e.Event)
		lastRecord[token] = struct {
			seq  uint64
			hash string
		}{e.Seq, e.Hash}
	}
}

// post sends v to the hub's API with token and wants 200.
func post(t *testing.T, h *hubtest.Hub, token, path string, v any) {
	t.Helper()
	if b, ok := v.(wire.Batch); ok {
		chainUp(token, &b)
		v = b
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.URL+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, buf.String())
	}
}
