#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite:
#   build/       -O2 -g with assertions and the package build's flags: unit,
#                integration, lab, browser, install (the .debs in a clean
#                Debian 12 root; scripts/build-debs.sh, its compiles from ccache),
#                cluster (cluster mode against real PostgreSQL and Redis)
#   build-asan/  ASan+UBSan build: unit, integration, redis-client
#   build-fuzz/  clang + libFuzzer: each fuzz target for a bounded time
# Prints the run's timeline and its slowest tests, then ends with one line
# "tests: N passed, M failed[, K skipped]" computed from meson's own test
# logs. Exit status 0 only when nothing failed. docs/performance.md, "Test
# command timing", has the measurements.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh test || exit 1

jobs=$(nproc)
status=0
# The run's timeline, printed at the end: each phase's wall time, and the
# compiles' CPU time (user+sys) from bash's `time`.
run_start=$(date +%s)
timeline=()
phase_start=$run_start
phase_done() {  # NAME: the phase that ends now
  local now; now=$(date +%s)
  timeline+=("$(printf '%6d s  %6d s  %s' $((now - run_start)) $((now - phase_start)) "$1")")
  phase_start=$now
}
compile_times=$(mktemp)
timed() {  # LABEL COMMAND...: runs it; its wall and CPU time go to the timeline
  local TIMEFORMAT="$1: %R s wall, %U s user + %S s sys CPU"; shift
  { time "$@" 2>&3; } 3>&2 2>>"$compile_times"
}

configure() {  # dir, extra meson args...
  local dir=$1; shift
  if [[ -f $dir/build.ninja ]]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
  else
    meson setup "$dir" "$@" || return 1
  fi
}

