#!/usr/bin/env bash
# Installs the Debian 12 packages Tsunagu needs, only those missing.
#   scripts/install-deps.sh build   what building and the loopback demo need
#   scripts/install-deps.sh demo    build, and as root also the NAT lab's tools (scripts/demo.sh)
#   scripts/install-deps.sh test    also what the test suites run (real peers)
set -euo pipefail

build_packages=(
  g++ meson ninja-build cmake pkg-config python3
  libuv1-dev libnice-dev libssl-dev liblmdb-dev libsystemd-dev libpq-dev
  libtomlplusplus-dev libcli11-dev doctest-dev
  libopus-dev libspeexdsp-dev libsndfile1-dev libpulse-dev libasound2-dev
  libhttp-parser-dev libwslay-dev nlohmann-json3-dev
  libsrtp2-dev
  libcbor-dev libqrencode-dev libpng-dev
  # the terminal reads a card's QR code from a PNG itself (tsunagu card load IMAGE.png)
  libzbar-dev
  # cluster/redis/: presence and the node bus in Redis, on the libuv loop (hiredis' adapter)
  libhiredis-dev
  # proto/: UTF-8 and Unicode properties of the text people are shown (display names)
  libunistring-dev
)
test_packages=(
  clang libclang-rt-14-dev lmdb-utils stun-client openssl
  iproute2 nftables busybox dnsmasq-base coturn kea-dhcp4-server isc-dhcp-server
  espeak-ng sox libsox-fmt-base multimon-ng python3-numpy python3-scipy pulseaudio pulseaudio-utils baresip
  prometheus chromium zbar-tools
  strace systemd
  postgresql
  debhelper dpkg-dev lintian mmdebstrap ccache
  # the cluster suite's real Redis: single server and a 3-primary Cluster (redis-cli --cluster create)
  redis-server redis-tools
)
# The browser tests (tests/browser/) run Node.js scripts with npm packages. A Node.js
# installed some other way (e.g. nodesource's, which brings its own npm and conflicts
# with Debian's npm package) is used as it is: these are wanted only when missing.
test_commands=(node:nodejs npm:npm)

# What the NAT lab (tests/lab/) runs; the demo runs its first scenario as root, then
# the same call spoken (speech made and scored by tests/voice/voicetool.py).
lab_packages=(iproute2 nftables busybox dnsmasq-base coturn
  espeak-ng sox libsox-fmt-base multimon-ng python3-numpy python3-scipy)

wanted=("${build_packages[@]}")
case "${1:-build}" in
  test)
    wanted+=("${test_packages[@]}")
    for entry in "${test_commands[@]}"; do
      command -v "${entry%%:*}" > /dev/null || wanted+=("${entry#*:}")
    done
    ;;
  demo) if [[ $(id -u) -eq 0 ]]; then wanted+=("${lab_packages[@]}"); fi ;;
esac

missing=()
for package in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
# Server packages (coturn, DHCP servers) must not start system services: the
# tests run their own instances and stop them by PID.
policy=/usr/sbin/policy-rc.d
created_policy=false
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=true
fi
trap '[[ $created_policy == true ]] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
