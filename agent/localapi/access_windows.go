package localapi

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// access is who may connect on Windows: SYSTEM, the agent's own user and
// the members of BUILTIN\Administrators (enabled in the token: an
// administrator's UAC-filtered token, where it is deny-only, is not one)
// as RoleAdmin; the members of group (nil: none) as RoleReader. The
// pipe's DACL lets nobody else open it (listen_windows.go); the server
// checks again on the client's token.
type access struct {
	self      *windows.SID // the agent's user
	group     *windows.SID
	groupName string
}

var procImpersonateNamedPipeClient = windows.NewLazySystemDLL("advapi32.dll").NewProc("ImpersonateNamedPipeClient")

// newAccess reads the agent's own user and looks group up ("": none).
func newAccess(group string) (access, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return access{}, fmt.Errorf("this process's user (GetTokenInformation TokenUser): %w", err)
	}
	self, err := u.User.Sid.Copy()
	if err != nil {
		return access{}, fmt.Errorf("this process's user: %w", err)
	}
	a := access{self: self}
	if group != "" {
		if a.group, err = LookupGroup(group); err != nil {
			return access{}, err
		}
		a.groupName = group
	}
	return a, nil
}

// LookupGroup returns the SID of the group named group: "users" (any
// case; agent.local_group's default) is BUILTIN\Users, S-1-5-32-545,
// whatever the language of Windows names it; any other name is looked
// up (LookupAccountNameW on this PC). A number is refused (Windows has
// no gids), and so is an account that is not a group (a user, a
// computer).
func LookupGroup(group string) (*windows.SID, error) {
	if _, err := strconv.Atoi(group); err == nil {
		return nil, fmt.Errorf("group %q: Windows has no numeric gids: name a group (users is BUILTIN\\Users)", group)
	}
	if strings.EqualFold(group, "users") {
		sid, err := windows.CreateWellKnownSid(windows.WinBuiltinUsersSid)
		if err != nil {
			return nil, fmt.Errorf("group %q: the BUILTIN\\Users SID: %w", group, err)
		}
		return sid, nil
	}
	sid, _, typ, err := windows.LookupSID("", group)
	if err != nil {
		return nil, fmt.Errorf("group %q: LookupAccountName: %w", group, err)
	}
	switch typ {
	case windows.SidTypeGroup, windows.SidTypeAlias, windows.SidTypeWellKnownGroup:
		return sid, nil
	}
	return nil, fmt.Errorf("group %q is %s, not a group", group, sidTypeName(typ))
}

// sidTypeName names a SID_NAME_USE.
func sidTypeName(t uint32) string {
	switch t {
	case windows.SidTypeUser:
		return "a user"
	case windows.SidTypeDomain:
		return "a domain"
	case windows.SidTypeComputer:
		return "a computer"
	case windows.SidTypeDeletedAccount:
		return "a deleted account"
	}
	return "an account of type " + strconv.Itoa(int(t))
}

// peer reads who is at the other end of c, a pipe connection: the
// client's process id (GetNamedPipeClientProcessId) and its token
// (pipeClientToken): its user (TokenUser) and session (TokenSessionId,
// as Peer.UID), and from its groups the role ("": refused).
func (a access) peer(c net.Conn) (Peer, error) {
	pc, ok := c.(*pipeConn)
	if !ok {
		return Peer{}, fmt.Errorf("a %T is not a pipe connection", c)
	}
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(pc.h, &pid); err != nil {
		return Peer{}, fmt.Errorf("GetNamedPipeClientProcessId: %w", err)
	}
	tok, err := pipeClientToken(pc.h)
	if err != nil {
		return Peer{}, err
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return Peer{}, fmt.Errorf("the client's token: TokenUser: %w", err)
	}
	sid := tu.User.Sid
	session, err := tokenSession(tok)
	if err != nil {
		return Peer{}, err
	}
	p := Peer{UID: int(session), GID: -1, PID: int(pid), SID: sid.String()}
	if p.Role, err = a.role(tok, sid); err != nil {
		return Peer{}, err
	}
	return p, nil
}

