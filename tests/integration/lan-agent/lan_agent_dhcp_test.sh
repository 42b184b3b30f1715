#!/bin/bash
# The LAN agent fed by a real dnsmasq through tsunagu-dhcp-hook.
#
# Two network namespaces created here (server: lan0 10.99.0.1/24 with dnsmasq
# and the agent; client: host0 with busybox udhcpc). Asserts:
#   - the agent learns a lease (hostname rule ext{ext}) within one second;
#   - a release and a different client: the table follows within one second;
#   - with the agent killed (-9) while leases change, the hook spools, dnsmasq
#     keeps serving; after a restart the table is right and nothing was lost;
#   - `sync --from dnsmasq:FILE`, SIGHUP and the dnsmasq `init` listing work;
#   - an orderly stop leaves the table's clean-shutdown marker; a table without
#     it from another boot (a faked power cut) is rebuilt from the lease file.
# Exits 77 (skip) when not root or when namespaces cannot be created. Every
# process started here is killed by its PID and both namespaces are deleted on
# every exit path.
set -uo pipefail

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
BUILD="${TSUNAGU_BUILD:-}"
[ -n "$BUILD" ] || skip "TSUNAGU_BUILD (the build directory) is not set"
AGENT="$BUILD/lan-agent/tsunagu-lan-agent"
HOOK="$BUILD/lan-agent/tsunagu-dhcp-hook"
[ -x "$AGENT" ] && [ -x "$HOOK" ] || skip "agent binaries not built in $BUILD"
for tool in ip dnsmasq busybox; do
  command -v "$tool" > /dev/null || skip "$tool is not installed"
done

SRV="tsla-srv-$$"
CLI="tsla-cli-$$"
WORK="$(mktemp -d /tmp/tsla.XXXXXX)"
PIDS=()
AGENT_PID=
FAILED=0

