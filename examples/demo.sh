#!/usr/bin/env bash
# make demo: start a local cluster, run a real example against it, show its
# status, stop it. With $PYTHON (the venv's, which has the loom package)
# a Python driver joins it too.
set -euo pipefail
BUILD=${1:-build}
export LOOM_SESSION_ROOT=${LOOM_SESSION_ROOT:-/tmp/loom-demo}
loom="$BUILD/bin/loom"
"$loom" stop >/dev/null 2>&1 || true
trap '"$loom" stop' EXIT
# One machine: stay on loopback (a real cluster advertises the default
# route's address; see docs/operations.md).
"$loom" start --head --port 0 --num-cpus 2 --node-ip-address 127.0.0.1
echo
"$BUILD/bin/loom-example" --address auto
echo
if [ -x "${PYTHON:-}" ]; then
  "$PYTHON" examples/python_demo.py
  echo
fi
"$loom" status
