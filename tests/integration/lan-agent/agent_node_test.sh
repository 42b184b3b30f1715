#!/bin/bash
# The LAN agent linked to a real rendezvous node, fed by a real dnsmasq.
#
# A node on 127.0.0.1 (its own deployment, user alice), agent "acme" enrolled
# for domain acme and linked to it; dnsmasq in one network namespace calls
# tsunagu-dhcp-hook, busybox udhcpc in another asks for a lease with hostname
# ext4106 (hostname rule ext{ext}). Asserts, with `tsunagu whereis --json` as
# alice:
#   - 4106@acme resolves to the leased address, agent "acme", within one
#     second; after a release it is 481 within one second; at a new address
#     it follows within one second;
#   - the agent killed: 502 (agent offline, exit 4); restarted: resolves again;
#   - an agent whose certificate comes from another deployment's CA cannot link
#     (TLS refused on both sides) and the route stays 502;
#   - release and a new lease within the same second: followed within one second;
#   - enrolling a second agent for domain acme is refused (exit 4); an agent
#     enrolled for globex whose agent.toml claims acme is refused at hello
#     (403) while the first agent keeps serving.
# Exits 77 (skip) when not root, a program is missing or namespaces cannot be
# made. Every process is killed by its PID, the namespaces deleted and the
# temporary directory removed on every exit path (agent_lib.sh).
. "$(dirname "$0")/agent_lib.sh"

command -v dnsmasq > /dev/null || skip "dnsmasq is not installed (Debian package dnsmasq-base)"

setup_acme

# Before the agent ever linked: the domain is routed but its agent is offline.
lookup_error 4106@acme 502 || fail "whereis before the agent linked: rc=$LOOKUP_RC $LOOKUP_OUT"
pass "whereis 4106@acme before the agent linked: 502, exit 4"

start_agent "$ACME"
wait_linked "$ACME" 1
grep -q 'agent acme connected' "$WORK/node.log" || fail "the node did not log the agent's link"
pass "agent acme linked to the node"

# dnsmasq in the server namespace, calling the hook.
start_dnsmasq

# 1. Lease, release, new address: whereis follows each within one second.
lease_flow
A=$LEASE_ADDRESS
grep -qE '\] debug: lookup 4106@acme by alice: [1-9][0-9]* address\(es\)$' "$ACME/agent.log" ||
  fail "the agent did not log the forwarded lookup (one line: the ID, the caller, the number of addresses)"

# 2. The agent dies: the node says the agent is offline.
stop_pid "$AGENT_PID" KILL
expect_within 1000 "agent killed: whereis 4106@acme is 502 (agent offline), exit 4" lookup_error 4106@acme 502

# 3. Agents with certificates from another deployment's CA cannot link.
#    a) the whole bundle from the other deployment: the agent refuses the
#       node's certificate; b) the agent trusts our CA but presents the other
#       CA's certificate: the node refuses it. Either way the route stays 502.
OTHER="$WORK/other"
make_deployment "$OTHER"
enroll "$OTHER" acme acme "$WORK/foreign" > "$WORK/enroll-foreign.log" 2>&1 ||
  { cat "$WORK/enroll-foreign.log"; fail "enroll in the second deployment failed"; }
FOREIGN="$WORK/foreign"
write_agent_toml "$FOREIGN" acme acme
FOREIGN2="$WORK/foreign2"
mkdir -p "$FOREIGN2"
cp "$FOREIGN/agent.crt" "$FOREIGN/agent.key" "$FOREIGN2/"
cp "$DEP/ca.crt" "$FOREIGN2/ca.crt"
write_agent_toml "$FOREIGN2" acme acme
node_links_before=$(grep -c 'agent acme connected' "$WORK/node.log")

start_agent "$FOREIGN"
FOREIGN_PID=$AGENT_PID
wait_log "$FOREIGN/agent.log" 'node link: .*certificate verif' 10 ||
  fail "the agent with a foreign bundle logged no certificate verification failure within 10 s"
pass "foreign bundle, agent side: $(grep -Em1 'node link: ' "$FOREIGN/agent.log" | cut -c1-220)"

