# tests/python/test_jobs.py
#
# Job submission (docs/jobs.md) against a real two-node cluster: the head's
# HTTP API runs an entrypoint as a driver in a copy of the working
# directory, on the node its resources name; states, logs (whole and
# followed), stop, delete, idempotent submission ids; clear HTTP errors for
# a missing token, malformed JSON, unknown ids and oversized packages.

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import loom
from loom.job_submission import JobStatus, JobSubmissionClient
import loom.job_submission as job_submission

from conftest import two_node_cluster, wait_until

SCRIPT = """
import os, loom
loom.init()

@loom.remote
def add_one(x):
    return x + 1

print("answer", loom.get(add_one.remote(41)), os.environ.get("GREETING"),
      loom.get_runtime_context().get_node_id(), flush=True)
"""


@pytest.fixture(scope="module")
def cluster():
    c, other = two_node_cluster(head_cpus=2)
    head_dir = c.head_node.session_dir
    with open(os.path.join(head_dir, "dashboard_address")) as f:
        address = "http://" + f.read().strip()
    with open(os.path.join(head_dir, "auth_token")) as f:
        token = f.read().strip()
    client = JobSubmissionClient(
        address, headers={"Authorization": f"Bearer {token}"})
    yield {"cluster": c, "client": client, "address": address,
           "token": token, "other": other.node_id,
           "head": c.head_node.node_id}
    c.shutdown()


def wait_for_status(client, job, *statuses, timeout=90):
    return wait_until(
        lambda: client.get_job_status(job) in statuses and
        client.get_job_info(job), timeout=timeout, interval=0.2,
        what=f"job {job} to be {statuses}")


