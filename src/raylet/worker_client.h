// src/raylet/worker_client.h
//
// WorkerClient: the raylet's calls to its own workers, kept at the rpc edge
// so that NodeManager never sees gRPC types.
//
//   client.AssignJob(worker_id, "127.0.0.1:4242", {job, code, gpus},
//                    [](absl::Status s) { ... });  // on gRPC's thread
#ifndef LOOM_SRC_RAYLET_WORKER_CLIENT_H_
#define LOOM_SRC_RAYLET_WORKER_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "src/common/client_pool.h"
#include "src/common/ids.h"

namespace loom::raylet {

struct JobAssignment {
  JobId job;
  std::vector<std::string> code_search_path;
  std::vector<int> gpu_ids;
  LeaseId lease;            // the worker runs pushes under this lease only
  std::string control_key;  // the worker's, from its registration
  double cpus = 0;          // the lease's CPUs: the worker's thread cap
};

// Not thread-safe: used from the raylet's event loop.
class WorkerClient {
 public:
  explicit WorkerClient(ClientPool* clients) : clients_(clients) {}

  // Tells a worker which job it serves, the code to load and the GPUs it
  // holds. `done` runs on a gRPC thread.
  void AssignJob(const WorkerId& worker, const std::string& address,
                 const JobAssignment& assignment,
                 std::function<void(absl::Status)> done);
  // Tells a worker its lease was returned: it refuses pushes under it from
  // now on. Fire and forget (a worker that misses it is killed or gets a
  // new lease, which replaces this one).
  void EndLease(const WorkerId& worker, const LeaseId& lease,
                const std::string& control_key);
  // Drops the connection to a worker that is gone.
  void Forget(const WorkerId& worker);
  // Drops the connection to a worker that will not be called for long (an
  // actor's, once it joined its job): the next call dials again.
  void Idle(const WorkerId& worker);

 private:
  ClientPool* clients_;
  absl::flat_hash_map<WorkerId, std::string> addresses_;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_WORKER_CLIENT_H_
