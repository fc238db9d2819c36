#!/bin/bash
# What TLS costs across hosts: transfer_gigabytes_cross_host (and the TCP
# floor) from benchmarks/multihost.py with TLS off and on, in alternating
# runs, each on a fresh three-host network; then the medians and their
# ratio (ab_summary.py). Needs root; after `make install-python`.
#
#   benchmarks/tls_cross_host_ab.sh [RUNS]     # RUNS alternations (7)
set -euo pipefail
RUNS=${1:-7}
here=$(dirname "$0")
py=${PYTHON:-.venv/bin/python}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((i = 0; i < RUNS; i++)); do
  for tls in false true; do
    flag=()
    [ "$tls" = true ] && flag=(--tls)
    "$py" "$here/multihost.py" --transfer-only "${flag[@]}" |
      grep transfer_gigabytes_cross_host | tee -a "$out"
  done
done
python3 "$here/ab_summary.py" "$out"
