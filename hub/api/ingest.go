package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

// Limits of what a batch carries.
const (
	maxIDLen    = 128
	maxHashLen  = 256
	maxAssetLen = 256
	// maxDropped bounds the events one batch says were dropped: far
	// above any queue (report.queue_limit is at most 10^8).
	maxDropped = 1 << 40
)

// BadRequest is why a request body was refused, and its status (400, or
// 413 for too many events).
type BadRequest struct {
	Status int
	Msg    string
}

func (e *BadRequest) Error() string { return e.Msg }

func bad(format string, args ...any) error {
	return &BadRequest{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// DecodeBatch decodes and checks a wire.Batch: one JSON object; a schema;
// at most wire.MaxBatchEvents events, each with an id (printable, at most
// 128 bytes), a seq that fits the store, and an event that is a JSON
// object reading as a wire.Event. Fields it does not know are ignored (an
// agent newer than the hub). Errors are *BadRequest.
func DecodeBatch(data []byte) (*store.Batch, error) {
	if err := checkDepth(data, maxJSONDepth); err != nil {
		return nil, bad("broken JSON: %v", err)
	}
	var b wire.Batch
	// segmentio/encoding/json: encoding/json's behaviour (it runs the
	// standard library's tests) at about a third of its CPU, which is
	// most of the hub's work per event (BenchmarkDecodeBatch).
	if err := fastjson.Unmarshal(data, &b); err != nil {
		return nil, bad("broken JSON: %v", err)
	}
	if b.Schema < 1 {
		return nil, bad("schema: the sender's wire.SchemaVersion is required")
	}
	if len(b.Events) > wire.MaxBatchEvents {
		return nil, &BadRequest{Status: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("%d events: a batch carries at most %d", len(b.Events), wire.MaxBatchEvents)}
	}
	if len(b.AssetID) > maxAssetLen {
		return nil, bad("asset_id: longer than %d bytes", maxAssetLen)
	}
	if b.Dropped < 0 || b.Dropped > maxDropped {
		return nil, bad("dropped: want 0 to %d", int64(maxDropped))
	}
	out := &store.Batch{AssetID: b.AssetID, BootID: b.BootID, Dropped: b.Dropped, Events: make([]store.Event, len(b.Events))}
	for i, e := range b.Events {
		if err := checkID(e.ID); err != nil {
			return nil, bad("events[%d].id: %v", i, err)
		}
		if e.Seq > math.MaxInt64 {
			return nil, bad("events[%d].seq: too large", i)
		}
		if len(e.Hash) > maxHashLen || len(e.PrevHash) > maxHashLen {
			return nil, bad("events[%d]: hash longer than %d bytes", i, maxHashLen)
		}
		raw := bytes.TrimSpace(e.Event)
		if len(raw) == 0 || raw[0] != '{' {
			return nil, bad("events[%d].event: want a JSON object", i)
		}
		ev := &out.Events[i]
		if err := fastjson.Unmarshal(raw, &ev.Event); err != nil {
			return nil, bad("events[%d].event: %v", i, err)
		}
		ev.ID, ev.Seq, ev.Hash, ev.PrevHash, ev.Raw = e.ID, e.Seq, e.Hash, e.PrevHash, raw
		ev.Altered = wire.RecordHash(e.Seq, e.PrevHash, raw) != e.Hash
	}
	return out, nil
}

// decodeOne decodes data as exactly one JSON value into v.
func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return bad("broken JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("broken JSON: more after the value")
	}
	return nil
}

// checkID checks an event id: not empty, at most maxIDLen bytes, UTF-8
// without control or space characters.
func checkID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("longer than %d bytes", maxIDLen)
	}
	if !utf8.ValidString(id) {
		return errors.New("not UTF-8")
	}
	if strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return errors.New("holds a control or space character")
	}
	return nil
}

// readBody reads a request body of at most limit bytes, answering 413
// (or 400) itself when it cannot.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if r.ContentLength > limit {
		a.problem(w, http.StatusRequestEntityTooLarge, "the body is larger than "+strconv.FormatInt(limit, 10)+" bytes")
		return nil, false
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		a.problem(w, http.StatusRequestEntityTooLarge, "the body is larger than "+strconv.FormatInt(limit, 10)+" bytes")
		return nil, false
	}
	if err != nil {
		a.problem(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return nil, false
	}
	return data, true
}

// events is POST /api/v1/events: a wire.Batch in, a wire.BatchResult out.
func (a *API) events(w http.ResponseWriter, r *http.Request, who store.Principal, data []byte) {
	start := time.Now()
	defer func() { a.o.Metrics.IngestDuration(time.Since(start)) }()
	b, err := DecodeBatch(data)
	var br *BadRequest
	if errors.As(err, &br) {
		a.problem(w, br.Status, br.Msg)
		return
	}
	res, err := a.o.Store.Ingest(r.Context(), who.Name, b, a.o.Now())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.o.Metrics.Ingested(res)
	if res.ChainBroken {
		a.o.Logger.Warn("audit chain broken", "agent", who.Name)
	}
	pv, err := a.policyVersion(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writeJSON(w, http.StatusOK, wire.BatchResult{
		HubTime: a.o.Now().UTC(), Accepted: res.Accepted, Duplicates: res.Duplicates,
		ChainBroken: res.ChainBroken, PolicyVersion: pv,
	})
}

// heartbeat is POST /api/v1/heartbeat.
func (a *API) heartbeat(w http.ResponseWriter, r *http.Request, who store.Principal, data []byte) {
	var hb wire.Heartbeat
	if err := decodeOne(data, &hb); err != nil {
		a.problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(hb.AssetID) > maxAssetLen {
		a.problem(w, http.StatusBadRequest, "asset_id: too long")
		return
	}
	if hb.Queue < 0 || hb.PolicyVersion < 0 {
		a.problem(w, http.StatusBadRequest, "queue and policy_version: negative")
		return
	}
	if err := a.o.Store.Heartbeat(r.Context(), who.Name, &hb, a.o.Now()); err != nil {
		a.internal(w, r, err)
		return
	}
	pv, err := a.policyVersion(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writeJSON(w, http.StatusOK, wire.HeartbeatResult{HubTime: a.o.Now().UTC(), PolicyVersion: pv})
}

// policy is GET /api/v1/policy: the current approved lists, 304 when the
// If-None-Match header names their ETag, 404 when none were set.
func (a *API) policy(w http.ResponseWriter, r *http.Request, _ store.Principal) {
	p, err := a.o.Store.Policy(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		a.problem(w, http.StatusNotFound, "no approved lists were set at the hub (mamori-hub policy set)")
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	etag := ETag(p.Version)
	w.Header().Set("ETag", etag)
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	a.writeJSON(w, http.StatusOK, wire.PolicyBundle{
		Version: p.Version, Changed: p.Changed, ChangedBy: p.ChangedBy, Approved: p.Approved,
		Digest: p.Digest, HubTime: a.o.Now().UTC(),
	})
}

// ETag is the ETag of a policy version: the version in quotes.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// etagMatch reports whether an If-None-Match header names etag (or *).
func etagMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
