// src/raylet/worker_pool.h
//
// WorkerPool: the node's worker processes. It prestarts workers, hands an
// idle one to a lease (one already serving the lease's job, or a fresh one
// that then joins it), takes it back after, replaces dead ones and stops
// idle extras after a timeout. Workers are forked from a fork server (one
// per runtime: loom-worker for C++, the driver's Python interpreter with its
// sys.path and working directory for Python), or spawned with posix_spawn,
// and hold a lifeline to the raylet, so they exit when it dies. A worker
// never serves two jobs or two runtimes, and a worker that held GPUs is
// never given other GPUs.
//
//   WorkerPool pool(options);
//   pool.Prestart();
//   if (Worker* w = pool.PopIdle(job, gpu_ids, key)) ...
//   else pool.StartWorkers(1, runtime);
//   pool.PushIdle(w);
#ifndef LOOM_SRC_RAYLET_WORKER_POOL_H_
#define LOOM_SRC_RAYLET_WORKER_POOL_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "proto/common.pb.h"
#include "src/common/clock.h"
#include "src/common/ids.h"
#include "src/common/metrics.h"
#include "src/common/process_watch.h"
#include "src/common/work_queue.h"

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
  // It ran a lease without GPUs: never given one with GPUs (what it loaded
  // may have set up CUDA with no device, or all of them).
  bool ran_without_gpus = false;
  absl::Time started;
  // The first worker of a fork server: when that server was spawned, so
  // that its registration also measures the server's start.
  std::optional<absl::Time> fork_server_spawned;
  absl::Time idle_since;
  bool holds_objects = false;  // owns or borrows objects: not reaped
  bool detached = false;       // a detached actor: outlives its job
  std::string runtime;         // RuntimeKey; empty: C++
  // The key the worker gave at registration: the raylet's control calls to
  // it (AssignJob, EndLease) carry it.
  std::string control_key;
};

