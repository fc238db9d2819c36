#!/bin/bash
# Packs what the GPU tests and benchmarks need into one folder (default
# .devbundle/) to run on a GPU machine that has no gRPC or Protobuf: the
# daemons, the test and benchmark binaries, Loom's libraries and the system
# libraries they link (glibc's excepted), plus run.sh, which runs the
# gpu-labelled tests and the NCCL benchmark there. CUDA and NCCL are not
# packed: they are loaded at run time from the machine's own (a CUDA
# toolkit, or PyTorch's nvidia-* wheels).
#
#   scripts/gpu-bundle.sh [BUILD_DIR] [OUT_DIR] [PY_BUILD_DIR]
#
# PY_BUILD_DIR: a build whose _core extension matches the GPU machine's
# python3 (configure one with -DPython_EXECUTABLE=python3.12); the package
# goes to OUT_DIR/py and run.sh then runs the Python GPU tests too.
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-.devbundle}
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
for b in loom loom-gcs loom-raylet loom-worker loom_gpu_tests loom-gpu-bench; do
  strip -o "$OUT/bin/$b" "$BUILD/bin/$b"
done
for l in "$BUILD"/lib/libloom*.so; do strip -o "$OUT/lib/$(basename "$l")" "$l"; done
for f in "$OUT"/bin/* "$OUT"/lib/*.so; do
  LD_LIBRARY_PATH="$BUILD/lib" ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' |
  grep -v "/libloom" | while read -r lib; do cp -L "$lib" "$OUT/lib/"; done
if [ -n "${3:-}" ]; then
  mkdir -p "$OUT/py"
  cp -r python_bindings/loom "$OUT/py/"
  find "$OUT/py" -name __pycache__ -prune -exec rm -rf {} +
  for e in "$3"/lib/_core.*.so; do strip -o "$OUT/py/loom/$(basename "$e")" "$e"; done
fi
cat > "$OUT/run.sh" <<'RUN'
#!/bin/bash
# On the GPU machine: bash .devbundle/run.sh  (writes to $OUT when set)
B=$(cd "$(dirname "$0")" && pwd)
# Where the machine keeps them (searching all of / takes minutes).
nccl=$(find /usr/lib /usr/local /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
cudart=$(find /usr/local /usr/lib /opt -name 'libcudart.so.13' 2>/dev/null | head -1)
echo "nccl: $nccl"; echo "cudart: $cudart"
export LD_LIBRARY_PATH="$B/lib:$(dirname "$nccl"):$(dirname "$cudart")"
export LOOM_NCCL_LIB="$nccl" LOOM_CUDART_LIB="$cudart"
export LOOM_BIN_DIR="$B/bin" LOOM_TEST_BIN_DIR="$B/bin"
export LOOM_TEST_LIB="$B/lib/libloom_test_functions.so"
export LOOM_BENCH_FUNCTIONS_LIB="$B/lib/libloom_bench_functions.so"
nvidia-smi -L
"$B/bin/loom_gpu_tests" 2>&1 | tee "${OUT:-/tmp}/gpu_tests.log"
"$B/bin/loom-gpu-bench" 2>&1 | tee "${OUT:-/tmp}/gpu_bench.log"
if [ -d "$B/py" ]; then
  export PYTHONPATH="$B/py" PYTHONUNBUFFERED=1
  python3 -m pytest -q -p no:cacheprovider tests/python/test_collective.py \
    tests/python/test_scheduling.py tests/python/test_api.py \
    -k "nccl or gpu or GPU" 2>&1 |
    tee "${OUT:-/tmp}/gpu_pytest.log"
fi
RUN
chmod +x "$OUT/run.sh"
du -sh "$OUT"
