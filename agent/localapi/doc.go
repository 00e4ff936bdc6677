// Package localapi is the agent's local API: a unix socket on the PC
// (agent.local_socket, default /run/mamori/agent.sock), a named pipe on
// Windows (\\.\pipe\NAME), where `mamori status` reads what the
// running agent sees and the per-user desktop notifier (`mamori notify`)
// receives each warning as it happens.
//
// # Protocol
//
// Line-delimited JSON, one Message per line, UTF-8, versioned by
// ProtocolVersion. The server speaks first:
//
//	server: {"type":"hello","protocol":1,"agent":"mamori 1.0","role":"reader"}
//	client: {"type":"status","protocol":1}
//	server: {"type":"status","status":{...}}          (then closes)
//
//	client: {"type":"watch","protocol":1}
//	server: {"type":"warning","warning":{...}}        (each warning, as it happens)
//	server: {"type":"ping"}                           (every PingInterval)
//	client: {"type":"shown","id":"..."}               (the warning reached the desktop)
//	client: {"type":"shown","id":"...","error":"..."} (it could not be shown)
//
// A request the server does not take (an unknown type, another protocol
// version, a line over MaxRequestLine bytes, nothing within
// RequestTimeout) is answered {"type":"error","error":"..."} and the
// connection closed. A client must ignore fields and message types it
// does not know: fields are only ever added within a protocol version.
//
// # Access
//
// The socket is created in a directory only root can change (checked
// with fsguard; made 0755 when missing), mode 0660, owner root and group
// agent.local_group (mode 0600 when no group is configured), atomically
// (bound under a temporary name, then renamed into place), and a stale
// socket is removed only when it is a socket this user owns that nobody
// answers on. On Linux every connection's peer credentials are checked
// (SO_PEERCRED and SO_PEERGROUPS, taken by the kernel at connect time):
// root (and the agent's own user) may connect as RoleAdmin, members of
// the group as RoleReader, anyone else is refused with an error line.
// Readers only read (status, the warnings); no request changes the
// agent. On other unix systems the file's mode and group are the only
// check.
//
// On Windows the socket is a named pipe, \\.\pipe\NAME
// (listen_windows.go): made with FILE_FLAG_FIRST_PIPE_INSTANCE (a name
// someone took first is refused, not joined) and
// PIPE_REJECT_REMOTE_CLIENTS; owned by SYSTEM (by Administrators when an
// elevated administrator runs the agent); a protected DACL gives SYSTEM
// and Administrators all access, the group agent.local_group names
// (default "users", BUILTIN\Users) read and write data only (no right to
// add an instance of the pipe), NETWORK nothing. A client (Dial) opens
// it with SECURITY_IDENTIFICATION and trusts it only when its owner is
// SYSTEM or Administrators, which no other user can make the owner of
// anything. The server reads each client's process id
// (GetNamedPipeClientProcessId) and token (ImpersonateNamedPipeClient,
// OpenThreadToken): SYSTEM, the agent's own user and enabled members of
// Administrators are RoleAdmin, members of the group RoleReader, anyone
// else refused (the DACL has refused them already). Peer.UID is the
// client's session id there, Peer.SID its user.
//
// # Slow clients
//
// Each watcher has a bounded queue (Options.QueueLen messages) and a
// writer of its own with a write deadline: Broadcast never waits, and a
// watcher whose queue is full or whose writes time out is dropped (its
// notifier reconnects). At most MaxConns connections are served at once,
// MaxConnsPerUser of them for one user other than root, and the last
// RootSlots of them for root only (mamori status as root answers during
// a flood). A reader's status and watch requests are paced (RequestRate a
// second, RequestBurst at once; beyond, an error and the connection
// closed).
// What a flood causes in the log (refusals, limits, notifiers coming
// and going) is written at most once per LogInterval per kind and uid,
// with the count of the lines left out.
//
// # Answers
//
// A "shown" counts only from a connection the warning was given to
// (broadcast, or replayed to it when it connected), once: Options.OnShown
// is not told of one about an id the connection was not given, or of a
// second one; they are logged (throttled) and ignored. Warning ids are
// predictable; this is what keeps one reader from answering for
// another's desktop.
package localapi
