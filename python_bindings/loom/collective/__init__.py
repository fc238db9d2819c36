"""Collective communication among actors (and tasks).

    import loom.collective as col

    @loom.remote
    class Worker:
        def setup(self, world, rank):
            col.init_collective_group(world, rank, backend="cpu",
                                      group_name="g")
        def step(self, grad):
            col.allreduce(grad, group_name="g")   # in place: the sum
            return grad

Or declare the group from the driver and let each actor join on first use:
``col.create_collective_group(actors, world_size, ranks, backend="cpu",
group_name="g")``.

Backend "cpu" moves numpy arrays (anything exposing the buffer protocol)
through Loom's object store: each rank puts its contribution, a rendezvous
actor per group swaps the refs, and each rank reads the others' in place
(shared memory on one node, a transfer across nodes) and reduces locally.
Backend "nccl" runs NCCL in the C++ core on GPU arrays that expose
``__cuda_array_interface__`` (torch CUDA tensors, cupy arrays), in place and
without host copies; one GPU per rank. Rank 0 publishes the NCCL unique id
in the head's key-value store and the other ranks read it there.
init_collective_group raises RuntimeError when NCCL or a GPU is missing.
"""
from loom.collective.collective import (ReduceOp, allgather, allreduce,
                                        barrier, broadcast,
                                        create_collective_group,
                                        destroy_collective_group,
                                        get_rank, get_collective_group_size,
                                        init_collective_group,
                                        is_group_initialized, recv, reduce,
                                        reducescatter, send)

__all__ = ["ReduceOp", "init_collective_group", "create_collective_group",
           "destroy_collective_group", "is_group_initialized", "get_rank",
           "get_collective_group_size", "allreduce", "allgather",
           "reducescatter", "broadcast", "reduce", "send", "recv", "barrier"]
