#!/bin/bash
# Calls to a LAN extension through its agent, on loopback: a real node, the
# agent "acme" linked to it, a lease for extension 4106 at 127.0.0.1 handed to
# the agent by tsunagu-dhcp-hook exactly as dnsmasq calls it, and LAN terminals
# (`tsunagu listen --lan`) on a TLS port of 127.0.0.1. Asserts:
#   - alice calls 4106@acme: the agent passes the ring to the terminal, ICE
#     connects, a file sent with --send arrives byte-identical;
#   - a rogue terminal holding the agent's certificate for another extension
#     (4107) at 4106's address and port never sees the ring: the call fails
#     with exit 4 and a reason naming the certificate;
#   - a rogue with a certificate for 4106 from another agent's LAN CA: the TLS
#     handshake fails, no ring, exit 4;
#   - nobody listening at the leased address: exit 4 at once ("cannot reach");
#   - voicemail left for 4106@acme then (call --voicemail) reaches the terminal
#     (listen --lan --mailbox) when its lease is renewed, once;
#   - an unknown extension: exit 3 (404); one whose lease ended: exit 4 (481);
#     one the edge policy keeps inside: exit 7 (403, the policy's reason);
#   - a terminal that declines (no --auto-accept-from, not a terminal): exit 9,
#     and the terminal (--once: one ring handled) exits 0 by itself;
#   - a connection to the terminal that never does TLS is closed in ~10 s;
#   - terminal certificates last 90 days; a revoked one is refused at the next
#     ring without restarting the agent; a renewed one is rung again.
# Exits 77 (skip) when not root or a program is missing (agent_lib.sh). Every
# process is killed by its PID and the temporary directory removed on every
# exit path.
. "$(dirname "$0")/agent_lib.sh"

setup_node
ACME="$WORK/acme"
write_agent_toml "$ACME" acme acme
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >> "$ACME/agent.toml" << EOF

[calls]
terminal_port = $PORT
connect_timeout_ms = 3000

[[policy.rule]]
extensions = ["4108"]
deny_callers = ["*"]
EOF
start_agent "$ACME"
wait_linked "$ACME" 1
grep -q 'LAN calls: rings pass to terminals on TLS port' "$ACME/agent.log" ||
  fail "the agent did not set up LAN calls"

# lease EXT MAC: the hook reports a dnsmasq lease of 127.0.0.1 for ext EXT.
lease() {
  TSUNAGU_AGENT_CONFIG="$ACME/agent.toml" DNSMASQ_LEASE_EXPIRES=$(($(date +%s) + 3600)) \
    DNSMASQ_INTERFACE=lo "$HOOK" add "$2" 127.0.0.1 "ext$1" || fail "the hook refused the lease of $1"
}
lease 4106 02:00:00:00:41:06
lease 4108 02:00:00:00:41:08
expect_within 2000 "4106@acme resolves to 127.0.0.1" lookup_at 4106@acme 127.0.0.1

issue() {
  "$AGENT" terminal issue "$1" --out "$2" -c "${3:-$ACME/agent.toml}" > "$WORK/issue.log" 2>&1 ||
    { cat "$WORK/issue.log"; fail "terminal issue $1 failed"; }
}
issue 4106 "$WORK/t4106"
issue 4107 "$WORK/t4107"
[ "$(stat -c %a "$WORK/t4106/terminal.key")" = 600 ] || fail "terminal.key is not 0600"
pass "terminal bundles issued: $(head -c 120 "$WORK/issue.log")"

# start_terminal BUNDLE LOG [ARGS...]: a LAN terminal on 127.0.0.1:$PORT;
# sets TERMINAL_PID and waits until it listens.
start_terminal() {
  local bundle="$1" log="$2"
  shift 2
  "$TERM_CLI" listen --lan "$bundle" --lan-listen "127.0.0.1:$PORT" --ice-address 127.0.0.1 --once "$@" \
    > "$log.out" 2> "$log" < /dev/null &
  TERMINAL_PID=$!
  PIDS+=("$TERMINAL_PID")
  DUMP_LOGS+=("$log")
  wait_log "$log" "listening on the LAN" 10 || fail "the LAN terminal did not start: $(cat "$log")"
}

