"""loom.serve with real HTTP clients against a real cluster: routes,
composition, handles, batching, deadlines, backpressure, bad requests, a
killed replica and a rolling update under load, autoscaling."""
import concurrent.futures
import contextlib
import http.client
import json
import os
import threading
import time

import pytest

import loom
from loom import serve
from loom.serve.exceptions import (BackPressureError, DeadlineExceededError)
from conftest import sample, scrape, wait_until

pytestmark = pytest.mark.loom_timeout(240)


@pytest.fixture(scope="module")
def cluster():
    from loom.cluster_utils import Cluster
    if loom.is_initialized():
        loom.shutdown()
    c = Cluster(head_node_args={"num_cpus": 2})
    c.add_node(num_cpus=1)
    c.wait_for_nodes(timeout=30)
    loom.init(address=c.address)
    serve.start(http_options={"port": 0})
    with open(os.path.join(c.head_node.session_dir, "auth_token")) as f:
        token = f.read().strip()
    proxies = wait_until(lambda: _healthy_proxies(2), timeout=60,
                         what="a proxy on each node")
    yield {"token": token, "proxies": proxies, "cluster": c}
    serve.shutdown()
    loom.shutdown()
    c.shutdown()


def _healthy_proxies(n):
    p = [v for v in serve.status().proxies.values()
         if v["state"] == "HEALTHY"]
    return p if len(p) == n else None


class Client:
    """One keep-alive HTTP connection to a proxy."""

    def __init__(self, proxy, token):
        self.conn = http.client.HTTPConnection(proxy["node_ip"],
                                               proxy["port"], timeout=60)
        self.token = token

    def request(self, method, path, body=None, headers=None, token=True):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {self.token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError,
                ConnectionResetError):
            # The server closed an idle keep-alive connection: reconnect,
            # as any HTTP client does.
            self.conn.close()
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
        data = r.read()
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return r.status, dict(r.getheaders()), data


def client(cluster, i=0):
    return Client(cluster["proxies"][i], cluster["token"])


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0})
class Echo:
    def __init__(self, greeting):
        self.greeting = greeting

    async def __call__(self, request):
        body = await request.body()
        return {"greeting": self.greeting, "method": request.method,
                "path": request.url.path, "q": request.query_params,
                "body": body.decode(), "pid": os.getpid()}

    def shout(self, text):
        return text.upper() + self.greeting


@serve.deployment(ray_actor_options={"num_cpus": 0})
def plain(request):
    if request.query_params.get("fail"):
        raise ValueError("asked to fail")
    return serve.Response(b"raw", status_code=201,
                          headers={"X-Extra": "yes"},
                          media_type="application/x-raw")


def test_http_routes_reach_the_right_deployment(cluster):
    serve.run(Echo.bind("hi"), name="echo", route_prefix="/echo")
    serve.run(plain.bind(), name="plain", route_prefix="/plain")
    for i in range(2):  # both nodes' proxies serve every route
        c = client(cluster, i)
        status, _, data = c.request("POST", "/echo/x?a=1", body="payload")
        assert status == 200, data
        got = json.loads(data)
        assert got["greeting"] == "hi" and got["method"] == "POST"
        assert got["path"] == "/echo/x" and got["q"] == {"a": "1"}
        assert got["body"] == "payload"
        status, headers, data = c.request("GET", "/plain")
        assert (status, data, headers["X-Extra"]) == (201, b"raw", "yes")
        assert headers["Content-Type"] == "application/x-raw"
    pids = set()
    c = client(cluster)
    for _ in range(20):
        pids.add(json.loads(c.request("GET", "/echo")[2])["pid"])
    assert len(pids) == 2  # both replicas answer
    from loom.util.state import list_actors
    nodes = {a["node_id"] for a in list_actors(limit=10000)
             if a["state"] == "ALIVE" and "echo#Echo" in (a["name"] or "")}
    assert len(nodes) == 2  # spread over the two nodes
    s = serve.status()
    assert s.applications["echo"].status == "RUNNING"
    assert s.applications["echo"].deployments["Echo"].replica_states == \
        {"RUNNING": 2}


