package hub

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/store/sqlstore"
)

// TestMetricsListen: with metrics_listen the metrics are served there,
// and the address the agents reach no longer serves them.
func TestMetricsListen(t *testing.T) {
	cfg, err := ParseConfig("h.yaml", []byte("version: 1\nlisten: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\ndatabase: sqlite://hub.db\n"))
	if err != nil {
		t.Fatal(err)
	}
	// A free port for metrics (Serve listens itself).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsListen = l.Addr().String()
	l.Close()
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(cfg, st, nil).Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	get := func(url string) (int, string) {
		for range 50 {
			resp, err := http.Get(url)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s does not answer", url)
		return 0, ""
	}
	if code, body := get("http://" + cfg.MetricsListen + "/metrics"); code != 200 || !strings.Contains(body, "mamori_hub_agents") {
		t.Fatalf("metrics_listen: %d\n%.200s", code, body)
	}
	if code, body := get("http://" + ln.Addr().String() + "/metrics"); code == 200 && strings.Contains(body, "mamori_hub_agents") {
		t.Fatal("the agents' address still serves the metrics")
	}
}
