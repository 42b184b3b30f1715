#!/bin/bash
# The attacker's view from the LAN (issue 11 §4): a real dnsmasq with the hook
# in a network namespace made here, the agent linked to a real node, busybox
# udhcpc clients. Scenario name as the first argument. Exits 77 (skip) with the
# reason when not root or a tool is missing (agent_lib.sh).
#
# dhcp_hostname_does_not_take_a_bound_extension: 4106's phone (MAC A) is bound
#   by its hostname ext4106; a second MAC sending hostname ext4106 gets a lease
#   but not the extension: whereis 4106@acme keeps answering A's address, the
#   agent warns of a binding conflict and `list` names the claimant; only
#   `tsunagu-lan-agent bind 4106 B` moves it.
. "$(dirname "$0")/../lan-agent/agent_lib.sh"

dhcp_hostname_does_not_take_a_bound_extension() {
  setup_acme
  start_agent "$ACME"
  wait_linked "$ACME" 1
  start_dnsmasq

  start_client ext4106 02:00:00:41:06:0a
  local a b row
  a=$(wait_bound ext4106) || fail "the phone ext4106 got no lease"
  expect_within 2000 "4106's phone bound: whereis 4106@acme gives $a" lookup_at 4106@acme "$a"

  start_second_client ext4106 02:00:00:66:66:66 intruder
  b=$(wait_bound intruder) || fail "the intruder got no lease"
  pass "a second MAC sending hostname ext4106 got $b"
  wait_log "$ACME/agent.log" 'binding conflict: 02:00:00:66:66:66 at [0-9.]+ sent hostname ext4106, but 4106 is bound to 02:00:00:41:06:0a' 5 ||
    fail "the agent logged no binding conflict for the intruder"
  pass "agent: $(grep -m1 -o 'binding conflict: .*' "$ACME/agent.log" | cut -c1-200)"
  lookup_at 4106@acme "$a" || fail "the intruder took 4106: whereis gives rc=$LOOKUP_RC $LOOKUP_OUT"
  pass "whereis 4106@acme still gives the phone's $a"
  row=$("$AGENT" list -c "$ACME/agent.toml" | sed -n '/^Conflicts/,$p' | grep '^4106 ') ||
    fail "list shows no conflict for 4106: $("$AGENT" list -c "$ACME/agent.toml")"
  echo "$row" | grep -q '02:00:00:66:66:66' || fail "the conflict row does not name the intruder: $row"
  pass "list: $row"

  # The admin decides the phone was replaced: only then does 4106 move.
  "$AGENT" bind -c "$ACME/agent.toml" 4106 02:00:00:66:66:66 > /dev/null || fail "bind 4106 to the new MAC failed"
  expect_within 2000 "after bind, whereis 4106@acme gives $b" lookup_at 4106@acme "$b"
  "$AGENT" list -c "$ACME/agent.toml" | grep -q '^Conflicts' && fail "the bind did not clear 4106's conflicts"
  pass "bind cleared the conflict"
  echo "PASS"
}

