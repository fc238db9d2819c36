"""The `loom` console script: runs the command-line binary the package
carries."""
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    binary = os.path.join(here, "bin", "loom")
    if not os.path.exists(binary):
        sys.exit(f"loom: the package has no {binary} (a broken install?)")
    os.environ.setdefault("LOOM_BIN_DIR", os.path.join(here, "bin"))
    # `loom serve` runs Python: this interpreter, whose loom this is.
    os.environ.setdefault("LOOM_PYTHON", sys.executable)
    os.execv(binary, [binary] + sys.argv[1:])