@serve.deployment(ray_actor_options={"num_cpus": 0})
async def parse(request):
    return await request.json()


def test_bad_requests_get_the_right_4xx_and_the_server_serves_on(cluster):
    serve.run(parse.bind(), name="json", route_prefix="/json")
    c = client(cluster)
    assert c.request("GET", "/nowhere")[0] == 404
    assert c.request("GET", "/echo", token=False)[0] == 401
    bad = {"Authorization": "Bearer wrong"}
    assert c.request("GET", "/echo", headers=bad, token=False)[0] == 401
    status, _, data = c.request("GET", "/echo",
                                headers={"X-Loom-Deadline-Ms": "soon"})
    assert status == 400 and b"X-Loom-Deadline-Ms" in data
    assert c.request("GET", "/echo",
                     headers={"X-Loom-Priority": "high"})[0] == 400
    status, _, _ = c.request("POST", "/echo", body=b"x" * (65 << 20))
    assert status == 413
    status, _, data = c.request("POST", "/json", body=b"{not json")
    assert status == 400 and b"not JSON" in data
    assert c.request("POST", "/json", body=b'{"a": 1}')[2] == b'{"a": 1}'
    status, _, data = c.request("GET", "/plain?fail=1")
    assert status == 500 and b"asked to fail" in data
    assert client(cluster).request("GET", "/echo")[0] == 200


def test_handles_and_composition(cluster):
    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Doubler:
        def __call__(self, x):
            return 2 * x

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Front:
        def __init__(self, doubler):
            self.doubler = doubler

        async def __call__(self, request):
            x = int(request.query_params["x"])
            return {"y": await self.doubler.remote(x)}

        async def twice(self, x):
            return await self.doubler.remote(x) * 2

    handle = serve.run(Front.bind(Doubler.bind()), name="comp",
                       route_prefix="/comp")
    status, _, data = client(cluster).request("GET", "/comp?x=21")
    assert status == 200 and json.loads(data) == {"y": 42}
    assert handle.twice.remote(5).result(timeout_s=30) == 20
    echo = serve.get_app_handle("echo")
    assert echo.shout.remote("a").result() == "Ahi"
    with pytest.raises(AttributeError):
        echo.no_such_method.remote().result()


def test_backpressure_refuses_and_loses_nothing_accepted(cluster):
    @serve.deployment(max_ongoing_requests=1, max_queued_requests=2,
                      ray_actor_options={"num_cpus": 0})
    async def slow(request):
        import asyncio
        await asyncio.sleep(0.3)
        return "done"

    serve.run(slow.bind(), name="slow", route_prefix="/slow")

    def one(_):
        t = time.monotonic()
        status, headers, data = client(cluster).request("GET", "/slow")
        return status, headers.get("Retry-After"), data, \
            time.monotonic() - t

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(one, range(10)))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(ok) + len(refused) == 10, results
    assert 3 <= len(ok) <= 4 and refused, results  # 1 running + 2 queued
    assert all(r[2] == b"done" for r in ok)
    assert all(r[1] == "1" and r[3] < 0.25 for r in refused), refused
    handle = serve.get_app_handle("slow")
    calls = [handle.remote(None) for _ in range(8)]
    outcomes = []
    for call in calls:
        try:
            outcomes.append(call.result(timeout_s=30))
        except BackPressureError:
            outcomes.append("refused")
    assert "refused" in outcomes and outcomes.count("done") >= 3


