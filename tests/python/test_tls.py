# tests/python/test_tls.py
#
# TLS between Loom processes (`loom tls init`, `loom start --tls-dir`,
# $LOOM_TLS_DIR): a cluster started with TLS runs tasks and actors for a
# driver with the cluster's certificates; a driver or command with none, or
# with another cluster's, is refused, saying why; a node certificate that
# does not name the node's address is refused at start.

import subprocess

import pytest

from conftest import loom_cli

DRIVER = """
import loom
loom.init(address="auto")

@loom.remote
def add(a, b):
    return a + b

@loom.remote
class Counter:
    def __init__(self):
        self.n = 0
    def incr(self):
        self.n += 1
        return self.n

c = Counter.remote()
c.incr.remote()
print("result", loom.get(add.remote(2, 3), timeout=60),
      loom.get(c.incr.remote(), timeout=60))
loom.shutdown()
"""


def _tls_init(directory, *ips):
    args = [loom_cli(), "tls", "init", str(directory)]
    for ip in ips:
        args += ["--ip", ip]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return directory


def _start(processes, tls_dir):
    env = processes.env()
    env.pop("LOOM_TLS_DIR", None)
    return subprocess.run(
        [loom_cli(), "start", "--head", "--num-cpus", "2", "--node-ip-address",
         "127.0.0.1", "--session-root", processes.session_root, "--tls-dir",
         str(tls_dir)],
        env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tls_cluster(processes, tmp_path):
    ours = _tls_init(tmp_path / "ours")
    start = _start(processes, ours)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield processes, ours
    finally:
        subprocess.run([loom_cli(), "stop", "--session-root",
                        processes.session_root], env=processes.env(),
                       timeout=120, capture_output=True)


def test_a_tls_cluster_serves_drivers_with_its_certificates(tls_cluster,
                                                            monkeypatch):
    processes, ours = tls_cluster
    monkeypatch.setenv("LOOM_TLS_DIR", str(ours))
    code, out, err = processes.run_driver(DRIVER)
    assert code == 0, err
    assert "result 5 2" in out
    status = subprocess.run([loom_cli(), "status", "--session-root",
                             processes.session_root], env=processes.env(),
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "CPU" in status.stdout


def test_a_driver_without_the_clusters_certificates_is_refused(
        tls_cluster, tmp_path, monkeypatch):
    processes, _ = tls_cluster
    theirs = _tls_init(tmp_path / "theirs")
    monkeypatch.setenv("LOOM_TLS_DIR", str(theirs))
    code, _, err = processes.run_driver(DRIVER)
    assert code != 0
    assert "TLS" in err and "loom tls init" in err, err
    monkeypatch.delenv("LOOM_TLS_DIR")
    code, _, err = processes.run_driver(DRIVER)
    assert code != 0
    assert "LOOM_TLS_DIR" in err, err
    status = subprocess.run([loom_cli(), "status", "--session-root",
                             processes.session_root], env=processes.env(),
                            capture_output=True, text=True, timeout=60)
    assert status.returncode != 0
    assert "LOOM_TLS_DIR" in status.stderr, status.stderr


def test_a_certificate_that_does_not_name_the_node_is_refused_at_start(
        processes, tmp_path):
    # The certificate names 127.0.0.1 and this machine's address; the node
    # advertises another of its loopback addresses.
    certs = _tls_init(tmp_path / "certs")
    env = processes.env()
    start = subprocess.run(
        [loom_cli(), "start", "--head", "--num-cpus", "1", "--node-ip-address",
         "127.0.0.5", "--session-root", processes.session_root,
         "--tls-dir", str(certs)],
        env=env, capture_output=True, text=True, timeout=120)
    assert start.returncode != 0
    assert "does not name this node's address 127.0.0.5" in start.stderr, (
        start.stdout + start.stderr)
    assert "--ip 127.0.0.5" in start.stderr


def test_a_missing_tls_directory_is_a_clear_error(processes, tmp_path):
    start = _start(processes, tmp_path / "nowhere")
    assert start.returncode != 0
    assert "cannot read" in start.stderr and "loom tls init" in start.stderr, (
        start.stdout + start.stderr)
