package main

import (
	"os"
	"os/exec"
	"syscall"
)

// isolate runs cmd in a network namespace of its own, which holds only a
// loopback that is down: the agent's network source then sees no link,
// and the host's own network is not part of these tests. As root a new
// network namespace is enough; otherwise a user namespace maps this user
// to root in it (where unprivileged user namespaces are allowed).
func isolate(cmd *exec.Cmd) *exec.Cmd {
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
	}
	cmd.SysProcAttr = attr
	return cmd
}
