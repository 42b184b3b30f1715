#!/bin/bash
# Captures what the real DHCP servers of Debian 12 hand to a lease hook, and their
# lease files, for the allocation/ parser tests.
#
#   sudo tests/unit/allocation/captured/capture.sh [dnsmasq|isc|kea4|kea6|all]
#
# Needs: dnsmasq-base, isc-dhcp-server, isc-dhcp-client, kea-dhcp4-server,
# kea-dhcp6-server, kea-common, busybox (install with a policy-rc.d that exits 101
# so no system service starts). Everything runs in two network namespaces created
# here (alloc-srv with lan0, alloc-cli with eth0, a veth pair) on 10.99.0.0/24 and
# fd99::/64 only. Every process started here is stopped by its PID and the
# namespaces are removed on every exit path (trap).
#
# Output, beside this script:
#   <server>/calls/NNN-<action>.args   one argument per line, as the hook got them
#   <server>/calls/NNN-<action>.env    the hook's environment (`env`, sorted)
#   <server>/<lease file>              the server's lease file after the calls
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
WHAT="${1:-all}"
SRV=alloc-srv
CLI=alloc-cli
WORK="$(mktemp -d /tmp/alloc-capture.XXXXXX)"
PIDS=()
CLI_PID=

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  # Anything still running inside our own namespaces was started here.
  for ns in "$SRV" "$CLI"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
  done
  sleep 0.3
  for ns in "$SRV" "$CLI"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  ip netns del "$SRV" 2>/dev/null
  ip netns del "$CLI" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }
# A clean environment: no variables of the calling shell reach the captures.
# (env execs the command, so $! of a backgrounded line is the server's PID.)
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin)

setup_netns() {
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
  ip netns add "$SRV"
  ip netns add "$CLI"
  for ns in "$SRV" "$CLI"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
    ip netns exec "$ns" ip link set lo up
  done
  # Created after accept_dad=0, so link-local addresses are usable at once
  # (Kea v6 binds to lan0's link-local address).
  ip link add lan0 netns "$SRV" type veth peer name eth0 netns "$CLI"
  # A MAC with 0x0 leading nibbles, so ISC's unpadded form (2:a:...) shows.
  in_cli ip link set eth0 address 02:0a:0b:0c:0d:0e
  in_srv ip addr add 10.99.0.1/24 dev lan0
  in_srv ip -6 addr add fd99::1/64 dev lan0 nodad
  in_srv ip link set lan0 up
  in_cli ip link set eth0 up
  sleep 2
}

# The hook: one .args and one .env file per call. Absolute paths only, since
# Kea gives its script no PATH.
make_hook() {
  local dir="$1"
  mkdir -p "$dir/calls"
  cat > "$WORK/hook-$2.sh" <<EOF
#!/bin/sh
n=\$(/bin/date +%s%N)-\$\$
{ for a in "\$@"; do /usr/bin/printf '%s\n' "\$a"; done; } > "$dir/calls/\$n-\$1.args"
/usr/bin/env | /usr/bin/sort > "$dir/calls/\$n-\$1.env"
exit 0
EOF
  chmod 755 "$WORK/hook-$2.sh"
  chmod 777 "$dir/calls"
}

# Renames NNNNNNNNN-PID-action.* to 001-action.* in call order.
number_calls() {
  local dir="$1/calls" i=0 base
  for f in $(ls "$dir" | grep '\.args$' | sort -n); do
    i=$((i + 1))
    base="${f%.args}"
    mv "$dir/$base.args" "$dir/$(printf '%03d' $i)-${base#*-*-}.args"
    mv "$dir/$base.env" "$dir/$(printf '%03d' $i)-${base#*-*-}.env"
  done
}

# udhcpc's script: configures the address so that renewals (unicast) work.
make_udhcpc_script() {
  cat > "$WORK/udhcpc.sh" <<'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface" scope global ;;
  bound|renew) ip addr flush dev "$interface" scope global; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
EOF
  chmod 755 "$WORK/udhcpc.sh"
}

# dhclient -6's script does nothing: we only want the server's side.
make_dhclient6() {
  printf '#!/bin/sh\nexit 0\n' > "$WORK/dhclient.sh"
  chmod 755 "$WORK/dhclient.sh"
  # A FQDN with a trailing dot, as v6 clients send it.
  printf 'send fqdn.fqdn "%s.";\nsend fqdn.server-update on;\n' "$1" > "$WORK/dhclient6.conf"
  : > "$WORK/dhclient6.leases"
}

