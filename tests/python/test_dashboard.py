# tests/python/test_dashboard.py
#
# The dashboard (docs/observability.md "Dashboard") in a real browser:
# Debian's headless Chromium driven by Selenium through Debian's
# chromedriver, against a real cluster with a running submitted job, an
# alive and a dead actor, failed tasks, spilled objects and a placement
# group. A request without the token gets the login form, not data; once
# signed in, each page loads with no console error and shows those
# entities; the job's page follows a line printed after it opened; the job
# is stopped from its page (with confirmation). A screenshot of each page
# goes to build/test-output/dashboard/.

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT, loom_cli, serve_hello_driver, wait_until

SHOTS = REPO_ROOT / "build" / "test-output" / "dashboard"

JOB = """
import os, sys, threading, time
import numpy as np
import loom
loom.init(address="auto")
from loom.util.placement_group import placement_group

@loom.remote(num_cpus=0)
class Keeper:
    def __init__(self, tick=False):
        def ticks():
            i = 0
            while True:
                print(f"keeper-tick {i}", flush=True)
                i += 1
                time.sleep(0.5)
        if tick:
            threading.Thread(target=ticks, daemon=True).start()

    def ping(self):
        return "pong"

keeper = Keeper.options(name="keeper-alive", num_cpus=1).remote(True)
gone = Keeper.options(name="keeper-gone").remote()
loom.get([keeper.ping.remote(), gone.ping.remote()], timeout=60)
loom.kill(gone)

@loom.remote(max_retries=0)
def doomed(i):
    raise ValueError(f"dashboard-marker-failure {i}")

for ref in [doomed.remote(i) for i in range(3)]:
    try:
        loom.get(ref, timeout=60)
    except Exception:
        pass

# 6 x 16 MiB held in a 64 MiB store: the first ones spill to disk.
held = [loom.put(np.full(16 << 20, i, dtype=np.uint8)) for i in range(6)]
pg = placement_group([{"CPU": 1}], strategy="PACK", name="dash-pg")
loom.get(pg.ready(), timeout=60)
print("dashboard-job-ready", flush=True)
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.1)
print("dashboard-late-line", flush=True)
while True:
    time.sleep(0.5)
"""


# Linked from the cluster page (nothing listens there).
GRAFANA = "http://127.0.0.1:9/d/loom?orgId=1"
PROMETHEUS = "https://127.0.0.1:9/graph"


