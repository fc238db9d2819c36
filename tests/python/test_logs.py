# tests/python/test_logs.py
#
# `loom logs` (docs/operations.md): every node's log files listed through
# the head, one file printed whole, its last lines, or followed as it
# grows; names outside the log directory refused. A failed runtime_env
# install names the command that shows its log.

import os
import subprocess

import pytest

import loom
from loom.exceptions import RuntimeEnvSetupError

from conftest import loom_cli, wait_until


@loom.remote
def noop():
    return os.getpid()


def run_logs(*args, check=True):
    session = loom._core.session_dir()
    with open(os.path.join(session, "address")) as f:
        address = f.read().strip()
    r = subprocess.run(
        [loom_cli(), "logs", *args, "--address", address, "--session-root",
         os.path.dirname(session)],
        capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def log_dir():
    return os.path.join(loom._core.session_dir(), "logs")


def test_lists_and_prints_a_nodes_log_files(loom_cluster):
    listing = run_logs().stdout
    node = loom.get_runtime_context().get_node_id()
    assert f"node {node}" in listing
    with open(os.path.join(log_dir(), "loom-test-print.log"), "w") as f:
        f.write("".join(f"line {i}\n" for i in range(1, 1001)))
    assert "loom-test-print.log" in run_logs().stdout
    whole = run_logs("loom-test-print.log").stdout
    assert whole.splitlines() == [f"line {i}" for i in range(1, 1001)]
    assert run_logs("loom-test-print.log", "--tail", "3").stdout == \
        "line 998\nline 999\nline 1000\n"
    assert run_logs("loom-test-print.log", "--node-id", node[:8],
                    "--tail", "1").stdout == "line 1000\n"


def test_follows_a_growing_file(loom_cluster):
    path = os.path.join(log_dir(), "loom-test-follow.log")
    with open(path, "w") as f:
        f.write("first\n")
    session = loom._core.session_dir()
    with open(os.path.join(session, "address")) as f:
        address = f.read().strip()
    out_path = os.path.join(session, "follow.out")
    with open(out_path, "w") as out:
        follow = subprocess.Popen(
            [loom_cli(), "logs", "loom-test-follow.log", "--follow",
             "--address", address, "--session-root",
             os.path.dirname(session)], stdout=out, stderr=subprocess.STDOUT)
    try:
        def printed():
            with open(out_path) as f:
                return f.read()
        wait_until(lambda: "first" in printed(), timeout=30,
                   what="the file's first line")
        with open(path, "a") as f:
            f.write("second\n")
        wait_until(lambda: "second" in printed(), timeout=30,
                   what="the line appended later")
        assert follow.poll() is None  # still following
    finally:
        follow.kill()
        follow.wait()


def test_refuses_what_is_not_a_log_file(loom_cluster):
    r = run_logs("no-such-file.log", check=False)
    assert r.returncode == 1 and "no node has a log file" in r.stderr
    node = loom.get_runtime_context().get_node_id()
    r = run_logs("../address", "--node-id", node, check=False)
    assert r.returncode == 1 and "not a log file name" in r.stderr
    # The head and the raylet serve as before.
    assert f"node {node}" in run_logs().stdout
    assert loom.get(noop.remote()) > 0


def test_a_failed_pip_install_names_the_loom_logs_command(loom_cluster):
    bad = noop.options(runtime_env={
        "pip": ["loom-no-such-package-either==9.9.9"]})
    with pytest.raises(RuntimeEnvSetupError) as e:
        loom.get(bad.remote(), timeout=300)
    command = str(e.value).split("`loom logs ")[1].split("`")[0].split()
    log = run_logs(*command).stdout
    assert "loom-no-such-package-either" in log
    assert loom.get(noop.remote()) > 0


@loom.remote
class Talker:
    def say(self, text):
        print(text)
        return os.getpid()


def test_a_process_output_by_actor_or_pid(loom_cluster):
    talker = Talker.remote()
    pid = loom.get(talker.say.remote("talker line one"))
    loom.get(talker.say.remote("talker line two"))
    actor = talker._actor_id.hex()

    def shown(*args):
        return run_logs(*args).stdout

    wait_until(lambda: "talker line two" in shown("--actor-id", actor),
               timeout=30, what="the actor's output")
    # Its own lines only, without their "(pid=N) " prefix, and the tail.
    by_actor = shown("--actor-id", actor)
    assert by_actor.splitlines() == ["talker line one", "talker line two"]
    node = loom.get_runtime_context().get_node_id()
    assert shown("--pid", str(pid), "--node-id", node, "--tail", "1") == \
        "talker line two\n"
    r = run_logs("--actor-id", "00" * 3, check=False)
    assert r.returncode == 1 and "not an actor id" in r.stderr


def test_the_python_state_api_reads_logs(loom_cluster):
    from loom.util.state import get_log, list_logs
    node = loom.get_runtime_context().get_node_id()
    assert "raylet.log" in list_logs()[node]
    with open(os.path.join(log_dir(), "loom-test-state.log"), "w") as f:
        f.write("a\nb\nc\n")
    assert "".join(get_log("loom-test-state.log", tail=2)) == "b\nc\n"
    assert "".join(get_log("loom-test-state.log", node_id=node,
                           tail=-1)) == "a\nb\nc\n"
    talker = Talker.remote()
    loom.get(talker.say.remote("said through the state api"))
    wait_until(lambda: "said through the state api" in
               "".join(get_log(actor_id=talker)), timeout=30,
               what="the actor's output through get_log")
    with pytest.raises(ValueError):
        next(get_log())
