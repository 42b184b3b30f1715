# shellcheck shell=bash
# Shared helpers for the LAN agent + rendezvous node integration tests
# (agent_node_test.sh, agent_kea_test.sh, agent_isc_test.sh). Sourced, not run.
#
# What a test gets:
#   - two network namespaces made here, "$SRV" (lan0, 10.99.0.1/24: the DHCP
#     server) and "$CLI" (host0: busybox udhcpc), with names unique to this
#     process; the node, the agents and the terminal run in the root namespace
#     on 127.0.0.1, and the hook (run by the DHCP server inside "$SRV") reaches
#     the agent through its socket file (namespaces share the filesystem);
#   - a real node (its own deployment in $WORK, ports picked by the kernel) with
#     a user alice, and agent bundles enrolled there;
#   - cleanup on every exit path: every process started here killed by its PID,
#     both namespaces deleted (with anything still running in them), $WORK
#     removed. Every wait is bounded.
# Exits 77 (skip) with a reason when not root, when a program is missing or
# when namespaces cannot be made.

set -uo pipefail

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; FAILED=1; exit 1; }
pass() { echo "ok: $*"; }
now_ms() { date +%s%3N; }

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
BUILD="${TSUNAGU_BUILD:-}"
[ -n "$BUILD" ] || skip "TSUNAGU_BUILD (the build directory) is not set"
AGENT="$BUILD/lan-agent/tsunagu-lan-agent"
HOOK="$BUILD/lan-agent/tsunagu-dhcp-hook"
RDV="$BUILD/node/tsunagu-rendezvous"
TERM_CLI="$BUILD/terminal/tsunagu"
for program in "$AGENT" "$HOOK" "$RDV" "$TERM_CLI"; do
  [ -x "$program" ] || skip "$program is not built"
done
for tool in ip busybox python3; do
  command -v "$tool" > /dev/null || skip "$tool is not installed"
done

SRV="tsan-srv-$$"
CLI="tsan-cli-$$"
WORK="$(mktemp -d /tmp/tsan.XXXXXX)"
chmod 755 "$WORK"
PIDS=()       # every process started here (the node, agents, servers, clients)
FAILED=0
DUMP_LOGS=()  # logs printed when the test fails

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2> /dev/null; done
  for ns in "$SRV" "$CLI"; do
    for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$pid" 2> /dev/null; done
  done
  ip netns del "$SRV" 2> /dev/null
  ip netns del "$CLI" 2> /dev/null
  if [ "$FAILED" != 0 ]; then
    for f in "${DUMP_LOGS[@]}"; do
      echo "--- $f"
      tail -n 60 "$f" 2> /dev/null
    done
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"  # KEEP_WORK=1 keeps the logs for a look afterwards
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# forget PID: the process was reaped; cleanup must not signal a recycled PID.
forget() {
  local keep=() pid
  for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

# stop_pid PID [SIGNAL]: signals it and waits (bounded: 10 s, then SIGKILL);
# returns its exit status.
stop_pid() {
  local pid="$1" sig="${2:-TERM}" deadline rc
  kill "-$sig" "$pid" 2> /dev/null
  deadline=$(($(now_ms) + 10000))
  while kill -0 "$pid" 2> /dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
  kill -9 "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  rc=$?
  forget "$pid"
  return "$rc"
}

# ---------------------------------------------------------------- namespaces

make_namespaces() {
  ip netns add "$SRV" 2> /dev/null || skip "cannot create network namespaces"
  ip netns add "$CLI" 2> /dev/null || skip "cannot create network namespaces"
  ip link add lan0 netns "$SRV" type veth peer name host0 netns "$CLI" 2> /dev/null ||
    skip "cannot create a veth pair"
  ip netns exec "$SRV" ip link set lo up
  ip netns exec "$CLI" ip link set lo up
  ip netns exec "$SRV" ip addr add 10.99.0.1/24 dev lan0
  ip netns exec "$SRV" ip link set lan0 up
  ip netns exec "$CLI" ip link set host0 up
}

# ---------------------------------------------------------------- the node

NODE_PASSWORD="alice-test-password"

# make_deployment DIR: `tsunagu-rendezvous init` with a cheap scrypt cost and
# SCRAM's minimum iterations (tests only; production keeps 600000).
make_deployment() {
  "$RDV" init "$1" > "$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; fail "tsunagu-rendezvous init $1 failed"; }
  sed -i 's/^scrypt_log2_n = .*/scrypt_log2_n = 14/; s/^scram_iterations = .*/scram_iterations = 4096/' "$1/node.toml"
}

# enroll DEPLOYMENT NAME DOMAIN OUT: an agent bundle (exit status returned).
enroll() {
  "$RDV" agent -d "$1" enroll "$2" --domain "$3" --out "$4" --node 127.0.0.1:1 --server-name 127.0.0.1
}

# start_node: the node of $DEP on 127.0.0.1 (ports 0); sets NODE_PID,
# NODE_TLS (host:port for terminals) and NODE_AGENT (host:port for agents).
start_node() {
  rm -f "$WORK/node-ready.json"
  "$RDV" run -d "$DEP" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 --agent-listen 127.0.0.1:0 --web-listen 127.0.0.1:0 \
    --ready-file "$WORK/node-ready.json" --log-level debug >> "$WORK/node.log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  DUMP_LOGS+=("$WORK/node.log")
  local deadline=$(($(now_ms) + 20000))
  until [ -s "$WORK/node-ready.json" ] &&
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/node-ready.json" 2> /dev/null; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "the node wrote no ready file within 20 s"
    kill -0 "$NODE_PID" 2> /dev/null || fail "the node exited at start"
    sleep 0.05
  done
  read -r NODE_TLS NODE_AGENT < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["tls"], r["agent"])' "$WORK/node-ready.json")
  [ -n "$NODE_AGENT" ] || fail "no agent port in the ready file: $(cat "$WORK/node-ready.json")"
  pass "node $NODE_PID serving terminals on $NODE_TLS, agents on $NODE_AGENT"
}