// userName returns "DOMAIN\name" of p's SID (LookupAccountSidW), ""
// when it names no account or cannot be looked up.
func (a access) userName(p Peer) string {
	sid, err := windows.StringToSid(p.SID)
	if err != nil {
		return ""
	}
	acct, dom, _, err := sid.LookupAccount("")
	if err != nil || acct == "" {
		return ""
	}
	if dom != "" {
		return dom + `\` + acct
	}
	return acct
}

// role returns the role of the client whose token is tok and user sid,
// "" when refused. Group membership is the token's (CheckTokenMembership:
// enabled groups only).
func (a access) role(tok windows.Token, sid *windows.SID) (string, error) {
	if sid.IsWellKnown(windows.WinLocalSystemSid) || windows.EqualSid(sid, a.self) {
		return RoleAdmin, nil
	}
	admins, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		return "", fmt.Errorf("the Administrators SID: %w", err)
	}
	if ok, err := tok.IsMember(admins); err != nil {
		return "", fmt.Errorf("the client's token: CheckTokenMembership(Administrators): %w", err)
	} else if ok {
		return RoleAdmin, nil
	}
	if a.group == nil {
		return "", nil
	}
	ok, err := tok.IsMember(a.group)
	if err != nil {
		return "", fmt.Errorf("the client's token: CheckTokenMembership(%s): %w", a.groupName, err)
	}
	if ok {
		return RoleReader, nil
	}
	return "", nil
}

// name names p in the answers: "DOMAIN\user (S-1-...)", or the SID.
func (a access) name(p Peer) string {
	if p.User != "" {
		return p.User + " (" + p.SID + ")"
	}
	return p.SID
}

// refusal says why p was refused (role "").
func (a access) refusal(p Peer) string {
	if a.group == nil {
		return fmt.Sprintf("%s is not SYSTEM or an administrator, and the agent lets no group read (agent.local_group is empty)", a.name(p))
	}
	return fmt.Sprintf("%s is neither SYSTEM nor an administrator nor in group %s", a.name(p), a.groupName)
}

// pipeClientToken returns the token of the client of the pipe h
// (ImpersonateNamedPipeClient, then OpenThreadToken with TOKEN_QUERY as
// the process, then RevertToSelf), on an OS thread of its own. Clients
// connect with SECURITY_IDENTIFICATION (dial_windows.go): the token
// tells who they are and cannot act as them. Should RevertToSelf fail,
// the goroutine ends with its thread locked, and Go ends that thread,
// impersonation and all.
func pipeClientToken(h windows.Handle) (windows.Token, error) {
	if err := procImpersonateNamedPipeClient.Find(); err != nil {
		return 0, fmt.Errorf("ImpersonateNamedPipeClient: %w", err)
	}
	type result struct {
		tok windows.Token
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		r, _, callErr := procImpersonateNamedPipeClient.Call(uintptr(h))
		if r == 0 {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("ImpersonateNamedPipeClient: %w", callErr)}
			return
		}
		var tok windows.Token
		err := windows.OpenThreadToken(windows.CurrentThread(), windows.TOKEN_QUERY, true, &tok)
		if rerr := windows.RevertToSelf(); rerr != nil {
			if err == nil {
				tok.Close()
			}
			ch <- result{err: fmt.Errorf("RevertToSelf after ImpersonateNamedPipeClient: %w", rerr)}
			return // the thread stays locked: Go ends it
		}
		runtime.UnlockOSThread()
		if err != nil {
			ch <- result{err: fmt.Errorf("OpenThreadToken of the impersonated client: %w", err)}
			return
		}
		ch <- result{tok: tok}
	}()
	r := <-ch
	return r.tok, r.err
}

// tokenSession returns tok's TokenSessionId.
func tokenSession(tok windows.Token) (uint32, error) {
	var id, n uint32
	if err := windows.GetTokenInformation(tok, windows.TokenSessionId, (*byte)(unsafe.Pointer(&id)), uint32(unsafe.Sizeof(id)), &n); err != nil {
		return 0, fmt.Errorf("the client's token: TokenSessionId: %w", err)
	}
	if n != uint32(unsafe.Sizeof(id)) {
		return 0, errors.New("the client's token: TokenSessionId: a short answer")
	}
	return id, nil
}
