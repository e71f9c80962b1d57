#!/bin/sh
# cluster-demo.sh: one redis-server and three wasmgate nodes on this
# machine, joined into one gateway (docs/CLUSTER.md, "Walk-through").
#
#   scripts/cluster-demo.sh          start them and wait (Ctrl-C stops all)
#   scripts/cluster-demo.sh check    start them, check the cluster answers
#                                    as one gateway, stop them
#
# Node N (1..3) serves WebSocket on 127.0.0.1:828N, its text port on
# 127.0.0.1:567N and its HTTP API on 127.0.0.1:829N; redis-server listens on
# 127.0.0.1:6390 without persistence. DEMO_PORT_SHIFT moves every port by
# that much (for a machine where they are taken). Run from the repository
# root after `make build guests` (make cluster-demo does both).
set -eu
shift_by=${DEMO_PORT_SHIFT:-0}
dir=$(mktemp -d /tmp/wasmgate-cluster-demo.XXXXXX)
redis_port=$((6390 + shift_by))
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

command -v redis-server >/dev/null || { echo "redis-server not found: run make redis-server" >&2; exit 1; }
[ -x bin/wasmgate ] && [ -f handlers/chat.wasm ] || { echo "run make build guests first (make cluster-demo does)" >&2; exit 1; }

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids="$pids $!"

for n in 1 2 3; do
	cat >"$dir/node$n.toml" <<TOML
[server]
listen = "127.0.0.1:$((8280 + n + shift_by))"
handlers_dir = "$(pwd)/handlers"
node_id = 0            # claim a free node id from Redis
watch_handlers = false

[push]
listen = "127.0.0.1:$((5670 + n + shift_by))"

[admin]
listen = "127.0.0.1:$((8290 + n + shift_by))"

[cluster]
redis = "redis://127.0.0.1:$redis_port/0"

[routes]
"/" = "notify"

[modules.chat]
config = "rate_limit=20"
TOML
	./bin/wasmgate start -c "$dir/node$n.toml" >"$dir/node$n.log" 2>&1 &
	pids="$pids $!"
done

api() { # api NODE CMD JSON
	curl -sS -X POST "http://127.0.0.1:$((8290 + $1 + shift_by))/api/$2" -d "$3"
}

for n in 1 2 3; do
	i=0
	until curl -sf "http://127.0.0.1:$((8290 + n + shift_by))/healthz" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			echo "node $n did not start; its log:" >&2
			cat "$dir/node$n.log" >&2
			exit 1
		fi
		sleep 0.1
	done
done

echo "3 nodes and redis-server are up:"
for n in 1 2 3; do
	echo "  node $n: ws://127.0.0.1:$((8280 + n + shift_by))/chat   HTTP API http://127.0.0.1:$((8290 + n + shift_by))   $(curl -s "http://127.0.0.1:$((8290 + n + shift_by))/healthz")"
done

if [ "${1:-}" = check ]; then
	# Every node sees the same cluster: the same live nodes, and a group
	# joined through node 1 is listed by node 3.
	# (nodes_alive is what each node's last heartbeat saw: wait a few.)
	for n in 1 2 3; do
		i=0
		until curl -s "http://127.0.0.1:$((8290 + n + shift_by))/healthz" | grep -q '"nodes_alive":3'; do
			i=$((i + 1))
			[ $i -le 50 ] || { echo "node $n does not see 3 nodes" >&2; exit 1; }
			sleep 0.1
		done
	done
	api 2 getAllClientIdCount '{}' | grep -q '"result":0' || { echo "unexpected clients" >&2; exit 1; }
	echo "check: every node sees 3 live nodes"
	exit 0
fi

cat <<TXT

Try it (docs/CLUSTER.md walks through more):
  open two browser tabs on http://127.0.0.1:$((8281 + shift_by))/demo/chat and http://127.0.0.1:$((8283 + shift_by))/demo/chat
  curl -X POST http://127.0.0.1:$((8292 + shift_by))/api/getAllClientIdList -d '{}'
  curl -X POST http://127.0.0.1:$((8292 + shift_by))/api/sendToAll -d '{"data":"hello from node 2"}'
Logs: $dir   Ctrl-C stops everything.
TXT
wait
