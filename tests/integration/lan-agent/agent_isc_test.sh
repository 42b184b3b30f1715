#!/bin/bash
# The LAN agent linked to a real rendezvous node, fed by ISC dhcpd through
# `on commit / on release / on expiry { execute(tsunagu-dhcp-hook ...) }`.
#
# A node on 127.0.0.1 (user alice), agent "acme" linked to it; dhcpd in one
# network namespace (configuration, lease and pid files in the temporary
# directory; run here by the test, never as a service), busybox udhcpc with
# hostname ext4106 in another. Asserts with `tsunagu whereis 4106@acme --json`
# as alice: the leased address from agent "acme" within one second; 481 within
# one second of the release; a new address followed within one second; a sync
# of dhcpd.leases agrees.
# dhcpd's execute() passes no environment: the hook gets --config as its first
# arguments (docs/lan-agent.md). Exits 77 (skip) when not root, dhcpd is
# missing (Debian package isc-dhcp-server) or namespaces cannot be made.
. "$(dirname "$0")/agent_lib.sh"

DHCPD=$(command -v dhcpd || true)
[ -n "$DHCPD" ] || { [ -x /usr/sbin/dhcpd ] && DHCPD=/usr/sbin/dhcpd; }
[ -n "$DHCPD" ] || skip "dhcpd is not installed (Debian package isc-dhcp-server)"

setup_acme
start_agent "$ACME"
wait_linked "$ACME" 1
pass "agent acme linked to the node"

CONF="$ACME/agent.toml"
ADDR='binary-to-ascii(10, 8, ".", leased-address)'
HW='binary-to-ascii(16, 8, ":", substring(hardware, 1, 6))'
NAME='pick-first-value(option host-name, "")'
cat > "$WORK/dhcpd.conf" << EOF
default-lease-time 120;
max-lease-time 120;
authoritative;
ddns-update-style none;
ping-check false;
subnet 10.99.0.0 netmask 255.255.255.0 {
  range 10.99.0.50 10.99.0.99;
}
on commit {
  # ext4107 gets the common snippet without the lease-time argument (issue 10, item 3).
  if option host-name = "ext4107" {
    execute("$HOOK", "--config", "$CONF", "commit", $ADDR, $HW, $NAME);
  } else {
    execute("$HOOK", "--config", "$CONF", "commit", $ADDR, $HW, $NAME,
            binary-to-ascii(10, 32, "", encode-int(lease-time, 32)));
  }
}
on release {
  execute("$HOOK", "--config", "$CONF", "release", $ADDR, $HW, $NAME);
}
on expiry {
  execute("$HOOK", "--config", "$CONF", "expiry", $ADDR, $HW, $NAME);
}
EOF
: > "$WORK/dhcpd.leases"
ip netns exec "$SRV" "$DHCPD" -4 -f -d -cf "$WORK/dhcpd.conf" -lf "$WORK/dhcpd.leases" -pf "$WORK/dhcpd.pid" lan0 \
  > "$WORK/dhcpd.log" 2>&1 &
DHCPD_PID=$!
PIDS+=("$DHCPD_PID")
DUMP_LOGS+=("$WORK/dhcpd.log" "$WORK/udhcpc.log")
wait_log "$WORK/dhcpd.log" '^Sending on +LPF/lan0' 15 || fail "dhcpd did not start within 15 s"
kill -0 "$DHCPD_PID" 2> /dev/null || fail "dhcpd exited at start"
pass "dhcpd serving lan0"

lease_flow
A=$LEASE_ADDRESS
grep -q "lookup 4106@acme by alice" "$ACME/agent.log" || fail "the agent did not log the forwarded lookup"

# dhcpd.leases agrees with what the hooks said: a sync keeps the lease.
out=$("$AGENT" sync -c "$CONF" --from "isc:$WORK/dhcpd.leases") || fail "sync failed: $out"
echo "$out" | grep -q "^synced isc:" || fail "sync printed: $out"
pass "sync --from isc: $out"
lookup_at 4106@acme "$A" || fail "whereis after the sync: rc=$LOOKUP_RC $LOOKUP_OUT"
pass "whereis 4106@acme still gives $A after the sync"

# Release and a new lease within the same second: whereis follows.
quick_relet

# Issue 10, item 2: a new client-id with the same MAC, then the old lease ends.
new_client_id_flow 'DHCPRELEASE of [0-9.]+ from' "$WORK/dhcpd.log" "$ACME/agent.log"

# Issue 10, items 1 and 3: a second terminal (ext4107, its own MAC on a macvlan
# beside host0) whose commit hook passes no lease time. The table assumes a day
# for it until a sync from dhcpd.leases, which must keep both leases (the reader
# kept only the last block) and correct 4107's expiry to the file's 120 s.
start_second_client ext4107 02:00:00:41:07:01
B=$(wait_bound ext4107) || fail "ext4107 got no lease"
expect_within 1000 "whereis 4107@acme gives $B" lookup_at 4107@acme "$B"
row=$("$AGENT" list -c "$CONF" | grep '^4107 ') || fail "no row for 4107 in list"
echo "$row" | grep -Eq ' (2[0-3]h[0-9]{2}m|1d00h)\? ' || fail "4107's expiry without the lease time is not the assumed day: $row"
pass "without the lease time the table assumes a day: $row"
out=$("$AGENT" sync -c "$CONF" --from "isc:$WORK/dhcpd.leases") || fail "sync failed: $out"
n=$(echo "$out" | sed -n 's/^synced isc:[^ ]*: \([0-9]*\) lease(s).*/\1/p')
[ "${n:-0}" -ge 2 ] || fail "sync read ${n:-no} lease(s) from a file with two live ones and older blocks: $out"
pass "sync --from isc with two live leases: $out"
lookup_at 4106@acme "$LEASE_ADDRESS" || fail "the sync ended 4106's lease: rc=$LOOKUP_RC $LOOKUP_OUT"
lookup_at 4107@acme "$B" || fail "the sync ended 4107's lease: rc=$LOOKUP_RC $LOOKUP_OUT"
pass "after the sync both 4106@acme ($LEASE_ADDRESS) and 4107@acme ($B) resolve"
row=$("$AGENT" list -c "$CONF" | grep '^4107 ') || fail "no row for 4107 in list after the sync"
echo "$row" | grep -Eq ' (1m[0-9]{2}s|2m00s|[0-9]+s) ' || fail "the sync did not correct 4107's expiry to the file's: $row"
pass "the file's ends corrected 4107's expiry: $row"
stop_pid "$SECOND_CLIENT_PID" TERM

stop_pid "$LEASE_CLIENT_PID" TERM
expect_within 1000 "released again: 481" lookup_error 4106@acme 481
stop_pid "$DHCPD_PID" TERM
stop_pid "$AGENT_PID" TERM || fail "the agent did not exit 0 on SIGTERM"
pass "SIGTERM: the agent exits 0"
echo "PASS"
