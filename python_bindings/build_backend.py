"""A PEP 517 backend that packs the one CMake build directory into a wheel.

`pip install --no-build-isolation ./python_bindings` builds the extension
and the daemons in the repository's build directory ($LOOM_BUILD_DIR, else
../build) with Ninja, reusing what is built, and packs:

    loom/*.py, loom/_core.*.so    the package and its extension
    loom/lib/libloom*.so          the runtime libraries
    loom/bin/loom, loom-gcs, loom-raylet, loom-worker

so that `pip install` alone gives `loom.init()` and the `loom` command.
"""
import base64
import hashlib
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

NAME = "loom"
VERSION = "0.1.0"
HERE = Path(__file__).resolve().parent
BINARIES = ["loom", "loom-gcs", "loom-raylet", "loom-worker"]
TARGETS = ["_core", "loom-cli", "loom-gcs", "loom-raylet", "loom-worker"]


def _build_dir():
    return Path(os.environ.get("LOOM_BUILD_DIR", HERE.parent / "build"))


def _configured_for_python(build):
    # pybind11 found, and still there (an isolated build's is deleted).
    cache = build / "CMakeCache.txt"
    m = cache.exists() and re.search(r"^pybind11_DIR:\w+=(/.*)$",
                                     cache.read_text(), re.M)
    return bool(m) and Path(m.group(1)).is_dir()


def _cmake_build(build):
    if not (build / "build.ninja").exists() or \
            not _configured_for_python(build):
        import pybind11
        args = ["cmake", "-S", str(HERE.parent), "-B", str(build),
                f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
                "-DPYBIND11_FINDPYTHON=ON",
                f"-DPython_EXECUTABLE={sys.executable}"]
        if not (build / "CMakeCache.txt").exists():
            args += ["-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
        subprocess.check_call(args)
    subprocess.check_call(["cmake", "--build", str(build), "--target"] +
                          TARGETS)


def _tag():
    impl = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{impl}-{impl}-{plat}"


def _files(build):
    """(path in the wheel, file on disk, executable) for every file."""
    out = []
    for py in sorted((HERE / "loom").rglob("*.py")):
        out.append((f"loom/{py.relative_to(HERE / 'loom')}", py, False))
    ext = sorted((build / "lib").glob("_core.*.so"))
    if not ext:
        raise RuntimeError(f"no _core extension in {build}/lib")
    out.append((f"loom/{ext[0].name}", ext[0], False))
    for lib in ("libloom.so", "libloom_proto.so"):
        out.append((f"loom/lib/{lib}", build / "lib" / lib, False))
    for b in BINARIES:
        out.append((f"loom/bin/{b}", build / "bin" / b, True))
    return out


def _metadata():
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
            "Summary: Loom: tasks, actors and a shared-memory object store\n"
            "Requires-Python: >=3.9\nRequires-Dist: numpy\n"
            "Requires-Dist: cloudpickle\n")


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return f"{path},sha256={digest.rstrip(b'=').decode()},{len(data)}"


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    build = _build_dir()
    _cmake_build(build)
    tag = _tag()
    wheel = Path(wheel_directory) / f"{NAME}-{VERSION}-{tag}.whl"
    dist = f"{NAME}-{VERSION}.dist-info"
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        def add(path, data, executable=False):
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            # A regular file (0o100000) with its mode: pip keeps the x bit.
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            records.append(_record_line(path, data))

        for path, src, executable in _files(build):
            add(path, Path(src).read_bytes(), executable)
        add(f"{dist}/METADATA", _metadata().encode())
        add(f"{dist}/WHEEL", (f"Wheel-Version: 1.0\nGenerator: loom\n"
                              f"Root-Is-Purelib: false\nTag: {tag}\n").encode())
        add(f"{dist}/entry_points.txt",
            b"[console_scripts]\nloom = loom._cli:main\n")
        records.append(f"{dist}/RECORD,,")
        z.writestr(f"{dist}/RECORD", "\n".join(records) + "\n")
    return wheel.name


def get_requires_for_build_wheel(config_settings=None):
    return ["pybind11"]