# lan_addresses_stay_inside_unless_the_policy_shows_them (issue 11 §6): a
#   logged-in outsider looking up 4106@acme learns that it is reachable, never
#   its private address, unless agent.toml's policy.show_lease_addresses is on.
lan_addresses_stay_inside_unless_the_policy_shows_them() {
  setup_node
  ACME="$WORK/acme"
  write_agent_toml "$ACME" acme acme
  sed -i 's/^show_lease_addresses = true$/show_lease_addresses = false/' "$ACME/agent.toml"
  start_agent "$ACME"
  wait_linked "$ACME" 1
  # A lease of 10.99.0.68 for ext4106, handed over exactly as dnsmasq calls the hook.
  TSUNAGU_AGENT_CONFIG="$ACME/agent.toml" DNSMASQ_LEASE_EXPIRES=$(($(date +%s) + 3600)) DNSMASQ_INTERFACE=lan0 \
    "$HOOK" add 02:00:00:41:06:0b 10.99.0.68 ext4106 || fail "the hook refused the lease"
  local deadline=$(($(now_ms) + 5000))
  until lookup 4106@acme && [ "$LOOKUP_RC" = 0 ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "4106@acme did not resolve: rc=$LOOKUP_RC $LOOKUP_OUT"
    sleep 0.1
  done
  [ -z "$LOOKUP_LEASE" ] || fail "the outsider learned 4106's private address: $LOOKUP_OUT"
  echo "$LOOKUP_OUT" | grep -q '10\.99\.0\.68' && fail "the address appears in the answer: $LOOKUP_OUT"
  pass "whereis 4106@acme: reachable through agent acme, no LAN address ($LOOKUP_OUT)"
  stop_pid "$AGENT_PID" TERM
  sed -i 's/^show_lease_addresses = false$/show_lease_addresses = true/' "$ACME/agent.toml"
  start_agent "$ACME"
  wait_linked "$ACME" 2
  expect_within 5000 "with policy.show_lease_addresses = true whereis gives 10.99.0.68" lookup_at 4106@acme 10.99.0.68
  echo "PASS"
}

# voicemail_for_an_extension_follows_the_edge_policy (issue 11 §1): a caller
#   the agent's policy refuses cannot leave voicemail for 4106@acme either; an
#   allowed caller can while the phone has no lease; an unbound extension has
#   no mailbox; with the agent away, nobody can apply its policy: refused.
voicemail_for_an_extension_follows_the_edge_policy() {
  setup_node
  TSUNAGU_PASSWORD="$NODE_PASSWORD" "$RDV" user -d "$DEP" add mallory > "$WORK/user-m.log" 2>&1 ||
    { cat "$WORK/user-m.log"; fail "user add mallory failed"; }
  ACME="$WORK/acme"
  write_agent_toml "$ACME" acme acme
  printf '\n[[policy.rule]]\nextensions = ["4106"]\ndeny_callers = ["mallory"]\n' >> "$ACME/agent.toml"
  start_agent "$ACME"
  wait_linked "$ACME" 1
  "$AGENT" bind -c "$ACME/agent.toml" 4106 02:00:00:41:06:0c > /dev/null || fail "bind 4106 failed"
  head -c 3000 /dev/urandom > "$WORK/message.bin"
  leave() {  # USER EXTENSION: `tsunagu voicemail send`; sets VM_RC and VM_ERR
    VM_ERR=$(TSUNAGU_NODE="$NODE_TLS" TSUNAGU_CA="$DEP/ca.crt" TSUNAGU_USER="$1" TSUNAGU_PASSWORD="$NODE_PASSWORD" \
      timeout 20 "$TERM_CLI" voicemail send "$2" "$WORK/message.bin" 2>&1 > /dev/null)
    VM_RC=$?
  }
  leave mallory 4106@acme
  [ "$VM_RC" != 0 ] || fail "mallory, refused by the edge policy, left voicemail for 4106@acme"
  echo "$VM_ERR" | grep -qi "polic\|forbidden" || fail "the refusal does not say why: $VM_ERR"
  pass "mallory is refused (exit $VM_RC): $VM_ERR"
  leave alice 4106@acme
  [ "$VM_RC" = 0 ] || fail "alice could not leave voicemail for 4106@acme (no lease now): exit $VM_RC $VM_ERR"
  pass "alice leaves voicemail for 4106@acme while it has no lease"
  leave alice 4999@acme
  [ "$VM_RC" != 0 ] || fail "voicemail for the unbound 4999@acme was taken"
  pass "no mailbox for an unbound extension (exit $VM_RC): $VM_ERR"
  stop_pid "$AGENT_PID" TERM
  leave alice 4106@acme
  [ "$VM_RC" != 0 ] || fail "voicemail taken while no agent can apply its policy"
  pass "with the agent away nobody can check its policy: refused (exit $VM_RC): $VM_ERR"
  echo "PASS"
}

case "${1:-}" in
  dhcp_hostname_does_not_take_a_bound_extension | lan_addresses_stay_inside_unless_the_policy_shows_them | \
    voicemail_for_an_extension_follows_the_edge_policy) "$1" ;;
  *) echo "usage: lan_attacks.sh SCENARIO"; exit 2 ;;
esac
