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
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
