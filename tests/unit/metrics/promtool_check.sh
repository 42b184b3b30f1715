#!/bin/sh
# Renders the node's and the agent's /metrics text with non-zero values
# (metrics_sample) and checks it with Prometheus's own `promtool check
# metrics` (Debian package prometheus): the format parses and the names follow
# Prometheus's conventions. Skips (77) when promtool is not installed.
# Usage: promtool_check.sh METRICS_SAMPLE
set -u
sample=$1
promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
  echo "SKIP: promtool not found (apt-get install prometheus; scripts/install-deps.sh test)"
  exit 77
fi
status=0
for which in node agent; do
  text=$("$sample" "$which") || { echo "FAIL: metrics_sample $which failed"; exit 1; }
  families=$(printf '%s\n' "$text" | grep -c '^# TYPE ')
  # promtool reports lint problems on stdout/stderr and exits non-zero.
  if output=$(printf '%s\n' "$text" | "$promtool" check metrics 2>&1); then
    echo "ok: $which: $families families pass promtool check metrics"
  else
    echo "FAIL: $which: promtool check metrics:"
    printf '%s\n' "$output"
    status=1
  fi
  if [ "$families" -lt 10 ]; then
    echo "FAIL: $which: only $families families"
    status=1
  fi
done
exit $status
