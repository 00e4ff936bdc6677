// Package audit keeps the agent's tamper-evident audit log: an append-only
// file of JSON lines, each chained to the one before it by a SHA-256 hash,
// and Verify, which checks such a log byte for byte.
//
// # Format
//
// Every record is one line of the file state_dir/audit.jsonl:
//
//	{"seq":N,"prev_hash":"<64 hex>",<caller's fields>,"hash":"<64 hex>"}\n
//
// seq starts at 1 and grows by one across the whole log, rotated files
// included. prev_hash is the hash of the record before (64 zeros for the
// first record ever). hash is the lower-case hex SHA-256 of the previous
// hash's 64 hex bytes followed by the record's content bytes, where the
// content is the line exactly as written, cut just before `,"hash":"` and
// closed with `}`: the record as it reads without its hash field. Verify
// never re-marshals anything; it cuts the hash suffix off the raw line, so
// any change to a byte of a record, reformatting included, breaks it.
//
// Append writes each line with one write call and syncs the file before it
// returns: a record whose Append returned nil is on disk.
//
// # Rotation
//
// When the current file plus the next line would exceed Options.MaxSize,
// audit.jsonl is renamed to audit-<seq of its first record, 20 digits>.jsonl
// (names sort in seq order) and a new audit.jsonl continues the chain.
// Rotated files are never deleted: the contract requires usage records to
// be kept, so disposing of old files is left to the people who must keep
// them.
//
// # Head record
//
// Deleting whole records from the end of a chain leaves a valid, shorter
// chain. To catch that, the log also keeps state_dir/audit.head, the seq and
// hash of its last record, replaced atomically (write, sync, rename, sync
// the directory). Verify reports a log that ends before its head record, or
// whose record at the head's seq has another hash; Open reports the same
// and continues the chain from the head, so the gap stays in the log.
//
// Rewriting the head inside every Append triples its cost (two more syncs
// and a rename), so by default a background writer follows the log,
// coalescing bursts, and Close writes it last (Options.SyncHead makes it
// synchronous). After a crash the head may lag by the records appended
// during its last write, typically none or one; records cut off the end
// while the agent runs are seen at the next Append regardless, because the
// next record chains to the last one the agent wrote. Anchoring the hashes
// Append returns with a remote party (the central endpoint) closes the
// rest.
//
// # Limits
//
// The chain has no secret: someone who can write the state directory can
// rewrite the whole log and recompute every hash and the head. The log makes
// edits evident; it does not make them impossible. Anchoring recent hashes
// somewhere the PC's users cannot write (the central endpoint) is what turns
// it into proof.
package audit
