"""loom.serve's public API, with Ray Serve's names (see __init__.py)."""
import hashlib
import inspect
import json
import time

import cloudpickle

import loom
from loom import _core
from loom.serve import _batching
from loom.serve import _controller
from loom.serve import _router
from loom.serve._handle import DeploymentHandle
from loom.serve.exceptions import RayServeException

_DEFAULTS = {
    "num_replicas": 1,
    "max_ongoing_requests": 5,
    "max_queued_requests": -1,
    "autoscaling_config": None,
    "user_config": None,
    "ray_actor_options": None,
    "health_check_period_s": 10.0,
    "health_check_timeout_s": 30.0,
    "graceful_shutdown_timeout_s": 20.0,
}
_ALSO = {"name", "version", "num_cpus", "num_gpus", "route_prefix"}
_AUTOSCALING = {
    "min_replicas": 1, "max_replicas": 1, "initial_replicas": None,
    "target_ongoing_requests": 2.0, "upscale_delay_s": 30.0,
    "downscale_delay_s": 600.0, "target_p95_latency_ms": None,
}


def _check_autoscaling(config):
    if config is None:
        return None
    unknown = set(config) - set(_AUTOSCALING)
    if unknown:
        raise ValueError(f"unknown autoscaling_config keys {sorted(unknown)};"
                         f" known: {sorted(_AUTOSCALING)}")
    c = {**_AUTOSCALING, **config}
    if not 0 <= c["min_replicas"] <= c["max_replicas"] or \
            c["max_replicas"] < 1:
        raise ValueError("autoscaling_config needs 0 <= min_replicas <= "
                         "max_replicas and max_replicas >= 1")
    if c["target_ongoing_requests"] <= 0:
        raise ValueError("target_ongoing_requests must be > 0")
    return c


def _check_options(options):
    unknown = set(options) - set(_DEFAULTS) - _ALSO
    if unknown:
        raise TypeError(f"unknown deployment options {sorted(unknown)}; "
                        f"known: {sorted(set(_DEFAULTS) | _ALSO)}")
    n = options.get("num_replicas")
    if n is not None and n != "auto" and (not isinstance(n, int) or n < 0):
        raise ValueError(f"num_replicas must be an int >= 0, got {n!r}")
    m = options.get("max_ongoing_requests")
    if m is not None and (not isinstance(m, int) or m < 1):
        raise ValueError(f"max_ongoing_requests must be an int >= 1, got "
                         f"{m!r}")
    q = options.get("max_queued_requests")
    if q is not None and (not isinstance(q, int) or q < -1):
        raise ValueError(f"max_queued_requests must be an int >= -1, got "
                         f"{q!r}")
    _check_autoscaling(options.get("autoscaling_config"))


class Deployment:
    """A class or function made a deployment: `.bind(...)` makes an
    Application; `.options(...)` a changed copy."""

    def __init__(self, target, options, cpp=None):
        _check_options(options)
        self._target = target
        self._options = dict(options)
        self._cpp = cpp  # {"factory", "batch"} for a C++ deployment
        self.name = options.get("name") or \
            (cpp["factory"] if cpp else target.__name__)

    def options(self, **options):
        return Deployment(self._target, {**self._options, **options},
                          self._cpp)

    def bind(self, *args, **kwargs):
        return Application(self, args, kwargs)

    def __call__(self, *args, **kwargs):
        raise RayServeException(f"deployment {self.name} cannot be called "
                                "directly: .bind() it and serve.run() it")

    def _config(self):
        c = {**_DEFAULTS, **{k: v for k, v in self._options.items()
                             if k in _DEFAULTS}}
        actor = dict(c["ray_actor_options"] or {})
        for k in ("num_cpus", "num_gpus"):
            if k in self._options:
                actor[k] = self._options[k]
        c["ray_actor_options"] = actor
        if c["num_replicas"] == "auto":
            c["num_replicas"] = 1
            c["autoscaling_config"] = c["autoscaling_config"] or {
                "min_replicas": 1, "max_replicas": 100}
        c["autoscaling_config"] = _check_autoscaling(c["autoscaling_config"])
        return c


class Application:
    """A deployment bound to its arguments (which may be other
    applications: they become DeploymentHandles in the replica)."""

    def __init__(self, deployment, args, kwargs):
        self._deployment = deployment
        self._args = args
        self._kwargs = kwargs


