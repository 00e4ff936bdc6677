package audit

import "fmt"

// DamageKind says what was found wrong with the log.
type DamageKind string

// Kinds of damage Open, Check and ReadBack report.
const (
	// DamageTornTail: the file ended in a partial line, the remains of a
	// write that never completed (a crash or power loss mid-append). Its
	// bytes were moved to a audit.jsonl.torn-<unix time> file. The record
	// was never acknowledged, so nothing recorded is missing.
	DamageTornTail DamageKind = "torn_tail"
	// DamageLastRecord: the last record cannot be read, or its hash does
	// not match its content (it was edited).
	DamageLastRecord DamageKind = "bad_last_record"
	// DamageHead: the head file is unreadable, or names a record the log
	// no longer has (records were removed from the end) or a different
	// one (the chain was rewritten).
	DamageHead DamageKind = "head_mismatch"
	// DamageHeadMissing: the log holds records but its head file is
	// gone: deleting it is how records could be cut off the end unseen.
	// Open writes a new head.
	DamageHeadMissing DamageKind = "head_missing"
	// DamageLogEmptied: the log holds no record, but it did before: its
	// head names a record, or the head is gone while torn-tail side files
	// remain.
	DamageLogEmptied DamageKind = "log_emptied"
	// DamageTruncated: while the Log was open, audit.jsonl became shorter
	// than what it wrote (records cut off). Appending continues after
	// what is left, chained to the last record the Log wrote, so Verify
	// shows the gap.
	DamageTruncated DamageKind = "file_truncated"
	// DamageGrown: while the Log was open, someone else wrote to
	// audit.jsonl. The next record still chains to the last one the Log
	// wrote.
	DamageGrown DamageKind = "file_grown"
	// DamageFileMissing: while the Log was open, audit.jsonl was deleted
	// or renamed away. The Log creates a new one and continues the chain.
	DamageFileMissing DamageKind = "file_missing"
	// DamageFileReplaced: while the Log was open, another file was put at
	// audit.jsonl. The Log appends to the file now at the path,
	// continuing its own chain, so Verify shows the break.
	DamageFileReplaced DamageKind = "file_replaced"
	// DamageDirMissing: while the Log was open, the state directory was
	// deleted or moved away. The Log creates it again (0700) with a new
	// head, a new lock and a new audit.jsonl, continuing its chain.
	DamageDirMissing DamageKind = "dir_missing"
	// DamageDirReplaced: while the Log was open, another directory was
	// put at the state directory's path. The Log continues there as for
	// DamageDirMissing.
	DamageDirReplaced DamageKind = "dir_replaced"
	// DamageBadRecord: ReadBack found a line that is not a record, or a
	// record whose hash does not match its content.
	DamageBadRecord DamageKind = "bad_record"
	// DamageChainBroken: ReadBack found a record that does not follow the
	// one before it (seq or prev_hash).
	DamageChainBroken DamageKind = "chain_broken"

	// DamageReserveLost: the disk space reserved ahead for the log (see
	// Options.Reserve) is no longer whole: more could not be allocated
	// (the disk or a quota is full, perhaps filled on purpose), or the
	// spare next file could not be made. Records go on into what is
	// left; ReserveErr says what is missing. Reported once until the
	// reserve is whole again.
	DamageReserveLost DamageKind = "reserve_lost"
	// DamageUnwritten: when the log was last closed, its caller still
	// held records it could not write for lack of space (SetUnwritten),
	// or the note saying so (UnwrittenName) cannot be read. Those
	// records are lost; Seq is the last record written before them.
	DamageUnwritten DamageKind = "unwritten_at_stop"

	// DamageOutside was reported when the current file changed size
	// behind the Log's back.
	//
	// Deprecated: Check reports DamageTruncated or DamageGrown instead.
	DamageOutside DamageKind = "changed_outside"
)

// Damage is something found wrong with the log and worked around. The
// agent should raise it: it may be tampering.
type Damage struct {
	Kind DamageKind
	File string // base name within the directory ("." for the directory)
	// Seq is the record concerned, 0 when unknown.
	Seq    uint64
	Reason string
}

// String formats d for a log line or a warning.
func (d Damage) String() string {
	return fmt.Sprintf("%s: %s (seq %d): %s", d.Kind, d.File, d.Seq, d.Reason)
}
