"""The HTTP proxy: one actor per node, in whose process the C++ ingress
(runtime/serve/ingress.h) serves HTTP on threads of its own; Python only
starts it and keeps its routes current (loom/serve/_router.py)."""
import asyncio

from loom import _core
from loom.serve import _router


class Proxy:
    def __init__(self, host, port, api_key):
        self._port = _core.serve_ingress_start(host, port, api_key)
        _router.watch(ingress=True)

    async def ready(self):
        return self._port

    async def wait_until_stopped(self):
        await asyncio.Event().wait()