def deployment(_target=None, **options):
    """@serve.deployment or @serve.deployment(num_replicas=2, ...)."""
    def wrap(target):
        if not (inspect.isclass(target) or inspect.isfunction(target)):
            raise TypeError("@serve.deployment goes on a class or a function")
        return Deployment(target, options)
    return wrap(_target) if _target is not None else wrap


def cpp_deployment(factory, *, batch=None, **options):
    """A deployment of C++ code: `factory` is the name LOOM_SERVE_DEPLOYMENT
    registered (include/loom/serve.h), in a library the cluster's C++
    workers load (loom.init(code_search_path=[...])). Its .bind() takes
    the factory's arguments (msgpack values). batch: {"max_batch_size",
    "batch_wait_timeout_s", "preferred_batch_sizes"} to send requests in
    batches."""
    if not isinstance(factory, str) or not factory:
        raise TypeError("cpp_deployment needs the factory's registered name")
    cpp = {"factory": factory, "batch": None}
    if batch is not None:
        b = dict(batch)
        size = b.pop("max_batch_size", 10)
        wait = b.pop("batch_wait_timeout_s", 0.01)
        preferred = list(b.pop("preferred_batch_sizes", None) or ())
        if b:
            raise TypeError(f"unknown batch keys {sorted(b)}")
        _batching._check(size, wait, preferred)
        cpp["batch"] = (size, float(wait), preferred)
    return Deployment(None, options, cpp)


def _build(app, app_name):
    """The ingress deployment's name and every deployment's spec."""
    specs = {}

    def visit(a):
        d = a._deployment
        if d.name in specs:
            if specs[d.name]["_app"] is not a:
                raise RayServeException(f"two deployments named {d.name!r} "
                                        f"in application {app_name!r}")
            return d.name

        def handle(v):
            if isinstance(v, Application):
                return DeploymentHandle(app_name, visit(v))
            return v

        args = tuple(handle(v) for v in a._args)
        kwargs = {k: handle(v) for k, v in a._kwargs.items()}
        config = d._config()
        if d._cpp:
            if kwargs or any(isinstance(v, DeploymentHandle) for v in args):
                raise TypeError(f"C++ deployment {d.name} takes positional "
                                "msgpack values, not keywords or handles")
            specs[d.name] = {
                "_app": a, "name": d.name, "definition": b"",
                "init_args": b"", "is_function": False, "config": config,
                "cpp_factory": d._cpp["factory"], "cpp_args": list(args),
                "batched": {"__call__": d._cpp["batch"]}
                if d._cpp["batch"] else {},
                "version": str(d._options.get("version") or hashlib.sha1(
                    repr((d._cpp, args, config["ray_actor_options"],
                          config["max_ongoing_requests"])).encode()
                ).hexdigest()[:16]),
            }
            return d.name
        definition = cloudpickle.dumps(d._target)
        init_args = cloudpickle.dumps((args, kwargs))
        h = hashlib.sha1(definition + init_args)
        for k in ("ray_actor_options", "max_ongoing_requests",
                  "max_queued_requests"):
            h.update(repr(config[k]).encode())
        specs[d.name] = {
            "_app": a, "name": d.name, "definition": definition,
            "init_args": init_args, "is_function": inspect.isfunction(
                d._target), "config": config,
            "batched": _batching.batched_methods(d._target),
            "streaming": _batching.streaming_methods(d._target),
            "version": str(d._options.get("version") or h.hexdigest()[:16]),
        }
        return d.name

    ingress = visit(app)
    for s in specs.values():
        del s["_app"]
    return ingress, list(specs.values())


_get_controller = _controller.get


def start(http_options=None, **_ignored):
    """Starts serving (the controller, and a proxy per node) if it is not
    running. http_options: host (default: each node's address), port
    (8000; 0 picks a free one per node; a node's "serve_port" label wins),
    api_key (accepted besides the cluster token), location ("NoServer":
    no HTTP)."""
    loom._private.worker.check_connected()
    try:
        return _get_controller()
    except ValueError:
        pass
    options = dict(http_options or {})
    options.setdefault("port", 8000)
    controller = loom.remote(_controller.ServeController).options(
        name=_controller.CONTROLLER_NAME, namespace=_controller.NAMESPACE,
        lifetime="detached", num_cpus=0, max_concurrency=10000,
        get_if_exists=True).remote(options)
    loom.get(controller.start.remote())
    return controller


