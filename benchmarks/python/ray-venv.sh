#!/usr/bin/env bash
# benchmarks/python/ray-venv.sh: makes the virtual environment that
# `ray_perf.py --backend both` runs in, one interpreter that imports both
# `ray` and `loom`.
#
#   bash benchmarks/python/ray-venv.sh                 # /tmp/loom-ray-venv
#   bash benchmarks/python/ray-venv.sh DIR             # a venv in DIR
#   DIR/bin/python benchmarks/python/ray_perf.py --backend both
#
# Ray (and numpy, cloudpickle, pybind11) come from PyPI; RAY_VERSION=2.60.0
# pins Ray. Loom is packed from the build directory, as `make
# install-python` does ($LOOM_BUILD_DIR, default build/ in this checkout);
# that step runs `cmake --build` on it, so build first (`make build`) and do
# not run this while another build uses the same directory. Kept outside the
# repository: Ray is large and is nothing the project's own venv needs.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${1:-/tmp/loom-ray-venv}
python=${PYTHON:-python3}
build=${LOOM_BUILD_DIR:-$repo/build}
ray_spec=ray${RAY_VERSION:+==$RAY_VERSION}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q "$ray_spec" numpy cloudpickle pybind11
LOOM_BUILD_DIR=$build "${pip[@]}" install -q --no-build-isolation \
  --force-reinstall --no-deps "$repo/python_bindings"

# One interpreter, both backends.
"$venv/bin/python" - <<'EOF'
import loom
import ray
print(f"ray {ray.__version__} and loom from {loom.__file__}")
EOF
