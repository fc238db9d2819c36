# tests/python/test_quotas.py
#
# Per-job quotas (`loom job submit --max-cpus ... --max-actors ...`,
# docs/security.md) under a greedy job: its tasks run one at a time on its
# one CPU while the rest wait (`loom list jobs` says so), its second actor
# and an object past its store quota are refused with errors naming the
# quota, its driver's submissions wait past --max-pending-tasks; and a job
# without a quota running beside it gets the CPUs it asks for at once.

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import loom_cli, wait_until

GREEDY = """
import json, time
import loom
loom.init(address="auto")
out = {}

@loom.remote(num_cpus=0)
class A:
    def ping(self):
        return 1

a = A.remote()
loom.get(a.ping.remote(), timeout=60)
try:
    b = A.remote()
    loom.get(b.ping.remote(), timeout=60)
    out["second_actor"] = "created"
except Exception as e:
    out["second_actor"] = str(e)
loom.kill(a)

small = loom.put(b"x" * (1 << 20))
try:
    big = loom.put(b"y" * (3 << 20))
    out["big_put"] = "stored"
except Exception as e:
    out["big_put"] = type(e).__name__ + ": " + str(e)
del small

@loom.remote
def hold(i):
    start = time.time()
    time.sleep(0.8)
    return start, time.time()

t0 = time.time()
refs = [hold.remote(i) for i in range(12)]
out["submit_s"] = time.time() - t0
spans = loom.get(refs, timeout=120)
edges = sorted([(s, 1) for s, e in spans] + [(e, -1) for s, e in spans])
running = most = 0
for _, step in edges:
    running += step
    most = max(most, running)
out["most_at_once"] = most
print("RESULT " + json.dumps(out), flush=True)
loom.shutdown()
"""

POLITE = """
import time
import loom
loom.init(address="auto")

@loom.remote
def work():
    start = time.time()
    time.sleep(1.0)
    return start, time.time()

(s1, e1), (s2, e2) = loom.get([work.remote(), work.remote()], timeout=60)
print("overlap", min(e1, e2) - max(s1, s2))
loom.shutdown()
"""


def _cli(processes, *args):
    return subprocess.run(
        [loom_cli(), *args, "--session-root", processes.session_root],
        env=processes.env(), capture_output=True, text=True, timeout=60)


def test_a_greedy_jobs_quota_holds_and_other_jobs_run_beside_it(
        head_node, tmp_path):
    processes = head_node  # 3 CPUs
    script = tmp_path / "greedy.py"
    script.write_text(GREEDY)
    greedy = subprocess.Popen(
        [loom_cli(), "job", "submit", "--session-root",
         processes.session_root, "--submission-id", "greedy-1",
         "--max-cpus", "1", "--max-actors", "1",
         "--max-object-store-bytes", str(2 << 20),
         "--max-pending-tasks", "4", "--", sys.executable, str(script)],
        env=processes.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        # Its tasks beyond its one CPU wait, and `loom list jobs` says why.
        def waiting():
            out = _cli(processes, "list", "jobs", "--detail")
            text = out.stdout + out.stderr
            return "wait for its quota (max-cpus 1" in text and text
        listed = wait_until(waiting, timeout=90, interval=0.2,
                            what="the greedy job's tasks to wait")
        assert "max-actors 1" in listed
        # A job without a quota gets two CPUs at once beside it.
        rc, out, err = processes.run_driver(POLITE)
        assert rc == 0, err
        overlap = float(out.split("overlap")[1].split()[0])
        assert overlap > 0.5, out
        assert greedy.poll() is None  # still running: it waited, others not
        out, err = greedy.communicate(timeout=120)
    finally:
        if greedy.poll() is None:
            greedy.kill()
            greedy.communicate()
    assert greedy.returncode == 0, out + err
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert result["most_at_once"] == 1, result
    assert "actor quota" in result["second_actor"], result
    assert "--max-actors" in result["second_actor"], result
    assert result["big_put"].startswith("ObjectStoreFullError"), result
    assert "object-store quota" in result["big_put"], result
    # 12 tasks of 0.8 s on one CPU (about 10 s, long enough for the other
    # job to run beside it), at most 4 pending: the last submissions waited
    # for the first tasks to finish.
    assert result["submit_s"] > 1.5, result

    # The HTTP API shows the submission's quota.
    session = Path(processes.session_root) / "session_latest"
    address = (session / "dashboard_address").read_text().strip()
    token = (session / "auth_token").read_text().strip()
    req = urllib.request.Request(
        f"http://{address}/api/jobs/greedy-1",
        headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        info = json.loads(r.read())
    assert info["quota"]["max_cpus"] == 1
    assert info["quota"]["max_pending_tasks"] == 4


def test_a_malformed_quota_is_refused_with_a_clear_error(head_node):
    processes = head_node
    session = Path(processes.session_root) / "session_latest"
    address = (session / "dashboard_address").read_text().strip()
    token = (session / "auth_token").read_text().strip()
    for quota, says in [({"max_cpus": -1}, "quota.max_cpus must be a number"),
                        ({"max_tpus": 1}, "quota has no limit")]:
        body = json.dumps({"entrypoint": "true", "quota": quota}).encode()
        req = urllib.request.Request(
            f"http://{address}/api/jobs/", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError("accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400
            assert says in e.read().decode()