def _prefix(route_prefix):
    if route_prefix is None:
        return None
    if not isinstance(route_prefix, str) or not route_prefix.startswith("/"):
        raise ValueError(f"route_prefix must start with '/', got "
                         f"{route_prefix!r}")
    return route_prefix.rstrip("/") or "/"


# Each application deployed is recorded in the head's KV store (namespace
# "serve", key "app/NAME"); the head's audit log records who deployed and
# deleted what (docs/security.md). Written before the controller is asked,
# so that a caller without the right is refused, and logged, first.
def _record_deploy(name, route_prefix, ingress, specs):
    record = {"route_prefix": route_prefix, "ingress": ingress,
              "deployments": {s["name"]: s["version"] for s in specs},
              "time": time.time()}
    _core.kv_put(f"app/{name}", json.dumps(record).encode(), ns="serve")


def _record_delete(name):
    _core.kv_del(f"app/{name}", ns="serve")


def run(target, blocking=False, name="default", route_prefix="/",
        _timeout_s=None, **_ignored):
    """Deploys an application (updating it in place when it runs) and
    waits until it is RUNNING; returns a handle to its ingress."""
    if isinstance(target, Deployment):
        target = target.bind()
    if not isinstance(target, Application):
        raise TypeError("serve.run takes an application: "
                        "MyDeployment.bind(...)")
    controller = start()
    ingress, specs = _build(target, name)
    route = target._deployment._options.get("route_prefix", route_prefix)
    _record_deploy(name, _prefix(route), ingress, specs)
    loom.get(controller.deploy_app.remote(name, _prefix(route), ingress,
                                          specs))
    _wait(name, lambda s: s is not None and s["status"] == "RUNNING",
          _timeout_s)
    handle = DeploymentHandle(name, ingress)
    if blocking:
        while True:
            time.sleep(3600)
    return handle


def _app_status(name):
    apps = loom.get(_get_controller().status.remote())["applications"]
    return apps.get(name)


def _wait(name, done, timeout_s):
    end = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        s = _app_status(name)
        if done(s):
            return s
        if s is not None and s["status"] == "DEPLOY_FAILED":
            messages = "; ".join(d["message"] for d in
                                 s["deployments"].values() if d["message"])
            raise RayServeException(f"application {name!r} failed to "
                                    f"deploy: {messages}")
        if end is not None and time.monotonic() > end:
            raise TimeoutError(f"application {name!r} is not ready after "
                               f"{timeout_s} s: {s}")
        time.sleep(0.05)


class _Status(dict):
    """A dict whose keys are also attributes (status.applications["app"]
    .deployments["Model"].status)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(value):
    if isinstance(value, dict):
        return _Status({k: _wrap(v) for k, v in value.items()})
    return value


def status():
    """Applications (status, route prefix, deployments with their replicas,
    load, latency and answers) and proxies (node, address, port)."""
    try:
        controller = _get_controller()
    except ValueError:
        return _wrap({"applications": {}, "proxies": {}})
    return _wrap(loom.get(controller.status.remote()))


def delete(name, _blocking=True):
    """Deletes an application: its replicas stop, its route goes."""
    _record_delete(name)
    loom.get(_get_controller().delete_app.remote(name))
    if _blocking:
        _wait(name, lambda s: s is None, 60)


def shutdown():
    """Deletes every application and stops serving."""
    try:
        controller = _get_controller()
    except ValueError:
        return
    for key in _core.kv_keys("app/", ns="serve"):
        _record_delete(key[len("app/"):])
    loom.get(controller.shutdown.remote())
    loom.kill(controller)
    _core.kv_del("status", ns="serve")  # the dashboard's: nothing serves
    _router.forget()


def get_app_handle(name):
    s = _app_status(name)
    if s is None:
        raise RayServeException(f"no application named {name!r}")
    return DeploymentHandle(name, s["ingress"])


def get_deployment_handle(deployment_name, app_name="default"):
    s = _app_status(app_name)
    if s is None or deployment_name not in s["deployments"]:
        raise RayServeException(f"no deployment {deployment_name!r} in "
                                f"application {app_name!r}")
    return DeploymentHandle(app_name, deployment_name)
