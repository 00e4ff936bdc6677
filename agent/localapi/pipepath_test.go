package localapi

import (
	"strings"
	"testing"
)

func TestCheckPipePath(t *testing.T) {
	for _, p := range []string{`\\.\pipe\mamori`, `\\.\PIPE\mamori-test.1_a`, `\\.\pipe\` + strings.Repeat("a", maxPipeName)} {
		if err := checkPipePath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", `\\.\pipe\`, `\\.\pipe`, `\\host\pipe\mamori`, `\\?\pipe\mamori`, `C:\ProgramData\mamori\agent.sock`,
		"/run/mamori/agent.sock", `\\.\pipe\a\b`, `\\.\pipe\a b`, `\\.\pipe\ü`, `\\.\pipe\` + strings.Repeat("a", maxPipeName+1),
		`\\.\pipe\mamori` + "\x00", `//./pipe/mamori`} {
		if err := checkPipePath(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestPipeSDDL(t *testing.T) {
	if got, want := pipeSDDL("SY", "S-1-5-32-545"), "O:SYG:SYD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12008B;;;S-1-5-32-545)"; got != want {
		t.Errorf("with a group: %s, want %s", got, want)
	}
	if got, want := pipeSDDL("BA", ""), "O:BAG:BAD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"; got != want {
		t.Errorf("without: %s, want %s", got, want)
	}
}
