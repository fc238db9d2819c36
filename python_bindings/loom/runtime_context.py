"""loom.get_runtime_context(): where the calling code runs."""
from loom import _core
from loom._private import worker


class RuntimeContext:
    def get_job_id(self):
        worker.check_connected()
        return _core.job_id()

    def get_node_id(self):
        worker.check_connected()
        return _core.node_id()

    def get_worker_id(self):
        worker.check_connected()
        return _core.worker_id()

    def get_task_id(self):
        """The running task's id (hex); None in a driver."""
        task = getattr(worker.task_context, "task_id", None)
        return task.hex() if task else None

    def get_actor_id(self):
        """The actor this process serves (hex); None outside actors."""
        return worker.actor_context["actor_id"]

    def get_gpu_ids(self):
        return get_gpu_ids()

    @property
    def namespace(self):
        return worker.namespace()


def get_runtime_context():
    return RuntimeContext()


def get_gpu_ids():
    """The GPU ids this worker holds (empty in a driver)."""
    if not _core.is_initialized():
        return []
    return list(_core.gpu_ids())
