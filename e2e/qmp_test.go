//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// qmpEvent is an asynchronous QMP event.
type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// qmpReply is the answer to one command.
type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// qmpClient speaks QMP over one connection: commands carry ids, replies
// go to their caller, events go to a stream any test can wait on.
type qmpClient struct {
	conn    net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	next    int
	pending map[string]chan qmpReply
	Events  *stream[qmpEvent]
}

// newQMP reads the greeting, negotiates capabilities and starts reading.
func newQMP(ctx context.Context, conn net.Conn) (*qmpClient, error) {
	q := &qmpClient{conn: conn, pending: map[string]chan qmpReply{}, Events: newStream[qmpEvent]()}
	r := bufio.NewReaderSize(conn, 1<<16)
	greeting, err := r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	var g struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := json.Unmarshal(greeting, &g); err != nil || g.QMP == nil {
		return nil, fmt.Errorf("qmp greeting: unexpected %q", greeting)
	}
	go q.readLoop(r)
	if _, err := q.Do(ctx, "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *qmpClient) readLoop(r *bufio.Reader) {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			q.Events.close(fmt.Errorf("qmp: %w", err))
			q.mu.Lock()
			for id, ch := range q.pending {
				close(ch)
				delete(q.pending, id)
			}
			q.mu.Unlock()
			return
		}
		var msg struct {
			ID json.RawMessage `json:"id"`
			qmpReply
			qmpEvent
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			continue
		}
		if msg.Event != "" {
			q.Events.add(msg.qmpEvent)
			continue
		}
		var id string
		_ = json.Unmarshal(msg.ID, &id)
		q.mu.Lock()
		ch := q.pending[id]
		delete(q.pending, id)
		q.mu.Unlock()
		if ch != nil {
			ch <- msg.qmpReply
		}
	}
}

// Do runs one command and returns its "return" value, or its error.
func (q *qmpClient) Do(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	q.next++
	id := "c" + strconv.Itoa(q.next)
	ch := make(chan qmpReply, 1)
	q.pending[id] = ch
	q.mu.Unlock()
	req := map[string]any{"execute": cmd, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	q.wmu.Lock()
	_, err = q.conn.Write(append(b, '\n'))
	q.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("qmp %s: connection closed", cmd)
		}
		if rep.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, rep.Error.Class, rep.Error.Desc)
		}
		return rep.Return, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: waiting for reply: %w", cmd, ctx.Err())
	}
}