cleanup() {
  set +e
  for pid in "${PIDS[@]}" $AGENT_PID; do kill "$pid" 2> /dev/null; done
  sleep 0.3
  for pid in "${PIDS[@]}" $AGENT_PID; do kill -9 "$pid" 2> /dev/null; done
  for ns in "$SRV" "$CLI"; do
    for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$pid" 2> /dev/null; done
  done
  ip netns del "$SRV" 2> /dev/null
  ip netns del "$CLI" 2> /dev/null
  if [ "$FAILED" != 0 ]; then
    echo "--- agent log"; cat "$WORK/agent.log" 2> /dev/null
    echo "--- dnsmasq log"; tail -n 40 "$WORK/dnsmasq.log" 2> /dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*"; FAILED=1; exit 1; }
pass() { echo "ok: $*"; }
now_ms() { date +%s%3N; }

ip netns add "$SRV" 2> /dev/null || skip "cannot create network namespaces"
ip netns add "$CLI" || skip "cannot create network namespaces"
ip link add lan0 netns "$SRV" type veth peer name host0 netns "$CLI" || skip "cannot create a veth pair"
ip netns exec "$SRV" ip link set lo up
ip netns exec "$CLI" ip link set lo up
ip netns exec "$SRV" ip addr add 10.99.0.1/24 dev lan0
ip netns exec "$SRV" ip link set lan0 up
ip netns exec "$CLI" ip link set host0 up

cat > "$WORK/agent.toml" << EOF
[agent]
data_directory = "$WORK/data"
log_level = "debug"
[table]
hostname_rule = "ext{ext}"
[hook]
socket = "$WORK/hook.sock"
spool_directory = "$WORK/spool"
[sync]
lease_files = ["dnsmasq:$WORK/dnsmasq.leases"]
EOF
export TSUNAGU_AGENT_CONFIG="$WORK/agent.toml"

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

start_agent() {
  ip netns exec "$SRV" "$AGENT" run -c "$WORK/agent.toml" >> "$WORK/agent.log" 2>&1 &
  AGENT_PID=$!
  local deadline=$(($(now_ms) + 5000))
  until [ -S "$WORK/hook.sock" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "the agent did not open its hook socket within 5 s"
    kill -0 "$AGENT_PID" 2> /dev/null || fail "the agent exited at start"
    sleep 0.05
  done
}

# start_client HOSTNAME MAC: a udhcpc on host0 with that MAC; sets CLIENT_PID.
start_client() {
  rm -f "$WORK/bound-$1"
  ip netns exec "$CLI" ip addr flush dev host0 scope global
  ip netns exec "$CLI" ip link set host0 down
  ip netns exec "$CLI" ip link set host0 address "$2"
  ip netns exec "$CLI" ip link set host0 up
  ip netns exec "$CLI" env MARK="$WORK/bound-$1" busybox udhcpc -f -R -i host0 -s "$WORK/udhcpc.sh" \
    -x "hostname:$1" -t 10 -T 1 >> "$WORK/udhcpc.log" 2>&1 &
  CLIENT_PID=$!
  PIDS+=("$CLIENT_PID")
}

# wait_bound HOSTNAME: prints the address the client got (waits up to 15 s).
wait_bound() {
  local deadline=$(($(now_ms) + 15000))
  until [ -s "$WORK/bound-$1" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "client $1 got no lease within 15 s"
    sleep 0.05
  done
  cat "$WORK/bound-$1"
}

stop_client() {
  kill -TERM "$1" 2> /dev/null
  wait "$1" 2> /dev/null
}

list() { "$AGENT" list -c "$WORK/agent.toml"; }

# expect_within MS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
# MS is the target; the test fails only past TSUNAGU_TIME_SCALE (default 3)
# times it, so a loaded CI machine or a sanitizer build does not make it flaky
# (speed is the benchmarks' job), and says when the target itself was missed.
expect_within() {
  local ms="$1" what="$2"
  shift 2
  local start deadline elapsed
  start=$(now_ms)
  deadline=$((start + ms * ${TSUNAGU_TIME_SCALE:-3}))
  until "$@" > /dev/null 2>&1; do
    [ "$(now_ms)" -lt "$deadline" ] || { list; fail "$what: not within $((ms * ${TSUNAGU_TIME_SCALE:-3})) ms"; }
    sleep 0.05
  done
  elapsed=$(($(now_ms) - start))
  pass "$what (after $elapsed ms)"
  [ "$elapsed" -le "$ms" ] || echo "note: $what took $elapsed ms, over the $ms ms target"
}
has_row() { list | grep -Eq "^$1 +[0-9a-f:]+ +$2 "; }
no_lease() { list | grep -Eq "^$1 .*\(no live lease\)"; }

start_agent

ip netns exec "$SRV" dnsmasq -k --conf-file=/dev/null --port=0 --interface=lan0 --bind-interfaces --no-ping \
  --dhcp-range=10.99.0.50,10.99.0.99,255.255.255.0,2m --dhcp-script="$HOOK" --script-on-renewal \
  --dhcp-leasefile="$WORK/dnsmasq.leases" --pid-file="$WORK/dnsmasq.pid" > "$WORK/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!
PIDS+=("$DNSMASQ_PID")
sleep 0.5
kill -0 "$DNSMASQ_PID" 2> /dev/null || fail "dnsmasq did not start"

# 1. A lease is learned, with its extension from the hostname.
start_client ext1001 02:00:00:00:10:01
C1=$CLIENT_PID
A1=$(wait_bound ext1001) || exit 1
expect_within 1000 "1001 learned at $A1" has_row 1001 "$A1"
"$AGENT" show -c "$WORK/agent.toml" 1001 | grep -q "learned from hostname" || fail "show 1001: binding not learned"

# 2. A renewal keeps it; a release ends it within one second.
rm -f "$WORK/bound-ext1001"
kill -USR1 "$C1"
wait_bound ext1001 > /dev/null || exit 1
expect_within 1000 "1001 still live after a renewal" has_row 1001 "$A1"
stop_client "$C1"
expect_within 1000 "1001 released" no_lease 1001

# 3. A different client: the table follows within one second.
start_client ext1002 02:00:00:00:10:02
C2=$CLIENT_PID
A2=$(wait_bound ext1002) || exit 1
expect_within 1000 "1002 learned at $A2" has_row 1002 "$A2"

# 4. The agent dies; leases change; the hook spools and dnsmasq keeps serving.
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2> /dev/null
AGENT_PID=
stop_client "$C2"
start_client ext1003 02:00:00:00:10:03
C3=$CLIENT_PID
A3=$(wait_bound ext1003) || exit 1
sleep 0.5
kill -0 "$DNSMASQ_PID" 2> /dev/null || fail "dnsmasq died while the agent was down"
SPOOL="$WORK/spool/hook-0.spool"
[ -s "$SPOOL" ] || fail "the hook did not spool while the agent was down"
pass "the hook spooled $(stat -c %s "$SPOOL") bytes while the agent was down"

# 5. The agent restarts and replays the spool: the table is right, nothing lost.
start_agent
expect_within 1000 "1003 learned from the spool at $A3" has_row 1003 "$A3"
no_lease 1002 || { list; fail "1002's release was lost"; }
no_lease 1001 || { list; fail "1001 came back"; }
pass "1002's release replayed from the spool"
[ "$(stat -c %s "$SPOOL")" = 0 ] || fail "the spool was not truncated after the replay"
pass "spool truncated after the replay"

# 6. A terminal comes back at a new address: 1003 releases, another MAC takes
#    an address, 1003 is granted again; the table follows each step.
stop_client "$C3"
expect_within 1000 "1003 released" no_lease 1003
start_client ext1004 02:00:00:00:10:04
C4=$CLIENT_PID
A4=$(wait_bound ext1004) || exit 1
expect_within 1000 "1004 learned at $A4" has_row 1004 "$A4"
stop_client "$C4"
start_client ext1003 02:00:00:00:10:03
C3=$CLIENT_PID
A3B=$(wait_bound ext1003) || exit 1
expect_within 1000 "1003 live again at $A3B" has_row 1003 "$A3B"
stop_client "$C3"
expect_within 1000 "1003 released again" no_lease 1003

# 7. On-demand sync and SIGHUP reconcile with the lease file; init lists leases.
start_client ext1005 02:00:00:00:10:05
C5=$CLIENT_PID
A5=$(wait_bound ext1005) || exit 1
expect_within 1000 "1005 learned at $A5" has_row 1005 "$A5"
out=$("$AGENT" sync -c "$WORK/agent.toml" --from "dnsmasq:$WORK/dnsmasq.leases") || fail "sync failed: $out"
echo "$out" | grep -q "^synced dnsmasq:" || fail "sync printed: $out"
pass "sync --from: $out"
kill -HUP "$AGENT_PID"
sleep 0.3
kill -0 "$AGENT_PID" 2> /dev/null || fail "the agent died on SIGHUP"
grep -q "synced dnsmasq:" "$WORK/agent.log" || fail "SIGHUP did not re-sync"
pass "SIGHUP re-synced the lease file"
listing=$("$HOOK" init)
echo "$listing" | grep -q " 02:00:00:00:10:05 $A5 ext1005 " || fail "init listing: $listing"
pass "dnsmasq init lists the live lease: $listing"
has_row 1005 "$A5" || fail "1005 lost after the syncs"
stop_client "$C5"

# 8. SIGTERM: a clean exit.
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
rc=$?
AGENT_PID=
[ "$rc" = 0 ] || fail "the agent exited with $rc on SIGTERM"
pass "SIGTERM: clean exit"
TABLE="$WORK/data/table"
[ -f "$TABLE/clean-shutdown" ] || fail "no clean-shutdown marker in $TABLE after the orderly stop"
pass "the orderly stop flushed the table and left the clean-shutdown marker"

# 9. A power cut after ACKed hook events, faked: it cannot be caused here. The
#    table commits to the page cache only; a machine that loses power loses
#    the pages written since the last flush. We fake exactly that: the table
#    file from before a new lease (what a disk that never got the later pages
#    would hold), no marker, and the boot ID of another boot. The agent must
#    discard the table and rebuild it from dnsmasq's lease file, keeping the
#    admin binding (kept in the flushed environment beside it).
cp "$TABLE/data.mdb" "$WORK/table-before.mdb"
"$AGENT" bind -c "$WORK/agent.toml" 2001 02:00:00:00:20:01 > /dev/null || fail "bind 2001"
start_agent
grep -q "discarding the allocation table" "$WORK/agent.log" && fail "a table with its marker was discarded"
[ -f "$TABLE/clean-shutdown" ] && fail "the marker stayed while the agent runs"
start_client ext1006 02:00:00:00:10:06
C6=$CLIENT_PID
A6=$(wait_bound ext1006) || exit 1
expect_within 1000 "1006 learned at $A6" has_row 1006 "$A6"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2> /dev/null
AGENT_PID=
cp "$WORK/table-before.mdb" "$TABLE/data.mdb"
rm -f "$TABLE/lock.mdb"
echo "00000000-0000-0000-0000-000000000000" > "$TABLE/boot-id"
rm -f "$WORK/hook.sock"  # the killed agent's: start_agent waits for the new one
start_agent
grep -q "discarding the allocation table and rebuilding it" "$WORK/agent.log" ||
  fail "the agent kept a table without its marker from another boot"
grep -q "table: rebuilt from 1 lease file" "$WORK/agent.log" || fail "no line saying the table was rebuilt"
pass "no marker, another boot: the table was discarded and rebuilt ($(grep -o 'table: rebuilt from.*' "$WORK/agent.log"))"
from_file=$(awk '{print $2, $3}' "$WORK/dnsmasq.leases" | sort)
from_table=$(list | awk 'length($2) == 17 && $3 != "-" {print $2, $3}' | sort)
[ -n "$from_file" ] || fail "dnsmasq's lease file is empty"
[ "$from_file" = "$from_table" ] || fail "the rebuilt table differs from the lease file: file [$from_file] table [$from_table]"
pass "the rebuilt table holds exactly the lease file's leases: $(echo "$from_table" | tr '\n' ';')"
"$AGENT" show -c "$WORK/agent.toml" 2001 | grep -q "02:00:00:00:20:01" || fail "the admin binding of 2001 was lost"
pass "the admin binding survived the rebuild"
stop_client "$C6"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
rc=$?
AGENT_PID=
[ "$rc" = 0 ] || fail "the agent exited with $rc on SIGTERM after the rebuild"
echo "PASS"
