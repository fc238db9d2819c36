// src/common/grpc_cores.h
//
// How many cores gRPC believes this process has. gRPC 1.51 sizes its timer
// shards (two per core, each re-checked about once a second even when
// empty), its callback pollers (one per two cores, each waking once a
// second) and its EventEngine threads (one per core) by
// gpr_cpu_num_cores(). A worker runs one task at a time and an idle one
// should sleep, so this process answers that call itself (grpc_cores.cc
// defines gpr_cpu_num_cores, found before gRPC's own): $LOOM_GRPC_CORES
// when set (the raylet sets 1 for its workers), else the machine's cores.
// On a 16-core machine an idle actor had 33 threads and woke 321 times in
// 10 s; told 1 core, 13 and ~100.
#ifndef LOOM_COMMON_GRPC_CORES_H_
#define LOOM_COMMON_GRPC_CORES_H_

namespace loom::rpc {

inline constexpr char kGrpcCoresEnv[] = "LOOM_GRPC_CORES";

// What gRPC is told: read once, at gRPC's first question (its init).
unsigned GrpcCores();

}  // namespace loom::rpc

#endif  // LOOM_COMMON_GRPC_CORES_H_
