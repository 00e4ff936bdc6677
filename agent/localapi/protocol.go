package localapi

import (
	"encoding/json"
	"fmt"
	"time"
)

// ProtocolVersion is the version of the protocol this package speaks.
// A server answers only requests of its own version; a client refuses a
// hello of another.
const ProtocolVersion = 1

// Message types.
const (
	TypeHello   = "hello"
	TypeStatus  = "status"
	TypeWatch   = "watch"
	TypeWarning = "warning"
	TypePing    = "ping"
	TypeShown   = "shown"
	TypeError   = "error"
)

// Roles a peer is given (Message.Role in the hello).
const (
	// RoleAdmin is root or the agent's own user.
	RoleAdmin = "admin"
	// RoleReader is a member of agent.local_group: status and warnings
	// only.
	RoleReader = "reader"
)

// Limits of the protocol.
const (
	// MaxRequestLine is the longest line a client may send, in bytes.
	MaxRequestLine = 4096
	// MaxAnswerLine is the longest line a client reads, in bytes (a
	// status with thousands of LAN devices stays far below it).
	MaxAnswerLine = 16 << 20
	// RequestTimeout is how long the server waits for a client's request
	// line after its hello.
	RequestTimeout = 10 * time.Second
	// WriteTimeout bounds each write of the server: a client that does
	// not read is dropped.
	WriteTimeout = 5 * time.Second
	// MaxConns is how many connections are served at once; more are
	// closed at once.
	MaxConns = 32
	// MaxConnsPerUser is how many of them one user other than root may
	// hold: a reader cannot take every connection from the notifiers and
	// from root.
	MaxConnsPerUser = 8
	// RootSlots of the MaxConns are kept for root (and the agent's
	// user): mamori status as root answers while readers hold all the
	// others.
	RootSlots = 2
)

// Message is one line of the protocol, either way.
type Message struct {
	Type string `json:"type"`
	// Protocol is the sender's ProtocolVersion (hello and requests).
	Protocol int `json:"protocol,omitempty"`
	// Agent names the agent and its version (hello).
	Agent string `json:"agent,omitempty"`
	// Role is the role the server gave the peer (hello).
	Role    string   `json:"role,omitempty"`
	Status  *Status  `json:"status,omitempty"`
	Warning *Warning `json:"warning,omitempty"`
	// ID is the warning a "shown" is about.
	ID string `json:"id,omitempty"`
	// Error says what went wrong (error; shown: why it was not shown).
	Error string `json:"error,omitempty"`
}

// encode returns m as one line.
func encode(m *Message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	return append(b, '\n'), nil
}

// Warning is a violation as the person at the PC is told about it: the
// rule broken, the device or network in words and what to do, in the
// configured language first and the other one below.
type Warning struct {
	// ID identifies the warning for this run of the agent ("shown" names
	// it); it is in the audit record of the warning too.
	ID string `json:"id"`
	// Time is when the violation was recorded; zero when not known (a
	// replayed violation carried over a restart of the agent).
	Time time.Time `json:"time,omitzero"`
	// Kind, Severity, Article and Device are the violation's
	// (wire.Violation): Device is a USB bus path, an interface name or a
	// LAN device's MAC.
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Article  string `json:"article"`
	Device   string `json:"device"`
	// Key is what the rate limit counts by: kind and device. A notifier
	// replaces its earlier notification of the same key.
	Key string `json:"key"`
	// Texts are the texts in the configured language first, then in the
	// other one (Text.Lang "ja" or "en").
	Texts []Text `json:"texts"`
	// Held counts the warnings of the same key the rate limit held back
	// since the last one shown, from HeldSince: this one stands for them.
	Held      int        `json:"held,omitempty"`
	HeldSince *time.Time `json:"held_since,omitempty"`
	// Replay is set on a warning about a violation still open that was
	// recorded before this notifier connected (the device was plugged in
	// before the person logged in): it is shown again.
	Replay bool `json:"replay,omitempty"`
}

// Text is a warning's text in one language. Every string is escaped for
// people already (no control characters, no bidirectional overrides);
// it is plain text, not markup.
type Text struct {
	Lang string `json:"lang"` // "ja" or "en"
	// Title is the kind's short name ("許可されていない USB 記憶媒体").
	Title string `json:"title"`
	// Rule is the article(s) broken in words ("第6条・第7条",
	// "articles 6 and 7").
	Rule string `json:"rule"`
	// Subject is the device or network in words ("SanDisk Ultra Fit,
	// serial 4C530001, port 1-2", "Wi-Fi 'cafe-free' on wlan0").
	Subject string `json:"subject"`
	// Message says what happened; Remedy what to do, naming the contact.
	Message string `json:"message"`
	Remedy  string `json:"remedy"`
}