# setup_node: deployment $WORK/node with user alice, agent "acme" for domain
# acme (bundle $WORK/acme), then the node.
setup_node() {
  DEP="$WORK/node"
  make_deployment "$DEP"
  TSUNAGU_PASSWORD="$NODE_PASSWORD" "$RDV" user -d "$DEP" add alice --name "Alice" > "$WORK/user.log" 2>&1 ||
    { cat "$WORK/user.log"; fail "user add alice failed"; }
  enroll "$DEP" acme acme "$WORK/acme" > "$WORK/enroll.log" 2>&1 || { cat "$WORK/enroll.log"; fail "enroll acme failed"; }
  start_node
}

# setup_acme: the namespaces, the udhcpc script, the node (setup_node) and agent
# acme's agent.toml in $ACME (not started).
setup_acme() {
  make_namespaces
  write_udhcpc_script
  setup_node
  ACME="$WORK/acme"
  write_agent_toml "$ACME" acme acme
}

# start_dnsmasq: dnsmasq on lan0 in "$SRV" (2-minute leases), calling the hook
# with agent acme's config, logging to $WORK/dnsmasq.log; sets DNSMASQ_PID.
start_dnsmasq() {
  command -v dnsmasq > /dev/null || skip "dnsmasq is not installed (Debian package dnsmasq-base)"
  # dnsmasq passes its environment to the script: the hook finds the agent's socket there.
  TSUNAGU_AGENT_CONFIG="$ACME/agent.toml" ip netns exec "$SRV" dnsmasq -k --conf-file=/dev/null --port=0 \
    --interface=lan0 --bind-interfaces --no-ping --dhcp-range=10.99.0.50,10.99.0.99,255.255.255.0,2m \
    --dhcp-script="$HOOK" --script-on-renewal --dhcp-leasefile="$WORK/dnsmasq.leases" \
    --pid-file="$WORK/dnsmasq.pid" --log-facility=- > "$WORK/dnsmasq.log" 2>&1 &
  DNSMASQ_PID=$!
  PIDS+=("$DNSMASQ_PID")
  DUMP_LOGS+=("$WORK/dnsmasq.log" "$WORK/udhcpc.log")
  sleep 0.5
  kill -0 "$DNSMASQ_PID" 2> /dev/null || fail "dnsmasq did not start"
}

