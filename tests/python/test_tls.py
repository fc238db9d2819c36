# tests/python/test_tls.py
#
# TLS between Loom processes (`loom tls init`, `loom start --tls-dir`,
# $LOOM_TLS_DIR): a cluster started with TLS runs tasks and actors for a
# driver with the cluster's certificates; a driver or command with none, or
# with another cluster's, is refused, saying why; a node certificate that
# does not name the node's address is refused at start. The head's HTTP
# API, `loom job` and the serve ingress speak HTTPS with the same files.

import http.client
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import loom_cli, serve_hello_driver, wait_until

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


def test_each_node_gets_a_certificate_of_its_own(processes, tmp_path,
                                                monkeypatch):
    certs = _tls_init(tmp_path / "certs", "127.0.0.5", "127.0.0.6")
    own, other = certs / "nodes" / "127.0.0.5", certs / "nodes" / "127.0.0.6"
    names = ssl._ssl._test_decode_cert(str(own / "node.pem"))["subjectAltName"]
    assert ("IP Address", "127.0.0.5") in names
    assert ("IP Address", "127.0.0.6") not in names

    def start(tls_dir):
        env = processes.env()
        env.pop("LOOM_TLS_DIR", None)
        return subprocess.run(
            [loom_cli(), "start", "--head", "--num-cpus", "2",
             "--node-ip-address", "127.0.0.5", "--session-root",
             processes.session_root, "--tls-dir", str(tls_dir)],
            env=env, capture_output=True, text=True, timeout=120)

    refused = start(other)  # another node's certificate
    assert refused.returncode != 0
    assert "nodes/127.0.0.5 is that node's own" in refused.stderr
    started = start(own)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        # A driver with another node's certificate from the same CA runs.
        monkeypatch.setenv("LOOM_TLS_DIR", str(other))
        code, out, err = processes.run_driver(DRIVER)
        assert code == 0 and "result 5 2" in out, out + err
    finally:
        subprocess.run([loom_cli(), "stop", "--session-root",
                        processes.session_root], env=processes.env(),
                       timeout=120, capture_output=True)


def test_a_missing_tls_directory_is_a_clear_error(processes, tmp_path):
    start = _start(processes, tmp_path / "nowhere")
    assert start.returncode != 0
    assert "cannot read" in start.stderr and "loom tls init" in start.stderr, (
        start.stdout + start.stderr)


def _https(url, ca, token):
    """GET `url` trusting only `ca`; (status, body)."""
    context = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30, context=context) as r:
        return r.status, r.read()


def test_the_http_api_speaks_only_https_with_the_clusters_certificate(
        tls_cluster, tmp_path, monkeypatch):
    processes, ours = tls_cluster
    session = Path(processes.session_root) / "session_latest"
    address = (session / "dashboard_address").read_text().strip()
    token = (session / "auth_token").read_text().strip()
    status, body = _https(f"https://{address}/api/version", ours / "ca.pem",
                          token)
    assert status == 200 and b"version" in body
    # The dashboard too: its data, and a login whose cookie is Secure.
    status, body = _https(f"https://{address}/api/dashboard/cluster",
                          ours / "ca.pem", token)
    assert status == 200 and json.loads(body)["alive_nodes"] >= 1
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPSConnection(
        host, int(port), timeout=30,
        context=ssl.create_default_context(cafile=str(ours / "ca.pem")))
    conn.request("POST", "/login", body=f"token={token}",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    login = conn.getresponse()
    assert login.status == 303
    assert "; Secure" in login.getheader("Set-Cookie"), login.getheaders()
    conn.close()
    # Plain HTTP gets no answer; a client trusting another CA refuses the
    # head's certificate.
    with pytest.raises((urllib.error.URLError, http.client.HTTPException,
                        ConnectionError)):
        urllib.request.urlopen(f"http://{address}/api/version", timeout=10)
    theirs = _tls_init(tmp_path / "theirs")
    with pytest.raises(urllib.error.URLError) as refused:
        _https(f"https://{address}/api/version", theirs / "ca.pem", token)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    # `loom job` goes over HTTPS with $LOOM_TLS_DIR.
    monkeypatch.setenv("LOOM_TLS_DIR", str(ours))
    submit = subprocess.run(
        [loom_cli(), "job", "submit", "--session-root", processes.session_root,
         "--", "echo", "over-tls"],
        env=processes.env(), capture_output=True, text=True, timeout=120)
    assert submit.returncode == 0, submit.stdout + submit.stderr
    assert "over-tls" in submit.stdout
    # So does the Python client (Ray's JobSubmissionClient), https:// by
    # default with $LOOM_TLS_DIR.
    from loom.job_submission import JobStatus, JobSubmissionClient
    monkeypatch.setenv("LOOM_AUTH_TOKEN", token)
    client = JobSubmissionClient(address)
    job = client.submit_job(entrypoint="echo python-over-tls")
    wait_until(lambda: client.get_job_status(job) == JobStatus.SUCCEEDED,
               timeout=60, what="the job to succeed")
    assert "python-over-tls" in client.get_job_logs(job)


SERVE_DRIVER = serve_hello_driver("hello over tls", """
context = ssl.create_default_context(
    cafile=os.path.join(os.environ["LOOM_TLS_DIR"], "ca.pem"))
req = urllib.request.Request(
    f"https://{proxy['node_ip']}:{proxy['port']}/hello",
    headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
with urllib.request.urlopen(req, timeout=60, context=context) as r:
    print("answer", r.status, r.read().decode())
serve.shutdown()
loom.shutdown()
""")


def test_the_serve_ingress_speaks_https(tls_cluster, monkeypatch):
    processes, ours = tls_cluster
    session = Path(processes.session_root) / "session_latest"
    monkeypatch.setenv("LOOM_TLS_DIR", str(ours))
    monkeypatch.setenv("TOKEN", (session / "auth_token").read_text().strip())
    code, out, err = processes.run_driver(SERVE_DRIVER, timeout=180)
    assert code == 0, out + err
    assert "answer 200 hello over tls" in out
