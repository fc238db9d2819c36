"""`loom serve ...` (the loom command hands these to this module):

    loom serve run module:app [--address A] [--name N] [--route-prefix P]
                              [--port P] [--host H] [--non-blocking]
    loom serve deploy config.yaml [--address A]
    loom serve status [--address A]
    loom serve shutdown [--address A] [--yes]

`run` connects to the cluster at --address (default: this machine's, else
a private one that lives while it runs), deploys the application the
import path names (an Application, or a Deployment to bind), and serves
until Ctrl-C, when it deletes the application (--non-blocking: returns
once it runs). `deploy` takes Ray Serve's config file: applications with
name, route_prefix, import_path and deployment overrides, and
http_options; a C++ application names cpp_factory (with args, batch and
code_search_path) instead of import_path. YAML needs PyYAML; JSON always
works."""
import argparse
import importlib
import json
import os
import signal
import sys
import time

import loom
from loom import serve
from loom.serve._api import Application, Deployment


def _connect(address, code_search_path=None):
    extra = {"code_search_path": code_search_path} if code_search_path \
        else {}
    if address:
        loom.init(address=address, **extra)
        return
    try:
        loom.init(address="auto", **extra)
    except Exception:  # noqa: BLE001 - no cluster here: a private one
        loom.init(**extra)


def _import_app(path):
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise SystemExit(f"loom serve: {path!r} is not MODULE:APP")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = importlib.import_module(module)
    for part in attr.split("."):
        app = getattr(app, part)
    if isinstance(app, Deployment):
        app = app.bind()
    if not isinstance(app, Application):
        raise SystemExit(f"loom serve: {path} is a {type(app).__name__}, "
                         "not an application (MyDeployment.bind(...))")
    return app


def _override(app, overrides):
    """Applies a config's per-deployment options to the application's
    deployments, by name."""
    by_name = {o["name"]: {k: v for k, v in o.items() if k != "name"}
               for o in overrides or ()}
    seen = set()

    def visit(a):
        if id(a) in seen:
            return
        seen.add(id(a))
        opts = by_name.pop(a._deployment.name, None)
        if opts:
            a._deployment = a._deployment.options(**opts)
        for v in list(a._args) + list(a._kwargs.values()):
            if isinstance(v, Application):
                visit(v)

    visit(app)
    if by_name:
        raise SystemExit(f"loom serve: the config names deployments the "
                         f"application does not have: {sorted(by_name)}")
    return app


def _load_config(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml  # noqa: PLC0415 - only for YAML configs
    except ImportError:
        raise SystemExit("loom serve: this config is not JSON, and reading "
                         "YAML needs PyYAML (pip install pyyaml)") from None
    return yaml.safe_load(text)


def cmd_run(args):
    _connect(args.address)
    options = {"port": args.port}
    if args.host:
        options["host"] = args.host
    serve.start(http_options=options)
    app = _import_app(args.import_path)
    serve.run(app, name=args.name, route_prefix=args.route_prefix)
    _print_routes(args.name)
    if args.non_blocking:
        return 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    serve.delete(args.name)
    return 0


def _print_routes(name, timeout_s=60):
    """Each proxy's URL for the application, once the proxies have
    started (they start beside the first deployment, on every node)."""
    end = time.monotonic() + timeout_s
    while True:
        s = serve.status()
        states = [p["state"] for p in s.proxies.values()]
        if (states and "STARTING" not in states) or \
                time.monotonic() > end:
            break
        time.sleep(0.1)
    for p in s.proxies.values():
        if p["state"] == "UNHEALTHY":
            print(f"{name}: the proxy on {p['node_ip']} does not serve: "
                  f"{p['message']}", file=sys.stderr, flush=True)
    app = s.applications[name]
    for p in s.proxies.values():
        if p["state"] == "HEALTHY":
            print(f"{name}: http://{p['node_ip']}:{p['port']}"
                  f"{app['route_prefix'] or ''} ({app['status']})",
                  flush=True)


def _cpp_app(a):
    """A C++ application: {"cpp_factory": "MakeScorer", "args": [...],
    "batch": {...}, "deployments": [{"name": ..., options}]}."""
    options = {}
    for o in a.get("deployments") or ():
        options.update({k: v for k, v in o.items() if k != "name"})
    return serve.cpp_deployment(a["cpp_factory"], batch=a.get("batch"),
                                **options).bind(*a.get("args", []))


def cmd_deploy(args):
    config = _load_config(args.config)
    paths = list(config.get("code_search_path") or ())
    for a in config.get("applications") or ():
        paths.extend(a.get("code_search_path") or ())
    _connect(args.address, paths)
    serve.start(http_options=config.get("http_options") or {})
    for a in config.get("applications") or ():
        if "cpp_factory" in a:
            app = _cpp_app(a)
        else:
            app = _override(_import_app(a["import_path"]),
                            a.get("deployments"))
        name = a.get("name", "default")
        serve.run(app, name=name, route_prefix=a.get("route_prefix", "/"))
        _print_routes(name)
    return 0


def cmd_status(args):
    _connect(args.address)
    print(json.dumps(serve.status(), indent=2, sort_keys=True,
                     default=str))
    return 0


def cmd_shutdown(args):
    _connect(args.address)
    if not args.yes:
        answer = input("Delete every application and stop serving? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    serve.shutdown()
    print("serving stopped")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="loom serve")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="deploy MODULE:APP and serve it")
    run.add_argument("import_path")
    run.add_argument("--name", default="default")
    run.add_argument("--route-prefix", default="/")
    run.add_argument("--port", type=int,
                     default=int(os.environ.get("LOOM_SERVE_PORT", 8000)))
    run.add_argument("--host", default=None)
    run.add_argument("--non-blocking", action="store_true")
    deploy = sub.add_parser("deploy", help="deploy a Serve config file")
    deploy.add_argument("config")
    sub.add_parser("status", help="applications, deployments, proxies")
    shut = sub.add_parser("shutdown", help="delete everything served")
    shut.add_argument("--yes", "-y", action="store_true")
    for p in sub.choices.values():
        p.add_argument("--address", default=os.environ.get("LOOM_ADDRESS"))
    args = ap.parse_args(argv)
    handler = {"run": cmd_run, "deploy": cmd_deploy, "status": cmd_status,
               "shutdown": cmd_shutdown}[args.command]
    try:
        return handler(args)
    finally:
        if loom.is_initialized():
            loom.shutdown()


if __name__ == "__main__":
    sys.exit(main())
