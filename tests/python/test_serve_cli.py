"""`loom serve run|deploy|status|shutdown` against a cluster `loom start`
made, with `--serve-port 0` (a free port, listed by `loom serve status`)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.request

import pytest

pytestmark = pytest.mark.loom_timeout(240)
LOOM = os.path.join(os.path.dirname(sys.executable), "loom")

APP = textwrap.dedent("""
    from loom import serve

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Hello:
        def __init__(self, name="world"):
            self.name = name

        def __call__(self, request):
            return f"hello {self.name}"

    app = Hello.bind()
    other = Hello.bind("config")
""")


@pytest.fixture
def head(no_cluster):
    root = tempfile.mkdtemp(prefix="loom-serve-cli-")
    work = tempfile.mkdtemp(prefix="loom-serve-cli-wd-")
    env = dict(os.environ, LOOM_SESSION_ROOT=root)
    env.pop("LOOM_ADDRESS", None)
    try:
        with open(os.path.join(work, "hello_app.py"), "w") as f:
            f.write(APP)
        subprocess.run([LOOM, "start", "--head", "--port", "0",
                        "--dashboard-port", "-1", "--num-cpus", "1",
                        "--serve-port", "0"], env=env, check=True,
                       capture_output=True)
        with open(os.path.join(root, "session_latest", "auth_token")) as f:
            token = f.read().strip()
        yield {"env": env, "cwd": work, "token": token}
    finally:
        subprocess.run([LOOM, "stop"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def loom_cmd(head, *args):
    r = subprocess.run([LOOM, *args], env=head["env"], cwd=head["cwd"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def get(head, url):
    req = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {head['token']}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def test_run_status_deploy_and_shutdown(head):
    out = loom_cmd(head, "serve", "run", "hello_app:app", "--name", "hi",
                   "--route-prefix", "/hi", "--non-blocking")
    url = out.strip().split()[-2]  # "hi: http://IP:PORT/hi (RUNNING)"
    assert url.endswith("/hi") and "(RUNNING)" in out
    assert get(head, url) == "hello world"
    status = json.loads(loom_cmd(head, "serve", "status"))
    assert status["applications"]["hi"]["status"] == "RUNNING"
    [proxy] = status["proxies"].values()
    assert proxy["port"] != 8000 and proxy["state"] == "HEALTHY"
    config = os.path.join(head["cwd"], "serve.json")
    with open(config, "w") as f:
        json.dump({"applications": [{
            "name": "cfg", "route_prefix": "/cfg",
            "import_path": "hello_app:other",
            "deployments": [{"name": "Hello", "num_replicas": 2}]}]}, f)
    loom_cmd(head, "serve", "deploy", config)
    base = url[:-len("/hi")]
    assert get(head, base + "/cfg") == "hello config"
    status = json.loads(loom_cmd(head, "serve", "status"))
    cfg = status["applications"]["cfg"]["deployments"]["Hello"]
    assert cfg["replica_states"] == {"RUNNING": 2}
    assert "serving stopped" in loom_cmd(head, "serve", "shutdown", "--yes")
    # A C++ application from the config alone: no Python of the user's.
    # (Its library must be in the code_search_path of the driver that
    # starts serving: the controller's job is the one replicas run in.)
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "build", "lib",
        "libloom_xlang_functions.so")
    with open(config, "w") as f:
        json.dump({"code_search_path": [lib], "applications": [{
            "name": "cpp", "route_prefix": "/cpp",
            "cpp_factory": "MakeScorer", "args": [1.0],
            "deployments": [{"name": "MakeScorer",
                             "ray_actor_options": {"num_cpus": 0}}]}]}, f)
    out = loom_cmd(head, "serve", "deploy", config)
    url = out.strip().split()[-2]  # a new proxy: a new free port
    req = urllib.request.Request(
        url, data=b"xy",
        headers={"Authorization": f"Bearer {head['token']}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert json.loads(r.read())["score"] == 3.0
    assert "serving stopped" in loom_cmd(head, "serve", "shutdown", "--yes")
    status = json.loads(loom_cmd(head, "serve", "status"))
    assert status["applications"] == {}
