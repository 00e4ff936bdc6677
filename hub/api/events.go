package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

// PathAgentEvents lists one agent's stored events (GET, staff): the
// records the city keeps (article 19), paged like the violations.
const PathAgentEvents = "/api/v1/agents/{name}/events"

// StoredEvent is one event as GET PathAgentEvents shows it: the hub's id
// (the order of storing), the agent's event id and audit chain position,
// and the event as the agent sent it.
type StoredEvent struct {
	ID       int64           `json:"id"`
	EventID  string          `json:"event_id"`
	Seq      uint64          `json:"seq"`
	Hash     string          `json:"hash"`
	PrevHash string          `json:"prev_hash"`
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	Received time.Time       `json:"received"`
	Event    json.RawMessage `json:"event"`
}

// EventList is the answer of GET PathAgentEvents. NextCursor, when set,
// is the cursor= of the next page.
type EventList struct {
	HubTime    time.Time     `json:"hub_time"`
	Agent      string        `json:"agent"`
	Events     []StoredEvent `json:"events"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// agentEvents is GET /api/v1/agents/{name}/events?cursor=&limit=: the
// agent's events oldest first; 404 for an agent the hub does not know.
func (a *API) agentEvents(w http.ResponseWriter, r *http.Request, _ store.Principal) {
	name := r.PathValue("name")
	q := r.URL.Query()
	f := store.EventFilter{Agent: name, Limit: DefaultLimit}
	var err error
	if v := q.Get("cursor"); v != "" {
		if f.After, err = strconv.ParseInt(v, 10, 64); err != nil || f.After < 0 {
			a.problem(w, http.StatusBadRequest, "cursor: not one this hub gave")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > MaxLimit {
			a.problem(w, http.StatusBadRequest, "limit: want 1 to "+strconv.Itoa(MaxLimit))
			return
		}
	}
	if _, err := a.o.Store.Agent(r.Context(), name); errors.Is(err, store.ErrNotFound) {
		a.problem(w, http.StatusNotFound, "no agent of that name")
		return
	} else if err != nil {
		a.internal(w, r, err)
		return
	}
	limit := f.Limit
	f.Limit++
	rows, err := a.o.Store.Events(r.Context(), f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := EventList{HubTime: a.o.Now().UTC(), Agent: name, Events: []StoredEvent{}}
	if len(rows) > limit {
		rows = rows[:limit]
		out.NextCursor = strconv.FormatInt(rows[limit-1].ID, 10)
	}
	for _, e := range rows {
		raw := e.Raw
		if !json.Valid(raw) {
			// Never expected (the hub stores only JSON objects); shown
			// as a string rather than breaking the answer.
			raw, _ = json.Marshal(string(raw))
		}
		out.Events = append(out.Events, StoredEvent{ID: e.ID, EventID: e.Event.ID, Seq: e.Seq, Hash: e.Hash,
			PrevHash: e.PrevHash, Type: e.Event.Event.Type, Time: e.Event.Event.Time.UTC(), Received: e.Received.UTC(), Event: raw})
	}
	a.writeJSON(w, http.StatusOK, out)
}
