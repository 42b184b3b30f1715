#!/bin/bash
# The LAN agent linked to a real rendezvous node, fed by ISC Kea (kea-dhcp4)
# through its run_script hook library calling tsunagu-dhcp-hook.
#
# A node on 127.0.0.1 (user alice), agent "acme" linked to it; kea-dhcp4 in one
# network namespace (memfile lease file, lock and pid files in the temporary
# directory; run here by the test, never as a service), busybox udhcpc with
# hostname ext4106 in another. Asserts with `tsunagu whereis 4106@acme --json`
# as alice: the leased address from agent "acme" within one second; 481 within
# one second of the release; a new address followed within one second; a sync
# of Kea's lease file agrees.
# Kea passes its script no PATH and only its own variables, so the hook is
# called through a wrapper that gives it --config. Exits 77 (skip) when not
# root, kea-dhcp4 or its run_script hook is missing (Debian packages
# kea-dhcp4-server, kea-common), or namespaces cannot be made.
. "$(dirname "$0")/agent_lib.sh"

command -v kea-dhcp4 > /dev/null || skip "kea-dhcp4 is not installed (Debian package kea-dhcp4-server)"
KEA_RUN_SCRIPT=/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_run_script.so
if [ ! -e "$KEA_RUN_SCRIPT" ]; then
  for candidate in /usr/lib/*/kea/hooks/libdhcp_run_script.so; do KEA_RUN_SCRIPT=$candidate; done
  [ -e "$KEA_RUN_SCRIPT" ] || skip "Kea's run_script hook library is missing (Debian package kea-common)"
fi

setup_acme
start_agent "$ACME"
wait_linked "$ACME" 1
pass "agent acme linked to the node"

cat > "$WORK/kea-hook.sh" << EOF
#!/bin/sh
exec "$HOOK" --config "$ACME/agent.toml" "\$@"
EOF
chmod 755 "$WORK/kea-hook.sh"
mkdir -p "$WORK/kea-run"
cat > "$WORK/kea-dhcp4.json" << EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "lan0" ] },
    "lease-database": { "type": "memfile", "persist": true, "lfc-interval": 0,
                        "name": "$WORK/kea-leases4.csv" },
    "valid-lifetime": 120, "renew-timer": 60, "rebind-timer": 90,
    "hooks-libraries": [ {
        "library": "$KEA_RUN_SCRIPT",
        "parameters": { "name": "$WORK/kea-hook.sh", "sync": false } } ],
    "subnet4": [ { "id": 1, "subnet": "10.99.0.0/24",
                   "pools": [ { "pool": "10.99.0.50 - 10.99.0.99" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "INFO",
                   "output_options": [ { "output": "stdout" } ] } ]
} }
EOF
KEA_LOCKFILE_DIR="$WORK/kea-run" KEA_PIDFILE_DIR="$WORK/kea-run" \
  ip netns exec "$SRV" kea-dhcp4 -c "$WORK/kea-dhcp4.json" > "$WORK/kea.log" 2>&1 &
KEA_PID=$!
PIDS+=("$KEA_PID")
DUMP_LOGS+=("$WORK/kea.log" "$WORK/udhcpc.log")
wait_log "$WORK/kea.log" 'DHCP4_STARTED' 15 || fail "kea-dhcp4 did not start within 15 s"
kill -0 "$KEA_PID" 2> /dev/null || fail "kea-dhcp4 exited at start"
pass "kea-dhcp4 serving lan0"

lease_flow
A=$LEASE_ADDRESS
grep -q "lookup 4106@acme by alice" "$ACME/agent.log" || fail "the agent did not log the forwarded lookup"

# Kea's lease file agrees with what the hooks said: a sync keeps the lease.
out=$("$AGENT" sync -c "$ACME/agent.toml" --from "kea:$WORK/kea-leases4.csv") || fail "sync failed: $out"
echo "$out" | grep -q "^synced kea:" || fail "sync printed: $out"
pass "sync --from kea: $out"
lookup_at 4106@acme "$A" || fail "whereis after the sync: rc=$LOOKUP_RC $LOOKUP_OUT"
pass "whereis 4106@acme still gives $A after the sync"

# Release and a new lease within the same second: whereis follows.
quick_relet

# A new client-id with the same MAC, then the old lease ends (issue 10, item 2).
new_client_id_flow 'DHCP4_RELEASE .*released' "$WORK/kea.log" "$ACME/agent.log"

stop_pid "$LEASE_CLIENT_PID" TERM
expect_within 1000 "released again: 481" lookup_error 4106@acme 481
stop_pid "$KEA_PID" TERM
stop_pid "$AGENT_PID" TERM || fail "the agent did not exit 0 on SIGTERM"
pass "SIGTERM: the agent exits 0"
echo "PASS"