# One DHCPv4 client run: lease and two renewals (SIGUSR1); the caller releases
# it with SIGTERM (-R) through $CLI_PID.
udhcpc_cycle() {
  local host="$1"
  ip netns exec "$CLI" busybox udhcpc -f -R -i eth0 -s "$WORK/udhcpc.sh" -x "hostname:$host" -t 5 -T 1 \
    > "$WORK/udhcpc.log" 2>&1 &
  CLI_PID=$!
  PIDS+=("$CLI_PID")
  sleep 3
  kill -USR1 "$CLI_PID"; sleep 2    # renewal
  kill -USR1 "$CLI_PID"; sleep 2    # a second renewal
}

dhclient6_cycle() {
  ip netns exec "$CLI" dhclient -6 -1 -d -cf "$WORK/dhclient6.conf" -sf "$WORK/dhclient.sh" \
    -lf "$WORK/dhclient6.leases" -pf "$WORK/dhclient6.pid" eth0 > "$WORK/dhclient6.log" 2>&1 &
  PIDS+=("$!")
  sleep 4
}

dhclient6_release() {
  in_cli dhclient -6 -r -cf "$WORK/dhclient6.conf" -sf "$WORK/dhclient.sh" \
    -lf "$WORK/dhclient6.leases" -pf "$WORK/dhclient6.pid" eth0 > /dev/null 2>&1 || true
  sleep 2
}

capture_dnsmasq() {
  local out="$HERE/dnsmasq"
  rm -rf "$out"; make_hook "$out" dnsmasq
  "${CLEAN_ENV[@]}" ip netns exec "$SRV" dnsmasq -k --conf-file=/dev/null --port=0 --interface=lan0 \
    --bind-interfaces --no-ping \
    --dhcp-range=10.99.0.50,10.99.0.99,255.255.255.0,2m \
    --dhcp-range=fd99::100,fd99::1ff,64,2m \
    --dhcp-script="$WORK/hook-dnsmasq.sh" --script-on-renewal \
    --dhcp-leasefile="$WORK/dnsmasq.leases" --pid-file="$WORK/dnsmasq.pid" \
    > "$WORK/dnsmasq.log" 2>&1 &
  local srv=$!
  PIDS+=("$srv")
  sleep 1
  udhcpc_cycle ext-4106                       # add, old, old
  make_dhclient6 ext-4107
  dhclient6_cycle                                    # add (v6, DUID form)
  cp "$WORK/dnsmasq.leases" "$out/dnsmasq.leases"     # both leases live
  kill -HUP "$(cat "$WORK/dnsmasq.pid")"; sleep 1     # old for every lease
  kill -TERM "$CLI_PID"; sleep 2                          # release -> del
  dhclient6_release                                   # v6 release -> del
  cp "$WORK/dnsmasq.leases" "$out/dnsmasq.leases.after-release"
  kill "$srv"; wait "$srv" 2>/dev/null || true
  number_calls "$out"
}

capture_isc() {
  local out="$HERE/isc-dhcpd"
  rm -rf "$out"; make_hook "$out" isc
  local hook="$WORK/hook-isc.sh"
  cat > "$WORK/dhcpd.conf" <<EOF
default-lease-time 120;
max-lease-time 120;
authoritative;
ddns-update-style none;
subnet 10.99.0.0 netmask 255.255.255.0 {
  range 10.99.0.100 10.99.0.149;
}
on commit {
  execute("$hook", "commit", binary-to-ascii(10, 8, ".", leased-address),
          binary-to-ascii(16, 8, ":", substring(hardware, 1, 6)),
          pick-first-value(option host-name, ""),
          binary-to-ascii(10, 32, "", encode-int(lease-time, 32)));
}
on release {
  execute("$hook", "release", binary-to-ascii(10, 8, ".", leased-address),
          binary-to-ascii(16, 8, ":", substring(hardware, 1, 6)),
          pick-first-value(option host-name, ""));
}
on expiry {
  execute("$hook", "expiry", binary-to-ascii(10, 8, ".", leased-address),
          binary-to-ascii(16, 8, ":", substring(hardware, 1, 6)),
          pick-first-value(option host-name, ""));
}
EOF
  cp "$WORK/dhcpd.conf" "$out/dhcpd.conf"
  sed -i "s#$hook#/usr/local/lib/tsunagu/tsunagu-dhcp-hook#" "$out/dhcpd.conf"
  : > "$WORK/dhcpd.leases"
  "${CLEAN_ENV[@]}" ip netns exec "$SRV" dhcpd -4 -f -d -cf "$WORK/dhcpd.conf" -lf "$WORK/dhcpd.leases" \
    -pf "$WORK/dhcpd.pid" lan0 > "$WORK/dhcpd.log" 2>&1 &
  local srv=$!
  PIDS+=("$srv")
  sleep 1
  udhcpc_cycle ext-4108                        # commit x3
  kill -TERM "$CLI_PID"; sleep 2                          # release
  cp "$WORK/dhcpd.leases" "$out/dhcpd.leases"
  kill "$srv"; wait "$srv" 2>/dev/null || true
  number_calls "$out"
}