# call_4106 ARGS...: alice calls 4106@acme; sets CALL_RC; stderr in call.err.
call_ext() {
  local target="$1"
  shift
  TSUNAGU_NODE="$NODE_TLS" TSUNAGU_CA="$DEP/ca.crt" TSUNAGU_USER=alice TSUNAGU_PASSWORD="$NODE_PASSWORD" \
    timeout 60 "$TERM_CLI" call "$target" --ice-address 127.0.0.1 "$@" > "$WORK/call.out" 2> "$WORK/call.err"
  CALL_RC=$?
}

# 1. A real call: the file arrives intact.
mkdir -p "$WORK/inbox"
head -c 3000000 /dev/urandom > "$WORK/payload.bin"
start_terminal "$WORK/t4106" "$WORK/t4106.log" --auto-accept-from alice --recv "$WORK/inbox"
call_ext 4106@acme --send "$WORK/payload.bin" --report "$WORK/report.json"
[ "$CALL_RC" = 0 ] || { cat "$WORK/call.err"; fail "call 4106@acme exited $CALL_RC"; }
[ -f "$WORK/inbox/payload.bin" ] || fail "the file did not arrive in the terminal's --recv directory"
cmp -s "$WORK/payload.bin" "$WORK/inbox/payload.bin" || fail "the file arrived changed"
grep -q "accepting a call from alice" "$WORK/t4106.log" || fail "the terminal did not log the ring"
grep -q "passing it to the terminal at 127.0.0.1:$PORT" "$ACME/agent.log" || fail "the agent did not log the ring"
pass "alice called 4106@acme through the agent: 3 MB arrived byte-identical ($(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("accepted %s ms, connected %s ms, first byte %s ms, %s <-> %s" % (r["accepted_ms"], r["connected_ms"],
      r["first_byte_ms"], r["local_type"], r["remote_type"]))' "$WORK/report.json"))"
stop_pid "$TERMINAL_PID"

# 2. A rogue at 4106's address holding the certificate of extension 4107.
start_terminal "$WORK/t4107" "$WORK/rogue.log" --auto-accept-from '*'
call_ext 4106@acme
[ "$CALL_RC" = 4 ] || { cat "$WORK/call.err"; fail "call to 4106 answered by a 4107 certificate exited $CALL_RC, not 4"; }
grep -q "is not extension 4106's terminal" "$WORK/call.err" || fail "the caller was not told why: $(cat "$WORK/call.err")"
grep -q "accepting a call\|incoming call" "$WORK/rogue.log" && fail "the rogue terminal received the ring"
pass "a host with 4107's certificate at 4106's address never saw the ring: exit 4, $(grep -o "the host at.*" "$WORK/call.err" | head -1)"
stop_pid "$TERMINAL_PID"

# 3. A rogue with a 4106 certificate from another agent's LAN CA.
cat > "$WORK/other.toml" << EOF
[agent]
name = "other"
data_directory = "$WORK/other-data"
EOF
issue 4106 "$WORK/foreign4106" "$WORK/other.toml"
start_terminal "$WORK/foreign4106" "$WORK/foreign.log" --auto-accept-from '*'
call_ext 4106@acme
[ "$CALL_RC" = 4 ] || { cat "$WORK/call.err"; fail "call answered by a foreign-CA terminal exited $CALL_RC, not 4"; }
grep -q "accepting a call\|incoming call" "$WORK/foreign.log" && fail "the foreign-CA terminal received the ring"
pass "a terminal certificate from another LAN CA: TLS refused, no ring, exit 4: $(tail -n 1 "$WORK/call.err")"
stop_pid "$TERMINAL_PID"

# 4. Nobody listens at the leased address.
start=$(now_ms)
call_ext 4106@acme
[ "$CALL_RC" = 4 ] || { cat "$WORK/call.err"; fail "call with no terminal listening exited $CALL_RC, not 4"; }
pass "no terminal at the leased address: exit 4 after $(($(now_ms) - start)) ms: $(tail -n 1 "$WORK/call.err")"

