#!/bin/bash
# The LAN agent's reload: SIGHUP, what `systemctl reload tsunagu-lan-agent`
# sends (docs/lan-agent.md, "Reload"). A node on 127.0.0.1 and agent acme
# linked to it; extension 4106 gets a lease through the hook (run as dnsmasq
# runs it). Asserts:
#   - a policy change (show_lease_addresses off) holds for the next lookup,
#     the link stays up (no second "linked"), and a changed data_directory is
#     named as waiting for a restart: `event=reload result=ok ...
#     restart_needed=agent.data_directory`;
#   - an agent.toml that does not parse, and one whose certificate is missing,
#     are refused (`event=reload result=failed reason=...`) and change nothing;
#   - the node restarted on other ports: node.address changed and reloaded is
#     what the agent's next connection dials, and lookups work again.
# Root only (agent_lib.sh); every process is killed by its PID on every exit path.
. "$(dirname "$0")/agent_lib.sh"

setup_node
ACME="$WORK/acme"
write_agent_toml "$ACME" acme acme
start_agent "$ACME"
wait_linked "$ACME" 1
TSUNAGU_AGENT_CONFIG="$ACME/agent.toml" "$HOOK" add 52:54:00:12:34:56 192.0.2.50 ext4106 ||
  fail "the hook could not give 4106 a lease"
expect_within 3000 "4106@acme resolves with its lease address before the reload" lookup_at 4106@acme 192.0.2.50

hup_and_wait() {  # hup_and_wait RESULT COUNT: SIGHUP, then the COUNTth reload line of that result
  kill -HUP "$AGENT_PID"
  local deadline=$(($(now_ms) + 5000))
  until [ "$(grep -c "event=reload result=$1" "$ACME/agent.log")" -ge "$2" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "no reload line with result=$1 (the ${2}th) within 5 s"
    kill -0 "$AGENT_PID" 2> /dev/null || fail "the agent exited on SIGHUP"
    sleep 0.05
  done
}

# 1. The policy applies at once; the data directory waits for a restart.
sed -i 's/^show_lease_addresses = true/show_lease_addresses = false/' "$ACME/agent.toml"
cp "$ACME/agent.toml" "$WORK/agent.toml.good"
sed -i "s|^data_directory = .*|data_directory = \"$ACME/elsewhere\"|" "$ACME/agent.toml"
hup_and_wait ok 1
grep -q 'event=reload result=ok certificate_serial=[^ ]* restart_needed=agent.data_directory$' "$ACME/agent.log" ||
  fail "the reload line does not name agent.data_directory: $(grep 'event=reload' "$ACME/agent.log")"
pass "reload: $(grep -o 'event=reload result=ok.*' "$ACME/agent.log" | head -1)"
lookup 4106@acme
[ "$LOOKUP_RC" = 0 ] && [ "$LOOKUP_AGENT" = acme ] && [ -z "$LOOKUP_LEASE" ] ||
  fail "after the reload the lookup should hide the lease address: rc=$LOOKUP_RC out=$LOOKUP_OUT"
[ "$(grep -c 'linked to the node' "$ACME/agent.log")" = 1 ] || fail "the reload dropped the link to the node"
[ ! -e "$ACME/elsewhere" ] || fail "the agent moved to the new data_directory without a restart"
grep -q 'SIGHUP: re-syncing lease files' "$ACME/agent.log" || fail "the reload did not re-sync"
pass "show_lease_addresses = false holds at once, the link stayed up, the spool and lease files re-synced"

# 2. Broken configurations change nothing.
cp "$WORK/agent.toml.good" "$ACME/agent.toml"
echo 'this is not = = toml' >> "$ACME/agent.toml"
hup_and_wait failed 1
sed 's/^show_lease_addresses = false/show_lease_addresses = true/; s/^certificate = "agent.crt"/certificate = "missing.crt"/' \
  "$WORK/agent.toml.good" > "$ACME/agent.toml"
hup_and_wait failed 2
grep 'event=reload result=failed' "$ACME/agent.log" | grep -q 'missing.crt' ||
  fail "the failed reload does not say the certificate is missing: $(grep 'event=reload' "$ACME/agent.log")"
lookup 4106@acme
[ "$LOOKUP_RC" = 0 ] && [ -z "$LOOKUP_LEASE" ] ||
  fail "a refused reload changed the policy: rc=$LOOKUP_RC out=$LOOKUP_OUT"
pass "a broken agent.toml and a missing certificate are refused and change nothing"

# 3. The node moves: the next connection dials the reloaded node.address.
stop_pid "$NODE_PID" TERM
OLD_AGENT_ADDRESS="$NODE_AGENT"
start_node
[ "$NODE_AGENT" != "$OLD_AGENT_ADDRESS" ] || fail "the restarted node kept its agent port"
sed "s|^address = .*|address = \"$NODE_AGENT\"|" "$WORK/agent.toml.good" > "$ACME/agent.toml"
hup_and_wait ok 2
grep -q "event=reload result=ok .* node=$NODE_AGENT" "$ACME/agent.log" ||
  fail "the reload line does not name the new node address: $(grep 'event=reload' "$ACME/agent.log")"
wait_linked "$ACME" 2
grep -q "linked to the node at $NODE_AGENT" "$ACME/agent.log" || fail "the agent did not link to $NODE_AGENT"
expect_within 3000 "4106@acme resolves through the moved node" lookup_at 4106@acme ""
stop_pid "$AGENT_PID" TERM || fail "the agent did not exit 0 on SIGTERM"
pass "agent reload: policy now, restart-only keys named, broken files refused, the node's new address taken"
