#!/bin/bash
# The LAN agent against what a hostile LAN host or a local user on the hook
# socket can send, with a real dnsmasq and busybox udhcpc in network
# namespaces made here (docs/lan-agent.md, "Limits"). Asserts:
#   - a client sending a 199-byte client-id (DHCPv4 allows 255; the table keeps
#     130) is leased by dnsmasq and its lease is in the table, keyed by its MAC;
#   - dnsmasq's lease file with that line syncs with no unreadable record (so a
#     sync may still end leases absent from the file);
#   - a hook record written by hand whose hostname carries an escape sequence,
#     or whose server tag is not printable, is refused (NAK), and nothing of it
#     reaches `list`;
#   - a user not in hook.allowed_users/groups is refused on the socket.
# Exits 77 (skip) when not root or when namespaces cannot be made. Cleanup
# (agent_lib.sh) kills every process started here by its PID and deletes both
# namespaces on every exit path.
# shellcheck source=agent_lib.sh
source "$(dirname "$0")/agent_lib.sh"
command -v dnsmasq > /dev/null || skip "dnsmasq is not installed (Debian package dnsmasq-base)"

make_namespaces
write_udhcpc_script
ACME="$WORK/acme"
mkdir -p "$ACME"
chmod 755 "$ACME"
cat > "$ACME/agent.toml" << EOF
[agent]
data_directory = "$ACME/data"
[hook]
socket = "$ACME/hook.sock"
spool_directory = "$ACME/spool"
EOF
chmod 644 "$ACME/agent.toml"
start_agent "$ACME"
deadline=$(($(now_ms) + 10000))
until [ -S "$ACME/hook.sock" ]; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the agent opened no hook socket within 10 s"
  kill -0 "$AGENT_PID" 2> /dev/null || fail "the agent exited at start"
  sleep 0.05
done
start_dnsmasq

# 1. The long client-id (option 61: type 01 and 198 bytes).
LONG_ID=01$(printf 'ab%.0s' $(seq 198))
rm -f "$WORK/bound-longid"
ip netns exec "$CLI" ip link set host0 address 02:00:00:00:c1:d2
ip netns exec "$CLI" env MARK="$WORK/bound-longid" busybox udhcpc -f -q -i host0 -s "$WORK/udhcpc.sh" \
  -x "0x3d:$LONG_ID" -x hostname:longid -t 10 -T 1 >> "$WORK/udhcpc.log" 2>&1
[ -s "$WORK/bound-longid" ] || fail "dnsmasq leased nothing to the client with a 199-byte client-id"
address=$(cat "$WORK/bound-longid")
pass "dnsmasq leased $address to the client with a 199-byte client-id"
deadline=$(($(now_ms) + 5000))
until "$AGENT" list -c "$ACME/agent.toml" | grep -q "02:00:00:00:c1:d2  $address "; do
  [ "$(now_ms)" -lt "$deadline" ] || { "$AGENT" list -c "$ACME/agent.toml"; tail -5 "$WORK/dnsmasq.log"; fail "its lease is not in the table"; }
  sleep 0.1
done
pass "its lease is in the table, keyed by its MAC"
synced=$("$AGENT" sync -c "$ACME/agent.toml" --from "dnsmasq:$WORK/dnsmasq.leases" 2>&1) || fail "sync failed: $synced"
echo "$synced"
if echo "$synced" | grep -q "unreadable"; then fail "the lease file's line for it is unreadable: $synced"; fi
pass "dnsmasq's lease file syncs with no unreadable record"

# 2. Records written by hand to the socket (as root, an allowed peer).
send_record() {  # HOSTNAME-HEX SERVER-HEX: prints the agent's one-byte answer in hex
  python3 - "$ACME/hook.sock" "$1" "$2" << 'EOF'
import socket, struct, sys, time, zlib
path, host, server = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
now = int(time.time())
mac = b"02:00:00:00:e5:c0"
body = struct.pack(">BBBBqq", 1, 1, 4, 0, now + 120, now) + bytes([10, 99, 0, 99])
body += bytes([len(mac)]) + mac + bytes([0]) + bytes([len(host)]) + host + bytes([len(server)]) + server
head = b"TsLe" + struct.pack(">BH", 1, len(body))
record = head + body + struct.pack(">I", zlib.crc32(head[4:] + body))
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(path)
s.sendall(b"E" + record)
s.shutdown(socket.SHUT_WR)
print(s.recv(1).hex())
EOF
}
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
answer=$(send_record "$(hex $'ext\x1b[2J4106')" "$(hex lan0)")
[ "$answer" = 15 ] || fail "a record with ESC in its hostname was answered '$answer', not NAK (15)"
answer=$(send_record "$(hex ext4106)" "$(hex $'lan0\x1b]0;x\x07')")
[ "$answer" = 15 ] || fail "a record with ESC in its server tag was answered '$answer', not NAK (15)"
if "$AGENT" list -c "$ACME/agent.toml" | grep -q "e5:c0"; then fail "a refused record reached the table"; fi
pass "records with escape sequences in the hostname or server tag are refused (NAK) and not in the table"
answer=$(send_record "$(hex ext4106)" "$(hex lan0)")
[ "$answer" = 06 ] || fail "a well-formed record by hand was answered '$answer', not ACK (06)"
pass "the same record with a plain hostname and server tag is acknowledged"

# 3. A user the agent does not allow.
refused=$(su nobody -s /bin/sh -c "python3 -c '
import socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(\"$ACME/hook.sock\")
# The agent may close a refused peer before its request is written: the
# write then fails (EPIPE, ECONNRESET), which is a refusal too.
try:
    s.sendall(b\"I\")
    s.shutdown(socket.SHUT_WR)
    print(\"answer\", s.recv(100))
except OSError as e:
    print(\"refused\", e.errno)
'" 2>&1)
case "$refused" in
  refused*|"answer b''") pass "user nobody is refused on the hook socket ($refused)" ;;
  *) fail "user nobody on the hook socket: $refused" ;;
esac
grep -q "refused a connection from uid 65534" "$ACME/agent.log" || fail "the agent did not log the refused connection"
pass "the agent logged the refused connection"