def request(address, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(address + path, data=body, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_job_runs_as_a_driver_in_its_working_directory(cluster, tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    client = cluster["client"]
    job = client.submit_job(
        entrypoint=f"{sys.executable} script.py",
        runtime_env={"working_dir": str(tmp_path),
                     "env_vars": {"GREETING": "hello"}},
        metadata={"owner": "tests"})
    assert job.startswith("raysubmit_")
    info = wait_for_status(client, job, JobStatus.SUCCEEDED, JobStatus.FAILED)
    logs = client.get_job_logs(job)
    assert info.status == JobStatus.SUCCEEDED, (info, logs)
    assert f"answer 42 hello {cluster['head']}" in logs
    assert info.driver_exit_code == 0
    assert info.driver_node_id == cluster["head"]
    assert info.metadata == {"owner": "tests"}
    assert info.end_time >= info.start_time > 0
    assert info.runtime_env["working_dir"].startswith("gcs://_loom_pkg_")
    assert job in [j.submission_id for j in client.list_jobs()]


def test_entrypoint_resources_choose_the_node(cluster, tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    client = cluster["client"]
    job = client.submit_job(entrypoint=f"{sys.executable} script.py",
                            runtime_env={"working_dir": str(tmp_path)},
                            entrypoint_resources={"other": 1})
    info = wait_for_status(client, job, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert info.status == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert info.driver_node_id == cluster["other"]
    assert info.entrypoint_resources == {"other": 1}
    # The driver attached to the raylet of the node it runs on.
    assert f"answer 42 None {cluster['other']}" in client.get_job_logs(job)


def test_the_same_submission_id_never_starts_a_second_job(cluster, tmp_path):
    client = cluster["client"]
    runs = tmp_path / "runs"
    entrypoint = f"echo ran >> {runs}"
    first = client.submit_job(entrypoint=entrypoint, submission_id="once-1")
    again = client.submit_job(entrypoint=entrypoint, submission_id="once-1")
    assert first == again == "once-1"
    wait_for_status(client, first, JobStatus.SUCCEEDED)
    assert client.submit_job(entrypoint=entrypoint,
                             submission_id="once-1") == "once-1"
    time.sleep(1.5)  # a second start would have run by now
    assert runs.read_text() == "ran\n"


def test_a_failing_entrypoint_fails_with_its_exit_code(cluster):
    client = cluster["client"]
    job = client.submit_job(entrypoint="echo about to fail; exit 3")
    info = wait_for_status(client, job, JobStatus.FAILED)
    assert info.driver_exit_code == 3
    assert "code 3" in info.message
    assert info.error_type == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert "about to fail" in client.get_job_logs(job)


def test_stop_then_delete(cluster, tmp_path):
    client = cluster["client"]
    job = client.submit_job(entrypoint="echo started; sleep 600")
    wait_for_status(client, job, JobStatus.RUNNING)
    with pytest.raises(RuntimeError, match="409.*stop it first"):
        client.delete_job(job)
    assert client.stop_job(job) is True
    info = wait_for_status(client, job, JobStatus.STOPPED, timeout=30)
    assert info.end_time is not None
    assert client.stop_job(job) is False  # already ended
    assert client.delete_job(job) is True
    with pytest.raises(RuntimeError, match="404"):
        client.get_job_info(job)


def test_logs_can_be_followed_as_they_come(cluster):
    client = cluster["client"]
    job = client.submit_job(
        entrypoint="for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done")
    text = "".join(client.follow_job_logs(job))
    assert [l for l in text.splitlines() if l.startswith("line")] == [
        f"line {i}" for i in range(1, 6)]
    assert client.get_job_status(job) == JobStatus.SUCCEEDED


def test_http_errors_are_clear(cluster, tmp_path):
    address, token = cluster["address"], cluster["token"]
    status, body = request(address, "GET", "/api/jobs/")
    assert status == 401 and "Bearer" in body
    status, body = request(address, "GET", "/api/jobs/", token="wrong" * 8)
    assert status == 401
    status, body = request(address, "POST", "/api/jobs/", token,
                           b'{"entrypoint": ')
    assert status == 400 and "not a JSON object" in body
    status, body = request(address, "POST", "/api/jobs/", token,
                           json.dumps({"entrypoint": 7}).encode())
    assert status == 400 and "entrypoint must be a string" in body
    status, body = request(address, "POST", "/api/jobs/", token,
                           json.dumps({"entrypoint": "true",
                                       "submission_id": "../x"}).encode())
    assert status == 400 and "submission_id" in body
    status, body = request(address, "GET", "/api/jobs/no-such-job", token)
    assert status == 404 and "no-such-job" in body
    status, body = request(address, "GET", "/api/version", token)
    assert status == 200 and json.loads(body)["version"] == "4"
    # An oversized package: the client refuses it, and so does the head.
    big = tmp_path / "big"
    big.mkdir()
    (big / "data.bin").write_bytes(os.urandom(65 << 20))
    with pytest.raises(ValueError, match="64 MiB"):
        cluster["client"].submit_job(entrypoint="true",
                                     runtime_env={"working_dir": str(big)})
    status, body = request(address, "PUT", "/api/packages/gcs/_big.zip",
                           token, b"x" * ((64 << 20) + 1))
    assert status == 413 and "limit" in body
    # A working_dir the head never got.
    status, body = request(address, "POST", "/api/jobs/", token,
                           json.dumps({"entrypoint": "true", "runtime_env": {
                               "working_dir": "gcs://_loom_pkg_missing.zip"}
                           }).encode())
    assert status == 200
    job = json.loads(body)["submission_id"]
    info = wait_for_status(cluster["client"], job, JobStatus.FAILED)
    assert "no package" in info.message


def test_the_loom_job_cli(cluster, tmp_path):
    from conftest import loom_cli
    (tmp_path / "script.py").write_text(SCRIPT)
    env = dict(os.environ, LOOM_AUTH_TOKEN=cluster["token"])
    env.pop("LOOM_DASHBOARD_ADDRESS", None)

    def job(command, *args, check=True):
        r = subprocess.run([loom_cli(), "job", command, "--address",
                            cluster["address"], *args], env=env,
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, r.stdout + r.stderr
        return r

    out = job("submit", "--working-dir", str(tmp_path), "--submission-id",
              "cli-1", "--runtime-env-json",
              '{"env_vars": {"GREETING": "from-cli"}}', "--",
              sys.executable, "script.py").stdout
    assert "Job 'cli-1' submitted" in out
    assert "answer 42 from-cli" in out  # followed until it ended
    assert "Job 'cli-1' SUCCEEDED" in out
    assert "SUCCEEDED" in job("status", "cli-1").stdout
    assert "answer 42 from-cli" in job("logs", "cli-1").stdout
    assert "cli-1" in job("list").stdout
    failed = job("submit", "--", "sh", "-c", "exit 4", check=False)
    assert failed.returncode == 1 and "FAILED" in failed.stdout
    job("submit", "--no-wait", "--submission-id", "cli-2", "--",
        "sleep", "600")
    wait_until(lambda: "RUNNING" in job("status", "cli-2").stdout,
               timeout=60, what="cli-2 running")
    assert "STOPPED" in job("stop", "cli-2").stdout
    assert "deleted" in job("delete", "cli-2").stdout
    missing = job("status", "cli-2", check=False)
    assert missing.returncode == 1 and "404" in missing.stderr
    bad = subprocess.run([loom_cli(), "job", "list", "--address", "ftp://x"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "http://HOST:PORT" in bad.stderr


def test_a_head_whose_job_port_is_taken_warns_and_runs(processes):
    import socket
    from conftest import loom_cli
    from pathlib import Path
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    root = processes.session_root
    try:
        r = subprocess.run(
            [loom_cli(), "start", "--head", "--port", "0", "--num-cpus", "1",
             "--node-ip-address", "127.0.0.1", "--dashboard-port", str(taken),
             "--session-root", root],
            env=processes.env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        session = Path(root) / "session_latest"
        assert not (session / "dashboard_address").exists()
        err = (session / "logs" / "gcs.err").read_text()
        assert "no job API" in err and str(taken) in err
        status = subprocess.run([loom_cli(), "status", "--session-root", root],
                                env=processes.env(), capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stderr  # the head serves
    finally:
        holder.close()
        subprocess.run([loom_cli(), "stop", "--session-root", root],
                       env=processes.env(), timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
