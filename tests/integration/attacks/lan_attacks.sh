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

case "${1:-}" in
  dhcp_hostname_does_not_take_a_bound_extension) "$1" ;;
  *) echo "usage: lan_attacks.sh SCENARIO"; exit 2 ;;
esac
