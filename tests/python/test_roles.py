# tests/python/test_roles.py
#
# People's tokens and their roles (`loom token create --role`), refused
# outside their rights on the head's gRPC port (drivers, `loom` commands)
# and its HTTP API (a submitter touches only what its own jobs made), the audit log that records each action once with who
# did it (refusals included), revocation, and tokens surviving a head
# restart on Redis.

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from conftest import (loom_cli, redis_server,  # noqa: F401 (a fixture)
                      serve_hello_driver)
from test_head_restart import kill_and_restart_head, start_head_on_redis

SHARED = """
import loom
loom.init(address="auto")

@loom.remote
class Box:
    def ping(self):
        return "pong"

b = Box.options(name="shared", lifetime="detached").remote()
print("shared", loom.get(b.ping.remote(), timeout=60))
loom.shutdown()
"""

SUBMITTER = """
import loom
loom.init(address="auto")

@loom.remote
def add(a, b):
    return a + b

@loom.remote
class Mine:
    def ping(self):
        return 1

m = Mine.remote()
print("sum", loom.get(add.remote(2, 3), timeout=60))
print("mine", loom.get(m.ping.remote(), timeout=60))
loom.kill(m)
print("killed own")
try:
    loom.kill(loom.get_actor("shared"))
    print("killed shared")
except Exception as e:
    print("refused", e)
loom.shutdown()
"""

VIEWER = """
import loom
try:
    loom.init(address="auto")
    print("joined")
except Exception as e:
    print("refused", e)
"""


def cli(processes, *args, token=None):
    env = processes.env()
    env.pop("LOOM_AUTH_TOKEN", None)
    if token:
        env["LOOM_AUTH_TOKEN"] = token
    return subprocess.run(
        [loom_cli(), *args, "--session-root", processes.session_root],
        env=env, capture_output=True, text=True, timeout=60)


def make_token(processes, role, name):
    out = cli(processes, "token", "create", "--role", role, "--name", name)
    assert out.returncode == 0, out.stderr
    token = out.stdout.split()[-1]  # the last word of its output
    assert token.startswith("loomtok_"), out.stdout
    return token


def run_as(processes, token, source):
    env = dict(processes.env(), LOOM_AUTH_TOKEN=token)
    old = processes.env
    processes.env = lambda: env
    try:
        return processes.run_driver(source)
    finally:
        processes.env = old


def http(processes, method, path, token, body=None):
    session = Path(processes.session_root) / "session_latest"
    url = "http://" + (session / "dashboard_address").read_text().strip() + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_each_role_gets_its_rights_and_the_audit_log_says_who_did_what(
        head_node):
    processes = head_node
    viewer = make_token(processes, "viewer", "vera")
    submitter = make_token(processes, "submitter", "sam")
    other = make_token(processes, "submitter", "sue")
    admin = make_token(processes, "admin", "ada")
    rc, out, err = processes.run_driver(SHARED)  # the cluster token's
    assert rc == 0 and "shared pong" in out, err

    # A viewer reads, and nothing else.
    assert cli(processes, "status", token=viewer).returncode == 0
    listed = cli(processes, "list", "actors", token=viewer)
    assert listed.returncode == 0 and "Box" in listed.stdout, listed.stderr
    refused = cli(processes, "token", "list", token=viewer)
    assert refused.returncode == 1
    assert "role viewer, which may not ListTokens" in refused.stderr
    rc, out, err = run_as(processes, viewer, VIEWER)
    assert "refused" in out and "role viewer" in out, out + err
    assert "joined" not in out

    # A submitter runs jobs, kills its own actors and not another's, and
    # makes no tokens.
    rc, out, err = run_as(processes, submitter, SUBMITTER)
    assert rc == 0, err
    assert "sum 5" in out and "mine 1" in out and "killed own" in out, out
    assert "refused" in out and "kill the actors only of jobs it started" in out
    refused = cli(processes, "token", "create", "--role", "admin",
                  token=submitter)
    assert refused.returncode == 1
    assert "role submitter, which may not CreateToken" in refused.stderr

    # The HTTP API: reads for viewers, submissions for submitters, stops of
    # one's own jobs only, the audit log for admins.
    status, jobs = http(processes, "GET", "/api/jobs/", viewer)
    assert status == 200, jobs
    job = {"entrypoint": "echo hello", "submission_id": "roles-job"}
    status, body = http(processes, "POST", "/api/jobs/", viewer, job)
    assert status == 403 and "role viewer" in body["error"], body
    status, body = http(processes, "POST", "/api/jobs/", submitter, job)
    assert status == 200, body
    status, body = http(processes, "POST", "/api/jobs/roles-job/stop", other)
    assert status == 403 and "another's" in body["error"], body
    status, body = http(processes, "GET", "/api/audit", submitter)
    assert status == 403, body
    status, page = http(processes, "GET", "/api/audit", admin)
    assert status == 200 and page["entries"], page

    # Revoked: refused everywhere at once.
    assert cli(processes, "token", "revoke", "sam", token=admin).returncode == 0
    rc, out, err = run_as(processes, submitter, SUBMITTER)
    assert rc != 0 and "does not know this token" in err, out + err
    status, _ = http(processes, "GET", "/api/jobs/", submitter)
    assert status == 401
    listed = cli(processes, "token", "list", token=admin)
    assert listed.returncode == 0
    assert "vera" in listed.stdout and "sam" not in listed.stdout

    audit = cli(processes, "audit", token=admin)
    assert audit.returncode == 0, audit.stderr
    entries = [json.loads(line) for line in audit.stdout.splitlines()]

    def count(action, result, name=None, target=""):
        return sum(1 for e in entries
                   if e["action"] == action and e["result"] == result and
                   (name is None or e["name"] == name) and target in e["target"]
                   and e["peer"])

    for who in ("vera", "sam", "sue", "ada"):
        assert count("CreateToken", "ok", "cluster", f"token {who}") == 1
    assert count("CreateToken", "denied", "sam") == 1
    assert count("ListTokens", "denied", "vera") == 1
    assert count("AddJob", "ok", "sam") == 1
    assert count("KillActor", "ok", "sam") == 1
    assert count("KillActor", "denied", "sam") == 1
    assert count("POST /api/jobs/", "denied", "vera") == 1
    assert count("SubmitJob", "ok", "sam", "roles-job") == 1
    assert count("StopJob", "denied", "sue", "roles-job") == 1
    assert count("GET /api/audit", "denied", "sam") == 1
    assert count("RevokeToken", "ok", "ada", "token sam") == 1
    assert count("RegisterNode", "ok", "cluster") == 1
    denied = [e for e in entries if e["result"] == "denied"]
    assert all(e["reason"] for e in denied), denied


