"""C++ deployments (include/loom/serve.h): served over HTTP by the same
ingress and router, on C++ workers, with batching."""
import concurrent.futures
import json
import os
import threading
import urllib.error
import urllib.request

import pytest

import loom
from loom import _core
from loom import serve
from conftest import REPO_ROOT, wait_until

pytestmark = pytest.mark.loom_timeout(180)
LIB = REPO_ROOT / "build" / "lib" / "libloom_xlang_functions.so"


@pytest.fixture(scope="module")
def base():
    if not LIB.exists():
        pytest.fail(f"{LIB} is missing: build the tree first (make build)")
    if loom.is_initialized():
        loom.shutdown()
    loom.init(num_cpus=2, code_search_path=[str(LIB)])
    serve.start(http_options={"port": 0, "host": "127.0.0.1"})
    proxy = wait_until(lambda: [p for p in serve.status().proxies.values()
                                if p["state"] == "HEALTHY"],
                       timeout=60, what="the proxy")[0]
    with open(os.path.join(_core.session_dir(), "auth_token")) as f:
        token = f.read().strip()
    yield f"http://127.0.0.1:{proxy['port']}", token
    serve.shutdown()
    loom.shutdown()


def call(base, path, body=None):
    url, token = base
    req = urllib.request.Request(
        url + path, data=body, headers={"Authorization": f"Bearer {token}",
                                        "Content-Type": "text/x-test"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.getheaders()), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_a_cpp_class_answers_http(base):
    serve.run(serve.cpp_deployment("MakeScorer", num_replicas=2,
                                   ray_actor_options={"num_cpus": 0})
              .bind(0.5), name="scorer", route_prefix="/score")
    status, headers, body = call(base, "/score/x", b"abcd")
    assert status == 200 and headers["X-Scorer"] == "cpp"
    assert json.loads(body) == {"score": 4.5, "path": "/score/x",
                                "type": "text/x-test"}
    assert call(base, "/score")[0] == 405  # a GET: the class's own answer
    s = serve.status().applications["scorer"]
    assert s.deployments["MakeScorer"].replica_states == {"RUNNING": 2}


def test_a_cpp_class_answers_batches(base):
    serve.run(serve.cpp_deployment(
        "MakeBatchSizer", max_ongoing_requests=8,
        batch={"max_batch_size": 4, "batch_wait_timeout_s": 0.3},
        ray_actor_options={"num_cpus": 0}).bind(),
        name="sizer", route_prefix="/size")
    barrier = threading.Barrier(4)

    def one(_):
        barrier.wait()
        return call(base, "/size")[2]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        sizes = [int(s) for s in pool.map(one, range(4))]
    assert max(sizes) >= 2, sizes
