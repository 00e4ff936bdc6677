#!/bin/sh
# make run: the whole system on one machine. A hub on SQLite (plain HTTP on
# loopback) and an agent reporting to it, both in the foreground; state
# under ./.state. Ctrl-C stops both (the agent records agent_stopped and
# sends it first).
set -eu
STATE=${STATE:-.state}
mkdir -p "$STATE/hub" "$STATE/agent"
chmod 700 "$STATE" "$STATE/hub" "$STATE/agent"
ABS=$(cd "$STATE" && pwd)

# The hub's config: the example, with its database under the state dir.
sed "s|^database: .*|database: sqlite://$ABS/hub/hub.db|" packaging/mamori-hub.yaml > "$STATE/hub/hub.yaml"

# A token for this PC, once (tokens are stored hashed: a lost one is
# replaced by a new name).
if [ ! -s "$STATE/agent/token" ]; then
	umask 077
	bin/mamori-hub agent add "$(hostname)-make-run-$$" --config "$STATE/hub/hub.yaml" > "$STATE/agent/token"
fi
if [ ! -s "$STATE/hub/admin.token" ]; then
	umask 077
	bin/mamori-hub admin token make-run --config "$STATE/hub/hub.yaml" > "$STATE/hub/admin.token"
fi

# The agent's config: the example, reporting to this hub.
{
	cat packaging/mamori.yaml
	printf '\nreport:\n  url: http://127.0.0.1:8443\n  token_file: %s\n  heartbeat_interval: 10s\n' "$ABS/agent/token"
} > "$STATE/agent/mamori.yaml"
chmod 600 "$STATE/agent/mamori.yaml"

# Its own session: Ctrl-C reaches the agent, which sends its last events
# before the hub is stopped below.
setsid bin/mamori-hub serve --config "$STATE/hub/hub.yaml" &
HUB=$!
trap 'kill $HUB 2>/dev/null; wait $HUB 2>/dev/null' EXIT INT TERM
sleep 1
echo "mamori-hub: http://127.0.0.1:8443/ (staff token in $STATE/hub/admin.token)"
echo "  curl -H \"Authorization: Bearer \$(cat $STATE/hub/admin.token)\" http://127.0.0.1:8443/api/v1/violations"
bin/mamori run --config "$STATE/agent/mamori.yaml" --state-dir "$STATE/agent"
