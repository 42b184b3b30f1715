#!/usr/bin/env bash
# The demo. As root, where network namespaces can be made (and the lab's tools
# are present or installable: iproute2, nftables, dnsmasq, busybox, coturn), it
# runs the NAT lab's first scenario (docs/lab.md): a caller at home, behind one
# NAT gateway, calls extension 4106@acme on an enterprise LAN behind another;
# the extension's address came from DHCP, the LAN agent rings it, ICE punches
# through both NATs and 10 MB cross byte-identical; then the same call spoken:
# the extension answers with a greeting, the caller speaks and dials 4106#,
# and the scores of what each side heard and the decoded digits are printed
# (tests/lab/voice_lab_test.py voice_ext_punch_eim). Otherwise (or with
# TSUNAGU_DEMO=loopback) it runs the loopback demo below. It says which it ran.
#
# The loopback demo: a rendezvous node in a temporary directory, two users who log in,
# find each other by user ID, and make a real call: ICE through libnice, every
# packet sealed with the call's keys, an echo test and a file sent with its
# SHA-256 checked. Then an enterprise extension: a LAN agent linked to the
# node learns extension 4106's address from a DHCP hook call, and Alice calls
# 4106@acme, rung through the agent at a LAN terminal. All on loopback; needs
# no configuration; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${TSUNAGU_DEMO:-auto}   # auto | lab | loopback
why_loopback="TSUNAGU_DEMO=loopback"
if [[ $mode != loopback && $(id -u) -eq 0 ]]; then
  # Build packages, and the lab's tools; without them the lab skips (below) and the loopback demo runs.
  bash scripts/install-deps.sh demo || bash scripts/install-deps.sh build
else
  bash scripts/install-deps.sh build
fi
if [[ ! -f build/build.ninja ]]; then meson setup build >/dev/null; fi
ninja -C build node/tsunagu-rendezvous terminal/tsunagu lan-agent/tsunagu-lan-agent lan-agent/tsunagu-dhcp-hook >/dev/null

if [[ $mode != loopback ]]; then
  why_loopback="the NAT lab needs root and network namespaces"
  printf '\n\033[1m== The NAT lab, scenario 1: home calls extension 4106@acme through two NATs\033[0m\n'
  cat <<'TOPOLOGY'
Network namespaces on this machine (all removed at the end):
  pub      the "internet" (203.0.113.0/24): the rendezvous node and coturn
  gw-acme  an enterprise gateway: NAT, dnsmasq (DHCP) + tsunagu-dhcp-hook, tsunagu-lan-agent
  acme-1   a LAN terminal: DHCP hostname ext4106 = extension 4106, runs `tsunagu listen --lan`
  gw-home  a home router: NAT;  home: user kenji, runs `tsunagu call 4106@acme --pipe`
Nobody types an address: the lease tells the agent where 4106 is, the node asks the agent.
TOPOLOGY
  set +e
  TSUNAGU_BUILD=$PWD/build python3 tests/lab/lab_test.py ext_punch_eim
  lab_code=$?
  set -e
  if ((lab_code == 0)); then
    printf '\n\033[1m== The same call, spoken: 4106 answers with a greeting, the home caller speaks and dials 4106#\033[0m\n'
    printf 'Opus over the sealed path; espeak-ng makes the speech, tests/voice/voicetool.py scores what each side heard\n'
    printf 'and multimon-ng decodes the digits from the extension'"'"'s recording.\n'
    set +e
    TSUNAGU_BUILD=$PWD/build /usr/bin/python3 tests/lab/voice_lab_test.py voice_ext_punch_eim
    voice_code=$?
    set -e
    if ((voice_code != 0 && voice_code != 77)); then
      printf '\nDemo ran: the NAT lab, spoken scenario voice_ext_punch_eim: FAILED (exit %d, output above).\n' "$voice_code" >&2
      exit 1
    fi
    printf '\nDemo ran: the NAT lab (network namespaces), scenario ext_punch_eim: PASS'
    ((voice_code == 0)) && printf ', and spoken (voice_ext_punch_eim): PASS' || printf ' (the spoken scenario skipped: see above)'
    printf '.\n'
    printf 'Its namespaces and processes are gone. The loopback demo: TSUNAGU_DEMO=loopback bash scripts/demo.sh\n'
    exit 0
  fi
  if ((lab_code != 77)) || [[ $mode == lab ]]; then
    printf '\nDemo ran: the NAT lab, scenario ext_punch_eim: FAILED (exit %d, output above).\n' "$lab_code" >&2
    exit 1
  fi
  printf '\nThe NAT lab cannot run here (the SKIP line above says why): running the loopback demo instead.\n'
fi

