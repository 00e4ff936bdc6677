package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// TestWindowsNotifyOnce: mamori.exe notify --once, as the agent starts it
// in the user's session (agent/sessions_windows.go), reads the warning on
// standard input and answers on standard output. Windows has no desktop
// notification yet (notify's Desktop is unsupported there): it answers
// "not shown" with why and exits 1, and the agent falls back to the
// message box.
func TestWindowsNotifyOnce(t *testing.T) {
	line, _ := json.Marshal(localapi.Message{Type: localapi.TypeWarning, Warning: &localapi.Warning{ID: "w-7", Kind: "usb_storage_unapproved",
		Texts: []localapi.Text{{Lang: "en", Title: "Unapproved USB storage"}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "notify", "--once")
	cmd.Stdin = bytes.NewReader(append(line, '\n'))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	var ack localapi.Message
	first, _, _ := strings.Cut(stdout.String(), "\n")
	if err := json.Unmarshal([]byte(first), &ack); err != nil || ack.Type != localapi.TypeShown || ack.ID != "w-7" {
		t.Fatalf("answer %q (%v); stderr %s", stdout.String(), err, stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != notifyNotShown || !strings.Contains(ack.Error, "unsupported") {
		t.Errorf("exit %d, answer %+v: want not shown (unsupported) and exit %d; when Windows gets a desktop notification, this test changes with it", code, ack, notifyNotShown)
	}
	// No warning on standard input: exit 2.
	cmd = exec.CommandContext(ctx, binary, "notify", "--once")
	cmd.Stdin = strings.NewReader("")
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != notifyError {
		t.Errorf("notify --once without a warning: %v", err)
	}
}