def test_tokens_survive_a_head_restart_on_redis(processes, redis_server):  # noqa: F811
    start_head_on_redis(processes, redis_server)
    try:
        token = make_token(processes, "submitter", "kept")
        kill_and_restart_head(processes, processes.session_root, redis_server)
        rc, out, err = run_as(processes, token, """
import loom
loom.init(address="auto")

@loom.remote
def add(a, b):
    return a + b

print("sum", loom.get(add.remote(2, 3), timeout=60))
loom.shutdown()
""")
        assert rc == 0 and "sum 5" in out, out + err
        listed = cli(processes, "token", "list")
        assert "kept" in listed.stdout and "submitter" in listed.stdout
    finally:
        cli(processes, "stop")


def test_a_submitter_removes_only_its_own_placement_groups(head_node, tmp_path):
    processes = head_node
    submitter = make_token(processes, "submitter", "sam")
    done = tmp_path / "done"
    holder = processes.start_driver(f"""
import os, time
import loom
from loom.util.placement_group import placement_group
loom.init(address="auto")
pg = placement_group([{{"CPU": 1}}])
print("pg", pg.id, flush=True)
while not os.path.exists({str(done)!r}):
    time.sleep(0.1)
loom.shutdown()
""")
    try:
        line = holder.stdout.readline()
        assert line.startswith("pg "), line + holder.stderr.read()
        theirs = line.split()[1]
        rc, out, err = run_as(processes, submitter, f"""
import loom
from loom.util.placement_group import (PlacementGroup, placement_group,
                                       remove_placement_group)
loom.init(address="auto")
mine = placement_group([{{"CPU": 1}}])
remove_placement_group(mine)
print("removed own")
try:
    remove_placement_group(PlacementGroup(bytes.fromhex({theirs!r}), []))
    print("removed theirs")
except Exception as e:
    print("refused", e)
loom.shutdown()
""")
        assert rc == 0, out + err
        assert "removed own" in out and "removed theirs" not in out, out
        assert "remove the placement groups only of jobs it started" in out
    finally:
        done.touch()
        holder.communicate(timeout=60)


SERVE = """
import loom
from loom import serve
loom.init(address="auto")
serve.start(http_options={"port": 0})

@serve.deployment(ray_actor_options={"num_cpus": 0})
def hello(request):
    return "hello"

try:
    serve.run(hello.bind(), name="greeter", route_prefix="/hello")
    print("deployed")
    serve.delete("greeter")
    print("deleted")
except Exception as e:
    print("refused", e)
loom.shutdown()
"""


def test_serve_deploys_and_deletes_are_in_the_audit_log(head_node):
    processes = head_node
    viewer = make_token(processes, "viewer", "vera")
    submitter = make_token(processes, "submitter", "sam")
    rc, out, err = run_as(processes, viewer, SERVE)
    assert "deployed" not in out, out + err
    rc, out, err = run_as(processes, submitter, SERVE)
    assert rc == 0 and "deployed" in out and "deleted" in out, out + err
    processes.run_driver("""
import loom
from loom import serve
loom.init(address="auto")
serve.shutdown()
""")
    audit = cli(processes, "audit")
    entries = [json.loads(line) for line in audit.stdout.splitlines()]
    serve = [(e["action"], e["result"], e["name"], e["target"])
             for e in entries if e["action"].startswith("Serve")]
    assert serve == [("ServeDeploy", "ok", "sam", "serve app greeter"),
                     ("ServeDelete", "ok", "sam", "serve app greeter")], serve


INGRESS = serve_hello_driver("hello", """
for who in ("VIEWER", "SUBMITTER", "FORGED"):
    req = urllib.request.Request(
        f"http://{proxy['node_ip']}:{proxy['port']}/hello",
        headers={"Authorization": "Bearer " + os.environ[who]})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            print(who, r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        print(who, e.code, e.read().decode())
serve.shutdown()
loom.shutdown()
""")


def test_the_serve_ingress_takes_peoples_tokens_by_their_roles(
        head_node, monkeypatch):
    processes = head_node
    monkeypatch.setenv("VIEWER", make_token(processes, "viewer", "vera"))
    monkeypatch.setenv("SUBMITTER", make_token(processes, "submitter", "sam"))
    monkeypatch.setenv("FORGED", "loomtok_" + "x" * 40)
    rc, out, err = processes.run_driver(INGRESS, timeout=180)
    assert rc == 0, out + err
    lines = dict(line.split(" ", 1) for line in out.splitlines()
                 if line.split(" ", 1)[0] in ("VIEWER", "SUBMITTER", "FORGED"))
    assert lines["SUBMITTER"] == "200 hello", out
    assert lines["VIEWER"].startswith("403") and "role viewer" in lines[
        "VIEWER"], out
    assert lines["FORGED"].startswith("401"), out
