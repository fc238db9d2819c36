"""The serve controller: one detached async actor ("SERVE_CONTROLLER", in
namespace "serve") that owns the applications, starts and stops their
replicas and the HTTP proxies, checks health, rolls updates over,
autoscales, and publishes the routing table that every router in the
cluster long-polls (`listen`).

Replicas move STARTING -> RUNNING -> STOPPING. A RUNNING replica is in the
table; one being stopped leaves the table first, then gets
graceful_shutdown_timeout_s to finish what it runs, then is killed. An
update starts the new version's replicas and retires an old one each time
a new one is RUNNING, so the deployment never runs below its target.
A replica whose health check fails or whose process dies is replaced.

Replicas and proxies are detached actors, like the controller, so that
they outlive the driver that deployed them (the job ends, serving does
not); the controller kills them when their application is deleted or
serving shuts down."""
import asyncio
import json
import math
import time
import uuid

import loom
from loom.serve import _replica
from loom.util.scheduling_strategies import NodeAffinitySchedulingStrategy

CONTROLLER_NAME = "SERVE_CONTROLLER"
NAMESPACE = "serve"
_TICK_S = 0.1
_NODE_CHECK_S = 2.0
_IDEMPOTENCY_SWEEP_S = 60.0
# The status is put in the head's KV (namespace "serve", key "status") this
# often, when it changed: the head's dashboard shows it (docs/serving.md).
_STATUS_PUBLISH_S = 1.0
_MAX_START_FAILURES = 3
_ROUTER_STALE_S = 10.0
_ACTOR_OPTIONS = ("num_cpus", "num_gpus", "resources", "memory",
                  "runtime_env", "scheduling_strategy", "label_selector")


def get():
    """The running controller's handle; ValueError when serving is not
    started."""
    return loom.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)


class _ReplicaState:
    def __init__(self, handle, version, user_config):
        self.handle = handle
        self.id = handle._actor_id
        self.version = version
        self.user_config = user_config
        self.state = "STARTING"
        self.started = time.monotonic()
        self.next_health = 0.0
        self.task = None


class _Deployment:
    def __init__(self, app, spec):
        self.app = app
        self.name = spec["name"]
        self.full = f"{app}#{self.name}"
        self.replicas = []
        self.failures = 0
        self.message = ""
        self.scale_since = None
        self.totals = {"requests": 0, "codes": {}, "batch_sizes": {}}
        self.set_spec(spec)

    def set_spec(self, spec):
        self.spec = spec
        self.config = spec["config"]
        auto = self.config.get("autoscaling_config")
        if auto and hasattr(self, "target"):  # an update keeps its scale
            self.target = min(max(self.target, auto["min_replicas"]),
                              auto["max_replicas"])
        elif auto:
            self.target = max(auto.get("initial_replicas") or
                              auto["min_replicas"], auto["min_replicas"])
        else:
            self.target = self.config["num_replicas"]
        self.failures = 0

    def live(self):
        return [r for r in self.replicas if r.state != "STOPPING"]

    def running(self):
        return [r for r in self.replicas if r.state == "RUNNING"]