@pytest.fixture
def small_store_head(processes):
    """`loom start --head` (3 CPUs, a 64 MiB store) in a session root of its
    own; stopped with `loom stop` at the end."""
    cli = loom_cli()
    root = processes.session_root
    log = processes.tmp_dir / "loom-start.log"
    with open(log, "w") as out:
        start = subprocess.run(
            [cli, "start", "--head", "--num-cpus", "3", "--node-ip-address",
             "127.0.0.1", "--object-store-memory", str(64 << 20),
             "--grafana-url", GRAFANA, "--prometheus-url", PROMETHEUS,
             "--session-root", root],
            env=processes.env(), timeout=120, stdout=out,
            stderr=subprocess.STDOUT)
    if start.returncode != 0:
        pytest.fail(f"loom start exited with {start.returncode}:\n"
                    f"{log.read_text()}")
    try:
        yield processes
    finally:
        subprocess.run([cli, "stop", "--session-root", root],
                       env=processes.env(), check=False, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    assert chromium and driver, (
        "chromium and chromium-driver (Debian) are needed: "
        "scripts/install-deps.sh installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                "--no-first-run", "--disable-extensions"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def _console_errors(browser):
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_the_dashboard_shows_the_cluster_in_a_browser(small_store_head,
                                                      tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    processes = small_store_head
    session = Path(processes.session_root) / "session_latest"
    address = (session / "dashboard_address").read_text().strip()
    token = (session / "auth_token").read_text().strip()
    base = f"http://{address}"

    # Without the token: no data, and the pages are the login form.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/api/dashboard/cluster", timeout=30)
    assert refused.value.code == 401
    with urllib.request.urlopen(f"{base}/", timeout=30) as r:
        page = r.read().decode()
    assert 'name="token"' in page and "127.0.0.1" not in page

    script = tmp_path / "job.py"
    script.write_text(JOB)
    go = tmp_path / "go"
    submit = subprocess.run(
        [loom_cli(), "job", "submit", "--session-root",
         processes.session_root, "--submission-id", "dash-job", "--no-wait",
         "--", sys.executable, str(script), str(go)],
        env=processes.env(), capture_output=True, text=True, timeout=60)
    assert submit.returncode == 0, submit.stdout + submit.stderr

    def api(path):
        req = urllib.request.Request(
            base + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def job_output():
        req = urllib.request.Request(
            f"{base}/api/jobs/dash-job/logs",
            headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["logs"]
    wait_until(lambda: "dashboard-job-ready" in job_output(), timeout=120,
               interval=0.5, what="the job to set up its actors and objects")

    SHOTS.mkdir(parents=True, exist_ok=True)
    browser = _browser()
    try:
        wait = WebDriverWait(browser, 30)

        def shows(*texts):
            wait.until(lambda b: all(t in b.find_element(By.ID, "view").text
                                     for t in texts))

        def visit(name, hash_, *texts):
            browser.get(f"{base}/#/{hash_}")
            shows(*texts)
            browser.save_screenshot(str(SHOTS / f"{name}.png"))
            text = browser.find_element(By.ID, "view").text
            for broken in ["[object", "undefined", "NaN"]:
                assert broken not in text, f"{name}: {broken} in {text}"
            assert "null" not in text.splitlines(), f"{name}: {text}"
            errors = _console_errors(browser)
            assert not errors, f"{name}: {errors}"

        browser.get(f"{base}/")
        assert browser.find_elements(By.NAME, "token")
        browser.save_screenshot(str(SHOTS / "login.png"))
        field = browser.find_element(By.NAME, "token")
        field.send_keys("not-the-token")
        field.submit()
        wait.until(lambda b: "not one this cluster knows" in b.page_source)
        # That refusal (401) is the one error the console should have.
        refusals = _console_errors(browser)
        assert all("/login" in e["message"] for e in refusals), refusals
        field = browser.find_element(By.NAME, "token")
        field.send_keys(token)
        field.submit()
        shows("Nodes", "127.0.0.1")

        visit("cluster", "cluster", "127.0.0.1", "ALIVE", "nodes alive",
              "% of ", "GiB", "leased", "Tasks per second",
              "Resources in use", "Memory and object store")
        links = {a.text: a.get_attribute("href")
                 for a in browser.find_elements(By.CSS_SELECTOR, "p.links a")}
        assert links == {"Grafana ↗": GRAFANA,
                         "Prometheus ↗": PROMETHEUS}, links
        visit("jobs", "jobs", "dash-job", "RUNNING")
        visit("actors", "actors", "Keeper", "keeper-alive", "keeper-gone",
              "DEAD")
        visit("tasks", "tasks", "doomed", "dashboard-marker-failure",
              "ValueError")
        visit("objects", "objects", "Store used", "Largest objects",
              "References")
        spilled = browser.find_element(By.ID, "view").text
        assert "(0 objects)" not in spilled, spilled
        # The job's driver owns and holds the objects: their owner counts
        # its references.
        largest = [o for n in api("/api/dashboard/objects")["nodes"]
                   for o in n["largest_objects"]]
        held = [o for o in largest if o["size"] >= 16 << 20]
        assert held, largest
        for o in held:
            assert o["references_error"] is None, o
            assert o["references"]["total"] >= 1, o
        visit("placement-groups", "placement-groups", "dash-pg", "CREATED")
        visit("logs", "logs", "127.0.0.1", "raylet.log")
        alive = api("/api/dashboard/actors?state=ALIVE")["actors"]
        keeper = next(a for a in alive if a["name"] == "keeper-alive")
        visit("actor-alive", f"actors/{keeper['actor_id']}", "keeper-alive",
              "Resources held", "CPU: 1", "keeper-tick")
        # Its output follows on the page: more lines come without a reload.

        def ticks():
            return browser.find_element(By.ID, "actor-log").text.count(
                "keeper-tick")
        seen = ticks()
        wait.until(lambda b: ticks() >= seen + 2)
        assert "(pid=" not in browser.find_element(By.ID, "actor-log").text
        dead = api("/api/dashboard/actors?state=DEAD")["actors"][0]
        visit("actor", f"actors/{dead['actor_id']}", "keeper-gone",
              "killed by", "Calls")
        node = dead["node_id"]
        job = next(j for j in api("/api/dashboard/jobs")["jobs"]
                   if j["submission_id"] == "dash-job")
        assert job["driver_node_id"] == node, job
        visit("log-file", f"logs?node={node}&name=raylet.log",
              "Every file of this node", "raylet")

        # On a phone's width the page fits (tables scroll inside it).
        browser.set_window_size(390, 844)
        visit("cluster-phone", "cluster", "127.0.0.1", "nodes alive")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a phone"
        browser.set_window_size(1280, 900)

        # The job's page follows its output: a line printed after it opened.
        visit("job", "jobs/dash-job", "dashboard-job-ready", "Stop job",
              "Entrypoint", "job.py", "RUNNING", "Its actors")
        go.touch()
        wait.until(lambda b: "dashboard-late-line" in
                   b.find_element(By.ID, "job-log").text)
        browser.save_screenshot(str(SHOTS / "job-following.png"))

        # Stopping it asks first.
        browser.find_element(By.XPATH, "//button[text()='Stop job']").click()
        wait.until(lambda b: b.switch_to.alert)
        browser.switch_to.alert.accept()

        def stopped():
            req = urllib.request.Request(
                f"{base}/api/jobs/dash-job",
                headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())["status"] == "STOPPED"
        wait_until(stopped, timeout=60, interval=0.5, what="the job to stop")

        # The charts' history: a sample every 10 s, with the node's CPUs
        # and, while the dashboard is looked at, its memory and store.
        def sampled():
            return [s for s in api("/api/dashboard/history")["samples"]
                    if s["cpu_total"] == 3 and "store_capacity" in s]
        wait_until(sampled, timeout=30, interval=1,
                   what="a sample of the node in the history")
        assert sampled()[-1]["store_capacity"] == 64 << 20
        errors = _console_errors(browser)
        assert not errors, errors
    finally:
        browser.quit()


SERVING = serve_hello_driver("hello from serve", '''
for _ in range(5):
    req = urllib.request.Request(
        f"http://{proxy['node_ip']}:{proxy['port']}/hello",
        headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
print("served", flush=True)
while not os.path.exists("GO"):  # the test's signal, in the cwd
    time.sleep(0.1)
serve.shutdown()
from loom import _core
_core.kv_put("status", b"not json {", ns="serve")
print("garbled", flush=True)
loom.shutdown()
''')


def test_the_serve_page_shows_deployments_from_the_controller(head_node,
                                                             monkeypatch):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    processes = head_node
    session = Path(processes.session_root) / "session_latest"
    base = "http://" + (session / "dashboard_address").read_text().strip()
    token = (session / "auth_token").read_text().strip()

    def api(path):
        req = urllib.request.Request(
            base + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    assert api("/api/dashboard/serve") == {"serving": False}
    monkeypatch.setenv("TOKEN", token)
    go = processes.tmp_dir / "GO"  # the driver's working directory
    driver = processes.start_driver(SERVING)
    try:
        # The controller puts its status once a second while it changes.
        def served():
            s = api("/api/dashboard/serve")
            if not s["serving"]:
                return None
            app = s["status"]["applications"].get("hello")
            dep = app and app["deployments"].get("hello")
            return dep and dep["stats"]["requests"] >= 5 and s
        status = wait_until(served, timeout=90, interval=0.5,
                            what="the controller's status with 5 requests")
        assert status["status"]["applications"]["hello"]["status"] == \
            "RUNNING"
        browser = _browser()
        try:
            browser.get(f"{base}/")
            field = browser.find_element(By.NAME, "token")
            field.send_keys(token)
            field.submit()
            browser.get(f"{base}/#/serve")
            WebDriverWait(browser, 30).until(
                lambda b: "HEALTHY" in b.find_element(By.ID, "view").text)
            text = browser.find_element(By.ID, "view").text
            for shown in ["hello", "RUNNING", "/hello", "Proxies",
                          "Requests/s", "503s"]:
                assert shown in text, text
            SHOTS.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(SHOTS / "serve.png"))
            errors = _console_errors(browser)
            assert not errors, errors
        finally:
            browser.quit()
        go.touch()
        # After serve.shutdown nothing is served; a garbled status written
        # by a job is refused with a clear message, not passed on.
        wait_until(lambda: "error" in api("/api/dashboard/serve"),
                   timeout=60, interval=0.5, what="the garbled status")
        assert "not JSON" in api("/api/dashboard/serve")["error"]
        out, err = driver.communicate(timeout=60)
        assert driver.returncode == 0, out + err
        assert "garbled" in out
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()


def test_a_change_on_the_strength_of_the_cookie_alone_needs_the_header(
        head_node):
    processes = head_node
    session = Path(processes.session_root) / "session_latest"
    address = (session / "dashboard_address").read_text().strip()
    token = (session / "auth_token").read_text().strip()
    cookie = {"Cookie": f"loom_token={token}"}
    # Reads with the cookie work; a stop without the header is refused
    # (another site's form could send the cookie, not the header).
    req = urllib.request.Request(f"http://{address}/api/dashboard/jobs",
                                 headers=cookie)
    with urllib.request.urlopen(req, timeout=30) as r:
        assert "jobs" in json.loads(r.read())
    req = urllib.request.Request(f"http://{address}/api/jobs/nope/stop",
                                 method="POST", headers=cookie, data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 403
    assert "X-Loom-Dashboard" in refused.value.read().decode()
    req = urllib.request.Request(
        f"http://{address}/api/jobs/nope/stop", method="POST", data=b"",
        headers=dict(cookie, **{"X-Loom-Dashboard": "1"}))
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(req, timeout=30)
    assert missing.value.code == 404  # past the check: no such job
    # Bad paging is refused, saying why.
    req = urllib.request.Request(
        f"http://{address}/api/dashboard/actors?limit=100000", headers=cookie)
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(req, timeout=30)
    assert bad.value.code == 400
    assert "limit must be a number from 1 to 500" in bad.value.read().decode()


def test_a_metrics_link_that_is_not_an_http_url_is_refused(processes):
    # The head refuses it at start (the page would otherwise carry it).
    start = subprocess.run(
        [loom_cli(), "start", "--head", "--num-cpus", "1",
         "--node-ip-address", "127.0.0.1", "--session-root",
         processes.session_root, "--grafana-url", "javascript:alert(1)"],
        env=processes.env(), timeout=120, capture_output=True, text=True)
    try:
        assert start.returncode != 0, start.stdout + start.stderr
        out = start.stdout + start.stderr
        assert "--grafana-url" in out and "http" in out, out
    finally:
        subprocess.run([loom_cli(), "stop", "--session-root",
                        processes.session_root], env=processes.env(),
                       check=False, timeout=120, capture_output=True)
