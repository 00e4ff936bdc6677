package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/hub/api"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
	"github.com/mamori-agent/mamori/wire"
)

// FuzzIngest feeds the events handler's decoder arbitrary bodies (seeds
// in testdata/fuzz/FuzzIngest): it never panics, what it accepts keeps
// its promises, and the store takes whatever it accepts.
func FuzzIngest(f *testing.F) {
	f.Add(chainBatch("e", 1, 2))
	f.Add(violationBatch(1, "<script>\x00\xff"))
	// Deep nesting: refused before the decoder recurses.
	f.Add([]byte(`{"schema":2,"events":[{"id":"e","seq":1,"hash":"h","event":{"a":` + strings.Repeat("[", 100000) + `}}]}`))
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(f.TempDir(), "hub.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if err := st.CreateAgent(context.Background(), "pc-01", "x", t0); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := api.DecodeBatch(data)
		if err != nil {
			var br *api.BadRequest
			if !asBad(err, &br) || (br.Status != 400 && br.Status != 413) {
				t.Fatalf("error %v is not a BadRequest", err)
			}
			return
		}
		if len(b.Events) > wire.MaxBatchEvents {
			t.Fatalf("%d events", len(b.Events))
		}
		for _, e := range b.Events {
			if e.ID == "" || len(e.ID) > 128 || !utf8.ValidString(e.ID) {
				t.Fatalf("id %q", e.ID)
			}
			if !json.Valid(e.Raw) || !bytes.HasPrefix(e.Raw, []byte("{")) {
				t.Fatalf("raw %q", e.Raw)
			}
		}
		if _, err := st.Ingest(context.Background(), "pc-01", b, t0); err != nil {
			t.Fatalf("store refused an accepted batch: %v", err)
		}
	})
}

func asBad(err error, br **api.BadRequest) bool {
	b, ok := err.(*api.BadRequest)
	*br = b
	return ok
}

var _ store.Store = (*sqlstore.Store)(nil)