class ServeController:
    def __init__(self, http_options):
        self._http = dict(http_options)
        self._apps = {}  # name -> {"route_prefix", "ingress", "deployments"}
        self._version = 0
        self._table = {"deployments": {}, "routes": []}
        self._loads = {}  # router id -> (time, [stats])
        self._proxies = {}  # node id -> {"handle", "state", "port", ...}
        self._started = False
        self._bumped = None
        self._next_node_check = 0.0
        self._next_sweep = 0.0
        self._next_status = 0.0
        self._published = None
        self._replica_class = loom.remote(_replica.Replica)
        self._replica_gauge = None
        self._exported = {}

    # ---- API (called by loom.serve) --------------------------------------

    async def start(self):
        if not self._started:
            self._started = True
            self._bumped = asyncio.get_running_loop().create_future()
            asyncio.ensure_future(self._run())
        return True

    async def deploy_app(self, name, route_prefix, ingress, specs):
        await self.start()
        for other, app in self._apps.items():
            if other != name and route_prefix is not None and \
                    app["route_prefix"] == route_prefix:
                raise ValueError(f"route prefix {route_prefix!r} is taken by "
                                 f"application {other!r}")
        app = self._apps.setdefault(
            name, {"deployments": {}, "route_prefix": route_prefix})
        app["route_prefix"] = route_prefix
        app["ingress"] = ingress
        app["deleting"] = False
        new = {s["name"]: s for s in specs}
        for dname, d in list(app["deployments"].items()):
            if dname not in new:
                d.target = 0
                d.spec = dict(d.spec, removed=True)
        for dname, spec in new.items():
            d = app["deployments"].get(dname)
            if d is None:
                app["deployments"][dname] = _Deployment(name, spec)
            else:
                d.set_spec(spec)
        self._publish()
        return True

    async def delete_app(self, name):
        app = self._apps.get(name)
        if app is None:
            return False
        app["deleting"] = True
        for d in app["deployments"].values():
            d.target = 0
            d.spec = dict(d.spec, removed=True)
        self._publish()
        return True

    async def shutdown(self):
        for name in list(self._apps):
            await self.delete_app(name)
        deadline = time.monotonic() + 30
        while self._apps and time.monotonic() < deadline:
            await asyncio.sleep(_TICK_S)
        for p in self._proxies.values():
            try:
                loom.kill(p["handle"])
            except Exception:  # noqa: BLE001 - it may be gone already
                pass
        self._proxies.clear()
        return True

    async def listen(self, router_id, known_version, stats, wait_s):
        """The table once its version differs from known_version (or after
        wait_s); records what the router saw since it last asked."""
        await self.start()
        if stats:
            self._loads[router_id] = (time.monotonic(), stats)
            for s in stats:
                d = self._find(s["name"])
                if d is not None:
                    d.totals["requests"] += s["requests"]
                    for code, n in s["codes"].items():
                        d.totals["codes"][code] = \
                            d.totals["codes"].get(code, 0) + n
                    for size, n in s["batch_sizes"].items():
                        d.totals["batch_sizes"][size] = \
                            d.totals["batch_sizes"].get(size, 0) + n
        if known_version == self._version:
            try:
                await asyncio.wait_for(asyncio.shield(self._bumped), wait_s)
            except asyncio.TimeoutError:
                pass
        return self._version, self._table

    async def status(self):
        now = time.monotonic()
        apps = {}
        for name, app in self._apps.items():
            deps = {}
            for dname, d in app["deployments"].items():
                deps[dname] = self._deployment_status(d, now)
            states = {v["status"] for v in deps.values()}
            if app.get("deleting"):
                status = "DELETING"
            elif "DEPLOY_FAILED" in states:
                status = "DEPLOY_FAILED"
            elif states <= {"HEALTHY"}:
                status = "RUNNING"
            else:
                status = "DEPLOYING"
            apps[name] = {"status": status,
                          "route_prefix": app["route_prefix"],
                          "ingress": app.get("ingress"),
                          "deployments": deps}
        proxies = {node: {k: v for k, v in p.items() if k != "handle"}
                   for node, p in self._proxies.items()}
        return {"applications": apps, "proxies": proxies}

    # ---- the loop ---------------------------------------------------------

    async def _run(self):
        while True:
            try:
                await self._reconcile()
            except Exception:  # noqa: BLE001 - keep reconciling
                import traceback
                traceback.print_exc()
            await asyncio.sleep(_TICK_S)

    async def _reconcile(self):
        now = time.monotonic()
        if now >= self._next_node_check:
            self._next_node_check = now + _NODE_CHECK_S
            self._check_proxies()
            self._loads = {r: v for r, v in self._loads.items()
                           if now - v[0] <= _ROUTER_STALE_S}
        if now >= self._next_status:
            self._next_status = now + _STATUS_PUBLISH_S
            await self._publish_status()
        if now >= self._next_sweep:
            self._next_sweep = now + _IDEMPOTENCY_SWEEP_S
            # Idempotency-Key records past their time (shared_idempotency.h).
            from loom import _core
            await asyncio.get_running_loop().run_in_executor(
                None, _core.serve_sweep_idempotency)
        changed = False
        for name, app in list(self._apps.items()):
            for dname, d in list(app["deployments"].items()):
                self._autoscale(d, now)
                changed |= self._scale(d, now)
                if d.spec.get("removed") and not d.replicas:
                    del app["deployments"][dname]
                    changed = True
            if app.get("deleting") and not app["deployments"]:
                del self._apps[name]
                changed = True
        if changed:
            self._publish()

    def _scale(self, d, now):
        """Starts, retires and checks d's replicas; True when the table
        changes."""
        changed = False
        version = d.spec["version"]
        current = [r for r in d.live() if r.version == version]
        old = [r for r in d.live() if r.version != version]
        failed = d.failures >= _MAX_START_FAILURES
        for _ in range(max(0, d.target - len(current))):
            if failed:
                break
            current.append(self._start_replica(d))
        extra = len(current) - d.target
        for r in sorted(current, key=lambda r: r.state == "RUNNING"):
            if extra <= 0:
                break
            self._stop_replica(d, r)
            changed = True
            extra -= 1
        running_new = sum(r.state == "RUNNING" for r in current)
        running_old = [r for r in old if r.state == "RUNNING"]
        for r in old:
            if r.state == "STARTING" or \
                    running_new + len(running_old) > d.target or failed:
                if r in running_old:
                    running_old.remove(r)
                self._stop_replica(d, r)
                changed = True
        for r in d.running():
            if r.user_config != d.config.get("user_config") and \
                    r.version == version and r.task is None:
                r.task = asyncio.ensure_future(self._reconfigure(d, r))
            if now >= r.next_health and r.task is None:
                r.next_health = now + d.config["health_check_period_s"]
                r.task = asyncio.ensure_future(self._check_health(d, r))
        return changed

    def _start_replica(self, d):
        c = d.config
        opts = {k: v for k, v in (c.get("ray_actor_options") or {}).items()
                if k in _ACTOR_OPTIONS}
        opts.setdefault("num_cpus", 1)
        # Replicas spread over the nodes, as Ray Serve's do.
        opts.setdefault("scheduling_strategy", "SPREAD")
        opts.update(name=f"SERVE_REPLICA::{d.full}#{uuid.uuid4().hex[:6]}",
                    namespace=NAMESPACE, max_restarts=0, lifetime="detached",
                    max_concurrency=c["max_ongoing_requests"] + 8)
        if d.spec.get("cpp_factory"):  # include/loom/serve.h
            from loom.cross_language import cpp_actor_class
            opts.pop("runtime_env", None)
            handle = cpp_actor_class(d.spec["cpp_factory"]).options(
                **opts).remote(*d.spec["cpp_args"])
        else:
            handle = self._replica_class.options(**opts).remote(
                d.full, d.spec["definition"], d.spec["init_args"],
                c.get("user_config"), d.spec["is_function"])
        r = _ReplicaState(handle, d.spec["version"], c.get("user_config"))
        d.replicas.append(r)
        r.task = asyncio.ensure_future(self._await_start(d, r))
        return r

    async def _await_start(self, d, r):
        try:
            await r.handle.initialize.remote()
        except Exception as e:  # noqa: BLE001 - the user's __init__ failed
            if r.state == "STOPPING":  # stopped before it started
                return
            d.failures += 1
            d.message = (f"a replica of {d.name} failed to start "
                         f"({d.failures} time(s)): {e}")
            self._forget(d, r)
            return
        finally:
            r.task = None
        if r.state == "STARTING":
            r.state = "RUNNING"
            r.next_health = time.monotonic() + \
                d.config["health_check_period_s"]
            d.failures = 0
            d.message = ""
            self._publish()
            asyncio.ensure_future(self._watch(d, r))

    async def _watch(self, d, r):
        """Replaces the replica as soon as its process dies."""
        try:
            await r.handle.wait_until_stopped.remote()
        except Exception:  # noqa: BLE001 - died
            pass
        if r in d.replicas and r.state != "STOPPING":
            d.message = f"replica {r.id.hex()[:12]} of {d.name} died"
            self._forget(d, r)

    async def _check_health(self, d, r):
        try:
            await asyncio.wait_for(
                asyncio.wrap_future(r.handle.check_health.remote().future()),
                d.config["health_check_timeout_s"])
        except Exception as e:  # noqa: BLE001 - unhealthy or dead
            if r in d.replicas and r.state == "RUNNING":
                d.message = (f"replica {r.id.hex()[:12]} of {d.name} failed "
                             f"its health check: {e!r}")
                self._forget(d, r)
        finally:
            r.task = None

    async def _reconfigure(self, d, r):
        config = d.config.get("user_config")
        try:
            await r.handle.reconfigure.remote(config)
            r.user_config = config
        except Exception as e:  # noqa: BLE001 - replaced like a failure
            d.message = f"reconfigure failed on {r.id.hex()[:12]}: {e}"
            self._forget(d, r)
        finally:
            r.task = None

    def _forget(self, d, r):
        """Drops a replica now (dead or failed) and kills what is left."""
        if r in d.replicas:
            d.replicas.remove(r)
        try:
            loom.kill(r.handle)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._publish()

    def _stop_replica(self, d, r):
        was_running = r.state == "RUNNING"
        r.state = "STOPPING"
        asyncio.ensure_future(self._drain(d, r, was_running))

    async def _drain(self, d, r, was_running):
        self._publish()  # out of the table first
        if was_running:
            await asyncio.sleep(0.5)  # routers learn of the new table
            try:
                await asyncio.wait_for(
                    asyncio.wrap_future(r.handle.prepare_for_shutdown.remote(
                        d.config["graceful_shutdown_timeout_s"]).future()),
                    d.config["graceful_shutdown_timeout_s"] + 5)
            except Exception:  # noqa: BLE001 - dead or stuck: killed anyway
                pass
        self._forget(d, r)

    # ---- autoscaling -------------------------------------------------------

    def _autoscale(self, d, now):
        auto = d.config.get("autoscaling_config")
        if not auto or d.spec.get("removed"):
            return
        seen = self._load_of(d, now)
        load, p95 = seen["queued"] + seen["ongoing"], seen["p95_ms"]
        current = d.target
        want = math.ceil(load / auto["target_ongoing_requests"])
        target_p95 = auto.get("target_p95_latency_ms")
        if target_p95 and p95 > target_p95 and load > 0:
            want = max(want, current + 1)
        want = min(max(want, auto["min_replicas"]), auto["max_replicas"])
        if want == current:
            d.scale_since = None
            return
        direction = "up" if want > current else "down"
        if d.scale_since is None or d.scale_since[0] != direction:
            d.scale_since = (direction, now)
            return
        delay = auto["upscale_delay_s"] if direction == "up" else \
            auto["downscale_delay_s"]
        if now - d.scale_since[1] >= delay:
            d.target = want
            d.scale_since = None

    # ---- the table and the proxies -----------------------------------------

    def _find(self, full):
        app, _, name = full.partition("#")
        return self._apps.get(app, {}).get("deployments", {}).get(name)

    def _export_replicas(self):
        """loom_serve_deployment_replicas{deployment, state}."""
        if self._replica_gauge is None:
            from loom.util.metrics import Gauge
            self._replica_gauge = Gauge(
                "loom_serve_deployment_replicas", "Replicas by state",
                ("deployment", "state"), _own=True)
        counts = {}
        for app in self._apps.values():
            for d in app["deployments"].values():
                for state in ("STARTING", "RUNNING", "STOPPING"):
                    counts[(d.full, state)] = 0
                for r in d.replicas:
                    counts[(d.full, r.state)] += 1
        for key in set(self._exported) - set(counts):
            counts[key] = 0  # a deleted deployment reads 0, not its last
        for (full, state), n in counts.items():
            if self._exported.get((full, state)) != n:
                self._replica_gauge.set(n, {"deployment": full,
                                            "state": state})
        self._exported = counts

    def _publish(self):
        self._export_replicas()
        deployments = {}
        routes = []
        for name, app in self._apps.items():
            for d in app["deployments"].values():
                c = d.config
                deployments[d.full] = {
                    "max_ongoing": c["max_ongoing_requests"],
                    "max_queued": c["max_queued_requests"],
                    "batched": d.spec["batched"],
                    "streaming": d.spec.get("streaming", []),
                    "replicas": [r.id for r in d.running()],
                }
            if app["route_prefix"] is not None and not app.get("deleting"):
                routes.append((app["route_prefix"],
                               f"{name}#{app['ingress']}"))
        table = {"deployments": deployments, "routes": routes}
        if table == self._table:
            return
        self._table = table
        self._version += 1
        if self._bumped is not None:
            self._bumped.set_result(None)
            self._bumped = asyncio.get_running_loop().create_future()

    def _check_proxies(self):
        if self._http.get("location") == "NoServer":
            return
        alive = {}
        for n in loom.nodes():
            if n["Alive"]:
                alive[n["NodeID"]] = n
        for node, p in list(self._proxies.items()):
            if node not in alive or p["state"] == "DEAD":
                self._proxies.pop(node)
        for node, n in alive.items():
            if node in self._proxies:
                continue
            labels = n.get("Labels") or {}
            port = int(labels.get("serve_port", self._http.get("port", 8000)))
            if port < 0:
                continue
            from loom.serve import _proxy
            handle = loom.remote(_proxy.Proxy).options(
                num_cpus=0, max_restarts=0, lifetime="detached",
                name=f"SERVE_PROXY::{node[:12]}", namespace=NAMESPACE,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node)
            ).remote(self._http.get("host", "0.0.0.0"), port,
                     self._http.get("api_key", ""))
            p = {"handle": handle, "state": "STARTING", "node_id": node,
                 "node_ip": n["NodeManagerAddress"], "port": None,
                 "message": ""}
            self._proxies[node] = p
            asyncio.ensure_future(self._await_proxy(p))

    async def _await_proxy(self, p):
        try:
            p["port"] = await p["handle"].ready.remote()
            p["state"] = "HEALTHY"
        except Exception as e:  # noqa: BLE001 - its port is taken, say
            p["state"] = "UNHEALTHY"
            p["message"] = str(e)
            return
        try:
            await p["handle"].wait_until_stopped.remote()
        except Exception:  # noqa: BLE001 - died: started again next check
            pass
        p["state"] = "DEAD"

    async def _publish_status(self):
        status = await self.status()
        if status == self._published:
            return
        self._published = status
        from loom import _core
        body = json.dumps(dict(status, t_ms=int(time.time() * 1000))).encode()
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: _core.kv_put("status", body, ns="serve"))
        except Exception:  # noqa: BLE001 - the next change tries again
            self._published = None

    def _load_of(self, d, now):
        """d's load over the routers that reported lately: requests queued
        and ongoing (summed), latency percentiles (the worst router's)."""
        out = {"queued": 0, "ongoing": 0, "p50_ms": 0.0, "p95_ms": 0.0,
               "p99_ms": 0.0}
        for seen, loads in self._loads.values():
            if now - seen > _ROUTER_STALE_S:
                continue
            for s in loads:
                if s["name"] == d.full:
                    out["queued"] += s["queued"]
                    out["ongoing"] += s["ongoing"]
                    for q in ("p50_ms", "p95_ms", "p99_ms"):
                        out[q] = max(out[q], s[q])
        return out

    def _deployment_status(self, d, now):
        counts = {}
        for r in d.replicas:
            counts[r.state] = counts.get(r.state, 0) + 1
        current = [r for r in d.running() if r.version == d.spec["version"]]
        if d.failures >= _MAX_START_FAILURES:
            status = "DEPLOY_FAILED"
        elif len(current) == d.target and len(d.replicas) == d.target:
            status = "HEALTHY"
        elif len(d.live()) < d.target or d.target > len(d.running()):
            status = "UPSCALING" if d.running() else "UPDATING"
        else:
            status = "DOWNSCALING"
        message = d.message
        starting = [r for r in d.replicas if r.state == "STARTING"]
        if not message and starting and \
                min(now - r.started for r in starting) > 5:
            message = ("replicas are waiting for resources: "
                       f"{d.config.get('ray_actor_options') or {}}")
        stats = self._load_of(d, now)
        stats["requests"] = d.totals["requests"]
        stats["codes"] = dict(d.totals["codes"])
        stats["batch_sizes"] = dict(d.totals["batch_sizes"])
        return {"status": status, "message": message,
                "target_replicas": d.target, "replica_states": counts,
                "stats": stats}
