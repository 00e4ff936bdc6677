//go:build unix

package main

import (
	"errors"
	"fmt"
	"syscall"
)

// isConnRefused reports whether a dial found a socket nobody serves.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// refusedHint says who may ask the agent and how to become one of them,
// in English and Japanese; group is the socket's group ("" unknown), who
// this user's name.
func refusedHint(group, who string) string {
	if group == "" {
		return fmt.Sprintf("Only root and members of the agent's group (agent.local_group) may ask: add this user to it (adduser %s GROUP) and log in again. "+
			"エージェントに問い合わせできるのは root と agent.local_group のメンバーだけです。", who)
	}
	return fmt.Sprintf("Only root and members of group %s (agent.local_group) may ask: as root, run adduser %s %s, then log in again (or run mamori status as root). "+
		"エージェントに問い合わせできるのは root とグループ %s のメンバーだけです（root で adduser %s %s を実行し、ログインし直してください）。", group, who, group, group, who, group)
}
