#!/usr/bin/env bash
# The demo: a rendezvous node in a temporary directory, two users who log in,
# find each other by user ID, and make a real call: ICE through libnice, every
# packet sealed with the call's keys, an echo test and a file sent with its
# SHA-256 checked. Needs no configuration; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh build
if [[ ! -f build/build.ninja ]]; then meson setup build >/dev/null; fi
ninja -C build rendezvous/tsunagu-rendezvous terminal/tsunagu >/dev/null

node_bin=$PWD/build/rendezvous/tsunagu-rendezvous
cli=$PWD/build/terminal/tsunagu
work=$(mktemp -d /tmp/tsunagu-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Create a deployment (private CA, node certificate, node.toml)"
"$node_bin" init "$work/node"
sed -i 's/^agent_listen.*/agent_listen = "127.0.0.1:0"/' "$work/node/node.toml"

step "2. Add two users (passwords are stored as scrypt hashes)"
TSUNAGU_PASSWORD=alice-secret "$node_bin" user -d "$work/node" add alice --name "Alice Aoki"
TSUNAGU_PASSWORD=bob-secret "$node_bin" user -d "$work/node" add bob --name "Bob Baba"

step "3. Start the node on loopback (TLS signalling + UDP STUN)"
"$node_bin" run -d "$work/node" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 \
  --ready-file "$work/ready.json" 2>"$work/node.log" &
pids+=($!)
for _ in $(seq 50); do [[ -s $work/ready.json ]] && break; sleep 0.1; done
[[ -s $work/ready.json ]] || { cat "$work/node.log"; echo "node did not start" >&2; exit 1; }
cat "$work/ready.json"
export TSUNAGU_NODE TSUNAGU_CA="$work/node/ca.crt"
TSUNAGU_NODE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tls"])' "$work/ready.json")

step "4. Alice and Bob log in (they stay online, sending keepalives)"
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" login >"$work/alice.log" 2>&1 &
pids+=($!)
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" login >"$work/bob.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  grep -q "logged in" "$work/alice.log" && grep -q "logged in" "$work/bob.log" && break
  sleep 0.1
done
cat "$work/alice.log" "$work/bob.log"

step "5. Alice looks up Bob, Bob looks up Alice"
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" whereis bob
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" whereis alice

step "6. Bob answers calls from Alice; Alice calls him (echo test over datagrams)"
# libnice ignores loopback unless told to use it: --ice-address 127.0.0.1.
kill "${pids[2]}" 2>/dev/null || true; wait "${pids[2]}" 2>/dev/null || true   # Bob's plain login
mkdir -p "$work/bob-inbox"
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" listen --auto-accept-from alice --recv "$work/bob-inbox" \
  --ice-address 127.0.0.1 >"$work/bob-listen.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "listening as bob" "$work/bob-listen.log" && break; sleep 0.1; done
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" call bob --echo-test 20 --ice-address 127.0.0.1

step "7. Alice sends Bob a 5 MB file over a reliable, encrypted stream"
head -c 5000000 /dev/urandom >"$work/holiday.bin"
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" call bob --send "$work/holiday.bin" --ice-address 127.0.0.1
cmp "$work/holiday.bin" "$work/bob-inbox/holiday.bin" && echo "Bob's copy is byte-identical"
echo "--- what Bob's terminal printed:"
cat "$work/bob-listen.log"

step "8. Bob logs out; Alice looks again"
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" logout
sleep 0.2
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" whereis bob || true

step "Done: the node, both terminals and $work are cleaned up on exit"
