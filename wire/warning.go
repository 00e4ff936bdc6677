package wire

import "time"

// Warning records (schema 2): every warning put on the desktop of the
// person at the PC is recorded, and so is one that could not be.
const (
	// TypeWarningShown is recorded when a warning about a violation was
	// shown on a desktop: a notifier (mamori notify) said it handed it to
	// the desktop's notification service, or the notifier the agent
	// started in a session without one did. Warning says which violation,
	// on whose desktop, and how many warnings like it the rate limit held
	// back meanwhile (this one stands for them).
	TypeWarningShown = "warning_shown"
	// TypeWarningNotShown is recorded when there was a desktop to warn
	// (a notifier connected, or a desktop session found) and the warning
	// reached none: every attempt failed (Warning.Reason says why). With
	// no notifier and no session at all (the login screen, a server)
	// nothing is recorded besides the violation.
	TypeWarningNotShown = "warning_not_shown"
)

// Ways a warning reached a desktop (WarningDesk.Via).
const (
	// ViaNotifier: the session's own notifier, connected to the agent's
	// local socket.
	ViaNotifier = "notifier"
	// ViaStarted: a notifier the agent started as the session's user,
	// the warning handed to it on its standard input.
	ViaStarted = "started"
)

// WarningRecord is what warning_shown and warning_not_shown record about
// one warning.
type WarningRecord struct {
	// ID is the warning's id, as the local API and the notifiers saw it.
	ID string `json:"id"`
	// Kind, Device and Severity are the violation's (Violation.Kind,
	// Device, Severity); ViolationTime is the time of its record (absent
	// when not known: a violation carried over a restart of the agent).
	Kind          string    `json:"kind"`
	Device        string    `json:"device"`
	Severity      string    `json:"severity"`
	ViolationTime time.Time `json:"violation_time,omitzero"`
	// Replay is set when the violation was still open, recorded before
	// the notifier connected, and shown to it then.
	Replay bool `json:"replay,omitempty"`
	// Held counts the warnings of the same kind and device that the rate
	// limit held back since the last one shown: this one stands for them.
	Held int `json:"held,omitempty"`
	// Shown lists the desktops it was shown on (warning_shown).
	Shown []WarningDesk `json:"shown,omitempty"`
	// Reason says why it reached no desktop, or why some attempt failed.
	Reason string `json:"reason,omitempty"`
	// NotShownRepeats counts the replays of this warning to the same user
	// that were not shown either and were not recorded one by one (at
	// most one warning_not_shown per user, warning and warn interval):
	// this record stands for them too (warning_not_shown only).
	NotShownRepeats int `json:"not_shown_repeats,omitempty"`
}

// WarningDesk is one desktop a warning was shown on: its user, and how.
type WarningDesk struct {
	UID  int    `json:"uid"`
	User string `json:"user,omitempty"`
	Via  string `json:"via"` // ViaNotifier, ViaStarted
}