NODE_TLS_RE='agent link from .*closed: .*(certificate|verif|alert|handshake|tls)'
node_refusals_before=$(grep -Eic "$NODE_TLS_RE" "$WORK/node.log")
start_agent "$FOREIGN2"
FOREIGN2_PID=$AGENT_PID
deadline=$(($(now_ms) + 10000))
until [ "$(grep -Eic "$NODE_TLS_RE" "$WORK/node.log")" -gt "$node_refusals_before" ] &&
  [ "$(grep -Eic 'node link: ' "$FOREIGN2/agent.log")" -gt 0 ]; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "foreign certificate: no TLS refusal logged by the node and the agent within 10 s"
  sleep 0.1
done
pass "foreign certificate, node side: $(grep -Ei "$NODE_TLS_RE" "$WORK/node.log" | tail -n 1 | cut -c1-220)"
pass "foreign certificate, agent side: $(grep -Em1 'node link: ' "$FOREIGN2/agent.log" | cut -c1-220)"
sleep 1
for bundle in "$FOREIGN" "$FOREIGN2"; do
  grep -q 'linked to the node' "$bundle/agent.log" && fail "the agent of $bundle linked to the node"
done
[ "$(grep -c 'agent acme connected' "$WORK/node.log")" = "$node_links_before" ] ||
  fail "the node accepted an agent link with a foreign certificate"
lookup_error 4106@acme 502 || fail "whereis with only foreign agents running: rc=$LOOKUP_RC $LOOKUP_OUT"
pass "the node accepted no foreign-CA agent; 4106@acme stays 502"
stop_pid "$FOREIGN_PID" TERM
stop_pid "$FOREIGN2_PID" TERM

# 4. The agent restarts: its table survived, the route works again.
start_agent "$ACME"
wait_linked "$ACME" 2
expect_within 1000 "agent restarted: whereis 4106@acme gives $A again" lookup_at 4106@acme "$A"

# 5. Domain claims: a second enrolment for acme is refused; an agent enrolled
#    for globex that claims acme is refused at hello; acme keeps serving.
enroll "$DEP" acme2 acme "$WORK/acme2" > "$WORK/enroll-acme2.log" 2>&1
rc=$?
[ "$rc" = 4 ] || { cat "$WORK/enroll-acme2.log"; fail "enrolling acme2 for domain acme exited $rc, not 4"; }
pass "second enrolment for domain acme refused (exit 4): $(head -c 200 "$WORK/enroll-acme2.log")"
enroll "$DEP" globex globex "$WORK/globex" > "$WORK/enroll-globex.log" 2>&1 ||
  { cat "$WORK/enroll-globex.log"; fail "enroll globex failed"; }
GLOBEX="$WORK/globex"
write_agent_toml "$GLOBEX" globex acme
ACME_PID=$AGENT_PID
start_agent "$GLOBEX"
GLOBEX_PID=$AGENT_PID
wait_log "$GLOBEX/agent.log" 'refused our routes \(403' 10 || fail "the globex agent claiming acme was not refused (403)"
pass "globex claiming acme: $(grep -m1 'refused our routes' "$GLOBEX/agent.log" | cut -c1-160)"
grep -q 'linked to the node' "$GLOBEX/agent.log" && fail "the globex agent claiming acme linked"
kill -0 "$ACME_PID" 2> /dev/null || fail "agent acme died"
expect_within 1000 "acme keeps serving: whereis 4106@acme gives $A" lookup_at 4106@acme "$A"
[ "$(grep -c 'linked to the node' "$ACME/agent.log")" = 2 ] || fail "agent acme lost its link"
stop_pid "$GLOBEX_PID" TERM

# 6. Release and a new lease within the same second: whereis follows.
quick_relet

# 6b. A new client-id with the same MAC, then the old lease ends (issue 10, item 2).
new_client_id_flow 'DHCPRELEASE\(lan0\) [0-9.]+ ' "$WORK/dnsmasq.log" "$ACME/agent.log"

# 7. SIGTERM: agent and node exit cleanly.
stop_pid "$LEASE_CLIENT_PID" TERM
expect_within 1000 "released again: 481" lookup_error 4106@acme 481
stop_pid "$ACME_PID" TERM
rc=$?
[ "$rc" = 0 ] || fail "agent acme exited $rc on SIGTERM"
stop_pid "$NODE_PID" TERM
rc=$?
[ "$rc" = 0 ] || fail "the node exited $rc on SIGTERM"
pass "SIGTERM: agent and node exit 0"
echo "PASS"
