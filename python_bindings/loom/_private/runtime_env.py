"""runtime_env: what a job's, task's or actor's workers need beyond the
driver's interpreter, on hosts that do not share the driver's files.

    {"env_vars": {"K": "v"},            # set in the workers' environment
     "working_dir": "./project",        # the workers' cwd, on sys.path
     "py_modules": ["./mylib", "x.py"], # importable in the workers
     "pip": ["toolz==0.12.1", "./dist/pkg-1.0-py3-none-any.whl"],
     "excludes": ["*.ckpt", "data/"]}   # left out of the directories

The driver zips each local directory (deterministically: the same content
gives the same zip), names it by its SHA-256 and uploads it once into the
head's key-value store (in chunks). A worker sets its environment up before
its first task: each package is fetched and unpacked once per node under
<session>/runtime_resources/, guarded by a file lock; `pip` installs into a
venv per requirements hash, once per node, made with the driver's
interpreter and its packages visible (--system-site-packages, and a .pth
file naming the driver's site-packages, so that pip adds only what they
lack); the venv's site-packages then go first on the worker's sys.path. The install's output
is in <session>/logs/runtime_env-pip-<hash>.log; a failed install fails the
tasks with RuntimeEnvSetupError naming that log.

Workers are pooled per environment: the raylet keys its fork servers and
workers by it (WorkerRuntime.env_vars and .runtime_env), so a worker never
serves two environments. A task or actor inherits its caller's environment
(the job's, or the worker's it runs in); its own runtime_env overrides it
field by field, env_vars merged.
"""
import fnmatch
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

from loom import _core
from loom import exceptions

FIELDS = ("env_vars", "working_dir", "py_modules", "pip", "excludes")
KV_PREFIX = "runtime_env:"
CHUNK = 1 << 20  # bytes per key-value entry
ENV_VARIABLE = "LOOM_RUNTIME_ENV"  # the packed environment, in workers