// Workers of one runtime are interchangeable: "" for C++, else the Python
// interpreter, path and working directory.
std::string RuntimeKey(const rpc::WorkerRuntime& runtime);

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
    // Told of every worker process; without it (or when a watch fails)
    // ReapDead looks at every worker each time it is called.
    ProcessWatch* watch = nullptr;
    // Runs a function on the pool's loop (any thread may call it);
    // required. A fork server's start (a Python one imports for a second or
    // more, much longer on a loaded machine) and each fork are waited for
    // off the loop, on the server's own thread, and their answers posted.
    std::function<void(std::function<void()>)> post;
    // A fork server of this runtime (RuntimeKey) could not start: its
    // waiting leases fail with `why`. Called on the loop.
    std::function<void(const std::string& key, const std::string& why)>
        on_runtime_failed;
    // Workers starting at once (forked or spawned, not yet registered),
    // at least 8: a burst of 2,000 actors forked in one go blocked the
    // raylet's loop past the node timeout. The rest start as these
    // register (the caller asks again for what it still needs).
    int max_starting = 0;  // 0: twice the prestart count
    // Added to the raylet's niceness for every worker and fork server.
    int niceness = 0;
  };
  explicit WorkerPool(Options options);
  ~WorkerPool();

  void Prestart();
  // A Python driver joined the cluster: its runtime's fork server starts
  // here now (importing takes about a second), unless one runs already or
  // kMaxPrestartedRuntimes others do (those start at their first lease).
  void PrestartForkServer(const rpc::WorkerRuntime& runtime);
  static constexpr int kMaxPrestartedRuntimes = 4;
  // The raylet's descriptors a worker holds, at most.
  static constexpr int kDescriptorsPerWorker = 4;
  // Asks for n workers of `runtime`; forks are answered later, off the
  // loop (a fork that fails for want of processes or memory fails the
  // runtime's leases through on_runtime_failed). Fails at once when workers
  // of `runtime` cannot be started (a C++ worker that cannot be spawned, a
  // Python fork server that cannot).
  absl::Status StartWorkers(int n, const rpc::WorkerRuntime& runtime = {});
  // A started worker reports its port. Unknown ids are refused.
  absl::StatusOr<Worker*> Register(const WorkerId& id, pid_t pid, int port,
                                   const std::string& control_key);
  // An idle worker of `runtime` (a RuntimeKey) for `job` (or an unassigned
  // one) compatible with `gpus`.
  Worker* PopIdle(const JobId& job, const std::vector<int>& gpus,
                  const std::string& runtime = "");
  void PushIdle(Worker* worker);
  Worker* Find(const WorkerId& id);
  // Every worker process, whatever its state.
  std::vector<const Worker*> All() const;

  // Reaps exited processes; returns the workers that died. Looks only at
  // the processes the watch said ended (NoteExited) unless some worker is
  // not watched. One that still looks alive (a thread not yet exited) is
  // looked at again on the next call until it is gone (ExitsPending).
  std::vector<Worker> ReapDead();
  // The watch saw process `pid` end.
  void NoteExited(pid_t pid) { exited_.insert(pid); }
  // Some ended process has not been found dead yet: call ReapDead again.
  bool ExitsPending() const { return !exited_.empty(); }
  // Stops idle workers past the timeout beyond the prestart count, and
  // starts workers back up to it.
  void Maintain();
  void Kill(const WorkerId& id);
  // Kills the job's workers (not its detached actors); returns them.
  std::vector<Worker> KillJob(const JobId& job);
  void KillAll();

  int CountState(Worker::State s) const;
  int CountStarting(const std::string& runtime) const;
  bool AnyStarting() const;
  int CountRuntime(const std::string& runtime) const;

 private:
  void UpdateGauges();
  void Watch(pid_t pid);
  // A started process joins the pool: watched, counted, starting.
  void Started(std::unique_ptr<Worker> w, pid_t pid);
  // A worker enters workers_ (Add) or leaves it (Remove), or changes state
  // (SetState): the counts and the idle index follow (Track).
  Worker* Add(std::unique_ptr<Worker> w);
  void Remove(const WorkerId& id);
  void SetState(Worker* w, Worker::State state);
  void Track(Worker* w, int delta);
  std::vector<std::string> WorkerArgs() const;
  // Fork servers (loom-worker --zygote; python ... zygote_main): workers are
  // forked from them, a millisecond each instead of a dozen for exec and
  // dynamic linking (hundreds for a Python interpreter importing numpy).
  // Without one (it failed), C++ workers are spawned.
  struct Zygote {
    pid_t pid = -1;
    int fd = -1;        // control socket: "ready", then worker id out, pid back
    int lifeline = -1;  // its lifeline (and its workers')
    absl::Time spawned;
    bool forked = false;  // has forked a worker
    bool asked = false;   // a fork has been asked of it
    bool ready = false;   // said "ready": forks answer in milliseconds
    int pending = 0;      // workers to fork once ready
    uint64_t generation = 0;
    rpc::WorkerRuntime runtime;
    // One thread: waits for "ready", then writes each worker id and reads
    // its pid back, off the loop (a fork takes a millisecond, seconds on a
    // loaded machine).
    std::unique_ptr<WorkQueue> io;
  };
  Zygote* StartZygote(const rpc::WorkerRuntime& runtime);
  void StopZygote(const std::string& key);
  // On the loop: the fork server said "ready" (or died first).
  void ZygoteStarted(const std::string& key, uint64_t generation, bool ok);
  // Says (logs) that no Python worker of `runtime` can start; returns why.
  std::string NoPythonWorkers(const rpc::WorkerRuntime& runtime);
  // Asks the fork server for a worker of runtime `key`; Forked takes the
  // answer on the loop.
  void Fork(Zygote& zygote, const std::string& key);
  void Forked(const std::string& key, uint64_t generation, const WorkerId& id,
              const absl::StatusOr<pid_t>& pid);
  absl::flat_hash_map<std::string, Zygote> zygotes_;
  // Workers asked of a fork server, whose pid has not come back yet.
  absl::flat_hash_map<WorkerId, std::unique_ptr<Worker>> forking_;
  uint64_t zygote_generation_ = 0;

  Options options_;
  absl::flat_hash_map<WorkerId, std::unique_ptr<Worker>> workers_;
  // Kept as workers come, go and change state, so that a lease's PopIdle
  // looks at idle workers only (with 2,000 actors it walked every worker
  // for every waiting lease) and the counts do not walk at all.
  int counts_[3] = {0, 0, 0};  // by Worker::State
  absl::flat_hash_map<std::string, int> starting_by_runtime_;
  absl::flat_hash_map<std::string, absl::flat_hash_set<Worker*>> idle_workers_;
  absl::flat_hash_set<pid_t> exited_;  // the watch's, not yet found dead
  bool unwatched_ = false;             // some process is not watched: poll
  prometheus::Gauge* starting_ = nullptr;
  prometheus::Gauge* idle_ = nullptr;
  prometheus::Gauge* leased_ = nullptr;
  prometheus::Histogram* start_ms_ = nullptr;
  prometheus::Histogram* cold_start_ms_ = nullptr;
  prometheus::Counter* started_total_ = nullptr;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_WORKER_POOL_H_
