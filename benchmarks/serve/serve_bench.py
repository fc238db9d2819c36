"""benchmarks/serve: HTTP serving, Loom beside Ray Serve, with wrk.

    python benchmarks/serve/serve_bench.py                 # Loom only
    python benchmarks/serve/serve_bench.py --backend both  # and Ray Serve

Two deployments, each behind its HTTP ingress: `noop` (returns "ok") and
`model` (a batched numpy "model": a JSON vector in, a 256x256 float32
matrix product over the batch, a number out; @serve.batch with
max_batch_size 32 and a 5 ms wait). For each, concurrency 1 to 256 on
keep-alive connections (wrk, 1 thread), requests/s and p50/p99 latency.
Also: the p50 of a static handler served by the same HTTP server (Loom's
ingress answers /-/healthz itself; so does Ray's proxy), to report the
latency serving adds; and the batched model at the concurrency that gives
about 90% of its peak, with a 100 ms deadline (X-Loom-Deadline-Ms): its p99
and how many were refused.

wrk runs on CPU 0 and the system under test on CPU 1 (taskset), each
backend in a server process of its own (the cluster inherits the CPU).
Ray Serve runs from a venv this script makes with ray[serve] from PyPI
(--ray-venv, default build/ray-serve-venv). One JSON line per result:
{"name": ..., "value": ..., "unit": ...}."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VECTOR = json.dumps([0.5] * 256)


def emit(name, value, unit):
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}),
          flush=True)


def wrk(url, concurrency, duration, token, body=None, headers=None):
    """(requests/s, p50 ms, p99 ms, non-2xx) from one wrk run on CPU 0."""
    cmd = ["taskset", "-c", "0", "wrk", "-t1", f"-c{concurrency}",
           f"-d{duration}s", "--latency", "--timeout", "10s", url]
    if token:
        cmd[5:5] = ["-H", f"Authorization: Bearer {token}"]
    for h in headers or ():
        cmd[5:5] = ["-H", h]
    script = None
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\n'
                     f"wrk.body = {json.dumps(body)}\n"
                     'wrk.headers["Content-Type"] = "application/json"\n')
        script.close()
        cmd[5:5] = ["-s", script.name]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         check=True).stdout
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, _ms(lat["50"]), _ms(lat["99"]), \
        int(errors.group(1)) if errors else 0


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" \
        else value


# ---- the servers (run as `serve_bench.py --serve loom|ray`) ---------------

def serve_loom():
    import loom
    from loom import serve
    root = tempfile.mkdtemp(prefix="loom-serve-bench-")
    os.environ["LOOM_SESSION_ROOT"] = root
    loom.init(num_cpus=1)
    serve.start(http_options={"port": 0, "host": "127.0.0.1"})
    _deploy(serve, numpy_model=True)
    proxy = next(iter(serve.status().proxies.values()))
    session = loom._core.session_dir()
    with open(os.path.join(session, "auth_token")) as f:
        token = f.read().strip()
    print(json.dumps({"port": proxy["port"], "token": token,
                      "pid": os.getpid()}), flush=True)
    sys.stdin.read()  # until the benchmark is done
    serve.shutdown()
    loom.shutdown()
    shutil.rmtree(root, ignore_errors=True)


def serve_ray():
    import socket
    import ray
    from ray import serve
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    _deploy(serve, numpy_model=True)
    print(json.dumps({"port": port, "token": "", "pid": os.getpid()}),
          flush=True)
    sys.stdin.read()
    serve.shutdown()
    ray.shutdown()


def _deploy(serve, numpy_model):
    import numpy as np

    @serve.deployment(ray_actor_options={"num_cpus": 0},
                      max_ongoing_requests=256)
    class Noop:
        def __call__(self, request):
            return "ok"

    @serve.deployment(ray_actor_options={"num_cpus": 0},
                      max_ongoing_requests=256)
    class Model:
        def __init__(self):
            rng = np.random.default_rng(0)
            self.w = rng.standard_normal((256, 256), dtype=np.float32)

        @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
        async def __call__(self, requests):
            xs = np.array([json.loads(await r.body()) for r in requests],
                          dtype=np.float32)
            ys = (xs @ self.w).sum(axis=1)
            return [float(y) for y in ys]

    @serve.deployment(ray_actor_options={"num_cpus": 0},
                      max_ongoing_requests=1, max_queued_requests=1)
    class Busy:
        async def __call__(self, request):
            import asyncio
            await asyncio.sleep(30)
            return "late"

    serve.run(Noop.bind(), name="noop", route_prefix="/noop")
    serve.run(Model.bind(), name="model", route_prefix="/model")
    serve.run(Busy.bind(), name="busy", route_prefix="/busy")


# ---- the benchmark ----------------------------------------------------------

def start_server(backend, python):
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    p = subprocess.Popen(["taskset", "-c", "1", python, __file__, "--serve",
                          backend], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env,
                         cwd=REPO)
    line = p.stdout.readline()
    if not line:
        p.wait()
        raise RuntimeError(f"the {backend} server did not start")
    return p, json.loads(line)


def settle(url, token, body=None, timeout_s=120):
    """Waits until one request is answered within a second: a server that
    fell behind (Ray Serve at high concurrency keeps working through
    requests whose clients left) must not bleed into the next run."""
    import urllib.error
    import urllib.request
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body.encode() if body is not None else None
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            req = urllib.request.Request(url, data=data, headers=headers)
            urllib.request.urlopen(req, timeout=30).read()
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - t < 1.0:
            return
        time.sleep(1)


class Server:
    """A backend's server process (on CPU 1) for one part of the run: a
    server that fell behind (Ray Serve keeps working through requests
    whose clients left) must not slow the next part."""

    def __init__(self, backend, python):
        self.process, info = start_server(backend, python)
        self.port, self.token = info["port"], info["token"]
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def sweep(backend, s, workload, body, concurrencies, duration, static_p50,
          fresh=None):
    """requests/s, p50 and p99 at each concurrency; the peak (rps, c).
    fresh(): a new server for each concurrency (see bench)."""
    peak = (0, 0)
    for c in concurrencies:
        if fresh is not None:
            s.__exit__()
            s = fresh()
        settle(s.base + "/" + workload, s.token, body)  # and warms up
        rps, p50, p99, bad = wrk(s.base + "/" + workload, c, duration,
                                 s.token, body=body)
        emit(f"{backend}_serve_{workload}_c{c}_rps", rps, "req/s")
        emit(f"{backend}_serve_{workload}_c{c}_p50_ms", p50, "ms")
        emit(f"{backend}_serve_{workload}_c{c}_p99_ms", p99, "ms")
        if bad:
            emit(f"{backend}_serve_{workload}_c{c}_non_2xx", bad, "responses")
        if workload == "noop" and c == 1:
            emit(f"{backend}_serve_added_latency_ms", p50 - static_p50, "ms")
        if rps > peak[0]:
            peak = (rps, c)
    return peak


def deadline_run(s, peak, duration):
    """The batched model at about 90% of its peak rate, with a deadline."""
    target = 0.9 * peak[0]
    best = None
    for c in range(1, peak[1] + 1):  # the concurrency nearest 90%
        rps, _, _, _ = wrk(s.base + "/model", c, 2, s.token, body=VECTOR)
        if best is None or abs(rps - target) < abs(best[0] - target):
            best = (rps, c)
        if rps >= target:
            break
    rps, _, p99, bad = wrk(s.base + "/model", best[1], duration, s.token,
                           body=VECTOR, headers=["X-Loom-Deadline-Ms: 100"])
    emit("loom_serve_model_90pct_peak_rps", rps, "req/s")
    emit("loom_serve_model_90pct_peak_p99_ms_deadline_100", p99, "ms")
    emit("loom_serve_model_90pct_peak_refused", bad, "responses")


def bench(backend, python, concurrencies, duration, parts):
    static = (0, 0, 0, 0)
    with Server(backend, python) as s:
        static = wrk(s.base + "/-/healthz", 1, duration, s.token)
        emit(f"{backend}_static_handler_p50_ms", static[1], "ms")
        if "static" in parts:
            refusal = refusal_p99(s.port, s.token)
            if refusal is not None:
                emit(f"{backend}_serve_503_p99_ms", refusal, "ms")
    if "noop" in parts:
        with Server(backend, python) as s:
            sweep(backend, s, "noop", None, concurrencies, duration,
                  static[1])
    if "model" not in parts:
        return
    # The batched model on a fresh server for each concurrency: Ray Serve
    # 2.40's @serve.batch stopped answering once clients had left in the
    # middle of a batch (as wrk's do at the end of every run): every
    # request after that hung for 30 s.
    s = Server(backend, python)
    peak = sweep(backend, s, "model", VECTOR, concurrencies, duration,
                 static[1], fresh=lambda: Server(backend, python))
    s.__exit__()
    if backend == "loom":  # deadlines are Loom's
        with Server(backend, python) as s:
            settle(s.base + "/model", s.token, VECTOR)
            deadline_run(s, peak, duration)


def refusal_p99(port, token, n=2000):
    """p99 of the time to a 503, from one client on a keep-alive connection
    while the deployment's one slot and one queue place are taken: an
    upper bound of the server's own time (it includes the client's)."""
    import http.client
    import threading
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def hold():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/busy", headers=headers)
        try:
            c.getresponse().read()
        except OSError:
            pass

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(2)]
    for t in holders:
        t.start()
    time.sleep(1)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", "/busy", headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 503:
            return None  # this backend does not refuse (Ray: no limit hit)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[int(0.99 * len(times))]


def ray_python(venv):
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "ray[serve]==2.40.0",
                        "numpy"], check=True)
    return python


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", choices=["loom", "ray"])
    ap.add_argument("--backend", choices=["loom", "ray", "both"],
                    default="loom")
    ap.add_argument("--concurrency", default="1,4,16,64,256")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--parts", default="static,noop,model",
                    help="which parts to run")
    ap.add_argument("--ray-venv",
                    default=os.path.join(REPO, "build", "ray-serve-venv"))
    args = ap.parse_args()
    if args.serve == "loom":
        return serve_loom()
    if args.serve == "ray":
        return serve_ray()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: run scripts/install-deps.sh")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    parts = args.parts.split(",")
    if args.backend in ("loom", "both"):
        bench("loom", sys.executable, concurrencies, args.duration, parts)
    if args.backend in ("ray", "both"):
        bench("ray", ray_python(args.ray_venv), concurrencies,
              args.duration, parts)


if __name__ == "__main__":
    main()
