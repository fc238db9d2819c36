"""A head on Redis killed with kill -9 and started again on its port: what
Python users had before it (functions, a named detached actor, job ids) is
there after it."""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import loom
from loom import _core

from conftest import (_free_port_below_ephemeral, loom_cli, thread_states,
                      wait_until)

BEFORE = """
import os
import shutil
import loom

loom.init(address="auto", namespace="keep")

@loom.remote(max_restarts=2, max_task_retries=2)
class Tally:
    def __init__(self):
        self.n = 0
    def incr(self):
        self.n += 1
        return self.n
    def pid(self):
        return os.getpid()

@loom.remote
def square(x):
    return x * x

tally = Tally.options(name="tally", lifetime="detached").remote()
print("tally", loom.get(tally.incr.remote()))
print("square", loom.get(square.remote(7)))
print("pid", loom.get(tally.pid.remote()))
print("job", int(loom.get_runtime_context().get_job_id(), 16))
"""

AFTER = """
import loom

loom.init(address="auto", namespace="keep")
tally = loom.get_actor("tally")
print("tally", loom.get(tally.incr.remote()))
print("job", int(loom.get_runtime_context().get_job_id(), 16))
"""

RESTARTED = """
import loom

loom.init(address="auto", namespace="keep")
tally = loom.get_actor("tally")
print("tally", loom.get(tally.incr.remote(), timeout=60))
loom.kill(tally)
"""


def values(out):
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def head_pid(root):
    return int((Path(root) / "session_latest" / "pids").read_text().split()[0])


def start_head_on_redis(processes, redis_server, *args):
    """`loom start --head` on a free port, its tables in redis_server."""
    start = subprocess.run(
        [loom_cli(), "start", "--head", "--port",
         str(_free_port_below_ephemeral()), "--num-cpus", "2",
         "--node-ip-address", "127.0.0.1", "--session-root",
         processes.session_root, "--storage", redis_server, *args],
        env=processes.env(), timeout=120, capture_output=True, text=True)
    assert start.returncode == 0, start.stdout + start.stderr


def kill_and_restart_head(processes, root, redis_server):
    """kill -9 the head, and start it again with the same command line and
    storage (`loom start` passes it in the environment)."""
    pid = head_pid(root)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10)
    head = subprocess.Popen([a.decode() for a in argv],
                            env=dict(processes.env(), LOOM_STORAGE=redis_server),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)
    processes._popens.append(head)


