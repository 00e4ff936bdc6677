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
// returns: a record whose Append returned nil is on disk. Nothing but
// records is ever written to the files named audit.jsonl and
// audit-*.jsonl; the state directory also holds audit.head (below),
// audit.lock, audit.next (the spare, always empty) and audit.unwritten.
//
// # Rotation
//
// When the current file plus the next line would exceed Options.MaxSize,
// audit.jsonl is renamed to audit-<seq of its first record, 20 digits>.jsonl
// (names sort in seq order) and a new audit.jsonl, the spare renamed into
// place (see below), continues the chain.
// Rotated files are never deleted: the contract requires usage records to
// be kept, so disposing of old files is left to the people who must keep
// them.
//
// # Space reserved ahead
//
// Someone at the PC may fill the disk on purpose (NTFS keeps no space
// back for SYSTEM, and XFS and btrfs none for root), then do what the log
// would record. So the log holds its space ahead, the way a database
// does, taken while the disk has room:
//
//   - The current file keeps Options.Reserve bytes (DefaultReserve,
//     4 MiB; at most MaxSize) allocated past its end, but not past
//     MaxSize while it is below it, plus Options.StopReserve
//     (DefaultStopReserve, 64 KiB). Writes into allocated space need no
//     new blocks. Open allocates; Append allocates again once a quarter
//     of Reserve has been written. On Linux it is fallocate(2) with
//     FALLOC_FL_KEEP_SIZE: the blocks are the file's but its size, and so
//     what readers, Verify and a torn-tail cut see, is only what was
//     written; a crash leaves no zeros within the size, and the blocks
//     stay across restarts. On Windows it is SetFileInformationByHandle
//     with FILE_ALLOCATION_INFO, which does not move the end of file;
//     NTFS frees it when the file's last handle closes, so it lasts while
//     the agent runs and Open takes it again. Where the call does not
//     exist (other platforms, Wine 8.0, a file system without it) the log
//     runs without a reserve and ReserveErr says so (errors.ErrUnsupported).
//   - The next current file is made ahead, empty and reserved as much:
//     SpareName (audit.next), held open. Rotation renames it to
//     audit.jsonl, which needs no new space; Append then makes the next
//     spare. Without a spare for lack of space, the log does not rotate:
//     it writes on into the current file's reserve.
//   - When a reserve cannot be had (more cannot be allocated, the spare
//     cannot be made), the log records on into what is left, reports
//     DamageReserveLost once (through Damaged or Check), logs, and tries
//     again at every Append and Check; ReserveErr says what is missing.
//   - An Append that would go past what is reserved, but for the stop
//     reserve, while the disk is full fails with an error wrapping
//     ErrNoSpace, leaving the file as it was: the caller keeps the
//     record and tries again. UseStopReserve, called at the stop, opens
//     the stop reserve to the records the caller still holds and to the
//     record of the stop. The stop reserve is small on purpose: a record
//     held in memory is lost in a crash, one written is not.
//   - What still cannot be written is counted: SetUnwritten before Close
//     makes Close write the numbers into UnwrittenName (audit.unwritten),
//     a fixed-size line rewritten in place (no new space), and the next
//     Open reports them as DamageUnwritten, once.
//
// Limits: the head file is replaced through a new file, so on a full disk
// it lags (which is not damage, see below) until space returns. A torn
// tail that cannot be moved aside for lack of space is left in place,
// reported, and shows in Verify. Copy-on-write file systems (btrfs
// without nodatacow, ZFS) need new blocks for every write, so a reserve
// there is only as good as their own. Windows frees the reserve at every
// stop: a restart on a disk filled meanwhile starts without one (and
// reports it).
//
// # Head record
//
// Deleting whole records from the end of a chain leaves a valid, shorter
// chain. To catch that, the log also keeps state_dir/audit.head, the seq and
// hash of its last record, replaced atomically (write a new file, sync,
// rename, sync the directory). Open writes it (seq 0 for a new log) before
// the first record, so a log that holds records always has one: a missing
// or unreadable head beside records is damage, and so is an empty log
// whose head names a record or, with the head gone, that left torn-tail
// side files. Verify reports a log that ends before its head record, or
// whose record at the head's seq has another hash; Open reports the same
// and continues the chain from the head, so the gap stays in the log.
//
// Rewriting the head inside every Append triples its cost (two more syncs
// and a rename), so by default a background writer follows the log,
// coalescing bursts, and Close writes it last (Options.SyncHead makes it
// synchronous). After a crash the head may lag by the records appended
// during its last write, typically none or one; that is not damage (its
// seq is at most the last one and its record has its hash). Records cut
// off the end while the agent runs are seen at once by Check, which Append
// also runs: a truncated, grown, deleted or replaced audit.jsonl, or a
// deleted or replaced state directory, is reported once and recording
// continues, chained to the last record the Log wrote, so Verify shows the
// break. Anchoring the hashes Append returns with a remote party (the
// central endpoint) closes the rest; VerifyWith checks a log from such an
// anchor, older rotated files archived away.
//
// # Hostile files
//
// The agent runs as root in a directory someone at the PC might be able
// to write. Every file is opened with O_NOFOLLOW (a planted symlink is
// refused, never followed) and O_NONBLOCK (a planted FIFO cannot hang the
// agent), checked with fstat to be a regular file, and new files are
// created with O_EXCL; the head is replaced through a new randomly named
// file (internal/atomicfile), so a symlink at any name is never written
// through.
//
// # Limits
//
// The chain has no secret: someone who can write the state directory can
// rewrite the whole log and recompute every hash and the head, or delete
// every file at once (the directory then looks like a new log). The log makes
// edits evident; it does not make them impossible. Anchoring recent hashes
// somewhere the PC's users cannot write (the central endpoint) is what turns
// it into proof.
package audit
