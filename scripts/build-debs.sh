#!/usr/bin/env bash
# Builds the Debian packages (tsunagu-rendezvous, tsunagu-lan-agent, tsunagu)
# from the working tree and checks them with lintian:
#   scripts/build-debs.sh [OUT]        .debs into OUT (default build-deb/)
# The tree (tracked and new files, as they are now) is copied to a fixed
# directory under the cache (TSUNAGU_CACHE, default /var/cache/tsunagu-build),
# so compiler cache entries match from one run to the next wherever the clone
# is; ccache is the one every build here shares (CCACHE_DIR, default
# ~/.cache/ccache). The package build compiles only the daemons, the hook and
# the CLI (-Dtests=false, debian/rules), with DEB_BUILD_OPTIONS=nocheck
# parallel=N (N = nproc unless set). Prints how long the build took.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-build-deb}")
cache=${TSUNAGU_CACHE:-/var/cache/tsunagu-build}
source_copy="$cache/deb-src/tsunagu"

for tool in dpkg-buildpackage dh lintian ccache; do
  command -v "$tool" > /dev/null || { echo "build-debs: $tool is missing (scripts/install-deps.sh test installs it)" >&2; exit 1; }
done

mkdir -p "$out" "$cache/deb-src"
rm -rf "$source_copy" "$cache"/deb-src/*.deb "$cache"/deb-src/*.buildinfo "$cache"/deb-src/*.changes
mkdir -p "$source_copy"
git -C "$root" ls-files -z --cached --others --exclude-standard |
  (cd "$root" && xargs -0 cp --parents -t "$source_copy" 2> /dev/null || true)
# Files deleted in the working tree but still tracked are skipped by cp above.

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=$source_copy CCACHE_NOHASHDIR=true
# The same compiler command lines as scripts/test.sh's build/ (which is set up
# with dpkg-buildflags' flags and -Werror), so these compiles are ccache hits:
# -Werror here too, and the tree's own path in -ffile-prefix-map and the
# locale (debhelper's ninja runs with LC_ALL=C.UTF-8) left out of the hash.
export CCACHE_IGNOREOPTIONS='-ffile-prefix-map=*' CCACHE_SLOPPINESS=locale TSUNAGU_DEB_WERROR=true
export DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=${TSUNAGU_DEB_JOBS:-$(nproc)}"
start=$(date +%s)
(cd "$source_copy" && dpkg-buildpackage -b -us -uc --no-sign) > "$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log" >&2; echo "build-debs: dpkg-buildpackage failed (log: $out/build.log)" >&2; exit 1; }
seconds=$(($(date +%s) - start))
rm -f "$out"/*.deb
mv "$cache"/deb-src/*.deb "$out/"
echo "build-debs: built $(cd "$out" && ls *.deb | tr '\n' ' ')in ${seconds} s (DEB_BUILD_OPTIONS=\"$DEB_BUILD_OPTIONS\"; log: $out/build.log)"

# Lintian: errors and warnings fail; the overrides in debian/*.lintian-overrides
# say why each one is accepted.
if ! lintian --fail-on error,warning "$out"/*.deb > "$out/lintian.log" 2>&1; then
  cat "$out/lintian.log" >&2
  echo "build-debs: lintian found problems" >&2
  exit 1
fi
echo "build-debs: lintian clean ($(grep -c . "$out/lintian.log" || true) info lines in $out/lintian.log)"
