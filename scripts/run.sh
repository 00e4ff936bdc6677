#!/bin/sh
# make run: the whole system on one machine. A hub on SQLite (plain HTTP on
# loopback) and an agent reporting to it, both in the foreground; state
# under ./.state. Ctrl-C stops both (the agent records agent_stopped and
# sends it first).
set -eu
# curl tells when the hub answers (a fresh Debian may lack it).
if ! command -v curl >/dev/null 2>&1; then
	echo "make run: installing curl" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null
fi
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

# The agent's config: the example, reporting to this hub, its local API
# (mamori status, mamori notify) on a socket under the state dir rather
# than the system's /run/mamori/agent.sock.
{
	sed "s|^  local_socket: .*|  local_socket: $ABS/agent/agent.sock|" packaging/mamori.yaml
	printf '\nreport:\n  url: http://127.0.0.1:8443\n  token_file: %s\n  heartbeat_interval: 10s\n' "$ABS/agent/token"
} > "$STATE/agent/mamori.yaml"
chmod 600 "$STATE/agent/mamori.yaml"

# Its own session: Ctrl-C reaches the agent, which sends its last events
# before the hub is stopped below.
setsid bin/mamori-hub serve --config "$STATE/hub/hub.yaml" &
HUB=$!
trap 'kill $HUB 2>/dev/null; wait $HUB 2>/dev/null' EXIT INT TERM
# Wait until this hub answers; if it ended (the port taken, a bad
# config), stop here rather than start an agent reporting to whatever
# else listens there.
up=0
for _ in $(seq 50); do
	if ! kill -0 $HUB 2>/dev/null; then
		echo "make run: mamori-hub did not start (its error is above); nothing else is started" >&2
		exit 1
	fi
	if curl -fsS -o /dev/null http://127.0.0.1:8443/healthz 2>/dev/null; then
		up=1
		break
	fi
	sleep 0.2
done
if [ "$up" != 1 ]; then
	echo "make run: mamori-hub does not answer on 127.0.0.1:8443" >&2
	exit 1
fi
echo "mamori-hub: http://127.0.0.1:8443/ (staff token in $STATE/hub/admin.token; its metrics at http://127.0.0.1:8443/metrics)"
echo "  curl -H \"Authorization: Bearer \$(cat $STATE/hub/admin.token)\" http://127.0.0.1:8443/api/v1/violations"
echo "  bin/mamori status --socket $ABS/agent/agent.sock    # what the agent sees now"
bin/mamori run --config "$STATE/agent/mamori.yaml" --state-dir "$STATE/agent"
