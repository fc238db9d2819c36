// src/gcs/job_manager.h
//
// JobManager: jobs submitted through the head's HTTP API (docs/jobs.md).
// A submission's entrypoint, a shell command, runs as a driver on a node:
// the head's own node unless it asks for resources (entrypoint_num_cpus...)
// that only another node has. The head asks that node's raylet to start it
// (StartEntrypoint) and hears when it ended (ReportEntrypointExit). Every
// change of state is saved, so a head on Redis knows its submissions after
// a restart; one still PENDING is placed again.
//
//   JobManager jobs({.loop = &loop, .nodes = &nodes, ...});
//   jobs.Submit(submission, [](absl::StatusOr<rpc::JobSubmission> job) {...});
//   jobs.Stop("job_1", [](absl::StatusOr<bool> stopped) {...});
#ifndef LOOM_GCS_JOB_MANAGER_H_
#define LOOM_GCS_JOB_MANAGER_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/gcs.pb.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/gcs/node_table.h"
#include "src/gcs/storage.h"

namespace loom::gcs {

// Not thread-safe: every method runs on the head's loop.
class JobManager {
 public:
  struct Options {
    EventLoop* loop = nullptr;
    NodeTable* nodes = nullptr;
    ClientPool* clients = nullptr;
    StoreClient* store = nullptr;
    // The head's session directory: the node with the same one is the
    // head's node, where entrypoints run by default.
    std::string head_session_dir;
  };
  explicit JobManager(Options options);
  ~JobManager();

  // The load phase (rows of JobSubmission); PENDING ones are placed again.
  absl::Status Load(const StoreClient::Table& rows);

  // Saves and places a new submission (status PENDING), or answers with the
  // one that has its submission_id already (submitting twice never starts
  // a second). InvalidArgument: no entrypoint, a malformed id.
  void Submit(rpc::JobSubmission job,
              std::function<void(absl::StatusOr<rpc::JobSubmission>)> done);
  // NotFound for an unknown id.
  absl::StatusOr<rpc::JobSubmission> Get(const std::string& id);
  std::vector<rpc::JobSubmission> List() const;
  // Stops a PENDING or RUNNING job (its process group gets SIGTERM, then
  // SIGKILL); false when it had already ended. NotFound for an unknown id.
  void Stop(const std::string& id,
            std::function<void(absl::StatusOr<bool>)> done);
  // Forgets an ended job; FailedPrecondition while it is not.
  void Delete(const std::string& id,
              std::function<void(absl::StatusOr<bool>)> done);

  void OnEntrypointExit(const rpc::ReportEntrypointExitRequest& req);
  // Jobs running there failed with it.
  void OnNodeDead(const std::string& node_id);
  // Tries to place what is PENDING (also every second on its own).
  void PlacePending();
  void Shutdown() { calls_.Shutdown(); }

  static bool Ended(rpc::JobSubmission::Status s) {
    return s != rpc::JobSubmission::PENDING && s != rpc::JobSubmission::RUNNING;
  }

 private:
  // NotFound for an unknown id.
  absl::StatusOr<rpc::JobSubmission*> Find(const std::string& id);
  // The node to run `job` on now, or null when none fits.
  const rpc::NodeInfo* PickNode(const rpc::JobSubmission& job) const;
  void Start(const std::string& id, const rpc::NodeInfo& node);
  void End(rpc::JobSubmission& job, rpc::JobSubmission::Status status,
           std::string message);
  void Save(const rpc::JobSubmission& job, std::function<void()> then = {});
  void PlacePeriodically();

  Options options_;
  std::map<std::string, rpc::JobSubmission> jobs_;
  std::map<std::string, bool> starting_;  // a StartEntrypoint in flight
  CallsInFlight calls_;
  bool stopped_ = false;
};

// "raysubmit_" and 16 random letters and digits, as Ray names them.
std::string NewSubmissionId();

}  // namespace loom::gcs

#endif  // LOOM_GCS_JOB_MANAGER_H_