def test_a_deadline_that_cannot_be_met_is_refused_at_once(cluster):
    @serve.deployment(ray_actor_options={"num_cpus": 0})
    async def takes_200ms(request):
        import asyncio
        await asyncio.sleep(0.2)
        return "ok"

    serve.run(takes_200ms.bind(), name="dl", route_prefix="/dl")
    c = client(cluster)
    assert c.request("GET", "/dl")[0] == 200  # measured: 200 ms a call
    assert c.request("GET", "/dl",
                     headers={"X-Loom-Deadline-Ms": "2000"})[0] == 200
    t = time.monotonic()
    status, _, data = c.request("GET", "/dl",
                                headers={"X-Loom-Deadline-Ms": "50"})
    assert status == 504 and b"deadline" in data
    assert time.monotonic() - t < 0.15  # refused, not waited for
    # The handle's router measures the run time with its own first call.
    handle = serve.get_app_handle("dl")
    assert handle.remote(None).result() == "ok"
    with pytest.raises(DeadlineExceededError):
        handle.options(deadline_ms=50).remote(None).result()


def test_batches_form_and_the_wait_holds(cluster):
    @serve.deployment(max_ongoing_requests=16,
                      ray_actor_options={"num_cpus": 0})
    class Batched:
        @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.3)
        async def __call__(self, requests):
            return [{"size": len(requests)} for _ in requests]

    serve.run(Batched.bind(), name="batch", route_prefix="/batch")
    t = time.monotonic()
    status, _, data = client(cluster).request("GET", "/batch")
    waited = time.monotonic() - t
    assert status == 200 and json.loads(data) == {"size": 1}
    assert 0.25 <= waited < 2, waited  # the batch waited its timeout
    barrier = threading.Barrier(4)

    def one(_):
        c = client(cluster)
        barrier.wait()
        return json.loads(c.request("GET", "/batch")[2])["size"]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        sizes = list(pool.map(one, range(4)))
    assert max(sizes) >= 2, sizes  # at least some went together
    # serve status shows the batch sizes the routers sent.
    wait_until(lambda: any(size >= 2 for size in serve.status().applications[
        "batch"].deployments["Batched"].stats["batch_sizes"]),
        timeout=30, what="batch sizes in serve status")


def _load(cluster, path, stop, results):
    c = client(cluster)
    while not stop.is_set():
        try:
            results.append(c.request("GET", path)[0])
        except (OSError, http.client.HTTPException) as e:
            results.append(repr(e))
            c = client(cluster)