# 4b. Voicemail for the extension: left while its terminal is away, passed on
#     by the agent when the terminal's lease is renewed, deleted only then.
head -c 50000 /dev/urandom > "$WORK/message.bin"
call_ext 4106@acme --voicemail "$WORK/message.bin"
[ "$CALL_RC" = 0 ] || { cat "$WORK/call.out" "$WORK/call.err"; fail "leaving voicemail for 4106@acme exited $CALL_RC"; }
grep -q "leaving voicemail for 4106@acme" "$WORK/call.out" || fail "the caller did not leave voicemail: $(cat "$WORK/call.out")"
pass "the call failed (no terminal) and alice left voicemail for 4106@acme"
mkdir -p "$WORK/mailbox"
start_terminal "$WORK/t4106" "$WORK/vm.log" --mailbox "$WORK/mailbox"
TSUNAGU_AGENT_CONFIG="$ACME/agent.toml" DNSMASQ_LEASE_EXPIRES=$(($(date +%s) + 7200)) DNSMASQ_INTERFACE=lo \
  "$HOOK" old 02:00:00:00:41:06 127.0.0.1 ext4106 || fail "the hook refused the renewal of 4106"
deadline=$(($(now_ms) + 10000))
# Count *.msg only: the receiver writes NAME.tmp first, then renames it.
messages() { find "$WORK/mailbox" -name '*.msg' | wc -l; }
until [ "$(messages)" -ge 1 ]; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the voicemail did not reach the terminal within 10 s: $(cat "$WORK/vm.log")"
  sleep 0.1
done
cmp "$WORK/message.bin" "$WORK/mailbox/"*.msg || { ls -l "$WORK/message.bin" "$WORK/mailbox"; fail "the delivered voicemail differs from what was left"; }
wait_log "$ACME/agent.log" "voicemail [0-9]+ for 4106@acme from alice \(50000 bytes\) delivered" 5 ||
  fail "the agent did not log the delivery"
pass "the renewed lease brought the voicemail to the terminal: $(ls "$WORK/mailbox"), byte-identical"
TSUNAGU_AGENT_CONFIG="$ACME/agent.toml" DNSMASQ_LEASE_EXPIRES=$(($(date +%s) + 9000)) DNSMASQ_INTERFACE=lo \
  "$HOOK" old 02:00:00:00:41:06 127.0.0.1 ext4106 || fail "the hook refused the renewal of 4106"
sleep 1
[ "$(messages)" = 1 ] || fail "a second delivery after the acknowledgement"
[ "$(grep -c "delivered to the terminal" "$ACME/agent.log")" = 1 ] || fail "the agent delivered twice"
pass "another renewal delivers nothing: the node deleted the message after the terminal's acknowledgement"
stop_pid "$TERMINAL_PID"

# 5. Unknown extension; a lease that ended; the edge policy.
call_ext 4109@acme
[ "$CALL_RC" = 3 ] || { cat "$WORK/call.err"; fail "call to 4109 (unknown) exited $CALL_RC, not 3"; }
grep -q '^ringing ' "$WORK/call.err" && { cat "$WORK/call.err"; fail "call to 4109 (unknown) said it was ringing"; }
pass "4109@acme (no such extension): exit 3, never 'ringing': $(tail -n 1 "$WORK/call.err")"
lease 4110 02:00:00:00:41:10
TSUNAGU_AGENT_CONFIG="$ACME/agent.toml" DNSMASQ_LEASE_EXPIRES=$(($(date +%s) + 3600)) DNSMASQ_INTERFACE=lo \
  "$HOOK" del 02:00:00:00:41:10 127.0.0.1 ext4110 || fail "the hook refused the release of 4110"
call_ext 4110@acme
[ "$CALL_RC" = 4 ] || { cat "$WORK/call.err"; fail "call to 4110 (lease ended) exited $CALL_RC, not 4"; }
grep -q "No Live Lease" "$WORK/call.err" || fail "no 481 reason: $(cat "$WORK/call.err")"
pass "4110@acme (lease released): exit 4: $(tail -n 1 "$WORK/call.err")"
call_ext 4108@acme
[ "$CALL_RC" = 7 ] || { cat "$WORK/call.err"; fail "call to 4108 (policy) exited $CALL_RC, not 7"; }
grep -q "cannot be reached from outside" "$WORK/call.err" || fail "no policy reason: $(cat "$WORK/call.err")"
pass "4108@acme (kept inside by the edge policy): exit 7: $(tail -n 1 "$WORK/call.err")"

