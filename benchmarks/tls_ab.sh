#!/bin/bash
# What TLS costs: loom-bench's task and transfer figures with TLS off and on
# (a fresh `loom tls init` directory as $LOOM_TLS_DIR), in alternating runs;
# prints each run's JSON lines tagged "tls": false/true, then one line per
# figure with the medians and their ratio.
#
#   benchmarks/tls_ab.sh [BUILD_DIR] [RUNS]     # RUNS alternations (7)
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-7}
FILTERS=(single_client_tasks_sync single_client_tasks_async transfer_gigabytes)
certs=$(mktemp -d /tmp/loom-tls-ab-XXXXXX)
rmdir "$certs"
trap 'rm -rf "$certs"' EXIT
"$BUILD/bin/loom" tls init "$certs" >/dev/null
out=$(mktemp)
trap 'rm -rf "$certs" "$out"' EXIT
for ((i = 0; i < RUNS; i++)); do
  for tls in false true; do
    for f in "${FILTERS[@]}"; do
      if [ "$tls" = true ]; then
        LOOM_TLS_DIR=$certs "$BUILD/bin/loom-bench" --filter "$f"
      else
        env -u LOOM_TLS_DIR "$BUILD/bin/loom-bench" --filter "$f"
      fi | sed "s/}\$/, \"tls\": $tls}/" | tee -a "$out"
    done
  done
done
python3 "$(dirname "$0")/ab_summary.py" "$out"