# ---------------------------------------------------------------- agents

# write_agent_toml BUNDLE NAME DOMAIN: the bundle's agent.toml, pointing at our
# node, with its table, hook socket and spool inside the bundle directory.
write_agent_toml() {
  cat > "$1/agent.toml" << EOF
[node]
address = "$NODE_AGENT"
server_name = "127.0.0.1"
ca_certificate = "ca.crt"
certificate = "agent.crt"
private_key = "agent.key"
heartbeat_interval = 2
request_timeout = 5
reconnect_min_ms = 100
reconnect_max_ms = 1000

[agent]
name = "$2"
domains = ["$3"]
data_directory = "$1/data"
log_level = "debug"

[table]
hostname_rule = "ext{ext}"

# whereis shows the leased address: these tests check it (off by default).
[policy]
show_lease_addresses = true

[hook]
socket = "$1/hook.sock"
spool_directory = "$1/spool"
EOF
}

# start_agent BUNDLE: runs the agent (root namespace) and sets AGENT_PID.
start_agent() {
  "$AGENT" run -c "$1/agent.toml" >> "$1/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  DUMP_LOGS+=("$1/agent.log")
}

# wait_linked BUNDLE COUNT: waits (10 s) until the agent's log says "linked to
# the node" COUNT times in all.
wait_linked() {
  local deadline=$(($(now_ms) + 10000))
  until [ "$(grep -c 'linked to the node' "$1/agent.log" 2> /dev/null)" -ge "$2" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "the agent of $1 did not link to the node within 10 s"
    kill -0 "$AGENT_PID" 2> /dev/null || fail "the agent of $1 exited"
    sleep 0.05
  done
  local deadline2=$(($(now_ms) + 5000))
  until [ -S "$1/hook.sock" ]; do
    [ "$(now_ms)" -lt "$deadline2" ] || fail "the agent of $1 opened no hook socket"
    sleep 0.05
  done
}

# wait_log FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN.
wait_log() {
  local deadline=$(($(now_ms) + $3 * 1000))
  until grep -Eq "$2" "$1" 2> /dev/null; do
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------- the terminal

# lookup ID: `tsunagu whereis ID --json` as alice. Sets LOOKUP_RC, LOOKUP_OUT,
# LOOKUP_LEASE (addresses, space-separated), LOOKUP_AGENT, LOOKUP_ERROR.
lookup() {
  LOOKUP_OUT=$(TSUNAGU_NODE="$NODE_TLS" TSUNAGU_CA="$DEP/ca.crt" TSUNAGU_USER=alice \
    TSUNAGU_PASSWORD="$NODE_PASSWORD" timeout 20 "$TERM_CLI" whereis "$1" --json 2> "$WORK/whereis.err")
  LOOKUP_RC=$?
  LOOKUP_LEASE='' LOOKUP_AGENT='' LOOKUP_ERROR=''
  [ -n "$LOOKUP_OUT" ] || return 0
  read -r LOOKUP_ERROR LOOKUP_AGENT LOOKUP_LEASE < <(python3 -c '
import json, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    print("unparsable - ")
    sys.exit(0)
print(r.get("error", 0), r.get("agent") or "-", " ".join(r.get("lease", [])))' "$LOOKUP_OUT")
}

# lookup_at ID ADDRESS: whereis gives ADDRESS (and only it) from agent acme.
lookup_at() {
  lookup "$1"
  [ "$LOOKUP_RC" = 0 ] && [ "$LOOKUP_AGENT" = acme ] && [ "$LOOKUP_LEASE" = "$2" ]
}

# lookup_error ID CODE: whereis fails with exit 4 and error CODE.
lookup_error() {
  lookup "$1"
  [ "$LOOKUP_RC" = 4 ] && [ "$LOOKUP_ERROR" = "$2" ]
}

# expect_within MS DESCRIPTION COMMAND...: polls COMMAND every 100 ms until it
# succeeds; fails after MS milliseconds (the last attempt may start just before).
expect_within() {
  local ms="$1" what="$2"
  shift 2
  local start deadline
  start=$(now_ms)
  deadline=$((start + ms))
  until "$@"; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
      echo "last whereis: rc=$LOOKUP_RC out=$LOOKUP_OUT err=$(cat "$WORK/whereis.err" 2> /dev/null)"
      fail "$what: not within $ms ms"
    fi
    sleep 0.1
  done
  pass "$what (after $(($(now_ms) - start)) ms)"
}

# ---------------------------------------------------------------- DHCP clients

write_udhcpc_script() {
  cat > "$WORK/udhcpc.sh" << 'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface" scope global ;;
  bound|renew)
    ip addr flush dev "$interface" scope global
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "$ip" > "$MARK.tmp" && mv "$MARK.tmp" "$MARK" ;;
esac
exit 0
EOF
  chmod 755 "$WORK/udhcpc.sh"
}

# start_client HOSTNAME MAC [REQUESTED-IP]: udhcpc on host0 (in "$CLI") with
# that MAC, releasing on SIGTERM (-R); sets CLIENT_PID.
start_client() {
  local request=()
  [ -n "${3:-}" ] && request=(-r "$3")
  rm -f "$WORK/bound-$1"
  ip netns exec "$CLI" ip addr flush dev host0 scope global
  ip netns exec "$CLI" ip link set host0 down
  ip netns exec "$CLI" ip link set host0 address "$2"
  ip netns exec "$CLI" ip link set host0 up
  ip netns exec "$CLI" env MARK="$WORK/bound-$1" busybox udhcpc -f -R -i host0 -s "$WORK/udhcpc.sh" \
    -x "hostname:$1" "${request[@]}" -t 20 -T 1 >> "$WORK/udhcpc.log" 2>&1 &
  CLIENT_PID=$!
  PIDS+=("$CLIENT_PID")
}

# wait_bound HOSTNAME: prints the address the client got (waits up to 20 s).
wait_bound() {
  local deadline=$(($(now_ms) + 20000))
  until [ -s "$WORK/bound-$1" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || { FAILED=1; echo "FAIL: client $1 got no lease within 20 s" >&2; return 1; }
    sleep 0.05
  done
  BOUND_AT=$(date -u +%H:%M:%S.%3N)
  echo "$(cat "$WORK/bound-$1") (seen bound at $BOUND_AT UTC)" >&2
  cat "$WORK/bound-$1"
}

# lease_flow: with a DHCP server serving lan0 and the agent "acme" linked:
#   1. ext4106 gets a lease: whereis 4106@acme gives it within one second;
#   2. the client releases: whereis says 481 (no live lease) within one second;
#   3. the client comes back (over a second later) asking for another address:
#      whereis follows within one second, and no longer gives the old one.
# Sets LEASE_CLIENT_PID (still running) and LEASE_ADDRESS for the caller.
LEASE_MAC=02:00:00:41:06:01
# shellcheck disable=SC2034
lease_flow() {
  local a1 want a2 released_at wait_ms
  start_client ext4106 "$LEASE_MAC"
  local c1=$CLIENT_PID
  a1=$(wait_bound ext4106) || fail "ext4106 got no lease"
  pass "client ext4106 bound $a1"
  expect_within 1000 "whereis 4106@acme gives $a1 from agent acme" lookup_at 4106@acme "$a1"

  stop_pid "$c1" TERM
  released_at=$(now_ms)
  expect_within 1000 "whereis 4106@acme: 481 no live lease after the release" lookup_error 4106@acme 481

  # Another address in the pool than the one it had, in a later second than
  # the release (quick_relet below covers the same second).
  wait_ms=$((released_at + 1100 - $(now_ms)))
  [ "$wait_ms" -gt 0 ] && sleep "$(awk -v ms="$wait_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
  want=$(other_address "$a1")
  start_client ext4106 "$LEASE_MAC" "$want"
  LEASE_CLIENT_PID=$CLIENT_PID
  a2=$(wait_bound ext4106) || fail "ext4106 got no second lease"
  [ "$a2" != "$a1" ] || fail "the server gave ext4106 the same address $a1 again (asked for $want)"
  pass "client ext4106 bound a new address $a2 (was $a1)"
  expect_within 1000 "whereis 4106@acme follows to $a2" lookup_at 4106@acme "$a2"
  LEASE_ADDRESS=$a2
}

# other_address ADDRESS [ADDRESS]: an address of the pool that is neither.
other_address() {
  local candidate
  for candidate in 10.99.0.77 10.99.0.78 10.99.0.79; do
    [ "$candidate" != "$1" ] && [ "$candidate" != "${2:-}" ] && { echo "$candidate"; return; }
  done
}

# quick_relet: the running client (LEASE_CLIENT_PID at LEASE_ADDRESS) releases
# at the start of a second and at once asks for another address, so that the
# release and the new grant fall in the same second (a terminal rebooting, or
# `udhcpc -R` restarted): whereis must follow within one second.
# Sets LEASE_CLIENT_PID and LEASE_ADDRESS for the caller.
# shellcheck disable=SC2034
quick_relet() {
  local want a3 release_s
  want=$(other_address "$LEASE_ADDRESS")
  python3 -c 'import time; time.sleep(1.02 - time.time() % 1)'
  release_s=$(date +%s)
  stop_pid "$LEASE_CLIENT_PID" TERM
  start_client ext4106 "$LEASE_MAC" "$want"
  LEASE_CLIENT_PID=$CLIENT_PID
  a3=$(wait_bound ext4106) || fail "ext4106 got no lease after the quick release"
  [ "$a3" != "$LEASE_ADDRESS" ] || fail "the server gave ext4106 the same address $a3 again (asked for $want)"
  if [ "$(date +%s)" = "$release_s" ]; then
    pass "client ext4106 released $LEASE_ADDRESS and bound $a3 within the same second"
  else
    pass "client ext4106 released $LEASE_ADDRESS and bound $a3 (not within the same second this time)"
  fi
  expect_within 1000 "whereis 4106@acme follows a release and a new lease in the same second to $a3" \
    lookup_at 4106@acme "$a3"
  LEASE_ADDRESS=$a3
}

# start_second_client HOSTNAME MAC [MARK]: a second DHCP client at once, on a
# macvlan "mv1" over host0 in "$CLI" with its own MAC; its address lands in
# $WORK/bound-MARK (default: HOSTNAME) for wait_bound MARK; sets SECOND_CLIENT_PID.
start_second_client() {
  local mark=${3:-$1}
  rm -f "$WORK/bound-$mark"
  ip netns exec "$CLI" ip link add link host0 name mv1 address "$2" type macvlan mode bridge ||
    fail "cannot add a macvlan for the second client"
  ip netns exec "$CLI" ip link set mv1 up
  ip netns exec "$CLI" env MARK="$WORK/bound-$mark" busybox udhcpc -f -R -i mv1 -s "$WORK/udhcpc.sh" \
    -x "hostname:$1" -t 20 -T 1 >> "$WORK/udhcpc.log" 2>&1 &
  SECOND_CLIENT_PID=$!
  PIDS+=("$SECOND_CLIENT_PID")
}

# Sends a real DHCPRELEASE for ADDRESS from MAC with client-id CLIENT_ID (hex,
# e.g. 01020a0b0c0d0e) to the server at 10.99.0.1, from inside "$CLI" (ADDRESS is
# added to host0 for the moment). What a client that restarted with another
# client-id would have sent for its old lease, had it released it.
send_release() {
  local address=$1 mac=$2 client_id=$3
  ip netns exec "$CLI" ip addr add "$address/32" dev host0 2> /dev/null
  ip netns exec "$CLI" python3 - "$address" "$mac" "$client_id" << 'PY'
import secrets, socket, struct, sys
address, mac, client_id = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), bytes.fromhex(sys.argv[3])
packet = struct.pack("!BBBBIHH4s4s4s4s16s64s128sI", 1, 1, 6, 0, secrets.randbits(32), 0, 0,
                     socket.inet_aton(address), bytes(4), bytes(4), bytes(4), mac.ljust(16, b"\0"),
                     bytes(64), bytes(128), 0x63825363)
packet += bytes([53, 1, 7, 54, 4]) + socket.inet_aton("10.99.0.1") + bytes([61, len(client_id)]) + client_id + b"\xff"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((address, 68))
s.sendto(packet, ("10.99.0.1", 67))
PY
  local rc=$?
  ip netns exec "$CLI" ip addr del "$address/32" dev host0 2> /dev/null
  return $rc
}

# Issue 10, item 2: a terminal restarts its DHCP client with a new client-id and
# the same MAC (PXE then the OS, a reinstall). The server gives a new address;
# when the old lease later ends, the extension must keep its current one.
# $1: a regex of the server's log line for the old lease's release (proof that
# the server ended it), $2: that log file, $3: the agent's log.
new_client_id_flow() {
  local release_regex=$1 server_log=$2 agent_log=$3 old new want old_clid new_clid
  old=$LEASE_ADDRESS
  old_clid="01${LEASE_MAC//:/}"  # busybox udhcpc's default client-id
  new_clid="ff00000001000100${LEASE_MAC//:/}"
  stop_pid "$LEASE_CLIENT_PID" KILL  # no release: the old lease stays on the server
  want=$(other_address "$old")
  rm -f "$WORK/bound-ext4106"
  ip netns exec "$CLI" ip addr flush dev host0 scope global
  ip netns exec "$CLI" env MARK="$WORK/bound-ext4106" busybox udhcpc -f -i host0 -s "$WORK/udhcpc.sh" \
    -x hostname:ext4106 -C -x "0x3d:$new_clid" -r "$want" -R -t 20 -T 1 >> "$WORK/udhcpc.log" 2>&1 &
  LEASE_CLIENT_PID=$!
  PIDS+=("$LEASE_CLIENT_PID")
  new=$(wait_bound ext4106) || fail "ext4106 got no lease with the new client-id"
  [ "$new" != "$old" ] || fail "the server gave the new client-id the old address $old"
  expect_within 1000 "same MAC, new client-id $new_clid: whereis 4106@acme follows to $new" lookup_at 4106@acme "$new"
  local server_lines agent_lines deadline
  server_lines=$(wc -l < "$server_log")
  agent_lines=$(wc -l < "$agent_log")
  send_release "$old" "$LEASE_MAC" "$old_clid" || fail "could not send the DHCPRELEASE of $old"
  deadline=$(($(now_ms) + 5000))
  until tail -n +"$((server_lines + 1))" "$server_log" | grep -Eq "$release_regex"; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "the server did not log the release of $old within 5 s"
    sleep 0.05
  done
  pass "the server ended the old lease $old (client-id $old_clid)"
  # The hook's end event reaches the agent: it says it ignored it (or, wrongly, the extension goes).
  deadline=$(($(now_ms) + 5000))
  until tail -n +"$((agent_lines + 1))" "$agent_log" | grep -q "ignored .* of $old "; do
    lookup_at 4106@acme "$new" ||
      fail "the end of the old lease $old ended the current one at $new: rc=$LOOKUP_RC $LOOKUP_OUT"
    [ "$(now_ms)" -lt "$deadline" ] || fail "the agent did not log the end of $old within 5 s"
    sleep 0.1
  done
  lookup_at 4106@acme "$new" || fail "after the old lease's end: rc=$LOOKUP_RC $LOOKUP_OUT"
  pass "the agent ignored the end of the old lease; whereis 4106@acme still gives $new"
  LEASE_ADDRESS=$new
}
