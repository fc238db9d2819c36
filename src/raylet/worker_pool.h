// src/raylet/worker_pool.h
//
// WorkerPool: the node's worker processes. It prestarts workers, hands an
// idle one to a lease (one already serving the lease's job, or a fresh one
// that then joins it), takes it back after, replaces dead ones and stops
// idle extras after a timeout. Workers are started with posix_spawn (safe
// from a threaded process, and fast) and hold a lifeline to the raylet, so
// they exit when it dies. A worker never serves two jobs, and a worker that
// held GPUs is never given other GPUs.
//
//   WorkerPool pool(options);
//   pool.Prestart();
//   if (Worker* w = pool.PopIdle(job, gpu_ids)) ... else pool.StartWorkers(1);
//   pool.PushIdle(w);
#ifndef LOOM_SRC_RAYLET_WORKER_POOL_H_
#define LOOM_SRC_RAYLET_WORKER_POOL_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "src/common/clock.h"
#include "src/common/ids.h"
#include "src/common/metrics.h"

namespace loom::raylet {

struct Worker {
  enum State { kStarting, kIdle, kLeased };
  WorkerId id;
  pid_t pid = 0;
  int lifeline_fd = -1;
  State state = kStarting;
  int port = 0;
  std::optional<JobId> job;
  std::vector<int> gpu_ids;
  absl::Time started;
  absl::Time idle_since;
  bool holds_objects = false;  // owns or borrows objects: not reaped
  bool detached = false;       // a detached actor: outlives its job
};

// Not thread-safe: owned by the raylet's event loop.
class WorkerPool {
 public:
  struct Options {
    std::string worker_binary;
    std::string session_dir;
    std::string raylet_address;
    std::string host = "127.0.0.1";
    int prestart = 1;
    absl::Duration idle_timeout = absl::Seconds(10);
    Clock* clock = Clock::Real();
    Metrics* metrics = nullptr;
    std::string gcs_address;  // for actor calls from workers
  };
  explicit WorkerPool(Options options);
  ~WorkerPool();

  void Prestart();
  void StartWorkers(int n);
  // A started worker reports its port. Unknown ids are refused.
  absl::StatusOr<Worker*> Register(const WorkerId& id, pid_t pid, int port);
  // An idle worker for `job` (or an unassigned one) compatible with `gpus`.
  Worker* PopIdle(const JobId& job, const std::vector<int>& gpus);
  void PushIdle(Worker* worker);
  Worker* Find(const WorkerId& id);

  // Reaps exited processes; returns the workers that died.
  std::vector<Worker> ReapDead();
  // Stops idle workers past the timeout beyond the prestart count, and
  // starts workers back up to it.
  void Maintain();
  void Kill(const WorkerId& id);
  void KillJob(const JobId& job);
  void KillAll();

  int CountState(Worker::State s) const;

 private:
  void UpdateGauges();
  void Remove(const WorkerId& id);
  std::vector<std::string> WorkerArgs() const;
  // The fork server (loom-worker --zygote): workers are forked from it, a
  // millisecond each instead of a dozen for exec and dynamic linking. Without
  // one (it failed), workers are spawned.
  void StartZygote();
  void StopZygote();
  absl::StatusOr<pid_t> ForkWorker(const WorkerId& id);
  pid_t zygote_pid_ = -1;
  int zygote_fd_ = -1;        // control socket: worker id out, pid back
  int zygote_lifeline_ = -1;  // its lifeline (and its workers')

  Options options_;
  absl::flat_hash_map<WorkerId, std::unique_ptr<Worker>> workers_;
  prometheus::Gauge* starting_ = nullptr;
  prometheus::Gauge* idle_ = nullptr;
  prometheus::Gauge* leased_ = nullptr;
  prometheus::Histogram* start_ms_ = nullptr;
  prometheus::Counter* started_total_ = nullptr;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_WORKER_POOL_H_
