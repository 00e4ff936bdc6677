package api

import (
	"strings"
	"testing"
)

func TestCheckDepth(t *testing.T) {
	for _, tt := range []struct {
		data string
		ok   bool
	}{
		{`{"a":[{"b":{}}]}`, true},
		{strings.Repeat("[", 64) + strings.Repeat("]", 64), true},
		{strings.Repeat("[", 65) + strings.Repeat("]", 65), false},
		{strings.Repeat("{\"a\":", 65), false},
		// Brackets inside strings, escaped quotes included, do not count.
		{`{"a":"` + strings.Repeat("[", 100) + `\"` + strings.Repeat("{", 100) + `"}`, true},
		{`["\\"` + strings.Repeat(",[", 70) + `]`, false},
		// Unclosed: depth only.
		{strings.Repeat("[", 2_000_000), false},
	} {
		err := checkDepth([]byte(tt.data), 64)
		if (err == nil) != tt.ok {
			t.Errorf("checkDepth(%.40q...): %v, want ok %v", tt.data, err, tt.ok)
		}
	}
}

// TestDeepBatchRefused: a batch nested 2,000,000 levels deep (4 MB, under
// the body limit) is a 400, not a crash of the hub.
func TestDeepBatchRefused(t *testing.T) {
	body := `{"schema":2,"events":[{"id":"e-1","seq":1,"hash":"h1","prev_hash":"","event":{"type":"x","a":` +
		strings.Repeat("[", 2_000_000) + strings.Repeat("]", 2_000_000) + `}}]}`
	_, err := DecodeBatch([]byte(body))
	if br, ok := err.(*BadRequest); !ok || br.Status != 400 || !strings.Contains(br.Msg, "nested deeper") {
		t.Fatalf("DecodeBatch: %v", err)
	}
}
