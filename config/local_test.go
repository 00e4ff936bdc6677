package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseLocalAPI checks agent.local_socket and agent.local_group:
// defaults, turning them off, and every refusal with its position.
func TestParseLocalAPI(t *testing.T) {
	long := "/run/" + strings.Repeat("s", MaxLocalSocketLen-len("/run/"))
	good := []struct {
		name, in      string
		socket, group string
	}{
		{"defaults", "agent: {}\n", DefaultLocalSocket, DefaultLocalGroup},
		{"no agent section", "", DefaultLocalSocket, DefaultLocalGroup},
		{"socket elsewhere", "agent:\n  local_socket: /var/run/mamori.sock\n", "/var/run/mamori.sock", DefaultLocalGroup},
		{"socket at the length limit", "agent:\n  local_socket: " + long + "\n", long, DefaultLocalGroup},
		{"socket off by empty string", "agent:\n  local_socket: \"\"\n", "", DefaultLocalGroup},
		{"socket off by null", "agent:\n  local_socket:\n", "", DefaultLocalGroup},
		{"group named", "agent:\n  local_group: mamori\n", DefaultLocalSocket, "mamori"},
		{"group with dash and digits", "agent:\n  local_group: city-staff2\n", DefaultLocalSocket, "city-staff2"},
		{"group by gid", "agent:\n  local_group: 1001\n", DefaultLocalSocket, "1001"},
		{"root only by empty string", "agent:\n  local_group: \"\"\n", DefaultLocalSocket, ""},
		{"root only by null", "agent:\n  local_group:\n", DefaultLocalSocket, ""},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte("version: 1\n"+tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Agent.LocalSocket != tt.socket || cfg.Agent.LocalGroup != tt.group {
				t.Errorf("socket %q group %q, want %q %q", cfg.Agent.LocalSocket, cfg.Agent.LocalGroup, tt.socket, tt.group)
			}
		})
	}
	bad := []struct {
		name, in string
		want     []string
	}{
		{"relative socket", "agent:\n  local_socket: run/agent.sock\n",
			[]string{`c.yaml:3:17: agent.local_socket: want an absolute path, got "run/agent.sock"`}},
		{"socket too long", "agent:\n  local_socket: " + long + "x\n",
			[]string{`c.yaml:3:17: agent.local_socket: a socket path has at most 107 bytes, got 108`}},
		{"socket path not clean", "agent:\n  local_socket: /run/../tmp/agent.sock\n",
			[]string{`c.yaml:3:17: agent.local_socket: want a clean path (no "..", "." or doubled "/"), got "/run/../tmp/agent.sock"`}},
		{"socket a list", "agent:\n  local_socket: [/run/a]\n",
			[]string{`c.yaml:3:17: agent.local_socket: want a single value, got a list`}},
		{"socket with a control character", "agent:\n  local_socket: \"/run/a\\x00b\"\n",
			[]string{`c.yaml:3:17: agent.local_socket: control character U+0000 is not allowed`}},
		{"group upper case", "agent:\n  local_group: Users\n",
			[]string{`c.yaml:3:16: agent.local_group: want a group name (lower-case letters, digits, '_' and '-', at most 32 bytes) or a gid, got "Users"`}},
		{"group with a space", "agent:\n  local_group: \"users staff\"\n",
			[]string{`c.yaml:3:16: agent.local_group: want a group name (lower-case letters, digits, '_' and '-', at most 32 bytes) or a gid, got "users staff"`}},
		{"group root", "agent:\n  local_group: root\n",
			[]string{`c.yaml:3:16: agent.local_group: root's group: leave the key empty ("") to let root only`}},
		{"gid 0", "agent:\n  local_group: 0\n",
			[]string{`c.yaml:3:16: agent.local_group: gid 0 is root's group: leave the key empty ("") to let root only`}},
		{"misspelt key", "agent:\n  local_sockt: /run/a\n",
			[]string{`c.yaml:3:3: agent: unknown key "local_sockt" (did you mean "local_socket"?)`}},
		{"both wrong", "agent:\n  local_socket: x\n  local_group: \"A\"\n",
			[]string{`c.yaml:3:17: agent.local_socket: want an absolute path, got "x"`,
				`c.yaml:4:16: agent.local_group: want a group name (lower-case letters, digits, '_' and '-', at most 32 bytes) or a gid, got "A"`}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte("version: 1\n"+tt.in))
			if err == nil {
				t.Fatal("accepted")
			}
			var got []string
			for _, e := range err.(ErrorList) {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestCheckPipeName checks the Windows agent.local_socket rule (a pure
// function, tested on every OS).
func TestCheckPipeName(t *testing.T) {
	for _, s := range []string{`\\.\pipe\mamori`, `\\.\pipe\mamori-2.test_x`, `\\.\pipe\` + strings.Repeat("p", MaxPipeNameLen)} {
		if err := checkPipeName(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for s, want := range map[string]string{
		`C:\mamori.sock`:       "want a local named pipe",
		`\\server\pipe\mamori`: "want a local named pipe",
		`\\.\pipe\`:            "1 to 200 bytes",
		`\\.\pipe\a\b`:         "letters, digits",
		`\\.\pipe\a b`:         "letters, digits",
		`\\.\pipe\` + "\x00":   "letters, digits",
		`\\.\pipe\ｍａｍｏｒｉ`:      "letters, digits",
		`\\.\pipe\` + strings.Repeat("p", MaxPipeNameLen+1): "1 to 200 bytes",
		"/run/mamori/agent.sock":                            "want a local named pipe",
	} {
		if err := checkPipeName(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", s, err, want)
		}
	}
}
