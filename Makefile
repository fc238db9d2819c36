# The two commands: `make demo` and `make test`. Both install what is
# missing, then build into the one build directory, build/.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
# The Python venv (numpy, cloudpickle, pybind11, pytest from PyPI) that
# builds the extension and runs the Python tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PY_FLAGS = -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) \
  -DPYBIND11_FINDPYTHON=ON -DPython_EXECUTABLE=$(abspath $(PY))

# ccache: paths under the checkout hash as relative ones, so that another
# clone of the repository (CI's fresh one) reuses what this one compiled.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps venv configure build install-python test demo bench clean format

all: build

deps:
	@bash scripts/install-deps.sh

$(VENV)/.installed: python_bindings/requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r $<
	@touch $@

venv: $(VENV)/.installed

$(BUILD)/build.ninja: | $(VENV)/.installed
	@$(MAKE) --no-print-directory deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) $(PY_FLAGS)

configure: $(BUILD)/build.ninja

build: deps venv configure
	cmake --build $(BUILD) -j $(JOBS)

# The package into the venv, packed from the one build directory.
install-python: build
	LOOM_BUILD_DIR=$(abspath $(BUILD)) $(PY) -m pip install -q \
	  --disable-pip-version-check --no-build-isolation --force-reinstall \
	  --no-deps ./python_bindings

test: build install-python
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300
	$(PY) -m pytest -q tests/python

demo: build install-python
	PYTHON=$(abspath $(PY)) bash examples/demo.sh $(BUILD)

bench: build
	$(BUILD)/bin/loom-bench

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