@contextlib.contextmanager
def load(cluster, path, clients=3):
    """GETs on `path` from `clients` threads until the block ends; yields
    the list of what each got (a status, or the error)."""
    stop, results = threading.Event(), []
    threads = [threading.Thread(target=_load,
                                args=(cluster, path, stop, results))
               for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield results
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_a_killed_replica_under_load_loses_no_idempotent_request(cluster):
    c = client(cluster)
    with load(cluster, "/echo") as results:
        time.sleep(0.5)
        pid = json.loads(c.request("GET", "/echo")[2])["pid"]
        os.kill(pid, 9)
        time.sleep(1.0)
    assert results and all(r == 200 for r in results), \
        [r for r in results if r != 200][:5]
    wait_until(lambda: serve.status().applications["echo"]
               .deployments["Echo"].replica_states == {"RUNNING": 2},
               timeout=60, what="a replacement replica")
    pids = {json.loads(c.request("GET", "/echo")[2])["pid"]
            for _ in range(20)}
    assert pid not in pids


def test_a_rolling_update_under_load_fails_nothing(cluster):
    c = client(cluster)
    with load(cluster, "/echo") as results:
        time.sleep(0.3)
        serve.run(Echo.bind("hello"), name="echo", route_prefix="/echo")
        wait_until(lambda: all(
            json.loads(c.request("GET", "/echo")[2])["greeting"] == "hello"
            for _ in range(10)), timeout=60,
            what="the new version everywhere")
    assert len(results) > 20
    assert all(r == 200 for r in results), \
        [r for r in results if r != 200][:5]


def test_autoscaling_follows_a_ramp_up_and_back_down(cluster):
    @serve.deployment(max_ongoing_requests=2,
                      ray_actor_options={"num_cpus": 0},
                      autoscaling_config={
                          "min_replicas": 1, "max_replicas": 3,
                          "target_ongoing_requests": 1,
                          "upscale_delay_s": 0.5,
                          "downscale_delay_s": 2})
    async def work(request):
        import asyncio
        await asyncio.sleep(0.1)
        return "ok"

    serve.run(work.bind(), name="auto", route_prefix="/auto")

    def replicas():
        return serve.status().applications["auto"].deployments[
            "work"].target_replicas

    assert replicas() == 1
    with load(cluster, "/auto", clients=4) as results:
        wait_until(lambda: replicas() >= 2, timeout=60, what="upscaling")
    assert all(r == 200 for r in results)
    wait_until(lambda: replicas() == 1, timeout=60, what="downscaling")


def test_delete_removes_the_route(cluster):
    serve.delete("plain")
    assert "plain" not in serve.status().applications
    assert client(cluster).request("GET", "/plain")[0] == 404


def test_an_idempotency_key_runs_a_request_once(cluster):
    @serve.deployment(ray_actor_options={"num_cpus": 0},
                      max_ongoing_requests=8)
    class Counted:
        def __init__(self):
            self.runs = 0

        async def __call__(self, request):
            import asyncio
            self.runs += 1
            await asyncio.sleep(0.2)
            return {"run": self.runs}

        def count(self):
            return self.runs

    handle = serve.run(Counted.bind(), name="once", route_prefix="/once")
    key = {"Idempotency-Key": "order-17"}
    c = client(cluster)
    status, headers, first = c.request("POST", "/once", body="x",
                                       headers=key)
    assert status == 200 and "Idempotent-Replayed" not in headers
    status, headers, again = c.request("POST", "/once", body="x",
                                       headers=key)
    assert (status, again) == (200, first)
    assert headers["Idempotent-Replayed"] == "true"
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(
            lambda _: client(cluster).request(
                "POST", "/once", headers={"Idempotency-Key": "order-18"})[2],
            range(3)))
    assert len(set(answers)) == 1  # the retries waited for the first
    assert handle.count.remote().result() == 2
    # A retry through the other node's ingress runs once too.
    key = {"Idempotency-Key": "order-19"}
    status, _, first = client(cluster, 0).request("POST", "/once",
                                                  headers=key)
    status, headers, again = client(cluster, 1).request("POST", "/once",
                                                        headers=key)
    assert (status, again) == (200, first)
    assert headers["Idempotent-Replayed"] == "true"
    assert handle.count.remote().result() == 3
    from loom import _core
    assert _core.serve_sweep_idempotency() == 0  # nothing has lapsed yet
    assert c.request("POST", "/once",
                     headers={"Idempotency-Key": "k" * 300})[0] == 400


def test_a_replica_failing_its_health_check_is_replaced(cluster, tmp_path):
    flag = str(tmp_path / "sick")

    @serve.deployment(ray_actor_options={"num_cpus": 0},
                      health_check_period_s=0.2, health_check_timeout_s=2)
    class Fragile:
        def __call__(self, request):
            return os.getpid()

        def check_health(self):
            if os.path.exists(flag):
                raise RuntimeError("sick")

    serve.run(Fragile.bind(), name="fragile", route_prefix="/fragile")
    c = client(cluster)
    pid = int(c.request("GET", "/fragile")[2])
    open(flag, "w").close()
    wait_until(lambda: "health check" in serve.status().applications[
        "fragile"].deployments["Fragile"].message, timeout=30,
        what="the failed health check in the status")
    os.unlink(flag)
    new = wait_until(lambda: (lambda r: r[0] == 200 and int(r[2]) != pid
                              and int(r[2]))(c.request("GET", "/fragile")),
                     timeout=60, what="a new replica answering")
    assert new != pid


