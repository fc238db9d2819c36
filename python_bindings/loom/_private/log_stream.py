"""Workers' stdout and stderr, streamed to the driver.

A Python worker writes each line it prints, prefixed with ``(pid=N)``, to
``<session>/logs/python-<job>.out`` (stdout) or ``.err`` (stderr), one
write per line, O_APPEND. Its node's raylet follows those files and
publishes new lines to the head (src/raylet/log_monitor.h); the job's
driver, on whatever node, long-polls the head for them and prints each as
``(pid=N, ip=IP) line`` on its own stdout or stderr (DriverPrinter).
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
            ext = "err" if self._is_err else "out"
            path = os.path.join(self._session_dir, "logs",
                                f"python-{job}.{ext}")
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


class DriverPrinter:
    """Prints what this job's workers print, on every node: a thread that
    takes the lines the core worker receives from the head."""

    # How long stop() waits for the last lines (raylets publish them first).
    LAST_LINES_MS = 2000

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loom-logs",
                                        daemon=True)
        self._thread.start()

    @staticmethod
    def _print(lines):
        out = [text for is_err, text in lines if not is_err]
        err = [text for is_err, text in lines if is_err]
        for stream, texts in ((sys.stdout, out), (sys.stderr, err)):
            if texts:
                stream.write("\n".join(texts) + "\n")
                stream.flush()

    def _run(self):
        while True:
            try:
                lines = _core.take_worker_logs(1000)
            except Exception:  # noqa: BLE001 - never kill the driver
                return
            if lines:
                try:
                    self._print(lines)
                except Exception:  # noqa: BLE001
                    pass
            elif self._stop.is_set():
                return

    def stop(self):
        """Prints what workers printed until now, then stops."""
        self._stop.set()
        try:
            _core.close_worker_logs(self.LAST_LINES_MS)
        except Exception:  # noqa: BLE001 - logs are best effort
            pass
        self._thread.join(timeout=5)
