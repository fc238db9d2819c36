#!/usr/bin/env bash
# Installs the Debian packages Loom builds against, only those missing.
# Idempotent and quiet when everything is already there.
set -euo pipefail
pkgs=(
  cmake ninja-build ccache g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev prometheus-cpp-dev libmsgpack-cxx-dev
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  iproute2  # tests/multihost: hosts made of network namespaces (`ip netns`)
  libhiredis-dev  # the head's Redis storage (--storage redis://)
  redis-server    # tests start their own on a free port; see below
  prometheus      # tests/python/test_prometheus.py scrapes a cluster with it
  libcivetweb-dev # the head's job API serves HTTP on it
  libzip-dev      # submitted jobs' working directories come as zips
  libssl-dev      # `loom tls init` makes certificates with libcrypto
  wrk             # benchmarks/serve: HTTP load (a timed test never needs it)
  chromium chromium-driver  # tests/python/test_dashboard.py: a real browser
)
# The packaged redis-server starts a service on 6379, the head's default
# Redis port, and prometheus one on 9090: stop and disable both, so that
# nothing holds those ports and tests only ever talk to servers they started
# themselves.
stop_packaged_service() {
  local name=$1
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now "$name" >/dev/null 2>&1 || true
  fi
  if command -v service >/dev/null 2>&1; then
    $SUDO service "$name" stop >/dev/null 2>&1 || true
  fi
  $SUDO update-rc.d "$name" disable >/dev/null 2>&1 || true
  pkill -x "$name" -u "$2" 2>/dev/null || true
}
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
stop_packaged_service redis-server redis
stop_packaged_service prometheus prometheus