def test_a_killed_replica_fails_an_unsafe_request_with_a_502(cluster):
    @serve.deployment(ray_actor_options={"num_cpus": 0})
    async def hangs(request):
        import asyncio
        await asyncio.sleep(60)

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    def whoami(request):
        return os.getpid()

    serve.run(hangs.bind(), name="hangs", route_prefix="/hangs")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda: client(cluster).request("POST",
                                                              "/hangs"))
        time.sleep(0.5)
        from loom.util.state import list_actors
        [replica] = [a for a in list_actors(limit=10000)
                     if a["state"] == "ALIVE" and "hangs" in a["name"]]
        os.kill(replica["pid"], 9)
        status, _, data = pending.result(timeout=30)
    assert status == 502 and b"died" in data.lower()


def test_serve_metrics_reach_prometheus(cluster):
    # An application of its own, so that every figure is exactly this
    # test's 5 requests.
    serve.run(Echo.options(num_replicas=1).bind("m"), name="metered",
              route_prefix="/metered")
    c = client(cluster)
    for _ in range(5):
        assert c.request("GET", "/metered")[0] == 200
    path = os.path.join(cluster["cluster"].head_node.session_dir,
                        "prometheus_sd.json")
    with open(path) as f:
        raylets = [t for g in json.load(f) for t in g["targets"]
                   if g["labels"]["loom_component"] == "raylet"]
    want = {
        ("loom_serve_http_requests_total", ("route", "/metered"),
         ("method", "GET"), ("code", "200")): 5,
        ("loom_serve_http_request_latency_ms_count",
         ("route", "/metered")): 5,
        ("loom_serve_deployment_requests_total",
         ("deployment", "metered#Echo"), ("code", "200")): 5,
        ("loom_serve_replica_requests_total",
         ("deployment", "metered#Echo"), ("outcome", "ok")): 5,
        ("loom_serve_deployment_replicas", ("deployment", "metered#Echo"),
         ("state", "RUNNING")): 1,
    }

    def exported():
        # Each raylet exports its own node's series: a figure is their sum.
        texts = [scrape(t) for t in raylets]
        got.update({k: sum(sample(t, k[0], **dict(k[1:])) or 0
                           for t in texts) for k in want})
        return got == want

    got = {}
    # Each process reports once a second: all 5 may take two reports.
    try:
        wait_until(exported, timeout=30, what="exactly 5 requests")
    except pytest.fail.Exception:
        pytest.fail(f"the metrics never showed 5 requests; last seen: {got}")
    serve.delete("metered")


def test_a_generator_streams_its_answer(cluster):
    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Tokens:
        async def __call__(self, request):
            import asyncio
            n = int(request.query_params.get("n", "3"))
            for i in range(n):
                yield f"token{i} "
                await asyncio.sleep(0.3)
            if request.query_params.get("fail"):
                raise RuntimeError("the model broke mid-answer")

    serve.run(Tokens.bind(), name="tokens", route_prefix="/tokens")
    proxy = cluster["proxies"][0]
    conn = http.client.HTTPConnection(proxy["node_ip"], proxy["port"],
                                      timeout=60)
    conn.request("GET", "/tokens?n=3",
                 headers={"Authorization": f"Bearer {cluster['token']}"})
    t = time.monotonic()
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Transfer-Encoding") == "chunked"
    first = r.read1()
    assert first.startswith(b"token0") and time.monotonic() - t < 0.3
    rest = r.read()  # the others come as they are made
    assert (first + rest) == b"token0 token1 token2 "
    assert time.monotonic() - t >= 0.6
    conn.close()
    # A failure mid-stream cuts the body short: the client can tell.
    conn = http.client.HTTPConnection(proxy["node_ip"], proxy["port"],
                                      timeout=60)
    conn.request("GET", "/tokens?n=1&fail=1",
                 headers={"Authorization": f"Bearer {cluster['token']}"})
    r = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    conn.close()
    # A handle gets the items whole.
    assert serve.get_app_handle("tokens").remote(
        serve.Request("GET", "/tokens", "n=2", {}, b"", "/tokens")
    ).result() == ["token0 ", "token1 "]