def validate(env):
    """A copy of `env` checked (TypeError / ValueError, as Ray)."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(env).__name__}")
    unknown = set(env) - set(FIELDS)
    if unknown:
        raise ValueError(f"runtime_env does not support {sorted(unknown)}; "
                         f"supported: {', '.join(FIELDS)}")
    out = dict(env)
    ev = out.get("env_vars")
    if ev is not None:
        if not isinstance(ev, dict) or not all(
                isinstance(k, str) and isinstance(v, str)
                for k, v in ev.items()):
            raise TypeError("runtime_env['env_vars'] must map str to str")
        if any(not k or "=" in k for k in ev):
            raise ValueError("runtime_env['env_vars'] names must be non-empty "
                             "and hold no '='")
    wd = out.get("working_dir")
    if wd is not None and not isinstance(wd, (str, os.PathLike)):
        raise TypeError("runtime_env['working_dir'] must be a path")
    for k in ("py_modules", "excludes"):
        v = out.get(k)
        if v is not None and (not isinstance(v, (list, tuple)) or not all(
                isinstance(x, (str, os.PathLike)) for x in v)):
            raise TypeError(f"runtime_env[{k!r}] must be a list of paths")
    pip = out.get("pip")
    if isinstance(pip, dict):
        pip = pip.get("packages")
    if pip is not None:
        if not isinstance(pip, (list, tuple)) or not all(
                isinstance(x, str) for x in pip):
            raise TypeError("runtime_env['pip'] must be a list of "
                            "requirements (or {'packages': [...]})")
        out["pip"] = list(pip)
    return out


def merge(parent, child):
    """`child` over `parent`, field by field; env_vars merged."""
    if not child:
        return dict(parent or {})
    out = dict(parent or {})
    for k, v in child.items():
        if k == "env_vars" and out.get("env_vars"):
            out[k] = {**out["env_vars"], **v}
        else:
            out[k] = v
    return out


# --- Driver side: packing and uploading ------------------------------------

_uploaded = {}  # (path, excludes) -> "pkg:<sha>", for this process


def forget_uploads():
    _uploaded.clear()


def _excluded(rel, patterns):
    parts = rel.split("/")
    for p in patterns:
        p = p.rstrip("/")
        if fnmatch.fnmatch(rel, p) or any(fnmatch.fnmatch(x, p)
                                           for x in parts):
            return True
    return False


def _zip(path, excludes, keep_name):
    """Deterministic zip bytes of a directory (or one file); with keep_name
    its entries start with its own name (a module)."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"runtime_env: {path} does not exist")
    base = os.path.dirname(path) if keep_name else path
    files = []
    if os.path.isfile(path):
        files.append(path)
        base = os.path.dirname(path)
    else:
        for root, dirs, names in os.walk(path):
            dirs.sort()
            rel_root = os.path.relpath(root, path).replace(os.sep, "/")
            dirs[:] = [d for d in dirs if d != "__pycache__" and not _excluded(
                d if rel_root == "." else f"{rel_root}/{d}", excludes)]
            for n in sorted(names):
                rel = n if rel_root == "." else f"{rel_root}/{n}"
                if not n.endswith(".pyc") and not _excluded(rel, excludes):
                    files.append(os.path.join(root, n))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            arc = os.path.relpath(f, base).replace(os.sep, "/")
            info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (os.stat(f).st_mode & 0o777) << 16
            with open(f, "rb") as fh:
                z.writestr(info, fh.read(), zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _upload(data):
    """Puts `data` into the head's store once; its name."""
    sha = hashlib.sha256(data).hexdigest()[:32]
    key = KV_PREFIX + sha
    if _core.kv_get(key) is None:
        n = max(1, (len(data) + CHUNK - 1) // CHUNK)
        for i in range(n):
            _core.kv_put(f"{key}:{i}", data[i * CHUNK:(i + 1) * CHUNK])
        _core.kv_put(key, str(n).encode())  # last: present means complete
    return "pkg:" + sha


def _package(path, excludes, keep_name):
    path = os.path.abspath(os.fspath(path))
    cache_key = (path, tuple(excludes), keep_name)
    uri = _uploaded.get(cache_key)
    if uri is None:
        uri = _upload(_zip(path, excludes, keep_name))
        _uploaded[cache_key] = uri
    return uri


def pack(env):
    """(env_vars, the rest as canonical JSON) for the core worker; local
    directories and wheels are uploaded first. Needs a connected driver or
    worker. Fields already packed (in a worker) pass through."""
    if not env:
        return {}, ""
    excludes = list(env.get("excludes") or [])
    out = {}
    if env.get("env_vars"):
        out["env_vars"] = dict(env["env_vars"])
    wd = env.get("working_dir")
    if wd is not None:
        wd = os.fspath(wd)
        out["working_dir"] = wd if wd.startswith("pkg:") else \
            _package(wd, excludes, keep_name=False)
    if env.get("py_modules"):
        out["py_modules"] = [
            m if str(m).startswith("pkg:") else
            _package(m, excludes, keep_name=True)
            for m in map(os.fspath, env["py_modules"])]
    if env.get("pip"):
        reqs = []
        for r in env["pip"]:
            if r.endswith(".whl") and os.path.isfile(r):
                # A local wheel: shipped, installed by its file name.
                r = _package(r, [], keep_name=False) + "/" + \
                    os.path.basename(r)
            reqs.append(r)
        out["pip"] = reqs
    return dict(env.get("env_vars") or {}), \
        json.dumps(out, sort_keys=True) if out else ""


def unpack(packed):
    """The runtime_env dict a packed one stands for (a worker's: its tasks
    inherit it)."""
    return json.loads(packed) if packed else {}


# --- Worker side: setting the environment up --------------------------------

class _Lock:
    def __init__(self, path):
        self._path = path

    def __enter__(self):
        import fcntl
        self._fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self._fd)


def _fetch(uri, root):
    """The directory `uri` unpacks to on this node (once per node)."""
    sha = uri[len("pkg:"):].split("/")[0]
    dest = os.path.join(root, sha)
    if os.path.isdir(dest):
        return dest
    with _Lock(dest + ".lock"):
        if os.path.isdir(dest):
            return dest
        key = KV_PREFIX + sha
        n = _core.kv_get(key)
        if n is None:
            raise exceptions.RuntimeEnvSetupError(
                f"package {uri} is not in the head's store (was it uploaded "
                "by this cluster's driver?)")
        data = b"".join(_core.kv_get(f"{key}:{i}") or b""
                        for i in range(int(n)))
        if hashlib.sha256(data).hexdigest()[:32] != sha:
            raise exceptions.RuntimeEnvSetupError(
                f"package {uri} arrived damaged (its hash differs)")
        tmp = f"{dest}.tmp-{os.getpid()}"
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            z.extractall(tmp)
            for info in z.infolist():  # permissions (zipfile drops them)
                mode = info.external_attr >> 16
                if mode:
                    os.chmod(os.path.join(tmp, info.filename), mode)
        os.rename(tmp, dest)
    return dest


def _layer(site):
    """Makes the venv see this interpreter's packages (a virtualenv's too,
    which --system-site-packages alone would not), so that pip installs
    only what they lack."""
    parents = [p for p in sys.path
               if p.endswith("site-packages") and os.path.isdir(p)]
    with open(os.path.join(site, "_loom_parent.pth"), "w") as f:
        f.write("\n".join(parents) + "\n")


def _venv(reqs, root, logs):
    """A venv with `reqs` installed, once per node; its site-packages."""
    digest = hashlib.sha256("\n".join([sys.version] + reqs).encode())
    h = digest.hexdigest()[:16]
    dest = os.path.join(root, "pip", h)
    site = os.path.join(dest, "lib", f"python{sys.version_info[0]}."
                        f"{sys.version_info[1]}", "site-packages")
    ready = os.path.join(dest, ".ready")
    if os.path.exists(ready):
        return site
    os.makedirs(os.path.join(root, "pip"), exist_ok=True)
    os.makedirs(logs, exist_ok=True)
    log = os.path.join(logs, f"runtime_env-pip-{h}.log")
    with _Lock(dest + ".lock"):
        if os.path.exists(ready):
            return site
        args = []
        for r in reqs:
            if r.startswith("pkg:"):  # a shipped wheel
                uri, name = r.rsplit("/", 1)
                args.append(os.path.join(_fetch(uri, root), name))
            else:
                args.append(r)
        with open(log, "a") as out:
            out.write(f"installing {reqs} into {dest}\n")
            out.flush()
            steps = [[sys.executable, "-m", "venv", "--system-site-packages",
                      dest],
                     [os.path.join(dest, "bin", "python"), "-m", "pip",
                      "install", "--disable-pip-version-check",
                      "--no-input", *args]]
            for i, step in enumerate(steps):
                if i == 1:
                    _layer(site)
                r = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT)
                if r.returncode != 0:
                    with open(log) as f:
                        tail = f.read()[-2000:]
                    node = _core.node_id()
                    raise exceptions.RuntimeEnvSetupError(
                        f"pip could not install {reqs} (exit {r.returncode};"
                        f" log: {log}, from any machine: `loom logs "
                        f"{os.path.basename(log)} --node-id {node}`):\n{tail}")
        open(ready, "w").close()
    return site


def apply(env, session_dir):
    """Sets this worker process up for `env` (before its first task)."""
    root = os.path.join(session_dir or "/tmp", "runtime_resources")
    os.makedirs(root, exist_ok=True)
    logs = os.path.join(session_dir or "/tmp", "logs")
    for uri in env.get("py_modules") or []:
        sys.path.insert(0, _fetch(uri, root))
    if env.get("pip"):
        sys.path.insert(0, _venv(env["pip"], root, logs))
    wd = env.get("working_dir")
    if wd:
        d = _fetch(wd, root)
        os.chdir(d)
        sys.path.insert(0, d)