node_bin=$PWD/build/node/tsunagu-rendezvous
cli=$PWD/build/terminal/tsunagu
agent_bin=$PWD/build/lan-agent/tsunagu-lan-agent
hook_bin=$PWD/build/lan-agent/tsunagu-dhcp-hook
work=$(mktemp -d /tmp/tsunagu-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Create a deployment (private CA, node certificate, node.toml)"
"$node_bin" init "$work/node"
sed -i 's/^agent_listen.*/agent_listen = "127.0.0.1:0"/' "$work/node/node.toml"
sed -i 's/^listen = "0.0.0.0:8443".*/listen = "127.0.0.1:0"/' "$work/node/node.toml"  # the web listener ([web])

step "2. Add two users (passwords are stored as scrypt hashes)"
TSUNAGU_PASSWORD=alice-secret "$node_bin" user -d "$work/node" add alice --name "Alice Aoki"
TSUNAGU_PASSWORD=bob-secret "$node_bin" user -d "$work/node" add bob --name "Bob Baba"

step "3. Start the node on loopback (TLS signalling + UDP STUN)"
"$node_bin" run -d "$work/node" --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 \
  --ready-file "$work/ready.json" 2>"$work/node.log" &
pids+=($!)
for _ in $(seq 50); do [[ -s $work/ready.json ]] && break; sleep 0.1; done
[[ -s $work/ready.json ]] || { cat "$work/node.log"; echo "node did not start" >&2; exit 1; }
cat "$work/ready.json"
export TSUNAGU_NODE TSUNAGU_CA="$work/node/ca.crt"
TSUNAGU_NODE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tls"])' "$work/ready.json")

step "4. Alice and Bob log in (they stay online, sending keepalives)"
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" login >"$work/alice.log" 2>&1 &
pids+=($!)
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" login >"$work/bob.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  grep -q "logged in" "$work/alice.log" && grep -q "logged in" "$work/bob.log" && break
  sleep 0.1
done
cat "$work/alice.log" "$work/bob.log"

step "5. Alice looks up Bob, Bob looks up Alice"
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" whereis bob
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" whereis alice

step "6. Bob answers calls from Alice; Alice calls him (echo test over datagrams)"
# libnice ignores loopback unless told to use it: --ice-address 127.0.0.1.
kill "${pids[2]}" 2>/dev/null || true; wait "${pids[2]}" 2>/dev/null || true   # Bob's plain login
mkdir -p "$work/bob-inbox"
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" listen --auto-accept-from alice --recv "$work/bob-inbox" \
  --ice-address 127.0.0.1 >"$work/bob-listen.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "listening as bob" "$work/bob-listen.log" && break; sleep 0.1; done
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" call bob --echo-test 20 --ice-address 127.0.0.1

step "7. Alice sends Bob a 5 MB file over a reliable, encrypted stream"
head -c 5000000 /dev/urandom >"$work/holiday.bin"
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" call bob --send "$work/holiday.bin" --ice-address 127.0.0.1
cmp "$work/holiday.bin" "$work/bob-inbox/holiday.bin" && echo "Bob's copy is byte-identical"
echo "--- what Bob's terminal printed:"
cat "$work/bob-listen.log"

step "8. An enterprise: LAN agent acme enrolled at the node and linked to it"
agent_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent"].rsplit(":", 1)[1])' "$work/ready.json")
"$node_bin" agent -d "$work/node" enroll acme --domain acme --out "$work/acme" --node "127.0.0.1:$agent_port" \
  --server-name 127.0.0.1
lan_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "/^name = \"acme\"/a data_directory = \"$work/acme/data\"" "$work/acme/agent.toml"
cat >>"$work/acme/agent.toml" <<EOF

[table]
hostname_rule = "ext{ext}"   # a DHCP client named ext4106 is extension 4106

[hook]
socket = "$work/acme/hook.sock"
spool_directory = "$work/acme/spool"

[calls]
terminal_port = $lan_port     # where LAN terminals listen (7480 on a real LAN)
EOF
export TSUNAGU_AGENT_CONFIG="$work/acme/agent.toml"
"$agent_bin" run >"$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "linked to the node" "$work/agent.log" && break; sleep 0.1; done
cat "$work/agent.log"

step "9. The DHCP server leases 127.0.0.1 to ext4106 (the hook call dnsmasq makes); Alice looks it up"
DNSMASQ_LEASE_EXPIRES=$(($(date +%s) + 3600)) "$hook_bin" add 02:00:00:00:41:06 127.0.0.1 ext4106
"$agent_bin" list
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" whereis 4106@acme

step "10. Extension 4106's terminal (certificate from the agent's LAN CA) answers; Alice calls 4106@acme"
"$agent_bin" terminal issue 4106 --out "$work/t4106"
mkdir -p "$work/t4106-inbox"
"$cli" listen --lan "$work/t4106" --lan-listen "127.0.0.1:$lan_port" --auto-accept-from alice \
  --recv "$work/t4106-inbox" --ice-address 127.0.0.1 >"$work/t4106.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on the LAN" "$work/t4106.log" && break; sleep 0.1; done
head -c 2000000 /dev/urandom >"$work/minutes.bin"
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" call 4106@acme --send "$work/minutes.bin" --ice-address 127.0.0.1
cmp "$work/minutes.bin" "$work/t4106-inbox/minutes.bin" && echo "4106's copy is byte-identical"
echo "--- what the agent and 4106's terminal printed about it:"
grep -E "ring|lookup" "$work/agent.log" || true
cat "$work/t4106.log"

step "11. Bob logs out; Alice looks again"
TSUNAGU_USER=bob TSUNAGU_PASSWORD=bob-secret "$cli" logout
sleep 0.2
TSUNAGU_USER=alice TSUNAGU_PASSWORD=alice-secret "$cli" whereis bob || true

step "Done: the node, both terminals and $work are cleaned up on exit"
echo "Demo ran: the loopback demo (all on 127.0.0.1; $why_loopback)."
