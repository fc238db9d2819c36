#!/usr/bin/env bash
# The C++ package: `cmake --install` into a fresh prefix, a project outside
# the tree built against it (find_package(Loom), and pkg-config), run
# against a cluster the installed CLI starts, and with a private cluster
# whose daemons must be the installed ones.
#   tests/package/run_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/loom-pkg-XXXXXX)
prefix=$tmp/prefix
cleanup() {
  "$prefix/bin/loom" stop --session-root "$tmp/cluster" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in include/loom/loom.h lib/libloom.so bin/loom bin/loom-gcs \
         bin/loom-raylet bin/loom-worker lib/cmake/Loom/LoomConfig.cmake \
         lib/pkgconfig/loom.pc; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done

# find_package(Loom) in a project of its own.
cmake -S "$here/project" -B "$tmp/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" \
  || { cat "$tmp/cmake.log"; fail "configuring against the package"; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log"; fail "building against the package"; }

# pkg-config: the same driver, compiled and linked by hand.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs loom) || fail "pkg-config loom"
# shellcheck disable=SC2086
g++ -O1 -o "$tmp/driver_pc" "$here/project/driver.cc" -I"$here/project" \
  -DUSER_TASKS_LIB="\"$tmp/build/libuser_tasks.so\"" \
  "$tmp/build/libuser_tasks.so" -Wl,-rpath,"$tmp/build" $flags \
  || fail "building with pkg-config"

expect() {  # expect OUTPUT: the driver's answers are right
  grep -qx "product 42" <<<"$1" && grep -qx "greeting hello, loom" <<<"$1" \
    && grep -qx "tally 12" <<<"$1" || fail "wrong answers: $1"
}

# A cluster started by the installed CLI; both drivers join it.
"$prefix/bin/loom" start --head --port 0 --num-cpus 2 \
  --node-ip-address 127.0.0.1 --session-root "$tmp/cluster" >/dev/null
expect "$("$tmp/build/user_driver" auto "$tmp/cluster")"
expect "$("$tmp/driver_pc" auto "$tmp/cluster")"
for pid in $(cat "$tmp/cluster/session_latest/pids"); do
  exe=$(readlink "/proc/$pid/exe")
  [[ $exe == "$prefix"/bin/* ]] || fail "daemon $pid runs $exe"
done
"$prefix/bin/loom" stop --session-root "$tmp/cluster" >/dev/null

# A private cluster: its daemons come from the installed bin/.
out=$("$tmp/build/user_driver" private "$tmp/private")
expect "$out"
grep -q "^child $prefix/bin/loom-gcs$" <<<"$out" \
  || fail "the private cluster's head is not the installed one: $out"
echo "package ok: $prefix"
