"""Workers' stdout and stderr, streamed to the driver.

A Python worker writes each line it prints, prefixed with ``(pid=N)``, to
``<session>/logs/python-<job>.out`` (one write per line, O_APPEND). The
driver tails that file in every session directory of this machine and
prints what arrives on its own stdout, as Ray's log monitor does.
"""
import os
import sys
import threading

from loom import _core


class WorkerStream:
    """A worker's sys.stdout / sys.stderr replacement."""

    def __init__(self, session_dir, fallback, is_err):
        self._session_dir = session_dir
        self._fallback = fallback
        self._is_err = is_err
        self._fd = None
        self._job = None
        self._partial = ""
        self._lock = threading.Lock()
        self._prefix = f"(pid={os.getpid()}) "

    def _target(self):
        job = None
        try:
            job = _core.job_id()
        except Exception:  # noqa: BLE001 - no job yet
            pass
        if job != self._job and job and self._session_dir:
            if self._fd is not None:
                os.close(self._fd)
            path = os.path.join(self._session_dir, "logs", f"python-{job}.out")
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                               0o644)
            self._job = job
        return self._fd

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not "
                            f"{type(text).__name__}")
        with self._lock:
            self._partial += text
            if "\n" not in self._partial:
                return len(text)
            *lines, self._partial = self._partial.split("\n")
            self._emit(lines)
        return len(text)

    def _emit(self, lines):
        data = "".join(f"{self._prefix}{line}\n" for line in lines)
        fd = self._target()
        if fd is None:
            self._fallback.write(data)
            self._fallback.flush()
        else:
            os.write(fd, data.encode("utf-8", "replace"))

    def flush(self):
        with self._lock:
            if self._partial:
                self._emit([self._partial])
                self._partial = ""

    def isatty(self):
        return False

    def fileno(self):
        return self._fallback.fileno()

    @property
    def encoding(self):
        return "utf-8"


class DriverTail:
    """Prints what this job's workers print, from every session directory
    of this machine."""

    def __init__(self, job, session_dirs):
        self._name = f"python-{job}.out"
        self._dirs = list(session_dirs)
        self._offsets = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loom-logs",
                                        daemon=True)
        self._thread.start()

    def add_dirs(self, dirs):
        for d in dirs:
            if d not in self._dirs:
                self._dirs.append(d)

    def _poll(self):
        out = []
        for d in list(self._dirs):
            path = os.path.join(d, "logs", self._name)
            try:
                with open(path, "rb") as f:
                    f.seek(self._offsets.get(path, 0))
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n")
            if end < 0:
                continue
            self._offsets[path] = self._offsets.get(path, 0) + end + 1
            out.append(data[:end + 1].decode("utf-8", "replace"))
        if out:
            sys.stdout.write("".join(out))
            sys.stdout.flush()

    def _run(self):
        while not self._stop.wait(0.05):
            try:
                self._poll()
            except Exception:  # noqa: BLE001 - never kill the driver
                pass

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=1)
        try:
            self._poll()
        except Exception:  # noqa: BLE001
            pass