kea4_conf() {
  cat <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "lan0" ] },
    "lease-database": { "type": "memfile", "persist": true, "lfc-interval": 0,
                        "name": "$WORK/kea-leases4.csv" },
    "valid-lifetime": 20, "renew-timer": 600, "rebind-timer": 900,
    "expired-leases-processing": { "reclaim-timer-wait-time": 1,
                                   "hold-reclaimed-time": 3600 },
    "hooks-libraries": [ {
        "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_run_script.so",
        "parameters": { "name": "$WORK/hook-kea4.sh", "sync": false } } ],
    "subnet4": [ { "id": 1, "subnet": "10.99.0.0/24",
                   "pools": [ { "pool": "10.99.0.150 - 10.99.0.199" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN",
                   "output_options": [ { "output": "stderr" } ] } ]
} }
EOF
}

kea6_conf() {
  cat <<EOF
{ "Dhcp6": {
    "data-directory": "$WORK",
    "interfaces-config": { "interfaces": [ "lan0" ] },
    "lease-database": { "type": "memfile", "persist": true, "lfc-interval": 0,
                        "name": "$WORK/kea-leases6.csv" },
    "valid-lifetime": 120, "preferred-lifetime": 90,
    "hooks-libraries": [ {
        "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_run_script.so",
        "parameters": { "name": "$WORK/hook-kea6.sh", "sync": false } } ],
    "subnet6": [ { "id": 1, "subnet": "fd99::/64", "interface": "lan0",
                   "pools": [ { "pool": "fd99::200 - fd99::2ff" } ] } ],
    "loggers": [ { "name": "kea-dhcp6", "severity": "WARN",
                   "output_options": [ { "output": "stderr" } ] } ]
} }
EOF
}

capture_kea4() {
  local out="$HERE/kea4"
  rm -rf "$out"; make_hook "$out" kea4
  kea4_conf > "$WORK/kea4.json"
  mkdir -p "$WORK/kea4run"
  "${CLEAN_ENV[@]}" KEA_LOCKFILE_DIR="$WORK/kea4run" KEA_PIDFILE_DIR="$WORK/kea4run" \
    ip netns exec "$SRV" kea-dhcp4 -c "$WORK/kea4.json" > "$WORK/kea4.log" 2>&1 &
  local srv=$!
  PIDS+=("$srv")
  sleep 2
  udhcpc_cycle ext-4109                        # leases4_committed, lease4_renew
  kill -TERM "$CLI_PID"; sleep 2                          # lease4_release
  # A second client that vanishes without releasing: its lease expires and is
  # reclaimed (lease4_expire) after valid-lifetime (20 s).
  ip netns exec "$CLI" busybox udhcpc -f -i eth0 -s "$WORK/udhcpc.sh" -x hostname:ext-4110 -t 5 -T 1 \
    > /dev/null 2>&1 &
  local cli2=$!
  PIDS+=("$cli2")
  sleep 3
  kill -KILL "$cli2"
  sleep 25
  cp "$WORK/kea-leases4.csv" "$out/kea-leases4.csv"
  kill "$srv"; wait "$srv" 2>/dev/null || true
  number_calls "$out"
}

capture_kea6() {
  local out="$HERE/kea6"
  rm -rf "$out"; make_hook "$out" kea6
  kea6_conf > "$WORK/kea6.json"
  mkdir -p "$WORK/kea6run"
  "${CLEAN_ENV[@]}" KEA_LOCKFILE_DIR="$WORK/kea6run" KEA_PIDFILE_DIR="$WORK/kea6run" \
    ip netns exec "$SRV" kea-dhcp6 -c "$WORK/kea6.json" > "$WORK/kea6.log" 2>&1 &
  local srv=$!
  PIDS+=("$srv")
  sleep 2
  make_dhclient6 ext-4111
  dhclient6_cycle                                     # leases6_committed
  dhclient6_release                                   # lease6_release
  cp "$WORK/kea-leases6.csv" "$out/kea-leases6.csv"
  if [ -z "$(ls "$out/calls")" ]; then
    echo "kea6: no hook call captured; server and client logs:" >&2
    cat "$WORK/kea6.log" "$WORK/dhclient6.log" >&2
  fi
  kill "$srv" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  number_calls "$out"
}

setup_netns
make_udhcpc_script
case "$WHAT" in
  dnsmasq) capture_dnsmasq ;;
  isc) capture_isc ;;
  kea4) capture_kea4 ;;
  kea6) capture_kea6 ;;
  all) capture_dnsmasq; capture_isc; capture_kea4; capture_kea6 ;;
  *) echo "usage: $0 [dnsmasq|isc|kea4|kea6|all]" >&2; exit 2 ;;
esac
echo "captured into $HERE"