run_suites() {  # dir, suites... (a suite written !NAME is left out) [-- test names: only these]
  local dir=$1; shift
  local args=()
  while (($#)); do
    local suite=$1; shift
    if [[ $suite == -- ]]; then args+=("$@"); break; fi
    if [[ $suite == !* ]]; then args+=(--no-suite "${suite#!}"); else args+=(--suite "$suite"); fi
  done
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$jobs" "${args[@]}" || status=1
}

# The sanitizer and fuzz builds compile at the lowest priority while build/'s
# tests run: those tests mostly wait (on processes, namespaces, a browser),
# and the two compiles took a third of a fresh run when they came after them.
# Their suites run once build/'s are done; no test shares the machine with a
# compile at the test's own priority.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
background_builds() {
  echo "== build-asan (ASan+UBSan)"
  if configure build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug &&
     timed "build-asan/ compile (nice 19)" nice -n 19 ninja -C build-asan; then
    echo "asan-build: ok"
  else
    echo "asan build failed"
  fi
  echo "== build-fuzz (clang, libFuzzer)"
  if CC=clang CXX=clang++ configure build-fuzz -Dfuzzing=true -Db_lundef=false; then
    # Build only the fuzz targets (and what they link), not the whole tree again.
    mapfile -t fuzz_targets < <(meson introspect build-fuzz --tests | python3 -c '
import json, os, sys
for t in json.load(sys.stdin):
    if any(s.split(":")[-1] == "fuzz" for s in t["suite"]):
        print(os.path.relpath(t["cmd"][0], sys.argv[1]))' "$root/build-fuzz")
    if ((${#fuzz_targets[@]})) &&
       timed "build-fuzz/ compile (nice 19)" nice -n 19 ninja -C build-fuzz "${fuzz_targets[@]}"; then
      echo "fuzz-build: ok"
    else
      echo "fuzz build failed or no fuzz targets"
    fi
  else
    echo "fuzz configure failed"
  fi
}

# build/ compiles with exactly the package build's compiler command lines
# (debian/rules: debhelper's meson with buildtype=plain and dpkg-buildflags'
# flags, -Werror as the package build of scripts/build-debs.sh), so the install
# test's package build finds every compile in ccache instead of compiling the
# daemons a fourth time. The flags are -O2 -g as debugoptimized's, plus the
# hardening ones; assertions stay on (b_ndebug=false, the project default).
# -ffile-prefix-map names the tree's own path: left out of ccache's hash here
# and in build-debs.sh (it changes only the debug info's directory names); so
# is the locale (debhelper runs ninja with LC_ALL=C.UTF-8, which ccache hashes
# by default: every package compile missed without this; -Werror leaves no
# warning text in the cache to differ by language).
export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=true CCACHE_IGNOREOPTIONS='-ffile-prefix-map=*' \
  CCACHE_SLOPPINESS=locale
package_flags() {  # NAME: the flag set dpkg-buildflags gives the package build
  DEB_BUILD_MAINT_OPTIONS=$(sed -n 's/^export DEB_BUILD_MAINT_OPTIONS *= *//p' debian/rules) \
    dpkg-buildflags --get "$1"
}
# meson takes the flags from the environment at setup, as debhelper passes
# them (CXXFLAGS then CPPFLAGS on the command line; -Dcpp_args= would put them
# in another order, and so give other command lines); only build/'s setup
# sees them, not build-asan/'s or build-fuzz/'s.
build_env=(CXXFLAGS="$(package_flags CXXFLAGS)" CPPFLAGS="$(package_flags CPPFLAGS)"
           LDFLAGS="$(package_flags LDFLAGS)")
# A build/ set up otherwise (debugoptimized before these flags, or another
# tree's path in its flags) is set up again from scratch.
if [[ -f build/build.ninja ]] &&
   ! meson introspect build --buildoptions | python3 -c '
import json, sys
options = {o["name"]: o["value"] for o in json.load(sys.stdin)}
wanted = {"buildtype": "plain", "cpp_args": sys.argv[1].split()}
sys.exit(0 if all(options.get(k) == v for k, v in wanted.items()) else 1)' \
     "$(package_flags CXXFLAGS) $(package_flags CPPFLAGS)"; then
  (export "${build_env[@]}"; meson setup --wipe build -Dbuildtype=plain >/dev/null)
fi

echo "== build (plain + the package build's dpkg-buildflags; scripts/build-debs.sh's compiles come from ccache)"
build_ok=0
(export "${build_env[@]}"; configure build -Dbuildtype=plain) && timed "build/ compile" ninja -C build && build_ok=1
phase_done "build/: configure and compile"
background_log=$(mktemp)
set -m  # the background compile gets its own process group, ended with it
background_builds >"$background_log" 2>&1 &
background=$!
set +m
# Whatever ends this script also ends the compile it started (its group only).
trap 'kill -- -$background 2>/dev/null; rm -f "$background_log" "$compile_times"' EXIT

# The suites build/ runs, in one meson test run (meson starts the tests by their
# priority: the long ones first, see docs/performance.md, "Test command timing").
# A new suite of build/'s goes in this list.
build_suites=(
  unit
  integration
  lab        # network namespaces, one scenario at a time (root; skips otherwise)
  browser    # Chromium, one scenario at a time
  install    # the Debian packages in a clean Debian 12 root (root only; it says why it skips)
  cluster    # cluster mode against PostgreSQL and Redis servers the tests start themselves
)
if ((build_ok)); then
  run_suites build "${build_suites[@]}"
else
  echo "build failed" >&2; status=1
fi
phase_done "build/: ${build_suites[*]} (build-asan/ and build-fuzz/ compiling meanwhile)"

echo "== waiting for the sanitizer and fuzz builds"
wait $background
phase_done "waiting for the build-asan/ and build-fuzz/ compiles"
cat "$background_log"
if grep -qx "asan-build: ok" "$background_log"; then
  # The 'slow' tests (the soak, kill -9 under a hook flood, PulseAudio device
  # mode) ran in build/ above; under ASan they add minutes and no new code paths.
  # Nor the tests that run nothing of build-asan/ (the voice tools' own check,
  # the layering checks, a docs check): their answer is build/'s again.
  mapfile -t asan_tests < <(meson introspect build-asan --tests | python3 scripts/tests_using_build.py build-asan)
  run_suites build-asan unit integration redis-client '!slow' -- "${asan_tests[@]}"
  phase_done "build-asan/: unit integration redis-client (not slow)"
else
  status=1
fi
if grep -qx "fuzz-build: ok" "$background_log"; then
  run_suites build-fuzz fuzz
  phase_done "build-fuzz/: fuzz"
else
  status=1
fi

echo "== timeline (end, length, phase)"
printf '%s\n' "${timeline[@]}"
cat "$compile_times"
python3 scripts/slowest_tests.py --count 20 build build-asan build-fuzz

python3 scripts/count_results.py build build-asan build-fuzz || status=1
exit $status
