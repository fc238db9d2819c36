"""loom.serve: models and functions served online, with Ray Serve's API.

    from loom import serve

    @serve.deployment(num_replicas=2, max_ongoing_requests=8)
    class Echo:
        async def __call__(self, request):
            return {"got": (await request.json())}

    serve.run(Echo.bind(), route_prefix="/echo")
    # curl -H "Authorization: Bearer $TOKEN" -d '{"x": 1}' localhost:8000/echo

The request path is C++ (runtime/serve/): an HTTP ingress per node and a
router in every calling process that limits each replica to
max_ongoing_requests, queues at most max_queued_requests (then 503 /
BackPressureError), refuses early what cannot meet its deadline (504 /
DeadlineExceededError), and forms batches for @serve.batch methods.
Replicas are actors; a controller actor keeps them running, rolls updates
over and autoscales. See docs/serving.md."""
from loom.serve._api import (Application, Deployment, cpp_deployment,
                             delete, deployment,
                             get_app_handle, get_deployment_handle, run,
                             shutdown, start, status)
from loom.serve._batching import batch
from loom.serve._handle import DeploymentHandle, DeploymentResponse
from loom.serve._http import Request, Response
from loom.serve import exceptions

__all__ = ["Application", "Deployment", "DeploymentHandle", "cpp_deployment",
           "DeploymentResponse", "Request", "Response", "batch", "delete",
           "deployment", "exceptions", "get_app_handle",
           "get_deployment_handle", "run", "shutdown", "start", "status"]
