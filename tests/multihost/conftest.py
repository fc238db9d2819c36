# tests/multihost/conftest.py
#
# Fixtures for the multihost suite: three network-namespace hosts
# (hosts.py) and a Loom cluster across them, new for each test.
#
#   def test_x(cluster):            # head on host 1, nodes on hosts 2, 3
#       h1, h2, h3 = cluster.net.hosts
#       rc, out, err = cluster.run_driver(h3, "import loom; ...")
#
# Where namespaces cannot be made (not root, no iproute2) every test is
# skipped with the reason; with CI=true they fail instead. Each test has a
# time limit (SIGALRM, 120 s or @pytest.mark.loom_timeout(seconds)); a test
# that fails prints the tail of every daemon's log.
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hosts  # noqa: E402

DEFAULT_TIMEOUT_S = 120


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "loom_timeout(seconds): the test's time limit")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("loom_timeout")
    limit = int(marker.args[0]) if marker else DEFAULT_TIMEOUT_S

    def on_alarm(signum, frame):
        raise TimeoutError(f"{item.nodeid} ran past its {limit} s limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def pytest_collection_modifyitems(config, items):
    # Once for the session: without namespaces every test is skipped with
    # the reason, or, with CI=true, the run fails at once.
    try:
        hosts.check_available()
        return
    except hosts.Unavailable as e:
        why = str(e)
    if os.environ.get("CI", "").lower() == "true":
        # Not the skip message, which ctest reports as a skip.
        pytest.exit(f"multihost: CI=true, so failing: no network namespaces "
                    f"here: {why}", returncode=1)
    message = f"multihost: cannot make network namespaces here: {why}"
    print(message, file=sys.stderr)
    for item in items:
        item.add_marker(pytest.mark.skip(reason=message))


@pytest.fixture
def net():
    """Three hosts; torn down after the test, even when it fails."""
    network = hosts.Network(3)
    try:
        yield network
    finally:
        network.close()


def _dump_logs(cluster):
    for host in cluster.net.hosts:
        try:
            logs = host.path(cluster.session_dir(host) + "/logs")
            for log in sorted(logs.glob("*.log")) + sorted(logs.glob("*.err")):
                text = log.read_text(errors="replace").splitlines()[-30:]
                if not text:
                    continue
                print(f"--- {host.name} {log.name} (last {len(text)} lines)")
                print("\n".join(text))
        except OSError as e:
            print(f"--- {host.name}: no logs ({e})")


@pytest.fixture
def make_cluster(net, request):
    """Factory: make_cluster(**LoomCluster options) starts Loom on the
    three hosts and returns it; stopped (and its logs printed when the test
    failed) at the end."""
    made = []

    def make(**options):
        cluster = hosts.LoomCluster(net, **options)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            _dump_logs(cluster)
        try:
            cluster.stop()
        except Exception as e:  # noqa: BLE001 - the network is torn down next
            print(f"loom stop failed: {e}")


@pytest.fixture
def cluster(make_cluster):
    return make_cluster()