# 6. The terminal declines; with --once that was its one ring: it exits 0 by itself.
start_terminal "$WORK/t4106" "$WORK/decline.log"
call_ext 4106@acme
[ "$CALL_RC" = 9 ] || { cat "$WORK/call.err"; fail "declined call exited $CALL_RC, not 9"; }
pass "the LAN terminal declined: exit 9"
for _ in $(seq 100); do kill -0 "$TERMINAL_PID" 2> /dev/null || break; sleep 0.1; done
kill -0 "$TERMINAL_PID" 2> /dev/null && fail "listen --lan --once still runs 10 s after declining its one ring"
rc=0
wait "$TERMINAL_PID" || rc=$?
forget "$TERMINAL_PID"
[ "$rc" = 0 ] || fail "listen --lan --once exited $rc after declining, not 0: $(tail -n 3 "$WORK/decline.log")"
pass "listen --lan --once exits 0 after its one ring, declined"

# 7. A LAN host that connects and never does TLS is cut off (handshake timeout).
start_terminal "$WORK/t4106" "$WORK/silent.log"
start=$(now_ms)
python3 - "$PORT" << 'EOF' || fail "a silent connection to the LAN terminal was not closed within 15 s"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
try:
    sys.exit(0 if s.recv(1) == b"" else 1)
except (socket.timeout, ConnectionResetError) as e:
    sys.exit(0 if isinstance(e, ConnectionResetError) else 1)
EOF
grep -q "no TLS handshake" "$WORK/silent.log" || fail "the terminal did not log the handshake timeout"
pass "a connection that never does TLS is closed after $(($(now_ms) - start)) ms"
stop_pid "$TERMINAL_PID"

# 8. Terminal certificates (issue 11 §4): 90 days unless --days says otherwise;
#    revoked, the terminal is refused from the next ring on (the agent runs on,
#    unrestarted); renewed into its bundle, it is rung again.
days=$(python3 -c '
import datetime, ssl, sys, time
print(round((ssl.cert_time_to_seconds(sys.argv[1]) - time.time()) / 86400))' \
  "$(openssl x509 -enddate -noout -in "$WORK/t4106/terminal.crt" | cut -d= -f2)")
[ "$days" = 90 ] || fail "4106's certificate is valid for $days days, not 90"
"$AGENT" terminal list -c "$ACME/agent.toml" > "$WORK/certs.txt" || fail "terminal list failed"
grep -Eq '^4106 +[0-9A-F]+ .* valid$' "$WORK/certs.txt" || fail "terminal list: $(cat "$WORK/certs.txt")"
pass "terminal certificates last 90 days; terminal list shows 4106's as valid"
"$AGENT" terminal revoke 4106 -c "$ACME/agent.toml" > "$WORK/revoke.log" 2>&1 ||
  { cat "$WORK/revoke.log"; fail "terminal revoke 4106 failed"; }
start_terminal "$WORK/t4106" "$WORK/revoked.log" --auto-accept-from '*'
call_ext 4106@acme
[ "$CALL_RC" = 4 ] || { cat "$WORK/call.err"; fail "call to 4106 with a revoked certificate exited $CALL_RC, not 4"; }
grep -q "is revoked" "$WORK/call.err" || fail "the caller was not told the certificate is revoked: $(cat "$WORK/call.err")"
grep -q "accepting a call\|incoming call" "$WORK/revoked.log" && fail "the revoked terminal received the ring"
pass "revoked ($(head -n1 "$WORK/revoke.log")): no ring, exit 4: $(tail -n 1 "$WORK/call.err")"
stop_pid "$TERMINAL_PID"
"$AGENT" terminal renew 4106 --out "$WORK/t4107" -c "$ACME/agent.toml" > /dev/null 2>&1 &&
  fail "renewing 4106 into 4107's bundle was not refused"
"$AGENT" terminal renew 4106 --out "$WORK/t4106" -c "$ACME/agent.toml" > "$WORK/renew.log" 2>&1 ||
  { cat "$WORK/renew.log"; fail "terminal renew 4106 failed"; }
start_terminal "$WORK/t4106" "$WORK/renewed.log" --auto-accept-from alice
call_ext 4106@acme --echo-test 3
[ "$CALL_RC" = 0 ] || { cat "$WORK/call.err"; fail "call to 4106 after the renewal exited $CALL_RC"; }
pass "renewed (a new serial): 4106 is rung again"
stop_pid "$TERMINAL_PID"

echo PASS
