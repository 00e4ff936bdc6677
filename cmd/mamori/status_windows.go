package main

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows"
)

// isConnRefused reports whether the pipe exists but no instance of it
// is free (ERROR_PIPE_BUSY for the whole dial timeout): the agent is
// there but busy, or someone else holds the name.
func isConnRefused(err error) bool { return errors.Is(err, windows.ERROR_PIPE_BUSY) }

// refusedHint says who may ask the agent and how to become one of them,
// in English and Japanese; group is agent.local_group ("" unknown), who
// this user's name.
func refusedHint(group, who string) string {
	if group == "" {
		group = "GROUP"
	}
	return fmt.Sprintf("Only SYSTEM, administrators and members of group %s (agent.local_group) may ask: as an administrator, run net localgroup %s %s /add, then sign in again (or run mamori status as an administrator). "+
		"エージェントに問い合わせできるのは SYSTEM、管理者とグループ %s のメンバーだけです（管理者として net localgroup %s %s /add を実行し、サインインし直してください）。", group, group, who, group, group, who)
}
