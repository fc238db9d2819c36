// src/common/grpc_cores.h
//
// How many cores gRPC believes this process has. gRPC 1.51 sizes its timer
// shards (two per core, each re-checked about once a second even when
// empty), its callback pollers (one per two cores, each waking once a
// second), its EventEngine threads (one per core) and its executor by
// gpr_cpu_num_cores(). No Loom process uses those for its calls: every
// call completes on Loom's own queue threads (async_call.h, async_server.h),
// so this process answers that call itself (grpc_cores.cc defines
// gpr_cpu_num_cores, found before gRPC's own): $LOOM_GRPC_CORES when set,
// else 1. On a 16-core machine an idle actor had 33 threads and woke 321
// times in 10 s; told 1 core, 13 and ~100. An idle raylet told the 2 cores
// of the VM woke its timer thread 20 times in 10 s; told 1, 10.
//
// Loom's own queue threads are sized by LoomCores(): $LOOM_GRPC_CORES when
// set (the raylet sets 1 for its workers, which run one task at a time),
// else the machine's cores.
#ifndef LOOM_COMMON_GRPC_CORES_H_
#define LOOM_COMMON_GRPC_CORES_H_

namespace loom::rpc {

inline constexpr char kGrpcCoresEnv[] = "LOOM_GRPC_CORES";

// What gRPC is told: read once, at gRPC's first question (its init).
unsigned GrpcCores();

// What Loom sizes its own gRPC queue threads by.
unsigned LoomCores();

}  // namespace loom::rpc

#endif  // LOOM_COMMON_GRPC_CORES_H_
