#!/bin/bash
# The LAN agent's status page and /metrics over HTTPS ([web] in agent.toml),
# with a real dnsmasq feeding the agent through the hook.
#
# Asserts:
#   - a wildcard listen address is refused at start (the page is for the LAN side);
#   - the page's certificate is issued by the agent's LAN CA for the listen
#     address (curl --cacert verifies it, address included);
#   - no token, a wrong token: 401; the token as Bearer: 200;
#   - /api/status says the node link is up; a lease dnsmasq hands out shows in
#     /api/status within one second of the client being bound (the page's
#     script polls the same JSON every second);
#   - /metrics passes `promtool check metrics` and counts the hook event.
# Root and network namespaces made by the test (agent_lib.sh); exits 77 when
# that or a tool is missing. Cleanup on every exit path (agent_lib.sh).
. "$(dirname "$0")/agent_lib.sh"

command -v dnsmasq > /dev/null || skip "dnsmasq is not installed (Debian package dnsmasq-base)"
command -v curl > /dev/null || skip "curl is not installed"

setup_acme
WEB_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN_FILE="$ACME/web.token"
(umask 077 && python3 -c 'import secrets; print(secrets.token_hex(24))' > "$TOKEN_FILE")
TOKEN=$(cat "$TOKEN_FILE")
printf '\n[web]\nlisten = "127.0.0.1:%s"\ntoken_file = "%s"\n' "$WEB_PORT" "$TOKEN_FILE" >> "$ACME/agent.toml"

# A wildcard address would serve the page on the WAN side too: refused.
sed "s/^listen = \"127.0.0.1:$WEB_PORT\"/listen = \"0.0.0.0:$WEB_PORT\"/" "$ACME/agent.toml" > "$WORK/wild.toml"
if out=$(timeout 10 "$AGENT" run -c "$WORK/wild.toml" 2>&1); then fail "the agent started with web.listen 0.0.0.0"; fi
echo "$out" | grep -q "web.listen" || fail "the refusal of 0.0.0.0 does not name web.listen: $out"
pass "web.listen 0.0.0.0 refused: $(echo "$out" | tail -1)"

start_agent "$ACME"
wait_linked "$ACME" 1
pass "agent acme linked to the node"

URL="https://127.0.0.1:$WEB_PORT"
CA="$ACME/data/lan/ca.crt"
deadline=$(($(now_ms) + 5000))
until curl -s -o /dev/null --max-time 2 --cacert "$CA" "$URL/metrics"; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the status page did not answer within 5 s (certificate from $CA)"
  sleep 0.1
done
pass "the status page's certificate verifies against the agent's LAN CA, address included"

get() { curl -s --max-time 5 --cacert "$CA" "$@"; }
code=$(get -o /dev/null -w '%{http_code}' "$URL/api/status")
[ "$code" = 401 ] || fail "/api/status without a token answered $code"
code=$(get -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong-token-0123456789" "$URL/api/status")
[ "$code" = 401 ] || fail "/api/status with a wrong token answered $code"
code=$(get -o /dev/null -w '%{http_code}' "$URL/metrics")
[ "$code" = 401 ] || fail "/metrics without a token answered $code"
pass "no token or a wrong one: 401 (status and metrics)"

status() { get -H "Authorization: Bearer $TOKEN" "$URL/api/status"; }
status | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["node_link"]["up"], d["node_link"]' ||
  fail "/api/status does not say the node link is up: $(status | head -c 400)"
pass "/api/status: the node link is up"

# `tsunagu-lan-agent status` reads the same /metrics with the token and the LAN CA.
out=$("$AGENT" status -c "$ACME/agent.toml" 2>&1) || fail "tsunagu-lan-agent status failed: $out"
echo "$out" | grep -q '^tsunagu_agent_' || fail "status printed no tsunagu_agent_ family: $(echo "$out" | head -5)"
pass "tsunagu-lan-agent status prints the metrics ($(echo "$out" | wc -l) families)"
# doctor on the running agent: its own web port is "held by" it, not a fault.
out=$("$AGENT" doctor -c "$ACME/agent.toml" --dnsmasq-conf /dev/null 2>&1) || true
echo "$out" | grep -Eq "^ok +web.listen tcp 127.0.0.1:$WEB_PORT: held by tsunagu-lan-agent" ||
  fail "doctor does not recognise the agent's own web port: $(echo "$out" | grep web.listen)"
pass "doctor: the running agent's web port is held by it"

start_dnsmasq
start_client ext4106 02:00:00:41:06:07
address=$(wait_bound ext4106) || fail "ext4106 got no lease"
bound_ms=$(now_ms)
has_lease() {
  status | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(a["extension"] == "4106" and a["address"] == sys.argv[1] for a in d["allocations"]) else 1)' "$address"
}
until has_lease; do
  [ $(($(now_ms) - bound_ms)) -le 1000 ] ||
    fail "the lease of $address is not in /api/status within one second: $(status | head -c 600)"
  sleep 0.05
done
pass "the lease 4106 -> $address shows in /api/status $(($(now_ms) - bound_ms)) ms after the client was bound"

page=$(get -H "Authorization: Bearer $TOKEN" -D "$WORK/page.headers" "$URL/")
echo "$page" | grep -q "4106" || fail "the HTML page does not list extension 4106"
grep -qi "^content-security-policy: default-src 'self'" "$WORK/page.headers" || fail "the page has no CSP header"
pass "the HTML page lists 4106 and carries its CSP"

get -H "Authorization: Bearer $TOKEN" "$URL/metrics" > "$WORK/agent.metrics"
grep -Eq '^tsunagu_agent_hook_events_total\{[^}]*source="dnsmasq"[^}]*\} [1-9]' "$WORK/agent.metrics" ||
  fail "/metrics counts no dnsmasq hook event: $(grep hook_events "$WORK/agent.metrics")"
if command -v promtool > /dev/null; then
  promtool check metrics < "$WORK/agent.metrics" > "$WORK/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$WORK/promtool.out")"
  pass "/metrics passes promtool check metrics and counts the dnsmasq hook event"
else
  pass "/metrics counts the dnsmasq hook event (promtool not installed: format not checked)"
fi
echo "all agent web checks passed"
