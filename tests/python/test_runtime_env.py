# tests/python/test_runtime_env.py
#
# runtime_env (docs/python.md): env_vars, working_dir, py_modules, pip and
# excludes at init, task and actor level; children inherit their caller's;
# workers are pooled per environment; pip installs once per node into a
# venv (a package from PyPI and a wheel this test builds), and a failed
# install is a clear RuntimeEnvSetupError naming its log. Across hosts that
# do not share the driver's files: tests/multihost.

import base64
import glob
import hashlib
import os
import zipfile

import pytest

import loom
from loom.exceptions import RuntimeEnvSetupError


@loom.remote
def env_var(name):
    return os.environ.get(name), os.getpid()


def test_env_vars_of_a_task_reach_its_worker_only(loom_cluster):
    value, pid = loom.get(env_var.options(runtime_env={
        "env_vars": {"LOOM_TEST_COLOUR": "teal"}}).remote("LOOM_TEST_COLOUR"))
    assert value == "teal"
    # A task without it runs in another worker (pooled per environment).
    plain, plain_pid = loom.get(env_var.remote("LOOM_TEST_COLOUR"))
    assert plain is None and plain_pid != pid


def make_project(root):
    wd = root / "project"
    (wd / "data").mkdir(parents=True)
    (wd / "data" / "numbers.txt").write_text("1 2 3")
    (wd / "project_helper.py").write_text("def double(x):\n    return 2 * x\n")
    (wd / "cache").mkdir()
    (wd / "cache" / "big.ckpt").write_text("left out")
    mods = root / "mods" / "shared_lib"
    mods.mkdir(parents=True)
    (mods / "__init__.py").write_text("NAME = 'shared_lib'\n")
    return wd, mods


@loom.remote
def use_project():
    import project_helper
    with open("data/numbers.txt") as f:
        numbers = [int(x) for x in f.read().split()]
    return ([project_helper.double(n) for n in numbers],
            os.path.exists("cache/big.ckpt"),
            os.environ.get("LOOM_TEST_JOB"))


@loom.remote
def parent_of_child():
    return loom.get(use_project.remote())


def test_a_jobs_working_dir_and_env_reach_tasks_and_their_children(
        new_cluster, tmp_path, monkeypatch):
    wd, _ = make_project(tmp_path)
    monkeypatch.chdir("/")  # the driver's own cwd holds none of it
    new_cluster(num_cpus=2, runtime_env={
        "working_dir": str(wd), "excludes": ["*.ckpt"],
        "env_vars": {"LOOM_TEST_JOB": "yes"}})
    expected = ([2, 4, 6], False, "yes")
    assert tuple(loom.get(use_project.remote())) == expected
    assert tuple(loom.get(parent_of_child.remote())) == expected
    # The copy the workers use is the unpacked package, not the original.
    cwd = loom.get(loom.remote(lambda: os.getcwd()).remote())
    assert cwd != str(wd) and "runtime_resources" in cwd


@loom.remote
class ModuleUser:
    def name(self):
        import shared_lib
        return shared_lib.NAME


def test_py_modules_of_an_actor(loom_cluster, tmp_path):
    _, mods = make_project(tmp_path)
    a = ModuleUser.options(runtime_env={"py_modules": [str(mods)]}).remote()
    assert loom.get(a.name.remote()) == "shared_lib"


def build_wheel(directory, name="loomtestwheel", value=42):
    """A pure-Python wheel of one module, built here by hand."""
    files = {f"{name}/__init__.py": f"VALUE = {value}\n".encode(),
             f"{name}-0.1.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n".encode(),
             f"{name}-0.1.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: loom-test\n"
                 b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"  # noqa: E501
        for n, d in files.items()) + f"{name}-0.1.dist-info/RECORD,,\n"
    path = os.path.join(directory, f"{name}-0.1-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
        z.writestr(f"{name}-0.1.dist-info/RECORD", record)
    return path


@loom.remote
class PipUser:
    def versions(self):
        import loomtestwheel
        import toolz
        return loomtestwheel.VALUE, toolz.__version__, os.getpid()


def pip_logs():
    from loom import _core  # the driver's session directory
    return glob.glob(os.path.join(_core.session_dir(), "logs",
                                  "runtime_env-pip-*.log"))


def test_pip_installs_once_per_node_into_a_venv(loom_cluster, tmp_path):
    wheel = build_wheel(str(tmp_path))
    env = {"pip": ["toolz==0.12.1", wheel]}
    first = PipUser.options(runtime_env=env).remote()
    value, version, pid1 = loom.get(first.versions.remote(), timeout=300)
    assert (value, version) == (42, "0.12.1")
    # A second actor of the same environment starts without reinstalling:
    # one install, logged once.
    second = PipUser.options(runtime_env=env).remote()
    value, version, pid2 = loom.get(second.versions.remote(), timeout=120)
    assert (value, version) == (42, "0.12.1") and pid2 != pid1
    logs = pip_logs()
    assert len(logs) == 1
    with open(logs[0]) as f:
        assert f.read().count("installing ") == 1
    # The driver's own interpreter is untouched.
    with pytest.raises(ImportError):
        import loomtestwheel  # noqa: F401


def test_a_failed_install_is_a_clear_error_with_its_log(loom_cluster):
    bad = env_var.options(runtime_env={
        "pip": ["loom-no-such-package-anywhere==9.9.9"]})
    with pytest.raises(RuntimeEnvSetupError) as e:
        loom.get(bad.remote("X"), timeout=300)
    message = str(e.value)
    assert "loom-no-such-package-anywhere" in message
    log = message.split("log: ")[1].split(", from any machine")[0]
    assert os.path.exists(log)
    # The cluster serves other work as before.
    assert loom.get(env_var.remote("HOME"))[0] is not None


def test_bad_runtime_envs_are_refused(loom_cluster):
    with pytest.raises(ValueError, match="conda"):
        env_var.options(runtime_env={"conda": "env"})
    with pytest.raises(TypeError):
        env_var.options(runtime_env={"env_vars": {"A": 1}})
    with pytest.raises(TypeError):
        env_var.options(runtime_env=["pip"])
    with pytest.raises(FileNotFoundError):
        env_var.options(runtime_env={"working_dir": "/no/such/dir"}).remote(
            "X")