def test_a_head_restarted_on_redis_keeps_actors_functions_and_job_ids(
        processes, redis_server):
    cli = loom_cli()
    root = processes.session_root
    start_head_on_redis(processes, redis_server)
    try:
        rc, out, err = processes.run_driver(BEFORE)
        assert rc == 0, err
        before = values(out)
        assert before["tally"] == "1" and before["square"] == "49"

        kill_and_restart_head(processes, root, redis_server)

        # The named detached actor is found again and keeps its state; the
        # new driver's job id goes on from the old one's.
        rc, out, err = processes.run_driver(AFTER)
        assert rc == 0, err
        after = values(out)
        assert after["tally"] == "2"
        assert int(after["job"]) > int(before["job"])

        # The actor dies after the restart: the new head restarts it, and
        # its new worker finds the class in the function table (Redis).
        os.kill(int(before["pid"]), signal.SIGKILL)
        rc, out, err = processes.run_driver(RESTARTED)
        assert rc == 0, err
        assert values(out)["tally"] == "1"  # a fresh instance
    finally:
        subprocess.run([cli, "stop", "--session-root", root],
                       env=processes.env(), check=False, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_standby_head_started_by_the_cli_takes_over(processes, redis_server):
    cli = loom_cli()
    root = processes.session_root
    standby_root = tempfile.mkdtemp(prefix="ls-", dir="/tmp")
    port = _free_port_below_ephemeral()
    standby_port = _free_port_below_ephemeral()
    assert port != standby_port

    def start(args, session_root):
        done = subprocess.run(
            [cli, "start", "--head", "--node-ip-address", "127.0.0.1",
             "--session-root", session_root, "--storage", redis_server]
            + args, env=processes.env(), timeout=120, capture_output=True,
            text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        start(["--port", str(port), "--num-cpus", "2", "--standby-addresses",
               f"127.0.0.1:{standby_port}"], root)
        out = start(["--standby", "--port", str(standby_port)], standby_root)
        assert "standby head on" in out
        rc, out, err = processes.run_driver(BEFORE)
        assert rc == 0, err
        before = values(out)

        # kill -9 the active head: nobody starts it again; the standby takes
        # over, and the raylet and a new driver (address "auto": the list
        # in the session) follow.
        pid = head_pid(root)
        os.kill(pid, signal.SIGKILL)
        rc, out, err = processes.run_driver(AFTER)
        assert rc == 0, err
        after = values(out)
        assert after["tally"] == "2"
        assert int(after["job"]) > int(before["job"])
        assert (Path(standby_root) / "session_latest" / "gcs.ready").exists()
    finally:
        for r in (root, standby_root):
            subprocess.run([cli, "stop", "--session-root", r],
                           env=processes.env(), check=False, timeout=120,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(standby_root, ignore_errors=True)


def test_submitted_jobs_survive_a_head_restart_on_redis(processes,
                                                        redis_server):
    from loom.job_submission import JobStatus, JobSubmissionClient
    cli = loom_cli()
    root = processes.session_root
    start_head_on_redis(processes, redis_server, "--dashboard-port", "0")
    session = Path(root) / "session_latest"

    def client():
        token = (session / "auth_token").read_text().strip()
        return JobSubmissionClient(
            "http://" + (session / "dashboard_address").read_text().strip(),
            headers={"Authorization": f"Bearer {token}"})

    try:
        before = client()
        done = before.submit_job(entrypoint="echo first", submission_id="a-1")
        wait_until(lambda: before.get_job_status(done) == JobStatus.SUCCEEDED,
                   timeout=60, what="the first job to succeed")
        running = before.submit_job(entrypoint="sleep 5; echo second-done",
                                    submission_id="b-1")
        wait_until(lambda: before.get_job_status(running) == JobStatus.RUNNING,
                   timeout=60, what="the second job to run")

        (session / "dashboard_address").unlink()
        kill_and_restart_head(processes, root, redis_server)
        wait_until(lambda: (session / "dashboard_address").exists(),
                   timeout=60, what="the restarted head's job API")

        # What ended before is still there; what ran goes on, and its end,
        # reported by the raylet to the new head, is recorded.
        after = client()
        assert after.get_job_status("a-1") == JobStatus.SUCCEEDED
        assert "first" in after.get_job_logs("a-1")
        wait_until(lambda: after.get_job_status("b-1") == JobStatus.SUCCEEDED,
                   timeout=60, what="the second job to succeed after it")
        assert "second-done" in after.get_job_logs("b-1")
        assert after.submit_job(entrypoint="echo again",
                                submission_id="b-1") == "b-1"
    finally:
        subprocess.run([cli, "stop", "--session-root", root],
                       env=processes.env(), check=False, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_read_from_a_head_too_busy_to_answer_in_time_is_asked_again(
        no_cluster):
    # A head that answers nothing for 12 s (stopped: as one starved of CPU
    # by hundreds of workers starting at once): a worker's read of a
    # function's code outlasts its 10 s call deadline and is asked again,
    # instead of failing the task.
    from loom.cluster_utils import Cluster
    cluster = Cluster(head_node_args={"num_cpus": 1,
                                      "node_timeout_ms": 120000})
    try:
        cluster.connect()
        _core.kv_put("busy-head-key", b"value")
        gcs = cluster.head_node.pids[0]
        assert thread_states(gcs), f"no head process {gcs}"
        os.kill(gcs, signal.SIGSTOP)
        wake = threading.Timer(12, os.kill, (gcs, signal.SIGCONT))
        wake.start()
        try:
            # Every thread of the head stopped before the read is sent.
            wait_until(lambda: set(thread_states(gcs)) == {"T"}, timeout=5,
                       interval=0.01, what="the head's threads to stop")
            start = time.monotonic()
            assert _core.kv_get("busy-head-key") == b"value"
            took = time.monotonic() - start
            assert took >= 11, (
                f"answered in {took:.4f} s by a head whose threads are "
                f"{thread_states(gcs)} (pid {gcs}, at {cluster.address})")
        finally:
            wake.cancel()
            os.kill(gcs, signal.SIGCONT)
    finally:
        loom.shutdown()
        cluster.shutdown()
